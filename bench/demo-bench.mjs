// make bench, the whole system: the demo swarm (nginx origin, signaling server, Chromium
// visitors through the service worker) twice in one run, P2P on and P2P off, same site, same
// visitors. Page load time ratio, P2P byte share, origin requests against the P2P-off run.
import { runSwarm, stopAll, accessLog } from '../scripts/demo.mjs'

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const runs = {}
for (const p2p of [true, false]) {
  const r = await runSwarm({ quiet: true, p2p })
  const log = accessLog()
  runs[p2p ? 'on' : 'off'] = { ...r, requests: log.filter((e) => r.assets.has(e.path)).length, originBytes: log.reduce((a, e) => a + e.bytes, 0) }
  await stopAll()
  await new Promise((resolve) => setTimeout(resolve, 500))
}
const later = (r) => r.rows.slice(1)
const on = runs.on
const off = runs.off
const loadOn = median(later(on).map((x) => x.ms))
const loadOff = median(later(off).map((x) => x.ms))
const peerBytes = later(on).reduce((a, x) => a + x.stats.bytesFromPeers, 0)
const assetBytes = later(on).reduce((a, x) => a + x.stats.bytesFromPeers + x.stats.bytesFromOrigin + x.stats.bytesFromCache, 0)
const n = on.rows.length
console.log(`== Demo swarm (${n} Chromium visitors, nginx origin on loopback, service worker; P2P on vs off in the same run)`)
console.log(`  page load, median of visitors 2..${n}: P2P on ${loadOn.toFixed(0)} ms, off ${loadOff.toFixed(0)} ms: ratio ${(loadOn / loadOff).toFixed(2)} (target <= 1.1)`)
console.log(`  asset bytes from peers, visitors 2..${n}: ${(100 * peerBytes / assetBytes).toFixed(1)}% (target >= 70%)`)
console.log(`  origin requests for assets: ${on.requests} with P2P, ${off.requests} without: ${(100 * (1 - on.requests / off.requests)).toFixed(1)}% fewer (target >= 50%)`)
console.log(`  origin bytes (everything): ${(on.originBytes / 1048576).toFixed(2)} MiB with P2P, ${(off.originBytes / 1048576).toFixed(2)} MiB without`)
process.exit(0)
