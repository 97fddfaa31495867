// The P2P engine of one page: joins the site's swarm, keeps a bounded set of peers, fetches
// verified content from them in parallel, falls back to the origin, serves what it holds.

import { Emitter } from './emitter';
import { ManifestIndex, parseManifest, sha256Hex, type ManifestFile } from './manifest';
import { OriginMeter } from './meter';
import { bodyBytes, MARKER, type OriginUsage, originFetch } from './origin';
import { Peer } from './peer';
import { type Decision, decide } from './policy';
import { loadRingModule, Ring } from './ring';
import { SignalClient, type IceInfo, type OutOffer } from './signal';
import { originRange, planRequests, rankPeers, VERIFIED } from './scheduler';
import { ContentStore } from './store';
import { MAX_CHUNK, MAX_HELLO_IDS, PROTOCOL_VERSION, type WireMessage } from './wire';

export interface DeployNetOptions {
  /** Signaling server URL(s), tried in turn: `wss://signal.example`. */
  signal?: string | string[];
  /** Manifest URL (same origin). */
  manifest?: string;
  /**
   * ICE servers (STUN/TURN). Default: those the signaling server hands out (its `--stun` and
   * `--turn` flags, with short-lived TURN credentials); none there means host candidates only.
   */
  iceServers?: RTCIceServer[];
  /** 'relay': connect through TURN only (visitors never learn each other's addresses).
   *  Default: the signaling server's choice (`--relay-only`), else 'all'. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** ms to wait for the signaling server's ICE servers before the first offers. */
  iceWait?: number;
  /** Peer connections kept at most. */
  maxPeers?: number;
  /** Untargeted offers sent with an announce. */
  offers?: number;
  /** ms for peers to deliver the first byte of an asset before the origin is used. */
  firstByteTimeout?: number;
  /** ms without progress on a piece before it is asked elsewhere. */
  stallTimeout?: number;
  /** Pieces requested from one peer at once. */
  maxInflightPerPeer?: number;
  /** Bytes per second served to peers in all (0: unlimited). */
  uploadLimit?: number;
  /** Piece uploads served at once. */
  maxUploads?: number;
  /** Region hint for routing (e.g. 'eu-west'). */
  region?: string;
  /** Responsible peers asked per content id. */
  routeK?: number;
  /**
   * An urgent request (script, style, font) that connected peers hold also goes to the origin
   * when the origin is measured clearly faster than those peers: the origin streams it from the
   * head while the peers take the tail, so the page never waits on slow peers. false: peers
   * serve whatever they hold (offload first, at the cost of speed when they are slower).
   */
  hedge?: boolean;
  /** false: never use peers (everything over HTTP). */
  p2p?: boolean;
  /** Swarm id override (20 characters); default derived from the page's origin. */
  swarm?: string;
  /** Bytes of verified content kept in memory for serving. */
  memoryBytes?: number;
  /**
   * URL of deploynet_ring.wasm: rank connected peers on the same ring as the server ('' off).
   * Loaded once the page has loaded and two peers are connected, from the cache or a peer.
   */
  ringWasm?: string;
  /**
   * Bytes of the site's other assets fetched from connected peers (never the origin) once the
   * page has loaded, so that the visitor's next pages come from its own cache (0: off). Off
   * when the browser signals Save-Data or a cellular connection.
   */
  prefetchBytes?: number;
  /**
   * Logs to the console every asset that went to the origin and why (no peer holds it, first
   * byte timeout, stalled peers, origin faster…), with the peers connected at that moment.
   */
  debug?: boolean;
  /**
   * Sends this page view's byte counts (from peers, from the origin, from cache, uploaded) to
   * the signaling server every 15 s and when the page is hidden, so that the site's savings
   * show in the server's /metrics. Only for the swarm derived from the page's origin.
   */
  report?: boolean;
}

// Re-offering to members not connected: first gap, and the most it backs off to.
const TOP_UP_MIN_MS = 3000;
const MAX_EARLY_MESSAGES = 4096; // held until the manifest is in, engine-wide
const TOP_UP_MAX_MS = 30_000;

const DEFAULTS = {
  manifest: '/deploynet.json',
  iceServers: undefined as RTCIceServer[] | undefined,
  iceTransportPolicy: undefined as RTCIceTransportPolicy | undefined,
  iceWait: 1000,
  maxPeers: 8,
  offers: 4,
  firstByteTimeout: 500,
  stallTimeout: 3000,
  maxInflightPerPeer: 8,
  uploadLimit: 0,
  maxUploads: 16,
  region: '',
  routeK: 3,
  p2p: true,
  hedge: true,
  swarm: '',
  memoryBytes: 64 * 1024 * 1024,
  ringWasm: '',
  prefetchBytes: 16 * 1024 * 1024,
  debug: false,
  report: true,
};

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

export interface Stats {
  peerId: string;
  swarm: string;
  signal: boolean;
  peers: number;
  bytesFromPeers: number;
  bytesFromOrigin: number;
  bytesFromCache: number;
  /** Bytes the browser loaded itself (not through the engine), verified and seeded from its cache. */
  bytesAdopted: number;
  bytesUploaded: number;
  /**
   * Every body byte the origin sent for this page view, as its access log counts them: the
   * page's own loads (its navigation included), DeployNet's requests, and the service worker's
   * on this page's behalf (refreshed every second; `originUsage()` asks at once). Web workers
   * the page starts are not included.
   */
  originBytes: number;
  /** The requests those bytes came in (revalidations included). */
  originRequests: number;
  /** ms from the page's start (navigation) to the first open data channel; null: none yet. */
  firstPeerMs: number | null;
  /**
   * How joining went, in ms from the page's start (absent: not yet): the engine started, its
   * signaling socket opened, ICE servers arrived, the first announce went out and was answered,
   * the first offer arrived from a peer, the first answer to one of ours arrived.
   */
  timeline: Partial<Record<'start' | 'signalOpen' | 'ice' | 'announce' | 'announced' | 'offerIn' | 'answerIn', number>>;
  badPieces: number;
  bans: number;
  failures: number;
  assets: AssetStats[];
}

