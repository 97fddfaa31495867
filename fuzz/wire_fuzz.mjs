// Fuzzes the browser client's peer wire decoder (client/src/wire.ts, the bundle the browser
// runs) with structure-aware mutations of valid messages of every type: bit flips, boundary
// values in its length and integer fields, truncation, extension, splices of two inputs, a
// changed type byte. The property, for every input: `decode` either throws a WireError with
// one of the documented codes, or returns a message that `encode` writes back as exactly the
// same bytes (the decoder accepts canonical encodings only) and that decodes again to the same
// message. Anything else (another exception, a different re-encoding) is a failure: the input
// is written to build/fuzz/crash-wire-HEX and the run exits 1.
//
//   node fuzz/wire_fuzz.mjs [RUNS] [SEED]    (make test: 200,000; make fuzz: 10,000,000)
//
// (Coverage-guided JS fuzzers need a native module that Debian 12's glibc cannot load; the
// run checks instead that every message type was decoded and every error code reached.)
import fs from 'node:fs'
import path from 'node:path'
import assert from 'node:assert/strict'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const dir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const { encode, decode, MAX_CHUNK, MAX_HELLO_IDS } = await import(path.join(dir, 'wire.mjs'))

const RUNS = Number(process.argv[2] ?? 10_000_000)
let seed = Number(process.argv[3] ?? 0x5eed) >>> 0
// xorshift32: fast, reproducible from the seed
const rnd = () => {
  seed ^= seed << 13; seed >>>= 0
  seed ^= seed >>> 17
  seed ^= seed << 5; seed >>>= 0
  return seed
}
const below = (n) => rnd() % n
const hex = (n) => Array.from({ length: n }, () => (rnd() & 255).toString(16).padStart(2, '0')).join('')
const bytes = (n) => Uint8Array.from({ length: n }, () => rnd() & 255)

const seeds = [
  { type: 'hello', version: 1, deployId: hex(16), have: [] },
  { type: 'hello', version: 1, deployId: hex(16), have: [hex(32)] },
  { type: 'hello', version: 2, deployId: hex(16), have: Array.from({ length: 5 }, () => hex(32)) },
  { type: 'have', contentId: hex(32) },
  { type: 'request', reqId: 1, contentId: hex(32), piece: 0 },
  { type: 'request', reqId: 0xffffffff, contentId: hex(32), piece: 0xffffffff },
  { type: 'piece', reqId: 7, piece: 3, offset: 0, data: bytes(1) },
  { type: 'piece', reqId: 7, piece: 3, offset: 16384, data: bytes(300) },
  { type: 'piece', reqId: 9, piece: 0, offset: 0, data: bytes(MAX_CHUNK) },
  { type: 'cancel', reqId: 42 },
  { type: 'reject', reqId: 5, reason: 'busy' },
  { type: 'reject', reqId: 5, reason: 'missing' },
  { type: 'reject', reqId: 5, reason: 'invalid' },
  { type: 'ping', nonce: 123456 },
  { type: 'pong', nonce: 0 },
  { type: 'pieces', contentId: hex(32), count: 1, bits: new Uint8Array([0x80]) },
  { type: 'pieces', contentId: hex(32), count: 43, bits: Uint8Array.from(bytes(6), (x, i) => (i === 5 ? x & 0xe0 : x)) },
].map(encode)

const INTERESTING = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7f, 0x80, 0xfe, 0xff]
const BOUNDS16 = [0, 1, 2, MAX_HELLO_IDS - 1, MAX_HELLO_IDS, MAX_HELLO_IDS + 1, 0x7fff, 0xffff]

