// The signaling connection: the WebTorrent tracker protocol over WebSocket (plus DeployNet's
// route requests and targeted offers). Several URLs fail over in turn; a lost connection
// comes back with jittered exponential backoff.

import { Emitter } from './emitter';

export interface SignalOffer {
  peerId: string;
  offerId: string;
  offer: RTCSessionDescriptionInit;
}
export interface SignalAnswer {
  peerId: string;
  offerId: string;
  answer: RTCSessionDescriptionInit;
}
export interface OutOffer {
  offer_id: string;
  offer: RTCSessionDescriptionInit;
  to_peer_id?: string;
}

type Events = {
  open: [url: string];
  close: [];
  offer: [SignalOffer];
  answer: [SignalAnswer];
  route: [routes: { content_id: string; peers: string[] }[], swarmPeers: number];
  announced: [{ complete: number; incomplete: number; interval: number }];
  warning: [string];
  /** DeployNet servers send the site's ICE servers right after the connection opens. */
  ice: [IceInfo];
  /** The site announced a new deploy, or `disabled` (`deploynet notify`, checked by the server). */
  deploy: [deployId: string];
};

export interface IceInfo {
  iceServers: RTCIceServer[];
  policy: RTCIceTransportPolicy;
  /** When TURN credentials in it expire (ms since the epoch). */
  expires?: number;
}

