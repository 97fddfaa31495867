// The P2P engine of one page, wiring three parts by their events: the peer set (swarm.ts:
// joining the site's swarm, a bounded set of connections), the transfers (transfers.ts: one
// scheduler with the connected peers and the origin as sources, every piece verified) and the
// uploader (uploader.ts: serving what this visitor holds). The engine itself owns the page's
// side: the manifest, what the browser loaded on its own (adopted and seeded), prefetching
// after the load event, the ring module, and the figures of `stats()`.

import { Emitter } from './emitter';
import { DeployNetError } from './errors';
import { isDisabled, ManifestIndex, OFF_KEY, parseManifest, sha256Hex, type ManifestFile } from './manifest';
import { OriginMeter } from './meter';
import { bodyBytes, MARKER, type OriginUsage, originFetch } from './origin';
import type { Peer } from './peer';
import { loadRingModule, Ring } from './ring';
import { ContentStore } from './store';
import { type JoinStep, provenPeerId, randomId, Swarm } from './swarm';
import { type AssetStats, type PeerSource, type RangeReader, Transfers } from './transfers';
import { Uploader } from './uploader';
import { MAX_HELLO_IDS, PROTOCOL_VERSION, type WireMessage } from './wire';

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
  /**
   * Bytes the origin may stream ahead of a reader (a media element, a download through the
   * service worker): what a visitor who stops watching never costs the origin.
   */
  readAhead?: number;
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
   * the signaling server when they have settled (no change for 1 s, at most every 3 s), at
   * least every 15 s while they change, and when the page is hidden, so that the site's savings
   * show in the server's /metrics. Only for the swarm derived from the page's origin.
   */
  report?: boolean;
}

const MAX_EARLY_MESSAGES = 4096; // held until the manifest is in, engine-wide

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
  readAhead: 4 * 1024 * 1024,
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
   * the first offer arrived from a peer and was answered, the first answer to one of ours arrived.
   */
  timeline: Partial<
    Record<'start' | 'signalOpen' | 'ice' | 'announce' | 'announced' | 'offerIn' | 'answerOut' | 'answerIn', number>
  >;
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
  /** The site announced a new deploy (`deploynet notify`): this page fills its new files. */
  update: [deployId: string];
  /**
   * The new deploy's files are held here: the next navigation (a reload) needs no origin
   * byte for them. A page may offer its reader a reload.
   */
  updateready: [deployId: string];
  /**
   * The site's owner turned DeployNet off (`deploynet notify --disable`, signed): this page has
   * left the swarm and loads everything over HTTP; its worker retires.
   */
  disabled: [];
};

/** How a request is to be served (fetch, fetchPath). */
export interface FetchOptions {
  /**
   * true (default): the page needs it to render (script, style, font, HTML): peers are used
   * only if a connected peer holds it, never after waiting on a handshake. false: media and
   * later loads, which may wait up to `firstByteTimeout` for peers being connected.
   */
  urgent?: boolean;
}

// Assets taken from the browser's HTTP cache per page (a manifest lists a site's assets).
const MAX_ADOPTED = 4096;
const RING_MIN_PEERS = 2; // connected peers before ranking them on the ring is worth its module
const RING_ORIGIN_WAIT_MS = 10_000; // for a peer to get the ring module before anyone asks the origin
// A new deploy's files: open pages start within UPDATE_SPREAD_MS of the notice (not all at
// once), and one page of those connected fetches each file from the origin while the others
// wait this long for it to say it has it.
const UPDATE_SPREAD_MS = 3000;
const UPDATE_FILL_WAIT_MS = 8000;
const MAX_HAVE_LATER = 1024; // per peer: ids of a deploy this page has not admitted yet

/** A file's rank for a peer (rendezvous hashing: FNV-1a of both ids). */
function rendezvous(peerId: string, contentId: string): number {
  let h = 0x811c9dc5;
  for (const s of [peerId, contentId])
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  return h >>> 0;
}

/** The visitor asked to save data (Save-Data), or is on a cellular link: nothing ahead of need. */
function dataSaving(): boolean {
  const c = (navigator as Navigator & { connection?: { saveData?: boolean; type?: string } }).connection;
  return !!c && (c.saveData === true || c.type === 'cellular');
}

