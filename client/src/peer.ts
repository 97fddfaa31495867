// One remote peer: an RTCPeerConnection with one ordered, reliable data channel carrying the
// wire protocol (wire.ts). Non-trickle ICE, as WebTorrent clients do: the SDP travels through
// the signaling server once, with its candidates in it.

import { RateMeter } from './policy';
import { Emitter } from './emitter';
import { decode, encode, WireError, type WireMessage } from './wire';

const HIGH_WATER = 1024 * 1024; // stop queueing chunks above this much buffered
const LOW_WATER = 256 * 1024; // resume below this (bufferedAmountLowThreshold)
const PING_MS = 5000;
const DEAD_MS = 20_000; // silence (no pong, nothing) before the peer is dropped
const CONNECT_MS = 15_000; // offer/answer to open channel
const ICE_GATHER_MS = 2000;
const ICE_GRACE_MS = 60; // after the first useful candidate, for its siblings

type Events = { open: []; message: [WireMessage]; close: [reason: string] };

// Non-trickle ICE sends every candidate in one SDP, so the description waits for gathering.
// Gathering "complete" can take seconds (every interface, every server, TURN over TCP); a
// server-reflexive or relayed candidate is what a peer behind another NAT needs, so once one
// is there (or, with no ICE servers, the host candidates are), a short grace ends the wait.
// Called before setLocalDescription, so that no candidate event is missed.
function gathered(pc: RTCPeerConnection, config: RTCConfiguration): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  const relayOnly = config.iceTransportPolicy === 'relay';
  const servers = (config.iceServers ?? []).length > 0;
  return new Promise<void>((resolve) => {
    let grace: ReturnType<typeof setTimeout> | null = null;
    const done = () => {
      clearTimeout(t);
      if (grace) clearTimeout(grace);
      resolve();
    };
    const t = setTimeout(done, ICE_GATHER_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') done();
    });
    pc.addEventListener('icecandidate', (e) => {
      const type = e.candidate?.type;
      const enough = relayOnly ? type === 'relay' : servers ? type === 'srflx' || type === 'relay' : type === 'host';
      if (enough && !grace) grace = setTimeout(done, ICE_GRACE_MS);
    });
  });
}

function plain(d: RTCSessionDescription | null): RTCSessionDescriptionInit {
  if (!d) throw new Error('ERR_WEBRTC: no local description');
  return { type: d.type, sdp: d.sdp };
}

export class Peer extends Emitter<Events> {
  id: string;
  readonly have = new Set<string>();
  /**
   * Content ids it said it holds that this page's manifest does not list (a newer deploy's,
   * before this page has heard of it): kept, bounded, until the page admits that deploy.
   */
  readonly haveLater = new Set<string>();
  /** Files it is still fetching: the pieces it holds of each (a `pieces` bitfield). */
  readonly pieces = new Map<string, Uint8Array>();
  rtt = Infinity;
  /** Its delivery rate to us (the delivery policy compares it with the origin's). */
  readonly rx = new RateMeter();
  open = false;
  closed = false;
  lastSeen = Date.now();
  readonly created = performance.now();
  /** When the data channel opened (0: not yet). */
  openedAt = 0;
  helloSeen = false;
  /** The offer this connection answers (the same id on both sides). */
  offerId = '';
  private dc: RTCDataChannel | null = null;
  private timers: ReturnType<typeof setInterval>[] = [];
  private drainWaiters: (() => void)[] = [];

  private constructor(
    readonly pc: RTCPeerConnection,
    id: string,
    readonly initiator: boolean,
  ) {
    super();
    this.id = id;
    this.timers.push(
      setTimeout(() => {
        if (!this.open) this.destroy('connect timeout');
      }, CONNECT_MS),
    );
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed')
        this.destroy(`connection ${pc.connectionState}`);
    };
  }

  /** A new connection and the offer to send through the signaling server. */
  static async offer(config: RTCConfiguration): Promise<{ peer: Peer; offer: RTCSessionDescriptionInit }> {
    const pc = new RTCPeerConnection(config);
    const peer = new Peer(pc, '', true);
    peer.attach(pc.createDataChannel('deploynet', { ordered: true }));
    const offer = await pc.createOffer();
    const ready = gathered(pc, config);
    await pc.setLocalDescription(offer);
    await ready;
    return { peer, offer: plain(pc.localDescription) };
  }

  /** Answers a remote offer; the answer goes back through the signaling server. */
  static async answer(
    config: RTCConfiguration,
    remoteId: string,
    offer: RTCSessionDescriptionInit,
  ): Promise<{ peer: Peer; answer: RTCSessionDescriptionInit }> {
    const pc = new RTCPeerConnection(config);
    const peer = new Peer(pc, remoteId, false);
    pc.ondatachannel = (ev) => peer.attach(ev.channel);
    try {
      await pc.setRemoteDescription(offer);
      const answer = await pc.createAnswer();
      const ready = gathered(pc, config);
      await pc.setLocalDescription(answer);
      await ready;
    } catch (err) {
      peer.destroy('bad offer');
      throw err;
    }
    return { peer, answer: plain(pc.localDescription) };
  }

  async accept(remoteId: string, answer: RTCSessionDescriptionInit) {
    this.id = remoteId;
    await this.pc.setRemoteDescription(answer);
  }

  private attach(dc: RTCDataChannel) {
    this.dc = dc;
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onopen = () => {
      if (this.open || this.closed) return;
      this.open = true;
      this.openedAt = performance.now();
      this.lastSeen = Date.now();
      this.timers.push(setInterval(() => this.heartbeat(), PING_MS));
      this.send({ type: 'ping', nonce: performance.now() >>> 0 }); // an RTT right away
      this.emit('open');
    };
    dc.onclose = () => this.destroy('channel closed');
    dc.onbufferedamountlow = () => {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const fn of w) fn();
    };
    dc.onmessage = (ev) => {
      this.lastSeen = Date.now();
      let m: WireMessage;
      try {
        m = decode(ev.data as ArrayBuffer);
      } catch (err) {
        // A malformed frame closes this peer, and nothing else.
        this.destroy(`protocol error: ${err instanceof WireError ? err.code : String(err)}`);
        return;
      }
      if (m.type === 'ping') this.send({ type: 'pong', nonce: m.nonce });
      else if (m.type === 'pong') this.rtt = Math.max(0, (performance.now() >>> 0) - m.nonce);
      else this.emit('message', m);
    };
    // A channel the other side opened can arrive already open, its open event gone (Firefox).
    if (dc.readyState === 'open') queueMicrotask(() => dc.onopen?.(new Event('open')));
  }

  private heartbeat() {
    if (Date.now() - this.lastSeen > DEAD_MS) {
      this.destroy('no reply to pings');
      return;
    }
    this.send({ type: 'ping', nonce: performance.now() >>> 0 });
  }

  send(m: WireMessage): boolean {
    if (!this.open || !this.dc || this.dc.readyState !== 'open') return false;
    try {
      this.dc.send(encode(m) as Uint8Array<ArrayBuffer>);
      return true;
    } catch {
      this.destroy('send failed');
      return false;
    }
  }

  /** Resolves once the channel's buffer is below the low-water mark (backpressure). */
  async drained(): Promise<void> {
    while (this.dc && !this.closed && this.dc.bufferedAmount > HIGH_WATER) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  destroy(reason = 'destroyed') {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    for (const t of this.timers) clearInterval(t); // one id space for timeouts and intervals
    for (const fn of this.drainWaiters) fn();
    this.drainWaiters = [];
    try {
      this.dc?.close();
    } catch {
      /* already closed */
    }
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
    this.emit('close', reason);
  }
}
