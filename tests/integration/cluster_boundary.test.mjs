// Redis as a boundary: a cluster node authenticates to it, claims its node id and refuses what
// other nodes (or anyone who can publish on Redis) send that is not well formed. Real
// redis-server, real nodes; forged messages published with redis-cli.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { startServer, startRedis, freePort, Client, announce, id20, waitFor, metric } from './harness.mjs'

const TTL = 3
const cleanup = []
after(async () => { for (const f of cleanup.reverse()) await f() })

async function health (node) { return (await fetch(`${node.http}/health`)).json() }
const up = async (node) => (await health(node)).cluster?.redis === 'up'

async function redisWith (extra = []) {
  const port = await freePort()
  const r = await startRedis(port, extra)
  cleanup.push(() => r.stop())
  return r
}
async function node (redis, id, extra = [], env = {}) {
  const n = await startServer(['--redis', `redis://127.0.0.1:${redis.port}`, '--node-id', String(id),
    '--node-ttl', String(TTL), ...extra], { env })
  cleanup.push(() => n.stop())
  return n
}
// PUBLISH with a binary-safe payload (redis-cli -x reads the last argument from stdin).
function publish (redis, channel, payload, auth = []) {
  const r = spawnSync('redis-cli', ['-p', String(redis.port), ...auth, '-x', 'PUBLISH', channel], { input: payload })
  assert.equal(r.status, 0, String(r.stderr))
}
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
const id = () => Buffer.from(id20(), 'latin1')

test('a password-protected Redis: the node with the password joins; without it or with another, it stays alone and says why', async () => {
  const redis = await redisWith(['--requirepass', 'cluster-secret'])
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-redis-'))
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'pw'), 'cluster-secret\n')
  const good = await node(redis, 1, ['--redis-password-file', path.join(dir, 'pw')])
  await waitFor(() => up(good), 10_000, 'cluster up with the password')
  const none = await node(redis, 2)
  const wrong = await node(redis, 3, [], { DEPLOYNET_REDIS_PASSWORD: 'guess' })
  for (const n of [none, wrong]) {
    await waitFor(() => /redis refused this node's authentication/.test(n.log()), 10_000, 'refusal logged')
    assert.equal(await up(n), false)
  }
  assert.ok(!good.log().includes('cluster-secret') && !wrong.log().includes('guess'), 'passwords never logged')
  // A password in the URL is refused (it would show in the process list).
  const r = spawnSync(process.env.DEPLOYNET_SIGNAL ?? 'build/test/server/deploynet-signal',
    ['--redis', `redis://u:pw@127.0.0.1:${redis.port}`, '--node-id', '9'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--redis-password-file/)
})

test('a second node with a taken --node-id stays out of the cluster; the first keeps its peers; the id frees when the first stops', async () => {
  const redis = await redisWith()
  const first = await node(redis, 7)
  const other = await node(redis, 8)
  await waitFor(async () => (await up(first)) && (await up(other)), 10_000, 'cluster up')
  const ih = id20()
  const c = await Client.open(first.url)
  c.send(announce(ih, id20(), { event: 'started', numwant: 0 }))
  await c.next((m) => m.interval)
  const seen = async () => {
    const s = await Client.open(other.url)
    s.send({ action: 'scrape', info_hash: ih })
    const f = (await s.next((m) => m.action === 'scrape')).files[ih]
    s.close()
    return f.complete + f.incomplete
  }
  await waitFor(async () => (await seen()) === 1, 10_000, 'node 8 mirrors node 7\'s peer')
  const twin = await node(redis, 7)
  await waitFor(() => /another live node .* has this --node-id/.test(twin.log()), 10_000, 'clash logged')
  assert.equal(await metric(twin, 'deploynet_cluster_node_id_clash'), 1)
  assert.equal(await up(twin), false)
  await new Promise((resolve) => setTimeout(resolve, 2 * TTL * 1000))
  assert.equal(await seen(), 1, 'the first node\'s peer is still seen by the others')
  assert.equal(await up(first), true)
  c.close()
  await first.stop()
  await waitFor(() => up(twin), 20_000, 'the id is free: the second node joins')
  assert.equal(await metric(twin, 'deploynet_cluster_node_id_clash'), 0)
})

