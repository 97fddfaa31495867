// Simulated peers and a simulated origin for the transfers scheduler (client/src/transfers.ts,
// the bundle the browser runs): real bytes, real SHA-256 over every piece, real HTTP streams
// (Response bodies that arrive in chunks, honour Range and stop when aborted), real timers.
import path from 'node:path'
import { createHash, randomBytes } from 'node:crypto'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const dir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client')
export const { Transfers } = await import(path.join(dir, 'transfers.mjs'))
export const { RateMeter } = await import(path.join(dir, 'policy.mjs'))

export const PIECE = 16 * 1024
export const CHUNK = 4 * 1024
export const sha = (b) => createHash('sha256').update(b).digest('hex')
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function makeFile (size, name = '/app.js') {
  const body = new Uint8Array(randomBytes(size))
  const pieces = []
  for (let i = 0; i < size; i += PIECE) pieces.push(sha(body.subarray(i, i + PIECE)))
  return { body, file: { path: name, sha256: sha(body), size, type: 'text/javascript', pieces } }
}
export const index = {
  manifest: { piece_size: PIECE },
  pieceLength: (f, i) => Math.min(PIECE, f.size - i * PIECE),
}

// A peer holding `body`: answers each request after `delay` ms, in chunks, `chunkMs` apart.
// kind: 'honest' | 'corrupt' (one flipped byte per piece) | 'silent' (never answers)
export class SimPeer {
  constructor (id, body, contentId, { kind = 'honest', delay = 5, chunkMs = 1, rtt = 20 } = {}) {
    Object.assign(this, { id, body, kind, delay, chunkMs, rtt })
    this.open = true
    this.have = new Set([contentId])
    this.pieces = new Map()
    this.rx = new RateMeter()
    this.requests = []
    this.cancelled = new Set()
  }

  send (m) {
    if (m.type === 'cancel') this.cancelled.add(m.reqId)
    if (m.type !== 'request') return true
    this.requests.push(m)
    if (this.kind !== 'silent') void this.answer(m)
    return true
  }

  async answer ({ reqId, piece }) {
    await sleep(this.delay)
    const data = this.body.slice(piece * PIECE, Math.min(this.body.length, (piece + 1) * PIECE))
    if (this.kind === 'corrupt') data[data.length >> 1] ^= 0xff
    for (let off = 0; off < data.length; off += CHUNK) {
      if (this.cancelled.has(reqId) || !this.open) return
      await this.transfers.onPiece(this, reqId, piece, off, data.subarray(off, off + CHUNK))
      await sleep(this.chunkMs)
    }
  }
}

// The origin: `ttfb` ms, then `chunk`-byte reads `chunkMs` apart; Range honoured (206).
export function simOrigin (files, { ttfb = 5, chunk = 8 * 1024, chunkMs = 1, firstChunkMs = 0, measured = false, expectedMs = 50 } = {}) {
  const log = []
  return {
    log,
    measured,
    expected: () => expectedMs,
    async fetch (p, init = {}) {
      const body = files[p]
      const entry = { path: p, range: init.headers?.range ?? null, sent: 0, aborted: false }
      log.push(entry)
      init.signal?.addEventListener('abort', () => { entry.aborted = true })
      let start = 0
      let end = body.length - 1
      const m = /^bytes=(\d+)-(\d+)$/.exec(entry.range ?? '')
      if (m) [start, end] = [Number(m[1]), Number(m[2])]
      await sleep(ttfb)
      let pos = start
      const stream = new ReadableStream({
        async pull (c) {
          if (init.signal?.aborted) { entry.aborted = true; c.close(); return }
          if (pos > end) { c.close(); return }
          await sleep(pos === start && firstChunkMs ? firstChunkMs : chunkMs)
          const n = Math.min(chunk, end + 1 - pos)
          c.enqueue(body.slice(pos, pos + n))
          pos += n
          entry.sent += n
        },
        cancel () { entry.aborted = true },
      })
      return new Response(stream, { status: m ? 206 : 200 })
    },
  }
}

export function setup (peers, origin, options = {}) {
  const banned = new Map()
  const store = new Map()
  const swarm = {
    connected: () => peers.filter((p) => p.open),
    isBanned: (id) => banned.has(id),
    responsible: () => [],
    ringOrder: () => [],
    joining: () => ({ signal: true, helloPending: false, handshakeNearlyDone: false, handshakeUnderWay: false, alone: false }),
    ban (p, reason) { banned.set(p.id, reason); p.open = false; t.onPeerClose(p) },
  }
  const sink = { get: async (id) => store.get(id) ?? null, put: async (id, b) => { store.set(id, b) } }
  const t = new Transfers(index, swarm, origin, sink, {
    firstByteTimeout: 500, stallTimeout: 3000, maxInflightPerPeer: 4, hedge: true, debug: false, readAhead: 8 * PIECE, ...options,
  })
  const assets = []
  const warnings = []
  t.on('asset', (a) => assets.push(a))
  t.on('warning', (w) => warnings.push(w))
  for (const p of peers) p.transfers = t
  return { t, banned, store, assets, warnings }
}

