// make bench, browser client: data-channel throughput from 1, 2 and 4 Chromium peers holding an
// asset (the downloader takes pieces from all of them) against a plain HTTP download of the same
// bytes from the origin, in the same run, on loopback; and the
// cost of verifying pieces (WebCrypto SHA-256 per 64 KiB piece) per MB.
import fs from 'node:fs'
import { startServer } from '../tests/integration/harness.mjs'
import { startOrigin, makeSite, visitor, startEngine, waitForSwarm, holdersOf } from '../tests/browser/harness.mjs'

const MB = Number(process.env.BENCH_CLIENT_MB ?? 8)
const ROUNDS = 2
// How many peers hold the content, per configuration: the downloader takes pieces from all.
const PEER_COUNTS = (process.env.BENCH_CLIENT_PEERS ?? '1 2 4').split(/[ ,]+/).filter(Boolean).map(Number)
const signal = await startServer()
const dir = fs.mkdtempSync('/tmp/dn-bench-site-')
const origin = await startOrigin(dir)
const files = {}
for (const k of PEER_COUNTS) for (let i = 0; i < ROUNDS; i++) files[`/blob-${k}-${i}.bin`] = MB * 1024 * 1024
makeSite(files, origin.url, dir)
const swarm = 'bench-client-swarm--'
const paths = Object.keys(files)

const timeFetch = (v, p) => v.page.evaluate(async (p) => {
  const t0 = performance.now()
  const res = await window.dn.fetchPath(p)
  const n = (await res.arrayBuffer()).byteLength
  return { ms: performance.now() - t0, n, stats: window.dn.stats() }
}, p)
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

const open = []
// A holder: everything fetched from the origin with P2P off (into its verified cache), then a
// page in the swarm that announces it all.
async function holder (i) {
  const v = await visitor(`bench-H${i}`)
  open.push(v)
  await startEngine(v, origin.url, { p2p: false })
  for (const p of paths) await timeFetch(v, p)
  await startEngine(v, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 5000 })
  return v
}
try {
  const http = await visitor('bench-http')
  open.push(http)
  await startEngine(http, origin.url, { p2p: false })
  const rows = []
  const httpRates = []
  let holders = 0
  for (const k of PEER_COUNTS) {
    while (holders < k) await holder(++holders)
    const d = await visitor(`bench-D${k}`)
    // No prefetch: the next round's asset must not be fetched ahead, in the background.
    await startEngine(d, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 5000, prefetchBytes: 0 })
    await waitForSwarm(async () => (await holdersOf(d, paths.length)) >= k, 60_000, `downloader connected to ${k} holders`, [d])
    const rates = []
    for (let i = 0; i < ROUNDS; i++) {
      const p = `/blob-${k}-${i}.bin`
      const r = await timeFetch(d, p)
      if (r.stats.bytesFromOrigin > 0) throw new Error('the downloader used the origin: not a peer measurement')
      rates.push(r.n / 1e6 / (r.ms / 1000))
      const rh = await timeFetch(http, p)
      httpRates.push(rh.n / 1e6 / (rh.ms / 1000))
    }
    rows.push({ k, rates })
    await d.close()
  }
  const verify = await http.page.evaluate(async (mb) => {
    const buf = crypto.getRandomValues(new Uint8Array(64 * 1024))
    const pieces = mb * 16
    const t0 = performance.now()
    for (let i = 0; i < pieces; i++) await crypto.subtle.digest('SHA-256', buf)
    return (performance.now() - t0) / mb
  }, 64)
  const h = med(httpRates)
  console.log(`== Browser client (${MB} MiB assets, ${ROUNDS} rounds per configuration, medians; loopback, 2 cores shared by every browser)`)
  console.log(`  origin HTTP (anchor)          ${h.toFixed(1).padStart(7)} MB/s   rounds: ${httpRates.map((x) => x.toFixed(1)).join(', ')}`)
  for (const { k, rates } of rows) {
    console.log(`  from ${k} peer${k > 1 ? 's' : ' '} (data channels)  ${med(rates).toFixed(1).padStart(7)} MB/s   ${(med(rates) / h).toFixed(2)}x HTTP   rounds: ${rates.map((x) => x.toFixed(1)).join(', ')}`)
  }
  console.log(`  piece verification (SHA-256, 64 KiB pieces): ${verify.toFixed(2)} ms per MiB (${(1000 / verify).toFixed(0)} MiB/s)`)
} finally {
  for (const v of open) await v.close()
  await origin.stop()
  await signal.stop()
}
