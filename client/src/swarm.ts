// The peer set: this page's membership of the site's swarm. Announces through the signaling
// server with WebRTC offers (targeted at the peers the server's ring names responsible for the
// site's content, then random ones), answers offers, keeps at most `maxPeers` connections,
// settles duplicate connections the same way on both sides, bans peers that misbehave and
// tops the set up while members are missing. What peers say goes out as events; what the
// page fetches is the transfers' business (transfers.ts sees the set as a PeerSource).

import { Emitter } from './emitter';
import { Peer } from './peer';
import type { SourceState } from './policy';
import type { Ring } from './ring';
import { type IceInfo, type OutOffer, SignalClient } from './signal';
import type { PeerSource } from './transfers';
import type { WireMessage } from './wire';

export interface SwarmOptions {
  signal: string[];
  swarm: string;
  peerId: string;
  /** The secret `peerId` derives from (provenPeerId): lets this peer move between nodes. */
  peerProof?: string;
  iceServers?: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
  iceWait: number;
  maxPeers: number;
  offers: number;
  region: string;
  routeK: number;
}

/** The steps of joining, for `stats().timeline`. */
export type JoinStep = 'signalOpen' | 'ice' | 'announce' | 'announced' | 'offerIn' | 'answerOut' | 'answerIn';

type Events = {
  /** A channel opened to a peer now in the set. */
  peer: [Peer];
  /** A tracked connection closed; `member`: it was in the set (not a duplicate or a handshake). */
  closed: [peer: Peer, reason: string, member: boolean];
  message: [Peer, WireMessage];
  ban: [id: string, reason: string];
  step: [JoinStep];
  warning: [string];
  /** The site announced a new deploy (see SignalClient). */
  deploy: [deployId: string];
};

// Re-offering to members not connected: first gap, and the most it backs off to.
const TOP_UP_MIN_MS = 3000;
const TOP_UP_MAX_MS = 30_000;
// An open channel's hello (what the peer holds) takes one round trip: worth waiting for.
const HELLO_WAIT_MS = 1000;
// An answered offer: ICE checks and DTLS still to go (about two round trips between peers).
const ANSWERED_WAIT_MS = 1000;
const MAX_BANNED = 1024; // peers banned in this page's session
const MAX_OFFERED_TO = 1024; // peers offered to in the last minute
const ROUTES_EVERY_MS = 30_000; // membership changes slowly
// ICE servers kept from an earlier page view of this tab (TURN credentials until they expire).
const ICE_CACHE_KEY = 'deploynet-ice';
const ICE_CACHE_MS = 10 * 60_000;
const ICE_EXPIRY_MARGIN_MS = 60_000;

/** The ICE servers a signaling server sent to this tab before, while still valid. */
function cachedIce(key: string): IceInfo | null {
  try {
    const c = JSON.parse(sessionStorage.getItem(ICE_CACHE_KEY) ?? 'null');
    return c && c.key === key && c.validUntil > Date.now() ? (c.ice as IceInfo) : null;
  } catch {
    return null; // no sessionStorage (opaque origin, storage off)
  }
}

