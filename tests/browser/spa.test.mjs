// A real third-party single-page app (Swagger UI from its npm package) with DeployNet added by
// `deploynet init`: it renders under the worker and the engine, with no page error, and a
// visitor's next view of it needs no origin request for its 2 MB of script and CSS.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { startServer } from '../integration/harness.mjs'
import { startOrigin, visitor, loadControlledPage, root, waitFor } from './harness.mjs'

let signal, origin, dir
const open = []

before(async () => {
  signal = await startServer()
  dir = fs.mkdtempSync('/tmp/dn-spa-')
  origin = await startOrigin(dir)
  execFileSync('node', [path.join(root, 'examples/spa/build.mjs'), dir, origin.url, signal.url], {
    env: { ...process.env, DEPLOYNET_CLI: process.env.DEPLOYNET_CLI ?? path.join(root, 'build/test/cli/deploynet') },
  })
})
after(async () => {
  for (const v of open) await v.close()
  await origin?.stop()
  await signal?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

// What the app rendered, once it has: its title and how many operations it lists.
const rendered = (v) => waitFor(() => v.page.evaluate(() => {
  const title = document.querySelector('#swagger-ui .info .title')
  return title ? { title: title.textContent, operations: document.querySelectorAll('.opblock').length } : null
}), 30_000, 'Swagger UI rendered')

test('Swagger UI renders under DeployNet; its next view needs no origin request for its assets', async () => {
  const v = await visitor('spa1')
  open.push(v)
  await loadControlledPage(v, `${origin.url}/index.html`)
  const first = await rendered(v)
  assert.match(first.title, /^Northwind Catalogue API/)
  assert.equal(first.operations, 60)
  const assets = ['/swagger-ui-bundle.js', '/swagger-ui-standalone-preset.js', '/swagger-ui.css', '/openapi.json']
  const since = origin.log.length
  await loadControlledPage(v, `${origin.url}/index.html`)
  assert.match((await rendered(v)).title, /^Northwind Catalogue API/)
  assert.deepEqual(origin.log.slice(since).filter((e) => assets.includes(e.path)).map((e) => e.path), [])
  assert.deepEqual(v.errors, [])
})
