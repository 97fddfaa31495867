// Transfers: one scheduler for every asset a page asks for, with two kinds of source side by
// side — the connected peers that hold it (pieces requested in parallel, each verified against
// the manifest before use) and the origin (one HTTP stream from the first missing piece, a
// Range request when peers already delivered some). The delivery policy (policy.ts) decides,
// from measured state, which of them a transfer starts with; a source that stalls or fails
// hands its pieces to the other. No DOM, no WebRTC: the peers, the origin and the store are
// interfaces, so the scheduler runs under Node's test runner with simulated ones.

import { Emitter } from './emitter';
import { DeployNetError } from './errors';
import { type ManifestFile, type ManifestIndex, sha256Hex } from './manifest';
import { type Decision, decide, type RateMeter, type SourceState } from './policy';
import { originRange, PieceState, Pieces, planRequests, rankPeers } from './scheduler';
import { hasBit, type RejectReason, type WireMessage } from './wire';

/** What a transfer needs of a connected peer (peer.ts). */
export interface PeerLink {
  readonly id: string;
  readonly open: boolean;
  /** Round-trip time, ms (Infinity: not measured). */
  readonly rtt: number;
  /** Content ids the peer said it holds. */
  readonly have: Set<string>;
  /** Files it is still fetching: the pieces it holds of each (`pieces` bitfields). */
  readonly pieces: Map<string, Uint8Array>;
  /** Its measured delivery rate to us. */
  readonly rx: RateMeter;
  send(m: WireMessage): boolean;
}

/** What the transfers need of the swarm: its connected peers and how joining goes. */
export interface PeerSource<P extends PeerLink> {
  connected(): Iterable<P>;
  isBanned(id: string): boolean;
  /** Peer ids the signaling server named responsible for a content id, in its order. */
  responsible(contentId: string): string[];
  /** Connected peers in the local ring's order for a content id ([] without the ring). */
  ringOrder(contentId: string): string[];
  /** The swarm's part of the policy's state (policy.ts: SourceState). */
  joining(): Pick<SourceState, 'signal' | 'helloPending' | 'handshakeNearlyDone' | 'handshakeUnderWay' | 'alone'>;
  /** A peer that sent bad data: dropped, never asked again. */
  ban(peer: P, reason: string): void;
}

/** The origin as a source: its HTTP, and what it is measured to deliver. */
export interface OriginSource {
  fetch(
    path: string,
    init: { headers?: Record<string, string>; cache?: RequestCache; signal?: AbortSignal },
  ): Promise<Response>;
  /** ms expected for `bytes` (its measured time to first byte and throughput). */
  expected(bytes: number): number;
  /** Whether `expected` rests on measurements. */
  readonly measured: boolean;
}

/** Verified content kept for serving (store.ts). */
export interface ContentSink {
  get(id: string): Promise<Uint8Array | null>;
  put(id: string, bytes: Uint8Array): Promise<void>;
}

export interface TransferOptions {
  firstByteTimeout: number;
  stallTimeout: number;
  maxInflightPerPeer: number;
  hedge: boolean;
  debug: boolean;
  /** How far the origin's stream may run ahead of the reader it serves (bytes). */
  readAhead: number;
}

export interface AssetStats {
  path: string;
  contentId: string;
  size: number;
  fromPeers: number;
  fromOrigin: number;
  fromCache: number;
  peers: number;
  ms: number;
  /** Why the origin served (some of) it, if it did. */
  originReason?: string;
  /** Fetched ahead of need, from peers, for the visitor's next pages. */
  prefetch?: boolean;
}

/**
 * A reader of one file's verified bytes in order, from a start to an end byte (a Range request
 * through the service worker: a media element playing and seeking, a download). Its transfer
 * fetches in order from the reader's position; the origin, when it serves a reader, streams at
 * most `readAhead` bytes ahead of it, as a browser's own media loading does.
 */
export interface RangeReader {
  /** The next verified bytes at the reader's position (at most `max`), or null past its end. */
  next(max?: number): Promise<Uint8Array | null>;
  /** Done with it (the response was read whole, cancelled, or the page went away). */
  close(): void;
}

/** A transfer started by readers, with none left, is dropped after this long (ms) unless peers
 * are still bringing its pieces; its partial bytes would otherwise pin memory. */
export const ABANDON_MS = 30_000;
/** A paused origin stream with no reader left is cut after this long (ms). */
const ORIGIN_IDLE_MS = 5_000;

interface ReadState {
  pos: number;
  end: number; // inclusive
  wake: (() => void) | null;
}

type Events = {
  /** An asset is complete (or came from the store). */
  asset: [AssetStats];
  /** Verified content was stored: it can be announced to peers. */
  stored: [contentId: string];
  warning: [string];
};

