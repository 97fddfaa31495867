// The delivery policy, as pure functions (unit-tested in Node with simulated peers and origin;
// the engine supplies the measured state): for one request, which source to use now — the
// connected peers that hold the content, the origin, both at once (the origin streams from the
// head while peers take the tail, so "both" never doubles bytes), or neither yet (a peer that
// just connected has not said what it holds).

export type Source = 'peers' | 'origin' | 'both' | 'wait';

export interface Holder {
  /** Round-trip time, ms (Infinity: not measured yet). */
  rtt: number;
  /** Bytes per ms this peer has delivered to us (NaN: not measured yet). */
  rate: number;
}

export interface SourceState {
  /** The signaling server is reachable (a swarm to use at all). */
  signal: boolean;
  /** Connected peers that hold the content (not banned, not excluded). */
  holders: Holder[];
  /** A peer connected less than a round trip ago has not said what it holds yet. */
  helloPending: boolean;
  /** A handshake is nearly done (answered, ICE under way). */
  handshakeNearlyDone: boolean;
  /** Offers or handshakes went out within the last moments (more peers may come). */
  handshakeUnderWay: boolean;
  /** This visitor is alone in its swarm. */
  alone: boolean;
  /** ms the origin is expected to take for this request (its measured TTFB and throughput). */
  originMs: number;
  /** Whether `originMs` rests on measurements of this page's own loads. */
  originMeasured: boolean;
}

export interface RequestInfo {
  size: number;
  /** Render-blocking or otherwise needed now (scripts, styles, fonts), vs media and prefetch. */
  urgent: boolean;
}

export interface Decision {
  source: Source;
  reason: string;
}

/** What an unmeasured peer is assumed to deliver: 1 MB/s, a modest home uplink. */
export const ASSUMED_PEER_RATE = 1_000;
/** An urgent request also goes to the origin when peers are expected to take this much longer. */
export const HEDGE_RATIO = 1.5;

/** ms the holders are expected to take for `size` bytes, all of them in parallel. */
export function peersMs(holders: Holder[], size: number): number {
  if (holders.length === 0) return Infinity;
  let rate = 0;
  let rtt = Infinity;
  for (const h of holders) {
    rate += Number.isFinite(h.rate) && h.rate > 0 ? h.rate : ASSUMED_PEER_RATE;
    rtt = Math.min(rtt, h.rtt);
  }
  return (Number.isFinite(rtt) ? rtt : 0) + size / rate;
}

/**
 * The source for a request now. Urgent requests never wait on a handshake (it takes several
 * round trips through the signaling server and may never succeed; the origin answers in one);
 * when peers hold the content but are measured slower than the origin, the origin streams it
 * from the head while the peers take the tail. Patient ones (media, prefetch) wait for a
 * nearly finished handshake, and for any handshake when the origin is measured slower than the
 * wait (a saturated origin: a flash crowd). `hedge` false: holders serve whatever the origin's
 * speed (offload first).
 */
export function decide(req: RequestInfo, s: SourceState, firstByteTimeout: number, hedge = true): Decision {
  if (!s.signal) return { source: 'origin', reason: 'no signaling' };
  if (s.holders.length > 0) {
    if (hedge && req.urgent && s.originMeasured && s.originMs * HEDGE_RATIO < peersMs(s.holders, req.size))
      return { source: 'both', reason: 'origin faster than the peers that hold it' };
    return { source: 'peers', reason: 'connected peers hold it' };
  }
  if (s.helloPending) return { source: 'wait', reason: 'a peer just connected' };
  if (req.urgent) return { source: 'origin', reason: 'needed now, no connected peer has it' };
  if (s.handshakeNearlyDone) return { source: 'wait', reason: 'a handshake nearly done' };
  const slowOrigin = s.originMs > firstByteTimeout;
  if (slowOrigin && !s.alone && s.handshakeUnderWay) return { source: 'wait', reason: 'origin slow, peers coming' };
  return { source: 'origin', reason: 'no peer has it' };
}

/**
 * A peer's delivery rate to us, measured while it has requests outstanding: bytes over busy
 * time, as a moving average over windows of at least `window` bytes. Idle gaps do not count
 * (a peer asked for nothing delivers nothing, which says nothing of its speed).
 */
export class RateMeter {
  /** Bytes per ms (NaN: not measured yet). */
  rate = NaN;
  private bytes = 0;
  private since = -1;

  constructor(
    private window = 128 * 1024,
    private alpha = 0.3,
  ) {}

  /** Requests went out to an idle peer at `now`: the clock starts. */
  busy(now: number) {
    if (this.since < 0) {
      this.since = now;
      this.bytes = 0;
    }
  }

  /** `n` bytes arrived at `now`. */
  add(n: number, now: number) {
    if (this.since < 0) this.since = now;
    this.bytes += n;
    const ms = now - this.since;
    if (this.bytes >= this.window && ms > 0) {
      const r = this.bytes / ms;
      this.rate = Number.isNaN(this.rate) ? r : (1 - this.alpha) * this.rate + this.alpha * r;
      this.bytes = 0;
      this.since = now;
    }
  }

  /** Nothing outstanding any more: the next request restarts the clock. */
  idle() {
    this.since = -1;
    this.bytes = 0;
  }
}
