// deploynet-sw.js: the service worker. It intercepts same-origin GET requests for paths in the
// manifest: verified content this browser holds is served from the cache at once; otherwise the
// page that made the request (which holds the P2P engine: RTCPeerConnection does not exist in
// workers) fetches the verified bytes over a MessageChannel. Range requests (media elements,
// downloads) and large files are answered as streams, in order as pieces verify (206 with its
// Content-Range for a Range). Everything else, and every failure, goes to the network
// untouched: navigations, HEAD requests, multi-range requests, cross-origin URLs, paths
// outside the manifest, pages whose engine is not up yet; a stream the page cannot finish is
// finished by the origin (a Range request for the rest).
//
// Register it at the site root: navigator.serviceWorker.register('/deploynet-sw.js?manifest=/deploynet.json')
/// <reference lib="webworker" />
import { bodyBytes, isOriginFetch, MARKER, type OriginUsage, originFetch } from './origin';
import { parseRange } from './range';
import { isDisabled, type ManifestFile, parseManifest, sha256Hex } from './manifest';
import { CONTENT_CACHE, cachedContent, dropContent } from './store';

const sw = self as unknown as ServiceWorkerGlobalScope;
const MANIFEST = new URL(sw.location.href).searchParams.get('manifest') || '/deploynet.json';
const PAGE_ANSWER_MS = 60_000; // the engine itself falls back to the origin long before this

interface PageInfo {
  deployId: string;
  paths: Set<string>;
}
const pages = new Map<string, PageInfo>(); // by client id
// A file of the manifest (its pieces' SHA-256 check what is read back from the cache).
type SwFile = ManifestFile;
let manifest: {
  deployId: string;
  pieceSize: number;
  paths: Set<string>;
  files: Map<string, SwFile>;
  raw: string; // as the origin sent it: the page's engine gets this copy (below)
  checkedAt: number;
} | null = null;
let loading: Promise<void> | null = null;

let failedAt = -Infinity; // when the last check found no usable manifest
let gone = 0; // manifest checks in a row that found it gone (404, 410)
const GONE_CHECKS = 3;
let retired = false; // turned off: everything passes through untouched

// DeployNet is off for this site: nothing is intercepted any more, what was stored goes, and
// the worker unregisters (pages it controls keep working; the next navigation is uncontrolled).
function retire(why: string) {
  if (retired) return;
  retired = true;
  manifest = null;
  console.info(`deploynet: worker retiring: ${why}`);
  void caches.delete(CONTENT_CACHE).catch(() => false);
  void sw.registration.unregister().catch(() => false);
}
const RETRY_MS = 30_000; // between checks after a failure (navigations check anyway)

// The manifest, checked against the origin (a conditional request). An HTTP error or a
// malformed manifest drops the one held (this deploy's content is unknown: everything passes
// through); a network error keeps it (the content it names is still verified).
function useManifest(raw: string) {
  const m = JSON.parse(raw);
  if (isDisabled(m)) {
    retire('the manifest turns DeployNet off');
    return;
  }
  // The same checks as the page's engine (a manifest it would refuse is not used here either).
  const parsed = parseManifest(m);
  if (parsed.origin !== sw.location.origin) throw new Error('published for another origin');
  const files = new Map<string, SwFile>();
  for (const f of parsed.files) files.set(f.path, f);
  const pieceSize = parsed.piece_size;
  manifest = {
    deployId: parsed.deploy_id,
    pieceSize,
    paths: new Set(files.keys()),
    files,
    raw,
    checkedAt: Date.now(),
  };
}

