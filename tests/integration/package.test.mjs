// The client as an npm package: `npm pack`'s tarball installs into a fresh project with no
// registry, its exports resolve, its types type-check a site's code (and catch a wrong option),
// esbuild bundles it, and the API reference in docs/ is the one generated from the sources.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const bin = (n) => path.join(root, 'node_modules/.bin', n)

test('the packed client installs and works in a fresh project', () => {
  const out = execFileSync('node', [path.join(root, 'scripts/package-client.mjs')], { encoding: 'utf8' })
  const tgz = path.join(root, /package: (build\/\S+\.tgz)/.exec(out)[1])
  assert.equal(fs.readFileSync(path.join(root, 'build/package/API.md'), 'utf8'),
    fs.readFileSync(path.join(root, 'docs/client-api.md'), 'utf8'), 'docs/client-api.md is stale: run make package')

  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-app-'))
  try {
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'site', version: '1.0.0', type: 'module', private: true }))
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tgz], { cwd: app, stdio: 'pipe' })

    // Exports resolve; the module loads and derives swarm ids as the server expects.
    fs.writeFileSync(path.join(app, 'check.mjs'), `
      import { DeployNet, swarmIdFor, attachServiceWorker } from 'deploynet-client'
      const r = (s) => new URL(import.meta.resolve(s)).pathname
      console.log(JSON.stringify({ start: typeof DeployNet.start, attach: typeof attachServiceWorker,
        swarm: await swarmIdFor('https://site.example'),
        files: ['deploynet-client/script', 'deploynet-client/sw', 'deploynet-client/ring.wasm'].map(r) }))`)
    const got = JSON.parse(execFileSync('node', ['check.mjs'], { cwd: app, encoding: 'utf8' }))
    assert.equal(got.start, 'function')
    assert.equal(got.attach, 'function')
    assert.equal(got.swarm, createHash('sha256').update('https://site.example').digest().subarray(0, 15).toString('base64'))
    assert.deepEqual(got.files.map((f) => path.basename(f)), ['deploynet.js', 'deploynet-sw.js', 'deploynet_ring.wasm'])
    for (const f of got.files) assert.ok(fs.statSync(f).size > 1000, f)
    // Internals are not exported.
    const mod = execFileSync('node', ['--input-type=module', '-e', "import * as m from 'deploynet-client'; console.log(Object.keys(m).sort().join(','))"], { cwd: app, encoding: 'utf8' })
    assert.equal(mod.trim(), 'DeployNet,DeployNetError,attachServiceWorker,swarmIdFor')

    // A site's TypeScript against the package's types.
    const tsconfig = { compilerOptions: { target: 'ES2020', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2020', 'DOM'], strict: true, noEmit: true, skipLibCheck: false }, include: ['*.ts'] }
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig))
    fs.writeFileSync(path.join(app, 'site.ts'), `
      import { DeployNet, attachServiceWorker, type DeployNetOptions, type Stats } from 'deploynet-client'
      const options: DeployNetOptions = { signal: ['wss://signal.example'], maxPeers: 4, debug: true }
      const engine = DeployNet.start(options)
      void attachServiceWorker(engine, '/deploynet-sw.js', '/deploynet.json')
      engine.then((dn) => { const s: Stats = dn.stats(); console.log(s.bytesFromPeers, dn.peerList().length) })`)
    const ok = spawnSync(bin('tsc'), ['-p', app], { encoding: 'utf8' })
    assert.equal(ok.status, 0, ok.stdout + ok.stderr)
    fs.writeFileSync(path.join(app, 'wrong.ts'), "import { DeployNet } from 'deploynet-client'\nDeployNet.start({ maxPeers: 'eight' })\n")
    const bad = spawnSync(bin('tsc'), ['-p', app], { encoding: 'utf8' })
    assert.notEqual(bad.status, 0)
    assert.match(bad.stdout + bad.stderr, /wrong\.ts\(2,19\): error TS2322/)
    fs.rmSync(path.join(app, 'wrong.ts'))

    // And a bundler takes it.
    execFileSync(bin('esbuild'), ['site.ts', '--bundle', '--format=esm', '--outfile=out.js', '--log-level=error'], { cwd: app })
    assert.ok(fs.statSync(path.join(app, 'out.js')).size > 20_000)
  } finally {
    fs.rmSync(app, { recursive: true, force: true })
  }
})