function mutate (input) {
  let b = input.slice()
  for (let k = 1 + below(4); k > 0; k--) {
    switch (below(9)) {
      case 0: if (b.length) b[below(b.length)] ^= 1 << below(8); break
      case 1: if (b.length) b[below(b.length)] = INTERESTING[below(INTERESTING.length)]; break
      case 2: b = b.subarray(0, below(b.length + 1)); break // truncate
      case 3: { // extend
        const out = new Uint8Array(b.length + 1 + below(64)); out.set(b); out.set(bytes(out.length - b.length), b.length); b = out; break
      }
      case 4: if (b.length) b[0] = below(11); break // another type
      case 5: if (b.length >= 20) { const v = BOUNDS16[below(BOUNDS16.length)]; b[18] = v >> 8; b[19] = v & 255 } break // hello count
      case 6: if (b.length >= 5) { const at = 1 + below(Math.max(1, b.length - 4)); const v = [0, 1, 0x7fffffff, 0xffffffff][below(4)]; new DataView(b.buffer, b.byteOffset).setUint32(Math.min(at, b.length - 4), v) } break
      case 7: { // splice with another seed
        const o = seeds[below(seeds.length)]; const cut = below(b.length + 1); const from = below(o.length + 1)
        const out = new Uint8Array(cut + o.length - from); out.set(b.subarray(0, cut)); out.set(o.subarray(from), cut); b = out; break
      }
      case 8: { // grow a piece message towards and past the chunk limit
        if (b[0] === 4) { const out = new Uint8Array(13 + MAX_CHUNK + below(3) - 1); out.set(b.subarray(0, Math.min(b.length, out.length))); b = out }
        break
      }
    }
  }
  return b
}

const CODES = new Set(['ERR_WIRE_LENGTH', 'ERR_WIRE_TYPE', 'ERR_WIRE_RANGE', 'ERR_WIRE_ID'])
const types = new Map()
const codes = new Map()
const failures = []
const count = (m, k) => m.set(k, (m.get(k) ?? 0) + 1)

function check (b) {
  let m
  try {
    m = decode(b)
  } catch (e) {
    if (!CODES.has(e?.code)) throw new Error(`decode threw ${e?.name}: ${e?.message}`)
    count(codes, e.code)
    return
  }
  count(types, m.type)
  const back = encode(m)
  if (back.length !== b.length || back.some((x, i) => x !== b[i])) throw new Error(`not written back as the same bytes (${m.type})`)
  assert.deepEqual(decode(back), m)
}

const t0 = process.hrtime.bigint()
const pool = seeds.slice()
for (let i = 0; i < RUNS; i++) {
  const b = i < seeds.length ? seeds[i] : mutate(pool[below(pool.length)])
  try {
    check(b)
    // Valid messages that mutations produced seed further mutations (a bounded pool).
    if (i >= seeds.length && pool.length < 4096 && (i & 63) === 0) pool.push(b)
  } catch (e) {
    const file = path.join(root, 'build/fuzz', `crash-wire-${Buffer.from(b.subarray(0, 24)).toString('hex')}`)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, b)
    failures.push(`${e.message}: ${file}`)
    if (failures.length >= 5) break
  }
}
const s = Number(process.hrtime.bigint() - t0) / 1e9
const all = ['hello', 'have', 'request', 'piece', 'cancel', 'reject', 'ping', 'pong', 'pieces']
// ERR_WIRE_ID is encode's (a malformed hex id); the decoder reads raw bytes.
const unreached = [...all.filter((t) => !types.has(t)), ...['ERR_WIRE_LENGTH', 'ERR_WIRE_TYPE', 'ERR_WIRE_RANGE'].filter((c) => !codes.has(c))]
if (failures.length || unreached.length) {
  console.log(`fuzz wire (JS): FAILED\n  ${failures.join('\n  ')}${unreached.length ? `\n  never reached: ${unreached.join(', ')}` : ''}`)
  process.exit(1)
}
console.log(`fuzz wire (JS): Done ${RUNS} runs in ${s.toFixed(0)} second(s), 0 failures ` +
  `(decoded ${[...types.values()].reduce((a, b) => a + b, 0)}, refused ${[...codes.values()].reduce((a, b) => a + b, 0)})`)
