// Ranged reads (a media element playing and seeking, a download through the service worker)
// over the transfers scheduler, with simulated peers and origin (sim.mjs): bytes in order and
// verified, the origin never far ahead of the reader, a seek re-planned at once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { PIECE, sha, sleep, makeFile, SimPeer, simOrigin, setup } from './sim.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const { parseRange } = await import(path.join(process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client'), 'range.mjs'))

// Reads a reader to its end (or `limit` bytes), as the worker's stream does.
async function drain (reader, limit = Infinity) {
  const parts = []
  let n = 0
  while (n < limit) {
    const chunk = await reader.next(Math.min(64 * 1024, limit - n))
    if (!chunk) break
    parts.push(chunk)
    n += chunk.length
  }
  return Buffer.concat(parts)
}

test('Range headers: one range, suffix and open-ended; the rest left to the origin', () => {
  assert.deepEqual(parseRange('bytes=0-', 1000), [0, 999])
  assert.deepEqual(parseRange('bytes=10-19', 1000), [10, 19])
  assert.deepEqual(parseRange('bytes=990-5000', 1000), [990, 999])
  assert.deepEqual(parseRange('bytes=-100', 1000), [900, 999])
  assert.deepEqual(parseRange('bytes=-5000', 1000), [0, 999])
  for (const h of ['bytes=1000-', 'bytes=20-10', 'bytes=-0', 'bytes=-', 'bytes=0-1,5-6', 'items=0-1', 'bytes=a-b', '']) {
    assert.equal(parseRange(h, 1000), null, h)
  }
  assert.equal(parseRange('bytes=0-', 0), null)
})

test('a reader with the origin alone: bytes in order, the origin asked window by window to readAhead beyond the reader', async () => {
  const { body, file } = makeFile(64 * PIECE + 77, '/video.webm')
  const origin = simOrigin({ [file.path]: body })
  const { t, store } = setup([], origin)
  const reader = t.read(file, 0, file.size - 1, false)
  const head = await drain(reader, 2 * PIECE)
  assert.deepEqual(head, Buffer.from(body.subarray(0, 2 * PIECE)))
  await sleep(200) // the reader pauses (a media element with its buffer full)
  const sent = origin.log.reduce((n, e) => n + e.sent, 0)
  // readAhead (8 pieces) past the reader, and the piece it is in.
  assert.ok(sent <= 2 * PIECE + 9 * PIECE, `the origin sent ${sent} bytes with the reader at ${2 * PIECE}`)
  const rest = await drain(reader)
  assert.equal(sha(Buffer.concat([head, rest])), file.sha256)
  // Windows of at most readAhead and a piece, one after the other, each byte once.
  let next = 0
  for (const e of origin.log) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(e.range ?? `bytes=0-${file.size - 1}`)
    assert.ok(m, `a ranged request: ${e.range}`)
    const [from, to] = [Number(m[1]), Number(m[2])]
    assert.equal(from, next, 'each window starts where the one before ended')
    assert.ok(to + 1 - from <= 9 * PIECE, `window ${e.range}`)
    assert.equal(e.sent, to + 1 - from, 'each window sent whole')
    next = to + 1
  }
  assert.equal(next, file.size, 'no byte twice, none missing')
  assert.ok(origin.log.length >= 64 / 9, `${origin.log.length} windows`)
  await sleep(20)
  assert.ok(store.has(file.sha256), 'complete: stored, to be served to peers')
})

test('a seek far ahead cuts the origin stream and asks from the new position; the bytes there are right', async () => {
  const { body, file } = makeFile(96 * PIECE, '/video.webm')
  const origin = simOrigin({ [file.path]: body })
  const { t } = setup([], origin)
  const first = t.read(file, 0, file.size - 1, false)
  await drain(first, PIECE)
  first.close() // a media element cancels its response when it seeks
  const at = 70 * PIECE + 123
  const second = t.read(file, at, at + 3 * PIECE, false)
  const got = await drain(second)
  assert.deepEqual(got, Buffer.from(body.subarray(at, at + 3 * PIECE + 1)))
  assert.equal(origin.log.length, 2)
  assert.ok(origin.log[0].sent <= 9 * PIECE, `the first window sent ${origin.log[0].sent}`)
  // From the piece of the new position to readAhead (8 pieces) past it.
  assert.equal(origin.log[1].range, `bytes=${70 * PIECE}-${79 * PIECE - 1}`)
  second.close()
})

test('a reader with peers holding the file: pieces asked in order from its position, the origin never', async () => {
  const { body, file } = makeFile(40 * PIECE, '/video.webm')
  const a = new SimPeer('a', body, file.sha256)
  const b = new SimPeer('b', body, file.sha256)
  const origin = simOrigin({ [file.path]: body })
  const { t } = setup([a, b], origin)
  const at = 25 * PIECE + 5
  const reader = t.read(file, at, file.size - 1, false)
  const got = await drain(reader)
  assert.deepEqual(got, Buffer.from(body.subarray(at)))
  assert.equal(origin.log.length, 0)
  // Requests in the order they were made (request ids grow): the reader's pieces first.
  const asked = [...a.requests, ...b.requests].sort((x, y) => x.reqId - y.reqId).map((m) => m.piece)
  assert.deepEqual(asked.slice(0, 8), [25, 26, 27, 28, 29, 30, 31, 32], `first asked: ${asked.slice(0, 8)}`)
})

