// Answers questions about a kept run without re-running the model: the editor overlay's row or
// column for the cursor token, aggregates, one head's pattern, per-token details for hovers and
// attention-rollout rows (analysis/rollout.ts).
//
// A kept run does not hold the probabilities (L·H·T² values: 69 GB for 30 layers × 9 heads at 8,000
// tokens). The engine keeps each layer's queries, keys and row log-sum-exps (qkSource over
// graph/attentionScores.ts: O(L·(H + KV)·T·d)), and every answer computes only the probabilities it
// needs: a row or a column of one head costs O(T·d), the overlay O(L·H·T·d), one head's pattern
// O(T²·d). Queries whose cost grows with L·H·T²·d (the full aggregate, rollout) are refused past
// MAX_QUERY_WORK with one line saying what to ask instead. The engine answers with answerFast: the
// overlay, token details and patterns through KeptRun.fast (graph/queryGraph.ts, onnxruntime, the
// same values within 5e-7); answer is the JS path, the reference.
import { EngineError } from '../errors';
import type { PatternWindow } from '../../shared/protocol';
import { probabilityColumn, probabilityRow, type LayerScores } from '../graph/attentionScores';
import { rolloutRowFrom } from './rollout';

/** Questions about the run a kept run (inspect with keep: true), answered without re-running. */
export type RunQuery =
  /** Σ w[l,h]·p[l,h] / Σ w over heads, [T, T]; `weights` is [L*H] (small runs: see MAX_QUERY_WORK) */
  | { what: 'aggregate'; weights: Float32Array }
  /**
   * the editor overlay for token q, [T]: row q of the aggregate (direction from: what q attends to)
   * or its column q (to: how much each token attends to q); `weights` is [L*H]
   */
  | { what: 'overlay'; q: number; direction: 'from' | 'to'; weights: Float32Array }
  /** one head's pattern [T, T] */
  | { what: 'pattern'; layer: number; head: number }
  /**
   * a window of one head's pattern, queries q0..q1−1 × keys k0..k1−1, at most `size` × `size`
   * values: exact when the window fits, else max-pooled blocks (each the largest exact probability
   * in its block, so a one-token stripe survives); see PatternTile
   */
  | { what: 'patternTile'; layer: number; head: number; q0: number; q1: number; k0: number; k1: number; size: number }
  /** for token q: the top keys it attends to (direction from) or top queries attending to it (to) under `weights`, each with the heads most responsible */
  | { what: 'tokenDetail'; q: number; direction: 'from' | 'to'; weights: Float32Array; top: number }
  /**
   * row q of the attention rollout R [T] (Abnar & Zuidema 2020; see rolloutRow), over the heads
   * with a non-zero weight in `weights` [L*H] (each counted once: the mean over those heads)
   */
  | { what: 'rollout'; q: number; weights: Float32Array };

export interface TokenDetail {
  q: number;
  direction: 'from' | 'to';
  items: { token: number; value: number; heads: { layer: number; head: number; value: number }[] }[];
}

/** A window of one head's pattern (query patternTile; see PatternWindow). */
export interface PatternTile extends PatternWindow {
  /** block edges: row r covers queries rowEdges[r]..rowEdges[r+1]−1 ([rows + 1]; columns likewise) */
  rowEdges: Int32Array;
  colEdges: Int32Array;
  /** [rows, cols] row-major */
  values: Float32Array;
}

/** Where a kept run's probabilities come from: any row or column of any head, on demand. */
export interface AttentionSource {
  /** p[layer, head, q, 0..T) into out (zeros where masked) */
  row(layer: number, head: number, q: number, out: Float64Array): void;
  /** p[layer, head, 0..T), k] into out: every query's attention to key k */
  column(layer: number, head: number, k: number, out: Float64Array): void;
  /** multiply-adds one row or column costs (T·headDim for recomputed scores, T for stored patterns) */
  rowWork: number;
}

/** One layer's values for every head at positions start..start + n − 1, token-major (zeros elsewhere). */
export interface HeadBlock {
  start: number;
  /** [n, H]: values[i·H + h] is head h's value at position start + i */
  values: Float32Array;
}

