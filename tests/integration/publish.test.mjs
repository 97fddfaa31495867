// deploynet publish / verify / keygen on real directory trees, hostile ones included. The
// manifest is checked against docs/manifest.schema.json and its signature with WebCrypto
// Ed25519, as a browser would.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync, execFileSync } from 'node:child_process'
import { mkdtempSync as makeTemp, rmSync, mkdirSync, writeFileSync, readFileSync, symlinkSync, existsSync, utimesSync, appendFileSync } from 'node:fs'
import { createHash, randomBytes, webcrypto } from 'node:crypto'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv2020 from 'ajv/dist/2020.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const cli = process.env.DEPLOYNET_CLI || path.join(root, 'build/test/cli/deploynet')
const schema = JSON.parse(readFileSync(path.join(root, 'docs/manifest.schema.json'), 'utf8'))
const validate = new Ajv2020({ allErrors: true }).compile(schema)

// Every temporary directory a test makes, removed when the file is done.
const temps = []
const mkdtempSync = (prefix) => { const d = makeTemp(prefix); temps.push(d); return d }
after(() => { for (const d of temps) rmSync(d, { recursive: true, force: true }) })

const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' })
const sha = buf => createHash('sha256').update(buf).digest('hex')

function site () {
  const dir = mkdtempSync(path.join(tmpdir(), 'dn-site-'))
  mkdirSync(path.join(dir, 'css'))
  mkdirSync(path.join(dir, 'img'))
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><h1>hello</h1>')
  writeFileSync(path.join(dir, 'css/app.css'), 'body { color: red }')
  writeFileSync(path.join(dir, 'empty.txt'), '')
  writeFileSync(path.join(dir, 'img/one-piece.png'), randomBytes(1024))
  writeFileSync(path.join(dir, 'img/one-over.png'), randomBytes(1025))
  writeFileSync(path.join(dir, 'img/app.js.map'), '{}')
  return dir
}

const manifestOf = dir => JSON.parse(readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))

test('publish writes a schema-valid manifest whose hashes are the files\' SHA-256', () => {
  const dir = site()
  const r = run('publish', dir, '--origin', 'https://site.example/', '--piece-size', '1KiB')
  assert.equal(r.status, 0, r.stderr)
  const m = manifestOf(dir)
  assert.ok(validate(m), JSON.stringify(validate.errors))
  assert.equal(m.origin, 'https://site.example')
  assert.deepEqual(m.files.map(f => f.path),
    ['/css/app.css', '/empty.txt', '/img/app.js.map', '/img/one-over.png', '/img/one-piece.png', '/index.html'])
  for (const f of m.files) {
    const bytes = readFileSync(path.join(dir, f.path))
    assert.equal(f.sha256, sha(bytes), f.path)
    assert.equal(f.size, bytes.length)
    const pieces = []
    for (let off = 0; off < bytes.length; off += 1024) pieces.push(sha(bytes.subarray(off, off + 1024)))
    assert.deepEqual(f.pieces, pieces, f.path)
  }
  const byPath = Object.fromEntries(m.files.map(f => [f.path, f]))
  assert.equal(byPath['/empty.txt'].pieces.length, 0)
  assert.equal(byPath['/img/one-piece.png'].pieces.length, 1)
  assert.equal(byPath['/img/one-over.png'].pieces.length, 2)
  assert.equal(byPath['/index.html'].type, 'text/html; charset=utf-8')
})

test('output is deterministic and never lists itself', () => {
  const dir = site()
  assert.equal(run('publish', dir, '--origin', 'https://a.example').status, 0)
  const first = readFileSync(path.join(dir, 'deploynet.json'))
  utimesSync(path.join(dir, 'index.html'), new Date(2001, 1, 1), new Date(2001, 1, 1))
  assert.equal(run('publish', dir, '--origin', 'https://a.example', '--jobs', '1').status, 0)
  assert.deepEqual(readFileSync(path.join(dir, 'deploynet.json')), first)
  assert.ok(!manifestOf(dir).files.some(f => f.path === '/deploynet.json'))
  // A changed file changes its hash and the deploy id, nothing else.
  const before = manifestOf(dir)
  appendFileSync(path.join(dir, 'css/app.css'), ' ')
  assert.equal(run('publish', dir, '--origin', 'https://a.example').status, 0)
  const after = manifestOf(dir)
  assert.notEqual(after.deploy_id, before.deploy_id)
  const changed = after.files.filter((f, i) => f.sha256 !== before.files[i].sha256).map(f => f.path)
  assert.deepEqual(changed, ['/css/app.css'])
})

