// make bench, browser client: data-channel throughput from 1, 2 and 4 Chromium peers holding an
// asset (the downloader takes pieces from all of them) against a plain HTTP download of the same
// bytes from the origin, in the same run; and the cost of verifying pieces (WebCrypto SHA-256 per
// 64 KiB piece) per MB.
//
//   node bench/client-bench.mjs              on loopback (2 cores shared by every browser)
//   node bench/client-bench.mjs --lab NAME   in the network lab's profile NAME (root): every
//                                            browser in its own home behind NAT, with that
//                                            profile's access links (broadband: 50/10 Mbit/s)
import fs from 'node:fs'
import path from 'node:path'
import { startServer } from '../tests/integration/harness.mjs'
import { startOrigin, makeSite, visitor, startEngine, waitForSwarm, holdersOf, clientDir, CHROMIUM_FLAGS } from '../tests/browser/harness.mjs'

const MB = Number(process.env.BENCH_CLIENT_MB ?? 8)
const ROUNDS = Number(process.env.BENCH_CLIENT_ROUNDS ?? 2)
// How many peers hold the content, per configuration: the downloader takes pieces from all.
const PEER_COUNTS = (process.env.BENCH_CLIENT_PEERS ?? '1 2 4').split(/[ ,]+/).filter(Boolean).map(Number)
const labProfile = process.argv.includes('--lab') ? process.argv[process.argv.indexOf('--lab') + 1] : null

const files = {}
for (const k of PEER_COUNTS) for (let i = 0; i < ROUNDS; i++) files[`/blob-${k}-${i}.bin`] = MB * 1024 * 1024
const swarm = 'bench-client-swarm--'
const paths = Object.keys(files)

const timeFetch = (v, p) => v.page.evaluate(async (p) => {
  const t0 = performance.now()
  const res = await window.dn.fetchPath(p)
  const n = (await res.arrayBuffer()).byteLength
  return { ms: performance.now() - t0, n, stats: window.dn.stats() }
}, p)
const med = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// The measurement, wherever the browsers, the origin and the signaling server are: `browser(i,
// name)` opens visitor i (0: the HTTP downloader and peer downloaders, 1..: holders).
async function measure ({ originUrl, signalUrl, browser, where, engineOptions = {} }) {
  const open = []
  const opened = async (i, name) => { const v = await browser(i, name); open.push(v); return v }
  try {
    // A holder: everything fetched from the origin with P2P off (into its verified cache),
    // then a page in the swarm that announces it all.
    const holder = async (i) => {
      const v = await opened(i, `bench-H${i}`)
      await startEngine(v, originUrl, { p2p: false })
      for (const p of paths) await timeFetch(v, p)
      await startEngine(v, originUrl, { signal: [signalUrl], swarm, firstByteTimeout: 5000, ...engineOptions })
      return v
    }
    const http = await opened(0, 'bench-http')
    await startEngine(http, originUrl, { p2p: false })
    const rows = []
    const httpRates = []
    let holders = 0
    for (const k of PEER_COUNTS) {
      while (holders < k) await holder(++holders)
      // The downloader shares visitor 0's network with the HTTP downloader (one at a time).
      const d = await opened(0, `bench-D${k}`)
      // No prefetch: the next round's asset must not be fetched ahead, in the background.
      await startEngine(d, originUrl, { signal: [signalUrl], swarm, firstByteTimeout: 5000, prefetchBytes: 0, ...engineOptions })
      await waitForSwarm(async () => (await holdersOf(d, paths.length)) >= k, 60_000, `downloader connected to ${k} holders`, [d])
      const rates = []
      for (let i = 0; i < ROUNDS; i++) {
        const p = `/blob-${k}-${i}.bin`
        const r = await timeFetch(d, p)
        if (r.stats.bytesFromOrigin > 0) throw new Error(`the downloader used the origin: not a peer measurement: ${JSON.stringify(r.stats.assets.find((a) => a.path === p))}`)
        rates.push(r.n / 1e6 / (r.ms / 1000))
        const rh = await timeFetch(http, p)
        httpRates.push(rh.n / 1e6 / (rh.ms / 1000))
      }
      rows.push({ k, rates })
      await d.close()
      open.splice(open.indexOf(d), 1)
    }
    const verify = await http.page.evaluate(async (mb) => {
      const buf = crypto.getRandomValues(new Uint8Array(64 * 1024))
      const pieces = mb * 16
      const t0 = performance.now()
      for (let i = 0; i < pieces; i++) await crypto.subtle.digest('SHA-256', buf)
      return (performance.now() - t0) / mb
    }, 64)
    const h = med(httpRates)
    console.log(`== Browser client (${MB} MiB assets, ${ROUNDS} rounds per configuration, medians; ${where})`)
    console.log(`  origin HTTP (anchor)          ${h.toFixed(1).padStart(7)} MB/s   rounds: ${httpRates.map((x) => x.toFixed(1)).join(', ')}`)
    // The first transfer on the downloader's new connections apart from the later ones (warm:
    // the data channels' congestion windows have opened).
    for (const { k, rates } of rows) {
      const warm = rates.length > 1 ? med(rates.slice(1)) : rates[0]
      console.log(`  from ${k} peer${k > 1 ? 's' : ' '} (data channels)  ${warm.toFixed(1).padStart(7)} MB/s   ${(warm / h).toFixed(2)}x HTTP   first transfer ${rates[0].toFixed(1)} MB/s (${(rates[0] / h).toFixed(2)}x)   rounds: ${rates.map((x) => x.toFixed(1)).join(', ')}`)
    }
    console.log(`  piece verification (SHA-256, 64 KiB pieces): ${verify.toFixed(2)} ms per MiB (${(1000 / verify).toFixed(0)} MiB/s)`)
  } finally {
    for (const v of open) await v.close()
  }
}