/** The deploy id of a signed notice that turns DeployNet off (core's kDisabledDeploy). */
const DISABLED_DEPLOY = 'disabled';

/** For the bootstrap of the next views: whether the site turned DeployNet off (no socket). */
function rememberOff(off: boolean) {
  try {
    if (off) localStorage.setItem(OFF_KEY, '1');
    else localStorage.removeItem(OFF_KEY);
  } catch {
    /* no storage: the next view opens its socket and learns it again */
  }
}

function rememberedOff(): boolean {
  try {
    return localStorage.getItem(OFF_KEY) !== null;
  } catch {
    return false;
  }
}

/** No swarm (P2P off or unavailable): every transfer's only source is the origin. */
const NO_PEERS: PeerSource<Peer> = {
  connected: () => [],
  isBanned: () => false,
  responsible: () => [],
  ringOrder: () => [],
  joining: () => ({
    signal: false,
    helloPending: false,
    handshakeNearlyDone: false,
    handshakeUnderWay: false,
    alone: true,
  }),
  ban: () => {},
};

/** The swarm of a site: 20 ASCII characters from the SHA-256 of its origin. */
export async function swarmIdFor(origin: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(origin)));
  return btoa(String.fromCharCode(...d.subarray(0, 15)));
}

export class DeployNet extends Emitter<Events> {
  /** @internal */
  readonly options: typeof DEFAULTS & { signal: string[] };
  /** This visitor's peer id in the swarm. */
  peerId = randomId('-DN0001-'); // until init: then one the server can check (provenPeerId)
  private peerProof = '';
  /** @internal */
  index!: ManifestIndex;
  /** @internal The manifest as the origin sent it (handed to the service worker). */
  manifestText = '';
  /** The swarm joined (see `swarmIdFor`). */
  swarm = '';
  private store: ContentStore;
  /** The peer set, when this page takes part in the swarm (swarm.ts). */
  private peerSet: Swarm | null = null;
  /** The page's downloads (peers and the origin as sources) and uploads, once the manifest is in. */
  private transfers: Transfers<Peer> | null = null;
  private uploader: Uploader | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private destroyed = false;
  private lastReport = 0;
  private reported = '';
  /** The counts as last seen by `tick`, and when they last changed (see `report`). */
  private seenCounts = '';
  private countsChanged = 0;
  private onHide: (() => void) | null = null;
  // A page left: its counts go out. Firefox has closed the page's sockets by `pagehide`, so
  // they go out at `beforeunload` too, while the socket is still open. (Not `destroy()`: its
  // transfers would be handed to the origin as the document unloads.)
  private onLeave = () => this.report();
  private bytesAdopted = 0;
  private bans = 0;
  private assets: AssetStats[] = [];
  private ringLoading = false;
  private ringWaitSince = 0;
  private manifestReady: Promise<void> = Promise.resolve();
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
  }

  /** The first time of a step of joining (`stats().timeline`). */
  private mark(step: JoinStep) {
    this.timeline[step] ??= Math.round(performance.now());
  }

  /** Whether this page can take part in the swarm at all. */
  get p2pAvailable(): boolean {
    return (
      this.options.p2p &&
      !rememberedOff() &&
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
      ({ peerId: this.peerId, proof: this.peerProof } = await provenPeerId());
      const o = this.options;
      const set = new Swarm(
        {
          signal: o.signal,
          swarm: this.swarm,
          peerId: this.peerId,
          peerProof: this.peerProof,
          iceServers: o.iceServers,
          iceTransportPolicy: o.iceTransportPolicy,
          iceWait: o.iceWait,
          maxPeers: o.maxPeers,
          offers: o.offers,
          region: o.region,
          routeK: o.routeK,
        },
        () => (this.index ? [...this.index.byId.keys()] : null),
      );
      this.peerSet = set;
      set.on('step', (step) => this.mark(step));
      set.on('warning', (w) => this.emit('warning', w));
      set.on('ban', (id, reason) => {
        this.bans++;
        this.emit('ban', id, reason);
      });
      set.on('peer', (peer) => {
        void this.sendHello(peer);
        this.emit('peer', peer.id);
      });
      set.on('message', (peer, m) => {
        // A channel can open before this page's manifest is in (the swarm is joined while it
        // loads): what the peer says meanwhile waits for it instead of being lost.
        if (this.early) {
          if (this.early.length >= MAX_EARLY_MESSAGES) peer.destroy('too many messages before the manifest');
          else this.early.push([peer, m]);
          return;
        }
        this.onMessage(peer, m);
      });
      set.on('deploy', (id) => this.onDeploy(id));
      set.on('closed', (peer, reason, member) => {
        if (member) this.emit('peerclose', peer.id, reason);
        this.transfers?.onPeerClose(peer);
      });
      try {
        await this.manifestReady;
      } catch (err) {
        this.early = null;
        set.destroy();
        this.peerSet = null;
        throw err;
      }
      this.startTransfers(set);
      // What peers said before the manifest was in (their hellos above all), now, in order.
      const early = this.early ?? [];
      this.early = null;
      for (const [peer, m] of early) if (!peer.closed) this.onMessage(peer, m);
      if (set.members > 0) set.askRoutes();
      this.watchdog = setInterval(() => this.tick(), 250);
      if (this.options.report && !this.options.swarm) {
        // Hidden (tab switched, closed) or left (a navigation): the counts go out at once.
        this.onHide = () => {
          if (document.visibilityState === 'hidden') this.report();
        };
        document.addEventListener('visibilitychange', this.onHide);
        addEventListener('pagehide', this.onLeave);
        addEventListener('beforeunload', this.onLeave);
      }
      const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
      if (nav) this.meter.add(nav);
      this.watchLoads(true);
    } else {
      await this.manifestReady;
      this.startTransfers(NO_PEERS);
      this.watchLoads(false);
    }
    this.emit('ready');
  }

  /** The page's downloads, with the origin and `peers` as sources, and its uploads. */
  private startTransfers(peers: PeerSource<Peer>) {
    const meter = this.meter;
    const o = this.options;
    const transfers = new Transfers<Peer>(
      this.index,
      peers,
      {
        fetch: (path, init) => originFetch(new URL(path, location.origin).href, init),
        expected: (bytes) => meter.expected(bytes),
        get measured() {
          return meter.samples > 0;
        },
      },
      this.store,
      o,
    );
    transfers.on('asset', (a) => {
      this.assets.push(a);
      if (this.assets.length > 1000) this.assets.shift();
      this.emit('asset', a);
    });
    transfers.on('stored', (id) => {
      this.held.add(id);
      this.peerSet?.broadcast({ type: 'have', contentId: id });
    });
    transfers.on('warning', (w) => this.emit('warning', w));
    this.transfers = transfers;
    // Pieces come from what is stored, or from a file still being fetched (verified pieces).
    const pieces = {
      slice: async (id: string, start: number, end: number) =>
        transfers.verifiedSlice(id, start, end) ?? (await this.store.slice(id, start, end)),
    };
    this.uploader = new Uploader(this.index, pieces, o.maxUploads, o.uploadLimit);
  }

  /**
   * The ring ranks connected peers only when there is a choice: it is loaded once the page has
   * loaded and two peers are connected, through the engine like any asset of the manifest (from
   * this browser's cache or from peers; from the origin only when no connected peer holds it),
   * so most visitors never fetch it from the origin, and no page waits for it.
   */
  private maybeLoadRing() {
    const set = this.peerSet;
    if (
      !set ||
      this.ringLoading ||
      !this.options.ringWasm ||
      set.peers.size < RING_MIN_PEERS ||
      document.readyState !== 'complete'
    )
      return;
    const href = new URL(this.options.ringWasm, location.href);
    const file = href.origin === location.origin ? this.index.lookup(href.pathname) : undefined;
    if (file && !this.held.has(file.sha256) && !set.holds(file.sha256)) {
      // Nobody at hand holds it: one fetches it from the origin — the lowest peer id among this
      // visitor and its peers (all of them agree on who that is) — and the others take it from
      // that one; if none has it after a while, anyone goes.
      const now = performance.now();
      this.ringWaitSince ||= now;
      const lowest = [...set.peers.keys()].every((id) => this.peerId < id);
      if (!lowest && now - this.ringWaitSince < RING_ORIGIN_WAIT_MS) return;
    }
    this.ringLoading = true;
    void this.loadRing(file ?? href);
  }

  private async loadRing(from: ManifestFile | URL) {
    try {
      const wasm = from instanceof URL ? from : ((await this.fetchFile(from, false)) as Uint8Array<ArrayBuffer>);
      const ring = new Ring(await loadRingModule(wasm));
      if (this.destroyed || !this.peerSet) {
        ring.destroy();
        return;
      }
      this.peerSet.setRing(ring);
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
    if (!res.ok) throw new DeployNetError('ERR_MANIFEST', `HTTP ${res.status} for ${this.options.manifest}`);
    const raw = await res.text();
    const json = JSON.parse(raw);
    rememberOff(isDisabled(json));
    if (isDisabled(json)) {
      throw new DeployNetError(
        'ERR_DISABLED',
        `${this.options.manifest} turns DeployNet off: the site loads over HTTP`,
      );
    }
    const manifest = parseManifest(json);
    // A manifest published for another origin (a staging build, the wrong --origin) describes
    // another deploy: nothing of it is used, the site loads over HTTP.
    if (manifest.origin !== location.origin) {
      throw new DeployNetError(
        'ERR_MANIFEST_ORIGIN',
        `${this.options.manifest} was published for ${manifest.origin}, this page is ${location.origin} (deploynet publish --origin ${location.origin})`,
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
    if (!file || file.size === 0 || this.adopted.has(file.sha256) || this.transfers?.has(file.sha256)) return;
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
      this.bytesAdopted += bytes.length;
      this.peerSet?.broadcast({ type: 'have', contentId: file.sha256 });
    } catch {
      /* not in the HTTP cache */
    }
  }

  // ---- what peers say ----

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
    // What is still being fetched: its verified pieces are served already.
    for (const p of this.transfers?.partial(true) ?? []) peer.send({ type: 'pieces', ...p });
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
        for (const id of m.have) {
          if (this.index.byId.has(id)) peer.have.add(id);
          else if (peer.haveLater.size < MAX_HAVE_LATER) peer.haveLater.add(id);
        }
        this.transfers?.scheduleAll();
        return;
      case 'have':
        if (!this.index.byId.has(m.contentId)) {
          if (peer.haveLater.size < MAX_HAVE_LATER) peer.haveLater.add(m.contentId);
          return;
        }
        peer.have.add(m.contentId);
        peer.pieces.delete(m.contentId);
        this.transfers?.onHave(m.contentId);
        return;
      case 'pieces': {
        // Only files of this deploy, described whole: a peer's map never outgrows the manifest.
        const file = this.index.byId.get(m.contentId);
        if (!file || m.count !== file.pieces.length || peer.have.has(m.contentId)) return;
        peer.pieces.set(m.contentId, m.bits);
        this.transfers?.onHave(m.contentId);
        return;
      }
      case 'request':
        void this.uploader?.serve(peer, m.reqId, m.contentId, m.piece);
        return;
      case 'cancel':
        this.uploader?.cancel(peer, m.reqId);
        return;
      case 'piece':
        void this.transfers?.onPiece(peer, m.reqId, m.piece, m.offset, m.data);
        return;
      case 'reject':
        this.transfers?.onReject(peer, m.reqId, m.reason);
        return;
    }
  }

  // ---- downloading ----

  /** The verified bytes of a content id of the manifest. */
  fetch(contentId: string, opts: FetchOptions = {}): Promise<Uint8Array> {
    const file = this.index.byId.get(contentId);
    if (!file) return Promise.reject(new DeployNetError('ERR_NOT_IN_MANIFEST', contentId));
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

  /**
   * Bytes `start`..`end` (inclusive) of a path of the manifest, verified, in order as they
   * arrive (a Range request through the service worker: media, downloads). The transfer
   * follows the reader: in order from its position, the origin no further ahead than it needs.
   */
  read(path: string, start: number, end: number, urgent = false): { file: ManifestFile; reader: RangeReader } {
    const file = this.index?.lookup(path);
    if (!file || file.size === 0) throw new DeployNetError('ERR_NOT_IN_MANIFEST', path);
    if (!this.transfers) throw new DeployNetError('ERR_MANIFEST', 'no manifest');
    if (!(start >= 0 && start <= end && start < file.size))
      throw new DeployNetError('ERR_RANGE', `${path}: ${start}-${end}`);
    return { file, reader: this.transfers.read(file, start, end, urgent) };
  }

  private fetchFile(file: ManifestFile, urgent: boolean, peersOnly = false): Promise<Uint8Array> {
    if (!this.transfers) return Promise.reject(new DeployNetError('ERR_MANIFEST', 'no manifest'));
    return this.transfers.get(file, urgent, peersOnly);
  }

  // ---- a new deploy, announced while the page is open ----

  private updating = '';

  private onDeploy(deployId: string) {
    if (deployId === DISABLED_DEPLOY) {
      // The kill switch: the later views' bootstrap opens no socket (until a real manifest),
      // this page leaves the swarm, and the page's glue retires the worker.
      if (this.destroyed) return;
      rememberOff(true);
      this.destroy();
      this.emit('disabled');
      return;
    }
    if (!this.index || deployId === this.index.manifest.deploy_id || deployId === this.updating) return;
    this.updating = deployId;
    this.emit('update', deployId);
    setTimeout(
      () =>
        void this.fillDeploy(deployId).catch((err) => {
          this.updating = '';
          this.emit('warning', `ERR_UPDATE: ${err instanceof Error ? err.message : String(err)}`);
        }),
      Math.random() * UPDATE_SPREAD_MS,
    );
  }

  /**
   * The new deploy's manifest from the origin (checked like this page's own), its files
   * admitted by content id (this page keeps its own deploy for its paths: it never mixes
   * versions), and the ones not held here fetched: from connected peers that hold them, or by
   * one page of those connected from the origin while the others wait for it.
   */
  private async fillDeploy(deployId: string) {
    const res = await originFetch(new URL(this.options.manifest, location.href).href, { cache: 'no-cache' });
    if (!res.ok) throw new DeployNetError('ERR_UPDATE', `HTTP ${res.status} for ${this.options.manifest}`);
    const json = await res.json();
    if (isDisabled(json)) return;
    const next = parseManifest(json);
    if (next.origin !== location.origin || next.deploy_id !== deployId)
      throw new DeployNetError(
        'ERR_UPDATE',
        `the origin serves deploy ${next.deploy_id}, the notice named ${deployId}`,
      );
    if (this.destroyed || !this.index) return;
    const fresh = this.index.admit(next);
    for (const p of this.peerSet?.connected() ?? []) {
      for (const id of p.haveLater) if (this.index.byId.has(id)) p.have.add(id);
      p.haveLater.clear();
    }
    this.transfers?.scheduleAll();
    const held = new Set(await this.store.ids());
    await Promise.all(fresh.filter((f) => !held.has(f.sha256)).map((f) => this.fillFile(f)));
    if (!this.destroyed) this.emit('updateready', deployId);
  }

  private async fillFile(file: ManifestFile) {
    const set = this.peerSet;
    const deadline = performance.now() + UPDATE_FILL_WAIT_MS;
    while (set && !set.holds(file.sha256) && !this.fetchesFirst(file.sha256) && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 250));
    if (this.destroyed) return;
    const fromPeers = !!set && set.holds(file.sha256);
    try {
      await this.fetchFile(file, false, fromPeers);
    } catch {
      if (fromPeers && !this.destroyed) await this.fetchFile(file, false);
    }
  }

  /** Whether this page ranks first for the file among itself and its connected peers. */
  private fetchesFirst(contentId: string): boolean {
    const mine = rendezvous(this.peerId, contentId);
    for (const p of this.peerSet?.connected() ?? []) if (rendezvous(p.id, contentId) > mine) return false;
    return true;
  }

  /** Every 250 ms: re-ask stalled pieces elsewhere, keep the swarm topped up. */
  private tick() {
    const now = performance.now();
    this.transfers?.tick();
    // Pieces verified since the last tick, offered to the connected peers.
    for (const p of this.transfers?.partial() ?? []) this.peerSet?.broadcast({ type: 'pieces', ...p });
    this.maybeLoadRing();
    if (now - this.usageAsked > 1000) void this.refreshWorkerUsage();
    if (now - this.lastPrefetch > 1000) {
      this.lastPrefetch = now;
      this.prefetch();
    }
    if (this.onHide) {
      // Settled counts go out soon: a page left by a navigation cannot always send at
      // `pagehide` (Firefox drops a socket's last frames as the document unloads).
      const key = this.countsKey();
      if (key !== this.seenCounts) {
        this.seenCounts = key;
        this.countsChanged = now;
      }
      const settled = now - this.countsChanged > 1000 && now - this.lastReport > 3000;
      if (key !== this.reported && (settled || now - this.lastReport > 15_000)) this.report();
    }
    this.peerSet?.tick(now);
  }

  /** This page view's byte counts: from peers, from the origin, from cache, uploaded. */
  private counts() {
    const c = this.transfers?.counters;
    if (!c) return null;
    return {
      fromPeers: c.bytesFromPeers,
      fromOrigin: c.bytesFromOrigin + this.bytesAdopted,
      fromCache: c.bytesFromCache,
      uploaded: this.uploader?.bytes ?? 0,
    };
  }

  private countsKey(c = this.counts()) {
    return c ? `${c.fromPeers}/${c.fromOrigin}/${c.fromCache}/${c.uploaded}` : '';
  }

  /** This page view's byte counts to the signaling server, when they changed (see `report`). */
  private report() {
    this.lastReport = performance.now();
    const set = this.peerSet;
    const counts = this.counts();
    if (!set?.online || !counts) return;
    const key = this.countsKey(counts);
    if (key === this.reported || key === '0/0/0/0') return;
    this.reported = key;
    set.report(location.origin, counts);
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
      document.readyState !== 'complete'
    )
      return;
    const transfers = this.transfers;
    const set = this.peerSet;
    if (!transfers || !set || set.peers.size === 0) return;
    let running = transfers.prefetches();
    for (const file of this.index.manifest.files) {
      if (running >= 2) return;
      if (
        file.size === 0 ||
        this.held.has(file.sha256) ||
        transfers.has(file.sha256) ||
        this.adopted.has(file.sha256) ||
        this.prefetched + file.size > this.options.prefetchBytes
      )
        continue;
      if (!set.holds(file.sha256)) continue;
      this.prefetched += file.size;
      running++;
      void this.fetchFile(file, false, true).catch(() => {
        this.prefetched -= file.size;
      });
    }
  }

  // ---- status ----

  /** What this page view got from where, and what it served (see `Stats`). */
  stats(): Stats {
    const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
    const navNet = !!nav && nav.transferSize > 0;
    // Where the page's own entry cannot count its navigation, the worker's count of it.
    const navWorker = navNet ? { bytes: 0, requests: 0 } : (this.workerOrigin.nav ?? { bytes: 0, requests: 0 });
    const c = this.transfers?.counters;
    return {
      peerId: this.peerId,
      swarm: this.swarm,
      signal: !!this.peerSet?.signalConnected,
      peers: this.peerSet?.peers.size ?? 0,
      originBytes:
        this.pageOrigin.bytes +
        (this.transfers?.cutBytes ?? 0) +
        this.workerOrigin.bytes +
        (navNet ? bodyBytes(nav) : navWorker.bytes),
      originRequests: this.pageOrigin.requests + this.workerOrigin.requests + (navNet ? 1 : navWorker.requests),
      firstPeerMs: this.peerSet?.firstPeerAt ?? null,
      timeline: { ...this.timeline },
      bytesFromPeers: c?.bytesFromPeers ?? 0,
      bytesFromOrigin: c?.bytesFromOrigin ?? 0,
      bytesFromCache: c?.bytesFromCache ?? 0,
      bytesAdopted: this.bytesAdopted,
      bytesUploaded: this.uploader?.bytes ?? 0,
      badPieces: c?.badPieces ?? 0,
      bans: this.bans,
      failures: c?.failures ?? 0,
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
    return [...(this.peerSet?.peers.values() ?? [])].map((p) => ({
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
    if (this.onHide) {
      this.report();
      document.removeEventListener('visibilitychange', this.onHide);
      removeEventListener('pagehide', this.onLeave);
      removeEventListener('beforeunload', this.onLeave);
    }
    this.resourceObserver?.disconnect();
    this.peerSet?.destroy();
    this.transfers?.destroy();
  }
}
