// Pattern tiles without the DOM: which window of a long run's pattern the heatmap asks for at its
// size, the tile's cells ready to color (void blocks above the diagonal, the color-scale max with
// the sink left out), the block under the pointer and the caption of a pooled tile.
import { PATTERN_TILE_MAX, type PatternTileMsg, type PatternWindow } from '../../src/shared/protocol';
import type { Pooled, View } from './heatmapMath';

/** A window and the most cells per side to ask for (what requestPatternTile carries). */
export interface TileRequest {
  q0: number;
  q1: number;
  k0: number;
  k1: number;
  size: number;
}

/** A received tile of one head of one run (edges as typed arrays). */
export interface Tile extends PatternWindow {
  runId: number;
  headKey: string;
  /** [rows + 1]: row r covers queries rowEdges[r]..rowEdges[r+1]−1 */
  rowEdges: Int32Array;
  /** [cols + 1]: column c covers keys colEdges[c]..colEdges[c+1]−1 */
  colEdges: Int32Array;
  rows: number;
  cols: number;
  /** [rows, cols] row-major: exact probabilities, or the max over each block when pooled */
  values: Float32Array;
}

/** The tile for a view drawn `res` device px wide: the view's window, at most min(res, PATTERN_TILE_MAX) cells per side. */
export function tileRequest(v: View, res: number): TileRequest {
  return { q0: v.q0, q1: v.q0 + v.n, k0: v.k0, k1: v.k0 + v.n, size: Math.max(1, Math.min(PATTERN_TILE_MAX, Math.floor(res))) };
}

export function sameRequest(a: TileRequest | null, b: TileRequest | null): boolean {
  return !!a && !!b && a.q0 === b.q0 && a.q1 === b.q1 && a.k0 === b.k0 && a.k1 === b.k1 && a.size === b.size;
}

/** Whether a tile answers a request (same window; as many cells as the request allows). */
export function tileAnswers(t: Tile, r: TileRequest): boolean {
  return t.q0 === r.q0 && t.q1 === r.q1 && t.k0 === r.k0 && t.k1 === r.k1 && t.rows === Math.min(r.size, r.q1 - r.q0) && t.cols === Math.min(r.size, r.k1 - r.k0);
}

/** A validated patternTile message as a Tile. */
export function decodeTile(runId: number, headKey: string, m: PatternTileMsg, values: Float32Array): Tile {
  return {
    runId,
    headKey,
    q0: m.q0,
    q1: m.q1,
    k0: m.k0,
    k1: m.k1,
    pooled: m.pooled,
    rowEdges: Int32Array.from(m.rowEdges),
    colEdges: Int32Array.from(m.colEdges),
    rows: m.rowEdges.length - 1,
    cols: m.colEdges.length - 1,
    values,
  };
}

/**
 * The tile's cells for colorize (heatmapMath.colorize reads `cells` and `max`): −1 for a block
 * with no causal entry (its first key comes after its last query), values clamped at 0 (NaN → 0).
 * `max` leaves out the blocks that hold a key with exclude[k] = 1 (the sink discount: in a pooled
 * tile the block holding the first token is dominated by it).
 */
export function tileCells(t: Tile, exclude: Uint8Array | null): Pooled & { rows: number; cols: number } {
  const { rows, cols, rowEdges, colEdges, values } = t;
  const cells = new Float32Array(rows * cols);
  const excluded = new Uint8Array(cols);
  if (exclude) for (let c = 0; c < cols; c++) for (let k = colEdges[c]!; k < colEdges[c + 1]!; k++) if (exclude[k]) excluded[c] = 1;
  let max = 0;
  for (let r = 0; r < rows; r++) {
    const lastQ = rowEdges[r + 1]! - 1;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (colEdges[c]! > lastQ) {
        cells[i] = -1;
        continue;
      }
      const v = values[i]!;
      const x = v > 0 ? v : 0;
      cells[i] = x;
      if (x > max && !excluded[c]) max = x;
    }
  }
  return { res: cols, rows, cols, cells, max };
}

/** The block holding token i (edges[b] ≤ i < edges[b+1]), or −1 outside. */
export function blockOf(edges: Int32Array, i: number): number {
  const n = edges.length - 1;
  if (n < 1 || i < edges[0]! || i >= edges[n]!) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The block under token (q, k): its queries qa..qb and keys ka..kb (inclusive) and its value; null outside the tile. */
export function tileCellAt(t: Tile, q: number, k: number): { qa: number; qb: number; ka: number; kb: number; value: number } | null {
  const r = blockOf(t.rowEdges, q);
  const c = blockOf(t.colEdges, k);
  if (r < 0 || c < 0) return null;
  return { qa: t.rowEdges[r]!, qb: t.rowEdges[r + 1]! - 1, ka: t.colEdges[c]!, kb: t.colEdges[c + 1]! - 1, value: t.values[r * t.cols + c]! };
}

/** "max-pooled, 8×8 tokens per cell" ("up to 8×8" when the blocks differ by one token); '' for an exact tile. */
export function poolCaption(t: Tile): string {
  if (!t.pooled) return '';
  const span = (e: Int32Array): { lo: number; hi: number } => {
    let lo = Infinity;
    let hi = 0;
    for (let i = 0; i + 1 < e.length; i++) {
      const w = e[i + 1]! - e[i]!;
      if (w < lo) lo = w;
      if (w > hi) hi = w;
    }
    return { lo, hi };
  };
  const r = span(t.rowEdges);
  const c = span(t.colEdges);
  return `max-pooled, ${r.lo === r.hi && c.lo === c.hi ? '' : 'up to '}${r.hi}×${c.hi} tokens per cell`;
}
