// make bench, the network lab part: per profile, the demo site with DeployNet against the same
// site without it (no tag, no worker, no DeployNet file), in the same run, each visitor a real
// Chromium in its own home network behind NAT. Origin bytes and requests come from nginx's
// access log, page load from the load event, "rendered" from first contentful paint.
//
//   node lab/bench.mjs [PROFILE...]      (default: lan broadband flash-crowd lossy)
//   LAB_SITES='demo spa media' (the demo site, Swagger UI as a single-page app, the media site's
//   video page: each visitor watches it LAB_WATCH_MS=20000; LAB_VIDEO_S=100 s of video at 4 Mbit/s)
//   LAB_BROWSERS=chromium,firefox (visitor k in the k-th engine of the list, round robin; the
//   same engines for the plain site and DeployNet; default chromium: page load per engine)
//   LAB_VISITORS=5 (each reads 3 pages)  LAB_READ_MS=2000 (on each page)  LAB_DEBUG=1 (per view; with LAB_TIMING=1 where the time went)
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { Lab, ORIGIN_ADDR, SIGNAL_ADDR, SIGNAL_PORT, TURN_PORT, labSupport, root } from './lab.mjs'
import { visitor, makeDemoSite, makeMediaSite, labContext } from '../tests/browser/harness.mjs'

const VISITORS = Number(process.env.LAB_VISITORS ?? 5)
const BROWSERS = (process.env.LAB_BROWSERS ?? 'chromium').split(/[ ,]+/).filter(Boolean)
for (const b of BROWSERS) if (!['chromium', 'firefox'].includes(b)) throw new Error(`LAB_BROWSERS: unknown engine ${b}`)
const STAGGER = Number(process.env.LAB_STAGGER_MS ?? 1000)
const profiles = process.argv.slice(2).length ? process.argv.slice(2) : ['lan', 'broadband', 'flash-crowd', 'lossy']
const bin = (p) => process.env[`DEPLOYNET_${p.toUpperCase().replace(/[^A-Z]/g, '_')}`] ?? path.join(root, 'build/release', p)
const SIGNAL_BIN = process.env.DEPLOYNET_SIGNAL ?? bin('server/deploynet-signal')
process.env.DEPLOYNET_CLI ??= path.join(root, 'build/release/cli/deploynet')
const ORIGIN = `http://${ORIGIN_ADDR}`

// The same site with DeployNet taken out: the tag's script block and DeployNet's own files.
function plainCopy (from, to) {
  fs.cpSync(from, to, { recursive: true })
  for (const f of fs.readdirSync(to)) {
    if (f.startsWith('deploynet')) fs.rmSync(path.join(to, f))
    if (f.endsWith('.html')) {
      const html = fs.readFileSync(path.join(to, f), 'utf8')
      fs.writeFileSync(path.join(to, f), html.replace(/<!-- DeployNet:[\s\S]*?<\/script>\n/, ''))
    }
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN }
const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)] : NaN }

// The sites: the demo (three pages) and a real single-page app (Swagger UI from its npm
// package), viewed three times by each visitor. LAB_SITES picks them (default both).
const SITES = (process.env.LAB_SITES ?? 'demo spa').split(/[ ,]+/).filter(Boolean)
const SITE_PAGES = { demo: ['index.html', 'gallery.html', 'about.html'], spa: ['index.html', 'index.html', 'index.html'], media: ['video.html'] }
let SITE = 'demo'
let PAGES = SITE_PAGES.demo
const READ_MS = Number(process.env.LAB_READ_MS ?? 2000)
const WATCH_MS = Number(process.env.LAB_WATCH_MS ?? 20_000)

