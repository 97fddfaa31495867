// Cluster mode over a real redis-server: three deploynet-signal nodes on one Redis, clients on
// different nodes in one swarm. Relay, scrape, route, a node killed, Redis stopped and started.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { startServer, startRedis, freePort, Client, announce, offer, id20, waitFor, metric } from './harness.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const { Ring, loadRingModule } = await import(path.join(clientDir, 'ring.mjs'))
const wasm = await loadRingModule(fs.readFileSync(path.join(clientDir, 'deploynet_ring.wasm')))
const TTL = 3 // --node-ttl of the test nodes, seconds

async function health (node) {
  return (await fetch(`${node.http}/health`)).json()
}

let redisPort, redis
const nodes = []

async function startNode (id) {
  return startServer(['--redis', `redis://127.0.0.1:${redisPort}`, '--node-id', String(id),
    '--node-ttl', String(TTL)])
}

before(async () => {
  redisPort = await freePort()
  redis = await startRedis(redisPort)
  for (let i = 1; i <= 3; i++) nodes.push(await startNode(i))
  for (const n of nodes) await waitFor(async () => (await health(n)).cluster?.redis === 'up', 10_000, 'cluster up')
})

after(async () => {
  for (const n of nodes) await n.stop()
  await redis?.stop()
})

async function join (node, ih, extra = {}) {
  const c = await Client.open(node.url)
  const id = id20(true)
  c.send(announce(ih, id, { event: 'started', numwant: 0, ...extra }))
  const reply = await c.next(m => m.complete !== undefined && m.info_hash === ih)
  return { c, id, reply }
}

async function scrape (node, ih) {
  const c = await Client.open(node.url)
  c.send({ action: 'scrape', info_hash: ih })
  const reply = await c.next(m => m.action === 'scrape')
  c.close()
  return reply.files[ih]
}

// Until every node counts `want` peers in the swarm.
async function converged (ih, want, on = nodes) {
  for (const n of on) {
    await waitFor(async () => {
      const f = await scrape(n, ih)
      return f.complete + f.incomplete === want
    }, 10_000, `node sees ${want} peers`)
  }
}

test('an offer from a peer on one node reaches a peer on another, and its answer comes back', async () => {
  const ih = id20()
  const a = await join(nodes[0], ih)
  await converged(ih, 1)
  const b = await Client.open(nodes[1].url)
  const bId = id20(true)
  const o = offer(1)
  b.send(announce(ih, bId, { event: 'started', numwant: 1, offers: [o] }))
  const got = await a.c.next(m => m.offer)
  assert.equal(got.peer_id, bId)
  assert.equal(got.offer_id, o.offer_id)
  assert.deepEqual(got.offer, o.offer)
  a.c.send(announce(ih, a.id, { to_peer_id: bId, offer_id: o.offer_id, answer: { type: 'answer', sdp: 'v=0 answer' } }))
  const ans = await b.next(m => m.answer)
  assert.equal(ans.peer_id, a.id)
  assert.equal(ans.offer_id, o.offer_id)
  assert.deepEqual(ans.answer, { type: 'answer', sdp: 'v=0 answer' })
  // An answer to an offer the peer never received is refused on its own node, as on one node.
  a.c.send(announce(ih, a.id, { to_peer_id: bId, offer_id: id20(), answer: { type: 'answer', sdp: 'forged' } }))
  await a.c.flush()
  await b.flush()
  assert.equal(b.messages.filter(m => m.answer).length, 0)
  assert.ok(await metric(nodes[1], 'deploynet_cluster_relays_sent_total') >= 1)
  assert.ok(await metric(nodes[0], 'deploynet_cluster_relays_received_total') >= 1)
  a.c.close()
  b.close()
})

test('scrape counts and announce replies are cluster-wide', async () => {
  const ih = id20()
  const peers = [await join(nodes[0], ih, { left: 0 }), await join(nodes[1], ih), await join(nodes[2], ih), await join(nodes[2], ih)]
  await converged(ih, 4)
  for (const n of nodes) assert.deepEqual(await scrape(n, ih), { complete: 1, incomplete: 3, downloaded: 1 })
  const late = await join(nodes[1], ih)
  assert.equal(late.reply.complete, 1)
  assert.equal(late.reply.incomplete, 4) // the three others and itself
  await converged(ih, 5)
  // A peer that leaves is gone everywhere.
  peers[2].c.close()
  await converged(ih, 4)
  for (const p of [...peers, late]) p.c.close()
  await converged(ih, 0)
})

