// make bench, browser client: data-channel throughput between two Chromium peers on loopback
// against a plain HTTP download of the same bytes from the origin, in the same run; and the
// cost of verifying pieces (WebCrypto SHA-256 per 64 KiB piece) per MB.
import fs from 'node:fs'
import { startServer } from '../tests/integration/harness.mjs'
import { startOrigin, makeSite, visitor, startEngine, waitFor, peersOf } from '../tests/browser/harness.mjs'

const MB = Number(process.env.BENCH_CLIENT_MB ?? 8)
const ROUNDS = 3
const signal = await startServer()
const dir = fs.mkdtempSync('/tmp/dn-bench-site-')
const origin = await startOrigin(dir)
const files = {}
for (let i = 0; i < ROUNDS; i++) files[`/blob${i}.bin`] = MB * 1024 * 1024
makeSite(files, origin.url, dir)
const swarm = 'bench-client-swarm--'

const timeFetch = (v, p) => v.page.evaluate(async (p) => {
  const t0 = performance.now()
  const res = await window.dn.fetchPath(p)
  const n = (await res.arrayBuffer()).byteLength
  return { ms: performance.now() - t0, n, stats: window.dn.stats() }
}, p)

const a = await visitor('bench-A')
const b = await visitor('bench-B')
const h = await visitor('bench-H')
try {
  await startEngine(a, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 5000 })
  for (const p of Object.keys(files)) await timeFetch(a, p)
  await startEngine(b, origin.url, { signal: [signal.url], swarm, firstByteTimeout: 5000 })
  await waitFor(async () => (await peersOf(b)) >= 1, 10_000, 'B connected')
  await startEngine(h, origin.url, { p2p: false })

  const p2p = []
  const http = []
  for (const p of Object.keys(files)) {
    const r = await timeFetch(b, p)
    if (r.stats.bytesFromOrigin > 0) throw new Error('B used the origin: not a peer measurement')
    p2p.push(r.n / 1e6 / (r.ms / 1000))
    const rh = await timeFetch(h, p)
    http.push(rh.n / 1e6 / (rh.ms / 1000))
  }
  const verify = await b.page.evaluate(async (mb) => {
    const buf = crypto.getRandomValues(new Uint8Array(64 * 1024))
    const pieces = mb * 16
    const t0 = performance.now()
    for (let i = 0; i < pieces; i++) await crypto.subtle.digest('SHA-256', buf)
    return (performance.now() - t0) / mb
  }, 64)
  const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
  console.log(`== Browser client (${MB} MiB assets, ${ROUNDS} rounds, medians; loopback, 2 cores shared by both browsers)`)
  console.log(`  peer to peer (data channel)   ${med(p2p).toFixed(1).padStart(7)} MB/s   rounds: ${p2p.map((x) => x.toFixed(1)).join(', ')}`)
  console.log(`  origin HTTP (anchor)          ${med(http).toFixed(1).padStart(7)} MB/s   rounds: ${http.map((x) => x.toFixed(1)).join(', ')}`)
  console.log(`  ratio p2p / HTTP              ${(med(p2p) / med(http)).toFixed(2)}x`)
  console.log(`  piece verification (SHA-256, 64 KiB pieces): ${verify.toFixed(2)} ms per MiB (${(1000 / verify).toFixed(0)} MiB/s)`)
} finally {
  for (const v of [a, b, h]) await v.close()
  await origin.stop()
  await signal.stop()
}
