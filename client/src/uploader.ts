// The uploader: serves pieces of verified content to peers that ask, in chunks, within a cap
// on uploads at once (more are answered `busy`) and an optional byte rate for all of them.

import type { ManifestIndex } from './manifest';
import { MAX_CHUNK, type WireMessage } from './wire';

/** What serving needs of a connected peer (peer.ts). */
export interface UploadLink {
  readonly id: string;
  readonly closed: boolean;
  send(m: WireMessage): boolean;
  /** Resolves once the channel's send buffer has room. */
  drained(): Promise<void>;
}

/** A rate limit for all uploads together (bytes per second; 0: none). */
class TokenBucket {
  private tokens: number;
  private last = performance.now();
  constructor(private rate: number) {
    this.tokens = rate;
  }
  async take(n: number) {
    if (this.rate <= 0) return;
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= n || this.tokens >= this.rate) {
        this.tokens -= n;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((n - this.tokens) / this.rate) * 1000)));
    }
  }
}

export class Uploader {
  /** Bytes served to peers. */
  bytes = 0;
  private uploads = 0;
  // Uploads in progress, by `${peer}:${reqId}`: a cancel marks one; a cancel for anything else
  // is ignored (so a peer cannot grow this by sending cancels).
  private serving = new Map<string, { cancelled: boolean }>();
  private bucket: TokenBucket;

  constructor(
    private index: ManifestIndex,
    private store: { slice(id: string, start: number, end: number): Promise<Uint8Array | null> },
    private maxUploads: number,
    uploadLimit: number,
  ) {
    this.bucket = new TokenBucket(uploadLimit);
  }

  /** A peer asked for a piece. */
  async serve(peer: UploadLink, reqId: number, contentId: string, piece: number) {
    const file = this.index.byId.get(contentId);
    if (!file || piece >= file.pieces.length) {
      peer.send({ type: 'reject', reqId, reason: file ? 'invalid' : 'missing' });
      return;
    }
    if (this.uploads >= this.maxUploads) {
      peer.send({ type: 'reject', reqId, reason: 'busy' });
      return;
    }
    const key = `${peer.id}:${reqId}`;
    if (this.serving.has(key)) {
      peer.send({ type: 'reject', reqId, reason: 'invalid' });
      return;
    }
    const up = { cancelled: false };
    this.serving.set(key, up);
    this.uploads++;
    try {
      const at = piece * this.index.manifest.piece_size;
      const len = this.index.pieceLength(file, piece);
      const bytes = await this.store.slice(contentId, at, at + len);
      if (!bytes || bytes.length !== len) {
        peer.send({ type: 'reject', reqId, reason: 'missing' });
        return;
      }
      for (let off = 0; off < len; off += MAX_CHUNK) {
        if (up.cancelled || peer.closed) return;
        const n = Math.min(MAX_CHUNK, len - off);
        await this.bucket.take(n);
        await peer.drained();
        const data = bytes.subarray(off, off + n);
        if (!peer.send({ type: 'piece', reqId, piece, offset: off, data })) return;
        this.bytes += n;
      }
    } finally {
      this.uploads--;
      this.serving.delete(key);
    }
  }

  /** A peer no longer wants what it asked for. */
  cancel(peer: UploadLink, reqId: number) {
    const up = this.serving.get(`${peer.id}:${reqId}`);
    if (up) up.cancelled = true;
  }
}