/** The signaling URL with `deploynet` in its query: asks the server for the extension frame. */
export function extensionUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has('deploynet')) u.searchParams.set('deploynet', '1');
    return u.href;
  } catch {
    return url;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a parsed server message, checked field by field
function iceInfo(m: Record<string, any>): IceInfo | null {
  if (!Array.isArray(m.ice_servers)) return null;
  const iceServers: RTCIceServer[] = [];
  for (const s of m.ice_servers.slice(0, 8)) {
    const urls = Array.isArray(s?.urls) ? s.urls.filter((u: unknown) => typeof u === 'string') : [];
    if (urls.length === 0) continue;
    const server: RTCIceServer = { urls };
    if (typeof s.username === 'string') server.username = s.username;
    if (typeof s.credential === 'string') server.credential = s.credential;
    iceServers.push(server);
  }
  return {
    iceServers,
    policy: m.ice_transport_policy === 'relay' ? 'relay' : 'all',
    ...(Number.isSafeInteger(m.expires) ? { expires: m.expires * 1000 } : {}),
  };
}

export interface SignalOptions {
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The secret the peer id derives from (provenPeerId), sent to the server on joining only. */
  peerProof?: string;
}

export class SignalClient extends Emitter<Events> {
  private ws: WebSocket | null = null;
  private urlIndex = 0;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private destroyed = false;
  /** Whether the next message is the first on its socket (the only place ICE servers come). */
  private firstFrame = true;
  connected = false;

  constructor(
    private urls: string[],
    readonly infoHash: string,
    readonly peerId: string,
    private opts: SignalOptions = {},
  ) {
    super();
    if (urls.length === 0) throw new Error('ERR_SIGNAL_URLS: no signaling URL');
    this.connect();
  }

  private connect() {
    if (this.destroyed) return;
    const url = this.urls[this.urlIndex % this.urls.length];
    let ws: WebSocket;
    // The page's inline bootstrap (boot.ts) may have opened this socket already: it is taken
    // over once, with what the server sent on it meanwhile.
    const boot = typeof window === 'undefined' ? undefined : window.DeployNetBoot;
    let held: string[] | null = null; // messages kept until the engine listens
    if (boot && boot.url === url && boot.ws.readyState <= WebSocket.OPEN) {
      window.DeployNetBoot = undefined;
      ws = boot.ws;
      held = boot.queue;
    } else {
      try {
        ws = new WebSocket(extensionUrl(url));
      } catch (err) {
        this.emit('warning', `ERR_SIGNAL_URL: ${url}: ${String(err)}`);
        this.retry();
        return;
      }
    }
    this.ws = ws;
    this.firstFrame = true;
    const opened = () => {
      this.attempt = 0;
      this.connected = true;
      this.emit('open', url);
      const q = held ?? [];
      held = null;
      for (const m of q) this.onMessage(m);
    };
    ws.onopen = opened;
    // Taken over open: said on the next turn, once the engine listens.
    if (ws.readyState === WebSocket.OPEN) setTimeout(() => this.ws === ws && opened());
    ws.onmessage = (ev) => (held ? held.push(ev.data) : this.onMessage(ev.data));
    ws.onclose = () => {
      const was = this.connected;
      this.connected = false;
      this.ws = null;
      if (was) this.emit('close');
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows
  }

  private retry() {
    if (this.destroyed || this.timer) return;
    this.urlIndex++; // next URL first: fail over before backing off on the same one
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = base / 2 + (Math.random() * base) / 2; // jitter: spread reconnect storms
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  private onMessage(data: unknown) {
    const first = this.firstFrame;
    this.firstFrame = false;
    if (typeof data !== 'string') return;
    // biome-ignore lint/suspicious/noExplicitAny: a parsed server message, checked field by field
    let m: Record<string, any>;
    try {
      m = JSON.parse(data);
    } catch {
      this.emit('warning', 'ERR_SIGNAL_JSON: invalid message from the signaling server');
      return;
    }
    if (m['failure reason']) {
      this.emit('warning', `ERR_SIGNAL_FAILURE: ${String(m['failure reason'])}`);
      return;
    }
    if (m.action === 'deploynet') {
      // The server sends it right after the handshake, before anything else: one arriving later
      // is not the server's (a relayed frame naming another TURN server) and is not used.
      if (!first) {
        this.emit('warning', 'ERR_SIGNAL_ICE_LATE: ICE servers after the first frame, ignored');
        return;
      }
      const ice = iceInfo(m);
      if (ice) this.emit('ice', ice);
      return;
    }
    if (m.action === 'deploy') {
      // Pushed by the server to this site's pages once the site's key signed it. Only a
      // hint: the new manifest is fetched from the origin and checked like any other.
      // `disabled`: the site's owner turned DeployNet off (the kill switch).
      if (typeof m.deploy_id === 'string' && /^([0-9a-f]{32}|disabled)$/.test(m.deploy_id))
        this.emit('deploy', m.deploy_id);
      return;
    }
    if (m.info_hash !== this.infoHash) return;
    if (m.action === 'route' && Array.isArray(m.routes)) {
      this.emit('route', m.routes, Number(m.peers) || 0);
    } else if (m.action === 'announce') {
      if (m.offer && typeof m.peer_id === 'string' && typeof m.offer_id === 'string') {
        this.emit('offer', { peerId: m.peer_id, offerId: m.offer_id, offer: m.offer });
      } else if (m.answer && typeof m.peer_id === 'string' && typeof m.offer_id === 'string') {
        this.emit('answer', { peerId: m.peer_id, offerId: m.offer_id, answer: m.answer });
      } else if (typeof m.interval === 'number') {
        this.emit('announced', { complete: m.complete ?? 0, incomplete: m.incomplete ?? 0, interval: m.interval });
      }
    }
  }

  private send(obj: object): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  announce(extra: { event?: string; offers?: OutOffer[]; numwant?: number; region?: string; left?: number }) {
    const proof = extra.event === 'started' && this.opts.peerProof ? { peer_proof: this.opts.peerProof } : {};
    return this.send({
      action: 'announce',
      info_hash: this.infoHash,
      peer_id: this.peerId,
      uploaded: 0,
      downloaded: 0,
      left: extra.left ?? 1,
      ...proof,
      ...extra,
    });
  }

  answer(toPeerId: string, offerId: string, answer: RTCSessionDescriptionInit) {
    return this.send({
      action: 'announce',
      info_hash: this.infoHash,
      peer_id: this.peerId,
      to_peer_id: toPeerId,
      offer_id: offerId,
      answer,
    });
  }

  /** DeployNet extension: this page view's byte counts so far, for the site's savings figures. */
  report(origin: string, c: { fromPeers: number; fromOrigin: number; fromCache: number; uploaded: number }) {
    return this.send({
      action: 'report',
      info_hash: this.infoHash,
      peer_id: this.peerId,
      origin,
      from_peers: c.fromPeers,
      from_origin: c.fromOrigin,
      from_cache: c.fromCache,
      uploaded: c.uploaded,
    });
  }

  route(contentIds: string[], k: number) {
    return this.send({ action: 'route', info_hash: this.infoHash, peer_id: this.peerId, content_ids: contentIds, k });
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ws) {
      this.send({ action: 'announce', info_hash: this.infoHash, peer_id: this.peerId, event: 'stopped' });
      this.ws.close();
    }
    this.ws = null;
    this.connected = false;
  }
}
