// DeployNet's `report` extension: visitors' byte counts summed per site in /metrics, believed only
// from members of the swarm, only for the site that owns the swarm id and that the socket's
// Origin header names, each page view counted once across reconnects and bounded by what it can
// have loaded; the site table evicts the least recent; the whole /metrics output passes
// Prometheus' own checker (promtool, Debian's prometheus package).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { startServer, Client, announce, id20 } from './harness.mjs'

// The browser client's swarm id for a site: base64 of the first 15 bytes of SHA-256(origin).
const swarmOf = (origin) => createHash('sha256').update(origin).digest().subarray(0, 15).toString('base64')

let s
before(async () => { s = await startServer() })
after(async () => { await s.stop() })

async function metrics () { return (await fetch(`${s.http}/metrics`)).text() }
function value (text, series) {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

test('reports are summed per site from what grew since each visitor\'s last report', async () => {
  const site = 'https://shop.example'
  const ih = swarmOf(site)
  const visitors = []
  for (let i = 0; i < 2; i++) {
    const c = await Client.open(s.url, { origin: site })
    const id = id20()
    c.send(announce(ih, id, { event: 'started' }))
    await c.next((m) => m.interval)
    visitors.push({ c, id })
  }
  const report = (v, counts) => v.c.send({ action: 'report', info_hash: ih, peer_id: v.id, origin: site, ...counts })
  report(visitors[0], { from_peers: 1000, from_origin: 300, from_cache: 50, uploaded: 0 })
  report(visitors[0], { from_peers: 1500, from_origin: 300, from_cache: 50, uploaded: 10 }) // +500 peers, +10 up
  report(visitors[0], { from_peers: 1200, from_origin: 300, from_cache: 50, uploaded: 10 }) // never goes back
  report(visitors[1], { from_peers: 0, from_origin: 700, uploaded: 1500 })
  for (const v of visitors) await v.c.flush()
  const text = await metrics()
  const l = `site="${site}"`
  assert.equal(value(text, `deploynet_site_bytes_total{${l},source="peers"}`), 1500)
  assert.equal(value(text, `deploynet_site_bytes_total{${l},source="origin"}`), 1000)
  assert.equal(value(text, `deploynet_site_bytes_total{${l},source="cache"}`), 50)
  assert.equal(value(text, `deploynet_site_uploaded_bytes_total{${l}}`), 1510)
  assert.equal(value(text, `deploynet_site_offload_ratio{${l}}`), 0.6)
  assert.equal(value(text, `deploynet_site_reports_total{${l}}`), 4)
  assert.equal(value(text, 'deploynet_messages_received_total{type="report"}'), 4)

  // Visitor 0's page reconnects (a new socket, the same page view): it goes on from its last
  // counts instead of being counted again.
  visitors[0].c.close()
  await visitors[0].c.closed
  const again = { c: await Client.open(s.url, { origin: site }), id: visitors[0].id }
  // Its old socket's leave may still be on its way: the id is free once it is.
  for (let joined = false; !joined;) {
    again.c.send(announce(ih, again.id, { event: 'started' }))
    joined = (await again.c.next((m) => m.interval || m['failure reason'])).interval !== undefined
    if (!joined) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  report(again, { from_peers: 1500, from_origin: 300, from_cache: 50, uploaded: 10 })
  report(again, { from_peers: 2000, from_origin: 300, from_cache: 50, uploaded: 10 }) // +500
  await again.c.flush()
  const after = await metrics()
  assert.equal(value(after, `deploynet_site_bytes_total{${l},source="peers"}`), 2000)
  assert.equal(value(after, `deploynet_site_bytes_total{${l},source="origin"}`), 1000)
  assert.equal(value(after, `deploynet_site_reports_total{${l}}`), 6)
  again.c.close()
  visitors[1].c.close()
})

test('a report for another site than the socket\'s Origin is refused; a view\'s counts are cut at what it can have loaded', async () => {
  const site = 'https://victim.example'
  const ih = swarmOf(site)
  const before = await metrics()
  // Swarm ids are public: a page of another site (or a socket with no Origin) can join the
  // swarm, but not speak for the site.
  for (const origin of ['https://attacker.example', undefined]) {
    const c = await Client.open(s.url, origin ? { origin } : {})
    const id = id20()
    c.send(announce(ih, id, { event: 'started' }))
    await c.next((m) => m.interval)
    c.send({ action: 'report', info_hash: ih, peer_id: id, origin: site, from_peers: 480 * 2 ** 30 })
    const reply = await c.next((m) => m['failure reason'])
    assert.match(reply['failure reason'], /not the connection's Origin/)
    assert.equal(reply.action, 'report')
    c.close()
  }
  const refused = await metrics()
  assert.equal(value(refused, `deploynet_site_bytes_total{site="${site}",source="peers"}`), undefined)
  assert.equal(value(refused, 'deploynet_reports_refused_total') - (value(before, 'deploynet_reports_refused_total') ?? 0), 2)

  // A socket that does carry the site's Origin (a script can send any header) still cannot
  // claim more than a page view can load: 256 MiB at once, then 1 Gbit/s of its age.
  const c = await Client.open(s.url, { origin: site })
  const id = id20()
  c.send(announce(ih, id, { event: 'started' }))
  await c.next((m) => m.interval)
  c.send({ action: 'report', info_hash: ih, peer_id: id, origin: site, from_peers: 480 * 2 ** 30, from_origin: 1000 })
  await c.flush()
  const cut = await metrics()
  assert.equal(value(cut, `deploynet_site_bytes_total{site="${site}",source="peers"}`), 256 * 2 ** 20)
  assert.equal(value(cut, `deploynet_site_bytes_total{site="${site}",source="origin"}`), 1000)
  assert.equal(value(cut, 'deploynet_site_reports_clamped_total') - (value(before, 'deploynet_site_reports_clamped_total') ?? 0), 1)
  c.close()
})

test('a full site table makes room by dropping the site reported least recently, and says so', async () => {
  const small = await startServer(['--max-sites', '2'])
  try {
    const sites = ['https://a.example', 'https://b.example', 'https://c.example']
    const send = async (site, n) => {
      const c = await Client.open(small.url, { origin: site })
      const id = id20()
      c.send(announce(swarmOf(site), id, { event: 'started' }))
      await c.next((m) => m.interval)
      c.send({ action: 'report', info_hash: swarmOf(site), peer_id: id, origin: site, from_peers: n })
      await c.flush()
      c.close()
    }
    await send(sites[0], 1)
    await send(sites[1], 2)
    await send(sites[0], 3) // a.example is now the more recent
    await send(sites[2], 4) // b.example makes room
    const text = await (await fetch(`${small.http}/metrics`)).text()
    const peers = (site) => value(text, `deploynet_site_bytes_total{site="${site}",source="peers"}`)
    assert.equal(peers(sites[0]), 4)
    assert.equal(peers(sites[1]), undefined)
    assert.equal(peers(sites[2]), 4)
    assert.equal(value(text, 'deploynet_site_evicted_total'), 1)
  } finally {
    await small.stop()
  }
})

test('/metrics with a token: refused without it or with another, served with it', async () => {
  const token = 'metrics-' + id20()
  const guarded = await startServer([], { env: { DEPLOYNET_METRICS_TOKEN: token } })
  try {
    const get = (auth) => fetch(`${guarded.http}/metrics`, auth ? { headers: { authorization: auth } } : {})
    const none = await get()
    assert.equal(none.status, 401)
    assert.match(none.headers.get('www-authenticate'), /^Bearer/)
    assert.equal((await get(`Bearer ${token}x`)).status, 401)
    assert.equal((await get(`Basic ${token}`)).status, 401)
    const ok = await get(`Bearer ${token}`)
    assert.equal(ok.status, 200)
    assert.match(await ok.text(), /deploynet_connections/)
    assert.equal((await fetch(`${guarded.http}/health`)).status, 200, '/health stays open')
    assert.ok(!guarded.log().includes(token), 'the token never reaches the log')
  } finally {
    await guarded.stop()
  }
})

test('reports from non-members, for a site that does not own the swarm, or malformed are refused', async () => {
  const site = 'https://blog.example'
  const ih = swarmOf(site)
  const c = await Client.open(s.url, { origin: site })
  const id = id20()
  c.send({ action: 'report', info_hash: ih, peer_id: id, origin: site, from_peers: 5 })
  assert.match((await c.next((m) => m['failure reason']))['failure reason'], /announce in this swarm first/)
  c.send(announce(ih, id, { event: 'started' }))
  await c.next((m) => m.interval)
  c.send({ action: 'report', info_hash: ih, peer_id: id, origin: 'https://other.example', from_peers: 5 })
  assert.match((await c.next((m) => m['failure reason']))['failure reason'], /origin does not own this swarm/)
  for (const bad of [{ from_peers: -1 }, { from_peers: 1.5 }, { from_peers: 2 ** 60 }, { from_origin: '9' }, { origin: 'javascript:alert(1)' }, { origin: 'https://x.example/path' }]) {
    c.send({ action: 'report', info_hash: ih, peer_id: id, origin: site, ...bad })
    const reply = await c.next((m) => m['failure reason'])
    assert.equal(reply.action, 'report')
  }
  await c.flush()
  const text = await metrics()
  assert.equal(value(text, `deploynet_site_bytes_total{site="${site}",source="peers"}`), undefined)
  c.close()
})

test('promtool accepts the whole /metrics output', async () => {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: await metrics(), encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('the shipped Grafana dashboard only charts metrics the server exports', async () => {
  const fs = await import('node:fs')
  const path = await import('node:path')
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
  const dash = JSON.parse(fs.readFileSync(path.join(root, 'deploy/grafana-deploynet.json'), 'utf8'))
  // A cluster node exports everything (cluster series included); a report makes site series.
  const { startRedis, freePort, waitFor } = await import('./harness.mjs')
  const redis = await startRedis(await freePort())
  const node = await startServer(['--redis', `redis://127.0.0.1:${redis.port}`, '--node-id', '1'])
  try {
    await waitFor(async () => /deploynet_cluster_up 1/.test(await (await fetch(`${node.http}/metrics`)).text()), 10_000, 'cluster up')
    const site = 'https://dash.example'
    const c = await Client.open(node.url, { origin: site })
    const id = id20()
    c.send(announce(swarmOf(site), id, { event: 'started' }))
    await c.next((m) => m.interval)
    c.send({ action: 'report', info_hash: swarmOf(site), peer_id: id, origin: site, from_peers: 1 })
    await c.flush()
    const text = await (await fetch(`${node.http}/metrics`)).text()
    const exported = new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]))
    let exprs = 0
    for (const p of dash.panels) {
      assert.ok(p.targets.length > 0, p.title)
      for (const t of p.targets) {
        exprs++
        const names = t.expr.match(/deploynet_[a-z_]+/g)
        assert.ok(names, t.expr)
        for (const n of names) assert.ok(exported.has(n), `${p.title}: ${n} is not exported`)
      }
    }
    assert.ok(exprs >= 10)
    c.close()
  } finally {
    await node.stop()
    await redis.stop()
  }
})