test('route answers are the same cluster-wide ring whichever node answers; targeted offers cross nodes', async () => {
  const ih = id20()
  const peers = []
  for (let i = 0; i < 6; i++) peers.push(await join(nodes[i % 3], ih))
  await converged(ih, 6)
  const ids = ['/index.html', '/app.js', '/style.css', '/logo.png'].map(s => createHash('sha256').update(s).digest('hex'))
  const ring = new Ring(wasm)
  for (const p of peers) ring.add(p.id)
  for (const asker of [peers[0], peers[4]]) { // on node 1 and on node 2
    asker.c.send({ action: 'route', info_hash: ih, peer_id: asker.id, content_ids: ids, k: 2 })
    const reply = await asker.c.next(m => m.action === 'route')
    assert.equal(reply.peers, 6)
    assert.deepEqual(reply.routes.map(r => r.peers), ring.assign(ids, 2, { exclude: asker.id }))
  }
  ring.destroy()
  // A targeted offer from node 1 to the peer on node 3.
  const o = offer(7)
  peers[0].c.send(announce(ih, peers[0].id, { numwant: 1, offers: [{ ...o, to_peer_id: peers[5].id }] }))
  const got = await peers[5].c.next(m => m.offer)
  assert.equal(got.offer_id, o.offer_id)
  for (const p of peers) p.c.close()
})

test('a killed node: the others drop its peers after the TTL; they reconnect elsewhere and are found again', async () => {
  const ih = id20()
  const stay = await join(nodes[0], ih)
  const doomed = nodes[2]
  const lost = await join(doomed, ih)
  await converged(ih, 2, nodes.slice(0, 2))
  doomed.proc.kill('SIGKILL')
  await doomed.exited
  const killedAt = Date.now()
  await converged(ih, 1, nodes.slice(0, 2))
  const took = Date.now() - killedAt
  assert.ok(took < (TTL * 2 + 3) * 1000, `dropped after ${took} ms`)
  assert.ok(await metric(nodes[0], 'deploynet_cluster_nodes_expired_total') >= 1)
  // The visitor's client fails over to another node with the same peer id and is offered to.
  const back = await Client.open(nodes[1].url)
  back.send(announce(ih, lost.id, { event: 'started', numwant: 0 }))
  await back.next(m => m.complete !== undefined)
  await converged(ih, 2, nodes.slice(0, 2))
  const o = offer(9)
  stay.c.send(announce(ih, stay.id, { numwant: 1, offers: [{ ...o, to_peer_id: lost.id }] }))
  assert.equal((await back.next(m => m.offer)).offer_id, o.offer_id)
  stay.c.close()
  back.close()
  nodes[2] = await startNode(3) // the restarted node rejoins the cluster
  await waitFor(async () => (await health(nodes[2])).cluster?.redis === 'up', 10_000, 'node 3 back')
  await converged(ih, 0)
})

test('Redis stopped: nodes serve their own peers (local mode, in /health and /metrics); Redis back: resync', async () => {
  const ih = id20()
  const a = await join(nodes[0], ih)
  const b = await join(nodes[1], ih)
  await converged(ih, 2)
  await redis.stop()
  for (const n of nodes) {
    await waitFor(async () => (await health(n)).cluster.mode === 'local', 10_000, 'local mode')
    assert.equal(await metric(n, 'deploynet_cluster_up'), 0)
  }
  // Each node now counts only its own peers and still relays between them.
  assert.equal((await scrape(nodes[0], ih)).incomplete, 1)
  const a2 = await join(nodes[0], ih)
  const o = offer(3)
  a2.c.send(announce(ih, a2.id, { numwant: 5, offers: [o] }))
  assert.equal((await a.c.next(m => m.offer)).offer_id, o.offer_id)
  // Redis returns (empty: it kept nothing): every node publishes its peers again.
  redis = await startRedis(redisPort)
  for (const n of nodes) await waitFor(async () => (await health(n)).cluster.redis === 'up', 15_000, 'redis up again')
  await converged(ih, 3)
  assert.ok(await metric(nodes[1], 'deploynet_cluster_resyncs_total') >= 2)
  for (const n of nodes) assert.equal((await health(n)).status, 'ok')
  for (const p of [a, b, a2]) p.c.close()
})

test('cluster flags are checked', async () => {
  const { spawnSync } = await import('node:child_process')
  const { signalBinary } = await import('./harness.mjs')
  const run = (...args) => spawnSync(signalBinary, args, { encoding: 'utf8' })
  let r = run('--redis', 'redis://127.0.0.1:6379')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--node-id/)
  r = run('--redis', 'http://x', '--node-id', '1')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--redis: expected redis:\/\//)
  r = run('--node-id', '4')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /only with --redis/)
})

test('promtool accepts a cluster node\'s /metrics', async () => {
  const { spawnSync } = await import('node:child_process')
  const text = await (await fetch(`${nodes[0].http}/metrics`)).text()
  assert.match(text, /^deploynet_cluster_up 1$/m)
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})
