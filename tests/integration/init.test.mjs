// deploynet init on a real build directory: DeployNet's files under content-hashed names, the
// inline bootstrap in every page (once), the manifest; a second run changes nothing; a base path for a site
// under /docs/; verify passes on the result.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const cli = process.env.DEPLOYNET_CLI || path.join(root, 'build/test/cli/deploynet')
const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' })

function build () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-init-'))
  fs.mkdirSync(path.join(dir, 'blog'))
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html>\n<html><head>\n<title>Home</title>\n</head><body>home</body></html>\n')
  fs.writeFileSync(path.join(dir, 'blog/post.HTML'), '<html><HEAD lang="en"><meta charset="utf-8"></HEAD><body><header>h</header></body></html>')
  fs.writeFileSync(path.join(dir, 'fragment.html'), '<p>no head here</p>')
  fs.writeFileSync(path.join(dir, 'app.js'), 'console.log(1)\n')
  return dir
}

// Every file's bytes, by relative path.
function snapshot (dir) {
  const out = {}
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64')
    }
  }
  walk(dir)
  return out
}

const initArgs = (dir, ...extra) => ['init', dir, '--origin', 'https://site.example', '--signal', 'wss://signal.example',
  '--client-dir', clientDir, ...extra]

test('init copies hashed files, tags every page once, publishes; again: nothing changes; verify passes', () => {
  const dir = build()
  try {
    const r = run(...initArgs(dir))
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /3 page\(s\), 2 tag\(s\) added/)
    assert.match(r.stderr, /fragment\.html has no <head>/)
    const files = fs.readdirSync(dir)
    const js = files.find((f) => /^deploynet\.[0-9a-f]{8}\.js$/.test(f))
    const wasm = files.find((f) => /^deploynet_ring\.[0-9a-f]{8}\.wasm$/.test(f))
    assert.ok(js && wasm && files.includes('deploynet-sw.js'), files.join(' '))
    assert.deepEqual(fs.readFileSync(path.join(dir, js)), fs.readFileSync(path.join(clientDir, 'deploynet.js')))
    const home = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
    assert.equal(home.match(/data-deploynet/g).length, 1)
    // The inline bootstrap, its engine script named in data-src (fetched after the load event).
    const boot = fs.readFileSync(path.join(clientDir, 'deploynet-boot.js'), 'utf8').trim()
    const tag = home.match(/<head>\n(<script data-deploynet data-src="\/deploynet\.[0-9a-f]{8}\.js" data-signal="wss:\/\/signal\.example" data-manifest="\/deploynet\.json" data-sw="\/deploynet-sw\.js" data-ring-wasm="\/deploynet_ring\.[0-9a-f]{8}\.wasm">)([^]*?)<\/script>\n<title>/)
    assert.ok(tag, home)
    assert.equal(tag[2], boot)
    assert.ok(Buffer.byteLength(tag[0]) < 1200, `the bootstrap is ${Buffer.byteLength(tag[0])} bytes`)
    // The Content-Security-Policy source that allows it.
    const hash = createHash('sha256').update(boot).digest('base64')
    assert.ok(r.stdout.includes(`script-src 'sha256-${hash}'`), r.stdout)
    assert.match(fs.readFileSync(path.join(dir, 'blog/post.HTML'), 'utf8'), /<HEAD lang="en">\n<script data-deploynet data-src="\/deploynet\./)
    assert.equal(fs.readFileSync(path.join(dir, 'fragment.html'), 'utf8'), '<p>no head here</p>')
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))
    const paths = manifest.files.map((f) => f.path)
    for (const p of [`/${js}`, `/${wasm}`, '/deploynet-sw.js', '/index.html', '/blog/post.HTML']) assert.ok(paths.includes(p), p)

    const before = snapshot(dir)
    const again = run(...initArgs(dir))
    assert.equal(again.status, 0, again.stderr)
    assert.match(again.stdout, /0 tag\(s\) added or updated.*0 DeployNet file\(s\) written/)
    assert.deepEqual(snapshot(dir), before)

    const v = run('verify', dir)
    assert.equal(v.status, 0, v.stdout)

    // A new client version: its hashed file replaces the old one, the tags follow.
    fs.renameSync(path.join(dir, js), path.join(dir, 'deploynet.00000000.js'))
    fs.writeFileSync(path.join(dir, 'index.html'), home.replace(js, 'deploynet.00000000.js'))
    assert.equal(run(...initArgs(dir)).status, 0)
    assert.ok(!fs.existsSync(path.join(dir, 'deploynet.00000000.js')))
    assert.ok(fs.existsSync(path.join(dir, js)))
    assert.equal(fs.readFileSync(path.join(dir, 'index.html'), 'utf8'), home)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('init replaces an earlier external tag, and reads a page with an unclosed <script tag without failing', () => {
  const dir = build()
  try {
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><html><head>\n<script src="/deploynet.0badc0de.js" data-deploynet data-signal="wss://old.example" async></script>\n' +
      '<script>var t = "<head>"</script><title>Home</title></head><body><header>x</header></body></html>\n')
    fs.writeFileSync(path.join(dir, 'broken.html'), `<html><head><title>t</title><script ${'a'.repeat(50_000)}`)
    const r = run(...initArgs(dir))
    assert.equal(r.status, 0, r.stderr)
    const home = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
    assert.equal(home.match(/data-deploynet/g).length, 1)
    assert.ok(!home.includes('old.example') && home.includes('data-signal="wss://signal.example"'), home)
    assert.ok(home.includes('<script>var t = "<head>"</script><title>Home</title>'), 'the page\'s own script untouched')
    const broken = fs.readFileSync(path.join(dir, 'broken.html'), 'utf8')
    assert.ok(broken.startsWith('<html><head>\n<script data-deploynet '), broken.slice(0, 80))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('init reads pages as a browser does: a <head> in a comment or a script string is not the head; modes kept; a bad name stops it before any change', () => {
  const dir = build()
  try {
    // No <head> of its own: the one in the script's string must not get the tag.
    const tpl = '<!doctype html><script>var tpl = "<html><head><title>x</title></head>";</script><p>body</p>\n'
    fs.writeFileSync(path.join(dir, 'template.html'), tpl)
    // A commented-out <head> first, the real one after.
    fs.writeFileSync(path.join(dir, 'commented.html'), '<!doctype html><!-- <head> old --><html><head><title>c</title></head><body>c</body></html>')
    fs.chmodSync(path.join(dir, 'commented.html'), 0o600)
    const r = run(...initArgs(dir))
    assert.equal(r.status, 0, r.stderr)
    assert.equal(fs.readFileSync(path.join(dir, 'template.html'), 'utf8'), tpl)
    assert.match(r.stderr, /template\.html has no <head>/)
    const commented = fs.readFileSync(path.join(dir, 'commented.html'), 'utf8')
    assert.ok(commented.startsWith('<!doctype html><!-- <head> old --><html><head>\n<script data-deploynet '), commented.slice(0, 120))
    assert.equal(fs.statSync(path.join(dir, 'commented.html')).mode & 0o777, 0o600, 'the page keeps its mode')

    // A name publish would refuse: init says so and leaves every page and file as it was.
    const fresh = build()
    try {
      fs.writeFileSync(path.join(fresh, 'bad\x01name.txt'), 'x')
      const before = fs.readdirSync(fresh).sort()
      const page = fs.readFileSync(path.join(fresh, 'index.html'), 'utf8')
      const bad = run(...initArgs(fresh))
      assert.equal(bad.status, 1)
      assert.match(bad.stderr, /unusable file name .*nothing changed/s)
      assert.deepEqual(fs.readdirSync(fresh).sort(), before, 'no file written')
      assert.equal(fs.readFileSync(path.join(fresh, 'index.html'), 'utf8'), page, 'no page touched')
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true })
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('init --base /docs/: every URL and manifest path under the base; verify --base agrees', () => {
  const dir = build()
  try {
    assert.equal(run(...initArgs(dir, '--base', '/docs')).status, 0)
    const home = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
    for (const attr of ['src="/docs/deploynet.', 'data-manifest="/docs/deploynet.json"', 'data-sw="/docs/deploynet-sw.js"', 'data-ring-wasm="/docs/deploynet_ring.']) {
      assert.ok(home.includes(attr), attr)
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))
    assert.ok(manifest.files.every((f) => f.path.startsWith('/docs/')), manifest.files.map((f) => f.path).join(' '))
    assert.equal(run('verify', dir, '--base', '/docs/').status, 0)
    const wrong = run('verify', dir)
    assert.equal(wrong.status, 1)
    assert.match(wrong.stdout, /missing: \/docs\/index\.html/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('init refuses what it cannot do, naming the flag', () => {
  const dir = build()
  try {
    let r = run('init', dir, '--origin', 'https://site.example')
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--signal/)
    r = run('init', dir, '--signal', 'wss://s.example', '--origin', 'nope')
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--origin/)
    r = run(...initArgs(dir, '--base', 'docs'))
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--base/)
    r = run('init', dir, '--origin', 'https://site.example', '--signal', 'wss://s.example', '--client-dir', dir)
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--client-dir/)
    assert.ok(!fs.existsSync(path.join(dir, 'deploynet.json')))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
