// The signaling client (client/src/signal.ts, the bundle the browser runs) against a hostile
// server over real WebSockets: ICE servers are taken from the first frame of a socket only, so a
// frame relayed later (through a compromised cluster link, say) cannot point a visitor at
// another TURN server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { WebSocket, WebSocketServer } from 'ws'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const dir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
globalThis.WebSocket ??= WebSocket
const { SignalClient } = await import(path.join(dir, 'signal.mjs'))

const ice = (host) => JSON.stringify({
  action: 'deploynet',
  ice_servers: [{ urls: [`turn:${host}:3478`], username: '1:x', credential: 'c' }],
  ice_transport_policy: 'all'
})

async function serve (frames) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  wss.on('connection', (ws) => { for (const f of frames) ws.send(f) })
  await new Promise((resolve) => wss.on('listening', resolve))
  return { wss, url: `ws://127.0.0.1:${wss.address().port}/` }
}

async function collect (url, ms = 300) {
  const c = new SignalClient([url], 'x'.repeat(20), 'y'.repeat(20))
  const got = { ice: [], warnings: [] }
  c.on('ice', (i) => got.ice.push(i))
  c.on('warning', (w) => got.warnings.push(w))
  await new Promise((resolve) => setTimeout(resolve, ms))
  c.destroy()
  return got
}

test('ICE servers in the first frame are used; a later deploynet frame is ignored and said so', async () => {
  const first = await serve([ice('turn.site.example'), ice('evil.example')])
  try {
    const got = await collect(first.url)
    assert.equal(got.ice.length, 1)
    assert.deepEqual(got.ice[0].iceServers[0].urls, ['turn:turn.site.example:3478'])
    assert.ok(got.warnings.some((w) => w.startsWith('ERR_SIGNAL_ICE_LATE')), JSON.stringify(got.warnings))
  } finally { first.wss.close() }

  const late = await serve([JSON.stringify({ action: 'announce', interval: 120, info_hash: 'x'.repeat(20) }), ice('evil.example')])
  try {
    const got = await collect(late.url)
    assert.equal(got.ice.length, 0, 'behind another frame: not the server\'s')
    assert.ok(got.warnings.some((w) => w.startsWith('ERR_SIGNAL_ICE_LATE')))
  } finally { late.wss.close() }
})
