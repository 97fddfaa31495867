// The service worker integration on the demo site: first views over HTTP and seeded, later
// pages from the visitor's own cache (filled from peers), a redeploy taking effect, and the
// site working without a service worker or without P2P.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { startServer, metric } from '../integration/harness.mjs'
import { startOrigin, makeDemoSite, publish, visitor, loadControlledPage, sha256, waitFor, waitForSwarm } from './harness.mjs'

let signal, origin, dir, manifest, keyDir
const open = []

before(async () => {
  dir = fs.mkdtempSync('/tmp/dn-sw-site-')
  origin = await startOrigin(dir)
  // The site's key, for the kill switch by signed notice.
  keyDir = fs.mkdtempSync('/tmp/dn-sw-key-')
  assert.equal(spawnSync(process.env.DEPLOYNET_CLI, ['keygen', path.join(keyDir, 'site.key')]).status, 0)
  signal = await startServer(['--site-key', `${origin.url}=${path.join(keyDir, 'site.key.pub')}`])
  manifest = makeDemoSite(dir, origin.url, signal.url, 3000)
})
after(async () => {
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true })
  for (const v of open) await v.close()
  await origin?.stop()
  await signal?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

async function visit (name, opts = {}, loadOpts = {}) {
  const v = await visitor(name, opts)
  open.push(v)
  const r = await loadControlledPage(v, `${origin.url}/index.html`, loadOpts)
  return { v, r }
}

// What the page shows: styles applied, fonts loaded, scripts ran, images decoded.
const pageLooksRight = (v) => v.page.evaluate(() => ({
  header: getComputedStyle(document.querySelector('.top')).backgroundColor,
  font: document.fonts.check('16px "Northwind Sans"'),
  rows: document.querySelectorAll('#catalog tbody tr').length,
  images: [...document.images].every((i) => i.complete && i.naturalWidth > 0),
}))

const assetBytes = (stats) => stats.assets.reduce((a, x) => a + x.size, 0)

// Paths of the demo site's assets (the manifest's, without its HTML pages).
const assetPaths = () => new Set(manifest.files.map((f) => f.path).filter((p) => !p.endsWith('.html') && !p.startsWith('/deploynet')))
const originAssetRequests = (name, since) =>
  origin.log.slice(since).filter((e) => e.ua.endsWith(`visitor-${name}`) && assetPaths().has(e.path))

// Waits until `v`'s cache holds the verified content of `paths`.
const holds = (v, paths) => waitFor(() => v.page.evaluate(async (wanted) => {
  const keys = await (await caches.open('deploynet-content-v1')).keys()
  const held = new Set(keys.map((k) => new URL(k.url).pathname.split('/').pop()))
  return wanted.every((id) => held.has(id))
}, manifest.files.filter((f) => paths.includes(f.path)).map((f) => f.sha256)), 20_000, `${v.name} holding ${paths.length} assets`)
const assetsOf = (page) => {
  const html = fs.readFileSync(path.join(dir, page), 'utf8')
  return [...assetPaths()].filter((p) => html.includes(`"${p}"`) || p.startsWith('/fonts/'))
}

