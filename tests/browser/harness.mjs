// Browser test harness: a real origin web server (static files, Range, an access log), sites
// published with the real `deploynet publish`, the real signaling server, and visitors in
// Debian's Chromium (driven by playwright-core) or Debian's Firefox ESR (driven by puppeteer-core
// over WebDriver BiDi), one browser process and profile each: nothing shared between visitors.
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chromium } from 'playwright-core'
import puppeteer from 'puppeteer-core'
import { waitFor, startNginx, freePort } from '../integration/harness.mjs'
import { originConf, readAccessLog } from '../../scripts/nginx.mjs'

export { waitFor }

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
export const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const cli = () => process.env.DEPLOYNET_CLI ?? path.join(root, 'build/test/cli/deploynet')

export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // On a machine whose only interface is loopback, without these two no ICE candidate is
  // gathered at all.
  '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
]

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.woff2': 'font/woff2' }

// An init script that makes a visitor corrupt the last byte of every piece chunk it sends.
export const CORRUPT = `(() => {
  const send = RTCDataChannel.prototype.send
  RTCDataChannel.prototype.send = function (data) {
    if (data instanceof Uint8Array && data[0] === 4 && data.length > 13) {
      data = data.slice(); data[data.length - 1] ^= 0xff
    }
    return send.call(this, data)
  }
})()`

export const sha256 = (b) => createHash('sha256').update(b).digest('hex')

