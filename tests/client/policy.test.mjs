// The delivery policy (client/src/policy.ts) on the bundle the browser runs, against simulated
// peers and a simulated origin: which source a request goes to, and what that costs in time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const dir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const { decide, peersMs, RateMeter, HEDGE_RATIO, ASSUMED_PEER_RATE } = await import(path.join(dir, 'policy.mjs'))

const FBT = 500 // firstByteTimeout, ms
// A simulated origin: time to first byte (ms) and throughput (bytes per ms).
const origin = (ttfb, rate) => ({ ttfb, rate, ms: (size) => ttfb + size / rate })
const FAST_ORIGIN = origin(60, 6_000) // 100 ms away, 48 Mbit/s to this visitor
const SATURATED = origin(400, 300) // a flash crowd on a 20 Mbit/s uplink
const state = (o, holders = [], extra = {}) => ({
  signal: true, holders, helloPending: false, handshakeNearlyDone: false, handshakeUnderWay: false,
  alone: false, originMs: o ? o.ms(extra.size ?? 100_000) : 0, originMeasured: !!o, ...extra,
})
const peer = (rtt, rate) => ({ rtt, rate })

test('without signaling or holders, urgent requests go to the origin at once; a fresh peer is waited for', () => {
  assert.equal(decide({ size: 1e5, urgent: true }, { ...state(FAST_ORIGIN), signal: false }, FBT).source, 'origin')
  assert.deepEqual(decide({ size: 1e5, urgent: true }, state(FAST_ORIGIN), FBT),
    { source: 'origin', reason: 'needed now, no connected peer has it' })
  // A handshake under way never holds up what the page needs now...
  assert.equal(decide({ size: 1e5, urgent: true }, state(SATURATED, [], { handshakeNearlyDone: true, handshakeUnderWay: true }), FBT).source, 'origin')
  // ...but a peer connected a moment ago is about to say what it holds (one round trip).
  assert.equal(decide({ size: 1e5, urgent: true }, state(FAST_ORIGIN, [], { helloPending: true }), FBT).source, 'wait')
})

test('patient requests wait for a nearly done handshake, and for any handshake only when the origin is slow', () => {
  const img = { size: 700_000, urgent: false }
  assert.equal(decide(img, state(FAST_ORIGIN, [], { size: 7e5, handshakeNearlyDone: true }), FBT).source, 'wait')
  // The origin would take 177 ms: not worth waiting on a handshake that has just begun.
  assert.equal(decide(img, state(FAST_ORIGIN, [], { size: 7e5, handshakeUnderWay: true }), FBT).source, 'origin')
  // Saturated (2.7 s for the image): the handshake is worth waiting for...
  assert.equal(decide(img, state(SATURATED, [], { size: 7e5, handshakeUnderWay: true }), FBT).source, 'wait')
  // ...unless nobody else is in the swarm, or nothing is under way.
  assert.equal(decide(img, state(SATURATED, [], { size: 7e5, handshakeUnderWay: true, alone: true }), FBT).source, 'origin')
  assert.equal(decide(img, state(SATURATED, [], { size: 7e5 }), FBT).source, 'origin')
})

test('holders serve unless the origin is measured clearly faster for an urgent request: then both', () => {
  const slowPeer = [peer(40, 1_250)] // a 10 Mbit/s home uplink
  const js = { size: 570_000, urgent: true }
  // Unmeasured origin: the peers (the origin is not known to be faster).
  assert.equal(decide(js, state(null, slowPeer), FBT).source, 'peers')
  // Measured: origin 155 ms, the peer 496 ms: the origin streams the head, the peer the tail.
  const d = decide(js, state(FAST_ORIGIN, slowPeer, { size: js.size }), FBT)
  assert.deepEqual(d, { source: 'both', reason: 'origin faster than the peers that hold it' })
  // The same bytes when nothing waits on them (media, prefetch): the peers alone, offloading.
  assert.equal(decide({ ...js, urgent: false }, state(FAST_ORIGIN, slowPeer, { size: js.size }), FBT).source, 'peers')
  // Four such peers together (5 MB/s) come close to the origin: peers alone.
  const four = [peer(40, 1_250), peer(45, 1_250), peer(50, 1_250), peer(60, 1_250)]
  assert.equal(decide(js, state(FAST_ORIGIN, four, { size: js.size }), FBT).source, 'peers')
  // A saturated origin: peers.
  assert.equal(decide(js, state(SATURATED, slowPeer, { size: js.size }), FBT).source, 'peers')
})

