// The page's side of the service worker bridge: answers the worker's fetch requests with the
// engine's verified bytes, and tells it which manifest this page runs.
import type { DeployNet } from './engine';
import type { DeployNetError } from './errors';
import { CONTENT_CACHE } from './store';
import type { RangeReader } from './transfers';

/** The most bytes one answer to the worker's `pull` carries. */
const READ_CHUNK = 1024 * 1024;

/**
 * A ranged read for the worker, over its port: first `{ok, type, size}`, then one answer per
 * `pull` (`{chunk}`: the next verified bytes; `{done}`: the range is complete; `{ok: false}`:
 * this page cannot go on, the worker asks the origin for the rest); `cancel` ends it.
 */
async function serveRange(
  dn: Promise<DeployNet>,
  d: { path: unknown; range: unknown; urgent: unknown },
  port: MessagePort,
) {
  let reader: RangeReader;
  try {
    const [start, end] = d.range as [number, number];
    const opened = (await dn).read(String(d.path), Number(start), Number(end), d.urgent === true);
    reader = opened.reader;
    port.postMessage({ ok: true, type: opened.file.type, size: opened.file.size });
  } catch (err) {
    port.postMessage({ ok: false, error: String(err) });
    return;
  }
  const end = () => {
    reader.close();
    port.close();
  };
  port.onmessage = async (ev: MessageEvent) => {
    if (ev.data?.type === 'cancel') return end();
    if (ev.data?.type !== 'pull') return;
    try {
      const chunk = await reader.next(READ_CHUNK);
      if (!chunk) {
        port.postMessage({ done: true });
        return end();
      }
      port.postMessage({ chunk: chunk.buffer }, [chunk.buffer]);
    } catch (err) {
      port.postMessage({ ok: false, error: String(err) });
      end();
    }
  };
}

export async function attachServiceWorker(dn: Promise<DeployNet>, swUrl: string, manifest: string): Promise<boolean> {
  if (!('serviceWorker' in navigator)) return false;
  const container = navigator.serviceWorker;
  container.addEventListener('message', async (ev: MessageEvent) => {
    if (ev.data?.type !== 'deploynet-fetch' || !ev.ports[0]) return;
    const port = ev.ports[0];
    if (Array.isArray(ev.data.range)) return serveRange(dn, ev.data, port);
    try {
      const res = await (await dn).fetchPath(String(ev.data.path), { urgent: ev.data.urgent !== false });
      const bytes = await res.arrayBuffer(); // a copy: the engine's stored bytes stay intact
      port.postMessage({ ok: true, type: res.headers.get('content-type'), bytes }, [bytes]);
    } catch (err) {
      port.postMessage({ ok: false, error: String(err) });
    }
  });
  // The worker's messages are held until the document is parsed, unless asked for now; and
  // the parser itself waits for assets the worker asks this page for.
  container.startMessages();
  // DeployNet is off for the site: the worker goes, with everything it stored.
  const retireWorker = async () => {
    const scope = new URL('./', new URL(swUrl, location.href)).href;
    await (await container.getRegistration(scope))?.unregister();
    await caches?.delete(CONTENT_CACHE).catch(() => false);
  };
  let engine: DeployNet;
  try {
    engine = await dn;
  } catch (err) {
    // Turned off for the site: the worker goes with everything it stored (it does so itself
    // on its next manifest check; this page may be the first to know).
    if ((err as DeployNetError).code === 'ERR_DISABLED') await retireWorker();
    throw err;
  }
  // Turned off by a signed notice while this page is open: the worker stops intercepting at
  // once (it passes everything through), then goes with everything it stored.
  engine.on('disabled', () => {
    container.controller?.postMessage({ type: 'deploynet-retire' });
    void retireWorker();
  });
  // The first hello to a worker carries the manifest this page just fetched from the origin,
  // so a worker that has none (just installed, or restarted) need not ask the origin again.
  let told: ServiceWorker | null = null;
  const hello = () => {
    const to = container.controller;
    if (!to) return;
    to.postMessage({
      type: 'deploynet-page',
      deployId: engine.index.manifest.deploy_id,
      paths: engine.index.manifest.files.filter((f) => f.size > 0).map((f) => f.path),
      manifest: told === to ? undefined : engine.manifestText,
    });
    told = to;
  };
  container.addEventListener('controllerchange', hello);
  hello();
  // What the worker fetched from the origin for this page (stats().originBytes).
  engine.workerUsage = () =>
    new Promise((resolve, reject) => {
      const to = container.controller;
      if (!to) return resolve({ bytes: 0, requests: 0 });
      const ch = new MessageChannel();
      const t = setTimeout(() => reject(new Error('worker did not answer')), 1000);
      ch.port1.onmessage = (ev) => {
        clearTimeout(t);
        const u = ev.data ?? {};
        const nav = u.nav ?? {};
        resolve({
          bytes: Number(u.bytes) || 0,
          requests: Number(u.requests) || 0,
          nav: { bytes: Number(nav.bytes) || 0, requests: Number(nav.requests) || 0 },
        });
      };
      to.postMessage({ type: 'deploynet-usage' }, [ch.port2]);
    });
  // A worker may be stopped and restarted by the browser at any time, losing what it knew.
  setInterval(hello, 5000);
  addEventListener('pagehide', () => container.controller?.postMessage({ type: 'deploynet-page-gone' }));
  try {
    await container.register(`${swUrl}?manifest=${encodeURIComponent(manifest)}`, {
      scope: new URL('./', new URL(swUrl, location.href)).pathname,
    });
  } catch (err) {
    console.warn('deploynet: service worker registration failed', err);
    return false;
  }
  return true;
}