type Events = {
  ready: [];
  peer: [id: string];
  peerclose: [id: string, reason: string];
  asset: [AssetStats];
  ban: [id: string, reason: string];
  warning: [string];
};

interface Transfer {
  file: ManifestFile;
  buf: Uint8Array;
  state: Uint8Array; // 0 todo, 1 requested, 2 verified
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
}

/** How a request is to be served (fetch, fetchPath). */
export interface FetchOptions {
  /**
   * true (default): the page needs it to render (script, style, font, HTML): peers are used
   * only if a connected peer holds it, never after waiting on a handshake. false: media and
   * later loads, which may wait up to `firstByteTimeout` for peers being connected.
   */
  urgent?: boolean;
}

// An open channel's hello (what the peer holds) takes one round trip: worth waiting for.
const HELLO_WAIT_MS = 1000;
// An answered offer: ICE checks and DTLS still to go (about two round trips between peers).
const ANSWERED_WAIT_MS = 1000;
// Assets taken from the browser's HTTP cache per page (a manifest lists a site's assets).
const MAX_ADOPTED = 4096;
const RING_MIN_PEERS = 2; // connected peers before ranking them on the ring is worth its module
const RING_ORIGIN_WAIT_MS = 10_000; // for a peer to get the ring module before anyone asks the origin
const MAX_BANNED = 1024; // peers banned in this page's session
const MAX_OFFERED_TO = 1024; // peers offered to in the last minute

interface Req {
  t: Transfer;
  piece: number;
  peer: Peer;
  buf: Uint8Array; // the piece as it arrives; copied into the transfer only once verified
  progress: number; // time of the last chunk (or of the request)
}

class OriginMismatch extends Error {}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** The visitor asked to save data (Save-Data), or is on a cellular link: nothing ahead of need. */
function dataSaving(): boolean {
  const c = (navigator as Navigator & { connection?: { saveData?: boolean; type?: string } }).connection;
  return !!c && (c.saveData === true || c.type === 'cellular');
}

function randomId(prefix: string): string {
  const r = crypto.getRandomValues(new Uint8Array(20 - prefix.length));
  return prefix + Array.from(r, (b) => BASE62[b % 62]).join('');
}

/** The swarm of a site: 20 ASCII characters from the SHA-256 of its origin. */
export async function swarmIdFor(origin: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(origin)));
  return btoa(String.fromCharCode(...d.subarray(0, 15)));
}

class TokenBucket {
  private tokens: number;
  private last = performance.now();
  constructor(private rate: number) {
    this.tokens = rate;
  }
  async take(n: number) {
    if (this.rate <= 0) return;
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= n || this.tokens >= this.rate) {
        this.tokens -= n;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((n - this.tokens) / this.rate) * 1000)));
    }
  }
}

export class DeployNet extends Emitter<Events> {
  /** @internal */
  readonly options: typeof DEFAULTS & { signal: string[] };
  /** This visitor's peer id in the swarm. */
  readonly peerId = randomId('-DN0001-');
  /** @internal */
  index!: ManifestIndex;
  /** @internal The manifest as the origin sent it (handed to the service worker). */
  manifestText = '';
  /** The swarm joined (see `swarmIdFor`). */
  swarm = '';
  private store: ContentStore;
  private signal: SignalClient | null = null;
  private peers = new Map<string, Peer>(); // open channels, by remote peer id
  private connecting = new Set<Peer>();
  private pendingOffers = new Map<string, Peer>(); // by offer id
  private banned = new Set<string>();
  private routes = new Map<string, string[]>(); // content id -> responsible peers
  private swarmPeers = 0;
  private transfers = new Map<string, Promise<Uint8Array>>();
  private active = new Set<Transfer>();
  private reqs = new Map<number, Req>();
  private nextReq = 1;
  private uploads = 0;
  // Uploads in progress, by `${peer}:${reqId}`: a cancel marks one; a cancel for anything else
  // is ignored (so a peer cannot grow this by sending cancels).
  private serving = new Map<string, { cancelled: boolean }>();
  private bucket: TokenBucket;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private announcing = false;
  private lastAnnounce = -Infinity;
  private routesAsked = 0;
  private offeredTo = new Map<string, number>(); // peer id -> time of the last targeted offer
  private destroyed = false;
  private joined = false;
  private topUpGap = TOP_UP_MIN_MS;
  private lastReport = 0;
  private reported = '';
  private onHide: (() => void) | null = null;
  private onLeave = () => this.report();
  private counters = {
    bytesFromPeers: 0,
    bytesFromOrigin: 0,
    bytesFromCache: 0,
    bytesAdopted: 0,
    bytesUploaded: 0,
    badPieces: 0,
    bans: 0,
    failures: 0,
  };
  private assets: AssetStats[] = [];
  private ring: Ring | null = null;
  private ringLoading = false;
  private ringWaitSince = 0;
  private manifestReady: Promise<void> = Promise.resolve();
  private serverIce: IceInfo | null = null;
  private firstPeerMs: number | null = null;
  /** Peers' messages that came before the manifest (null once it is in). */
  private early: [Peer, WireMessage][] | null = [];
  private readonly timeline: Stats['timeline'] = { start: Math.round(performance.now()) };
  private adopted = new Set<string>();
  private adoptQueue: string[] = []; // resource URLs loaded before the load event
  private pageOrigin: OriginUsage = { bytes: 0, requests: 0 }; // this page's own network loads
  private workerOrigin: OriginUsage = { bytes: 0, requests: 0 }; // the worker's, for this page
  private usageAsked = 0;
  /** @internal Set by attachServiceWorker: what the worker fetched from the origin for this page. */
  workerUsage: (() => Promise<OriginUsage>) | null = null;
  private held = new Set<string>(); // content ids in the store
  private heldReady: Promise<void> = Promise.resolve();
  private prefetched = 0;
  private lastPrefetch = 0;
  /** @internal */
  readonly meter = new OriginMeter(location.origin); // content ids taken from the HTTP cache
  private resourceObserver: PerformanceObserver | null = null;
  private iceTimer: ReturnType<typeof setTimeout> | null = null;