interface Transfer {
  file: ManifestFile;
  buf: Uint8Array;
  pieces: Pieces;
  got: Uint32Array; // bytes of each requested piece received so far
  excluded: Set<string>;
  used: Set<string>;
  fromPeers: number;
  fromOrigin: number;
  started: number;
  firstByte: boolean;
  /** The origin is streaming this transfer from `originAt` on (peers take pieces from the end). */
  origin: boolean;
  originAt: number;
  originAbort: AbortController | null; // the origin's stream, while it is still arriving
  originRead: number; // bytes read from the current origin stream
  originReason?: string;
  done: boolean;
  resolve: (b: Uint8Array) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | null;
  /** Render-blocking: goes to the origin at once unless a connected peer holds it. */
  urgent: boolean;
  /** A prefetch: from peers or not at all. */
  peersOnly: boolean;
  /** Started by readers (Range requests): fetched in order from their positions, and the
   * origin only as far ahead of them as they need; not necessarily every piece. */
  ranged: boolean;
  /** Cut on purpose (a reader sought elsewhere): the origin's stream ends without a failure. */
  replan: boolean;
  /** Wakes an origin stream paused ahead of its reader. */
  resume: (() => void) | null;
  /** Since when a ranged transfer has had no reader (performance.now()). */
  quietSince: number;
}

interface Req<P> {
  t: Transfer;
  piece: number;
  peer: P;
  buf: Uint8Array; // the piece as it arrives; copied into the transfer only once verified
  progress: number; // time of the last chunk (or of the request)
}

export class Transfers<P extends PeerLink> extends Emitter<Events> {
  readonly counters = { bytesFromPeers: 0, bytesFromOrigin: 0, bytesFromCache: 0, badPieces: 0, failures: 0 };
  /** Bytes read from origin streams cut short (Resource Timing counts no body for those). */
  cutBytes = 0;
  private running = new Map<string, Promise<Uint8Array>>(); // by content id
  private active = new Set<Transfer>();
  private reqs = new Map<number, Req<P>>();
  private nextReq = 1;
  private readers = new Map<string, Set<ReadState>>(); // by content id
  private progressed = new Set<string>(); // content ids with pieces verified since `partial()`

  constructor(
    private index: ManifestIndex,
    private peers: PeerSource<P>,
    private origin: OriginSource,
    private store: ContentSink,
    private options: TransferOptions,
  ) {
    super();
  }

  /** Whether a content id is being fetched. */
  has(contentId: string): boolean {
    return this.running.has(contentId);
  }

