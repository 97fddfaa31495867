// A deploy while the site is open: `deploynet notify` (signed with the site's key) reaches three
// open pages through the signaling server; they fetch the new manifest, one of them takes each
// changed file from the origin and the others take it from peers; an open page keeps serving
// its own version; the next navigation gets the new files with no origin request for them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { startServer } from '../integration/harness.mjs'
import { startOrigin, makeSite, publish, visitor, startEngine, fetchAll, waitFor, waitConnected, sha256 } from './harness.mjs'

const cli = process.env.DEPLOYNET_CLI
const FILES = { '/app.js': 300_000, '/style.css': 40_000, '/img/hero.png': 500_000 }
const PATHS = Object.keys(FILES)

let signal, origin, site, dir, keyDir
const visitors = []

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-deploy-site-'))
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-deploy-key-'))
  origin = await startOrigin(dir)
  site = makeSite(FILES, origin.url, dir)
  assert.equal(spawnSync(cli, ['keygen', path.join(keyDir, 'site.key')]).status, 0)
  signal = await startServer(['--site-key', `${origin.url}=${path.join(keyDir, 'site.key.pub')}`])
})
after(async () => {
  for (const v of visitors) await v.close()
  await origin?.stop()
  await signal?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
  fs.rmSync(keyDir, { recursive: true, force: true })
})

const manifestOf = () => JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))

test('a deploy reaches open pages, spreads among them, and the next navigation needs no origin request for it', async () => {
  const swarm = 'swarm-deploy-open-tabs'.slice(0, 20)
  for (const name of ['DA', 'DB', 'DC']) {
    const v = await visitor(name)
    visitors.push(v)
    await startEngine(v, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 4000 })
    await v.page.evaluate(() => {
      for (const ev of ['update', 'updateready']) window.dn.on(ev, (...a) => window.dnEvents.push([ev, ...a]))
    })
    await fetchAll(v, PATHS)
  }
  for (const v of visitors) await waitConnected(v, PATHS.length, 2, `${v.name} connected to both others`)

  // The new version: the script and the image change, the stylesheet does not.
  const fresh = {}
  for (const p of ['/app.js', '/img/hero.png']) {
    const body = randomBytes(FILES[p])
    fs.writeFileSync(path.join(dir, p), body)
    fresh[p] = sha256(body)
  }
  publish(dir, origin.url)
  const deployId = manifestOf().deploy_id
  const logFrom = origin.log.length
  const r = spawnSync(cli, ['notify', dir, '--server', signal.url, '--key', path.join(keyDir, 'site.key'), '--origin', origin.url], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)

  const ready = (v) => v.page.evaluate((id) => window.dnEvents.some((e) => e[0] === 'updateready' && e[1] === id), deployId)
  for (const v of visitors) await waitFor(() => ready(v), 40_000, `${v.name} ready for the new deploy`)
  for (const v of visitors) {
    const events = await v.page.evaluate(() => window.dnEvents.filter((e) => e[0] === 'update' || e[0] === 'warning'))
    assert.deepEqual(events.filter((e) => e[0] === 'update'), [['update', deployId]], `${v.name}: ${JSON.stringify(events)}`)
  }
  // The origin sent each changed file about once for all three pages (a page that asked before
  // the first holder said so, or a hedge, may take part of a second copy), the rest came from
  // peers, and nothing of what did not change.
  const after = origin.log.slice(logFrom)
  for (const p of ['/app.js', '/img/hero.png']) {
    const bytes = after.filter((e) => e.path === p).reduce((a, e) => a + e.bytes, 0)
    assert.ok(bytes >= FILES[p] && bytes <= 1.5 * FILES[p], `${p}: ${bytes} bytes from the origin for 3 open pages`)
  }
  assert.equal(after.filter((e) => e.path === '/style.css').length, 0)

  // An open page keeps its own version (it never mixes deploys).
  const still = await fetchAll(visitors[0], ['/app.js'])
  assert.equal(still.hashes['/app.js'], site.contents['/app.js'])

  // The next navigation: the new deploy, its files from this browser's cache, none from the origin.
  const navFrom = origin.log.length
  for (const v of visitors) {
    await startEngine(v, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 4000 })
    const got = await fetchAll(v, PATHS)
    assert.equal(got.hashes['/app.js'], fresh['/app.js'], v.name)
    assert.equal(got.hashes['/img/hero.png'], fresh['/img/hero.png'], v.name)
    assert.equal(got.hashes['/style.css'], site.contents['/style.css'], v.name)
  }
  const nav = origin.log.slice(navFrom).filter((e) => PATHS.includes(e.path))
  assert.deepEqual(nav, [], 'no origin request for the site\'s files on the next navigation')
})