test('a reader and a corrupting peer: the peer is banned, not one bad byte reaches the reader', async () => {
  const { body, file } = makeFile(24 * PIECE, '/download.bin')
  const bad = new SimPeer('bad', body, file.sha256, { kind: 'corrupt' })
  const good = new SimPeer('good', body, file.sha256, { delay: 15 })
  const { t, banned } = setup([bad, good], simOrigin({ [file.path]: body }))
  const got = await drain(t.read(file, 0, file.size - 1, false))
  assert.equal(sha(got), file.sha256)
  assert.equal(banned.get('bad'), 'bad piece')
})

test('a reader whose peer leaves midway: the origin brings the rest from the reader position', async () => {
  const { body, file } = makeFile(48 * PIECE, '/video.webm')
  const leaving = new SimPeer('leaving', body, file.sha256, { chunkMs: 4 })
  const origin = simOrigin({ [file.path]: body })
  const { t } = setup([leaving], origin)
  const reader = t.read(file, 0, file.size - 1, false)
  const head = await drain(reader, 3 * PIECE)
  leaving.open = false
  t.onPeerClose(leaving)
  const rest = await drain(reader)
  assert.equal(sha(Buffer.concat([head, rest])), file.sha256)
  assert.ok(origin.log.length >= 1)
  for (const e of origin.log) assert.match(e.range ?? '', /^bytes=[1-9]\d*-\d+$/, 'from the reader position on')
  assert.ok(t.counters.bytesFromPeers > 0)
})

test('a peer still fetching a file serves the pieces it holds; the rest comes from elsewhere', async () => {
  const { body, file } = makeFile(16 * PIECE, '/video.webm')
  // `half` holds the first 8 pieces only (a viewer midway), `full` all of them, slower.
  const half = new SimPeer('half', body, file.sha256)
  half.have.clear()
  half.pieces.set(file.sha256, new Uint8Array([0xff, 0x00]))
  const full = new SimPeer('full', body, file.sha256, { delay: 30 })
  const origin = simOrigin({ [file.path]: body })
  const { t } = setup([half, full], origin)
  const got = await drain(t.read(file, 0, file.size - 1, false))
  assert.equal(sha(got), file.sha256)
  assert.equal(origin.log.length, 0)
  assert.ok(half.requests.length > 0 && half.requests.every((m) => m.piece < 8), `half was asked for ${half.requests.map((m) => m.piece)}`)
  assert.ok(full.requests.some((m) => m.piece >= 8))
})

test('pieces verified while a file is fetched are offered at once, and served from the transfer', async () => {
  const { body, file } = makeFile(12 * PIECE, '/video.webm')
  const origin = simOrigin({ [file.path]: body }, { chunkMs: 3 })
  const { t } = setup([], origin)
  const reader = t.read(file, 0, file.size - 1, false)
  await drain(reader, 3 * PIECE)
  const [p] = t.partial()
  assert.equal(p.contentId, file.sha256)
  assert.equal(p.count, 12)
  assert.ok(p.bits[0] & 0x80, 'piece 0 offered')
  assert.deepEqual(t.partial(), [], 'only what is new since the last look')
  assert.equal(t.partial(true).length, 1, 'all of it for a peer that just said hello')
  assert.deepEqual(Buffer.from(t.verifiedSlice(file.sha256, PIECE, 2 * PIECE)), Buffer.from(body.subarray(PIECE, 2 * PIECE)))
  assert.equal(t.verifiedSlice(file.sha256, 11 * PIECE, 12 * PIECE), null, 'not verified yet: not served')
  assert.equal(t.verifiedSlice(file.sha256, PIECE - 1, PIECE + 1), null, 'never across pieces')
  reader.close()
})

test('a reader kept waiting by a slow peer: the origin brings its window, from its position', async () => {
  const { body, file } = makeFile(32 * PIECE, '/video.webm')
  // A piece takes this peer about 2 s: it progresses (no peer stall), too slowly for a player.
  const slow = new SimPeer('slow', body, file.sha256, { chunkMs: 250 })
  const origin = simOrigin({ [file.path]: body })
  const { t, assets } = setup([slow], origin)
  const got = await drain(t.read(file, 0, file.size - 1, false))
  assert.equal(sha(got), file.sha256)
  assert.ok(origin.log.length >= 1, 'the origin was asked')
  assert.equal(assets[0]?.originReason, 'reader stalled')
  assert.ok(t.counters.bytesFromOrigin >= file.size - 4 * PIECE, `origin ${t.counters.bytesFromOrigin} bytes`)
})
