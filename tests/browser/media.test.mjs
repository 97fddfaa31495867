// Media and downloads through the service worker, in Chromium with real WebRTC: a video played
// and sought with its bytes from a peer (Range requests answered 206 by the worker as pieces
// verify), a large download and a ranged one byte-identical to the origin's file, and a
// corrupting peer on a multi-piece video (banned; the video plays, not one bad byte served).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { startServer } from '../integration/harness.mjs'
import { startOrigin, publish, visitor, loadControlledPage, sha256, waitFor, waitForSwarm, CORRUPT } from './harness.mjs'

let signal, origin, dir, video, big
const open = []
let swarmN = 0

before(async () => {
  signal = await startServer()
  dir = fs.mkdtempSync('/tmp/dn-media-site-')
  origin = await startOrigin(dir)
  // A 20 s VP9 video (about 2.7 MB: 43 pieces of 64 KiB), made here from ffmpeg's test source.
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '20',
    '-c:v', 'libvpx-vp9', '-b:v', '1500k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '50',
    path.join(dir, 'video.webm')])
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(6 * 1024 * 1024 + 12345))
  video = fs.readFileSync(path.join(dir, 'video.webm'))
  big = fs.readFileSync(path.join(dir, 'big.bin'))
  publish(dir, origin.url)
})
after(async () => {
  for (const v of open) await v.close()
  await origin?.stop()
  await signal?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

// Pages of a site in its own swarm: a light home page, and a watch page whose video loads when
// asked (preload="none": the test starts it once the visitor is connected).
function pages (swarm, options = {}) {
  const config = JSON.stringify({ signal: [signal.url], swarm, firstByteTimeout: 4000, hedge: false, ...options })
  const tag = `<script>window.DeployNetConfig = ${config}</script>
<script src="/deploynet.js" async></script>`
  fs.writeFileSync(path.join(dir, `home-${swarm}.html`), `<!doctype html><html><head>${tag}</head><body>home</body></html>`)
  fs.writeFileSync(path.join(dir, `watch-${swarm}.html`), `<!doctype html><html><head>${tag}</head><body>
<video id="v" src="/video.webm" muted playsinline preload="none" width="320"></video></body></html>`)
  // A video that starts loading while the page parses, before DeployNet's engine is up.
  fs.writeFileSync(path.join(dir, `live-${swarm}.html`), `<!doctype html><html><head>${tag}</head><body>
<video id="v" src="/video.webm" muted playsinline autoplay width="320"></video></body></html>`)
}

// A visitor with the worker installed (a first view of the home page), then on the watch page.
async function watcher (name, swarm, initScript) {
  const v = await visitor(name, { initScript })
  open.push(v)
  await loadControlledPage(v, `${origin.url}/home-${swarm}.html`, { controlled: false })
  await waitFor(() => v.page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration())?.active), 20_000, `${name}'s worker active`)
  await loadControlledPage(v, `${origin.url}/watch-${swarm}.html`)
  await v.page.evaluate(async () => { window.dn = await window.deploynet })
  return v
}

const videoFromOrigin = (v, since) => originHits(v, '/video.webm', since).reduce((a, e) => a + e.bytes, 0)
const seed = (v, paths) => v.page.evaluate(async (paths) => {
  for (const p of paths) await (await window.dn.fetchPath(p)).arrayBuffer()
}, paths)
const holding = (v, n) => waitForSwarm(() => v.page.evaluate((n) => window.dn.peerList().some((p) => p.have >= n), n), 30_000, `${v.name} connected to a holder`)
const originHits = (v, p, since) => origin.log.slice(since).filter((e) => e.ua.endsWith(`visitor-${v.name}`) && e.path === p)

// Plays, checks that frames decode and time advances, seeks to `to` s and checks again.
const playAndSeek = (v, to) => v.page.evaluate(async (to) => {
  const el = document.getElementById('v')
  const until = (fn, ms, what) => new Promise((resolve, reject) => {
    const t0 = performance.now()
    const check = () => fn() ? resolve() : performance.now() - t0 > ms ? reject(new Error(`${what} (at ${el.currentTime}, readyState ${el.readyState}, error ${el.error?.message ?? ''})`)) : setTimeout(check, 50)
    check()
  })
  await el.play()
  await until(() => el.currentTime > 1.5, 20_000, 'playback advancing')
  const framesBefore = el.getVideoPlaybackQuality().totalVideoFrames
  el.currentTime = to
  await until(() => !el.seeking && el.currentTime > to + 1, 20_000, 'playback advancing after the seek')
  return { duration: el.duration, frames: el.getVideoPlaybackQuality().totalVideoFrames, framesBefore, error: el.error?.message ?? null }
}, to)

