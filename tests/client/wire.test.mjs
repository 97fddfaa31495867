// The peer wire protocol and the piece scheduler, in Node, on the bundles the browser runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { randomBytes } from 'node:crypto'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const dir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
const { encode, decode, hasBit } = await import(path.join(dir, 'wire.mjs'))
const { planRequests, rankPeers, originRange } = await import(path.join(dir, 'scheduler.mjs'))

const cid = () => randomBytes(32).toString('hex')

test('every message round-trips, with the documented layout', () => {
  const msgs = [
    { type: 'hello', version: 1, deployId: randomBytes(16).toString('hex'), have: [cid(), cid()] },
    { type: 'hello', version: 1, deployId: '00'.repeat(16), have: [] },
    { type: 'have', contentId: cid() },
    { type: 'request', reqId: 0xfffffffe, contentId: cid(), piece: 7 },
    { type: 'piece', reqId: 9, piece: 3, offset: 32768, data: new Uint8Array(randomBytes(32768)) },
    { type: 'cancel', reqId: 5 },
    { type: 'reject', reqId: 6, reason: 'busy' },
    { type: 'reject', reqId: 6, reason: 'missing' },
    { type: 'ping', nonce: 123 },
    { type: 'pong', nonce: 0 },
    { type: 'pieces', contentId: cid(), count: 1, bits: new Uint8Array([0x80]) },
    { type: 'pieces', contentId: cid(), count: 13, bits: new Uint8Array([0xa5, 0xf8]) },
    { type: 'pieces', contentId: cid(), count: 16, bits: new Uint8Array([0xff, 0x01]) },
  ]
  for (const m of msgs) {
    const b = encode(m)
    const back = decode(b)
    if (m.type === 'piece') {
      assert.deepEqual({ ...back, data: Buffer.from(back.data) }, { ...m, data: Buffer.from(m.data) })
    } else if (m.type === 'pieces') {
      assert.deepEqual({ ...back, bits: Buffer.from(back.bits) }, { ...m, bits: Buffer.from(m.bits) })
    } else {
      assert.deepEqual(back, m)
    }
  }
  // Layout: a request is type | req id (BE) | content id | piece (BE).
  const id = 'ab'.repeat(32)
  const r = encode({ type: 'request', reqId: 0x01020304, contentId: id, piece: 0x0a0b0c0d })
  assert.equal(Buffer.from(r).toString('hex'), '03' + '01020304' + id + '0a0b0c0d')
  assert.equal(Buffer.from(encode({ type: 'hello', version: 1, deployId: 'cd'.repeat(16), have: [id] })).toString('hex'),
    '01' + '01' + 'cd'.repeat(16) + '0001' + id)
  // pieces: type | content id | count (BE) | bitfield, piece 0 in the top bit.
  assert.equal(Buffer.from(encode({ type: 'pieces', contentId: id, count: 10, bits: new Uint8Array([0x81, 0x40]) })).toString('hex'),
    '09' + id + '0000000a' + '8140')
  assert.deepEqual([0, 1, 7, 9].map((i) => hasBit(new Uint8Array([0x81, 0x40]), i)), [true, false, true, true])
})

