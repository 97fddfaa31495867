// A site set up by `deploynet init` alone, served under /docs/: the tag it inserted starts
// DeployNet, the worker controls /docs/, and a second visitor gets the site's other assets from
// the first one and then needs no origin request for them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { startServer, metric } from '../integration/harness.mjs'
import { startOrigin, visitor, loadControlledPage, waitForSwarm, root, clientDir } from './harness.mjs'

const cli = process.env.DEPLOYNET_CLI || path.join(root, 'build/test/cli/deploynet')
let signal, origin, dir
const open = []

const padded = (n) => `/* ${randomBytes(n).toString('base64')} */\nwindow.loaded = (window.loaded || 0) + 1\n`

before(async () => {
  signal = await startServer()
  dir = fs.mkdtempSync('/tmp/dn-init-site-')
  origin = await startOrigin(dir)
  const docs = path.join(dir, 'docs')
  fs.mkdirSync(path.join(docs, 'js'), { recursive: true })
  fs.mkdirSync(path.join(docs, 'css'))
  fs.writeFileSync(path.join(docs, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/docs/css/site.css"></head>' +
    '<body><h1>Docs</h1><a href="more.html">more</a><script src="/docs/js/app.js"></script></body></html>')
  fs.writeFileSync(path.join(docs, 'more.html'), '<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/docs/css/site.css"></head>' +
    '<body><h1>More</h1><script src="/docs/js/more.js"></script></body></html>')
  fs.writeFileSync(path.join(docs, 'css/site.css'), `h1 { color: rgb(1, 2, 3) }\n/* ${randomBytes(20_000).toString('base64')} */\n`)
  fs.writeFileSync(path.join(docs, 'js/app.js'), padded(150_000))
  fs.writeFileSync(path.join(docs, 'js/more.js'), padded(300_000))
  execFileSync(cli, ['init', docs, '--origin', origin.url, '--signal', signal.url, '--base', '/docs/', '--client-dir', clientDir])
})

after(async () => {
  for (const v of open) await v.close()
  await origin?.stop()
  await signal?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('a first view of an init page pays nothing before its load event; the engine takes over the socket the bootstrap opened', async () => {
  const before = await metric(signal, 'deploynet_connections_total')
  const c = await visitor('initFirst')
  try {
    const since = origin.log.length
    const r = await loadControlledPage(c, `${origin.url}/docs/index.html`)
    const seen = await c.page.evaluate(() => ({
      boot: window.DeployNetBoot === undefined ? 'taken' : 'left',
      resources: performance.getEntriesByType('resource').map((e) => ({ name: e.name, start: performance.timeOrigin + e.startTime })),
    }))
    // The origin's own log: DeployNet's requests (script, manifest, worker, ring) all after the load event.
    const ours = origin.log.slice(since).filter((e) => e.ua.endsWith('visitor-initFirst') && /\/deploynet[^/]*$/.test(e.path))
    assert.ok(ours.length >= 2, JSON.stringify(ours))
    for (const e of ours) assert.ok(e.at >= r.loadEnd - 5, `${e.path} asked ${r.loadEnd - e.at} ms before the load event`)
    for (const e of seen.resources.filter((x) => /\/deploynet[^/]*$/.test(new URL(x.name).pathname))) {
      assert.ok(e.start >= r.loadEnd - 5, `${e.name} started before the load event`)
    }
    assert.equal(seen.boot, 'taken')
    assert.ok(r.stats.timeline.signalOpen !== undefined, 'the engine is on the swarm')
    // One socket for the page view: the bootstrap's, taken over by the engine.
    assert.equal(await metric(signal, 'deploynet_connections_total') - before, 1)
    assert.deepEqual(c.errors, [])
  } finally {
    await c.close()
  }
})

test('a subpath site set up by init: visitors share its assets, the worker controls /docs/', async () => {
  const a = await visitor('initA')
  open.push(a)
  await loadControlledPage(a, `${origin.url}/docs/index.html`)
  const scope = await a.page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope)
  assert.equal(scope, `${origin.url}/docs/`)
  await loadControlledPage(a, `${origin.url}/docs/more.html`)
  assert.equal(await a.page.evaluate(() => getComputedStyle(document.querySelector('h1')).color), 'rgb(1, 2, 3)')

  const b = await visitor('initB')
  open.push(b)
  await loadControlledPage(b, `${origin.url}/docs/index.html`)
  // B fetches from A (peers only) what the other page needs: more.js.
  await waitForSwarm(() => b.page.evaluate(async () => {
    const s = (await window.deploynet).stats()
    return s.assets.some((x) => x.path === '/docs/js/more.js' && x.prefetch && x.fromPeers === x.size)
  }), 30_000, 'B prefetching /docs/js/more.js from A', [a, b])
  const since = origin.log.length
  await loadControlledPage(b, `${origin.url}/docs/more.html`)
  assert.equal(await b.page.evaluate(() => window.loaded), 1)
  assert.deepEqual(origin.log.slice(since).filter((e) => e.ua.endsWith('visitor-initB') && e.path === '/docs/js/more.js'), [])
  assert.deepEqual([...a.errors, ...b.errors], [])
})