// One visitor: a fresh browser in its own home network, reading the site's pages one after
// the other. Page load and first contentful paint come from the page's own timing entries.
async function visit (lab, k, name, withDeployNet) {
  const engine = BROWSERS[(k - 1) % BROWSERS.length]
  const v = await visitor(name, { engine, contextOptions: labContext(lab, k, engine) })
  const views = []
  for (const page of PAGES) {
    const t0 = Date.now()
    try {
      await v.page.goto(`${ORIGIN}/${page}`, { waitUntil: 'load', timeout: 90_000 })
    } catch (err) {
      // Chromium aborts a navigation when it sees its network change (seen once in a run:
      // ERR_NETWORK_CHANGED in a home namespace); the view is taken again, and said so.
      if (!/ERR_NETWORK_CHANGED/.test(String(err))) throw err
      console.log(`  ${name} ${page}: ERR_NETWORK_CHANGED, loading it again`)
      await v.page.goto(`${ORIGIN}/${page}`, { waitUntil: 'load', timeout: 90_000 })
    }
    const marks = await v.page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0]
      const fcp = performance.getEntriesByName('first-contentful-paint')[0]
      // Where the time went (LAB_DEBUG): the document's response and parse, then each resource
      // from its start to its first byte and its end (workerStart: the worker's part).
      const ms = (x) => Math.round(x)
      const timing = {
        html: [ms(nav.workerStart), ms(nav.responseStart), ms(nav.responseEnd), ms(nav.domContentLoadedEventEnd)],
        resources: performance.getEntriesByType('resource')
          .filter((r) => r.initiatorType !== 'xmlhttprequest' && r.initiatorType !== 'fetch')
          .map((r) => [new URL(r.name).pathname, ms(r.startTime), ms(r.workerStart), ms(r.responseStart), ms(r.responseEnd)])
      }
      return { load: nav.loadEventEnd, rendered: fcp ? fcp.startTime : nav.loadEventEnd, timing }
    })
    if (SITE === 'media' && withDeployNet) {
      // A first view reloads once under the worker (data-first-visit="reload"): the view is the
      // reloaded page, timed from the first navigation's start.
      for (let i = 0; i < 100; i++) {
        const ready = await v.page.evaluate(() => document.readyState === 'complete' && !!navigator.serviceWorker.controller).catch(() => false)
        if (ready) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    await new Promise((resolve) => setTimeout(resolve, SITE === 'media' ? WATCH_MS : READ_MS))
    // A video page: its first frame (ms after the first navigation started) and its stalls.
    // Then the viewer pauses and stays on the page (with DeployNet or without: both the same).
    const media = await v.page.evaluate(() => {
      document.querySelector('video')?.pause()
      return window.mediaMarks && {
        firstFrame: window.mediaMarks.firstFrame === null ? null : performance.timeOrigin + window.mediaMarks.firstFrame,
        stalls: window.mediaMarks.stalls, stalledMs: window.mediaMarks.stalledMs, navStart: performance.timeOrigin,
      }
    }).catch(() => null)
    if (media?.firstFrame) media.firstFrame -= t0
    if (media) media.navStart -= t0 // > 0: the page viewed began after a first-visit reload
    const stats = withDeployNet
      ? await v.page.evaluate(async () => {
        const dn = await window.deploynet
        if (!dn) return null
        await dn.originUsage() // the worker's counts for this page, then stats() has them
        return dn.stats()
      })
      : null
    views.push({ page, ...marks, media, stats })
  }
  return { v, name, engine, views }
}

