// The peer wire protocol: binary messages on one ordered, reliable RTCDataChannel.
//
// Every message starts with a one-byte type; integers are big-endian; content ids are the
// 32 raw bytes of the SHA-256 (hex strings in the API). Lengths are exact: anything else is a
// protocol error and closes that peer (never anything more).
//
//   1 hello    version u8 | deploy id 16 | count u16 | count x content id 32
//   2 have     content id 32
//   3 request  req id u32 | content id 32 | piece u32
//   4 piece    req id u32 | piece u32 | offset u32 | data (1..MAX_CHUNK bytes)
//   5 cancel   req id u32
//   6 reject   req id u32 | reason u8 (1 busy, 2 missing, 3 invalid)
//   7 ping     nonce u32
//   8 pong     nonce u32
//   9 pieces   content id 32 | count u32 | bitfield ceil(count / 8): the pieces of a file this
//              peer holds while it is still fetching it (bit i, most significant first, is
//              piece i; the bits past count are zero); it replaces the last one for that id,
//              and a `have` for the id supersedes it
//
// A piece (the manifest's piece size, 64 KiB by default) travels as chunks of at most
// MAX_CHUNK bytes, so messages stay at sizes every browser's SCTP stack handles well.

// 2: `pieces` (partial files offered as they verify). Peers of another version close the
// channel after the hello: they ignore each other.
export const PROTOCOL_VERSION = 2;
export const MAX_CHUNK = 32 * 1024;
export const MAX_HELLO_IDS = 1024;
/** Pieces a `pieces` message may describe: 16 GiB at the default 64 KiB piece size. */
export const MAX_PIECES = 262_144;

export type RejectReason = 'busy' | 'missing' | 'invalid';

export type WireMessage =
  | { type: 'hello'; version: number; deployId: string; have: string[] }
  | { type: 'have'; contentId: string }
  | { type: 'request'; reqId: number; contentId: string; piece: number }
  | { type: 'piece'; reqId: number; piece: number; offset: number; data: Uint8Array }
  | { type: 'cancel'; reqId: number }
  | { type: 'reject'; reqId: number; reason: RejectReason }
  | { type: 'ping'; nonce: number }
  | { type: 'pong'; nonce: number }
  | { type: 'pieces'; contentId: string; count: number; bits: Uint8Array };

export class WireError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

const TYPES = ['', 'hello', 'have', 'request', 'piece', 'cancel', 'reject', 'ping', 'pong', 'pieces'] as const;
const REASONS: RejectReason[] = ['busy', 'missing', 'invalid'];
const HEX = '0123456789abcdef';

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

/** Whether bit `i` of a `pieces` bitfield is set. */
export function hasBit(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3] & (0x80 >> (i & 7))) !== 0;
}