test('relays and member records from Redis are checked: nothing reaches a visitor verbatim, junk is counted, mirrors are capped', async () => {
  const redis = await redisWith()
  const n = await node(redis, 11, ['--max-cluster-peers', '5'])
  await waitFor(() => up(n), 10_000, 'cluster up')
  const ih = id20()
  const me = id20()
  const v = await Client.open(n.url)
  v.send(announce(ih, me, { event: 'started', numwant: 0 }))
  await v.next((m) => m.interval)
  const relay = (payload) => Buffer.concat([Buffer.from('O'), Buffer.from(ih, 'latin1'), id(), Buffer.from(me, 'latin1'), id(), Buffer.from(payload)])
  // Not JSON, not UTF-8, not an object: refused.
  publish(redis, 'deploynet:node:11', relay('not json'))
  publish(redis, 'deploynet:node:11', relay(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])))
  publish(redis, 'deploynet:node:11', relay('["offer"]'))
  await waitFor(async () => (await metric(n, 'deploynet_cluster_relays_refused_total')) === 3, 5_000, 'three refused')
  // A whole forged frame (the ICE extension) arrives, if at all, as an offer's description.
  publish(redis, 'deploynet:node:11', relay(JSON.stringify({ action: 'deploynet', ice_servers: [{ urls: ['turn:evil.example'] }] })))
  const got = await v.next((m) => m.offer)
  assert.equal(got.action, 'announce')
  assert.equal(got.info_hash, ih)
  assert.equal(got.offer.action, 'deploynet')
  await v.flush()
  assert.equal(v.messages.filter((m) => m.action === 'deploynet').length, 0)
  assert.equal(v.ws.readyState, 1, 'the visitor\'s socket stays open')

  // Member records: a region of 1 MB and a bad flag are refused; past the cap, refused too.
  // Node 40 looks alive (its key, as a running node keeps it), or this node's liveness check
  // could drop its mirrored peers halfway and let more in.
  const alive = spawnSync('redis-cli', ['-p', String(redis.port), 'SET', 'deploynet:alive:40', 'x', 'EX', '120'])
  assert.equal(alive.status, 0, String(alive.stderr))
  const record = (node, flag, region) => Buffer.concat([Buffer.from('J'), u32(node), Buffer.from(ih, 'latin1'), id(), Buffer.from([flag]), Buffer.alloc(8), Buffer.from(region)])
  publish(redis, 'deploynet:members', record(40, 0, 'x'.repeat(1 << 20)))
  publish(redis, 'deploynet:members', record(40, 7, 'eu'))
  for (let i = 0; i < 8; i++) publish(redis, 'deploynet:members', record(40, 0, 'eu-west'))
  await waitFor(async () => (await metric(n, 'deploynet_cluster_members_refused_total')) === 5, 5_000, 'five refused')
  v.send({ action: 'scrape', info_hash: ih })
  const f = (await v.next((m) => m.action === 'scrape')).files[ih]
  assert.equal(f.complete + f.incomplete, 1 + 5, 'this node\'s visitor and five mirrored peers')
  v.close()
})

test('a peer id live on one node is not taken from another; its holder, proving it, moves its record there', async () => {
  const { createHash } = await import('node:crypto')
  const redis = await redisWith()
  const a = await node(redis, 21)
  const b = await node(redis, 22)
  await waitFor(async () => (await up(a)) && (await up(b)), 10_000, 'cluster up')
  // The browser client's scheme: 8 characters, then base64url(SHA-256(proof)) cut to 12.
  const proof = 'secret-of-the-visitor'
  const peerId = '-DN0001-' + createHash('sha256').update(proof).digest('base64url').slice(0, 12)
  const ih = id20()
  const owner = await Client.open(a.url)
  owner.send(announce(ih, peerId, { event: 'started', numwant: 0, peer_proof: proof }))
  await owner.next((m) => m.interval)
  const joinB = async (extra) => {
    const c = await Client.open(b.url)
    c.send(announce(ih, peerId, { event: 'started', numwant: 0, ...extra }))
    const reply = await c.next((m) => m.interval || m['failure reason'])
    return { c, reply }
  }
  // Until node 22 mirrors it, an announce would simply create the record: wait for the mirror.
  await waitFor(async () => {
    const s = await Client.open(b.url)
    s.send({ action: 'scrape', info_hash: ih })
    const f = (await s.next((m) => m.action === 'scrape')).files[ih]
    s.close()
    return f.complete + f.incomplete === 1
  }, 10_000, 'node 22 mirrors the peer')
  for (const extra of [{}, { peer_proof: 'a-guess' }]) {
    const { c, reply } = await joinB(extra)
    assert.match(String(reply['failure reason']), /peer_id already in use/, JSON.stringify(extra))
    c.close()
  }
  // Offers for the id still reach its owner on node 21.
  const asker = await Client.open(b.url)
  asker.send(announce(ih, id20(), { event: 'started', numwant: 1, offers: [{ offer_id: id20(), offer: { type: 'offer', sdp: 'v=0 x' }, to_peer_id: peerId }] }))
  const got = await owner.next((m) => m.offer)
  assert.equal(got.offer.sdp, 'v=0 x')
  asker.close()
  // The owner itself fails over to node 22 with its proof: accepted at once.
  const moved = await joinB({ peer_proof: proof })
  assert.equal(typeof moved.reply.interval, 'number', JSON.stringify(moved.reply))
  moved.c.close()
  owner.close()
})
