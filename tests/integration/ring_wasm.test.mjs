// The WebAssembly build of the routing ring, through the TypeScript wrapper, replays the shared
// vectors (tests/fixtures/ring_vectors.json) that the native build checks in core_tests: the two
// must give the same answers, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(root, 'build/client');
const { Ring, loadRingModule, hexToPeerId, peerIdToHex } = await import(path.join(clientDir, 'ring.mjs'));
const module = await loadRingModule(fs.readFileSync(path.join(clientDir, 'deploynet_ring.wasm')));
const vectors = JSON.parse(fs.readFileSync(path.join(root, 'tests/fixtures/ring_vectors.json'), 'utf8'));

const hexList = (peers) => peers.map(peerIdToHex);

for (const c of vectors.cases) {
  test(`vectors: ${c.name}`, () => {
    const ring = new Ring(module, { vnodes: c.vnodes, loadFactor: c.load_permille / 1000 });
    let n = 0;
    for (const step of c.steps) {
      n++;
      const from = { region: step.region, netPrefix: step.net_prefix };
      const exclude = step.exclude ? hexToPeerId(step.exclude) : undefined;
      let got;
      switch (step.op) {
        case 'add': got = ring.add(hexToPeerId(step.peer), from); break;
        case 'remove': got = ring.remove(hexToPeerId(step.peer)); break;
        case 'route': got = hexList(ring.route(step.key, step.k, { from, exclude })); break;
        case 'assign': got = ring.assign(step.keys, step.k, { from, exclude }).map(hexList); break;
        default: assert.fail(`unknown op ${step.op}`);
      }
      assert.deepEqual(got, step.expect, `${c.name} step ${n} (${step.op})`);
    }
    ring.destroy();
    ring.destroy();  // idempotent
  });
}

test('the wrapper refuses malformed ids with stable codes', () => {
  const ring = new Ring(module);
  assert.throws(() => ring.add('short'), /ERR_PEER_ID/);
  assert.throws(() => ring.add('\u0100'.repeat(20)), /ERR_PEER_ID/);
  assert.throws(() => ring.assign(['zz'], 1), /ERR_CONTENT_ID/);
  assert.throws(() => new Ring(module, { loadFactor: 0.5 }), /ERR_RING_OPTIONS/);
  // A malformed key in route() answers nobody rather than somebody arbitrary.
  ring.add('-DN0001-abcdefghijkl');
  assert.deepEqual(ring.route('not-a-key', 1), []);
  ring.destroy();
  assert.throws(() => ring.size, /ERR_RING_DESTROYED/);
});