test('a video plays and seeks through the worker with its bytes from a peer; the origin sees no video request', async () => {
  const swarm = `media-${++swarmN}`.padEnd(20, '-')
  pages(swarm)
  const a = await watcher('MA', swarm)
  await seed(a, ['/video.webm', '/big.bin'])
  const b = await watcher('MB', swarm)
  await holding(b, 2)
  const since = origin.log.length
  const r = await playAndSeek(b, 15)
  assert.equal(r.error, null)
  assert.ok(Math.abs(r.duration - 20) < 0.5, `duration ${r.duration}`)
  assert.ok(r.framesBefore > 10 && r.frames > r.framesBefore, `frames decoded: ${r.framesBefore} then ${r.frames}`)
  assert.deepEqual(originHits(b, '/video.webm', since), [], 'no video byte from the origin')
  const s = await b.page.evaluate(() => window.dn.stats())
  assert.ok(s.bytesFromPeers >= 500_000, `from peers: ${s.bytesFromPeers}`)

  // Downloads: whole (streamed by the worker: over 4 MiB) and ranged, as a resumed download asks.
  const d = await b.page.evaluate(async () => {
    const hex = async (res) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await res.arrayBuffer())), (x) => x.toString(16).padStart(2, '0')).join('')
    const whole = await fetch('/big.bin')
    const wholeHash = await hex(whole)
    const part = await fetch('/big.bin', { headers: { range: 'bytes=1000000-2999999' } })
    return { status: whole.status, wholeHash, partStatus: part.status, contentRange: part.headers.get('content-range'), partHash: await hex(part), via: part.headers.get('x-deploynet') }
  })
  assert.equal(d.status, 200)
  assert.equal(d.wholeHash, sha256(big))
  assert.equal(d.partStatus, 206)
  assert.equal(d.contentRange, `bytes 1000000-2999999/${big.length}`)
  assert.equal(d.partHash, sha256(big.subarray(1_000_000, 3_000_000)))
  assert.deepEqual(originHits(b, '/big.bin', since), [], 'no download byte from the origin')
  // The video, read whole by the player's requests, is stored and served on from B's cache.
  const cached = await b.page.evaluate(async () => {
    const res = await fetch('/video.webm', { headers: { range: 'bytes=-1000' } })
    return { status: res.status, via: res.headers.get('x-deploynet'), range: res.headers.get('content-range'), n: (await res.arrayBuffer()).byteLength }
  })
  assert.equal(cached.status, 206)
  assert.equal(cached.range, `bytes ${video.length - 1000}-${video.length - 1}/${video.length}`)
  assert.equal(cached.n, 1000)
})

test('a peer corrupting a multi-piece video is banned; the video plays from the origin, not one bad byte served', async () => {
  const swarm = `media-${++swarmN}`.padEnd(20, '-')
  pages(swarm)
  const m = await watcher('MM', swarm, CORRUPT)
  await seed(m, ['/video.webm'])
  const c = await watcher('MC', swarm)
  await holding(c, 1)
  const r = await playAndSeek(c, 12)
  assert.equal(r.error, null)
  assert.ok(r.frames > r.framesBefore)
  const got = await c.page.evaluate(async () => {
    const res = await fetch('/video.webm', { headers: { range: 'bytes=0-' } })
    const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await res.arrayBuffer())), (x) => x.toString(16).padStart(2, '0')).join('')
    return { hex, stats: window.dn.stats() }
  })
  assert.equal(got.hex, sha256(video))
  assert.ok(got.stats.bans >= 1 && got.stats.badPieces >= 1, JSON.stringify({ bans: got.stats.bans, bad: got.stats.badPieces }))
})

