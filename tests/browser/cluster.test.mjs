// Cluster mode in the browser: two Chromium visitors, each connected to a different signaling
// node of a 2-node cluster over a real redis-server, find each other and exchange a site's
// assets over WebRTC, the handshake relayed across the nodes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { startServer, startRedis, freePort, metric } from '../integration/harness.mjs'
import { startOrigin, makeSite, visitor, startEngine, fetchAll, waitFor, holdersOf, waitConnected } from './harness.mjs'

const FILES = { '/app.js': 250_000, '/style.css': 30_000, '/img/hero.png': 400_000 }
const PATHS = Object.keys(FILES)
const TOTAL = Object.values(FILES).reduce((a, b) => a + b, 0)

let redis, origin, site, dir
const nodes = []
const visitors = []

before(async () => {
  const port = await freePort()
  redis = await startRedis(port)
  for (const id of [1, 2]) {
    nodes.push(await startServer(['--redis', `redis://127.0.0.1:${port}`, '--node-id', String(id)]))
  }
  for (const n of nodes) {
    await waitFor(async () => (await (await fetch(`${n.http}/health`)).json()).cluster.redis === 'up', 10_000, 'node up')
  }
  dir = fs.mkdtempSync('/tmp/dn-cluster-site-')
  origin = await startOrigin(dir)
  site = makeSite(FILES, origin.url, dir)
})

after(async () => {
  for (const v of visitors) await v.close()
  await origin?.stop()
  for (const n of nodes) await n.stop()
  await redis?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test('visitors on different nodes of a cluster share assets peer to peer', async () => {
  const swarm = 'swarm-cluster-------'
  const a = await visitor('CA')
  visitors.push(a)
  await startEngine(a, origin.url, { signal: [nodes[0].url], swarm, ringWasm: '/deploynet_ring.wasm', firstByteTimeout: 4000 })
  const ra = await fetchAll(a, PATHS)
  assert.deepEqual(ra.hashes, site.contents)
  assert.equal(ra.stats.bytesFromOrigin, TOTAL)

  const b = await visitor('CB')
  visitors.push(b)
  await startEngine(b, origin.url, { signal: [nodes[1].url], swarm, ringWasm: '/deploynet_ring.wasm', firstByteTimeout: 4000 })
  await waitConnected(b, PATHS.length, 1, 'B (node 2) connected to A (node 1)', [a, b])
  const rb = await fetchAll(b, PATHS)
  assert.deepEqual(rb.hashes, site.contents)
  assert.equal(rb.stats.bytesFromPeers, TOTAL)
  assert.equal(rb.stats.bytesFromOrigin, 0)
  assert.deepEqual(origin.log.filter((e) => e.ua.endsWith('visitor-CB') && PATHS.includes(e.path)), [])
  // The handshake crossed the nodes through Redis.
  const crossed = (await metric(nodes[0], 'deploynet_cluster_relays_sent_total')) +
    (await metric(nodes[1], 'deploynet_cluster_relays_sent_total'))
  assert.ok(crossed >= 2, `relays across nodes: ${crossed}`)
})