function storeIce(key: string, ice: IceInfo) {
  const validUntil = Math.min(Date.now() + ICE_CACHE_MS, (ice.expires ?? Infinity) - ICE_EXPIRY_MARGIN_MS);
  try {
    sessionStorage.setItem(ICE_CACHE_KEY, JSON.stringify({ key, ice, validUntil }));
  } catch {
    /* not kept: the next view waits for the server's */
  }
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomId(prefix: string): string {
  const r = crypto.getRandomValues(new Uint8Array(20 - prefix.length));
  return prefix + Array.from(r, (b) => BASE62[b % 62]).join('');
}

/**
 * A peer id that its holder can prove: 8 characters of prefix, then the first 12 of
 * base64url(SHA-256(proof)). The proof goes to the signaling server only (on joining), so that
 * a peer that fails over to another node of a cluster takes its own record over, and nobody
 * else can take it.
 */
export async function provenPeerId(prefix = '-DN0001-'): Promise<{ peerId: string; proof: string }> {
  const proof = randomId('');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(proof)));
  const b64 = btoa(String.fromCharCode(...digest.subarray(0, 9)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
  return { peerId: prefix + b64, proof };
}

export class Swarm extends Emitter<Events> implements PeerSource<Peer> {
  /** Peers with an open channel, by remote peer id. */
  readonly peers = new Map<string, Peer>();
  /** Members of the swarm, by the server's last count (this visitor included). */
  members = 0;
  /** When the first channel opened (performance.now()), null before. */
  firstPeerAt: number | null = null;
  /** The local ring over the connected peers, once loaded (engine.ts: maybeLoadRing). */
  private ring: Ring | null = null;
  private signal: SignalClient;
  private connecting = new Set<Peer>();
  private pendingOffers = new Map<string, Peer>(); // by offer id
  private banned = new Set<string>();
  private routes = new Map<string, string[]>(); // content id -> responsible peers
  private announcing = false;
  private lastAnnounce = -Infinity;
  private routesAsked = 0;
  private offeredTo = new Map<string, number>(); // peer id -> time of the last targeted offer
  private joined = false;
  private topUpGap = TOP_UP_MIN_MS;
  private serverIce: IceInfo | null = null;
  /** ICE servers from an earlier view of this tab: the first offers need not wait for the server's. */
  private cachedIce: IceInfo | null = null;
  private iceKey: string;
  private iceTimer: ReturnType<typeof setTimeout> | null = null;
  /** Offers gathered while the signaling socket connects, for the first announce. */
  private earlyOffers: Promise<(OutOffer | null)[]> | null = null;
  private opened = false;
  private left = false;

  /** `contentIds`: what routes are asked for (the manifest's ids; null until it is in). */
  constructor(
    private options: SwarmOptions,
    private contentIds: () => string[] | null,
  ) {
    super();
    this.iceKey = options.signal.join(' ');
    if (!options.iceServers) this.cachedIce = cachedIce(this.iceKey);
    const s = new SignalClient(options.signal, options.swarm, options.peerId, { peerProof: options.peerProof });
    this.signal = s;
    // ICE servers known already (the page's own, or kept from the last view): the first offers
    // gather their candidates while the socket connects — but not before the page has loaded
    // (each connection costs the page's main thread a few milliseconds); if the socket opens
    // first, they are made then, as without the kept servers.
    if (options.iceServers || this.cachedIce) {
      const prepare = () => {
        if (this.opened || this.earlyOffers || this.left) return;
        this.earlyOffers = Promise.all(
          Array.from({ length: Math.min(options.offers, options.maxPeers) }, () => this.makeOffer()),
        );
      };
      if (typeof document === 'undefined' || document.readyState === 'complete') prepare();
      else addEventListener('load', prepare, { once: true });
    }
    // The first offers need the ICE servers: the page's own, or the ones our server sends
    // right after the socket opens (a foreign tracker never does: then after `iceWait`).
    s.on('open', () => {
      this.emit('step', 'signalOpen');
      this.serverIce = null;
      const first = !this.opened;
      this.opened = true;
      if (this.options.iceServers || (first && this.cachedIce)) {
        void this.announce('started');
        return;
      }
      if (this.iceTimer) clearTimeout(this.iceTimer);
      this.iceTimer = setTimeout(() => {
        this.iceTimer = null;
        void this.announce('started');
      }, this.options.iceWait);
    });
    s.on('ice', (ice) => {
      this.emit('step', 'ice');
      this.serverIce = ice;
      storeIce(this.iceKey, ice);
      if (this.iceTimer) {
        clearTimeout(this.iceTimer);
        this.iceTimer = null;
        void this.announce('started');
      }
    });
    s.on('announced', (a) => {
      this.emit('step', 'announced');
      this.members = a.complete + a.incomplete;
      this.joined = true;
      if (performance.now() - this.routesAsked > ROUTES_EVERY_MS || this.routesAsked === 0) this.askRoutes();
    });
    s.on('route', (routes, n) => this.onRoutes(routes, n));
    s.on('offer', (o) => {
      this.emit('step', 'offerIn');
      void this.onOffer(o.peerId, o.offerId, o.offer);
    });
    s.on('answer', (a) => {
      this.emit('step', 'answerIn');
      void this.onAnswer(a.peerId, a.offerId, a.answer);
    });
    s.on('warning', (w) => this.emit('warning', w));
    s.on('deploy', (id) => this.emit('deploy', id));
  }

  /** The signaling socket is open and the first announce was answered. */
  get online(): boolean {
    return this.joined && this.signal.connected;
  }

  get signalConnected(): boolean {
    return this.signal.connected;
  }

  /** The page's byte counts to the signaling server (see the engine's `report`). */
  report(origin: string, counts: { fromPeers: number; fromOrigin: number; fromCache: number; uploaded: number }) {
    this.signal.report(origin, counts);
  }

  /** Ranks connected peers on the local ring from now on (it takes ownership). */
  setRing(ring: Ring) {
    for (const id of this.peers.keys()) ring.add(id);
    this.ring = ring;
  }

  /** Routes for the manifest's content (asked once joined, then every 30 s). */
  askRoutes() {
    const ids = this.contentIds();
    if (!ids) return;
    this.routesAsked = performance.now();
    if (ids.length) this.signal.route(ids.slice(0, 256), this.options.routeK);
  }

  /** To every connected peer. */
  broadcast(m: WireMessage) {
    for (const p of this.peers.values()) p.send(m);
  }

  /** Whether a connected peer (not banned) has said it holds the content. */
  holds(contentId: string): boolean {
    for (const p of this.peers.values()) if (p.have.has(contentId) && !this.banned.has(p.id)) return true;
    return false;
  }

  /** Every 250 ms (the engine's tick). */
  tick(now: number) {
    this.topUp(now);
  }

  destroy() {
    this.left = true;
    if (this.iceTimer) clearTimeout(this.iceTimer);
    this.signal.destroy();
    this.ring?.destroy();
    for (const p of [...this.peers.values(), ...this.connecting]) p.destroy('destroyed');
  }

  // ---- PeerSource (transfers.ts) ----

  connected(): Iterable<Peer> {
    return this.peers.values();
  }

  isBanned(id: string): boolean {
    return this.banned.has(id);
  }

  responsible(contentId: string): string[] {
    return this.routes.get(contentId) ?? [];
  }

  ringOrder(contentId: string): string[] {
    return this.ring ? this.ring.route(contentId, this.peers.size) : [];
  }

  joining(): Pick<SourceState, 'signal' | 'helloPending' | 'handshakeNearlyDone' | 'handshakeUnderWay' | 'alone'> {
    const now = performance.now();
    let nearlyDone = false;
    let underWay = this.announcing || now - this.lastAnnounce < 1500;
    for (const p of this.connecting) {
      if (p.id && now - p.created < ANSWERED_WAIT_MS) nearlyDone = true;
      if (now - p.created < 1500) underWay = true;
    }
    return {
      signal: true,
      helloPending: this.helloPending(),
      handshakeNearlyDone: nearlyDone,
      handshakeUnderWay: this.signal.connected && underWay,
      alone: this.members === 1 && this.peers.size === 0,
    };
  }

  ban(peer: Peer, reason: string) {
    if (!this.banned.has(peer.id)) {
      // Peer ids are per page load: the oldest bans go first past the cap.
      if (this.banned.size >= MAX_BANNED) this.banned.delete(this.banned.values().next().value as string);
      this.banned.add(peer.id);
      this.emit('ban', peer.id, reason);
    }
    peer.destroy(`banned: ${reason}`);
  }

  // ---- membership ----

  /** A peer connected less than a round trip ago has not yet said what it holds. */
  private helloPending(): boolean {
    const now = performance.now();
    for (const p of this.peers.values()) if (!p.helloSeen && now - p.openedAt < HELLO_WAIT_MS) return true;
    return false;
  }

  private rtcConfig(): RTCConfiguration {
    const ice = this.serverIce ?? this.cachedIce;
    return {
      iceServers: this.options.iceServers ?? ice?.iceServers ?? [],
      iceTransportPolicy: this.options.iceTransportPolicy ?? ice?.policy ?? 'all',
    };
  }

  private async makeOffer(to?: string): Promise<OutOffer | null> {
    try {
      const { peer, offer } = await Peer.offer(this.rtcConfig());
      const offerId = randomId('');
      peer.offerId = offerId;
      this.pendingOffers.set(offerId, peer);
      this.connecting.add(peer);
      peer.on('close', () => {
        this.pendingOffers.delete(offerId);
        this.connecting.delete(peer);
      });
      // Unanswered offers expire (the server forgets them after its offer TTL too).
      setTimeout(() => {
        if (!peer.id) peer.destroy('offer not answered');
      }, 50_000);
      return to ? { offer_id: offerId, offer, to_peer_id: to } : { offer_id: offerId, offer };
    } catch (err) {
      this.emit('warning', `ERR_WEBRTC: ${String(err)}`);
      return null;
    }
  }

  private room(): number {
    return this.options.maxPeers - this.peers.size - this.connecting.size;
  }

  /** Announces with offers: targeted at responsible peers first, then random ones. */
  private async announce(event?: string, targets: string[] = []) {
    if (this.announcing || !this.signal.connected) return;
    this.announcing = true;
    try {
      // The offers gathered while the socket connected go first (they count as connecting).
      const early = event === 'started' && this.earlyOffers ? await this.earlyOffers : [];
      this.earlyOffers = null;
      const ready = early.filter((o): o is OutOffer => {
        const peer = o && this.pendingOffers.get(o.offer_id);
        return !!peer && !peer.closed;
      });
      const room = Math.max(0, this.room());
      const want = targets.filter((id) => !this.peers.has(id) && !this.banned.has(id)).slice(0, room);
      const random =
        event === 'started' || want.length === 0 ? Math.min(this.options.offers - ready.length, room - want.length) : 0;
      const offers = [
        ...ready,
        ...(
          await Promise.all([
            ...want.map((id) => this.makeOffer(id)),
            ...Array.from({ length: Math.max(0, random) }, () => this.makeOffer()),
          ])
        ).filter((o): o is OutOffer => !!o),
      ];
      this.emit('step', 'announce');
      this.signal.announce({
        event,
        numwant: offers.length,
        offers,
        ...(this.options.region ? { region: this.options.region } : {}),
      });
      this.lastAnnounce = performance.now();
    } finally {
      this.announcing = false;
    }
  }

  private onRoutes(routes: { content_id: string; peers: string[] }[], n: number) {
    this.members = n;
    const targets = new Set<string>();
    const now = performance.now();
    // Not to a peer already answering one of our offers (a second connection would be closed).
    const answering = new Set<string>();
    for (const p of this.connecting) if (p.id) answering.add(p.id);
    for (const r of routes) {
      if (typeof r.content_id !== 'string' || !Array.isArray(r.peers)) continue;
      this.routes.set(r.content_id, r.peers);
      for (const p of r.peers) {
        const last = this.offeredTo.get(p);
        if (this.peers.has(p) || this.banned.has(p) || answering.has(p)) continue;
        if (last === undefined || now - last > 60_000) targets.add(p);
      }
    }
    for (const [p, at] of this.offeredTo) if (now - at > 60_000) this.offeredTo.delete(p);
    for (const p of targets) if (this.offeredTo.size < MAX_OFFERED_TO) this.offeredTo.set(p, now);
    if (targets.size) void this.announce(undefined, [...targets]);
  }

  private async onOffer(from: string, offerId: string, offer: RTCSessionDescriptionInit) {
    if (from === this.options.peerId || this.peers.has(from) || this.banned.has(from) || this.room() <= 0) return;
    try {
      const { peer, answer } = await Peer.answer(this.rtcConfig(), from, offer);
      peer.offerId = offerId;
      this.track(peer);
      this.signal.answer(from, offerId, answer);
      this.emit('step', 'answerOut');
    } catch (err) {
      this.emit('warning', `ERR_WEBRTC: answering ${String(err)}`);
    }
  }

  private async onAnswer(from: string, offerId: string, answer: RTCSessionDescriptionInit) {
    const peer = this.pendingOffers.get(offerId);
    if (!peer) return;
    this.pendingOffers.delete(offerId);
    if (this.banned.has(from)) {
      peer.destroy('banned');
      return;
    }
    // Tracked before the answer is applied (accept names the peer at once): on a busy page the
    // channel can open, and the peer's hello arrive, before setRemoteDescription's promise
    // settles, and a message with no listener yet would be lost.
    const accepted = peer.accept(from, answer);
    this.track(peer);
    try {
      await accepted;
    } catch (_err) {
      peer.destroy('bad answer');
    }
  }

  private track(peer: Peer) {
    this.connecting.add(peer);
    const onOpen = () => {
      this.connecting.delete(peer);
      const existing = this.peers.get(peer.id);
      if (existing && !existing.closed) {
        // Two connections to one peer (both sides offered, or one side's random and targeted
        // offers both reached it). Which opened first can differ between the two sides, so
        // both keep the same one by what both know of it: its initiator's id, then its offer id.
        const key = (p: Peer) => `${p.initiator ? this.options.peerId : p.id}:${p.offerId}`;
        if (key(existing) <= key(peer)) {
          peer.destroy('duplicate');
          return;
        }
        // The kept connection takes the other's place first: when the other closes, the peer
        // is still in the set (its transfers wait for the new channel's hello instead of
        // seeing no peer at all and going to the origin).
        this.peers.set(peer.id, peer);
        existing.destroy('duplicate');
      } else {
        this.peers.set(peer.id, peer);
        this.ring?.add(peer.id);
      }
      this.topUpGap = TOP_UP_MIN_MS;
      this.firstPeerAt ??= performance.now();
      this.emit('peer', peer);
    };
    if (peer.open) onOpen();
    else peer.on('open', onOpen);
    peer.on('message', (m) => this.emit('message', peer, m));
    peer.on('close', (reason) => {
      this.connecting.delete(peer);
      const member = this.peers.get(peer.id) === peer;
      if (member) {
        this.peers.delete(peer.id);
        this.ring?.remove(peer.id);
      }
      this.emit('closed', peer, reason, member);
    });
  }

  /**
   * Keeps the swarm topped up: while members of the swarm are neither connected nor being
   * answered, offers go out again, 3 s after the last announce and backing off to 30 s while
   * nothing new connects. A handshake that failed (a lost answer, NAT, a peer that left) is
   * then retried in seconds rather than at the next route request or tracker interval.
   */
  private topUp(now: number) {
    if (!this.joined || !this.signal.connected || this.announcing || now - this.lastAnnounce < this.topUpGap) return;
    let answered = 0;
    for (const p of this.connecting) if (p.id) answered++;
    if (this.members - 1 - this.peers.size - answered <= 0 || this.room() <= 0) return;
    this.topUpGap = Math.min(this.topUpGap * 2, TOP_UP_MAX_MS);
    void this.announce();
  }
}