// `forClient`: the page this check is made for (its navigation), counted as its request.
function loadManifest(forClient = ''): Promise<void> {
  loading ??= (async () => {
    try {
      expect(new URL(MANIFEST, sw.location.origin).href, forClient);
      const res = await originFetch(MANIFEST, { cache: 'no-cache' });
      // A manifest gone for good (404, 410 at three checks in a row): DeployNet was taken off
      // the site without its kill switch; the worker retires all the same.
      gone = res.status === 404 || res.status === 410 ? gone + 1 : 0;
      if (gone >= GONE_CHECKS) retire(`the manifest answered ${res.status} ${gone} times`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      useManifest(await res.text());
    } catch (err) {
      if (!(err instanceof TypeError)) manifest = null; // TypeError: the network failed
      failedAt = Date.now();
    } finally {
      loading = null;
    }
  })();
  return loading;
}

// No manifest request at install: the page that registered this worker hands over the one it
// just fetched (its first message), and every navigation checks it anyway.
sw.addEventListener('install', (e) => e.waitUntil(sw.skipWaiting()));
// Navigation preload: the browser sends a navigation to the network while this worker starts,
// so a page under it is never later than the worker's start-up.
sw.addEventListener('activate', (e) =>
  e.waitUntil(Promise.all([sw.clients.claim(), sw.registration.navigationPreload?.enable()])),
);

sw.addEventListener('message', (e) => {
  const d = e.data;
  const src = e.source as WindowClient | null;
  if (!src || !d || typeof d !== 'object') return;
  if (d.type === 'deploynet-page' && Array.isArray(d.paths)) {
    pages.set(src.id, { deployId: String(d.deployId), paths: new Set(d.paths.map(String)) });
    // None known here (just installed, or restarted): the manifest the page fetched from the
    // origin a moment ago. A page on another deploy than the one known: the origin decides
    // (an old tab must never bring its old manifest back).
    if (!manifest && !loading && typeof d.manifest === 'string') {
      try {
        useManifest(d.manifest);
      } catch {
        /* not usable: the origin's, below */
      }
    }
    if (!manifest || manifest.deployId !== d.deployId) void loadManifest();
  } else if (d.type === 'deploynet-retire') {
    // The page's engine got the site's signed notice turning DeployNet off.
    retire('a signed notice turned DeployNet off');
  } else if (d.type === 'deploynet-page-gone') {
    pages.delete(src.id);
  } else if (d.type === 'deploynet-usage' && e.ports[0]) {
    adoptNavigationUsage(src);
    e.ports[0].postMessage(usage.get(src.id) ?? { bytes: 0, requests: 0 });
  }
});

// What this worker fetched from the origin on each page's behalf (requests it passed through,
// the manifest check of the page's navigation), from its own Resource Timing: the page adds it
// to its own loads, so that its stats() match the origin's access log.
const MAX_TRACKED = 256; // pages (clients) whose counts are kept; the oldest go first
const usage = new Map<string, OriginUsage>();
const awaiting = new Map<string, string[]>(); // request URL -> client ids, in request order

// A request passed to the network on a page's behalf: counted for that page.
function fromNetwork(req: Request, clientId: string): Promise<Response> {
  expect(req.url, clientId);
  return fetch(req);
}

function expect(url: string, clientId: string) {
  if (!clientId) return;
  const ids = awaiting.get(url) ?? [];
  if (ids.length >= MAX_TRACKED) ids.shift();
  ids.push(clientId);
  awaiting.set(url, ids);
  if (awaiting.size > 4 * MAX_TRACKED) awaiting.delete(awaiting.keys().next().value as string);
}

// A navigation's own requests (the manifest check) are counted for the page it creates, by
// `resultingClientId`; a browser without it (Firefox) counts them under the navigation's URL,
// and the page of that URL takes them over when it asks for its counts.
const navigationKey = (url: string) => `nav:${url.split('#')[0]}`;

function adoptNavigationUsage(client: Client) {
  const key = navigationKey(client.url);
  const nav = usage.get(key);
  if (!nav) return;
  usage.delete(key);
  const u = usage.get(client.id) ?? { bytes: 0, requests: 0 };
  const sum = (a = { bytes: 0, requests: 0 }, b = { bytes: 0, requests: 0 }) => ({
    bytes: a.bytes + b.bytes,
    requests: a.requests + b.requests,
  });
  usage.set(client.id, { ...sum(u, nav), nav: u.nav || nav.nav ? sum(u.nav, nav.nav) : undefined });
}

// A preloaded navigation response's body bytes, counted for the page it makes: from its
// Content-Length, or counted as the page reads it.
function countNavigation(res: Response, forPage: string): Response {
  const add = (bytes: number) => {
    const u = usage.get(forPage) ?? { bytes: 0, requests: 0 };
    const nav = u.nav ?? { bytes: 0, requests: 0 };
    usage.set(forPage, { ...u, nav: { bytes: nav.bytes + bytes, requests: nav.requests + 1 } });
    if (usage.size > MAX_TRACKED) usage.delete(usage.keys().next().value as string);
  };
  const length = Number(res.headers.get('content-length'));
  if (!res.body || (res.headers.has('content-length') && Number.isFinite(length))) {
    add(res.body ? length : 0);
    return res;
  }
  let bytes = 0;
  const counted = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        bytes += chunk.byteLength;
        out.enqueue(chunk);
      },
      flush() {
        add(bytes);
      },
    }),
  );
  return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function account(e: PerformanceResourceTiming) {
  const ids = awaiting.get(e.name);
  const id = ids?.shift();
  if (ids && ids.length === 0) awaiting.delete(e.name);
  if (!id || e.transferSize <= 0) return; // not on a page's behalf, or not from the network
  const u = usage.get(id) ?? { bytes: 0, requests: 0 };
  u.bytes += bodyBytes(e);
  u.requests++;
  usage.delete(id);
  usage.set(id, u);
  if (usage.size > MAX_TRACKED) usage.delete(usage.keys().next().value as string);
}

