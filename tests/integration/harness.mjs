// Test harness: runs the real deploynet-signal binary on a free loopback port and talks to it
// over real WebSockets. No fixed ports, no sleeps: every wait is for an event, with a deadline.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import WebSocket from 'ws'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const signalBinary =
  process.env.DEPLOYNET_SIGNAL || path.join(root, 'build/test/server/deploynet-signal')

export function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    })
  ])
}

export async function startServer (args = [], { env = {}, listenPort = 0 } = {}) {
  const proc = spawn(signalBinary, ['--listen', `127.0.0.1:${listenPort}`, ...args], {
    stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...env }
  })
  let log = ''
  const exited = new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
  const port = await withTimeout(new Promise((resolve, reject) => {
    proc.stderr.on('data', chunk => {
      log += chunk
      const m = /msg=listening addr=[\d.]+:(\d+)/.exec(log)
      if (m) resolve(Number(m[1]))
    })
    exited.then(({ code }) => reject(new Error(`server exited with ${code}: ${log}`)))
  }), 10000, 'server start')
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    http: `http://127.0.0.1:${port}`,
    proc,
    exited,
    log: () => log,
    async stop () {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      return exited
    }
  }
}

// Polls `fn` until it returns something truthy (that value), or fails after `ms`.
export async function waitFor (fn, ms = 10_000, what = 'condition') {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export async function metric (server, name) {
  const text = await (await fetch(`${server.http}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(name + ' '))
  if (!line) throw new Error(`metric ${name} not found`)
  return Number(line.slice(name.length + 1))
}

export async function waitForMetric (server, name, predicate, ms = 5000) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await metric(server, name)
    if (predicate(v)) return v
    if (Date.now() > deadline) throw new Error(`metric ${name} stayed at ${v}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

// A 20-character id. ASCII by default; `binary` gives arbitrary bytes 0..255, as WebTorrent
// sends its hex ids turned into binary strings.
export function id20 (binary = false) {
  const bytes = randomBytes(20)
  if (binary) return String.fromCharCode(...bytes)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  return Array.from(bytes, b => alphabet[b % alphabet.length]).join('')
}

// A WebSocket client that queues every message, so tests can await the next one that matches.
export class Client {
  static async open (url, opts = {}) {
    const c = new Client(new WebSocket(url, opts))
    await withTimeout(new Promise((resolve, reject) => {
      c.ws.once('open', resolve)
      c.ws.once('error', reject)
      c.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    }), 5000, 'websocket open')
    return c
  }

  constructor (ws) {
    this.ws = ws
    this.messages = []
    this.waiters = []
    this.closed = new Promise(resolve => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })))
    ws.on('error', () => {})
    ws.on('message', data => {
      const msg = JSON.parse(String(data))
      this.messages.push(msg)
      this._wake()
    })
  }

  _wake () {
    for (const w of [...this.waiters]) {
      const i = this.messages.findIndex(w.predicate)
      if (i >= 0) {
        const [msg] = this.messages.splice(i, 1)
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve(msg)
      }
    }
  }

  send (obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)) }

  next (predicate = () => true, ms = 5000) {
    return withTimeout(new Promise(resolve => {
      this.waiters.push({ predicate, resolve })
      this._wake()
    }), ms, 'message')
  }

  // A scrape round trip: every message the server queued to this socket before it is here
  // by the time the reply arrives (one connection, one ordered queue).
  async flush () {
    this.send({ action: 'scrape', info_hash: 'flush-flush-flush-fl' })
    await this.next(m => m.action === 'scrape' && m.files && m.files['flush-flush-flush-fl'])
  }

  close () { this.ws.close() }
}

export function announce (infoHash, peerId, extra = {}) {
  return { action: 'announce', info_hash: infoHash, peer_id: peerId, ...extra }
}

export function offer (n, offerId = id20()) {
  return { offer_id: offerId, offer: { type: 'offer', sdp: `v=0\r\no=- ${n} 2 IN IP4 127.0.0.1\r\n` } }
}

export async function freePort () {
  const srv = net.createServer()
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address()
  await new Promise(resolve => srv.close(resolve))
  return port
}

// A real redis-server on a free loopback port, no persistence; stopped by PID.
export async function startRedis (port, extra = []) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--protected-mode', 'yes', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const exited = new Promise(resolve => proc.on('exit', resolve))
  await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', chunk => {
      log += chunk
      if (/Ready to accept connections/.test(log)) resolve()
    })
    exited.then(code => reject(new Error(`redis-server exited with ${code}: ${log}`)))
  }), 10_000, 'redis-server start')
  return { proc, port, async stop () { proc.kill('SIGTERM'); await exited } }
}


// A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem), for TLS proxies.
export function selfSignedCert (dir) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' })
  return { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }
}

// A real nginx running `conf` (written to dir/nginx.conf) until it listens on `port`; stopped
// by PID.
export async function startNginx (dir, port, conf) {
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf)
  const proc = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  await waitFor(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  }), 10_000, 'nginx listening')
  return { proc, async stop () { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited } }
}

// A wss:// connection through a TLS proxy on `port` (self-signed), from `localAddress`.
export function openWss (port, localAddress, headers = {}) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { rejectUnauthorized: false, localAddress, headers })
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  }), 20_000, `wss open from ${localAddress}`)
}