/**
 * The same probabilities computed in bulk (graph/queryGraph.ts: onnxruntime over the kept tensors):
 * what answerFast uses for the overlay, token details and pattern windows when a run has one.
 */
export interface FastAttention {
  /** every head's row q, per layer: the keys its mask allows */
  rows(q: number): Promise<HeadBlock[]>;
  /** every head's column k, per layer: the queries whose mask allows k */
  columns(k: number): Promise<HeadBlock[]>;
  /** head (layer, h), queries q0..q1−1 × keys k0..k1−1: each(q, p) with p[k − k0] for keys up to min(k1 − 1, q) at least (valid during the call) */
  tile(layer: number, h: number, q0: number, q1: number, k0: number, k1: number, each: (q: number, p: Float32Array) => void): Promise<void>;
}

export interface KeptRun {
  runId: number;
  T: number;
  L: number;
  H: number;
  attention: AttentionSource;
  /** bulk computation of the same values (answerFast); absent: the JS path */
  fast?: FastAttention;
}

/**
 * Past this many multiply-adds (about 5–10 s of one core) a query is refused instead of stalling
 * the engine: the full aggregate and rollout cost L·H·T²·d (rollout half that), one head's pattern T²·d.
 */
export const MAX_QUERY_WORK = 8e9;

/** The probabilities recomputed from each layer's kept queries, keys and lse (graph/attentionScores.ts). */
export function qkSource(layers: LayerScores[]): AttentionSource {
  const first = layers[0]!;
  return {
    row: (l, h, q, out) => probabilityRow(layers[l]!, h, q, out),
    column: (l, h, k, out) => probabilityColumn(layers[l]!, h, k, out),
    rowWork: first.T * first.hd,
  };
}

/** Stored patterns (layer → [H, T, T], every layer): a RunResult's, or a test's. */
export function patternSource(patterns: Map<number, ArrayLike<number>>, T: number): AttentionSource {
  return {
    row: (l, h, q, out) => {
      const p = patterns.get(l)!;
      const base = (h * T + q) * T;
      for (let k = 0; k < T; k++) out[k] = p[base + k]!;
    },
    column: (l, h, k, out) => {
      const p = patterns.get(l)!;
      for (let q = 0; q < T; q++) out[q] = p[(h * T + q) * T + k]!;
    },
    rowWork: T,
  };
}

function checkWork(run: KeptRun, rows: number, what: string, instead: string): void {
  const work = rows * run.attention.rowWork;
  if (work > MAX_QUERY_WORK) {
    throw new EngineError('BAD_ARGUMENT', `${what} of this ${run.T}-token run would take about ${(work / 1e9).toFixed(0)}·10⁹ multiply-adds (the limit is ${MAX_QUERY_WORK / 1e9}·10⁹); ${instead}`);
  }
}

function weightedHeads(run: KeptRun, weights: Float32Array): { l: number; h: number; w: number }[] {
  const out: { l: number; h: number; w: number }[] = [];
  for (let l = 0; l < run.L; l++) for (let h = 0; h < run.H; h++) if (weights[l * run.H + h] !== 0) out.push({ l, h, w: weights[l * run.H + h]! });
  return out;
}

/** Σ w[l,h]·p[l,h] / Σ w, [T, T]. All-zero weights give zeros. Cost: one row per weighted head and query. */
export function aggregate(run: KeptRun, weights: Float32Array): Float32Array {
  const { T } = run;
  const heads = weightedHeads(run, weights);
  checkWork(run, heads.length * T, 'the aggregate over every position', 'ask for the cursor token\'s overlay row or column instead');
  const out = new Float32Array(T * T);
  const acc = new Float64Array(T);
  const row = new Float64Array(T);
  const total = heads.reduce((a, x) => a + x.w, 0);
  for (let q = 0; q < T; q++) {
    acc.fill(0);
    for (const { l, h, w } of heads) {
      run.attention.row(l, h, q, row);
      for (let k = 0; k <= q; k++) acc[k]! += w * row[k]!;
    }
    if (total !== 0) for (let k = 0; k <= q; k++) out[q * T + k] = acc[k]! / total;
  }
  return out;
}

/**
 * The overlay for token q: row q (from) or column q (to) of the aggregate Σ w·p / Σ w, [T], without
 * forming it. Cost: one row or column per weighted head, O(L·H·T·d).
 */