test('a video that starts before the engine is up: the origin starts it, the engine takes over and peers bring the rest', async () => {
  const swarm = `media-${++swarmN}`.padEnd(20, '-')
  // The origin readAhead (256 KiB) beyond the player at most; peers take what comes after.
  pages(swarm, { readAhead: 256 * 1024 })
  const a = await watcher('MS', swarm)
  await seed(a, ['/video.webm'])
  // A far origin for the video (300 KB/s): the player cannot have it all before the engine is up.
  origin.rates.set('/video.webm', 300_000)
  try {
    const b = await visitor('ML')
    open.push(b)
    await loadControlledPage(b, `${origin.url}/home-${swarm}.html`, { controlled: false })
    await waitFor(() => b.page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration())?.active), 20_000, 'ML\'s worker active')
    const since = origin.log.length
    // DeployNet's script arrives 1.5 s late: the player's first request always comes first,
    // however busy the machine (without it, the engine could win the race on a loaded one).
    origin.delays.set('/deploynet.js', 1500)
    await loadControlledPage(b, `${origin.url}/live-${swarm}.html`)
    origin.delays.delete('/deploynet.js')
    assert.ok(origin.log.slice(since).some((e) => e.path === '/deploynet.js' && e.ua.endsWith('visitor-ML')), 'the late script came from the origin')
    await b.page.evaluate(async () => { window.dn = await window.deploynet })
    const r = await playAndSeek(b, 15)
    assert.equal(r.error, null)
    assert.ok(r.frames > r.framesBefore, `frames decoded: ${r.framesBefore} then ${r.frames}`)
    const hits = originHits(b, '/video.webm', since)
    assert.ok(hits.length >= 1 && hits[0].range === 'bytes=0-', `the player's own request went to the origin first: ${JSON.stringify(hits)}`)
    const fromOrigin = videoFromOrigin(b, since)
    const s = await b.page.evaluate(() => window.dn.stats())
    if (process.env.MEDIA_DEBUG) console.log('origin', fromOrigin, 'peers', s.bytesFromPeers, 'of', video.length, JSON.stringify(hits))
    assert.ok(fromOrigin < 0.6 * video.length, `the origin sent ${fromOrigin} of ${video.length} bytes`)
    assert.ok(s.bytesFromPeers > 0.3 * video.length, `from peers: ${s.bytesFromPeers}`)
  } finally {
    origin.rates.delete('/video.webm')
    origin.delays.delete('/deploynet.js')
  }
})

test('a viewer midway through a video serves the pieces it holds, before it holds the whole file', async () => {
  const swarm = `media-${++swarmN}`.padEnd(20, '-')
  pages(swarm, { readAhead: 256 * 1024 })
  const a = await watcher('MP', swarm)
  // A reads the first MB of the video and stops there (a player with its buffer full): the
  // origin runs at most readAhead beyond it, so A holds part of the file, not all of it.
  await a.page.evaluate(async () => {
    const { reader } = window.dn.read('/video.webm', 0, 999_999)
    while (await reader.next()) { /* read */ }
    window.kept = window.dn.read('/video.webm', 1_000_000, 2_000_000) // open, unread: the transfer stays
  })
  const b = await watcher('MQ', swarm)
  await waitForSwarm(() => b.page.evaluate(() => window.dn.peerSet && [...window.dn.peerSet.peers.values()].some((p) => p.pieces.size > 0)),
    30_000, 'MQ told which pieces MP holds')
  const since = origin.log.length
  const got = await b.page.evaluate(async () => {
    const { reader } = window.dn.read('/video.webm', 0, 999_999)
    const parts = []
    for (let c; (c = await reader.next());) parts.push(c)
    const all = new Uint8Array(parts.reduce((n, c) => n + c.length, 0))
    let at = 0
    for (const c of parts) { all.set(c, at); at += c.length }
    const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', all)), (x) => x.toString(16).padStart(2, '0')).join('')
    return { hex, n: all.length, stats: window.dn.stats() }
  })
  assert.equal(got.n, 1_000_000)
  assert.equal(got.hex, sha256(video.subarray(0, 1_000_000)))
  assert.deepEqual(originHits(b, '/video.webm', since), [], 'the first MB from the viewer midway, none from the origin')
  assert.ok(got.stats.bytesFromPeers >= 1_000_000, `from peers: ${got.stats.bytesFromPeers}`)
  const aStats = await a.page.evaluate(() => window.dn.stats())
  assert.ok(!aStats.assets.some((x) => x.path === '/video.webm'), 'A never held the whole video')
})
