// deploynet-sw.js: the service worker. It intercepts same-origin GET requests for paths in the
// manifest and has the page that made them (which holds the P2P engine: RTCPeerConnection does
// not exist in workers) fetch the verified bytes over a MessageChannel. Everything else, and
// every failure, goes to the network untouched: navigations, Range and HEAD requests,
// cross-origin URLs, paths outside the manifest, pages without a running engine.
//
// Register it at the site root: navigator.serviceWorker.register('/deploynet-sw.js?manifest=/deploynet.json')
/// <reference lib="webworker" />
import { isOriginFetch, MARKER, originFetch } from './origin';

const sw = self as unknown as ServiceWorkerGlobalScope;
const MANIFEST = new URL(sw.location.href).searchParams.get('manifest') || '/deploynet.json';
const PAGE_WAIT_MS = 2000;      // for the page's engine to say it is up
const PAGE_ANSWER_MS = 60_000;  // the engine itself falls back to the origin long before this

interface PageInfo { deployId: string; paths: Set<string> }
const pages = new Map<string, PageInfo>(); // by client id
const waiting = new Map<string, (() => void)[]>();
let manifest: { deployId: string; paths: Set<string> } | null = null;
let loading: Promise<void> | null = null;

function loadManifest(): Promise<void> {
  loading ??= (async () => {
    try {
      const res = await originFetch(MANIFEST, { cache: 'no-cache' });
      if (!res.ok) return;
      const m = await res.json();
      manifest = { deployId: String(m.deploy_id), paths: new Set((m.files ?? []).map((f: { path: string }) => f.path)) };
    } catch {
      // no manifest: everything passes through
    } finally {
      loading = null;
    }
  })();
  return loading;
}

sw.addEventListener('install', (e) => e.waitUntil(Promise.all([sw.skipWaiting(), loadManifest()])));
sw.addEventListener('activate', (e) => e.waitUntil(sw.clients.claim()));

sw.addEventListener('message', (e) => {
  const d = e.data;
  const src = e.source as WindowClient | null;
  if (!src || !d || typeof d !== 'object') return;
  if (d.type === 'deploynet-page' && Array.isArray(d.paths)) {
    pages.set(src.id, { deployId: String(d.deployId), paths: new Set(d.paths.map(String)) });
    // A page on a newer deploy than the one known here: take its manifest's paths.
    if (!manifest || manifest.deployId !== d.deployId) void loadManifest();
    for (const fn of waiting.get(src.id) ?? []) fn();
    waiting.delete(src.id);
  } else if (d.type === 'deploynet-page-gone') {
    pages.delete(src.id);
  }
});

function pageReady(clientId: string): Promise<PageInfo | undefined> {
  const info = pages.get(clientId);
  if (info) return Promise.resolve(info);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(pages.get(clientId)), PAGE_WAIT_MS);
    const list = waiting.get(clientId) ?? [];
    list.push(() => { clearTimeout(t); resolve(pages.get(clientId)); });
    waiting.set(clientId, list);
  });
}

interface Reply { ok: boolean; type?: string; bytes?: ArrayBuffer; error?: string }

function ask(client: Client, path: string): Promise<Reply> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const t = setTimeout(() => resolve({ ok: false, error: 'page did not answer' }), PAGE_ANSWER_MS);
    ch.port1.onmessage = (ev) => { clearTimeout(t); resolve(ev.data as Reply); };
    client.postMessage({ type: 'deploynet-fetch', path }, [ch.port2]);
  });
}

async function viaPage(e: FetchEvent, path: string): Promise<Response> {
  const passthrough = () => fetch(e.request);
  if (!manifest) await loadManifest();
  if (!manifest?.paths.has(path)) return passthrough();
  const info = await pageReady(e.clientId);
  if (!info?.paths.has(path)) return passthrough();
  const client = await sw.clients.get(e.clientId);
  if (!client) return passthrough();
  const reply = await ask(client, path);
  if (!reply.ok || !reply.bytes) return passthrough();
  return new Response(reply.bytes, {
    status: 200,
    headers: { 'content-type': reply.type || 'application/octet-stream', 'content-length': String(reply.bytes.byteLength),
      [MARKER]: 'p2p-engine' },
  });
}

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET' || req.mode === 'navigate' || req.headers.has('range') ||
      isOriginFetch(req) || !e.clientId) return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin || url.pathname === MANIFEST) return;
  // Known not to be in the manifest: untouched, without even a respondWith.
  if (manifest && !manifest.paths.has(url.pathname)) return;
  e.respondWith(viaPage(e, url.pathname).catch(() => fetch(req)));
});
