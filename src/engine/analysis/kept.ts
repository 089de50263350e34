// Answers questions about a kept run (all layers' patterns [H, T, T]) without re-running the model:
// aggregates for the editor overlay, one head's pattern, per-token details for hovers, and
// attention-rollout rows (analysis/rollout.ts).
import { rolloutRow, type RolloutSource } from './rollout';

/** Questions about the run a kept run (inspect with keep: true), answered without re-running. */
export type RunQuery =
  /** Σ w[l,h]·p[l,h] / Σ w over heads, [T, T]; `weights` is [L*H] */
  | { what: 'aggregate'; weights: Float32Array }
  /** one head's pattern [T, T] */
  | { what: 'pattern'; layer: number; head: number }
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


export interface KeptRun {
  runId: number;
  T: number;
  L: number;
  H: number;
  patterns: Map<number, Float32Array>;
}

/** Σ w[l,h]·p[l,h] / Σ w, [T, T]. All-zero weights give zeros. */
export function aggregate(run: KeptRun, weights: Float32Array): Float32Array {
  const { T, L, H } = run;
  const out = new Float32Array(T * T);
  let total = 0;
  for (let l = 0; l < L; l++) {
    const p = run.patterns.get(l)!;
    for (let h = 0; h < H; h++) {
      const w = weights[l * H + h]!;
      if (w === 0) continue;
      total += w;
      const base = h * T * T;
      // rows are causal: only keys 0..q are non-zero
      for (let q = 0; q < T; q++) {
        const ro = q * T;
        for (let k = 0; k <= q; k++) out[ro + k]! += w * p[base + ro + k]!;
      }
    }
  }
  if (total !== 0) for (let i = 0; i < out.length; i++) out[i]! /= total;
  return out;
}

export function pattern(run: KeptRun, layer: number, head: number): Float32Array {
  const { T } = run;
  return run.patterns.get(layer)!.slice(head * T * T, (head + 1) * T * T);
}

export function tokenDetail(run: KeptRun, q: number, direction: 'from' | 'to', weights: Float32Array, top: number): TokenDetail {
  const { T, L, H } = run;
  const agg = new Float64Array(T);
  let total = 0;
  const cell = (l: number, h: number, other: number) => {
    const p = run.patterns.get(l)!;
    return direction === 'from' ? p[(h * T + q) * T + other]! : p[(h * T + other) * T + q]!;
  };
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const w = weights[l * H + h]!;
      if (w === 0) continue;
      total += w;
      const lo = direction === 'from' ? 0 : q;
      const hi = direction === 'from' ? q : T - 1;
      for (let o = lo; o <= hi; o++) agg[o]! += w * cell(l, h, o);
    }
  }
  const order = Array.from(agg.keys()).filter((o) => agg[o]! > 0).sort((a, b) => agg[b]! - agg[a]!).slice(0, top);
  return {
    q,
    direction,
    items: order.map((o) => {
      const heads: { layer: number; head: number; value: number }[] = [];
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) if (weights[l * H + h] !== 0) heads.push({ layer: l, head: h, value: cell(l, h, o) });
      heads.sort((a, b) => b.value - a.value);
      return { token: o, value: total ? agg[o]! / total : 0, heads: heads.slice(0, 3) };
    }),
  };
}

/**
 * The rollout source over the heads with a non-zero weight. rolloutRow averages every head of a
 * layer; a layer with heads left out gets a copy of its patterns in which each left-out head is
 * replaced by the mean of the included ones, so the mean over all H is exactly the mean over the
 * included heads. A layer with no head included contributes no attention, only the residual: its
 * heads are replaced by the identity (every token attends to itself), which makes Ā_l = I.
 * Layers with every head included are passed through without a copy.
 */
export function rolloutSource(run: KeptRun, weights: Float32Array): RolloutSource {
  const { T, L, H } = run;
  const patterns = new Map<number, ArrayLike<number>>();
  const TT = T * T;
  for (let l = 0; l < L; l++) {
    const p = run.patterns.get(l)!;
    const kept: number[] = [];
    for (let h = 0; h < H; h++) if (weights[l * H + h] !== 0) kept.push(h);
    if (kept.length === H) {
      patterns.set(l, p);
      continue;
    }
    const fill = new Float32Array(TT);
    if (kept.length === 0) for (let q = 0; q < T; q++) fill[q * T + q] = 1;
    else {
      const acc = new Float64Array(TT);
      for (const h of kept) for (let i = 0; i < TT; i++) acc[i]! += p[h * TT + i]!;
      for (let i = 0; i < TT; i++) fill[i] = acc[i]! / kept.length;
    }
    const out = new Float32Array(H * TT);
    for (let h = 0; h < H; h++) out.set(kept.includes(h) ? p.subarray(h * TT, (h + 1) * TT) : fill, h * TT);
    patterns.set(l, out);
  }
  return { L, H, T, patterns };
}

export function rollout(run: KeptRun, q: number, weights: Float32Array): Float32Array {
  return Float32Array.from(rolloutRow(rolloutSource(run, weights), q));
}

export function answer(run: KeptRun, query: RunQuery): { matrix?: Float32Array; detail?: TokenDetail; row?: Float32Array } {
  switch (query.what) {
    case 'aggregate':
      return { matrix: aggregate(run, query.weights) };
    case 'pattern':
      return { matrix: pattern(run, query.layer, query.head) };
    case 'tokenDetail':
      return { detail: tokenDetail(run, query.q, query.direction, query.weights, query.top) };
    case 'rollout':
      return { row: rollout(run, query.q, query.weights) };
  }
}