async function runConfig (lab, label, withDeployNet) {
  lab.clearAccessLog()
  const arrivals = lab.profile.arrivals ?? { stagger_ms: STAGGER, sequential: true }
  const visits = []
  const open = []
  let pairStats = { connected: 0, total: 0 }
  const record = (vis) => {
    if (process.env.LAB_DEBUG) {
      for (const view of vis.views) {
        const st = view.stats
        console.log(`  ${vis.name} ${view.page}: load ${view.load.toFixed(0)} ms, rendered ${view.rendered.toFixed(0)} ms` +
          (st ? `, peers ${st.peers}, from peers ${st.bytesFromPeers}, from origin ${st.bytesFromOrigin}, adopted ${st.bytesAdopted}` +
            `, joining ${JSON.stringify(st.timeline)} first channel ${st.firstPeerMs?.toFixed(0)}` : ''))
        if (process.env.LAB_TIMING) {
          // [worker start, response start, response end, DOMContentLoaded]; per resource:
          // [path, start, worker start, first byte, end], the latest ends first.
          const last = [...view.timing.resources].sort((a, b) => b[4] - a[4]).slice(0, 6)
          console.log(`    html ${JSON.stringify(view.timing.html)} resources ${JSON.stringify(last)}`)
        }
      }
    }
    // With DeployNet, visitors stay (on their last page they serve the later ones); without,
    // they would add nothing, so they leave; on the video page both stay (a paused player
    // still buffers: what it costs the origin is counted on both sides).
    const stay = withDeployNet || SITE === 'media'
    if (stay) open.push(vis.v)
    return stay ? null : vis.v.close()
  }
  try {
    // The first visitor alone; then the others one after another, or all together (a crowd).
    const first = await visit(lab, 1, `${label}-1`, withDeployNet)
    visits.push(first)
    await record(first)
    if (arrivals.sequential) {
      for (let k = 2; k <= VISITORS; k++) {
        await new Promise((resolve) => setTimeout(resolve, arrivals.stagger_ms))
        const vis = await visit(lab, k, `${label}-${k}`, withDeployNet)
        visits.push(vis)
        await record(vis)
      }
    } else {
      const crowd = []
      for (let k = 2; k <= VISITORS; k++) {
        crowd.push(visit(lab, k, `${label}-${k}`, withDeployNet).then(async (vis) => { await record(vis); return vis }))
        await new Promise((resolve) => setTimeout(resolve, arrivals.stagger_ms))
      }
      visits.push(...await Promise.all(crowd))
    }
    // Pairs of visitors connected, among the engines still up (everyone on their last page).
    if (withDeployNet) {
      await new Promise((resolve) => setTimeout(resolve, 3000))
      const engines = await Promise.all(open.map((v) => v.page.evaluate(async () => {
        const dn = await window.deploynet
        return dn ? { id: dn.peerId, peers: dn.peerList().map((p) => p.id) } : null
      }).catch(() => null)))
      const live = engines.filter(Boolean)
      const ids = new Set(live.map((e) => e.id))
      const pairs = new Set()
      for (const e of live) for (const p of e.peers) if (ids.has(p)) pairs.add([e.id, p].sort().join())
      pairStats = { connected: pairs.size, total: live.length * (live.length - 1) / 2 }
    }
  } finally {
    for (const v of open) await v.close()
  }
  const log = lab.accessLog()
  const later = visits.slice(1)
  const views = later.flatMap((x) => x.views)
  const byVisitor = (name) => log.filter((e) => e.ua.endsWith(`visitor-${name}`))
  const laterLog = later.flatMap((x) => byVisitor(x.name))
  const isAsset = (e) => !e.path.endsWith('.html') && !e.path.startsWith('/deploynet') && e.path !== '/' && e.path !== '/favicon.ico'
  const out = {
    load: views.map((x) => x.load), rendered: views.map((x) => x.rendered),
    loadBy: Object.fromEntries(BROWSERS.map((b) => [b, later.filter((x) => x.engine === b).flatMap((x) => x.views.map((y) => y.load))])),
    originBytes: laterLog.reduce((a, e) => a + e.bytes, 0), originRequests: laterLog.length,
    originAssetRequests: laterLog.filter(isAsset).length, views: views.length,
    firstFrame: views.map((x) => x.media?.firstFrame).filter((x) => typeof x === 'number'),
    navStart: views.map((x) => x.media?.navStart).filter((x) => typeof x === 'number'),
    stalls: views.reduce((a, x) => a + (x.media?.stalls ?? 0), 0),
    stalledMs: views.reduce((a, x) => a + (x.media?.stalledMs ?? 0), 0),
    mediaBytes: laterLog.filter((e) => e.path.startsWith('/media/')).reduce((a, e) => a + e.bytes, 0),
    mediaRequests: laterLog.filter((e) => e.path.startsWith('/media/')).length,
  }
  if (process.env.LAB_DEBUG) {
    // What the later visitors asked the origin for: path and status, requests, bytes.
    const byPath = new Map()
    for (const e of laterLog) {
      const k = `${e.path} ${e.status}${e.range ? ' range' : ''}`
      const x = byPath.get(k) ?? { n: 0, bytes: 0 }
      x.n++
      x.bytes += e.bytes
      byPath.set(k, x)
    }
    for (const [k, x] of [...byPath].sort((a, b) => b[1].bytes - a[1].bytes)) console.log(`    ${label} origin: ${k}: ${x.n} requests, ${x.bytes} bytes`)
  }
  if (withDeployNet) {
    const stats = views.map((x) => x.stats).filter(Boolean)
    out.peerBytes = stats.reduce((a, st) => a + st.bytesFromPeers, 0)
    out.connected = later.filter((x) => x.views.some((y) => y.stats?.peers > 0)).length / later.length
    out.pairs = pairStats
    out.firstPeer = stats.map((st) => st.firstPeerMs).filter((x) => x !== null && x !== undefined)
    out.statsOriginBytes = stats.reduce((a, st) => a + (st.originBytes ?? 0), 0)
    out.statsOriginRequests = stats.reduce((a, st) => a + (st.originRequests ?? 0), 0)
  }
  return out
}