  /**
   * Reads a file's verified bytes `start`..`end` (inclusive) in order as they arrive, from the
   * store, from a transfer under way, or from one started for this reader.
   */
  read(file: ManifestFile, start: number, end: number, urgent: boolean): RangeReader {
    const cid = file.sha256;
    const r: ReadState = { pos: start, end: Math.min(end, file.size - 1), wake: null };
    const readers = this.readers.get(cid) ?? new Set<ReadState>();
    this.readers.set(cid, readers);
    readers.add(r);
    let whole: Uint8Array | null = null;
    let failure: unknown = null;
    let closed = false;
    this.get(file, urgent, false, true).then(
      (b) => {
        whole = b;
        r.wake?.();
      },
      (err) => {
        failure = err;
        r.wake?.();
      },
    );
    const t = this.transferOf(cid);
    if (t) this.seek(t, r);
    const waiting = setTimeout(() => {
      // No byte for this reader in time (a seek to where no source was on its way): the origin.
      const t = this.transferOf(cid);
      if (!closed && t && r.pos === start && !this.readable(t, r.pos)) void this.fromOrigin(t, 'reader waited');
    }, this.options.firstByteTimeout);
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(waiting);
      readers.delete(r);
      if (readers.size === 0 && this.readers.get(cid) === readers) this.readers.delete(cid);
      const t = this.transferOf(cid);
      if (t) {
        t.quietSince = performance.now();
        t.resume?.();
      }
    };
    return {
      next: async (max = 1 << 20) => {
        for (;;) {
          if (closed || r.pos > r.end) return null;
          const stop = Math.min(r.end + 1, r.pos + max);
          const t = this.transferOf(cid);
          const src = whole ?? (t && this.readable(t, r.pos) ? t.buf : null);
          if (src) {
            const n = whole ? stop - r.pos : this.verifiedRun(t as Transfer, r.pos, stop);
            const out = src.slice(r.pos, r.pos + n); // a copy: it leaves for the worker
            r.pos += n;
            if (t) {
              t.resume?.();
              if (!t.origin) this.schedule(t);
            }
            return out;
          }
          if (failure) throw failure;
          // A reader kept waiting (the peers on its next piece are too slow for it: a player
          // about to stall) has the origin bring its window.
          const stalled = setTimeout(() => {
            const t = this.transferOf(cid);
            if (!closed && t && !t.origin && !this.readable(t, r.pos)) void this.fromOrigin(t, 'reader stalled');
          }, this.options.firstByteTimeout);
          await new Promise<void>((resolve) => {
            r.wake = resolve;
          });
          clearTimeout(stalled);
          r.wake = null;
        }
      },
      close,
    };
  }

  private transferOf(cid: string): Transfer | undefined {
    for (const t of this.active) if (t.file.sha256 === cid && !t.done) return t;
    return undefined;
  }

  private readable(t: Transfer, pos: number): boolean {
    return t.pieces.get(Math.floor(pos / this.index.manifest.piece_size)) === PieceState.Verified;
  }

  /** Verified bytes from `pos` on, up to `stop`. */
  private verifiedRun(t: Transfer, pos: number, stop: number): number {
    const ps = this.index.manifest.piece_size;
    let end = pos;
    while (end < stop && this.readable(t, end)) end = Math.min(stop, (Math.floor(end / ps) + 1) * ps);
    return end - pos;
  }

  /** The readers of a transfer. */
  private readersOf(t: Transfer): Set<ReadState> {
    return this.readers.get(t.file.sha256) ?? new Set();
  }

  /** Where a ranged transfer is wanted first: the piece of its reader furthest behind. */
  private focus(t: Transfer): number {
    let pos = Infinity;
    for (const r of this.readersOf(t)) pos = Math.min(pos, r.pos);
    return Number.isFinite(pos) ? Math.floor(pos / this.index.manifest.piece_size) : 0;
  }

  /** The first piece from `from` on that is not verified (the number of pieces if none). */
  private firstMissing(t: Transfer, from: number): number {
    let f = from;
    while (f < t.pieces.length && t.pieces.get(f) === PieceState.Verified) f++;
    return f;
  }

  /** The reader an origin stream at `at` serves: the nearest one at or behind it, within reach. */
  private servedReader(t: Transfer, at: number): ReadState | null {
    let best: ReadState | null = null;
    for (const r of this.readersOf(t)) {
      if (
        r.pos <= at + this.index.manifest.piece_size &&
        at - r.pos <= this.options.readAhead &&
        (!best || r.pos > best.pos)
      )
        best = r;
    }
    return best;
  }

  /**
   * A reader joined a transfer under way (a seek, a resumed download): an origin stream that
   * will not reach it soon and serves no other reader is cut, and the transfer re-planned from
   * the new position.
   */
  private seek(t: Transfer, r: ReadState) {
    if (this.readable(t, r.pos)) return;
    if (t.origin && t.ranged && t.originAbort) {
      const near = r.pos >= t.originAt && r.pos <= t.originAt + this.options.readAhead;
      const served = this.servedReader(t, t.originAt);
      if (near || (served && served !== r)) return;
      t.replan = true;
      this.cutOrigin(t);
      return;
    }
    this.schedule(t);
  }

  /**
   * The files being fetched that gained verified pieces since the last call (every one with
   * pieces, with `all`), as `pieces` bitfields: peers may ask for those pieces already.
   */
  partial(all = false): { contentId: string; count: number; bits: Uint8Array }[] {
    const out = [];
    for (const t of this.active) {
      const cid = t.file.sha256;
      if (t.done || !(all || this.progressed.has(cid)) || !t.pieces.any(PieceState.Verified)) continue;
      const bits = new Uint8Array(Math.ceil(t.pieces.length / 8));
      for (let i = 0; i < t.pieces.length; i++)
        if (t.pieces.get(i) === PieceState.Verified) bits[i >> 3] |= 0x80 >> (i & 7);
      out.push({ contentId: cid, count: t.pieces.length, bits });
    }
    if (!all) this.progressed.clear();
    return out;
  }

  /** Bytes `start`..`end` (exclusive, within one piece) of a file still being fetched, if verified. */
  verifiedSlice(contentId: string, start: number, end: number): Uint8Array | null {
    const t = this.transferOf(contentId);
    const ps = this.index.manifest.piece_size;
    if (!t || end <= start || Math.floor(start / ps) !== Math.floor((end - 1) / ps) || end > t.file.size) return null;
    return this.readable(t, start) ? t.buf.subarray(start, end) : null;
  }

  /** A piece is verified: its readers may go on, and peers may hear of it. */
  /**
   * A request that will not complete gives its piece back to be asked again. Only a piece still
   * asked for goes back: one that verified meanwhile (from the origin, or another request) stays
   * verified, so it is neither fetched nor counted twice.
   */
  private requeue(t: Transfer, piece: number) {
    if (t.pieces.get(piece) === PieceState.Requested) t.pieces.set(piece, PieceState.Todo);
  }

  private verified(t: Transfer, piece: number) {
    t.pieces.set(piece, PieceState.Verified);
    this.progressed.add(t.file.sha256);
    for (const r of this.readersOf(t)) r.wake?.();
  }

  /** Prefetches under way. */
  prefetches(): number {
    let n = 0;
    for (const t of this.active) if (t.peersOnly) n++;
    return n;
  }

  /**
   * The verified bytes of a file of the manifest. `urgent`: the page needs it now;
   * `peersOnly`: a prefetch, from peers or not at all (rejected with ERR_PREFETCH).
   */
  get(file: ManifestFile, urgent: boolean, peersOnly = false, ranged = false): Promise<Uint8Array> {
    let p = this.running.get(file.sha256);
    if (p && !peersOnly) {
      // Already under way as a prefetch, or for a patient request: now the page needs it.
      for (const t of this.active) {
        if (t.file.sha256 !== file.sha256) continue;
        t.peersOnly = false;
        if (!ranged) t.ranged = false; // now wanted whole
        t.urgent ||= urgent;
        const d = t.firstByte ? null : this.decideFor(t);
        if (d?.source === 'origin') void this.fromOrigin(t, d.reason);
      }
    }
    if (!p) {
      p = this.download(file, urgent, peersOnly, ranged).finally(() => this.running.delete(file.sha256));
      this.running.set(file.sha256, p);
    }
    return p;
  }

  private async download(
    file: ManifestFile,
    urgent: boolean,
    peersOnly: boolean,
    ranged: boolean,
  ): Promise<Uint8Array> {
    const started = performance.now();
    const cached = await this.store.get(file.sha256);
    if (cached) {
      this.counters.bytesFromCache += cached.length;
      this.emit('asset', {
        path: file.path,
        contentId: file.sha256,
        size: file.size,
        fromPeers: 0,
        fromOrigin: 0,
        fromCache: cached.length,
        peers: 0,
        ms: performance.now() - started,
      });
      return cached;
    }
    const n = file.pieces.length;
    const t: Transfer = {
      file,
      buf: new Uint8Array(file.size),
      pieces: new Pieces(n),
      got: new Uint32Array(n),
      excluded: new Set(),
      used: new Set(),
      fromPeers: 0,
      fromOrigin: 0,
      started,
      firstByte: false,
      origin: false,
      originAt: 0,
      originAbort: null,
      originRead: 0,
      done: false,
      resolve: () => {},
      reject: () => {},
      timer: null,
      urgent,
      peersOnly,
      ranged,
      replan: false,
      resume: null,
      quietSince: started,
    };
    const result = new Promise<Uint8Array>((resolve, reject) => {
      t.resolve = resolve;
      t.reject = reject;
    });
    this.active.add(t);
    const d = this.decideFor(t);
    if (d.source === 'origin' || d.source === 'both') {
      // 'both': the origin streams from the head; once it answers, peers take the tail.
      void this.fromOrigin(t, d.reason);
    } else {
      t.timer = setTimeout(() => {
        if (!t.firstByte) void this.fromOrigin(t, 'first byte timeout');
      }, this.options.firstByteTimeout);
      this.schedule(t);
    }
    try {
      return await result;
    } finally {
      this.active.delete(t);
      if (t.timer) clearTimeout(t.timer);
    }
  }

  // ---- what peers say ----

  /** A peer said it holds a content id: transfers of it may use the peer. */
  onHave(contentId: string) {
    for (const t of this.active) if (t.file.sha256 === contentId) this.schedule(t);
  }

  /** A chunk of a piece a peer was asked for. */
  async onPiece(peer: P, reqId: number, piece: number, offset: number, data: Uint8Array) {
    const r = this.reqs.get(reqId);
    if (!r || r.peer !== peer) return; // cancelled or re-requested elsewhere: late bytes are dropped
    const t = r.t;
    const len = r.buf.length;
    if (piece !== r.piece || offset !== t.got[piece] || offset + data.length > len) {
      this.reqs.delete(reqId);
      this.requeue(t, piece);
      this.peers.ban(peer, 'piece out of order or too long');
      this.schedule(t);
      return;
    }
    this.firstByte(t);
    r.buf.set(data, offset);
    t.got[piece] += data.length;
    r.progress = performance.now();
    peer.rx.add(data.length, r.progress);
    if (t.got[piece] < len) return;
    this.reqs.delete(reqId);
    if (this.inflight(peer) === 0) peer.rx.idle();
    const hash = await sha256Hex(r.buf);
    if (t.done || t.pieces.get(piece) === PieceState.Verified) return; // the origin got there first
    if (hash !== t.file.pieces[piece]) {
      // Not one byte of a bad piece is used: it is asked again elsewhere, its sender banned.
      this.counters.badPieces++;
      t.pieces.set(piece, PieceState.Todo);
      this.peers.ban(peer, 'bad piece');
      this.schedule(t);
      return;
    }
    t.buf.set(r.buf, piece * this.index.manifest.piece_size);
    this.verified(t, piece);
    t.fromPeers += len;
    t.used.add(peer.id);
    this.counters.bytesFromPeers += len;
    if (t.pieces.all(PieceState.Verified)) await this.finish(t);
    this.scheduleAll(); // the peer has room again: for this transfer or any other
  }

  /** A peer declined a request: busy (asked again on the next tick), or not this peer. */
  onReject(peer: P, reqId: number, reason: RejectReason) {
    const r = this.reqs.get(reqId);
    if (!r || r.peer !== peer) return;
    this.reqs.delete(reqId);
    this.requeue(r.t, r.piece);
    if (reason === 'busy') return;
    r.t.excluded.add(peer.id);
    if (reason === 'missing') {
      peer.have.delete(r.t.file.sha256);
      peer.pieces.delete(r.t.file.sha256);
    }
    this.scheduleAll();
  }

  /** A peer is gone: what it was asked for is asked elsewhere. */
  onPeerClose(peer: P) {
    for (const [id, r] of this.reqs) {
      if (r.peer !== peer) continue;
      this.reqs.delete(id);
      this.requeue(r.t, r.piece);
      this.schedule(r.t);
    }
  }

  /** Every 250 ms: stalled pieces asked elsewhere, then every transfer scheduled again. */
  tick() {
    const now = performance.now();
    for (const [id, r] of this.reqs) {
      if (now - r.progress > this.options.stallTimeout) {
        this.reqs.delete(id);
        r.peer.send({ type: 'cancel', reqId: id });
        this.requeue(r.t, r.piece);
        r.t.excluded.add(r.peer.id);
        this.schedule(r.t);
      }
    }
    for (const t of this.active) {
      if (!t.ranged || t.done || this.readersOf(t).size > 0) {
        t.quietSince = now;
        continue;
      }
      const quiet = now - t.quietSince;
      // No reader left: an origin stream paused ahead of none is cut; the transfer itself goes
      // once peers are not bringing its pieces either.
      if (t.originAbort && t.resume && quiet > ORIGIN_IDLE_MS) {
        t.replan = true;
        this.cutOrigin(t);
      }
      if (quiet > ABANDON_MS && !t.origin && !t.pieces.any(PieceState.Requested)) {
        t.done = true;
        this.cancelPeers(t);
        t.reject(new DeployNetError('ERR_ABANDONED', `${t.file.path}: no reader left`));
      }
    }
    this.scheduleAll();
  }

  /** Leaving: what is still under way finishes from the origin. */
  destroy() {
    for (const t of this.active) if (!t.done) void this.fromOrigin(t, 'destroyed');
  }

  // ---- scheduling ----

  /** Peers to ask for a transfer, best first (scheduler.ts: rankPeers). */
  private candidates(t: Transfer): P[] {
    const cid = t.file.sha256;
    const open: P[] = [];
    for (const p of this.peers.connected()) {
      if (!p.open || this.peers.isBanned(p.id) || t.excluded.has(p.id)) continue;
      if (p.have.has(cid) || p.pieces.has(cid)) open.push(p);
    }
    if (open.length === 0) return open;
    return rankPeers(open, this.peers.responsible(cid), this.peers.ringOrder(cid));
  }

  private inflight(peer: P): number {
    let n = 0;
    for (const r of this.reqs.values()) if (r.peer === peer) n++;
    return n;
  }

  /** Whether a peer holds a piece of a file (all of it, or that piece of a partial one). */
  private holds(p: P, cid: string, piece: number): boolean {
    if (p.have.has(cid)) return true;
    const bits = p.pieces.get(cid);
    return bits !== undefined && hasBit(bits, piece);
  }

  /** Whether a peer holds a piece of a transfer that is still to be asked for. */
  private holdsTodo(p: P, t: Transfer): boolean {
    if (p.have.has(t.file.sha256)) return true;
    for (let i = 0; i < t.pieces.length; i++) {
      if (t.pieces.get(i) === PieceState.Todo && this.holds(p, t.file.sha256, i)) return true;
    }
    return false;
  }

  private schedule(t: Transfer, limit = Infinity) {
    if (t.done) return;
    const peers = this.candidates(t);
    if (peers.length > 0) this.plan(t, peers, limit);
    this.originIfNobody(t, peers);
  }

  /**
   * Midway, with nobody bringing what is needed (and no peer just connected about to say what
   * it holds): the origin finishes the job. For a ranged transfer, when no candidate holds the
   * piece its reader furthest behind waits for.
   */
  private originIfNobody(t: Transfer, peers: P[]) {
    if (t.origin || !t.firstByte || this.peers.joining().helloPending) return;
    if (t.ranged) {
      if (this.readersOf(t).size === 0) return;
      const f = this.firstMissing(t, this.focus(t));
      if (f >= t.pieces.length || t.pieces.get(f) !== PieceState.Todo) return;
      if (peers.some((p) => this.holds(p, t.file.sha256, f))) return;
    } else if (t.pieces.any(PieceState.Requested) || !t.pieces.any(PieceState.Todo)) {
      return;
    } else if (peers.some((p) => this.holdsTodo(p, t))) {
      return; // a holder busy with other transfers: a piece it finishes frees a slot (scheduleAll)
    }
    void this.fromOrigin(t, 'no peer has the rest');
  }

  /** Requests to peers for a transfer's pieces, in the order its sources call for. */
  private plan(t: Transfer, peers: P[], limit: number) {
    const ps = this.index.manifest.piece_size;
    let state = t.pieces.states;
    let fromEnd = false;
    let from = 0;
    if (t.origin && t.ranged) {
      // Beside the origin serving a reader, peers take what comes after the origin's reach.
      const reach = Math.floor((t.originAt + this.options.readAhead) / ps);
      const at = Math.floor(t.originAt / ps);
      state = state.map((s, i) => (i >= at && i <= reach ? PieceState.Verified : s));
      from = reach + 1;
    } else if (t.origin) {
      // Beside a streaming origin, peers take what it will reach last: the pieces from the end,
      // at least one piece clear of its position.
      const first = Math.floor(t.originAt / ps) + 2;
      state = state.map((s, i) => (i < first ? PieceState.Verified : s));
      fromEnd = true;
    } else if (t.ranged) {
      from = this.focus(t); // in order from the reader furthest behind
    }
    const inflight = peers.map((p) => this.inflight(p));
    const cid = t.file.sha256;
    const holds = (i: number, piece: number) => this.holds(peers[i], cid, piece);
    const plan = planRequests(state, inflight, this.options.maxInflightPerPeer, limit, fromEnd, from, holds);
    for (const [piece, i] of plan) {
      const reqId = this.nextReq++;
      const len = this.index.pieceLength(t.file, piece);
      this.reqs.set(reqId, { t, piece, peer: peers[i], buf: new Uint8Array(len), progress: performance.now() });
      t.pieces.set(piece, PieceState.Requested);
      t.got[piece] = 0;
      peers[i].rx.busy(performance.now());
      peers[i].send({ type: 'request', reqId, contentId: t.file.sha256, piece });
    }
  }

  /** Every transfer, after a peer said what it holds or has room again. */
  scheduleAll() {
    // First one piece for every transfer still waiting for its first byte (each asset starts
    // arriving, and none runs into the budget behind another's pieces), then the rest.
    for (const t of this.active) {
      if (t.done || t.origin || t.pieces.any(PieceState.Requested)) continue;
      const d = t.firstByte ? null : this.decideFor(t);
      if (d?.source === 'origin') void this.fromOrigin(t, d.reason);
      else this.schedule(t, 1);
    }
    for (const t of this.active) this.schedule(t);
  }

  /** The delivery policy's choice for a transfer now (policy.ts), from the measured state. */
  private decideFor(t: Transfer): Decision {
    // Called on every scheduling pass: the bytes still missing without walking the pieces.
    let missing = Math.max(0, t.file.size - t.fromPeers - t.fromOrigin);
    if (t.ranged) missing = Math.min(missing, this.options.readAhead); // what its readers want next
    return decide(
      { size: missing, urgent: t.urgent },
      {
        ...this.peers.joining(),
        holders: this.candidates(t).map((p) => ({ rtt: p.rtt, rate: p.rx.rate })),
        originMs: this.origin.expected(missing),
        originMeasured: this.origin.measured,
      },
      this.options.firstByteTimeout,
      this.options.hedge,
    );
  }

  private firstByte(t: Transfer) {
    if (t.firstByte) return;
    t.firstByte = true;
    if (t.timer) {
      clearTimeout(t.timer);
      t.timer = null;
    }
  }

  /** Requests of a transfer to peers, cancelled (all, or those for one piece). */
  private cancelPeers(t: Transfer, piece = -1, exclude = false) {
    for (const [id, r] of this.reqs) {
      if (r.t !== t || (piece >= 0 && r.piece !== piece)) continue;
      this.reqs.delete(id);
      r.peer.send({ type: 'cancel', reqId: id });
      if (exclude) {
        // Peers that had their chance at the head make way; the tail stays theirs.
        this.requeue(t, r.piece);
        if (!t.firstByte) t.excluded.add(r.peer.id);
      }
    }
  }

  // ---- the origin ----

  /**
   * The origin as one more source: it streams the transfer from the first piece not yet
   * verified, each piece verified as it completes, while peers that hold the content take
   * pieces from the end; when every piece is in, the origin's download is cut short (its
   * access log then shows only what it really sent).
   */
  private async fromOrigin(t: Transfer, why: string) {
    if (t.done || t.origin) return;
    if (t.ranged && this.readersOf(t).size === 0 && !t.peersOnly) return; // nobody to serve
    if (t.peersOnly) {
      // A prefetch the peers cannot serve is dropped: the origin is for what the page needs.
      t.done = true;
      this.cancelPeers(t);
      t.reject(new DeployNetError('ERR_PREFETCH', `${t.file.path}: ${why}`));
      return;
    }
    const ps = this.index.manifest.piece_size;
    // For readers, one window at a time: from the first missing piece to `readAhead` past the
    // reader furthest behind, once that reader is within half a window of it (a stream open to
    // the file's end has the origin send what peers then bring, and fill socket buffers that a
    // cut throws away).
    const focus = t.ranged ? this.focus(t) : 0;
    const reach = Math.floor((focus * ps + this.options.readAhead) / ps);
    if (t.ranged) {
      const first = this.firstMissing(t, focus);
      if (first > reach || (first - focus) * ps > this.options.readAhead / 2) return;
    }
    t.origin = true;
    t.originReason = why;
    if (this.options.debug) {
      let connected = 0;
      let holding = 0;
      for (const p of this.peers.connected()) {
        connected++;
        if (p.have.size > 0) holding++;
      }
      console.info(
        `deploynet: ${t.file.path} from the origin: ${why} (${connected} peers connected, ${holding} announced content)`,
      );
    }
    // For readers: from the piece the reader furthest behind is missing; peers keep what they
    // are bringing beyond the origin's reach.
    let states = t.pieces.states;
    if (t.ranged) {
      for (const [id, r] of this.reqs) {
        if (r.t === t && r.piece >= focus && r.piece <= reach) {
          this.reqs.delete(id);
          r.peer.send({ type: 'cancel', reqId: id });
          this.requeue(t, r.piece);
        }
      }
      // What is before the reader, or asked of peers beyond the window, is not the origin's.
      states = states.map((s, i) => (i < focus || s === PieceState.Requested ? PieceState.Verified : s));
    } else {
      this.cancelPeers(t, -1, true);
    }
    const abort = new AbortController();
    t.originAbort = abort;
    t.replan = false;
    let mismatch = false;
    try {
      if (t.ranged && !states.includes(PieceState.Todo)) {
        t.origin = false; // nothing left for it to bring
        return;
      }
      let range = originRange(states, ps, t.file.size);
      if (t.ranged) {
        const [first, end] = range ?? [0, t.file.size - 1];
        range = [first, Math.min(end, Math.min(t.file.size, (reach + 1) * ps) - 1)];
      }
      const start = range ? range[0] : 0;
      const headers: Record<string, string> = range ? { range: `bytes=${range[0]}-${range[1]}` } : {};
      const res = await this.origin.fetch(t.file.path, { headers, cache: 'no-store', signal: abort.signal });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      if (range && res.status !== 206) throw new Error(`HTTP ${res.status} to a Range request`);
      const total = range ? range[1] + 1 - start : t.file.size;
      const reader = res.body.getReader();
      let pos = start;
      t.originAt = pos;
      this.schedule(t); // peers may start on the tail at once
      for (;;) {
        if (t.ranged) {
          await this.paceOrigin(t, pos, abort.signal);
          // Peers got ahead of the origin (their pieces are verified where it would go next):
          // its stream is cut, and the transfer goes on from them.
          if (pos < t.file.size && this.readable(t, pos) && pos % ps === 0) {
            t.replan = true;
            this.cutOrigin(t);
          }
        }
        const { done, value } = await reader.read();
        if (done) break;
        if (pos + value.length > start + total || pos + value.length > t.file.size) {
          throw new Error(`origin sent more than the ${total} bytes asked for`);
        }
        this.writeUnverified(t, value, pos);
        const before = Math.floor(pos / ps);
        pos += value.length;
        t.originAt = pos;
        t.originRead = pos - start;
        // Received whole: its Resource Timing entry counts it (stats().originBytes).
        if (pos === start + total) t.originAbort = null;
        t.fromOrigin += value.length;
        this.counters.bytesFromOrigin += value.length;
        this.firstByte(t);
        // Pieces the stream completed: verified here, taken from peers that were on them.
        const after = pos === t.file.size ? t.pieces.length : Math.floor(pos / ps);
        for (let i = before; i < after; i++) {
          if (t.pieces.get(i) === PieceState.Verified) continue;
          const piece = t.buf.subarray(i * ps, i * ps + this.index.pieceLength(t.file, i));
          if ((await sha256Hex(piece)) !== t.file.pieces[i]) {
            mismatch = true;
            throw new DeployNetError('ERR_ORIGIN_MISMATCH', `${t.file.path} differs from the manifest`);
          }
          this.cancelPeers(t, i);
          this.verified(t, i);
        }
        if (t.pieces.all(PieceState.Verified)) {
          // Cut short (peers brought the rest): Resource Timing counts no body for a cancelled
          // response, so what was read is counted here.
          if (t.originAbort) this.cutOrigin(t);
          void reader.cancel().catch(() => {});
          break;
        }
      }
      if (t.done) return;
      if (!t.pieces.all(PieceState.Verified)) {
        if (pos < start + total) throw new Error(`origin sent ${pos - start} of ${total} bytes`);
        // Its range done, with pieces left that it was not asked for (peers were on them, or a
        // reader's range began later): the transfer is planned again.
        t.origin = false;
        this.schedule(t);
        return;
      }
      this.emit('warning', `origin used for ${t.file.path}: ${why}`);
      await this.finish(t);
    } catch (caught) {
      let err = caught;
      if (t.done) return;
      if (t.replan && !mismatch) {
        // Cut on purpose: a reader sought elsewhere, or none is left.
        t.origin = false;
        t.replan = false;
        this.scheduleAll();
        return;
      }
      if (mismatch) {
        // The origin is the authority: its bytes are returned, but never stored or served.
        this.emit('warning', String((caught as Error).message));
        this.cutOrigin(t);
        try {
          const whole = new Uint8Array(
            await (await this.origin.fetch(t.file.path, { cache: 'no-store' })).arrayBuffer(),
          );
          t.fromOrigin += whole.length;
          this.counters.bytesFromOrigin += whole.length;
          t.done = true;
          t.resolve(whole);
          return;
        } catch (e) {
          err = e;
        }
      }
      this.counters.failures++;
      t.done = true;
      t.reject(new DeployNetError('ERR_ORIGIN', `${t.file.path}: ${String(err)}`));
    } finally {
      t.originAbort = null;
      t.resume = null;
    }
  }

  /**
   * Holds a ranged transfer's origin stream while it is `readAhead` or more ahead of the reader
   * it serves, or serves none (reading stops: the browser's flow control slows the origin, as
   * a media element's own loading does).
   */
  private async paceOrigin(t: Transfer, at: number, signal: AbortSignal) {
    for (;;) {
      if (signal.aborted || t.done || !t.ranged) return;
      const r = this.servedReader(t, at);
      if (r && at - r.pos < this.options.readAhead) return;
      await new Promise<void>((resolve) => {
        t.resume = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      t.resume = null;
    }
  }

  /**
   * Copies bytes the origin streamed into the transfer, except over pieces peers already
   * delivered and verified: a read can reach into them (the stream is cut only once every piece
   * is in), and the origin's bytes there were never checked.
   */
  private writeUnverified(t: Transfer, value: Uint8Array, pos: number) {
    const ps = this.index.manifest.piece_size;
    for (let off = 0; off < value.length; ) {
      const at = pos + off;
      const piece = Math.floor(at / ps);
      const n = Math.min(value.length - off, (piece + 1) * ps - at);
      if (t.pieces.get(piece) !== PieceState.Verified) t.buf.set(value.subarray(off, off + n), at);
      off += n;
    }
  }

  /** Stops a transfer's origin stream midway, counting what it delivered (see fromOrigin). */
  private cutOrigin(t: Transfer) {
    if (!t.originAbort) return;
    this.cutBytes += t.originRead;
    t.originAbort.abort();
    t.originAbort = null;
  }

  private async finish(t: Transfer) {
    if (t.done) return;
    t.done = true;
    this.cutOrigin(t);
    this.cancelPeers(t);
    await this.store.put(t.file.sha256, t.buf);
    this.emit('stored', t.file.sha256);
    this.emit('asset', {
      path: t.file.path,
      contentId: t.file.sha256,
      size: t.file.size,
      fromPeers: t.fromPeers,
      fromOrigin: t.fromOrigin,
      fromCache: 0,
      peers: t.used.size,
      ms: performance.now() - t.started,
      ...(t.originReason ? { originReason: t.originReason } : {}),
      ...(t.peersOnly ? { prefetch: true } : {}),
    });
    t.resolve(t.buf);
  }
}