// Static origin with single-range support. `log` holds one entry per request.
export async function startOrigin (siteDir) {
  const log = []
  const delays = new Map() // path -> ms before the answer (a slow origin for that path)
  const rates = new Map() // path -> bytes per second its body is sent at (a far origin for that path)
  const server = http.createServer((req, res) => {
    const delay = delays.get(new URL(req.url, 'http://x').pathname)
    if (delay) setTimeout(() => answer(req, res), delay)
    else answer(req, res)
  })
  const answer = (req, res) => {
    const url = new URL(req.url, 'http://x')
    let file = path.join(siteDir, path.normalize(decodeURIComponent(url.pathname)))
    const clientFile = path.join(clientDir, path.basename(url.pathname))
    if (/^\/(deploynet(\.js|-sw\.js|_ring\.wasm|\.mjs))$/.test(url.pathname)) file = clientFile
    if (url.pathname.endsWith('/')) file = path.join(file, 'index.html')
    const entry = { path: url.pathname, ua: req.headers['user-agent'] ?? '', range: req.headers.range ?? '', status: 0, bytes: 0, at: Date.now() }
    log.push(entry)
    if (!file.startsWith(siteDir) && file !== clientFile) { res.writeHead(403).end(); entry.status = 403; return }
    fs.readFile(file, (err, body) => {
      if (err) { res.writeHead(404).end(); entry.status = 404; return }
      const headers = { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'accept-ranges': 'bytes', 'cache-control': 'no-cache' }
      const m = /^bytes=(\d+)-(\d*)$/.exec(entry.range)
      if (m) {
        const start = Number(m[1])
        const total = body.length
        const end = m[2] ? Math.min(Number(m[2]), total - 1) : total - 1
        if (start > end) { res.writeHead(416, { 'content-range': `bytes */${total}` }).end(); entry.status = 416; return }
        body = body.subarray(start, end + 1)
        res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${total}` })
        entry.status = 206
      } else {
        res.writeHead(200, headers)
        entry.status = 200
      }
      const rate = rates.get(url.pathname)
      if (!rate || req.method === 'HEAD') {
        entry.bytes = body.length
        res.end(req.method === 'HEAD' ? undefined : body)
        return
      }
      // Paced: 16 KiB at a time; `bytes` counts what was written before the client went away.
      let at = 0
      const step = () => {
        if (res.destroyed) return
        if (at >= body.length) { res.end(); return }
        const n = Math.min(16384, body.length - at)
        res.write(body.subarray(at, at + n))
        at += n
        entry.bytes = at
        setTimeout(step, (n / rate) * 1000)
      }
      step()
    })
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  return { url, log, delays, rates, stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }) }
}

// nginx as the origin, serving `siteDir` (DeployNet's client files copied in) on a free port,
// with the same `log` entries as startOrigin, read from its JSON access log.
export async function startNginxOrigin (siteDir) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-nginx-origin-'))
  for (const f of ['deploynet.js', 'deploynet-sw.js', 'deploynet_ring.wasm']) fs.copyFileSync(path.join(clientDir, f), path.join(siteDir, f))
  const port = await freePort()
  const accessLog = path.join(dir, 'access.log')
  const nginx = await startNginx(dir, port, originConf(dir, { listen: `127.0.0.1:${port}`, root: siteDir, accessLog, workerConnections: 256 }))
  return {
    url: `http://127.0.0.1:${port}`,
    get log () { return readAccessLog(accessLog) },
    async stop () {
      await nginx.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

// A site of `files` ({path: size}) of random bytes, plus test.html, published for `origin`.
export function makeSite (files, origin, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-site-'))) {
  const contents = {}
  for (const [p, size] of Object.entries(files)) {
    const body = randomBytes(size)
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true })
    fs.writeFileSync(path.join(dir, p), body)
    contents[p] = sha256(body)
  }
  fs.writeFileSync(path.join(dir, 'test.html'), '<!doctype html><title>t</title><script src="/deploynet.js"></script>\n')
  publish(dir, origin)
  return { dir, contents }
}

export function publish (dir, origin, extra = []) {
  execFileSync(cli(), ['publish', dir, '--origin', origin, ...extra], { stdio: 'pipe' })
}

// The demo site (examples/demo-site) for `signalUrl`, published for `origin`; DeployNet's own
// files come from the client build and are in the manifest too (so later pages load them from
// the visitor's cache).
export function makeDemoSite (dir, origin, signalUrl, budgetMs = 1500) {
  execFileSync('node', [path.join(root, 'examples/demo-site/generate.mjs'), dir, signalUrl, String(budgetMs)])
  for (const f of ['deploynet.js', 'deploynet-sw.js', 'deploynet_ring.wasm']) {
    fs.copyFileSync(path.join(clientDir, f), path.join(dir, f))
  }
  publish(dir, origin)
  return JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))
}

// The media site (examples/media: a video, a large download, a gallery) for `signalUrl`,
// published for `origin`, with DeployNet's own files, as makeDemoSite does. `sizes`: the
// generator's flags (e.g. ['--video-s', '20']).
export function makeMediaSite (dir, origin, signalUrl, sizes = []) {
  execFileSync('node', [path.join(root, 'examples/media/generate.mjs'), dir, signalUrl, ...sizes])
  for (const f of ['deploynet.js', 'deploynet-sw.js', 'deploynet_ring.wasm']) {
    fs.copyFileSync(path.join(clientDir, f), path.join(dir, f))
  }
  publish(dir, origin)
  return JSON.parse(fs.readFileSync(path.join(dir, 'deploynet.json'), 'utf8'))
}

// Opens `url` and waits until the page under the service worker's control has loaded
// everything (the first-visit reload included). Returns its load end (ms, epoch), whether all
// images decoded, and the engine's stats.
export async function loadControlledPage (v, url, { controlled = true, ms = 60_000 } = {}) {
  const t0 = Date.now()
  await v.page.goto(url, { waitUntil: 'commit' })
  const deadline = Date.now() + ms
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${v.name}: ${url} did not finish loading`)
    try {
      const r = await v.page.evaluate(async (controlled) => {
        if (document.readyState !== 'complete' || (controlled && !navigator.serviceWorker.controller) || !window.deploynet) return null
        const dn = await window.deploynet
        if (!dn) return null
        const nav = performance.getEntriesByType('navigation')[0]
        await document.fonts.ready
        return {
          loadEnd: performance.timeOrigin + nav.loadEventEnd,
          imagesOk: [...document.images].every((i) => i.complete && i.naturalWidth > 0),
          stats: dn.stats(),
        }
      }, controlled)
      if (r) return { ...r, ms: r.loadEnd - t0 }
    } catch { /* the page navigated (first-visit reload): ask again */ }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

// Visitors open in this test file: a failed wait reports what each of them knows.
const live = new Set()

// The browser engines the tests run visitors in: DEPLOYNET_BROWSERS (comma-separated), by default
// both. A test written for both runs once per engine; a mixed-swarm test needs both.
export const ENGINES = (process.env.DEPLOYNET_BROWSERS ?? 'chromium,firefox').split(',').map((e) => e.trim()).filter(Boolean)
for (const e of ENGINES) if (!['chromium', 'firefox'].includes(e)) throw new Error(`DEPLOYNET_BROWSERS: unknown engine ${e}`)

// The engine of a visitor that does not name one: DEPLOYNET_ENGINE, by default Chromium. The
// core browser tests run once more with DEPLOYNET_ENGINE=firefox (the Makefile's browser pass).
export const DEFAULT_ENGINE = process.env.DEPLOYNET_ENGINE ?? 'chromium'
if (!['chromium', 'firefox'].includes(DEFAULT_ENGINE)) throw new Error(`DEPLOYNET_ENGINE: unknown engine ${DEFAULT_ENGINE}`)

// Firefox's preferences for a visitor: its user agent (so the origin's log tells visitors apart,
// the worker's requests included), host candidates as plain addresses (mDNS names do not resolve
// between two headless browsers), loopback candidates (a machine with only loopback), and no
// first-run or update traffic.
export const FIREFOX_PREFS = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.navigator.permission.disabled': true,
  'app.update.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
}

/**
 * A visitor: its own browser process and profile.
 * @param {string} name             in its user agent (`deploynet-test-visitor-<name>`)
 * @param {object} o
 * @param {'chromium'|'firefox'} [o.engine]
 * @param {string} [o.initScript]   run in every document before its own scripts
 * @param {object} [o.contextOptions] Chromium: playwright's context options (executablePath and
 *   args included); Firefox: {executablePath, prefs, serviceWorkers: 'block'}
 * `v.page` has the few calls the tests make, the same in both engines: evaluate(fn, arg),
 * goto(url, {waitUntil: 'commit'|'load'}), on('pageerror').
 */
export async function visitor (name, { engine = DEFAULT_ENGINE, initScript, contextOptions = {} } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `dn-visitor-${name}-`))
  const ua = `deploynet-test-visitor-${name}`
  const v = engine === 'firefox'
    ? await firefoxVisitor(dataDir, ua, initScript, contextOptions)
    : await chromiumVisitor(dataDir, ua, initScript, contextOptions)
  v.name = name
  v.engine = engine
  v.errors = []
  v.page.on('pageerror', (e) => v.errors.push(String(e)))
  const closeBrowser = v.close
  v.close = async () => {
    live.delete(v)
    await closeBrowser().catch(() => {})
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  live.add(v)
  return v
}

/**
 * The context options of a visitor in the network lab's home k (lab/lab.mjs): its browser,
 * started inside that home's namespace, with what it needs there.
 */
export function labContext (lab, k, engine = DEFAULT_ENGINE) {
  if (engine === 'firefox') return lab.firefox(k)
  const b = lab.browser(k)
  return { executablePath: b.executablePath, args: [...CHROMIUM_FLAGS, ...b.args] }
}

async function chromiumVisitor (dataDir, userAgent, initScript, contextOptions) {
  const context = await chromium.launchPersistentContext(dataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    userAgent,
    ...contextOptions,
  })
  if (initScript) await context.addInitScript(initScript)
  const page = context.pages()[0] ?? await context.newPage()
  return { context, page, close: () => context.close() }
}

async function firefoxVisitor (dataDir, userAgent, initScript, { executablePath, prefs = {}, serviceWorkers } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: executablePath ?? process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: dataDir,
    extraPrefsFirefox: {
      ...FIREFOX_PREFS,
      'general.useragent.override': userAgent,
      ...(serviceWorkers === 'block' ? { 'dom.serviceWorkers.enabled': false } : {}),
      ...prefs,
    },
  })
  const raw = (await browser.pages())[0] ?? await browser.newPage()
  if (initScript) await raw.evaluateOnNewDocument(initScript)
  // playwright's names for puppeteer's calls. 'commit' (return once the navigation is under
  // way) has no BiDi equivalent: the nearest is the document's DOMContentLoaded.
  const page = {
    raw,
    evaluate: (fn, arg) => raw.evaluate(fn, arg),
    goto: (url, { waitUntil = 'load', timeout = 30_000 } = {}) =>
      raw.goto(url, { waitUntil: waitUntil === 'commit' ? 'domcontentloaded' : waitUntil, timeout }),
    on: (ev, fn) => raw.on(ev, fn),
  }
  return { browser, page, close: () => browser.close() }
}

// Opens test.html and starts the engine with `options`. Hedging is off unless asked for: on
// loopback the origin is always measured faster than any peer, so every urgent request would
// go to it and these tests of the peers' mechanics would see none of them.
export async function startEngine (v, origin, options) {
  options = { hedge: false, ...options }
  await v.page.goto(`${origin}/test.html`)
  await v.page.evaluate(async (opts) => {
    window.dn = await DeployNet.start(opts)
    window.dnEvents = []
    for (const ev of ['peer', 'peerclose', 'ban', 'warning']) window.dn.on(ev, (...a) => window.dnEvents.push([ev, ...a]))
  }, options)
}

// Fetches every path through the engine; returns {path: sha256} and the stats after.
export async function fetchAll (v, paths) {
  return v.page.evaluate(async (paths) => {
    const out = {}
    await Promise.all(paths.map(async (p) => {
      const res = await window.dn.fetchPath(p)
      const bytes = new Uint8Array(await res.arrayBuffer())
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
      out[p] = Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
    }))
    return { hashes: out, stats: window.dn.stats() }
  }, paths)
}

// What a visitor's engine knows of its swarm, for the message of a failed wait: its peers,
// its handshakes under way and the events so far.
export const swarmReport = (v) => v.page.evaluate(async () => {
  const dn = window.dn ?? (await window.deploynet)
  if (!dn) return null
  const s = dn.stats()
  return {
    id: dn.peerId, signal: s.signal, peers: dn.peerList(), firstPeerMs: s.firstPeerMs, readyState: document.readyState,
    now: Math.round(performance.now()),
    // The engine's handshakes under way and what it knows of the swarm (internal fields).
    connecting: [...(dn.peerSet?.connecting ?? [])].map((p) => ({
      id: p.id, initiator: p.initiator, age: Math.round(performance.now() - p.created),
      pc: p.pc.connectionState, ice: p.pc.iceConnectionState, signaling: p.pc.signalingState,
    })),
    channels: [...(dn.peerSet?.peers.values() ?? [])].map((p) => [p.id, p.open, p.dc?.readyState, p.initiator]),
    members: dn.peerSet?.members, lastAnnounce: Math.round(dn.peerSet?.lastAnnounce ?? -1), topUpGap: dn.peerSet?.topUpGap,
    assets: s.assets.map((a) => [a.path, a.fromPeers, a.fromOrigin, a.fromCache, a.prefetch ?? false, a.originReason ?? '']),
    events: (window.dnEvents ?? []).slice(-20),
  }
}).catch((err) => String(err))

// waitFor, with every visitor's swarm report in the message of a timeout.
export async function waitForSwarm (fn, ms, what, visitors = [...live]) {
  try {
    return await waitFor(fn, ms, what)
  } catch (err) {
    const reports = await Promise.all(visitors.map(async (x) => ({ [x.name]: await swarmReport(x) })))
    throw new Error(`${err.message}: ${JSON.stringify(reports)}`)
  }
}

// Waits until `v` is connected to `n` peers that hold `have` assets; on a timeout the error
// carries every visitor's swarm report.
export const waitConnected = (v, have, n, what, all = [...live]) =>
  waitForSwarm(async () => (await holdersOf(v, have)) >= n, 30_000, what, all)

export const peersOf = (v) => v.page.evaluate(() => window.dn.stats().peers)
// Connected peers that have said (hello, have) they hold at least `n` of the site's assets.
export const holdersOf = (v, n) => v.page.evaluate((n) => window.dn.peerList().filter((p) => p.have >= n).length, n)