test('malformed frames are refused with stable codes, never half-parsed', () => {
  const bad = [
    [[], 'ERR_WIRE_LENGTH'],
    [[0], 'ERR_WIRE_TYPE'],
    [[10, 0, 0, 0, 0], 'ERR_WIRE_TYPE'],
    [[9, ...new Array(32).fill(1), 0, 0, 0, 0], 'ERR_WIRE_RANGE'],          // pieces of nothing
    [[9, ...new Array(32).fill(1), 0, 4, 0, 1], 'ERR_WIRE_RANGE'],          // past MAX_PIECES
    [[9, ...new Array(32).fill(1), 0, 0, 0, 9, 0xff], 'ERR_WIRE_LENGTH'],   // 9 pieces in one byte
    [[9, ...new Array(32).fill(1), 0, 0, 0, 9, 0xff, 0xc0], 'ERR_WIRE_RANGE'], // a bit past the count
    [[2, ...new Array(31).fill(1)], 'ERR_WIRE_LENGTH'],       // short have
    [[2, ...new Array(33).fill(1)], 'ERR_WIRE_LENGTH'],       // long have
    [[3, 0, 0, 0, 1], 'ERR_WIRE_LENGTH'],                      // short request
    [[4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], 'ERR_WIRE_LENGTH'], // piece without data
    [[6, 0, 0, 0, 1, 4], 'ERR_WIRE_RANGE'],                    // unknown reject reason
    [[7, 0, 0, 1], 'ERR_WIRE_LENGTH'],
    [[1, 1, ...new Array(16).fill(0), 0, 2, ...new Array(32).fill(0)], 'ERR_WIRE_LENGTH'], // says 2 ids, has 1
    [[1, 1, ...new Array(16).fill(0), 0xff, 0xff], 'ERR_WIRE_RANGE'], // 65535 ids
  ]
  for (const [bytes, code] of bad) {
    assert.throws(() => decode(new Uint8Array(bytes)), (e) => e.code === code, JSON.stringify(bytes.slice(0, 8)))
  }
  const huge = new Uint8Array(13 + 32 * 1024 + 1)
  huge[0] = 4
  assert.throws(() => decode(huge), (e) => e.code === 'ERR_WIRE_LENGTH')
  assert.throws(() => encode({ type: 'have', contentId: 'xyz' }), (e) => e.code === 'ERR_WIRE_ID')
  assert.throws(() => encode({ type: 'cancel', reqId: -1 }), (e) => e.code === 'ERR_WIRE_RANGE')
  // Random garbage: always either a message or a WireError, nothing else.
  for (let i = 0; i < 5000; i++) {
    const b = new Uint8Array(randomBytes(1 + (i % 80)))
    b[0] = 1 + (i % 9)
    try { decode(b) } catch (e) { assert.ok(e.code?.startsWith('ERR_WIRE_'), String(e)) }
  }
})

test('planRequests spreads pieces over candidates, least loaded first, within the cap', () => {
  const state = new Uint8Array(10)
  state[2] = 2 // verified
  state[5] = 1 // already requested
  const inflight = [0, 3, 0]
  const plan = planRequests(state, inflight, 4)
  // Pieces in order; each to the least loaded (ties: the better ranked).
  assert.deepEqual(plan, [[0, 0], [1, 2], [3, 0], [4, 2], [6, 0], [7, 2], [8, 0], [9, 1]])
  assert.deepEqual(inflight, [4, 4, 3])
  // Partial holders: a piece goes only to a candidate that holds it; pieces nobody with room
  // holds are left for later (or the origin). Candidate 1 holds the even pieces only.
  const partial = planRequests(new Uint8Array(6), [0, 0], 8, Infinity, false, 0, (i, piece) => i === 0 ? piece < 2 : piece % 2 === 0)
  assert.deepEqual(partial, [[0, 0], [1, 0], [2, 1], [4, 1]])
  // In order from a reader's position, wrapping round.
  assert.deepEqual(planRequests(new Uint8Array(5), [0], 8, 3, false, 3), [[3, 0], [4, 0], [0, 0]])
  // Nobody with room: nothing planned.
  assert.deepEqual(planRequests(new Uint8Array(3), [4, 4], 4), [])
  assert.deepEqual(planRequests(new Uint8Array(3), [], 4), [])
  // Beside the origin (which streams from the start), peers take the last pieces first.
  const tail = new Uint8Array(6)
  tail[5] = 2
  assert.deepEqual(planRequests(tail, [0, 0], 2, 3, true), [[4, 0], [3, 1], [2, 0]])
})

test('rankPeers: responsible peers in ring order, then the local ring, then RTT', () => {
  const peers = [{ id: 'a', rtt: 5 }, { id: 'b', rtt: 1 }, { id: 'c', rtt: 3 }, { id: 'd', rtt: 2 }, { id: 'e', rtt: 0 }]
  assert.deepEqual(rankPeers(peers, ['c', 'a'], ['d', 'b']).map(p => p.id), ['c', 'a', 'd', 'b', 'e'])
  assert.deepEqual(rankPeers(peers, [], []).map(p => p.id), ['e', 'b', 'd', 'c', 'a'])
})

test('originRange asks only for the missing span', () => {
  const s = (arr) => new Uint8Array(arr)
  assert.equal(originRange(s([0, 0, 0]), 100, 250), null)           // nothing from peers: plain GET
  assert.equal(originRange(s([2, 2, 2]), 100, 250), null)           // nothing missing
  assert.deepEqual(originRange(s([2, 0, 0]), 100, 250), [100, 249]) // tail, short last piece
  assert.deepEqual(originRange(s([0, 2, 2]), 100, 250), [0, 99])
  assert.deepEqual(originRange(s([2, 1, 2, 0, 2]), 10, 50), [10, 39])
})
