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
