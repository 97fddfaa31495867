// The manifest (deploynet.json, written by `deploynet publish`): the root of trust. Checked
// for shape here; every byte from peers is then checked against its piece hashes.

import { bytesToHex } from './wire';

export interface ManifestFile {
  path: string;
  sha256: string;
  size: number;
  type: string;
  pieces: string[];
}

export interface Manifest {
  version: 1;
  origin: string;
  deploy_id: string;
  piece_size: number;
  files: ManifestFile[];
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The kill switch: a manifest replaced by `{"disabled":true}` turns DeployNet off for the site.
 * Pages load over HTTP, the worker passes everything through and unregisters itself, and the
 * bootstrap of later views opens no socket (OFF_KEY in localStorage) until a real manifest is
 * back.
 */
export const isDisabled = (json: unknown): boolean =>
  !!json && typeof json === 'object' && (json as { disabled?: unknown }).disabled === true;
export const OFF_KEY = 'deploynet-off';

export function parseManifest(json: unknown): Manifest {
  const bad = (why: string): never => {
    throw new Error(`ERR_MANIFEST: ${why}`);
  };
  const m = json as Manifest;
  if (!m || typeof m !== 'object') bad('not an object');
  if (m.version !== 1) bad(`unsupported version ${String(m.version)}`);
  if (typeof m.deploy_id !== 'string' || !/^[0-9a-f]{32}$/.test(m.deploy_id)) bad('deploy_id');
  if (!Number.isInteger(m.piece_size) || m.piece_size < 1024) bad('piece_size');
  if (!Array.isArray(m.files)) bad('files');
  for (const f of m.files) {
    if (typeof f.path !== 'string' || !f.path.startsWith('/')) bad('file path');
    if (typeof f.sha256 !== 'string' || !HEX64.test(f.sha256)) bad(`sha256 of ${f.path}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) bad(`size of ${f.path}`);
    if (!Array.isArray(f.pieces) || f.pieces.length !== Math.ceil(f.size / m.piece_size)) {
      bad(`pieces of ${f.path}`);
    }
    for (const p of f.pieces) if (typeof p !== 'string' || !HEX64.test(p)) bad(`piece hash of ${f.path}`);
  }
  return m;
}

export class ManifestIndex {
  readonly byPath = new Map<string, ManifestFile>();
  readonly byId = new Map<string, ManifestFile>();
  constructor(readonly manifest: Manifest) {
    for (const f of manifest.files) {
      this.byPath.set(f.path, f);
      if (f.size > 0) this.byId.set(f.sha256, f);
    }
  }
  /** The file for a URL path; '/dir/' also matches '/dir/index.html'. */
  lookup(path: string): ManifestFile | undefined {
    return this.byPath.get(path) ?? (path.endsWith('/') ? this.byPath.get(`${path}index.html`) : undefined);
  }
  /**
   * A newer deploy's files, admitted by content id only (never by path: this page keeps its
   * own deploy's files for its paths): they can then be fetched, held, announced and served to
   * peers. Returns the files this index did not have; none when the piece size differs.
   */
  admit(next: Manifest): ManifestFile[] {
    if (next.piece_size !== this.manifest.piece_size) return [];
    const fresh: ManifestFile[] = [];
    for (const f of next.files) {
      if (f.size === 0 || this.byId.has(f.sha256)) continue;
      this.byId.set(f.sha256, f);
      fresh.push(f);
    }
    return fresh;
  }
  pieceLength(f: ManifestFile, piece: number): number {
    const ps = this.manifest.piece_size;
    return Math.min(ps, f.size - piece * ps);
  }
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>)));
}
