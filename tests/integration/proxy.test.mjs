// Behind a real TLS-terminating nginx (self-signed certificate): visitors are told apart by the
// address nginx puts in X-Forwarded-For, from a --trusted-proxy only.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { startServer, metric, freePort, selfSignedCert, startNginx, openWss } from './harness.mjs'
import { nginxConf } from '../../scripts/nginx.mjs'

let signal, nginx, port, dir
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

before(async () => {
  signal = await startServer(['--trusted-proxy', '127.0.0.1', '--max-conns-per-ip', '2',
    '--conn-rate-per-ip', '10000', '--conn-burst-per-ip', '10000'])
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-tls-'))
  selfSignedCert(dir)
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d))
  port = await freePort()
  const conf = nginxConf(dir, {
    rlimit: 8192,
    workerConnections: 4096,
    http: `  access_log off;
  include ${dir}/deploynet-signal.conf;`,
  })
  // The configuration the README gives (deploy/), with this test's port, upstream and certificate.
  const site = fs.readFileSync(path.join(root, 'deploy/nginx-deploynet-signal.conf'), 'utf8')
    .replace('server 127.0.0.1:8000;', `server 127.0.0.1:${signal.port};`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace('/etc/ssl/deploynet/fullchain.pem', path.join(dir, 'cert.pem'))
    .replace('/etc/ssl/deploynet/privkey.pem', path.join(dir, 'key.pem'))
  assert.ok(site.includes(`127.0.0.1:${signal.port}`) && site.includes(path.join(dir, 'key.pem')))
  fs.writeFileSync(path.join(dir, 'deploynet-signal.conf'), site)
  nginx = await startNginx(dir, port, conf)
})

after(async () => {
  await nginx?.stop()
  await signal?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const open = (localAddress, headers) => openWss(port, localAddress, headers)

test('1,000 visitors through the TLS proxy are admitted; the per-address cap applies to each visitor', async () => {
  const sockets = []
  try {
    for (let batch = 0; batch < 10; batch++) {
      sockets.push(...await Promise.all(Array.from({ length: 100 }, (_, i) => {
        const n = batch * 100 + i
        return open(`127.0.${10 + Math.floor(n / 200)}.${1 + (n % 200)}`)
      })))
    }
    assert.equal(await metric(signal, 'deploynet_connections'), 1000)
    // --max-conns-per-ip 2 counts the visitor's own address, not the proxy's.
    const mine = [await open('127.0.99.1'), await open('127.0.99.1')]
    await assert.rejects(open('127.0.99.1'), /HTTP 429/)
    assert.equal(await metric(signal, 'deploynet_connections_rejected_total{reason="ip_cap"}'), 1)
    for (const ws of mine) ws.close()
    // The proxy's own health checks are not held to a visitor's limits.
    const { execFileSync: run } = await import('node:child_process')
    const health = run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${port}/health`]).toString()
    assert.equal(health, '200')
  } finally {
    for (const ws of sockets) ws.terminate()
  }
})

test('X-Forwarded-For from anyone but a trusted proxy is ignored', async () => {
  const s = await startServer(['--max-conns-per-ip', '1'])
  try {
    const a = new WebSocket(s.url, { headers: { 'X-Forwarded-For': '203.0.113.1' }, localAddress: '127.0.50.1' })
    await new Promise((resolve, reject) => { a.once('open', resolve); a.once('error', reject) })
    const b = new WebSocket(s.url, { headers: { 'X-Forwarded-For': '203.0.113.2' }, localAddress: '127.0.50.1' })
    const status = await new Promise((resolve) => {
      b.once('unexpected-response', (_req, res) => resolve(res.statusCode))
      b.once('error', () => resolve('error'))
      b.once('open', () => resolve(101))
    })
    assert.notEqual(status, 101)
    a.close()
  } finally {
    await s.stop()
  }
})

test('the shipped nginx configuration serves /metrics to local monitoring only', async () => {
  const { request } = await import('node:https')
  const get = (localAddress) => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', localAddress, rejectUnauthorized: false }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
    req.end()
  })
  const local = await get('127.0.0.1')
  assert.equal(local.status, 200)
  assert.match(local.body, /^deploynet_connections /m)
  assert.equal((await get('127.0.0.2')).status, 403)
})