test('--exclude leaves files out', () => {
  const dir = site()
  assert.equal(run('publish', dir, '--origin', 'https://a.example', '--exclude', '*.map', '--exclude', 'css/*').status, 0)
  const paths = manifestOf(dir).files.map(f => f.path)
  assert.ok(!paths.includes('/img/app.js.map'))
  assert.ok(!paths.includes('/css/app.css'))
  assert.ok(paths.includes('/index.html'))
  // verify takes the same globs: the excluded files are not "not in manifest".
  const plain = run('verify', dir)
  assert.equal(plain.status, 1)
  assert.match(plain.stdout, /not in manifest: \/img\/app\.js\.map/)
  const same = run('verify', dir, '--exclude', '*.map', '--exclude', 'css/*')
  assert.equal(same.status, 0, same.stdout)
})

test('hidden names (.env, .git) are left out and said so; .well-known is listed; --include-hidden lists them', () => {
  const dir = site()
  writeFileSync(path.join(dir, '.env'), 'SECRET=1')
  mkdirSync(path.join(dir, '.git'))
  writeFileSync(path.join(dir, '.git/config'), '[core]')
  mkdirSync(path.join(dir, 'css/.cache'))
  writeFileSync(path.join(dir, 'css/.cache/x'), 'x')
  mkdirSync(path.join(dir, '.well-known'))
  writeFileSync(path.join(dir, '.well-known/security.txt'), 'Contact: a@a.example')
  const r = run('publish', dir, '--origin', 'https://a.example')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /left out 3 hidden name\(s\): \/\.env \/\.git \/css\/\.cache/)
  const paths = manifestOf(dir).files.map(f => f.path)
  assert.deepEqual(paths.filter(p => p.includes('/.')), ['/.well-known/security.txt'])
  assert.equal(run('verify', dir).status, 0, 'verify leaves them out too')
  const all = run('publish', dir, '--origin', 'https://a.example', '--include-hidden')
  assert.equal(all.status, 0, all.stderr)
  const listed = manifestOf(dir).files.map(f => f.path)
  for (const p of ['/.env', '/.git/config', '/css/.cache/x']) assert.ok(listed.includes(p), p)
  assert.equal(run('verify', dir, '--include-hidden').status, 0)
  assert.equal(run('verify', dir).status, 1, 'listed hidden files, not looked at: missing')
})

test('verify passes on the tree and lists every mismatch of a tampered one', () => {
  const dir = site()
  assert.equal(run('publish', dir, '--origin', 'https://a.example', '--piece-size', '1KiB').status, 0)
  const ok = run('verify', dir)
  assert.equal(ok.status, 0, ok.stdout)
  assert.match(ok.stdout, /^ok: 6 files match/)
  // Tamper: flip one byte of the second piece, delete one file, add one.
  const p = path.join(dir, 'img/one-over.png')
  const bytes = readFileSync(p)
  bytes[1024] ^= 0xff
  writeFileSync(p, bytes)
  execFileSync('rm', [path.join(dir, 'empty.txt')])
  writeFileSync(path.join(dir, 'extra.js'), 'x')
  const bad = run('verify', dir)
  assert.equal(bad.status, 1)
  assert.match(bad.stdout, /changed: \/img\/one-over\.png .*1 of 2 pieces differ/)
  assert.match(bad.stdout, /missing: \/empty\.txt/)
  assert.match(bad.stdout, /not in manifest: \/extra\.js/)
  assert.match(bad.stdout, /3 mismatch/)
})

test('a symlink leaving the directory is refused and no manifest is written', () => {
  const dir = site()
  symlinkSync('/etc/passwd', path.join(dir, 'passwd'))
  const r = run('publish', dir, '--origin', 'https://a.example')
  assert.equal(r.status, 1)
  assert.match(r.stderr, /symlink leaves the directory: \/passwd -> \/etc\/passwd/)
  assert.match(r.stderr, /no manifest written/)
  assert.ok(!existsSync(path.join(dir, 'deploynet.json')))
})

test('a failed run leaves an earlier manifest untouched', () => {
  const dir = site()
  assert.equal(run('publish', dir, '--origin', 'https://a.example').status, 0)
  const before = readFileSync(path.join(dir, 'deploynet.json'))
  symlinkSync('../../', path.join(dir, 'up'))
  assert.equal(run('publish', dir, '--origin', 'https://a.example').status, 1)
  assert.deepEqual(readFileSync(path.join(dir, 'deploynet.json')), before)
})

test('symlink loops end; inside links are followed once; broken links and odd names are named', () => {
  const dir = site()
  symlinkSync('..', path.join(dir, 'css/loop')) // points back at the root: inside, a loop
  symlinkSync('index.html', path.join(dir, 'home.html'))
  const r = run('publish', dir, '--origin', 'https://a.example')
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /skipped \/css\/loop: a directory already listed/)
  assert.ok(manifestOf(dir).files.some(f => f.path === '/home.html'))

  const odd = site()
  symlinkSync('nowhere', path.join(odd, 'broken.css'))
  writeFileSync(path.join(odd, 'line\nbreak.js'), 'x')
  writeFileSync(Buffer.concat([Buffer.from(odd + '/bad-'), Buffer.from([0xff]), Buffer.from('.js')]), 'x')
  const e = run('publish', odd, '--origin', 'https://a.example')
  assert.equal(e.status, 1)
  assert.match(e.stderr, /broken or looping symlink \/broken\.css/)
  assert.match(e.stderr, /unusable file name .*line.*control character/s)
  assert.match(e.stderr, /unusable file name .*not valid UTF-8/)
})

