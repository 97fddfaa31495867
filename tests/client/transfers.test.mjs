// The transfers scheduler (client/src/transfers.ts, the bundle the browser runs) with simulated
// peers and a simulated origin: real bytes, real SHA-256 over every piece, real HTTP streams
// (Response bodies that arrive in chunks, honour Range and stop when aborted), real timers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PIECE, CHUNK, sha, sleep, makeFile, SimPeer, simOrigin, setup } from './sim.mjs'

test('peers that hold an asset serve all of it in parallel; every piece verified, the origin never asked', async () => {
  const { body, file } = makeFile(10 * PIECE + 1234)
  const a = new SimPeer('a', body, file.sha256)
  const b = new SimPeer('b', body, file.sha256)
  const origin = simOrigin({ [file.path]: body })
  const { t, store, assets } = setup([a, b], origin)
  const got = await t.get(file, true)
  assert.deepEqual(Buffer.from(got), Buffer.from(body))
  assert.equal(origin.log.length, 0)
  assert.ok(a.requests.length > 0 && b.requests.length > 0, `spread: ${a.requests.length} / ${b.requests.length}`)
  assert.equal(a.requests.length + b.requests.length, file.pieces.length)
  assert.equal(t.counters.bytesFromPeers, file.size)
  assert.equal(assets[0].fromPeers, file.size)
  assert.equal(assets[0].peers, 2)
  assert.ok(store.has(file.sha256))
  // Asked again: from the store, no request anywhere.
  await t.get(file, true)
  assert.equal(t.counters.bytesFromCache, file.size)
  assert.equal(a.requests.length + b.requests.length, file.pieces.length)
})

test('a peer sending bad pieces is banned and not one of its bytes is used; the honest peer serves the rest', async () => {
  const { body, file } = makeFile(8 * PIECE)
  const bad = new SimPeer('bad', body, file.sha256, { kind: 'corrupt' })
  const good = new SimPeer('good', body, file.sha256, { delay: 20 })
  const { t, banned } = setup([bad, good], simOrigin({ [file.path]: body }))
  const got = await t.get(file, true)
  assert.equal(sha(got), file.sha256)
  assert.equal(banned.get('bad'), 'bad piece')
  assert.ok(t.counters.badPieces >= 1)
  assert.equal(t.counters.bytesFromPeers, file.size)
})

test('pieces stalled on a silent peer go elsewhere; with nobody left, the origin sends only the missing span (Range)', async () => {
  const { body, file } = makeFile(12 * PIECE)
  const silent = new SimPeer('silent', body, file.sha256, { kind: 'silent' })
  const fine = new SimPeer('fine', body, file.sha256)
  const origin = simOrigin({ [file.path]: body })
  const { t } = setup([silent, fine], origin, { stallTimeout: 150 })
  const stalled = await Promise.race([t.get(file, true), sleep(100).then(() => null)])
  assert.equal(stalled, null, 'the silent peer holds up its pieces until the stall timeout')
  // The scheduler's tick (the engine's every 250 ms) finds the stalls.
  const ticker = setInterval(() => t.tick(), 50)
  try {
    const got = await t.get(file, true)
    assert.equal(sha(got), file.sha256)
  } finally { clearInterval(ticker) }
  assert.ok(silent.cancelled.size > 0, 'stalled requests are cancelled')
  assert.equal(origin.log.length, 0, 'the fine peer took over the stalled pieces')

  // Now the only holder goes away midway: the origin finishes from the first missing piece.
  const big = makeFile(16 * PIECE, '/big.bin')
  const leaving = new SimPeer('leaving', big.body, big.file.sha256, { chunkMs: 10 }) // still busy at 60 ms
  const origin2 = simOrigin({ [big.file.path]: big.body })
  const s2 = setup([leaving], origin2)
  const done = s2.t.get(big.file, false)
  await sleep(60)
  leaving.open = false
  s2.t.onPeerClose(leaving)
  const got = await done
  assert.equal(sha(got), big.file.sha256)
  assert.equal(origin2.log.length, 1)
  const range = /^bytes=(\d+)-(\d+)$/.exec(origin2.log[0].range)
  assert.ok(range, `a Range request: ${origin2.log[0].range}`)
  assert.equal(Number(range[1]) % PIECE, 0)
  assert.equal(Number(range[2]), big.file.size - 1)
  assert.equal(s2.t.counters.bytesFromPeers + s2.t.counters.bytesFromOrigin, big.file.size, 'no byte twice')
  assert.ok(s2.t.counters.bytesFromPeers > 0 && s2.assets[0].originReason === 'no peer has the rest', JSON.stringify(s2.assets[0]))
})

test('needed now and held by no connected peer: the origin at once; a prefetch then never touches it', async () => {
  const { body, file } = makeFile(5 * PIECE)
  const other = makeFile(3 * PIECE, '/other.css')
  const origin = simOrigin({ [file.path]: body, [other.file.path]: other.body })
  const { t, assets } = setup([], origin)
  const got = await t.get(file, true)
  assert.equal(sha(got), file.sha256)
  assert.equal(origin.log.length, 1)
  assert.equal(origin.log[0].range, null)
  assert.equal(assets[0].originReason, 'needed now, no connected peer has it')
  await assert.rejects(t.get(other.file, false, true), (err) => err.code === 'ERR_PREFETCH' && /^ERR_PREFETCH: \/other\.css/.test(err.message))
  assert.equal(origin.log.length, 1)
})