try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) account(e as PerformanceResourceTiming);
    performance.clearResourceTimings(); // the buffer would fill; the observer still sees all
  }).observe({ type: 'resource' });
} catch {
  /* no Resource Timing in workers: pages count their own loads only */
}

interface Reply {
  ok: boolean;
  type?: string;
  bytes?: ArrayBuffer;
  error?: string;
}

// What the page needs before it can render (scripts, styles, fonts, and whatever is not a
// media element's) never waits on peer handshakes: the engine sends it to the origin unless a
// connected peer holds it. Media may wait for a handshake that is nearly done.
const PATIENT = new Set(['image', 'video', 'audio', 'track']);
const isUrgent = (req: Request) => !PATIENT.has(req.destination);

function ask(client: Client, path: string, urgent: boolean): Promise<Reply> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const t = setTimeout(() => resolve({ ok: false, error: 'page did not answer' }), PAGE_ANSWER_MS);
    ch.port1.onmessage = (ev) => {
      clearTimeout(t);
      resolve(ev.data as Reply);
    };
    client.postMessage({ type: 'deploynet-fetch', path, urgent }, [ch.port2]);
  });
}

/** Cached files up to this size are read and checked whole; larger ones piece by piece. */
const WHOLE_CHECK_MAX = 8 * 1024 * 1024;

/**
 * Verified content this browser holds, read back from the Cache API and checked against the
 * manifest before it goes out (a script of the site could have written anything there): whole,
 * with one digest, up to WHOLE_CHECK_MAX; piece by piece as it streams beyond. A mismatch found
 * before the response drops the entry and returns null (the request goes on as if nothing were
 * cached); one found later in a stream drops it and fails the stream.
 */
async function fromCache(file: SwFile, range: [number, number] | null): Promise<Response | null> {
  const cached = await cachedContent(file.sha256);
  if (!cached?.body || !manifest) return null;
  const ps = manifest.pieceSize;
  const [start, end] = range ?? [0, file.size - 1];
  const headers = rangeHeaders(file, [start, end], range !== null, 'cache');
  if (file.size <= WHOLE_CHECK_MAX) {
    // Read whole and hashed at once: one digest, not one per piece (a page's scripts, styles
    // and images come back from the cache at the speed of a read).
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if (bytes.length !== file.size || (await sha256Hex(bytes)) !== file.sha256) {
      void dropContent(file.sha256);
      return null;
    }
    return new Response(bytes.subarray(start, end + 1), { status: range ? 206 : 200, headers });
  }
  const blob = await cached.blob();
  if (blob.size !== file.size) {
    void dropContent(file.sha256);
    return null;
  }
  const piece = async (i: number): Promise<Uint8Array | null> => {
    const bytes = new Uint8Array(await blob.slice(i * ps, Math.min(file.size, (i + 1) * ps)).arrayBuffer());
    return (await sha256Hex(bytes)) === file.pieces[i] ? bytes : null;
  };
  // The part of piece `i` inside the range.
  const part = (i: number, bytes: Uint8Array) =>
    bytes.subarray(Math.max(0, start - i * ps), Math.min(bytes.length, end + 1 - i * ps));
  let next = Math.floor(start / ps);
  const last = Math.floor(end / ps);
  const first = file.size === 0 ? new Uint8Array(0) : await piece(next);
  if (!first) {
    void dropContent(file.sha256);
    return null;
  }
  let held: Uint8Array | null = part(next++, first);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (held) {
        controller.enqueue(held);
        held = null;
      } else if (next > last) {
        controller.close();
      } else {
        const bytes = await piece(next);
        if (!bytes) {
          void dropContent(file.sha256);
          controller.error(new Error(`deploynet: cached ${file.sha256} differs from the manifest`));
          return;
        }
        controller.enqueue(part(next++, bytes));
      }
    },
  });
  return new Response(body, {
    status: range ? 206 : 200,
    headers: rangeHeaders(file, [start, end], range !== null, 'cache'),
  });
}