export function hexToBytes(hex: string, length: number): Uint8Array {
  if (hex.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new WireError('ERR_WIRE_ID', `expected ${length * 2} hex digits`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new WireError('ERR_WIRE_RANGE', what);
  return n;
}

export function encode(m: WireMessage): Uint8Array {
  let out: Uint8Array;
  let v: DataView;
  switch (m.type) {
    case 'hello': {
      if (m.have.length > MAX_HELLO_IDS) throw new WireError('ERR_WIRE_RANGE', 'too many ids in hello');
      out = new Uint8Array(20 + 32 * m.have.length);
      v = new DataView(out.buffer);
      out[0] = 1;
      out[1] = m.version;
      out.set(hexToBytes(m.deployId, 16), 2);
      v.setUint16(18, m.have.length);
      m.have.forEach((id, i) => {
        out.set(hexToBytes(id, 32), 20 + 32 * i);
      });
      return out;
    }
    case 'have':
      out = new Uint8Array(33);
      out[0] = 2;
      out.set(hexToBytes(m.contentId, 32), 1);
      return out;
    case 'request':
      out = new Uint8Array(41);
      v = new DataView(out.buffer);
      out[0] = 3;
      v.setUint32(1, u32(m.reqId, 'reqId'));
      out.set(hexToBytes(m.contentId, 32), 5);
      v.setUint32(37, u32(m.piece, 'piece'));
      return out;
    case 'piece':
      if (m.data.length < 1 || m.data.length > MAX_CHUNK) throw new WireError('ERR_WIRE_RANGE', 'chunk size');
      out = new Uint8Array(13 + m.data.length);
      v = new DataView(out.buffer);
      out[0] = 4;
      v.setUint32(1, u32(m.reqId, 'reqId'));
      v.setUint32(5, u32(m.piece, 'piece'));
      v.setUint32(9, u32(m.offset, 'offset'));
      out.set(m.data, 13);
      return out;
    case 'cancel':
    case 'ping':
    case 'pong':
      out = new Uint8Array(5);
      out[0] = TYPES.indexOf(m.type);
      new DataView(out.buffer).setUint32(1, u32(m.type === 'cancel' ? m.reqId : m.nonce, 'id'));
      return out;
    case 'pieces': {
      const n = Math.ceil(m.count / 8);
      if (!Number.isInteger(m.count) || m.count < 1 || m.count > MAX_PIECES || m.bits.length !== n) {
        throw new WireError('ERR_WIRE_RANGE', 'pieces count');
      }
      if (m.count % 8 && m.bits[n - 1] & (0xff >> (m.count % 8)))
        throw new WireError('ERR_WIRE_RANGE', 'bits past count');
      out = new Uint8Array(37 + n);
      out[0] = 9;
      out.set(hexToBytes(m.contentId, 32), 1);
      new DataView(out.buffer).setUint32(33, m.count);
      out.set(m.bits, 37);
      return out;
    }
    case 'reject':
      out = new Uint8Array(6);
      out[0] = 6;
      new DataView(out.buffer).setUint32(1, u32(m.reqId, 'reqId'));
      out[5] = REASONS.indexOf(m.reason) + 1;
      return out;
  }
}

function need(b: Uint8Array, n: number, exact: boolean) {
  if (exact ? b.length !== n : b.length < n) {
    throw new WireError('ERR_WIRE_LENGTH', `type ${b[0]}: ${b.length} bytes`);
  }
}

export function decode(input: ArrayBuffer | Uint8Array): WireMessage {
  const b = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (b.length === 0) throw new WireError('ERR_WIRE_LENGTH', 'empty message');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (b[0]) {
    case 1: {
      need(b, 20, false);
      const count = v.getUint16(18);
      if (count > MAX_HELLO_IDS) throw new WireError('ERR_WIRE_RANGE', 'too many ids in hello');
      need(b, 20 + 32 * count, true);
      const have: string[] = [];
      for (let i = 0; i < count; i++) have.push(bytesToHex(b.subarray(20 + 32 * i, 52 + 32 * i)));
      return { type: 'hello', version: b[1], deployId: bytesToHex(b.subarray(2, 18)), have };
    }
    case 2:
      need(b, 33, true);
      return { type: 'have', contentId: bytesToHex(b.subarray(1, 33)) };
    case 3:
      need(b, 41, true);
      return {
        type: 'request',
        reqId: v.getUint32(1),
        contentId: bytesToHex(b.subarray(5, 37)),
        piece: v.getUint32(37),
      };
    case 4: {
      need(b, 14, false);
      if (b.length > 13 + MAX_CHUNK) throw new WireError('ERR_WIRE_LENGTH', 'chunk too large');
      return {
        type: 'piece',
        reqId: v.getUint32(1),
        piece: v.getUint32(5),
        offset: v.getUint32(9),
        data: b.subarray(13),
      };
    }
    case 5:
    case 7:
    case 8: {
      need(b, 5, true);
      const n = v.getUint32(1);
      if (b[0] === 5) return { type: 'cancel', reqId: n };
      return b[0] === 7 ? { type: 'ping', nonce: n } : { type: 'pong', nonce: n };
    }
    case 6: {
      need(b, 6, true);
      const reason = REASONS[b[5] - 1];
      if (!reason) throw new WireError('ERR_WIRE_RANGE', `reject reason ${b[5]}`);
      return { type: 'reject', reqId: v.getUint32(1), reason };
    }
    case 9: {
      need(b, 37, false);
      const count = v.getUint32(33);
      if (count < 1 || count > MAX_PIECES) throw new WireError('ERR_WIRE_RANGE', `pieces count ${count}`);
      const n = Math.ceil(count / 8);
      need(b, 37 + n, true);
      // Canonical only: the bits past the count are zero.
      if (count % 8 && b[36 + n] & (0xff >> (count % 8))) throw new WireError('ERR_WIRE_RANGE', 'bits past count');
      return { type: 'pieces', contentId: bytesToHex(b.subarray(1, 33)), count, bits: b.slice(37) };
    }
    default:
      throw new WireError('ERR_WIRE_TYPE', `unknown message type ${b[0]}`);
  }
}