async function benchProfile (name, site) {
  PAGES = SITE_PAGES[site]
  SITE = site
  const lab = await Lab.create({ profile: name, visitors: VISITORS, linkBinary: bin('lab/deploynet-lab-link') })
  try {
    fs.chmodSync(lab.work, 0o755)
    const p2pDir = path.join(lab.work, 'site')
    const plainDir = path.join(lab.work, 'plain')
    const signalUrl = `ws://${SIGNAL_ADDR}:${SIGNAL_PORT}`
    if (site === 'spa') {
      const build = path.join(root, 'examples/spa/build.mjs')
      execFileSync('node', [build, p2pDir, ORIGIN, signalUrl])
      execFileSync('node', [build, plainDir, ORIGIN, signalUrl, '--plain'])
    } else if (site === 'media') {
      makeMediaSite(p2pDir, ORIGIN, signalUrl, ['--video-s', process.env.LAB_VIDEO_S ?? '100', '--download-mb', '1', '--photos', '1'])
      plainCopy(p2pDir, plainDir)
    } else {
      makeDemoSite(p2pDir, ORIGIN, signalUrl, 1500)
      plainCopy(p2pDir, plainDir)
    }
    const secret = 'bench-' + Math.random().toString(36).slice(2)
    lab.turnSecret = secret
    await lab.startTurn(secret)
    await lab.startSignal(SIGNAL_BIN, ['--log-level', 'warn', '--stun', `stun:${SIGNAL_ADDR}:${TURN_PORT}`,
      '--turn', `turn:${SIGNAL_ADDR}:${TURN_PORT}?transport=udp`])
    let nginx = await lab.startOrigin(plainDir)
    const plain = await runConfig(lab, `${name}-plain`, false)
    nginx.kill('SIGTERM')
    await nginx.exited
    nginx = await lab.startOrigin(p2pDir)
    const p2p = await runConfig(lab, `${name}-p2p`, true)
    return { name: `${name} (${site})`, plain, p2p, linkLog: lab.linkLog }
  } finally {
    await lab.destroy()
  }
}