test('peersMs: parallel holders add up; unmeasured ones count as a modest uplink', () => {
  assert.equal(peersMs([], 1000), Infinity)
  assert.equal(peersMs([peer(20, 1000), peer(50, 3000)], 400_000), 20 + 100)
  assert.equal(peersMs([peer(Infinity, NaN)], ASSUMED_PEER_RATE * 10), 10)
})

// What the decision costs, in a simple model of the sources: the origin delivers ttfb + size /
// rate; peers their min RTT + size / their summed rate; both: the origin's stream, finished
// sooner by the peers' share of the tail. Over a grid of sizes, origins and peer sets, an urgent request is never
// served more than HEDGE_RATIO slower than the faster single source, and a patient one with
// holders at hand never touches the origin.
test('simulated sources: urgent requests are never much slower than the best source', () => {
  const timeOf = (source, size, o, holders) => {
    const p = peersMs(holders, size)
    if (source === 'origin') return o.ms(size)
    if (source === 'peers') return p
    // both: the origin streams everything from the head, so it is never later than the origin
    // alone; peers taking the tail can only bring the end closer (rates add once both flow).
    const rate = o.rate + holders.reduce((a, h) => a + h.rate, 0)
    return Math.min(o.ms(size), Math.max(o.ttfb, Math.min(...holders.map((h) => h.rtt))) + size / rate)
  }
  const origins = [FAST_ORIGIN, SATURATED, origin(150, 1_500), origin(30, 50_000)]
  const peerSets = [[peer(20, 12_000)], [peer(40, 1_250)], [peer(30, 600), peer(35, 900)],
    [peer(40, 1_250), peer(45, 1_250), peer(50, 1_250), peer(60, 1_250)], [peer(200, 300)]]
  let cases = 0
  for (const size of [4_000, 64_000, 570_000, 3_000_000]) {
    for (const o of origins) {
      for (const holders of peerSets) {
        const s = state(o, holders, { size })
        const urgent = decide({ size, urgent: true }, s, FBT)
        const best = Math.min(o.ms(size), peersMs(holders, size))
        const took = timeOf(urgent.source, size, o, holders)
        assert.ok(took <= HEDGE_RATIO * best + 1e-9,
          `${size} B, origin ${o.ttfb}+${o.rate}/ms, peers ${JSON.stringify(holders)}: ${urgent.source} took ${took.toFixed(0)} ms, best ${best.toFixed(0)} ms`)
        assert.equal(decide({ size, urgent: false }, s, FBT).source, 'peers')
        cases++
      }
    }
  }
  assert.equal(cases, 80)
})

test('RateMeter: bytes over busy time, idle gaps excluded', () => {
  const m = new RateMeter(100_000, 1)
  assert.ok(Number.isNaN(m.rate))
  m.busy(1000)
  m.add(50_000, 1010)
  assert.ok(Number.isNaN(m.rate)) // below one window: no sample yet
  m.add(50_000, 1100)
  assert.equal(m.rate, 1000) // 100,000 bytes in 100 ms
  m.idle()
  // Ten seconds idle, then asked again: the gap does not count.
  m.busy(11_100)
  m.add(100_000, 11_150)
  assert.equal(m.rate, 2000)
  // busy() on a peer already busy keeps the clock running.
  m.busy(11_160)
  m.add(100_000, 11_250)
  assert.equal(m.rate, 1000)
})
