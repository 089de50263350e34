// After every forward pass: refuse to report numbers that are not numbers. Huge but finite weights,
// a saturating bias or an extreme head scale can overflow float32 to ±Infinity, and NaN follows
// (Inf − Inf in a softmax, Inf / Inf in a norm). Such a run must not look like a result (null
// probabilities, garbage text): it becomes one NUMERIC EngineError naming what went non-finite,
// where, and the first layer whose attention did.
//
// Locating the layer exactly and for free: the inspection graph already returns every head's
// metrics per layer ([L, H, M]), and each is a sum over that layer's attention probabilities, so a
// non-finite value there means that layer's attention went non-finite (a NaN or Inf anywhere in a
// row poisons its sum; 0 × NaN is NaN). Layer l's attention depends only on the residual stream
// after layers < l, so the first such layer brackets where the overflow happened. A float64 re-run
// in JS would localise it further but costs minutes on a large model; the bracket costs nothing.
import { METRICS, type MetricName } from '../shared/heads';
import { EngineError } from './errors';

/** Index of the first non-finite value in a[from, to), or -1. */
export function firstNonFinite(a: Float32Array, from = 0, to = a.length): number {
  for (let i = from; i < to; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

function kind(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/**
 * Which query rows q (1..T−1) count for the induction metric: some k < q has ids[k−1] == ids[q]
 * (the inspection graph's definition). When none does, induction is legitimately NaN (null).
 */
export function inductionDefined(ids: readonly number[]): boolean {
  const seen = new Set<number>();
  for (let q = 1; q < ids.length; q++) {
    // seen holds ids[0..q-2], i.e. ids[k-1] for k = 1..q-1
    if (seen.has(ids[q]!)) return true;
    seen.add(ids[q - 1]!);
  }
  return false;
}

/** duplicate-token is defined when some row q has an earlier occurrence j < q of its own token. */
export function duplicateTokenDefined(ids: readonly number[]): boolean {
  return new Set(ids).size < ids.length;
}

/** Metrics defined only for some prompts (the graph gives NaN, shown as null, otherwise). */
const DEFINED_WHEN: Partial<Record<MetricName, (ids: readonly number[]) => boolean>> = {
  induction: inductionDefined,
  duplicateToken: duplicateTokenDefined,
};

/**
 * The first layer whose head metrics are non-finite where they must be finite: every metric when
 * T > 1, except those in DEFINED_WHEN when their rows do not occur in this prompt. -1 when none
 * (or T = 1: nothing is defined). `metrics` is [L, H, M] in METRICS order.
 */
export function firstNonFiniteAttentionLayer(metrics: Float32Array, L: number, H: number, ids: readonly number[]): number {
  if (ids.length < 2) return -1;
  const M = METRICS.length;
  const checked = METRICS.map((m, i) => ({ i, on: DEFINED_WHEN[m]?.(ids) ?? true })).filter((x) => x.on).map((x) => x.i);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const at = (l * H + h) * M;
      for (const i of checked) if (!Number.isFinite(metrics[at + i]!)) return l;
    }
  }
  return -1;
}

/** Where the first non-finite attention layer says the overflow happened. */
export function layerClause(layer: number, L: number): string {
  if (layer < 0) return `every layer's attention is finite, so it arose after layer ${L - 1}'s attention pattern (its attention output, MLP, the final norm or the output head)`;
  if (layer === 0) return `layer 0's attention is already non-finite (the embeddings or layer 0's attention scores)`;
  return `layer ${layer}'s attention is the first that is non-finite (so it arose in layer ${layer - 1}'s attention output or MLP, or in layer ${layer}'s attention scores)`;
}

const ADVICE = 'the weights are likely corrupt or too large for float32; check the checkpoint (or lower extreme head scales)';

export interface FiniteCheckInput {
  L: number;
  H: number;
  V: number;
  ids: readonly number[];
  /** [1 or T, V] */
  logits: Float32Array;
  /** [T, D] (optional) */
  hidden?: Float32Array;
  /** [L, H, M] (optional) */
  metrics?: Float32Array;
  /** a short description of the token at a position, e.g. ` ("cat")` */
  tokenAt?: (pos: number) => string;
}

/**
 * Throws NUMERIC when the logits (or the final hidden states, or head metrics that must be finite)
 * hold NaN or Infinity. Positions are zero-based token positions of the run.
 */
export function checkFiniteRun(x: FiniteCheckInput, what = 'the model'): void {
  const { L, H, V, ids, logits } = x;
  const T = ids.length;
  const rows = logits.length / V;
  const at = (pos: number) => `position ${pos}${x.tokenAt?.(pos) ?? ''}`;
  let where: string | undefined;
  const li = firstNonFinite(logits);
  const D = x.hidden ? x.hidden.length / T : 0;
  const hi = x.hidden ? firstNonFinite(x.hidden) : -1;
  if (hi >= 0) {
    // The final hidden state feeds every position's logits: the earliest non-finite row is where it began (causal).
    where = `${kind(x.hidden![hi]!)} in its final hidden state at ${at(Math.floor(hi / D))}`;
  } else if (li >= 0) {
    const row = Math.floor(li / V);
    const pos = rows === 1 ? T - 1 : row;
    where = `${kind(logits[li]!)} in its logits at ${at(pos)}`;
  }
  const layer = x.metrics ? firstNonFiniteAttentionLayer(x.metrics, L, H, ids) : -2;
  if (!where && layer < 0) return;
  if (!where) where = 'non-finite attention (NaN or Infinity in the head metrics)';
  const clause = layer === -2 ? '' : `; ${layerClause(layer, L)}`;
  throw new EngineError('NUMERIC', `${what} produced ${where}${clause}; ${ADVICE}`);
}
