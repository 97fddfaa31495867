// The service worker integration on the demo site: visitors' pages served through the worker
// with most bytes from peers, a redeploy taking effect, and the site working without a service
// worker or without P2P.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startServer } from '../integration/harness.mjs'
import { startOrigin, makeDemoSite, publish, visitor, loadControlledPage, sha256 } from './harness.mjs'

let signal, origin, dir, manifest
const open = []

before(async () => {
  signal = await startServer()
  dir = fs.mkdtempSync('/tmp/dn-sw-site-')
  origin = await startOrigin(dir)
  manifest = makeDemoSite(dir, origin.url, signal.url, 3000)
})
after(async () => {
  for (const v of open) await v.close()
  await origin?.stop()
  await signal?.stop()
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

test('the second visitor is served through the service worker, most bytes from peers', async () => {
  const a = await visit('swA')
  assert.equal(a.r.stats.bytesFromPeers, 0)
  assert.ok(a.r.imagesOk)
  const b = await visit('swB')
  const looks = await pageLooksRight(b.v)
  assert.deepEqual(looks, { header: 'rgb(47, 111, 79)', font: true, rows: 40, images: true })
  const total = assetBytes(b.r.stats)
  assert.ok(total > 3_000_000, `B's page loaded ${total} bytes of assets through the engine`)
  assert.ok(b.r.stats.bytesFromPeers >= 0.7 * total,
    `from peers ${b.r.stats.bytesFromPeers} of ${total}: ${JSON.stringify(b.r.stats.assets.map((x) => [x.path, x.fromPeers, x.originReason]))}`)
  // The responses came from the worker, byte-identical to the files.
  const served = await b.v.page.evaluate(async () => {
    const r = await fetch('/js/vendor.js')
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await r.arrayBuffer()))
    return { via: r.headers.get('x-deploynet'), sha: Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('') }
  })
  assert.equal(served.via, 'p2p-engine')
  assert.equal(served.sha, manifest.files.find((f) => f.path === '/js/vendor.js').sha256)
  // Pass-through: a path outside the manifest, a Range request, a HEAD.
  const passthrough = await b.v.page.evaluate(async () => {
    const missing = await fetch('/not-in-manifest.txt')
    const range = await fetch('/js/vendor.js', { headers: { range: 'bytes=0-9' } })
    const head = await fetch('/img/photo-1.png', { method: 'HEAD' })
    return [missing.status, missing.headers.get('x-deploynet'), range.status, (await range.arrayBuffer()).byteLength,
      range.headers.get('x-deploynet'), head.status, head.headers.get('x-deploynet')]
  })
  assert.deepEqual(passthrough, [404, null, 206, 10, null, 200, null])
})

test('a redeploy takes effect: changed assets are new content, never the stale bytes', async () => {
  const b = open.find((v) => v.name === 'swB')
  const cssPath = path.join(dir, 'css/site.css')
  fs.appendFileSync(cssPath, '\n.top { background: #8b1e3f; }\n')
  publish(dir, origin.url, ['--exclude', 'deploynet*'])
  const r = await loadControlledPage(b, `${origin.url}/index.html`)
  assert.equal((await pageLooksRight(b)).header, 'rgb(139, 30, 63)')
  const css = r.stats.assets.filter((x) => x.path === '/css/site.css').at(-1)
  assert.equal(css.contentId, sha256(fs.readFileSync(cssPath)))
  // Unchanged assets came from this visitor's verified cache.
  assert.ok(r.stats.bytesFromCache > 1_000_000, `from cache ${r.stats.bytesFromCache}`)
})

test('without service workers the site still works, over HTTP', async () => {
  const { v } = await visit('noSW', { contextOptions: { serviceWorkers: 'block' } }, { controlled: false })
  const looks = await pageLooksRight(v)
  assert.equal(looks.images, true)
  assert.equal(looks.rows, 40)
  assert.equal(looks.font, true)
})

test('with P2P disabled the site still works, through the worker, from the origin', async () => {
  const { v, r } = await visit('noP2P', { initScript: 'window.DeployNetConfig = { p2p: false }' })
  assert.equal(r.stats.bytesFromPeers, 0)
  assert.equal(r.stats.signal, false)
  assert.ok(r.stats.bytesFromOrigin > 3_000_000)
  assert.deepEqual(await pageLooksRight(v), { header: 'rgb(139, 30, 63)', font: true, rows: 40, images: true })
})