export function overlay(run: KeptRun, q: number, direction: 'from' | 'to', weights: Float32Array): Float32Array {
  const one = new Float64Array(run.T);
  return overlayOf(run.T, weightedHeads(run, weights), (acc, l, h, w) => {
    if (direction === 'from') run.attention.row(l, h, q, one);
    else run.attention.column(l, h, q, one);
    for (let i = 0; i < run.T; i++) acc[i]! += w * one[i]!;
  });
}

/** Σ w·p(l, h) / Σ w over the weighted heads, accumulated in float64 by add(acc, l, h, w) ([T]). */
function overlayOf(T: number, heads: { l: number; h: number; w: number }[], add: (acc: Float64Array, l: number, h: number, w: number) => void): Float32Array {
  const acc = new Float64Array(T);
  let total = 0;
  for (const { l, h, w } of heads) {
    add(acc, l, h, w);
    total += w;
  }
  const out = new Float32Array(T);
  if (total !== 0) for (let i = 0; i < T; i++) out[i] = acc[i]! / total;
  return out;
}

/** One head's pattern [T, T] (row = query). Cost O(T²·d). */
export function pattern(run: KeptRun, layer: number, head: number): Float32Array {
  checkWork(run, run.T, `head ${layer}.${head}'s pattern`, 'ask for rows or columns instead');
  const out = new Float32Array(run.T * run.T);
  patternInto(run, layer, head, out);
  return out;
}

/** One head's pattern written into out [T, T] (zeroed by the caller); no cost check (saving a run checks its own size cap). */
export function patternInto(run: KeptRun, layer: number, head: number, out: Float32Array): void {
  const { T } = run;
  const row = new Float64Array(T);
  for (let q = 0; q < T; q++) {
    run.attention.row(layer, head, q, row);
    for (let k = 0; k <= q; k++) out[q * T + k] = row[k]!;
  }
}

/** n+1 edges splitting a..b into n nearly equal blocks (n ≤ b − a). */
function edges(a: number, b: number, n: number): Int32Array {
  const e = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) e[i] = a + Math.floor(((b - a) * i) / n);
  return e;
}

/**
 * A window of one head's pattern at most size × size: exact values when it fits, else the max over
 * each block. Only the causal part (k ≤ q) is computed: cost ≈ rows of the window × their keys × d.
 */
export function patternTile(run: KeptRun, layer: number, head: number, q0: number, q1: number, k0: number, k1: number, size: number): PatternTile;
export function patternTile(run: KeptRun, layer: number, head: number, q0: number, q1: number, k0: number, k1: number, size: number, fast: FastAttention): Promise<PatternTile>;
export function patternTile(run: KeptRun, layer: number, head: number, q0: number, q1: number, k0: number, k1: number, size: number, fast?: FastAttention): PatternTile | Promise<PatternTile> {
  const { T } = run;
  if (!(Number.isInteger(q0) && Number.isInteger(q1) && Number.isInteger(k0) && Number.isInteger(k1) && 0 <= q0 && q0 < q1 && q1 <= T && 0 <= k0 && k0 < k1 && k1 <= T)) {
    throw new EngineError('BAD_ARGUMENT', `pattern window ${q0}..${q1} × ${k0}..${k1} is not inside 0..${T}`);
  }
  if (!(Number.isInteger(size) && size >= 1 && size <= 4096)) throw new EngineError('BAD_ARGUMENT', `pattern window size ${size} must be a whole number from 1 to 4096`);
  const keysPerRow = Math.max(0, Math.min(k1, q1) - k0);
  checkWork(run, ((q1 - q0) * keysPerRow) / T, `head ${layer}.${head}'s pattern window`, 'ask for a smaller window');
  const rows = Math.min(size, q1 - q0);
  const cols = Math.min(size, k1 - k0);
  const rowEdges = edges(q0, q1, rows);
  const colEdges = edges(k0, k1, cols);
  const values = new Float32Array(rows * cols);
  // which column block each key falls in
  const colOf = new Int32Array(k1 - k0);
  for (let c = 0; c < cols; c++) for (let k = colEdges[c]!; k < colEdges[c + 1]!; k++) colOf[k - k0] = c;
  const rowOf = new Int32Array(q1 - q0);
  for (let r = 0; r < rows; r++) for (let q = rowEdges[r]!; q < rowEdges[r + 1]!; q++) rowOf[q - q0] = r;
  // row q's values p[k − k0] into the window (causal: only keys ≤ q)
  const take = (q: number, p: ArrayLike<number>) => {
    const base = rowOf[q - q0]! * cols;
    const last = Math.min(k1 - 1, q);
    for (let k = k0; k <= last; k++) {
      const at = base + colOf[k - k0]!;
      if (p[k - k0]! > values[at]!) values[at] = p[k - k0]!;
    }
  };
  const tile = { q0, q1, k0, k1, pooled: rows < q1 - q0 || cols < k1 - k0, rowEdges, colEdges, values };
  const qa = Math.max(q0, k0); // rows above k0 have nothing in this window
  if (fast && qa >= q1) return Promise.resolve(tile);
  if (fast) return fast.tile(layer, head, qa, q1, k0, Math.min(k1, q1), take).then(() => tile);
  const row = new Float64Array(T);
  for (let q = qa; q < q1; q++) {
    run.attention.row(layer, head, q, row);
    take(q, row.subarray(k0));
  }
  return tile;
}