if (!labProfile) {
  const signal = await startServer()
  const dir = fs.mkdtempSync('/tmp/dn-bench-site-')
  const origin = await startOrigin(dir)
  makeSite(files, origin.url, dir)
  try {
    await measure({ originUrl: origin.url, signalUrl: signal.url, browser: (_i, name) => visitor(name), where: 'loopback, 2 cores shared by every browser' })
  } finally {
    await origin.stop()
    await signal.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
} else {
  const { Lab, ORIGIN_ADDR, SIGNAL_ADDR, SIGNAL_PORT, TURN_PORT, labSupport, root } = await import('../lab/lab.mjs')
  const why = labSupport()
  if (why) {
    console.log(`== Browser client in the lab: not run (${why})`)
    process.exit(0)
  }
  const bin = (p) => path.join(root, 'build/release', p)
  const holders = Math.max(...PEER_COUNTS)
  const lab = await Lab.create({ profile: labProfile, visitors: holders + 1, linkBinary: process.env.DEPLOYNET_LAB_LINK ?? bin('lab/deploynet-lab-link') })
  try {
    fs.chmodSync(lab.work, 0o755)
    const dir = path.join(lab.work, 'site')
    fs.mkdirSync(dir)
    const originUrl = `http://${ORIGIN_ADDR}`
    makeSite(files, originUrl, dir)
    fs.copyFileSync(path.join(clientDir, 'deploynet.js'), path.join(dir, 'deploynet.js'))
    await lab.startOrigin(dir)
    const secret = 'bench-' + Math.random().toString(36).slice(2)
    lab.turnSecret = secret
    await lab.startTurn(secret)
    await lab.startSignal(process.env.DEPLOYNET_SIGNAL ?? bin('server/deploynet-signal'), ['--log-level', 'warn',
      '--stun', `stun:${SIGNAL_ADDR}:${TURN_PORT}`])
    // Visitor 0 downloads (in home 1); holders 1..N each in a home of their own.
    const browser = (i, name) => {
      const b = lab.browser(i + 1)
      return visitor(name, { contextOptions: { executablePath: b.executablePath, args: [...CHROMIUM_FLAGS, ...b.args] } })
    }
    await measure({ originUrl, signalUrl: `ws://${SIGNAL_ADDR}:${SIGNAL_PORT}`, browser, engineOptions: { stallTimeout: Number(process.env.BENCH_STALL_MS ?? 3000) }, where: `network lab, ${labProfile} profile, each browser in its own home behind NAT` })
  } finally {
    await lab.destroy()
  }
}
