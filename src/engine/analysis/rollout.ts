// Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): how much
// each input token flows into a position through every layer, with the residual stream modelled
// as an identity path:
//
//   Ā_l = ½·mean_h P_l + ½·I, rows renormalised;   R = Ā_{L−1} ⋯ Ā_1 · Ā_0
//
// Row q of R says where position q's representation at the top came from. Only rows are ever
// needed (the editor overlay shows one position's row, the CLI the last one), so R is never formed:
// row q is the vector–matrix chain e_q·Ā_{L−1}⋯Ā_0, and v·Ā_l = Σ_i v_i·Ā_l[i, :] reads only the
// pattern rows i where v is non-zero (i ≤ q, causal). Cost O(L·H·T²) reads and no T×T memory
// (O(L·T³) for the full product). Accumulated in float64.

/** What a rollout reads: every layer's patterns [H, T, T] (a RunResult's or a kept run's). */
export interface RolloutSource {
  L: number;
  H: number;
  T: number;
  /** layer → [H, T, T] row-major (query, key), every layer present */
  patterns: Map<number, ArrayLike<number>>;
}

/** Row q of the rollout R: T numbers (keys 0..T−1) summing to 1, zero after q for causal patterns. */
export function rolloutRow(src: RolloutSource, q: number): Float64Array {
  const { L, H, T } = src;
  for (let l = 0; l < L; l++) {
    const p = src.patterns.get(l);
    if (!p) throw new RangeError(`rollout: layer ${l}'s attention pattern is missing; rollout needs every layer`);
    if (p.length !== H * T * T) throw new RangeError(`rollout: layer ${l}'s pattern has ${p.length} values, not ${H}×${T}×${T}`);
  }
  return rolloutRowFrom(L, T, q, (l, i, row) => {
    const p = src.patterns.get(l)!;
    for (let h = 0; h < H; h++) {
      const base = (h * T + i) * T;
      for (let k = 0; k < T; k++) row[k]! += p[base + k]!;
    }
    for (let k = 0; k < T; k++) row[k]! /= H;
  });
}

/**
 * Row q of the rollout from any source of head-mean rows: `meanRow(l, i, row)` adds mean_h P_l[h, i, :]
 * into `row` (zeroed by the caller), or e_i for a layer with no head counted (Ā_l = I). Used by
 * rolloutRow (patterns) and by kept runs (rows recomputed from queries and keys).
 */
export function rolloutRowFrom(L: number, T: number, q: number, meanRow: (l: number, i: number, row: Float64Array) => void): Float64Array {
  if (!Number.isInteger(q) || q < 0 || q >= T) throw new RangeError(`rollout: position ${q} is outside 0..${T - 1}`);
  let v = new Float64Array(T);
  v[q] = 1;
  let next = new Float64Array(T);
  const row = new Float64Array(T);
  for (let l = L - 1; l >= 0; l--) {
    next.fill(0);
    for (let i = 0; i < T; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      // Ā_l[i, :] = (½·mean_h P_l[h, i, :] + ½·e_i) / its row sum
      row.fill(0);
      meanRow(l, i, row);
      let sum = 0;
      for (let k = 0; k < T; k++) sum += row[k] = 0.5 * row[k]!;
      row[i]! += 0.5;
      sum += 0.5;
      const w = vi / sum;
      for (let k = 0; k < T; k++) next[k]! += w * row[k]!;
    }
    [v, next] = [next, v];
  }
  return v;
}

/** The last position's row of R (what the next-token prediction draws on). */
export function rolloutLast(src: RolloutSource): Float64Array {
  return rolloutRow(src, src.T - 1);
}
