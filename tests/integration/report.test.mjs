// DeployNet's `report` extension: visitors' byte counts summed per site in /metrics, believed only
// from members of the swarm and only for the site that owns the swarm id; the whole /metrics
// output passes Prometheus' own checker (promtool, Debian's prometheus package).
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
    const c = await Client.open(s.url)
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
  for (const v of visitors) v.c.close()
})

test('reports from non-members, for a site that does not own the swarm, or malformed are refused', async () => {
  const site = 'https://blog.example'
  const ih = swarmOf(site)
  const c = await Client.open(s.url)
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
    const c = await Client.open(node.url)
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
