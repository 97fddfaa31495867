// Requests DeployNet itself makes to the origin carry one header, so that its own service
// worker lets them through instead of routing them back to the P2P engine.
export const MARKER = 'x-deploynet';

export function originFetch(
  url: string | URL,
  init: {
    headers?: Record<string, string>;
    cache?: RequestCache;
    signal?: AbortSignal;
    priority?: 'high' | 'low' | 'auto';
  } = {},
): Promise<Response> {
  return fetch(url, { ...init, headers: { ...init.headers, [MARKER]: 'origin' } });
}

export function isOriginFetch(req: Request): boolean {
  return req.headers.get(MARKER) === 'origin';
}

/** Bytes and requests the origin served (body bytes, as its access log counts them). */
export interface OriginUsage {
  bytes: number;
  requests: number;
  /**
   * The worker's: the navigation response it handed the page from navigation preload, for a
   * browser whose navigation entry says nothing of it (Firefox reports 0 bytes for a page a
   * worker answered); the page counts it only then.
   */
  nav?: { bytes: number; requests: number };
}

/**
 * The body bytes a Resource Timing entry that came over the network took from the origin: its
 * encoded body, or nothing for a revalidation (a 304 carries headers only; the browser then
 * reports the cached body's size with a transfer no larger than the headers).
 */
export function bodyBytes(e: { transferSize: number; encodedBodySize: number }): number {
  return e.transferSize > e.encodedBodySize ? e.encodedBodySize : 0;
}