test('an urgent request to slow peers, the origin measured faster: both at once, the origin from the head, peers from the tail', async () => {
  const { body, file } = makeFile(24 * PIECE)
  const slow = new SimPeer('slow', body, file.sha256, { delay: 30, chunkMs: 15 })
  slow.rx.rate = 50 // bytes per ms, measured earlier: ~8 s for this file
  const origin = simOrigin({ [file.path]: body }, { measured: true, expectedMs: 40, chunkMs: 4 })
  const { t, assets } = setup([slow], origin)
  const got = await t.get(file, true)
  assert.equal(sha(got), file.sha256)
  assert.equal(assets[0].originReason, 'origin faster than the peers that hold it')
  assert.equal(origin.log.length, 1)
  const { fromPeers, fromOrigin } = assets[0]
  // Where the two meet, a piece or so can come from both (the origin reads on through pieces
  // the peers delivered to reach one they have not).
  const twice = fromPeers + fromOrigin - file.size
  assert.ok(twice >= 0 && twice <= 2 * PIECE, `peers ${fromPeers} + origin ${fromOrigin}: ${twice} bytes twice`)
  assert.ok(fromPeers > 0, 'peers took the tail')
  assert.ok(slow.requests.every((r) => r.piece > 0), 'never the head the origin streams')
  // The origin's stream stopped where the peers' pieces began (its log shows only what it sent).
  assert.equal(origin.log[0].sent, fromOrigin)
  assert.equal(t.cutBytes, fromOrigin)
  assert.equal(origin.log[0].aborted, true)
})

test('bytes the origin streams over pieces peers already verified are not used (they were never checked)', async () => {
  const { body, file } = makeFile(24 * PIECE)
  // The origin's copy differs in its last four pieces; it sends everything in one read, late.
  const served = body.slice()
  for (let i = 20; i < 24; i++) served[i * PIECE + 100] ^= 0xff
  const origin = simOrigin({ [file.path]: served }, { measured: true, expectedMs: 40, chunk: file.size, firstChunkMs: 250 })
  const peer = new SimPeer('p', body, file.sha256, { chunkMs: 2 })
  peer.rx.rate = 50 // measured slow: the origin streams from the head, the peer takes the tail
  const { t, assets, store } = setup([peer], origin)
  const got = await t.get(file, true)
  assert.equal(sha(got), file.sha256, 'the result is the manifest\'s content')
  assert.equal(sha(store.get(file.sha256)), file.sha256)
  assert.ok(peer.requests.slice(0, 4).every((r) => r.piece >= 20), 'the peer started on the tail')
  assert.equal(assets[0].originReason, 'origin faster than the peers that hold it')
})

test('an origin whose bytes differ from the manifest: its bytes are returned, never stored, and said so', async () => {
  const { body, file } = makeFile(3 * PIECE)
  const changed = body.slice()
  changed[PIECE + 7] ^= 1
  const origin = simOrigin({ [file.path]: changed })
  const { t, store, warnings } = setup([], origin)
  const got = await t.get(file, true)
  assert.deepEqual(Buffer.from(got), Buffer.from(changed))
  assert.equal(store.size, 0)
  assert.ok(warnings.some((w) => /^ERR_ORIGIN_MISMATCH: \/app\.js differs/.test(w)), warnings.join('; '))
})

test('an origin that fails: ERR_ORIGIN with its code, counted', async () => {
  const { file } = makeFile(PIECE)
  const origin = { measured: false, expected: () => 50, fetch: async () => new Response('gone', { status: 500 }) }
  const { t } = setup([], origin)
  await assert.rejects(t.get(file, true), (err) => err.code === 'ERR_ORIGIN' && /HTTP 500/.test(err.message))
  assert.equal(t.counters.failures, 1)
})

test('transfers that share one busy peer wait for its slots: none goes to the origin while the peer holds the rest', async () => {
  // Five files, one peer holding all of them, two requests in flight at a time: a slot a piece
  // frees goes to one transfer while the others, midway, wait for the next.
  const files = Array.from({ length: 5 }, (_, i) => makeFile(4 * PIECE - 100 * i, `/f${i}.bin`))
  const peer = new SimPeer('p', null, null, { delay: 3 })
  peer.have = new Set(files.map((f) => f.file.sha256))
  const bodies = new Map(files.map((f) => [f.file.sha256, f.body]))
  peer.send = function (m) {
    if (m.type === 'cancel') this.cancelled.add(m.reqId)
    if (m.type !== 'request') return true
    this.requests.push(m)
    const data = bodies.get(m.contentId).slice(m.piece * PIECE, (m.piece + 1) * PIECE)
    void (async () => {
      await sleep(this.delay)
      for (let off = 0; off < data.length; off += CHUNK) {
        if (this.cancelled.has(m.reqId)) return
        await this.transfers.onPiece(this, m.reqId, m.piece, off, data.subarray(off, off + CHUNK))
        await sleep(1)
      }
    })()
    return true
  }
  const origin = simOrigin(Object.fromEntries(files.map((f) => [f.file.path, f.body])))
  const { t, warnings } = setup([peer], origin, { maxInflightPerPeer: 2, hedge: false, firstByteTimeout: 10_000 })
  const got = await Promise.all(files.map((f) => t.get(f.file, true)))
  for (const [i, f] of files.entries()) assert.equal(sha(got[i]), f.file.sha256)
  assert.deepEqual(origin.log.map((e) => e.path), [], JSON.stringify(warnings))
  assert.equal(t.counters.bytesFromPeers, files.reduce((a, f) => a + f.file.size, 0))
})
