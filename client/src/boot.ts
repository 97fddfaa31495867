// The inline bootstrap `deploynet init` writes into every page, in place of a script tag
// (a few hundred bytes once minified). Before the page's load event it does one thing: it opens
// the signaling socket, which costs the origin nothing and is open by the time the engine
// wants it. The engine's script is fetched after the load event, so a view that peers cannot
// help (a first view: no channel can open before the page's own files load) pays no origin
// request, no main-thread task and no bandwidth for DeployNet before it has loaded.
//
//   <script data-deploynet data-src="/deploynet.1a2b3c4d.js" data-signal="wss://…" …>BOOT</script>
//
// Every data- attribute is handed to the engine's script (script.ts reads them). With
// data-first-visit="reload" the script is fetched at once: that mode stops the first view to
// install the worker, which only makes sense before the page's own requests.
import type { DeployNet } from './engine';

/** What the bootstrap leaves for the engine: the socket it opened and what arrived on it. */
export interface BootState {
  url: string;
  ws: WebSocket;
  queue: string[];
}

declare global {
  interface Window {
    DeployNetBoot?: BootState;
  }
}

((s, w) => {
  const d = s.dataset;
  const c = w.DeployNetConfig;
  try {
    // No swarm (or the site turned DeployNet off, as the last view learnt): no socket.
    if (c?.p2p === false || d.p2p === 'off' || w.localStorage.getItem('deploynet-off')) throw 0;
    const url = (d.signal as string).split(',')[0].trim();
    const u = new URL(url);
    u.searchParams.set('deploynet', '1');
    const ws = new WebSocket(u.href);
    const queue: string[] = [];
    ws.onmessage = (e) => queue.push(e.data);
    w.DeployNetBoot = { url, ws, queue };
  } catch {
    // No socket yet: the engine opens its own.
  }
  let ready: (v: Promise<DeployNet | null> | null) => void;
  const mine: Promise<DeployNet | null> = new Promise((r) => {
    ready = r;
  });
  w.deploynet = mine;
  const go = () => {
    const e = document.createElement('script');
    for (const a of s.attributes) if (a.name.startsWith('data-')) e.setAttribute(a.name, a.value);
    // script.ts replaces window.deploynet; whoever awaited this one gets the engine too.
    e.onload = () => ready(w.deploynet === mine ? null : (w.deploynet ?? null));
    e.onerror = () => ready(null);
    e.src = d.src as string;
    document.head.appendChild(e);
  };
  if ((c?.firstVisit ?? d.firstVisit) === 'reload' || document.readyState === 'complete') go();
  else w.addEventListener('load', () => setTimeout(go));
})(document.currentScript as HTMLScriptElement, window);
