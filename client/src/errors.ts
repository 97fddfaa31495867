// Errors the client raises, each with a stable `.code` (the message starts with it, so logs
// read the same): callers branch on the code, never on the text.

export type ErrorCode =
  | 'ERR_MANIFEST'
  | 'ERR_DISABLED'
  | 'ERR_MANIFEST_ORIGIN'
  | 'ERR_NOT_IN_MANIFEST'
  | 'ERR_ORIGIN'
  | 'ERR_ORIGIN_MISMATCH'
  | 'ERR_PREFETCH'
  | 'ERR_ABANDONED'
  | 'ERR_RANGE'
  | 'ERR_UPDATE';

export class DeployNetError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DeployNetError';
    this.code = code;
  }
}
