// deploynet.js, the classic script a site adds: configured by data attributes (or a
// `window.DeployNetConfig` object), it starts the engine and the service worker bridge.
//
//   <script src="/deploynet.js" data-signal="wss://signal.example"></script>
//
// On a visitor's very first page view no service worker controls the page yet. With
// data-first-visit="reload" the page stops loading, installs the worker and reloads once
// (marked in sessionStorage, so never twice), so that even the first view's assets can come
// from peers; by default ("none") the first view loads over HTTP and later ones use peers.
import { DeployNet, type DeployNetOptions } from './engine';
import { attachServiceWorker } from './page';

export * from './index';
export { attachServiceWorker } from './page';

interface ScriptConfig extends DeployNetOptions {
  sw?: string;
  firstVisit?: 'reload' | 'none';
}

declare global {
  interface Window {
    DeployNetConfig?: ScriptConfig;
    deploynet?: Promise<DeployNet | null>;
  }
}

function fromDataset(d: DOMStringMap): ScriptConfig {
  const num = (v?: string) => (v === undefined || v === '' ? undefined : Number(v));
  const c: ScriptConfig = {
    signal: d.signal
      ? d.signal
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    manifest: d.manifest,
    sw: d.sw,
    region: d.region,
    ringWasm: d.ringWasm,
    firstVisit: d.firstVisit === 'reload' ? 'reload' : undefined,
    firstByteTimeout: num(d.firstByteTimeout),
    maxPeers: num(d.maxPeers),
    prefetchBytes: num(d.prefetchBytes),
    uploadLimit: num(d.uploadLimit),
    p2p: d.p2p === 'off' ? false : undefined,
    hedge: d.hedge === 'off' ? false : undefined,
    iceTransportPolicy: d.iceTransportPolicy === 'relay' ? 'relay' : undefined,
    debug: d.debug !== undefined && d.debug !== 'false' ? true : undefined,
  };
  for (const k of Object.keys(c) as (keyof ScriptConfig)[]) if (c[k] === undefined) delete c[k];
  return c;
}

const RELOADED = 'deploynet-first-visit';

/** The worker controls the directory it is in (the site's base path). */
function scopeOf(sw: string): string {
  return new URL('./', new URL(sw, location.href)).pathname;
}

async function boot(cfg: ScriptConfig): Promise<DeployNet | null> {
  const manifest = cfg.manifest ?? '/deploynet.json';
  const sw = cfg.sw === undefined ? '/deploynet-sw.js' : cfg.sw;
  const swOk = !!sw && 'serviceWorker' in navigator;
  if (swOk && cfg.firstVisit === 'reload' && !navigator.serviceWorker.controller && !sessionStorage.getItem(RELOADED)) {
    sessionStorage.setItem(RELOADED, '1');
    window.stop();
    try {
      await navigator.serviceWorker.register(`${sw}?manifest=${encodeURIComponent(manifest)}`, { scope: scopeOf(sw) });
      await Promise.race([
        new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true })),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
    } catch (err) {
      console.warn('deploynet: service worker registration failed; loading over HTTP', err);
    }
    location.reload();
    return null;
  }
  const engine = DeployNet.start(cfg);
  if (swOk) void attachServiceWorker(engine, sw, manifest);
  return engine;
}

const el = document.currentScript as HTMLScriptElement | null;
const config: ScriptConfig = { ...(el ? fromDataset(el.dataset) : {}), ...(window.DeployNetConfig ?? {}) };
if ((el && el.dataset.signal !== undefined) || window.DeployNetConfig) {
  window.deploynet = boot(config).catch((err) => {
    console.warn('deploynet: not started; the site loads over HTTP', err);
    return null;
  });
}
