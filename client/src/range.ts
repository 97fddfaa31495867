// HTTP Range requests as the service worker answers them (RFC 9110 §14): one byte range.

/**
 * A Range header's one range as [start, end] (inclusive) within `size`; null for what this
 * worker leaves to the origin (several ranges, other units, unsatisfiable: the origin's 416).
 */
export function parseRange(header: string, size: number): [number, number] | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '') || size === 0) return null;
  if (m[1] === '') {
    const n = Number(m[2]); // the last n bytes
    return n > 0 ? [Math.max(0, size - n), size - 1] : null;
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start <= end && start < size ? [start, end] : null;
}
