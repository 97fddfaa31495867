// WebAssembly lookups per second in Node: the loop of bench/ring_lookup_loop.hpp compiled into
// the client's ring module. Prints one number per line: PEERS RATE.
import fs from 'node:fs'
import path from 'node:path'

const dir = process.argv[2]
const { loadRingModule } = await import(path.resolve(dir, 'ring.mjs'))
const module = await loadRingModule(fs.readFileSync(path.resolve(dir, 'deploynet_ring.wasm')))
for (const peers of process.argv.slice(3).map(Number)) {
  console.log(peers, Math.round(module.benchLookups(peers, 2_000_000, 1)))
}
