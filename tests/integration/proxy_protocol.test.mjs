// Behind a real TCP proxy that terminates TLS and speaks the PROXY protocol (nginx's stream
// module, `proxy_protocol on`): visitors are told apart by the address in the PROXY header,
// believed from a --trusted-proxy only; HTTP headers from the client are never believed.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { startServer, metric, waitFor, freePort, selfSignedCert, startNginx, openWss } from './harness.mjs'
import { nginxConf } from '../../scripts/nginx.mjs'

let signal, nginx, port, dir

before(async () => {
  // The proxy connects from its own address (proxy_bind); tests read /metrics from 127.0.0.1.
  signal = await startServer(['--trusted-proxy', '127.0.0.254', '--proxy-protocol', '--max-conns-per-ip', '2',
    '--conn-rate-per-ip', '10000', '--conn-burst-per-ip', '10000'])
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-pp-'))
  selfSignedCert(dir)
  port = await freePort()
  const conf = nginxConf(dir, {
    modules: ['ngx_stream_module'],
    stream: `  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    proxy_pass 127.0.0.1:${signal.port};
    proxy_bind 127.0.0.254;
    proxy_protocol on;
  }`,
  })
  nginx = await startNginx(dir, port, conf)
})

after(async () => {
  await nginx?.stop()
  await signal?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const open = (localAddress, headers) => openWss(port, localAddress, headers)

test('visitors through the PROXY-protocol proxy are told apart; the per-address cap applies to each', async () => {
  const sockets = []
  for (let i = 2; i < 42; i++) sockets.push(await open(`127.0.0.${i}`))
  assert.equal(await metric(signal, 'deploynet_connections'), 40)
  sockets.push(await open('127.0.0.2'))
  await assert.rejects(open('127.0.0.2'), /HTTP 429/)
  // A client's own X-Forwarded-For cannot buy it more connections.
  sockets.push(await open('127.0.0.60', { 'X-Forwarded-For': '198.51.100.1' }))
  sockets.push(await open('127.0.0.60', { 'X-Forwarded-For': '198.51.100.2' }))
  await assert.rejects(open('127.0.0.60', { 'X-Forwarded-For': '198.51.100.3' }), /HTTP 429/)
  for (const s of sockets) s.close()
  await waitFor(async () => (await metric(signal, 'deploynet_connections')) === 0, 10_000, 'all closed')
})

function raw (bytes, localAddress) {
  return new Promise((resolve) => {
    const s = net.connect({ port: signal.port, host: '127.0.0.1', localAddress }, () => s.write(bytes))
    let got = ''
    s.on('data', (d) => { got += d })
    s.on('close', () => resolve(got))
    s.on('error', () => {})
    s.setTimeout(5000, () => s.destroy())
  })
}

test('without a valid PROXY header the trusted proxy\'s connection is closed; others cannot send one', async () => {
  const before = await metric(signal, 'deploynet_closed_total{reason="proxy_header"}').catch(() => 0)
  assert.equal(await raw('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', '127.0.0.254'), '')
  assert.equal(await raw('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', '127.0.0.254'), '')
  const text = await (await fetch(`${signal.http}/metrics`)).text()
  const closed = Number(/deploynet_closed_total\{reason="proxy_header"\} (\d+)/.exec(text)[1])
  assert.ok(closed >= before + 2)
  // A valid header from the proxy, then a request: answered, attributed to 203.0.113.9.
  const ok = await raw('PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '127.0.0.254')
  assert.match(ok, /^HTTP\/1.1 200/)
  // From an address that is not a trusted proxy, a PROXY line is just a bad HTTP request.
  const other = await raw('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n', '127.0.0.77')
  assert.doesNotMatch(other, /^HTTP\/1.1 200/)
})

test('--proxy-protocol needs --trusted-proxy', async () => {
  const { spawnSync } = await import('node:child_process')
  const { signalBinary } = await import('./harness.mjs')
  const r = spawnSync(signalBinary, ['--proxy-protocol'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--proxy-protocol: needs --trusted-proxy/)
})
