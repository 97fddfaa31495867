// What the origin delivers to this page, measured from Resource Timing (the page's own loads,
// DeployNet's origin fetches among them): time to first byte and throughput, as moving
// averages. The delivery policy compares it with what peers would take.

const ALPHA = 0.3; // weight of a new sample
const MIN_RATE_BYTES = 16_384; // smaller bodies say little about throughput

export interface TimingLike {
  name: string;
  requestStart: number;
  responseStart: number;
  responseEnd: number;
  transferSize: number;
  encodedBodySize: number;
}

export class OriginMeter {
  /** ms from request to first byte (NaN: not measured yet). */
  ttfb = NaN;
  /** bytes per ms while the body arrives (NaN: not measured yet). */
  rate = NaN;
  samples = 0;

  constructor(private origin: string) {}

  add(e: TimingLike) {
    // Only what really came over the network from this origin (not caches, not the worker).
    if (!e.name.startsWith(`${this.origin}/`) || e.transferSize <= 0 || e.requestStart <= 0) return;
    const ttfb = e.responseStart - e.requestStart;
    if (ttfb >= 0) this.ttfb = Number.isNaN(this.ttfb) ? ttfb : (1 - ALPHA) * this.ttfb + ALPHA * ttfb;
    const ms = e.responseEnd - e.responseStart;
    if (e.encodedBodySize >= MIN_RATE_BYTES && ms > 0) {
      const rate = e.encodedBodySize / ms;
      this.rate = Number.isNaN(this.rate) ? rate : (1 - ALPHA) * this.rate + ALPHA * rate;
    }
    this.samples++;
  }

  /** ms the origin is expected to take for `size` bytes; `fallbackRate` when unmeasured. */
  expected(size: number, fallbackRate = 5_000): number {
    const ttfb = Number.isNaN(this.ttfb) ? 0 : this.ttfb;
    const rate = Number.isNaN(this.rate) ? fallbackRate : this.rate;
    return ttfb + size / Math.max(rate, 1);
  }
}
