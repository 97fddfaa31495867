// Bundles the browser client with esbuild into build/client/:
//   deploynet.mjs (ES module), deploynet.js (classic script, global `DeployNet`),
//   deploynet-sw.js (service worker), deploynet-boot.js (the inline bootstrap), deploynet_ring.wasm (copied), ring.mjs, scheduler.mjs, policy.mjs, transfers.mjs, range.mjs, signal.mjs and
//   wire.mjs (tests, bench).
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'build/client');
const wasmDir = path.join(root, 'build/wasm');
fs.mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  // Every visitor downloads these before peers can help: as small as esbuild makes them.
  minify: true,
  target: 'es2020',
  sourcemap: true,
  logLevel: 'warning',
  alias: { 'deploynet-ring-wasm': path.join(wasmDir, 'deploynet_ring.mjs') },
};
const entries = [
  { entryPoints: ['client/src/index.ts'], format: 'esm', outfile: `${out}/deploynet.mjs` },
  { entryPoints: ['client/src/script.ts'], format: 'iife', globalName: 'DeployNet',
    // The ring module only reads import.meta.url to locate its .wasm; the client always hands
    // it the bytes instead, so the empty import.meta of a classic script is harmless.
    logOverride: { 'empty-import-meta': 'silent' },
    outfile: `${out}/deploynet.js`, footer: { js: 'DeployNet = DeployNet.DeployNet || DeployNet;' } },
  { entryPoints: ['client/src/sw.ts'], format: 'iife', outfile: `${out}/deploynet-sw.js` },
  // The inline bootstrap `deploynet init` writes into pages (no source map: it is inlined).
  { entryPoints: ['client/src/boot.ts'], format: 'iife', outfile: `${out}/deploynet-boot.js`, sourcemap: false },
  // For the Node tests and benchmarks:
  { entryPoints: ['client/src/ring.ts'], format: 'esm', outfile: `${out}/ring.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/scheduler.ts'], format: 'esm', outfile: `${out}/scheduler.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/policy.ts'], format: 'esm', outfile: `${out}/policy.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/wire.ts'], format: 'esm', outfile: `${out}/wire.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/transfers.ts'], format: 'esm', outfile: `${out}/transfers.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/range.ts'], format: 'esm', outfile: `${out}/range.mjs`, platform: 'neutral' },
  { entryPoints: ['client/src/signal.ts'], format: 'esm', outfile: `${out}/signal.mjs`, platform: 'neutral' },
];
await Promise.all(entries.map((e) => esbuild.build({ ...common, absWorkingDir: root, ...e })));
fs.copyFileSync(path.join(wasmDir, 'deploynet_ring.wasm'), path.join(out, 'deploynet_ring.wasm'));
