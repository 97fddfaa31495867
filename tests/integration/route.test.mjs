// DeployNet's routing extension over real sockets: route requests answered from each swarm's
// ring (the same answer the browser's WebAssembly ring computes), and offers targeted at a
// named peer.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { startServer, Client, announce, offer, id20, metric } from './harness.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const { Ring, loadRingModule } = await import(path.join(clientDir, 'ring.mjs'))
const wasm = await loadRingModule(fs.readFileSync(path.join(clientDir, 'deploynet_ring.wasm')))

const contentId = (s) => createHash('sha256').update(s).digest('hex')

let server
before(async () => { server = await startServer() })
after(async () => { await server.stop() })

async function swarmOf (n, ih, extra = () => ({})) {
  const peers = []
  for (let i = 0; i < n; i++) {
    const c = await Client.open(server.url)
    const id = id20()
    c.send(announce(ih, id, { event: 'started', ...extra(i) }))
    await c.next(m => m.complete !== undefined)
    peers.push({ c, id })
  }
  return peers
}

test('a route request names the responsible peers: the server and the WASM ring agree', async () => {
  const ih = id20()
  const peers = await swarmOf(7, ih)
  const ids = ['/index.html', '/app.js', '/style.css', '/logo.png'].map(contentId)
  const me = peers[3]
  me.c.send({ action: 'route', info_hash: ih, peer_id: me.id, content_ids: ids, k: 2 })
  const reply = await me.c.next(m => m.action === 'route')
  assert.equal(reply.info_hash, ih)
  assert.equal(reply.peers, 7)
  assert.deepEqual(reply.routes.map(r => r.content_id), ids)

  const ring = new Ring(wasm)
  for (const p of peers) ring.add(p.id)
  const expected = ring.assign(ids, 2, { exclude: me.id })
  assert.deepEqual(reply.routes.map(r => r.peers), expected)
  for (const r of reply.routes) assert.ok(!r.peers.includes(me.id))

  // A peer that leaves is no longer named; the others' assignments follow the ring.
  const gone = reply.routes[0].peers[0]
  peers.find(p => p.id === gone).c.close()
  ring.remove(gone)
  await new Promise(resolve => setTimeout(resolve, 100))
  me.c.send({ action: 'route', info_hash: ih, peer_id: me.id, content_ids: ids, k: 2 })
  const after = await me.c.next(m => m.action === 'route')
  assert.equal(after.peers, 6)
  assert.deepEqual(after.routes.map(r => r.peers), ring.assign(ids, 2, { exclude: me.id }))
  ring.destroy()
  for (const p of peers) p.c.close()
})

test('an offer with to_peer_id reaches exactly that peer, and its answer comes back', async () => {
  const ih = id20()
  const peers = await swarmOf(5, ih)
  const before = await metric(server, 'deploynet_offers_targeted_total')
  const [a, target] = [peers[0], peers[4]]
  const o = { ...offer(1), to_peer_id: target.id }
  a.c.send(announce(ih, a.id, { offers: [o] }))
  await a.c.next(m => m.complete !== undefined) // this announce's own reply, out of the way
  const got = await target.c.next(m => m.offer)
  assert.equal(got.peer_id, a.id)
  assert.equal(got.offer_id, o.offer_id)
  for (const p of peers.slice(1, 4)) {
    await p.c.flush()
    assert.equal(p.c.messages.filter(m => m.offer).length, 0)
  }
  const answer = { type: 'answer', sdp: 'v=0\r\n' }
  target.c.send(announce(ih, target.id, { to_peer_id: a.id, offer_id: o.offer_id, answer }))
  const relayed = await a.c.next(m => m.answer)
  assert.deepEqual(relayed.answer, answer)
  assert.equal(await metric(server, 'deploynet_offers_targeted_total'), before + 1)

  // A target that is not in the swarm: dropped and counted, the announce still answered.
  const absent = await metric(server, 'deploynet_dropped_total{reason="offer_target_absent"}')
  a.c.send(announce(ih, a.id, { offers: [{ ...offer(2), to_peer_id: id20() }] }))
  await a.c.next(m => m.complete !== undefined)
  assert.equal(await metric(server, 'deploynet_dropped_total{reason="offer_target_absent"}'), absent + 1)
  for (const p of peers) p.c.close()
})

test('region hints: the asker is routed to its own region first', async () => {
  const ih = id20()
  const peers = await swarmOf(9, ih, i => ({ region: i < 3 ? 'eu-west' : 'us-east' }))
  const me = peers[0]
  const ids = Array.from({ length: 12 }, (_, i) => contentId(`asset-${i}`))
  me.c.send({ action: 'route', info_hash: ih, peer_id: me.id, content_ids: ids, k: 3 })
  const reply = await me.c.next(m => m.action === 'route')
  const eu = new Set([peers[1].id, peers[2].id])
  for (const r of reply.routes) {
    assert.equal(r.peers.length, 3)
    assert.deepEqual(new Set(r.peers.slice(0, 2)), eu)
    assert.ok(!eu.has(r.peers[2]))
  }
  for (const p of peers) p.c.close()
})

test('bad route requests get a failure reply and the connection goes on', async () => {
  const ih = id20()
  const c = await Client.open(server.url)
  const me = id20()
  const id = contentId('x')
  c.send({ action: 'route', info_hash: ih, peer_id: me, content_ids: [id] })
  let r = await c.next()
  assert.equal(r.action, 'route')
  assert.match(r['failure reason'], /announce in this swarm first/)
  c.send(announce(ih, me, { event: 'started' }))
  await c.next(m => m.complete !== undefined)
  for (const bad of [{ content_ids: [] }, { content_ids: ['zz'] }, { content_ids: [id], k: 99 },
    { content_ids: Array(257).fill(id) }]) {
    c.send({ action: 'route', info_hash: ih, peer_id: me, ...bad })
    r = await c.next()
    assert.equal(r.action, 'route')
    assert.ok(r['failure reason'], JSON.stringify(bad).slice(0, 60))
  }
  c.send({ action: 'announce', info_hash: ih, peer_id: me, region: 'not a region!' })
  r = await c.next()
  assert.match(r['failure reason'], /invalid region/)
  // Alone in the swarm: an empty answer, not an error.
  c.send({ action: 'route', info_hash: ih, peer_id: me, content_ids: [id] })
  r = await c.next()
  assert.deepEqual(r.routes, [{ content_id: id, peers: [] }])
  c.close()
})
