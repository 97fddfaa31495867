// Verified content, by content id: in memory for serving peers quickly (bounded), and in the
// Cache API so it survives reloads. Only bytes whose SHA-256 matched the manifest get here.

import { sha256Hex } from './manifest';

export const CONTENT_CACHE = 'deploynet-content-v1';
const CACHE = CONTENT_CACHE;
const PREFIX = '/__deploynet/content/';

/** Entries up to this size are read whole into memory to serve their pieces (bytes). */
const SMALL_BYTES = 8 * 1024 * 1024;
const MAX_BLOBS = 16;

const contentUrl = (id: string) => new URL(PREFIX + id, self.location.origin).href;

/** Verified content from the Cache API, as the service worker serves it (no page needed). */
let opened: Promise<Cache> | null = null;
export async function cachedContent(id: string): Promise<Response | undefined> {
  if (typeof caches === 'undefined') return undefined;
  try {
    opened ??= caches.open(CACHE);
    return await (await opened).match(contentUrl(id));
  } catch {
    opened = null;
    return undefined;
  }
}

/** Removes an entry that failed its check (planted or damaged): it is fetched again. */
export async function dropContent(id: string): Promise<void> {
  if (typeof caches === 'undefined') return;
  try {
    opened ??= caches.open(CACHE);
    await (await opened).delete(contentUrl(id));
  } catch {
    opened = null;
  }
}

export class ContentStore {
  private mem = new Map<string, Uint8Array>();
  private memBytes = 0;
  // Large entries of the Cache API as Blob handles: slices are read from disk, never the whole.
  private blobs = new Map<string, Blob>();
  private cache: Promise<Cache | null>;

  constructor(private maxMemoryBytes = 64 * 1024 * 1024) {
    this.cache = typeof caches === 'undefined' ? Promise.resolve(null) : caches.open(CACHE).catch(() => null);
  }

  private url(id: string) {
    return contentUrl(id);
  }

  private remember(id: string, bytes: Uint8Array) {
    if (this.mem.has(id) || bytes.length > this.maxMemoryBytes) return;
    this.mem.set(id, bytes);
    this.memBytes += bytes.length;
    for (const [old, b] of this.mem) {
      if (this.memBytes <= this.maxMemoryBytes) break;
      this.mem.delete(old);
      this.memBytes -= b.length;
    }
  }

  async put(id: string, bytes: Uint8Array): Promise<void> {
    this.remember(id, bytes);
    const cache = await this.cache;
    if (cache) {
      await cache
        .put(
          this.url(id),
          new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(bytes.length) } }),
        )
        .catch(() => {}); // quota: keep serving from memory
    }
  }

  async get(id: string): Promise<Uint8Array | null> {
    const m = this.mem.get(id);
    if (m) return m;
    const cache = await this.cache;
    const res = cache ? await cache.match(this.url(id)) : undefined;
    if (!res) return null;
    const bytes = new Uint8Array(await res.arrayBuffer());
    // The Cache API is the site's: anything could have been written there. What does not hash
    // to its content id is dropped and fetched again.
    if ((await sha256Hex(bytes)) !== id) {
      await cache?.delete(this.url(id)).catch(() => false);
      return null;
    }
    this.remember(id, bytes);
    return bytes;
  }

  /**
   * Bytes `start`..`end` (exclusive) of verified content: from memory, or read from the Cache
   * API without loading the rest (a 100 MB video's 64 KiB piece costs 64 KiB, not 100 MB).
   */
  async slice(id: string, start: number, end: number): Promise<Uint8Array | null> {
    const m = this.mem.get(id);
    if (m) return m.subarray(start, end);
    let blob = this.blobs.get(id);
    if (!blob) {
      const cache = await this.cache;
      const res = cache ? await cache.match(this.url(id)) : undefined;
      if (!res) return null;
      const length = Number(res.headers.get('content-length'));
      if (Number.isFinite(length) && length <= SMALL_BYTES) {
        const bytes = new Uint8Array(await res.arrayBuffer());
        this.remember(id, bytes);
        return bytes.subarray(start, end);
      }
      blob = await res.blob();
      this.blobs.set(id, blob);
      if (this.blobs.size > MAX_BLOBS) this.blobs.delete(this.blobs.keys().next().value as string);
    }
    return new Uint8Array(await blob.slice(start, end).arrayBuffer());
  }

  /** Content ids held (memory and Cache API). */
  async ids(): Promise<string[]> {
    const out = new Set(this.mem.keys());
    const cache = await this.cache;
    if (cache) {
      for (const req of await cache.keys()) {
        const p = new URL(req.url).pathname;
        if (p.startsWith(PREFIX)) out.add(p.slice(PREFIX.length));
      }
    }
    return [...out];
  }

  /** Drops everything not in `keep` (content of older deploys). Returns how many went. */
  async evictExcept(keep: Set<string>): Promise<number> {
    let n = 0;
    for (const id of [...this.blobs.keys()]) if (!keep.has(id)) this.blobs.delete(id);
    for (const [id, b] of this.mem) {
      if (!keep.has(id)) {
        this.mem.delete(id);
        this.memBytes -= b.length;
      }
    }
    const cache = await this.cache;
    if (cache) {
      for (const req of await cache.keys()) {
        const p = new URL(req.url).pathname;
        if (p.startsWith(PREFIX) && !keep.has(p.slice(PREFIX.length))) {
          await cache.delete(req);
          n++;
        }
      }
    }
    return n;
  }
}