test('a FIFO is skipped, not read (which would hang)', () => {
  const dir = site()
  execFileSync('mkfifo', [path.join(dir, 'pipe')])
  const r = spawnSync(cli, ['publish', dir, '--origin', 'https://a.example'], { encoding: 'utf8', timeout: 20000 })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /skipped \/pipe: not a regular file/)
})

test('bad arguments exit 2 with the flag named', () => {
  assert.equal(run('publish').status, 2)
  const origin = run('publish', site())
  assert.equal(origin.status, 2)
  assert.match(origin.stderr, /--origin/)
  const piece = run('publish', site(), '--origin', 'https://a.example', '--piece-size', '10')
  assert.equal(piece.status, 2)
  assert.match(piece.stderr, /--piece-size/)
  assert.equal(run('publish', '/nonexistent-dir', '--origin', 'https://a.example').status, 1)
  assert.equal(run('frobnicate').status, 2)
})

test('keygen + publish --sign: WebCrypto Ed25519 accepts the signature; verify --key too', async () => {
  const dir = site()
  const keys = mkdtempSync(path.join(tmpdir(), 'dn-keys-'))
  const key = path.join(keys, 'site.key')
  assert.equal(run('keygen', key).status, 0)
  assert.equal(run('keygen', key).status, 1) // never overwrites
  assert.equal(run('publish', dir, '--origin', 'https://a.example', '--sign', key).status, 0)
  const manifestBytes = readFileSync(path.join(dir, 'deploynet.json'))
  const sig = JSON.parse(readFileSync(path.join(dir, 'deploynet.json.sig'), 'utf8'))
  assert.equal(sig.alg, 'Ed25519')
  assert.equal(sig.public_key, readFileSync(key + '.pub', 'utf8').trim())
  const pub = await webcrypto.subtle.importKey('raw', Buffer.from(sig.public_key, 'base64'), { name: 'Ed25519' }, false, ['verify'])
  const signature = Buffer.from(sig.signature, 'base64')
  assert.equal(await webcrypto.subtle.verify('Ed25519', pub, signature, manifestBytes), true)
  const tampered = Buffer.from(manifestBytes)
  tampered[10] ^= 1
  assert.equal(await webcrypto.subtle.verify('Ed25519', pub, signature, tampered), false)

  assert.equal(run('verify', dir, '--key', key + '.pub').status, 0)
  writeFileSync(path.join(dir, 'deploynet.json'), tampered)
  const bad = run('verify', dir, '--key', key + '.pub')
  assert.equal(bad.status, 1)
  assert.match(bad.stdout, /signature: .* does not match/)
})

test('a file written to while it is hashed fails publish, naming the file; nothing is written', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dn-changing-'))
  const big = path.join(dir, 'bundle.js')
  writeFileSync(big, randomBytes(48 << 20))
  // A build still writing its output: appends for as long as publish runs.
  const { spawn } = await import('node:child_process')
  const writer = spawn('bash', ['-c', `while true; do head -c 4096 /dev/urandom >> '${big}'; done`], { stdio: 'ignore' })
  try {
    const r = await new Promise((resolve) => {
      const p = spawn(cli, ['publish', dir, '--origin', 'https://site.example', '--jobs', '1'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      p.stderr.on('data', (d) => { err += d })
      p.on('exit', (status) => resolve({ status, stderr: err }))
    })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /\/bundle\.js.*changed while it was hashed/)
    assert.equal(existsSync(path.join(dir, 'deploynet.json')), false)
  } finally {
    writer.kill('SIGKILL')
  }
})

test('a deep tree is walked without resolving every path from the root', () => {
  // 1,500 levels: resolving canonical paths per entry made this take minutes.
  const dir = mkdtempSync(path.join(tmpdir(), 'dn-deep-'))
  let p = dir
  for (let i = 0; i < 1500; i++) { p = path.join(p, 'd'); mkdirSync(p) }
  writeFileSync(path.join(p, 'leaf.txt'), 'leaf')
  const r = run('publish', dir, '--origin', 'https://site.example')
  assert.equal(r.status, 0, r.stderr)
  const m = JSON.parse(readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))
  assert.equal(m.files.length, 1)
  assert.equal(m.files[0].path, '/d'.repeat(1500) + '/leaf.txt')
})
