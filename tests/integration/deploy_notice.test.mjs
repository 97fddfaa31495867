// Deploy notices: `deploynet notify` signs a site's new deploy with the site's key
// (`deploynet keygen`); the server, started with --site-key for that site, checks it and pushes
// it to the site's open pages (connections whose Origin is the site), and to nobody else.
// Forged, stale, replayed and unknown-site notices are refused with a reason, and counted.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { startServer, startRedis, freePort, waitFor, Client } from './harness.mjs'

const cli = process.env.DEPLOYNET_CLI
const site = 'https://shop.example'
const other = 'https://other.example'
const deployId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
let s
let dir

function run (...args) {
  return spawnSync(cli, args, { encoding: 'utf8' })
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploynet-notice-'))
  assert.equal(run('keygen', path.join(dir, 'site.key')).status, 0)
  assert.equal(run('keygen', path.join(dir, 'intruder.key')).status, 0)
  s = await startServer(['--site-key', `${site}=${path.join(dir, 'site.key.pub')}`])
})
after(async () => {
  await s.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

async function metric (series) {
  const text = await (await fetch(`${s.http}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function post (body) {
  const res = await fetch(`${s.http}/deploy`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, body: await res.json().catch(() => null) }
}

// Notices for a site must come in later seconds than the last one accepted (replays are
// refused): a test that has one accepted waits for the next second first.
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1100))

function signed (key, { origin = site, id = deployId } = {}) {
  const r = run('notify', '--print', '--key', path.join(dir, key), '--origin', origin, '--deploy-id', id)
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('a signed notice reaches the site\'s open pages, and only them', async () => {
  const pages = [await Client.open(s.url, { origin: site }), await Client.open(s.url, { origin: site })]
  const elsewhere = await Client.open(s.url, { origin: other })
  const pushed = pages.map((p) => p.next((m) => m.action === 'deploy'))
  const r = run('notify', '--server', s.url, '--key', path.join(dir, 'site.key'), '--origin', site, '--deploy-id', deployId)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /announced/)
  for (const m of await Promise.all(pushed)) assert.deepEqual(m, { action: 'deploy', origin: site, deploy_id: deployId })
  // The other site's page got nothing: a scrape round trip shows its queue is empty of it.
  let stray = false
  elsewhere.next((m) => m.action === 'deploy', 1500).then(() => { stray = true }, () => {})
  await elsewhere.flush()
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(stray, false)
  assert.equal(await metric('deploynet_deploy_notices_total{result="accepted"}'), 1)
  assert.equal(await metric('deploynet_deploy_pushes_total'), 2)
  for (const c of [...pages, elsewhere]) c.close()
})

test('the notice names its deploy from the site\'s manifest (DIR)', async () => {
  const site2 = path.join(dir, 'dist')
  fs.mkdirSync(site2)
  fs.writeFileSync(path.join(site2, 'index.html'), '<!doctype html><title>x</title>')
  assert.equal(run('publish', site2, '--origin', site).status, 0)
  const manifest = JSON.parse(fs.readFileSync(path.join(site2, 'deploynet.json'), 'utf8'))
  const r = run('notify', site2, '--print', '--key', path.join(dir, 'site.key'), '--origin', site)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).deploy_id, manifest.deploy_id)
})

test('forged, altered, unknown-site, stale, replayed and malformed notices are refused and counted', async () => {
  await nextSecond()
  const page = await Client.open(s.url, { origin: site })
  let pushes = 0
  page.ws.on('message', (d) => { if (String(d).includes('"deploy"')) pushes++ })
  const refusedBefore = (await metric('deploynet_deploy_notices_total{result="refused"}')) ?? 0

  // Signed by another key.
  let r = await post(signed('intruder.key'))
  assert.equal(r.status, 403)
  assert.match(r.body.error, /signature/)
  // This site's signature, another deploy id put in.
  const good = signed('site.key')
  r = await post({ ...good, deploy_id: 'ffffffffffffffffffffffffffffffff' })
  assert.equal(r.status, 403)
  // A site the server has no key for, even well signed by its own key.
  r = await post(signed('intruder.key', { origin: other }))
  assert.equal(r.status, 403)
  assert.match(r.body.error, /no key/)
  // The right key, the time moved: the signature no longer covers it.
  r = await post({ ...good, time: good.time + 1 })
  assert.equal(r.status, 403)
  // Accepted once; the same notice again is a replay.
  r = await post(good)
  assert.equal(r.status, 202, JSON.stringify(r.body))
  r = await post(good)
  assert.equal(r.status, 409)
  assert.match(r.body.error, /replayed/)
  // Malformed.
  for (const bad of ['{', '[]', '{"origin":"javascript:alert(1)"}', JSON.stringify({ ...good, signature: 'AAAA' }),
    JSON.stringify({ ...good, deploy_id: 'XYZ' }), JSON.stringify({ ...good, time: 'soon' })]) {
    r = await post(bad)
    assert.equal(r.status, 400, bad)
    assert.equal(typeof r.body.error, 'string')
  }
  // Too large: the HTTP layer's 4 KiB body limit.
  const big = await fetch(`${s.http}/deploy`, { method: 'POST', body: 'x'.repeat(10000) })
  assert.equal(big.status, 413)

  await page.flush()
  assert.equal(pushes, 1) // the one accepted
  assert.equal(await metric('deploynet_deploy_notices_total{result="refused"}'), refusedBefore + 11)
  page.close()
})

test('a notice far from the server\'s clock is refused (--notice-skew)', async () => {
  const skewed = await startServer(['--site-key', `${site}=${path.join(dir, 'site.key.pub')}`, '--notice-skew', '1'])
  try {
    const n = signed('site.key')
    await new Promise((resolve) => setTimeout(resolve, 2100))
    const res = await fetch(`${skewed.http}/deploy`, { method: 'POST', body: JSON.stringify(n) })
    assert.equal(res.status, 400)
    assert.match((await res.json()).error, /clock/)
  } finally {
    await skewed.stop()
  }
})

test('the server refuses to start with a bad --site-key', async () => {
  fs.writeFileSync(path.join(dir, 'junk.pub'), 'not a key\n')
  for (const arg of [`${site}=${path.join(dir, 'junk.pub')}`, `notanorigin=${path.join(dir, 'site.key.pub')}`, `${site}=/nonexistent`]) {
    await assert.rejects(startServer(['--site-key', arg]), /--site-key/)
  }
})

test('cluster: a notice posted to one node reaches the site\'s pages on the others; one forged in Redis is refused there', async () => {
  const redis = await startRedis(await freePort())
  const key = `${site}=${path.join(dir, 'site.key.pub')}`
  const nodes = []
  try {
    for (const id of [1, 2]) {
      nodes.push(await startServer(['--redis', `redis://127.0.0.1:${redis.port}`, '--node-id', String(id), '--node-ttl', '3', '--site-key', key]))
    }
    const up = async (n) => (await (await fetch(`${n.http}/health`)).json()).cluster?.redis === 'up'
    await waitFor(async () => (await up(nodes[0])) && (await up(nodes[1])), 10_000, 'cluster up')
    const page = await Client.open(nodes[1].url, { origin: site })
    const pushed = page.next((m) => m.action === 'deploy', 10_000)
    const r = run('notify', '--server', nodes[0].url, '--key', path.join(dir, 'site.key'), '--origin', site, '--deploy-id', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')
    assert.equal(r.status, 0, r.stderr)
    assert.equal((await pushed).deploy_id, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')
    // Published straight into Redis, signed by another key: node 2 checks it and refuses it.
    const metricOf = async (n, series) => {
      const line = (await (await fetch(`${n.http}/metrics`)).text()).split('\n').find((l) => l.startsWith(series + ' '))
      return line === undefined ? 0 : Number(line.slice(series.length + 1))
    }
    const refused = await metricOf(nodes[1], 'deploynet_deploy_notices_total{result="refused"}')
    const forged = JSON.stringify(signed('intruder.key', { id: 'cccccccccccccccccccccccccccccccc' }))
    assert.equal(spawnSync('redis-cli', ['-p', String(redis.port), 'PUBLISH', 'deploynet:notices', forged]).status, 0)
    await waitFor(async () => (await metricOf(nodes[1], 'deploynet_deploy_notices_total{result="refused"}')) === refused + 1, 5000, 'the forged notice refused on node 2')
    await page.flush()
    assert.equal(page.messages.filter((m) => m.action === 'deploy').length, 0, 'nothing pushed for the forged notice')
    page.close()
  } finally {
    for (const n of nodes) await n.stop()
    await redis.stop()
  }
})

test('the kill switch by notice: pushed to open pages, told to pages that connect while it holds, lifted by a real deploy', async () => {
  const notify = (...args) => run('notify', '--server', s.url, '--key', path.join(dir, 'site.key'), '--origin', site, ...args)
  const off = { action: 'deploy', origin: site, deploy_id: 'disabled' }
  await nextSecond()
  const open = await Client.open(s.url, { origin: site })
  const pushed = open.next((m) => m.action === 'deploy')
  let r = notify('--disable')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /turned off for https:\/\/shop\.example/)
  assert.deepEqual(await pushed, off)
  // A page that connects while the site is off is told at once, another site's page is not.
  const later = await Client.open(s.url, { origin: site })
  assert.deepEqual(await later.next((m) => m.action === 'deploy', 3000), off)
  const elsewhere = await Client.open(s.url, { origin: other })
  let stray = false
  elsewhere.next((m) => m.action === 'deploy', 1500).then(() => { stray = true }, () => {})
  await elsewhere.flush()
  // A real deploy turns it on again: pages connecting after it are told nothing.
  await nextSecond()
  r = notify('--deploy-id', deployId)
  assert.equal(r.status, 0, r.stderr)
  const after = await Client.open(s.url, { origin: site })
  let told = false
  after.next((m) => m.action === 'deploy', 1500).then(() => { told = true }, () => {})
  await after.flush()
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(told, false)
  assert.equal(stray, false)
  // --disable announces no deploy; the word is not a deploy id of its own.
  assert.equal(notify('--disable', '--deploy-id', deployId).status, 2)
  assert.match(notify('--deploy-id', 'disabled').stderr, /use --disable/)
  for (const c of [open, later, elsewhere, after]) c.close()
})