function report (r) {
  const f = (x) => x.toFixed(0).padStart(6)
  const { plain, p2p } = r
  // "12% lower" or "6% higher": a change against the plain site, in words that cannot be misread.
  const pct = (a, b) => {
    const d = 100 * (1 - a / Math.max(1, b))
    return `${Math.abs(d).toFixed(0)}% ${d >= 0 ? 'lower' : 'higher'}`
  }
  console.log(`\n${r.name}: ${VISITORS} visitors (${BROWSERS.join(', ')}) reading ${PAGES.length} pages each; figures for visitors 2-${VISITORS} (${plain.views} page views per configuration)`)
  console.log('                   load (ms) median   p90   rendered median   p90   origin KiB  origin requests (assets)')
  for (const [label, c] of [['plain site', plain], ['DeployNet', p2p]]) {
    console.log(`  ${label.padEnd(16)}        ${f(median(c.load))} ${f(p90(c.load))}           ${f(median(c.rendered))} ${f(p90(c.rendered))}   ` +
      `${f(c.originBytes / 1024)}      ${String(c.originRequests).padStart(4)} (${c.originAssetRequests})`)
  }
  console.log(`  DeployNet against the plain site: page load ${(median(p2p.load) / median(plain.load)).toFixed(2)}x, rendered ` +
    `${(median(p2p.rendered) / median(plain.rendered)).toFixed(2)}x (medians); origin bytes ${pct(p2p.originBytes, plain.originBytes)}, ` +
    `requests ${pct(p2p.originRequests, plain.originRequests)}, asset requests ${pct(p2p.originAssetRequests, plain.originAssetRequests)}; ` +
    `${(p2p.peerBytes / 1048576).toFixed(1)} MiB from peers`)
  if (BROWSERS.length > 1) {
    console.log('  per engine: ' + BROWSERS.map((b) => {
      const [x, y] = [plain.loadBy[b], p2p.loadBy[b]]
      return `${b} page load ${f(median(x))} → ${f(median(y))} ms (${(median(y) / median(x)).toFixed(2)}x, ${y.length} views)`
    }).join('; '))
  }
  console.log(`  visitors connected to a peer ${(100 * p2p.connected).toFixed(0)}%; visitor pairs connected ` +
    `${p2p.pairs.connected}/${p2p.pairs.total}; first data channel open ${f(median(p2p.firstPeer))} ms after the page started ` +
    `(median of ${p2p.firstPeer.length} page views; p90 ${f(p90(p2p.firstPeer))})`)
  if (plain.firstFrame.length) {
    console.log(`  video: first frame ${f(median(plain.firstFrame))} ms plain, ${f(median(p2p.firstFrame))} ms DeployNet ` +
      `(${(median(p2p.firstFrame) / median(plain.firstFrame)).toFixed(2)}x, medians of ${plain.firstFrame.length} / ${p2p.firstFrame.length}); ` +
      `stalls ${plain.stalls} plain (${f(plain.stalledMs)} ms), ${p2p.stalls} DeployNet (${f(p2p.stalledMs)} ms); ` +
      `video bytes from the origin ${pct(p2p.mediaBytes, plain.mediaBytes)} (${f(plain.mediaBytes / 1048576)} → ${f(p2p.mediaBytes / 1048576)} MiB), ` +
      `video requests ${plain.mediaRequests} → ${p2p.mediaRequests}; the viewed page began ${f(median(p2p.navStart))} ms ` +
      `after the first navigation with DeployNet (the first-visit reload), ${f(median(plain.navStart))} ms without`)
  }
  console.log(`  the visitors' own stats().originBytes: ${f(p2p.statsOriginBytes / 1024)} KiB in ${p2p.statsOriginRequests} requests ` +
    `(${(100 * p2p.statsOriginBytes / Math.max(1, p2p.originBytes)).toFixed(1)}% of the access log's bytes)`)
}

const why = labSupport()
if (why) {
  console.log(`network lab skipped: ${why}`)
} else {
  for (const site of SITES) {
    for (const name of profiles) {
      try {
        report(await benchProfile(name, site))
      } catch (err) {
        console.log(`\n${name} (${site}): failed: ${err.message}`)
        process.exitCode = 1
      }
    }
  }
}