/** Files this large are streamed to the page as they verify, even without a Range. */
const STREAM_MIN = 4 * 1024 * 1024;
/** How long a page may take to answer one pull of a stream before the origin takes over. */
const CHUNK_ANSWER_MS = 20_000;

function rangeHeaders(file: SwFile, [start, end]: [number, number], ranged: boolean, via: string) {
  const h: Record<string, string> = {
    'content-type': file.type || 'application/octet-stream',
    'content-length': String(end - start + 1),
    'accept-ranges': 'bytes',
    [MARKER]: via,
  };
  if (ranged) h['content-range'] = `bytes ${start}-${end}/${file.size}`;
  return h;
}

/** Talks to a page's ranged read (page.ts: serveRange) over a port: one message per answer. */
function portAsker(port: MessagePort) {
  return (msg: unknown, ms: number) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const t = setTimeout(() => resolve({ ok: false, error: 'page did not answer' }), ms);
      port.onmessage = (ev) => {
        clearTimeout(t);
        resolve((ev.data ?? {}) as Record<string, unknown>);
      };
      if (msg) port.postMessage(msg);
    });
}

/**
 * A range of a file, streamed from the page's engine as it verifies, chunk by chunk as the
 * consumer (a media element, a download) reads: nothing is fetched far ahead of it. If the
 * page fails or goes away midway, the rest comes from the origin in one Range request.
 */
async function streamViaPage(
  client: Client,
  e: FetchEvent,
  path: string,
  file: SwFile,
  range: [number, number],
  ranged: boolean,
): Promise<Response | null> {
  const ch = new MessageChannel();
  const ask = portAsker(ch.port1);
  const head = ask(null, PAGE_ANSWER_MS);
  client.postMessage({ type: 'deploynet-fetch', path, urgent: isUrgent(e.request), range }, [ch.port2]);
  if ((await head).ok !== true) {
    ch.port1.close();
    return null;
  }
  const [, end] = range;
  let pos = range[0];
  let rest: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!rest) {
          const m = await ask({ type: 'pull' }, CHUNK_ANSWER_MS);
          const chunk = m.chunk instanceof ArrayBuffer ? new Uint8Array(m.chunk) : null;
          if (chunk && chunk.length > 0 && pos + chunk.length <= end + 1) {
            pos += chunk.length;
            controller.enqueue(chunk);
            return;
          }
          if (m.done === true && pos === end + 1) {
            ch.port1.close();
            controller.close();
            return;
          }
          ch.port1.postMessage({ type: 'cancel' });
          ch.port1.close();
          const res = await fromNetwork(
            new Request(e.request.url, { headers: { range: `bytes=${pos}-${end}` } }),
            e.clientId,
          );
          if (res.status !== 206 || !res.body || !res.headers.get('content-range')?.startsWith(`bytes ${pos}-`)) {
            controller.error(new Error(`the origin answered ${res.status} for the rest of ${path}`));
            return;
          }
          rest = res.body.getReader();
        }
        const { done, value } = await rest.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel() {
        ch.port1.postMessage({ type: 'cancel' });
        ch.port1.close();
        void rest?.cancel();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 2 }),
  );
  return new Response(body, { status: ranged ? 206 : 200, headers: rangeHeaders(file, range, ranged, 'p2p-engine') });
}

/**
 * A stream asked for before the page's engine is up (a video element reading while its page
 * parses): the origin starts it at once, and once the engine has said hello, the rest comes
 * through the engine (from peers, when they hold it). The consumer sees one response.
 */
