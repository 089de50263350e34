// The inspection graph's attention scores, recomputed outside it from the qk variant's outputs
// (inspectionGraph.ts: hook_rot_q, hook_rot_k, max_key, log_max_p per layer), so a kept run holds O(L·H·T·d)
// values instead of every probability and still answers with the model's own numbers:
//
//   s[h, q, k] = softcap(q'[h, q] · k[kv(h), k]) + bias[h, k]     (k ≤ q, and q − k < window if any)
//   p[h, q, k] = exp(s[h, q, k] − lse[h, q])                      (0 where the mask blocks k)
//
// with q' = q·scale rounded to float32 (the graph's Mul), kv(h) = ⌊h / (H / KV)⌋ (repeat_kv),
// softcap(x) = tanh(x / cap)·cap (Gemma 2/3), bias the run's attn_bias (PASTA's ln α, sink
// calibration's ln s) and the causal and sliding-window masks of the graph, and
//   lse[h, q] = s[h, q, m] − ln p[h, q, m]   (m = the row's max_key, ln p from the graph's softmax)
// This file is the reference for that transform outside the graph (test/unit/keptQk.test.ts checks
// it against the graph's own patterns on every family); queryGraph.ts computes the same values in
// bulk with onnxruntime and falls back to attentionScore for every entry whose float32 error could
// matter (test/unit/keptFast.test.ts checks it against this file). Dot products are accumulated in
// float64 (the graph's in float32); values agree with the graph's softmax to about 1e-7.
import type { ModelDims } from '../spec';

/** One layer of a kept run: what any of its attention probabilities is computed from. */
export interface LayerScores {
  H: number;
  KV: number;
  T: number;
  hd: number;
  /** [H, T, hd] the queries times the layer's score scale, in float32 (the scores' MatMul input) */
  q: Float32Array;
  /** [KV, T, hd] the keys after norms and RoPE */
  k: Float32Array;
  /** [H, T] each row's log-sum-exp of its final scores */
  lse: Float64Array;
  /** [H, T] the run's attn_bias for this layer (added to every row's score for key k) */
  bias: Float32Array;
  /** the attention soft-cap as the graph's float32 constant, 0 for none */
  softcap: number;
  /** sliding window (keys q − window + 1 .. q), 0 for none */
  window: number;
}

/** One layer of the qk graph's outputs (see inspectionGraph.ts). */
export interface QkOutputs {
  /** [H, T, hd] hook_rot_q */
  q: Float32Array;
  /** [KV, T, hd] hook_rot_k */
  k: Float32Array;
  /** [H, T] max_key */
  maxKey: BigInt64Array;
  /** [H, T] log_max_p */
  logMaxP: Float32Array;
}

/**
 * A layer's score inputs from the qk graph's outputs. `out.q` [H, T, hd] is scaled in place (it
 * becomes LayerScores.q); `attnBias` is the run's [L, H, T] input (this layer's slice is kept).
 * Costs O(H·T·hd) (one score per row for its lse).
 */
export function layerScores(dims: ModelDims, layer: number, T: number, out: QkOutputs, attnBias: Float32Array): LayerScores {
  const { heads: H, kvHeads: KV, headDim: hd } = dims;
  if (out.q.length !== H * T * hd || out.k.length !== KV * T * hd || out.maxKey.length !== H * T || out.logMaxP.length !== H * T) throw new Error('internal: kept q/k sizes');
  const scale = Math.fround(dims.attnScale[layer]!);
  // The graph's Mul of two float32 values: the float64 product rounded once (it is exact in float64).
  const q = out.q;
  for (let i = 0; i < q.length; i++) q[i] = q[i]! * scale;
  const s: LayerScores = {
    H,
    KV,
    T,
    hd,
    q,
    k: out.k,
    lse: new Float64Array(H * T),
    bias: attnBias.slice(layer * H * T, (layer + 1) * H * T),
    softcap: dims.attnSoftcap ? Math.fround(dims.attnSoftcap) : 0,
    window: dims.slidingWindow[layer] ?? 0,
  };
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < T; r++) {
      const m = Number(out.maxKey[h * T + r]!);
      const top = attentionScore(s, h, r, m);
      if (!Number.isFinite(top)) throw new Error(`internal: layer ${layer} head ${h} row ${r}: max key ${m} is masked`);
      s.lse[h * T + r] = top - out.logMaxP[h * T + r]!;
    }
  }
  return s;
}

/** The first key row q may attend to (the causal mask allows keys ≤ q; a window also cuts the far ones). */
export function firstKey(s: LayerScores, q: number): number {
  return s.window > 0 ? Math.max(0, q - s.window + 1) : 0;
}

/**
 * The final pre-softmax score s[h, q, k] as the graph computes it (scale, soft-cap, bias), or
 * −Infinity where the causal or sliding-window mask blocks key k for query q.
 */
export function attentionScore(s: LayerScores, h: number, q: number, k: number): number {
  if (k > q || (s.window > 0 && q - k >= s.window)) return -Infinity;
  const { T, hd } = s;
  const kv = Math.floor(h / (s.H / s.KV));
  const qo = (h * T + q) * hd;
  const ko = (kv * T + k) * hd;
  const Q = s.q;
  const K = s.k;
  let dot = 0;
  for (let d = 0; d < hd; d++) dot += Q[qo + d]! * K[ko + d]!;
  if (s.softcap !== 0) dot = Math.tanh(dot / s.softcap) * s.softcap;
  return dot + s.bias[h * T + k]!;
}

/** p[h, q, ·] into out[0..T) (zeros where masked). Cost O(T·hd). */
export function probabilityRow(s: LayerScores, h: number, q: number, out: Float64Array | Float32Array): void {
  out.fill(0);
  const lse = s.lse[h * s.T + q]!;
  for (let k = firstKey(s, q); k <= q; k++) out[k] = Math.exp(attentionScore(s, h, q, k) - lse);
}

/** p[h, ·, k] into out[0..T): how much every query attends to key k (zeros where masked). Cost O(T·hd). */
export function probabilityColumn(s: LayerScores, h: number, k: number, out: Float64Array | Float32Array): void {
  out.fill(0);
  const { T } = s;
  const last = s.window > 0 ? Math.min(T - 1, k + s.window - 1) : T - 1;
  for (let q = k; q <= last; q++) out[q] = Math.exp(attentionScore(s, h, q, k) - s.lse[h * T + q]!);
}

/** Bytes a kept layer holds. */
export function layerScoresBytes(s: LayerScores): number {
  return s.q.byteLength + s.k.byteLength + s.lse.byteLength + s.bias.byteLength;
}