export function tokenDetail(run: KeptRun, q: number, direction: 'from' | 'to', weights: Float32Array, top: number): TokenDetail {
  const { T } = run;
  const heads = weightedHeads(run, weights);
  // Each weighted head's row (from) or column (to) for q: [heads, T].
  const cells = heads.map(({ l, h }) => {
    const v = new Float64Array(T);
    if (direction === 'from') run.attention.row(l, h, q, v);
    else run.attention.column(l, h, q, v);
    return v;
  });
  const agg = new Float64Array(T);
  const lo = direction === 'from' ? 0 : q;
  const hi = direction === 'from' ? q : T - 1;
  heads.forEach(({ w }, i) => {
    for (let o = lo; o <= hi; o++) agg[o]! += w * cells[i]![o]!;
  });
  return tokenDetailOf(q, direction, heads, agg, (i, o) => cells[i]![o]!, top);
}

/**
 * The top positions of agg (Σ w·p over the weighted heads, in head order) with the heads most
 * responsible; value(i, o): weighted head i's row or column value at position o.
 */
function tokenDetailOf(q: number, direction: 'from' | 'to', heads: { l: number; h: number; w: number }[], agg: Float64Array, value: (i: number, o: number) => number, top: number): TokenDetail {
  const total = heads.reduce((a, x) => a + x.w, 0);
  const order = Array.from(agg.keys()).filter((o) => agg[o]! > 0).sort((a, b) => agg[b]! - agg[a]!).slice(0, top);
  return {
    q,
    direction,
    items: order.map((o) => {
      const by = heads.map(({ l, h }, i) => ({ layer: l, head: h, value: value(i, o) }));
      by.sort((a, b) => b.value - a.value);
      return { token: o, value: total ? agg[o]! / total : 0, heads: by.slice(0, 3) };
    }),
  };
}

/**
 * Row q of the rollout over the heads with a non-zero weight: Ā_l uses the mean over the included
 * heads of layer l; a layer with no head included contributes only the residual (Ā_l = I). The
 * head-mean rows are computed as the rollout reads them (rows i ≤ q of every layer), so nothing of
 * size T² is held; the cost is about L·H·q²·d/2 multiply-adds, refused past MAX_QUERY_WORK.
 */
export function rollout(run: KeptRun, q: number, weights: Float32Array): Float32Array {
  const { T, L, H } = run;
  const included: number[][] = [];
  let rows = 0;
  for (let l = 0; l < L; l++) {
    const hs: number[] = [];
    for (let h = 0; h < H; h++) if (weights[l * H + h] !== 0) hs.push(h);
    included.push(hs);
    rows += (hs.length * (q + 1)) / 2;
  }
  checkWork(run, rows, 'the attention rollout', 'lower the token limit (or use the mean or a head)');
  const one = new Float64Array(T);
  return Float32Array.from(
    rolloutRowFrom(L, T, q, (l, i, row) => {
      const hs = included[l]!;
      if (hs.length === 0) {
        row[i] = 1;
        return;
      }
      for (const h of hs) {
        run.attention.row(l, h, i, one);
        for (let k = 0; k <= i; k++) row[k]! += one[k]!;
      }
      for (let k = 0; k <= i; k++) row[k]! /= hs.length;
    }),
  );
}