async function originThenPage(
  e: FetchEvent,
  path: string,
  file: SwFile,
  range: [number, number] | null,
): Promise<Response> {
  const res = await fromNetwork(e.request, e.clientId);
  const [start, end] = range ?? [0, file.size - 1];
  const whole = range === null;
  const fits = whole
    ? res.status === 200
    : res.status === 206 && res.headers.get('content-range')?.startsWith(`bytes ${start}-`);
  if (!fits || !res.body) return res;
  const origin = res.body.getReader();
  let pos = start;
  let rest: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!rest && pos <= end && pages.get(e.clientId)?.paths.has(path)) {
        const client = await sw.clients.get(e.clientId);
        const via = client ? await streamViaPage(client, e, path, file, [pos, end], true) : null;
        if (via?.body) {
          void origin.cancel().catch(() => {});
          rest = via.body.getReader();
        }
      }
      const { done, value } = await (rest ?? origin).read();
      if (done) {
        controller.close();
        return;
      }
      pos += value.length;
      controller.enqueue(value);
    },
    cancel() {
      void origin.cancel().catch(() => {});
      void rest?.cancel();
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function viaPage(e: FetchEvent, path: string): Promise<Response> {
  const passthrough = () => fromNetwork(e.request, e.clientId);
  // A navigation revalidates the manifest (below): what the cache serves is this deploy's.
  if (loading || (!manifest && Date.now() - failedAt > RETRY_MS)) await loadManifest();
  const file = manifest?.files.get(path);
  if (!file) return passthrough();
  const rangeHeader = e.request.headers.get('range');
  const range = rangeHeader === null ? null : parseRange(rangeHeader, file.size);
  if (rangeHeader !== null && !range) return passthrough();
  // Verified content this browser already holds (from peers, the origin or the HTTP cache of
  // an earlier view) is served here, at once, with no page engine and no request at all.
  const cached = await fromCache(file, range);
  if (cached) return cached;
  // A page whose engine is not up yet cannot get anything from peers sooner than the origin;
  // a stream is handed to the engine once it is up.
  const info = pages.get(e.clientId);
  if (!info?.paths.has(path))
    return range || file.size >= STREAM_MIN ? originThenPage(e, path, file, range) : passthrough();
  const urgent = isUrgent(e.request);
  const client = await sw.clients.get(e.clientId);
  if (!client) return passthrough();
  if (range || file.size >= STREAM_MIN) {
    const whole: [number, number] = [0, file.size - 1];
    return (await streamViaPage(client, e, path, file, range ?? whole, range !== null)) ?? passthrough();
  }
  const reply = await ask(client, path, urgent);
  if (!reply.ok || !reply.bytes) return passthrough();
  return new Response(reply.bytes, {
    status: 200,
    headers: {
      'content-type': reply.type || 'application/octet-stream',
      'content-length': String(reply.bytes.byteLength),
      [MARKER]: 'p2p-engine',
    },
  });
}

// The page's engine asks for the manifest right after its navigation, which checked it
// against the origin a moment ago: it gets that copy instead of a second request. A copy older
// than this is not handed out (the engine then asks the origin itself).
const MANIFEST_FRESH_MS = 10_000;
async function manifestForPage(req: Request, clientId: string): Promise<Response> {
  if (loading) await loading;
  if (!manifest || Date.now() - manifest.checkedAt > MANIFEST_FRESH_MS) return fromNetwork(req, clientId);
  return new Response(manifest.raw, {
    status: 200,
    headers: { 'content-type': 'application/json', [MARKER]: 'worker' },
  });
}

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (retired) return;
  if (req.headers.get(MARKER) === 'manifest' && new URL(req.url).pathname === MANIFEST) {
    e.respondWith(manifestForPage(req, e.clientId).catch(() => fromNetwork(req, e.clientId)));
    return;
  }
  if (req.mode === 'navigate') {
    // Beside the page's own request: a conditional request for the manifest, so that after a
    // deploy no old content is served from the cache. The page is handed over as soon as it
    // arrives: its assets wait for the check in flight (viaPage), the rest of it does not.
    if (new URL(req.url).origin !== sw.location.origin || req.method !== 'GET') return;
    const forPage = e.resultingClientId || navigationKey(req.url);
    e.waitUntil(loadManifest(forPage));
    e.respondWith(
      (async () => {
        const preloaded = (await e.preloadResponse.catch(() => undefined)) as Response | undefined;
        if (preloaded) return countNavigation(preloaded, forPage); // for the page, if its navigation entry cannot
        return fromNetwork(req, forPage);
      })(),
    );
    return;
  }
  if (req.method !== 'GET' || isOriginFetch(req) || !e.clientId) return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin || url.pathname === MANIFEST) return;
  // Known not to be in the manifest: untouched, without even a respondWith.
  if (manifest && !manifest.paths.has(url.pathname)) return;
  e.respondWith(viaPage(e, url.pathname).catch(() => fromNetwork(req, e.clientId)));
});