  static async start(options: DeployNetOptions = {}): Promise<DeployNet> {
    const dn = new DeployNet(options);
    await dn.init();
    return dn;
  }

  private constructor(options: DeployNetOptions) {
    super();
    const signal =
      options.signal === undefined ? [] : Array.isArray(options.signal) ? options.signal : [options.signal];
    this.options = { ...DEFAULTS, ...options, signal } as typeof DEFAULTS & { signal: string[] };
    this.store = new ContentStore(this.options.memoryBytes);
    this.bucket = new TokenBucket(this.options.uploadLimit);
  }

  /** The first time of a step of joining (`stats().timeline`). */
  private mark(step: keyof Stats['timeline']) {
    this.timeline[step] ??= Math.round(performance.now());
  }

  /** Whether this page can take part in the swarm at all. */
  get p2pAvailable(): boolean {
    return (
      this.options.p2p &&
      this.options.signal.length > 0 &&
      typeof RTCPeerConnection === 'function' &&
      typeof crypto?.subtle?.digest === 'function'
    );
  }

  private async init() {
    // The swarm is joined while the manifest loads (joining takes several round trips; every
    // millisecond of it is a request that cannot use peers yet); the ring loads beside both.
    this.manifestReady = this.loadManifest();
    this.manifestReady.catch(() => {});
    if (this.p2pAvailable) {
      this.swarm = this.options.swarm || (await swarmIdFor(location.origin));
      const s = new SignalClient(this.options.signal, this.swarm, this.peerId);
      this.signal = s;
      // The first offers need the ICE servers: the page's own, or the ones our server sends
      // right after the socket opens (a foreign tracker never does: then after `iceWait`).
      s.on('open', () => {
        this.mark('signalOpen');
        this.serverIce = null;
        if (this.options.iceServers) {
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
        this.mark('ice');
        this.serverIce = ice;
        if (this.iceTimer) {
          clearTimeout(this.iceTimer);
          this.iceTimer = null;
          void this.announce('started');
        }
      });
      s.on('announced', (a) => {
        this.mark('announced');
        this.swarmPeers = a.complete + a.incomplete;
        this.joined = true;
        // Routes once joined, then at most every 30 s (membership changes slowly).
        if (performance.now() - this.routesAsked > 30_000 || this.routesAsked === 0) this.askRoutes();
      });
      s.on('route', (routes, n) => this.onRoutes(routes, n));
      s.on('offer', (o) => {
        this.mark('offerIn');
        void this.onOffer(o.peerId, o.offerId, o.offer);
      });
      s.on('answer', (a) => {
        this.mark('answerIn');
        void this.onAnswer(a.peerId, a.offerId, a.answer);
      });
      s.on('warning', (w) => this.emit('warning', w));
      try {
        await this.manifestReady;
      } catch (err) {
        this.early = null;
        s.destroy();
        this.signal = null;
        throw err;
      }
      // What peers said before the manifest was in (their hellos above all), now, in order.
      const early = this.early ?? [];
      this.early = null;
      for (const [peer, m] of early) if (!peer.closed) this.onMessage(peer, m);
      if (this.swarmPeers > 0) this.askRoutes();
      this.watchdog = setInterval(() => this.tick(), 250);
      if (this.options.report && !this.options.swarm) {
        // Hidden (tab switched, closed) or left (a navigation): the counts go out at once.
        this.onHide = () => {
          if (document.visibilityState === 'hidden') this.report();
        };
        document.addEventListener('visibilitychange', this.onHide);
        addEventListener('pagehide', this.onLeave);
      }
      const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
      if (nav) this.meter.add(nav);
      this.watchLoads(true);
    } else {
      await this.manifestReady;
      this.watchLoads(false);
    }
    this.emit('ready');
  }

  /**
   * The ring ranks connected peers only when there is a choice: it is loaded once the page has
   * loaded and two peers are connected, through the engine like any asset of the manifest (from
   * this browser's cache or from peers; from the origin only when no connected peer holds it),
   * so most visitors never fetch it from the origin, and no page waits for it.
   */
  private maybeLoadRing() {
    if (
      this.ringLoading ||
      !this.options.ringWasm ||
      this.peers.size < RING_MIN_PEERS ||
      document.readyState !== 'complete'
    )
      return;
    const href = new URL(this.options.ringWasm, location.href);
    const file = href.origin === location.origin ? this.index.lookup(href.pathname) : undefined;
    if (file && !this.held.has(file.sha256) && !this.holders(file.sha256)) {
      // Nobody at hand holds it: one fetches it from the origin — the lowest peer id among this
      // visitor and its peers (all of them agree on who that is) — and the others take it from
      // that one; if none has it after a while, anyone goes.
      const now = performance.now();
      this.ringWaitSince ||= now;
      const lowest = [...this.peers.keys()].every((id) => this.peerId < id);
      if (!lowest && now - this.ringWaitSince < RING_ORIGIN_WAIT_MS) return;
    }
    this.ringLoading = true;
    void this.loadRing(file ?? href);
  }

  /** Whether a connected peer (not banned) has said it holds the content. */
  private holders(contentId: string): boolean {
    for (const p of this.peers.values()) if (p.have.has(contentId) && !this.banned.has(p.id)) return true;
    return false;
  }

  private async loadRing(from: ManifestFile | URL) {
    try {
      const wasm = from instanceof URL ? from : ((await this.fetchFile(from, false)) as Uint8Array<ArrayBuffer>);
      const ring = new Ring(await loadRingModule(wasm));
      if (this.destroyed) {
        ring.destroy();
        return;
      }
      for (const id of this.peers.keys()) ring.add(id);
      this.ring = ring;
    } catch (err) {
      this.emit('warning', `ERR_RING_WASM: ${String(err)}; peers are ranked by RTT only`);
    }
  }

  private async loadManifest() {
    // Marked 'manifest': DeployNet's worker answers with the copy it checked against the origin
    // for this very navigation (one conditional request per page view, not two); with no
    // worker, or none checked just now, the request goes to the origin.
    const res = await fetch(this.options.manifest, {
      cache: 'no-cache',
      priority: 'high',
      headers: { [MARKER]: 'manifest' },
    });
    if (!res.ok) throw new Error(`ERR_MANIFEST: HTTP ${res.status} for ${this.options.manifest}`);
    const raw = await res.text();
    const manifest = parseManifest(JSON.parse(raw));
    // A manifest published for another origin (a staging build, the wrong --origin) describes
    // another deploy: nothing of it is used, the site loads over HTTP.
    if (manifest.origin !== location.origin) {
      throw new Error(
        `ERR_MANIFEST_ORIGIN: ${this.options.manifest} was published for ${manifest.origin}, this page is ${location.origin} (deploynet publish --origin ${location.origin})`,
      );
    }
    this.index = new ManifestIndex(manifest);
    this.manifestText = raw;
    // Content of older deploys is never served again.
    this.heldReady = this.store
      .evictExcept(new Set(this.index.byId.keys()))
      .then(() => this.store.ids())
      .then((ids) => {
        for (const id of ids) this.held.add(id);
      })
      .catch(() => {});
  }

  /**
   * The page's loads, counted for `stats().originBytes`; and (`adopt`) what the browser loaded
   * itself (before the engine was up, or passed through the worker): it is in the HTTP cache,
   * verified and offered to the swarm from there, never downloaded again (`only-if-cached`
   * never touches the network).
   */
  private watchLoads(adopt: boolean) {
    if (typeof PerformanceObserver !== 'function') return;
    try {
      // Adopting reads, hashes and stores what the browser loaded: work that competes with the
      // page's own loading, so it waits for the load event (peers are rarely connected sooner).
      this.resourceObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          const r = e as PerformanceResourceTiming;
          if (r.transferSize > 0 && r.name.startsWith(`${location.origin}/`)) {
            this.pageOrigin.bytes += bodyBytes(r);
            this.pageOrigin.requests++;
          }
          if (!adopt) continue;
          this.meter.add(r);
          if (document.readyState === 'complete') void this.adopt(e.name);
          else if (this.adoptQueue.length < MAX_ADOPTED) this.adoptQueue.push(e.name);
        }
      });
      if (adopt && document.readyState !== 'complete') {
        addEventListener(
          'load',
          () => {
            for (const href of this.adoptQueue.splice(0)) void this.adopt(href);
          },
          { once: true },
        );
      }
      this.resourceObserver.observe({ type: 'resource', buffered: true });
    } catch {
      /* no Resource Timing: nothing adopted */
    }
  }

  private async adopt(href: string) {
    let url: URL;
    try {
      url = new URL(href);
    } catch {
      return;
    }
    if (url.origin !== location.origin || this.destroyed) return;
    const file = this.index.lookup(url.pathname);
    if (!file || file.size === 0 || this.adopted.has(file.sha256) || this.transfers.has(file.sha256)) return;
    if (this.adopted.size >= MAX_ADOPTED) return;
    this.adopted.add(file.sha256);
    await this.heldReady;
    if (this.held.has(file.sha256)) return;
    try {
      const res = await fetch(url.pathname, {
        cache: 'only-if-cached',
        mode: 'same-origin',
        headers: { [MARKER]: 'origin' },
      });
      if (!res.ok) return;
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.length !== file.size || (await sha256Hex(bytes)) !== file.sha256) return;
      await this.store.put(file.sha256, bytes);
      this.held.add(file.sha256);
      this.counters.bytesAdopted += bytes.length;
      for (const p of this.peers.values()) p.send({ type: 'have', contentId: file.sha256 });
    } catch {
      /* not in the HTTP cache */
    }
  }

  // ---- swarm membership ----

  private rtcConfig(): RTCConfiguration {
    return {
      iceServers: this.options.iceServers ?? this.serverIce?.iceServers ?? [],
      iceTransportPolicy: this.options.iceTransportPolicy ?? this.serverIce?.policy ?? 'all',
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
    if (this.announcing || !this.signal?.connected) return;
    this.announcing = true;
    try {
      const room = Math.max(0, this.room());
      const want = targets.filter((id) => !this.peers.has(id) && !this.banned.has(id)).slice(0, room);
      const random = event === 'started' || want.length === 0 ? Math.min(this.options.offers, room - want.length) : 0;
      const offers = (
        await Promise.all([
          ...want.map((id) => this.makeOffer(id)),
          ...Array.from({ length: Math.max(0, random) }, () => this.makeOffer()),
        ])
      ).filter((o): o is OutOffer => !!o);
      this.mark('announce');
      this.signal?.announce({
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

  private askRoutes() {
    if (!this.index) return; // asked once the manifest is in
    this.routesAsked = performance.now();
    const ids = [...this.index.byId.keys()].slice(0, 256);
    if (ids.length) this.signal?.route(ids, this.options.routeK);
  }

  private onRoutes(routes: { content_id: string; peers: string[] }[], n: number) {
    this.swarmPeers = n;
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
    if (from === this.peerId || this.peers.has(from) || this.banned.has(from) || this.room() <= 0) return;
    try {
      const { peer, answer } = await Peer.answer(this.rtcConfig(), from, offer);
      peer.offerId = offerId;
      this.track(peer);
      this.signal?.answer(from, offerId, answer);
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
        const key = (p: Peer) => `${p.initiator ? this.peerId : p.id}:${p.offerId}`;
        if (key(existing) <= key(peer)) {
          peer.destroy('duplicate');
          return;
        }
        existing.destroy('duplicate');
      }
      this.peers.set(peer.id, peer);
      this.topUpGap = TOP_UP_MIN_MS;
      this.firstPeerMs ??= performance.now();
      this.ring?.add(peer.id);
      void this.sendHello(peer);
      this.emit('peer', peer.id);
    };
    if (peer.open) onOpen();
    else peer.on('open', onOpen);
    peer.on('message', (m) => {
      // A channel can open before this page's manifest is in (the swarm is joined while it
      // loads): what the peer says meanwhile waits for it instead of being lost.
      if (this.early) {
        if (this.early.length >= MAX_EARLY_MESSAGES) peer.destroy('too many messages before the manifest');
        else this.early.push([peer, m]);
        return;
      }
      this.onMessage(peer, m);
    });
    peer.on('close', (reason) => {
      this.connecting.delete(peer);
      if (this.peers.get(peer.id) === peer) {
        this.peers.delete(peer.id);
        this.ring?.remove(peer.id);
        this.emit('peerclose', peer.id, reason);
      }
      for (const [id, r] of this.reqs) {
        if (r.peer === peer) {
          this.reqs.delete(id);
          if (r.t.state[r.piece] === 1) r.t.state[r.piece] = 0;
          this.schedule(r.t);
        }
      }
    });
  }

  private async sendHello(peer: Peer) {
    await this.manifestReady;
    const manifestIds = new Set(this.index.byId.keys());
    const have = (await this.store.ids()).filter((id) => manifestIds.has(id));
    peer.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      deployId: this.index.manifest.deploy_id,
      have: have.slice(0, MAX_HELLO_IDS),
    });
    for (const id of have.slice(MAX_HELLO_IDS)) peer.send({ type: 'have', contentId: id });
  }

  private ban(peer: Peer, reason: string) {
    if (!this.banned.has(peer.id)) {
      // Peer ids are per page load: the oldest bans go first past the cap.
      if (this.banned.size >= MAX_BANNED) this.banned.delete(this.banned.values().next().value as string);
      this.banned.add(peer.id);
      this.counters.bans++;
      this.emit('ban', peer.id, reason);
    }
    peer.destroy(`banned: ${reason}`);
  }

  private onMessage(peer: Peer, m: WireMessage) {
    switch (m.type) {
      case 'hello':
        if (m.version !== PROTOCOL_VERSION) {
          peer.destroy(`protocol version ${m.version}`);
          return;
        }
        peer.helloSeen = true;
        // Only content of this deploy is remembered: a peer's set never outgrows the manifest.
        for (const id of m.have) if (this.index.byId.has(id)) peer.have.add(id);
        this.scheduleAll();
        return;
      case 'have':
        if (!this.index.byId.has(m.contentId)) return;
        peer.have.add(m.contentId);
        for (const t of this.active) if (t.file.sha256 === m.contentId) this.schedule(t);
        return;
      case 'request':
        void this.serve(peer, m.reqId, m.contentId, m.piece);
        return;
      case 'cancel': {
        const up = this.serving.get(`${peer.id}:${m.reqId}`);
        if (up) up.cancelled = true;
        return;
      }
      case 'piece':
        void this.onPiece(peer, m.reqId, m.piece, m.offset, m.data);
        return;
      case 'reject': {
        const r = this.reqs.get(m.reqId);
        if (!r || r.peer !== peer) return;
        this.reqs.delete(m.reqId);
        r.t.state[r.piece] = 0;
        // Busy: ask again on the next tick (it may be free by then); otherwise not this peer.
        if (m.reason !== 'busy') r.t.excluded.add(peer.id);
        if (m.reason === 'missing') peer.have.delete(r.t.file.sha256);
        if (m.reason !== 'busy') this.scheduleAll();
        return;
      }
    }
  }

  // ---- downloading ----

  /** The verified bytes of a content id of the manifest. */
  fetch(contentId: string, opts: FetchOptions = {}): Promise<Uint8Array> {
    const file = this.index.byId.get(contentId);
    if (!file) return Promise.reject(new Error(`ERR_NOT_IN_MANIFEST: ${contentId}`));
    return this.fetchFile(file, opts.urgent ?? true);
  }

  /** A Response for a path of the manifest; paths outside it go to the origin untouched. */
  async fetchPath(path: string, opts: FetchOptions = {}): Promise<Response> {
    const file = this.index.lookup(path);
    if (!file) return originFetch(path);
    const bytes = file.size === 0 ? new Uint8Array(0) : await this.fetchFile(file, opts.urgent ?? true);
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': file.type, 'content-length': String(bytes.length) },
    });
  }

  private fetchFile(file: ManifestFile, urgent: boolean, peersOnly = false): Promise<Uint8Array> {
    let p = this.transfers.get(file.sha256);
    if (p && !peersOnly) {
      // Already under way as a prefetch, or for a patient request: now the page needs it.
      for (const t of this.active) {
        if (t.file.sha256 !== file.sha256) continue;
        t.peersOnly = false;
        t.urgent ||= urgent;
        const d = t.firstByte ? null : this.decideFor(t);
        if (d?.source === 'origin') void this.fromOrigin(t, d.reason);
      }
    }
    if (!p) {
      p = this.download(file, urgent, peersOnly).finally(() => this.transfers.delete(file.sha256));
      this.transfers.set(file.sha256, p);
    }
    return p;
  }

  private async download(file: ManifestFile, urgent: boolean, peersOnly = false): Promise<Uint8Array> {
    const started = performance.now();
    const cached = await this.store.get(file.sha256);
    if (cached) {
      this.counters.bytesFromCache += cached.length;
      this.record({
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
      state: new Uint8Array(n),
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

  /** Peers to ask for a transfer, best first (scheduler.ts: rankPeers). */
  private candidates(t: Transfer): Peer[] {
    const cid = t.file.sha256;
    const open = [...this.peers.values()].filter(
      (p) => p.open && p.have.has(cid) && !this.banned.has(p.id) && !t.excluded.has(p.id),
    );
    if (open.length === 0) return open;
    const order = this.ring ? this.ring.route(cid, this.peers.size) : [];
    return rankPeers(open, this.routes.get(cid) ?? [], order);
  }

  private inflight(peer: Peer): number {
    let n = 0;
    for (const r of this.reqs.values()) if (r.peer === peer) n++;
    return n;
  }

  private schedule(t: Transfer, limit = Infinity) {
    if (t.done) return;
    const peers = this.candidates(t);
    if (peers.length === 0) {
      // Midway, with nobody left to ask (and no peer just connected about to say what it
      // holds): the origin finishes the job.
      const requested = t.state.some((s) => s === 1);
      if (!t.origin && t.firstByte && !requested && !this.helloPending())
        void this.fromOrigin(t, 'no peer has the rest');
      return;
    }
    // Beside a streaming origin, peers take what it will reach last: the pieces from the end,
    // at least one piece clear of its position.
    let state = t.state;
    if (t.origin) {
      const ps = this.index.manifest.piece_size;
      const first = Math.floor(t.originAt / ps) + 2;
      state = t.state.map((s, i) => (i < first ? VERIFIED : s));
    }
    const inflight = peers.map((p) => this.inflight(p));
    for (const [piece, i] of planRequests(state, inflight, this.options.maxInflightPerPeer, limit, t.origin)) {
      const reqId = this.nextReq++;
      const len = this.index.pieceLength(t.file, piece);
      this.reqs.set(reqId, { t, piece, peer: peers[i], buf: new Uint8Array(len), progress: performance.now() });
      t.state[piece] = 1;
      t.got[piece] = 0;
      peers[i].rx.busy(performance.now());
      peers[i].send({ type: 'request', reqId, contentId: t.file.sha256, piece });
    }
  }

  private async onPiece(peer: Peer, reqId: number, piece: number, offset: number, data: Uint8Array) {
    const r = this.reqs.get(reqId);
    if (!r || r.peer !== peer) return; // cancelled or re-requested elsewhere: late bytes are dropped
    const t = r.t;
    const ps = this.index.manifest.piece_size;
    const len = r.buf.length;
    if (piece !== r.piece || offset !== t.got[piece] || offset + data.length > len) {
      this.reqs.delete(reqId);
      if (t.state[piece] === 1) t.state[piece] = 0;
      this.ban(peer, 'piece out of order or too long');
      this.schedule(t);
      return;
    }
    if (!t.firstByte) {
      t.firstByte = true;
      if (t.timer) {
        clearTimeout(t.timer);
        t.timer = null;
      }
    }
    r.buf.set(data, offset);
    t.got[piece] += data.length;
    r.progress = performance.now();
    peer.rx.add(data.length, r.progress);
    if (t.got[piece] < len) return;
    this.reqs.delete(reqId);
    if (this.inflight(peer) === 0) peer.rx.idle();
    const hash = await sha256Hex(r.buf);
    if (t.done || t.state[piece] === VERIFIED) return; // the origin got there first
    if (hash !== t.file.pieces[piece]) {
      // Not one byte of a bad piece is used: it is asked again elsewhere, its sender banned.
      this.counters.badPieces++;
      t.state[piece] = 0;
      this.ban(peer, 'bad piece');
      this.schedule(t);
      return;
    }
    t.buf.set(r.buf, piece * ps);
    t.state[piece] = VERIFIED;
    t.fromPeers += len;
    t.used.add(peer.id);
    this.counters.bytesFromPeers += len;
    if (t.state.every((s) => s === VERIFIED)) await this.finish(t);
    this.scheduleAll(); // the peer has room again: for this transfer or any other
  }

  private scheduleAll() {
    // First one piece for every transfer still waiting for its first byte (each asset starts
    // arriving, and none runs into the budget behind another's pieces), then the rest.
    for (const t of this.active) {
      if (t.done || t.origin || t.state.includes(1)) continue;
      const d = t.firstByte ? null : this.decideFor(t);
      if (d?.source === 'origin') void this.fromOrigin(t, d.reason);
      else this.schedule(t, 1);
    }
    for (const t of this.active) this.schedule(t);
  }

  /** The delivery policy's choice for a transfer now (policy.ts), from the measured state. */
  private decideFor(t: Transfer): Decision {
    const s = this.signal;
    const now = performance.now();
    let nearlyDone = false;
    let underWay = this.announcing || now - this.lastAnnounce < 1500;
    for (const p of this.connecting) {
      if (p.id && now - p.created < ANSWERED_WAIT_MS) nearlyDone = true;
      if (now - p.created < 1500) underWay = true;
    }
    // Called on every scheduling pass: the bytes still missing without walking the pieces.
    const missing = Math.max(0, t.file.size - t.fromPeers - t.fromOrigin);
    return decide(
      { size: missing, urgent: t.urgent },
      {
        signal: !!s,
        holders: this.candidates(t).map((p) => ({ rtt: p.rtt, rate: p.rx.rate })),
        helloPending: this.helloPending(),
        handshakeNearlyDone: nearlyDone,
        handshakeUnderWay: !!s?.connected && underWay,
        alone: this.swarmPeers === 1 && this.peers.size === 0,
        originMs: this.meter.expected(missing),
        originMeasured: this.meter.samples > 0,
      },
      this.options.firstByteTimeout,
      this.options.hedge,
    );
  }

  /** A peer connected less than a round trip ago has not yet said what it holds. */
  private helloPending(): boolean {
    const now = performance.now();
    for (const p of this.peers.values()) if (!p.helloSeen && now - p.openedAt < HELLO_WAIT_MS) return true;
    return false;
  }

  /** Every 250 ms: re-ask stalled pieces elsewhere, keep the swarm topped up. */
  private tick() {
    const now = performance.now();
    for (const [id, r] of this.reqs) {
      if (now - r.progress > this.options.stallTimeout) {
        this.reqs.delete(id);
        r.peer.send({ type: 'cancel', reqId: id });
        r.t.state[r.piece] = 0;
        r.t.excluded.add(r.peer.id);
        this.schedule(r.t);
      }
    }
    this.scheduleAll();
    this.maybeLoadRing();
    if (now - this.usageAsked > 1000) void this.refreshWorkerUsage();
    if (now - this.lastPrefetch > 1000) {
      this.lastPrefetch = now;
      this.prefetch();
    }
    if (this.onHide && now - this.lastReport > 15_000) this.report();
    this.topUp(now);
  }

  /**
   * Keeps the swarm topped up: while members of the swarm are neither connected nor being
   * answered, offers go out again, 3 s after the last announce and backing off to 30 s while
   * nothing new connects. A handshake that failed (a lost answer, NAT, a peer that left) is
   * then retried in seconds rather than at the next route request or tracker interval.
   */
  private topUp(now: number) {
    if (!this.joined || !this.signal?.connected || this.announcing || now - this.lastAnnounce < this.topUpGap) return;
    let answered = 0;
    for (const p of this.connecting) if (p.id) answered++;
    if (this.swarmPeers - 1 - this.peers.size - answered <= 0 || this.room() <= 0) return;
    this.topUpGap = Math.min(this.topUpGap * 2, TOP_UP_MAX_MS);
    void this.announce();
  }

  /** This page view's byte counts to the signaling server, when they changed (see `report`). */
  private report() {
    this.lastReport = performance.now();
    if (!this.signal?.connected || !this.joined) return;
    const c = this.counters;
    const counts = {
      fromPeers: c.bytesFromPeers,
      fromOrigin: c.bytesFromOrigin + c.bytesAdopted,
      fromCache: c.bytesFromCache,
      uploaded: c.bytesUploaded,
    };
    const key = `${counts.fromPeers}/${counts.fromOrigin}/${counts.fromCache}/${counts.uploaded}`;
    if (key === this.reported || key === '0/0/0/0') return;
    this.reported = key;
    this.signal.report(location.origin, counts);
  }

  /**
   * Once the page has loaded: the site's other assets that connected peers hold, from them
   * (two at a time, within `prefetchBytes`), so that the next page view needs no origin
   * request for them (the service worker serves them from the cache).
   */
  private prefetch() {
    if (
      this.prefetched >= this.options.prefetchBytes ||
      dataSaving() ||
      typeof document === 'undefined' ||
      document.readyState !== 'complete' ||
      this.peers.size === 0
    )
      return;
    let running = 0;
    for (const t of this.active) if (t.peersOnly) running++;
    for (const file of this.index.manifest.files) {
      if (running >= 2) return;
      if (
        file.size === 0 ||
        this.held.has(file.sha256) ||
        this.transfers.has(file.sha256) ||
        this.adopted.has(file.sha256) ||
        this.prefetched + file.size > this.options.prefetchBytes
      )
        continue;
      if (!this.holders(file.sha256)) continue;
      this.prefetched += file.size;
      running++;
      void this.fetchFile(file, false, true).catch(() => {
        this.prefetched -= file.size;
      });
    }
  }

  /**
   * The origin as one more source: it streams the transfer from the first piece not yet
   * verified, each piece verified as it completes, while peers that hold the content take
   * pieces from the end; when every piece is in, the origin's download is cut short (its
   * access log then shows only what it really sent).
   */
  private async fromOrigin(t: Transfer, why: string) {
    if (t.done || t.origin) return;
    if (t.peersOnly) {
      // A prefetch the peers cannot serve is dropped: the origin is for what the page needs.
      t.done = true;
      for (const [id, r] of this.reqs) {
        if (r.t === t) {
          this.reqs.delete(id);
          r.peer.send({ type: 'cancel', reqId: id });
        }
      }
      t.reject(new Error(`ERR_PREFETCH: ${t.file.path}: ${why}`));
      return;
    }
    t.origin = true;
    t.originReason = why;
    if (this.options.debug) {
      const holders = this.peerList().filter((p) => p.have > 0).length;
      console.info(
        `deploynet: ${t.file.path} from the origin: ${why} ` +
          `(${this.peerList().length} peers connected, ${holders} announced content)`,
      );
    }
    for (const [id, r] of this.reqs) {
      // Peers that had their chance at the head make way; the tail stays theirs.
      if (r.t === t) {
        this.reqs.delete(id);
        r.peer.send({ type: 'cancel', reqId: id });
        t.state[r.piece] = 0;
        if (!t.firstByte) t.excluded.add(r.peer.id);
      }
    }
    const ps = this.index.manifest.piece_size;
    const url = new URL(t.file.path, location.origin).href;
    const abort = new AbortController();
    t.originAbort = abort;
    try {
      const range = originRange(t.state, ps, t.file.size);
      const start = range ? range[0] : 0;
      const headers: Record<string, string> = range ? { range: `bytes=${range[0]}-${range[1]}` } : {};
      const res = await originFetch(url, { headers, cache: 'no-store', signal: abort.signal });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      if (range && res.status !== 206) throw new Error(`HTTP ${res.status} to a Range request`);
      const total = range ? range[1] + 1 - start : t.file.size;
      const reader = res.body.getReader();
      let pos = start;
      t.originAt = pos;
      this.schedule(t); // peers may start on the tail at once
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (pos + value.length > start + total || pos + value.length > t.file.size) {
          throw new Error(`origin sent more than the ${total} bytes asked for`);
        }
        t.buf.set(value, pos);
        const before = Math.floor(pos / ps);
        pos += value.length;
        t.originAt = pos;
        t.originRead = pos - start;
        // Received whole: its Resource Timing entry counts it (stats().originBytes).
        if (pos === start + total) t.originAbort = null;
        t.fromOrigin += value.length;
        this.counters.bytesFromOrigin += value.length;
        if (!t.firstByte) {
          t.firstByte = true;
          if (t.timer) {
            clearTimeout(t.timer);
            t.timer = null;
          }
        }
        // Pieces the stream completed: verified here, taken from peers that were on them.
        const after = pos === t.file.size ? t.state.length : Math.floor(pos / ps);
        for (let i = before; i < after; i++) {
          if (t.state[i] === VERIFIED) continue;
          const piece = t.buf.subarray(i * ps, i * ps + this.index.pieceLength(t.file, i));
          if ((await sha256Hex(piece)) !== t.file.pieces[i]) throw new OriginMismatch();
          this.takeFromPeers(t, i);
          t.state[i] = VERIFIED;
        }
        if (t.state.every((s) => s === VERIFIED)) {
          // Cut short (peers brought the rest): Resource Timing counts no body for a cancelled
          // response, so what was read is counted here.
          if (t.originAbort) this.cutOrigin(t);
          void reader.cancel().catch(() => {});
          break;
        }
      }
      if (t.done) return;
      if (!t.state.every((s) => s === VERIFIED)) throw new Error(`origin sent ${pos - start} of ${total} bytes`);
      this.emit('warning', `origin used for ${t.file.path}: ${why}`);
      await this.finish(t);
    } catch (caught) {
      let err = caught;
      if (t.done) return;
      if (err instanceof OriginMismatch) {
        // The origin is the authority: its bytes are returned, but never stored or served.
        this.emit('warning', `ERR_ORIGIN_MISMATCH: ${t.file.path} differs from the manifest`);
        this.cutOrigin(t);
        try {
          const whole = new Uint8Array(await (await originFetch(url, { cache: 'no-store' })).arrayBuffer());
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
      t.reject(new Error(`ERR_ORIGIN: ${t.file.path}: ${String(err)}`));
    } finally {
      t.originAbort = null;
    }
  }

  /** A piece the origin delivered: any peer request for it is cancelled. */
  private takeFromPeers(t: Transfer, piece: number) {
    for (const [id, r] of this.reqs) {
      if (r.t === t && r.piece === piece) {
        this.reqs.delete(id);
        r.peer.send({ type: 'cancel', reqId: id });
      }
    }
  }

  /** Stops a transfer's origin stream midway, counting what it delivered (see fromOrigin). */
  private cutOrigin(t: Transfer) {
    if (!t.originAbort) return;
    this.pageOrigin.bytes += t.originRead;
    t.originAbort.abort();
    t.originAbort = null;
  }

  private async finish(t: Transfer) {
    if (t.done) return;
    t.done = true;
    this.held.add(t.file.sha256);
    this.cutOrigin(t);
    for (const [id, r] of this.reqs) {
      if (r.t === t) {
        this.reqs.delete(id);
        r.peer.send({ type: 'cancel', reqId: id });
      }
    }
    await this.store.put(t.file.sha256, t.buf);
    for (const p of this.peers.values()) p.send({ type: 'have', contentId: t.file.sha256 });
    this.record({
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

  private record(a: AssetStats) {
    this.assets.push(a);
    if (this.assets.length > 1000) this.assets.shift();
    this.emit('asset', a);
  }

  // ---- serving ----

  private async serve(peer: Peer, reqId: number, contentId: string, piece: number) {
    await this.manifestReady;
    const file = this.index.byId.get(contentId);
    if (!file || piece >= file.pieces.length) {
      peer.send({ type: 'reject', reqId, reason: file ? 'invalid' : 'missing' });
      return;
    }
    if (this.uploads >= this.options.maxUploads) {
      peer.send({ type: 'reject', reqId, reason: 'busy' });
      return;
    }
    const key = `${peer.id}:${reqId}`;
    if (this.serving.has(key)) {
      peer.send({ type: 'reject', reqId, reason: 'invalid' });
      return;
    }
    const up = { cancelled: false };
    this.serving.set(key, up);
    this.uploads++;
    try {
      const bytes = await this.store.get(contentId);
      if (!bytes) {
        peer.send({ type: 'reject', reqId, reason: 'missing' });
        return;
      }
      const ps = this.index.manifest.piece_size;
      const len = this.index.pieceLength(file, piece);
      for (let off = 0; off < len; off += MAX_CHUNK) {
        if (up.cancelled || peer.closed) return;
        const n = Math.min(MAX_CHUNK, len - off);
        await this.bucket.take(n);
        await peer.drained();
        const data = bytes.subarray(piece * ps + off, piece * ps + off + n);
        if (!peer.send({ type: 'piece', reqId, piece, offset: off, data })) return;
        this.counters.bytesUploaded += n;
      }
    } finally {
      this.uploads--;
      this.serving.delete(key);
    }
  }

  // ---- status ----

  /** What this page view got from where, and what it served (see `Stats`). */
  stats(): Stats {
    const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
    const navNet = !!nav && nav.transferSize > 0;
    return {
      peerId: this.peerId,
      swarm: this.swarm,
      signal: !!this.signal?.connected,
      peers: this.peers.size,
      originBytes: this.pageOrigin.bytes + this.workerOrigin.bytes + (navNet ? bodyBytes(nav) : 0),
      originRequests: this.pageOrigin.requests + this.workerOrigin.requests + (navNet ? 1 : 0),
      firstPeerMs: this.firstPeerMs,
      timeline: { ...this.timeline },
      ...this.counters,
      assets: [...this.assets],
    };
  }

  /** `stats().originBytes` and `originRequests`, with the service worker's counts for this page asked for first. */
  async originUsage(): Promise<{ bytes: number; requests: number }> {
    await this.refreshWorkerUsage();
    const s = this.stats();
    return { bytes: s.originBytes, requests: s.originRequests };
  }

  private async refreshWorkerUsage() {
    this.usageAsked = performance.now();
    if (!this.workerUsage) return;
    try {
      this.workerOrigin = await this.workerUsage();
    } catch {
      /* no worker answering: the page's own counts only */
    }
  }

  /** Peers connected now: id, round-trip time (ms), content ids they hold, measured delivery
   *  rate to this visitor (bytes per second; null until measured). */
  peerList(): { id: string; rtt: number; have: number; rate: number | null }[] {
    return [...this.peers.values()].map((p) => ({
      id: p.id,
      rtt: p.rtt,
      have: p.have.size,
      rate: Number.isNaN(p.rx.rate) ? null : Math.round(p.rx.rate * 1000),
    }));
  }

  /** Leaves the swarm: reports its counts, closes every connection; transfers go to the origin. */
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.iceTimer) clearTimeout(this.iceTimer);
    if (this.onHide) {
      this.report();
      document.removeEventListener('visibilitychange', this.onHide);
      removeEventListener('pagehide', this.onLeave);
    }
    this.resourceObserver?.disconnect();
    this.signal?.destroy();
    this.ring?.destroy();
    for (const p of [...this.peers.values(), ...this.connecting]) p.destroy('destroyed');
    for (const t of this.active) if (!t.done) void this.fromOrigin(t, 'destroyed');
  }
}
