// Mixed swarms: a Firefox visitor and a Chromium visitor exchange verified content both ways,
// over real WebRTC between the two engines, the real signaling server and a real origin.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startServer } from '../integration/harness.mjs'
import { startOrigin, makeSite, visitor, startEngine, fetchAll, clientDir, waitConnected, ENGINES } from './harness.mjs'

const FILES = { '/app.js': 300_000, '/style.css': 40_000, '/img/hero.png': 900_000 }
const PATHS = Object.keys(FILES)
const TOTAL = Object.values(FILES).reduce((a, b) => a + b, 0)
const both = ENGINES.includes('chromium') && ENGINES.includes('firefox')

let signal, origin, site, siteDir
let swarmN = 0

before(async () => {
  signal = await startServer()
  siteDir = fs.mkdtempSync('/tmp/dn-engines-site-')
  fs.copyFileSync(path.join(clientDir, 'deploynet_ring.wasm'), path.join(siteDir, 'deploynet_ring.wasm'))
  origin = await startOrigin(siteDir)
  site = makeSite(FILES, origin.url, siteDir)
})
after(async () => {
  await origin?.stop()
  await signal?.stop()
  if (siteDir) fs.rmSync(siteDir, { recursive: true, force: true })
})

const originRequestsBy = (name) => origin.log.filter((e) => e.ua.endsWith(`visitor-${name}`) && PATHS.includes(e.path))

for (const [seeder, downloader] of [['chromium', 'firefox'], ['firefox', 'chromium']]) {
  test(`a ${downloader} visitor gets every asset from a ${seeder} visitor, verified; the origin sees no request from it`, { skip: !both && 'needs both engines' }, async () => {
    const swarm = `swarm-mixed-${++swarmN}`.padEnd(20, '-')
    const a = await visitor(`mix${swarmN}A`, { engine: seeder })
    const b = await visitor(`mix${swarmN}B`, { engine: downloader })
    try {
      await startEngine(a, origin.url, { signal: [signal.url], swarm, ringWasm: '/deploynet_ring.wasm', firstByteTimeout: 4000 })
      const ra = await fetchAll(a, PATHS)
      assert.deepEqual(ra.hashes, site.contents)
      assert.equal(ra.stats.bytesFromOrigin, TOTAL)

      await startEngine(b, origin.url, { signal: [signal.url], swarm, ringWasm: '/deploynet_ring.wasm', firstByteTimeout: 4000 })
      await waitConnected(b, PATHS.length, 1, `${downloader} connected to ${seeder}`, [a, b])
      const rb = await fetchAll(b, PATHS)
      assert.deepEqual(rb.hashes, site.contents)
      assert.equal(rb.stats.bytesFromPeers, TOTAL)
      assert.equal(rb.stats.bytesFromOrigin, 0)
      assert.deepEqual(originRequestsBy(b.name), [])
      assert.equal(await a.page.evaluate(() => window.dn.stats().bytesUploaded), TOTAL)
      assert.deepEqual(a.errors, [])
      assert.deepEqual(b.errors, [])
    } finally {
      await a.close()
      await b.close()
    }
  })
}
