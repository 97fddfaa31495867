// Piece scheduling, as pure functions (unit-tested in Node; the engine supplies the state).

/** Where each piece of a transfer stands: to do, requested from a peer, verified in place. */
export const PieceState = { Todo: 0, Requested: 1, Verified: 2 } as const;
export type PieceState = (typeof PieceState)[keyof typeof PieceState];

/** The states of a transfer's pieces, one byte each (`states` for the planning functions). */
export class Pieces {
  readonly states: Uint8Array;
  constructor(n: number) {
    this.states = new Uint8Array(n);
  }
  get length(): number {
    return this.states.length;
  }
  get(i: number): PieceState {
    return this.states[i] as PieceState;
  }
  set(i: number, s: PieceState) {
    this.states[i] = s;
  }
  /** Every piece in state `s`. */
  all(s: PieceState): boolean {
    return this.states.every((x) => x === s);
  }
  /** Some piece in state `s`. */
  any(s: PieceState): boolean {
    return this.states.includes(s);
  }
}

/**
 * Which pieces to request from which candidates now. Candidates come best first; each piece
 * still to do goes to the least loaded candidate under `maxInflight` (ties: the better one),
 * so a transfer spreads over every peer that has the content, in parallel.
 * Returns at most `limit` [piece, candidate index] pairs; `inflight` is updated in place.
 * `fromEnd`: last pieces first (beside the origin, which streams from the start); otherwise in
 * order from piece `from` (a reader's position: a media element's playback, a download's
 * progress), wrapping round to the pieces before it. `holds(candidate, piece)`: whether a
 * candidate has a piece (peers still fetching a file hold only some).
 */
export function planRequests(
  state: ArrayLike<number>,
  inflight: number[],
  maxInflight: number,
  limit = Infinity,
  fromEnd = false,
  from = 0,
  holds: (candidate: number, piece: number) => boolean = () => true,
): [number, number][] {
  const out: [number, number][] = [];
  const n = state.length;
  for (let k = 0; k < n && out.length < limit; k++) {
    const piece = fromEnd ? n - 1 - k : (from + k) % n;
    if (state[piece] !== PieceState.Todo) continue;
    let best = -1;
    let room = false;
    for (let i = 0; i < inflight.length; i++) {
      if (inflight[i] >= maxInflight) continue;
      room = true;
      if (holds(i, piece) && (best < 0 || inflight[i] < inflight[best])) best = i;
    }
    if (!room) break;
    if (best < 0) continue; // nobody with room holds this one (a peer still fetching the file)
    inflight[best]++;
    out.push([piece, best]);
  }
  return out;
}

export interface Candidate {
  id: string;
  rtt: number;
}

/**
 * Orders candidates: first those the signaling server's ring named responsible for the content
 * (in its order), then the local ring's order over the connected peers, then lowest RTT.
 */
export function rankPeers<T extends Candidate>(peers: T[], responsible: string[], ringOrder: string[]): T[] {
  const rank = (p: T) => {
    const r = responsible.indexOf(p.id);
    if (r >= 0) return r;
    const o = ringOrder.indexOf(p.id);
    return responsible.length + (o >= 0 ? o : ringOrder.length);
  };
  return [...peers].sort((a, b) => rank(a) - rank(b) || a.rtt - b.rtt);
}

/**
 * The byte range to ask the origin for: from the first piece not verified to the end of the
 * last one (inclusive end, as in a Range header); null when every piece is missing (plain GET)
 * or none is.
 */
export function originRange(state: ArrayLike<number>, pieceSize: number, size: number): [number, number] | null {
  let first = -1;
  let last = -1;
  let verified = 0;
  for (let i = 0; i < state.length; i++) {
    if (state[i] !== PieceState.Verified) {
      if (first < 0) first = i;
      last = i;
    } else verified++;
  }
  if (first < 0) return null;
  if (first === 0 && last === state.length - 1 && verified === 0) return null;
  return [first * pieceSize, Math.min(size, (last + 1) * pieceSize) - 1];
}