test('first views load over HTTP and are seeded; a later visitor\'s next page needs no origin request for its assets', async () => {
  // A browses the whole site: its first view over HTTP (no reload), then under the worker.
  // Whatever a page loaded, over HTTP or from the cache, is verified content A can serve.
  const a = await visit('swA')
  assert.equal(a.r.stats.bytesFromPeers, 0)
  assert.ok(a.r.imagesOk)
  await holds(a.v, assetsOf('index.html'))
  for (const page of ['gallery.html', 'about.html']) {
    await loadControlledPage(a.v, `${origin.url}/${page}`)
    await holds(a.v, assetsOf(page))
  }
  await holds(a.v, [...assetPaths()])

  // B's first view is over HTTP too; once connected, B fetches from A (peers only) what the
  // rest of the site needs and it lacks: the photos the home page does not show.
  const b = await visit('swB')
  const looks = await pageLooksRight(b.v)
  assert.deepEqual(looks, { header: 'rgb(47, 111, 79)', font: true, rows: 40, images: true })
  const prefetchState = () => b.v.page.evaluate(async () => {
    const dn = await window.deploynet
    const s = dn.stats()
    const got = s.assets.filter((x) => x.prefetch && x.fromPeers === x.size).map((x) => x.path)
    return { got, peers: dn.peerList(), readyState: document.readyState }
  })
  const prefetched = await waitForSwarm(async () => {
    const st = await prefetchState()
    return st.got.includes('/img/photo-7.png') && st.got.includes('/img/photo-8.png') ? st.got : null
  }, 30_000, 'B prefetching the gallery\'s photos from A')
  assert.ok(prefetched.length >= 2)

  // B's next page: every asset from B's own cache (verified bytes from the origin's earlier
  // answers and from A), not one asset request to the origin.
  const since = origin.log.length
  const r = await loadControlledPage(b.v, `${origin.url}/gallery.html`)
  assert.ok(r.imagesOk)
  assert.deepEqual(originAssetRequests('swB', since).map((e) => e.path), [])
  // The manifest once for the page view: the worker's check at the navigation, whose copy the
  // page's engine then takes instead of asking the origin again.
  const manifestRequests = origin.log.slice(since).filter((e) => e.ua.endsWith('visitor-swB') && e.path === '/deploynet.json')
  assert.equal(manifestRequests.length, 1)
  const served = await b.v.page.evaluate(async () => {
    const r = await fetch('/img/photo-8.png')
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await r.arrayBuffer()))
    return { via: r.headers.get('x-deploynet'), sha: Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('') }
  })
  assert.equal(served.via, 'cache')
  assert.equal(served.sha, manifest.files.find((f) => f.path === '/img/photo-8.png').sha256)
  // Pass-through: a path outside the manifest and a HEAD; a Range request for content held is
  // answered from the cache (206, exactly the bytes asked for).
  const passthrough = await b.v.page.evaluate(async () => {
    const missing = await fetch('/not-in-manifest.txt')
    const range = await fetch('/js/vendor.js', { headers: { range: 'bytes=0-9' } })
    const head = await fetch('/img/photo-1.png', { method: 'HEAD' })
    return [missing.status, missing.headers.get('x-deploynet'), range.status, (await range.arrayBuffer()).byteLength,
      range.headers.get('x-deploynet'), head.status, head.headers.get('x-deploynet')]
  })
  assert.deepEqual(passthrough, [404, null, 206, 10, 'cache', 200, null])

  // The site's savings, as its visitors report them, in the signaling server's /metrics: B's
  // home page (left by the navigation above) got the photos from A, and A uploaded them.
  const siteMetric = async (name, source) => {
    const text = await (await fetch(`${signal.http}/metrics`)).text()
    const labels = `site="${origin.url}"` + (source ? `,source="${source}"` : '')
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `))
    return line ? Number(line.split(' ')[1]) : 0
  }
  const photos = manifest.files.filter((f) => f.path === '/img/photo-7.png' || f.path === '/img/photo-8.png')
  const photoBytes = photos.reduce((a, f) => a + f.size, 0)
  await waitFor(async () => (await siteMetric('deploynet_site_bytes_total', 'peers')) >= photoBytes, 20_000, 'B\'s report')
  assert.ok(await siteMetric('deploynet_site_bytes_total', 'origin') > 0)
  await a.v.page.evaluate(async () => (await window.deploynet).destroy()) // A's counts go out as it stops
  await waitFor(async () => (await siteMetric('deploynet_site_uploaded_bytes_total')) >= photoBytes, 10_000, 'A\'s report')
})

test('stats() accounts for every byte the origin sent: within 2% of its access log, first view and later', async () => {
  const v = await visitor('acct')
  // Requests Firefox makes by itself, which neither the page nor the worker can see: its
  // /favicon.ico (the demo site has none) and, on a controlled page, the worker script's update
  // check at every navigation (docs/client.md, "Browsers").
  const own = (e, controlled) => v.engine === 'firefox' && (e.path === '/favicon.ico' || (controlled && e.path === '/deploynet-sw.js'))
  const logged = (since, controlled) => origin.log.slice(since).filter((e) => e.ua.endsWith('visitor-acct') && !own(e, controlled))
  open.push(v)
  for (const [page, controlled] of [['index.html', false], ['gallery.html', true], ['about.html', true]]) {
    const since = origin.log.length
    await loadControlledPage(v, `${origin.url}/${page}`, { controlled })
    // Settled: adoption reads the HTTP cache only, prefetches go to peers only.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const usage = await v.page.evaluate(async () => (await window.deploynet).originUsage())
    const log = logged(since, controlled)
    const bytes = log.reduce((a, e) => a + e.bytes, 0)
    assert.ok(bytes > 0 || page !== 'index.html')
    assert.ok(Math.abs(usage.bytes - bytes) <= 0.02 * bytes + 512,
      `${page}: stats say ${usage.bytes} bytes in ${usage.requests} requests, the access log ${bytes} in ${log.length}: ${log.map((e) => e.path).join(' ')}`)
    assert.equal(usage.requests, log.length, `${page}: ${log.map((e) => e.path).join(' ')}`)
  }
})

test('a redeploy takes effect: changed assets are new content, never the stale bytes', async () => {
  const { v: b } = await visit('redeploy')
  await holds(b, assetsOf('index.html'))
  const cssPath = path.join(dir, 'css/site.css')
  fs.appendFileSync(cssPath, '\n.top { background: #8b1e3f; }\n')
  manifest = (publish(dir, origin.url),
  JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8')))
  const since = origin.log.length
  await loadControlledPage(b, `${origin.url}/index.html`)
  assert.equal((await pageLooksRight(b)).header, 'rgb(139, 30, 63)')
  // Only the changed stylesheet went to the origin; the rest came from B's cache.
  assert.deepEqual(originAssetRequests('redeploy', since).map((e) => e.path), ['/css/site.css'])
  const fresh = await b.page.evaluate(async () => (await window.deploynet).fetchPath('/css/site.css').then((x) => x.text()))
  assert.equal(fresh, fs.readFileSync(cssPath, 'utf8'))
  assert.equal(sha256(fs.readFileSync(cssPath)), manifest.files.find((f) => f.path === '/css/site.css').sha256)
})

test('an entry planted in the content cache is never served: each piece is checked as it is read back', async () => {
  const { v } = await visit('planted')
  const scripts = assetsOf('index.html').filter((p) => p.endsWith('.js'))
  assert.ok(scripts.length > 0)
  await holds(v, scripts)
  const script = scripts[0]
  const file = manifest.files.find((f) => f.path === script)
  const original = fs.readFileSync(path.join(dir, script), 'utf8')
  // A script of the site (an XSS, another app on the origin) writes its own bytes under the
  // script's content id: same length, so only the hashes can tell.
  const evil = ('window.PLANTED=1;/*' + 'x'.repeat(original.length)).slice(0, original.length - 2) + '*/'
  assert.equal(evil.length, original.length)
  await v.page.evaluate(async ({ id, body }) => {
    const cache = await caches.open('deploynet-content-v1')
    await cache.put(`/__deploynet/content/${id}`, new Response(body, { headers: { 'content-length': String(body.length) } }))
  }, { id: file.sha256, body: evil })
  await loadControlledPage(v, `${origin.url}/index.html`)
  const seen = await v.page.evaluate(async (p) => ({
    planted: window.PLANTED,
    text: await (await fetch(p)).text(),
  }), script)
  assert.equal(seen.planted, undefined, 'the planted script never ran')
  assert.equal(seen.text, original)
  assert.equal((await pageLooksRight(v)).rows > 0, true)
  // The bad entry is gone, or replaced by the verified bytes.
  const stored = await v.page.evaluate(async (id) => {
    const r = await (await caches.open('deploynet-content-v1')).match(`/__deploynet/content/${id}`)
    return r ? r.text() : null
  }, file.sha256)
  assert.ok(stored === null || stored === original)
})

test('the kill switch: a manifest replaced by {"disabled":true} turns DeployNet off; the real one back turns it on again', async () => {
  const { v } = await visit('killswitch')
  await holds(v, assetsOf('index.html'))
  const manifestPath = path.join(dir, 'deploynet.json')
  const real = fs.readFileSync(manifestPath)
  const registrations = () => v.page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length)
  try {
    fs.writeFileSync(manifestPath, '{"disabled":true}')
    await v.page.goto(`${origin.url}/index.html`, { waitUntil: 'load' })
    await waitFor(async () => (await registrations()) === 0, 20_000, 'the worker unregistered')
    await waitFor(() => v.page.evaluate(async () => !(await caches.has('deploynet-content-v1'))), 10_000, 'its content cache deleted')
    assert.equal(await v.page.evaluate(() => window.deploynet), null, 'the engine did not start')
    assert.equal(await v.page.evaluate(() => localStorage.getItem('deploynet-off')), '1')
    // The next view: uncontrolled, over HTTP, and not even a signaling socket.
    const sockets = await metric(signal, 'deploynet_connections_total')
    const since = origin.log.length
    await v.page.goto(`${origin.url}/gallery.html`, { waitUntil: 'load' })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const off = await v.page.evaluate(() => ({ controlled: !!navigator.serviceWorker.controller, boot: !!window.DeployNetBoot }))
    assert.deepEqual(off, { controlled: false, boot: false })
    assert.ok((await pageLooksRight(v)).images)
    assert.equal(await metric(signal, 'deploynet_connections_total'), sockets, 'no socket opened')
    assert.equal(await registrations(), 0)
    assert.ok(origin.log.slice(since).some((e) => e.path === '/img/photo-7.png' || assetPaths().has(e.path)), 'assets over HTTP')
  } finally {
    fs.writeFileSync(manifestPath, real)
  }
  // Back on: the next view's engine finds the real manifest, forgets the switch and registers
  // the worker again.
  await v.page.goto(`${origin.url}/about.html`, { waitUntil: 'load' })
  await waitFor(async () => (await registrations()) === 1, 20_000, 'the worker registered again')
  assert.equal(await v.page.evaluate(() => localStorage.getItem('deploynet-off')), null)
})

// Every request a visitor made, by path: a first view that reloads (or downloads anything
// twice) shows as a count above one.
const requestCounts = (name, since = 0) => {
  const n = {}
  for (const e of origin.log.slice(since)) if (e.ua.endsWith(`visitor-${name}`)) n[e.path] = (n[e.path] ?? 0) + 1
  return n
}

test('the kill switch by signed notice: an open page leaves the swarm, its worker passes everything through and retires; a real deploy lifts it', async () => {
  const notify = (...args) => spawnSync(process.env.DEPLOYNET_CLI, ['notify', '--server', signal.url,
    '--key', path.join(keyDir, 'site.key'), '--origin', origin.url, ...args], { encoding: 'utf8' })
  const { v } = await visit('killN')
  await loadControlledPage(v, `${origin.url}/gallery.html`)
  const via = () => v.page.evaluate(async () => (await fetch('/img/photo-1.png')).headers.get('x-deploynet'))
  assert.equal(await via(), 'cache')
  await v.page.evaluate(async () => {
    window.turnedOff = false
    ;(await window.deploynet).on('disabled', () => { window.turnedOff = true })
  })
  // Notices for a site must come in later seconds than the last accepted.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const r = notify('--disable')
  assert.equal(r.status, 0, r.stderr)
  await waitFor(() => v.page.evaluate(() => window.turnedOff), 10_000, 'the open page told DeployNet is off')
  // The worker passes everything through at once, then unregisters; the page has left the swarm.
  await waitFor(async () => (await via()) === null, 5000, 'the worker passing requests through')
  const since = origin.log.length
  assert.equal(await via(), null)
  assert.ok(origin.log.slice(since).some((e) => e.path === '/img/photo-1.png' && e.ua.endsWith('visitor-killN')))
  await waitFor(() => v.page.evaluate(async () => !(await navigator.serviceWorker.getRegistration())), 5000, 'the worker unregistered')
  assert.equal(await v.page.evaluate(async () => (await window.deploynet).stats().signal), false)
  // The next page view: no worker, no socket (the bootstrap remembers), the page whole.
  const next = await loadControlledPage(v, `${origin.url}/about.html`, { controlled: false })
  assert.ok(next.imagesOk)
  // A real deploy's notice lifts it: the views after it get the worker back.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const on = notify('--deploy-id', manifest.deploy_id)
  assert.equal(on.status, 0, on.stderr)
  await loadControlledPage(v, `${origin.url}/index.html`, { controlled: false })
  await loadControlledPage(v, `${origin.url}/gallery.html`)
  assert.deepEqual(v.errors, [])
})

test('without service workers the site still works, over HTTP, loading once: nothing twice', async () => {
  const { v } = await visit('noSW', { contextOptions: { serviceWorkers: 'block' } }, { controlled: false })
  const looks = await pageLooksRight(v)
  assert.equal(looks.images, true)
  assert.equal(looks.rows, 40)
  assert.equal(looks.font, true)
  const counts = requestCounts('noSW')
  assert.equal(counts['/index.html'], 1)
  assert.deepEqual(Object.entries(counts).filter(([, n]) => n > 1), [])
})

test('a slow manifest holds up nothing: one navigation, nothing downloaded twice, the page loads first', async () => {
  origin.delays.set('/deploynet.json', 2500)
  try {
    const v = await visitor('slowManifest')
    open.push(v)
    await v.page.goto(`${origin.url}/index.html`, { waitUntil: 'load' })
    const t = await v.page.evaluate(async () => {
      const dn = await window.deploynet
      const nav = performance.getEntriesByType('navigation')[0]
      const m = performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname === '/deploynet.json')
      return { loadEnd: nav.loadEventEnd, manifestEnd: m?.responseEnd ?? null, ready: !!dn, nav: performance.getEntriesByType('navigation').length }
    })
    // The page's load event came before the manifest's answer: nothing of the page waited on it.
    assert.ok(t.manifestEnd !== null && t.loadEnd < t.manifestEnd, JSON.stringify(t))
    assert.equal(t.ready, true)
    const counts = requestCounts('slowManifest')
    assert.equal(counts['/index.html'], 1)
    assert.deepEqual(Object.entries(counts).filter(([, n]) => n > 1), [])
    const looks = await pageLooksRight(v)
    assert.deepEqual([looks.font, looks.rows, looks.images], [true, 40, true])
  } finally {
    origin.delays.delete('/deploynet.json')
  }
})

test('with P2P disabled the site still works, through the worker, from the origin', async () => {
  const { v, r } = await visit('noP2P', { initScript: 'window.DeployNetConfig = { p2p: false }' })
  assert.equal(r.stats.bytesFromPeers, 0)
  assert.equal(r.stats.signal, false)
  assert.deepEqual(await pageLooksRight(v), { header: 'rgb(139, 30, 63)', font: true, rows: 40, images: true })
})

test('a missing or malformed manifest costs one request per page view, not one per asset', async () => {
  const file = path.join(dir, 'deploynet.json')
  const good = fs.readFileSync(file)
  try {
    for (const [name, broken] of [['noManifest', null], ['badManifest', '{ not json']]) {
      if (broken) fs.writeFileSync(file, broken)
      else fs.rmSync(file)
      // A first visit that installs the worker while the manifest is unusable (the inline
      // tag registers it, as with firstVisit: 'reload'), then a page under its control.
      const v = await visitor(name, { initScript: 'window.DeployNetConfig = { firstVisit: "reload" }' })
      open.push(v)
      await v.page.goto(`${origin.url}/gallery.html`, { waitUntil: 'commit' })
      // The reloaded page, under the worker (the first one stops and reloads itself).
      // Its engine settled too (it gave up on the manifest: that request is the page view's own).
      await waitFor(() => v.page.evaluate(async () => document.readyState === 'complete' && !!navigator.serviceWorker.controller &&
        performance.getEntriesByType('navigation')[0]?.type === 'reload' && !!window.deploynet &&
        (await window.deploynet) === null).catch(() => false), 20_000, 'a page under the worker, its engine settled')
      const since = origin.log.length
      const statuses = await v.page.evaluate(() => Promise.all(Array.from({ length: 20 }, async (_, i) =>
        (await fetch(`/img/photo-${1 + (i % 8)}.png`, { cache: 'no-store' })).status)))
      assert.deepEqual(new Set(statuses), new Set([200]))
      const asked = origin.log.slice(since).filter((e) => e.ua.endsWith(`visitor-${name}`) && e.path === '/deploynet.json')
      assert.equal(asked.length, 0, `${asked.length} manifest requests for 20 asset requests`)
    }
  } finally {
    fs.writeFileSync(file, good)
  }
})