export function answer(run: KeptRun, query: RunQuery): { matrix?: Float32Array; detail?: TokenDetail; row?: Float32Array; tile?: PatternTile } {
  switch (query.what) {
    case 'aggregate':
      return { matrix: aggregate(run, query.weights) };
    case 'overlay':
      return { row: overlay(run, query.q, query.direction, query.weights) };
    case 'pattern':
      return { matrix: pattern(run, query.layer, query.head) };
    case 'patternTile':
      return { tile: patternTile(run, query.layer, query.head, query.q0, query.q1, query.k0, query.k1, query.size) };
    case 'tokenDetail':
      return { detail: tokenDetail(run, query.q, query.direction, query.weights, query.top) };
    case 'rollout':
      return { row: rollout(run, query.q, query.weights) };
  }
}

/**
 * Fewer weighted heads than this fraction of all heads: the overlay and token details take the JS
 * path (it costs per weighted head; the bulk graph computes every head of every layer).
 */
const FAST_MIN_SHARE = 1 / 8;

/** acc[o] += w·(head h's value at o) for layer l's block (positions outside it are 0) */
function blockAdder(blocks: HeadBlock[], H: number): (acc: Float64Array, l: number, h: number, w: number) => void {
  return (acc, l, h, w) => {
    const { start, values } = blocks[l]!;
    for (let i = h, o = start; i < values.length; i += H, o++) acc[o]! += w * values[i]!;
  };
}

/** Every layer's block of rows (from) or columns (to) for q from run.fast, or undefined to use the JS path. */
async function fastBlocks(run: KeptRun, q: number, direction: 'from' | 'to', heads: { l: number; h: number }[]): Promise<HeadBlock[] | undefined> {
  if (!run.fast || heads.length === 0 || heads.length < FAST_MIN_SHARE * run.L * run.H) return undefined;
  return direction === 'from' ? run.fast.rows(q) : run.fast.columns(q);
}

/**
 * answer, with the overlay, token details, patterns and pattern windows computed by run.fast when
 * the run has one (the same values, see graph/queryGraph.ts); everything else as answer.
 */
export async function answerFast(run: KeptRun, query: RunQuery): Promise<ReturnType<typeof answer>> {
  const fast = run.fast;
  if (!fast) return answer(run, query);
  switch (query.what) {
    case 'overlay': {
      const heads = weightedHeads(run, query.weights);
      const blocks = await fastBlocks(run, query.q, query.direction, heads);
      if (!blocks) break;
      return { row: overlayOf(run.T, heads, blockAdder(blocks, run.H)) };
    }
    case 'tokenDetail': {
      const heads = weightedHeads(run, query.weights);
      const blocks = await fastBlocks(run, query.q, query.direction, heads);
      if (!blocks) break;
      const { H } = run;
      const value = (i: number, o: number) => {
        const { l, h } = heads[i]!;
        const { start, values } = blocks[l]!;
        const at = (o - start) * H + h;
        return o >= start && at < values.length ? values[at]! : 0;
      };
      const agg = new Float64Array(run.T);
      const add = blockAdder(blocks, H);
      for (const { l, h, w } of heads) add(agg, l, h, w);
      return { detail: tokenDetailOf(query.q, query.direction, heads, agg, value, query.top) };
    }
    case 'pattern': {
      const { T } = run;
      checkWork(run, T, `head ${query.layer}.${query.head}'s pattern`, 'ask for rows or columns instead');
      const matrix = new Float32Array(T * T);
      await fast.tile(query.layer, query.head, 0, T, 0, T, (q, p) => matrix.set(p.subarray(0, q + 1), q * T));
      return { matrix };
    }
    case 'patternTile':
      return { tile: await patternTile(run, query.layer, query.head, query.q0, query.q1, query.k0, query.k1, query.size, fast) };
  }
  return answer(run, query);
}
