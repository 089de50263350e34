// Comparing two saved runs: baseline vs steered, two prompts, or two models sharing a tokenizer.
// Tokens are aligned by their text and offsets (a longest common subsequence, so an edit in the
// middle of a prompt keeps the tokens before and after it aligned); per aligned position the
// KL divergence of the next-token distributions and the top-K changes; per head the metric deltas;
// and the positions where the runs differ most. What cannot be compared is said, not guessed.
import type { SavedRun } from '../runs/runFile';
import { METRICS, type HeadSummary } from '../../shared/heads';

export interface AlignedPair {
  a: number;
  b: number;
}

export interface PositionDiff extends AlignedPair {
  text: string;
  /** KL(A‖B) of the next-token distributions at this position (nats) */
  kl: number;
  topA: { id: number; prob: number }[];
  topB: { id: number; prob: number }[];
  /** ids in A's top K but not B's, and the other way round */
  left: number[];
  entered: number[];
  /** total variation distance of this position's attention row (mean over heads), when both runs saved patterns */
  attentionShift: number | null;
}

/** B − A per metric (null when either is null) */
export type HeadDelta = HeadSummary;

export interface CompareResult {
  aligned: number;
  unalignedA: number[];
  unalignedB: number[];
  positions: PositionDiff[];
  headDeltas: HeadDelta[];
  /** aligned positions sorted by KL, largest first (at most 10) */
  mostDifferent: PositionDiff[];
  /** why parts could not be compared */
  notComparable: string[];
}

/** Longest common subsequence of the tokens (same id and text); special tokens match each other. */
export function alignTokens(a: SavedRun['header']['tokens'], b: SavedRun['header']['tokens']): AlignedPair[] {
  const n = a.length;
  const m = b.length;
  const same = (i: number, j: number) => a[i]!.id === b[j]!.id && a[i]!.text === b[j]!.text && a[i]!.special === b[j]!.special;
  const dp = new Int32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      dp[i * (m + 1) + j] = same(i, j) ? dp[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(dp[(i + 1) * (m + 1) + j]!, dp[i * (m + 1) + j + 1]!);
    }
  }
  const pairs: AlignedPair[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (same(i, j) && dp[i * (m + 1) + j] === dp[(i + 1) * (m + 1) + j + 1]! + 1) {
      pairs.push({ a: i, b: j });
      i++;
      j++;
    } else if (dp[(i + 1) * (m + 1) + j]! >= dp[i * (m + 1) + j + 1]!) i++;
    else j++;
  }
  return pairs;
}

export function logSoftmaxRow(logits: Float32Array, row: number, V: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[row * V + i]!);
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(logits[row * V + i]! - max);
  const lse = max + Math.log(s);
  const out = new Float64Array(V);
  for (let i = 0; i < V; i++) out[i] = logits[row * V + i]! - lse;
  return out;
}

/** KL(P‖Q) from log-probabilities. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]!);
    if (p > 0) kl += p * (logP[i]! - logQ[i]!);
  }
  return Math.max(0, kl);
}

function topOf(logp: Float64Array, k: number): { id: number; prob: number }[] {
  return Array.from(logp.keys())
    .sort((x, y) => logp[y]! - logp[x]! || x - y)
    .slice(0, k)
    .map((id) => ({ id, prob: Math.exp(logp[id]!) }));
}

export function compareRuns(A: SavedRun, B: SavedRun, topK = 5): CompareResult {
  const ha = A.header;
  const hb = B.header;
  const notComparable: string[] = [];
  const pairs = alignTokens(ha.tokens, hb.tokens);
  const inA = new Set(pairs.map((p) => p.a));
  const inB = new Set(pairs.map((p) => p.b));
  const sameVocab = ha.model.vocabSize === hb.model.vocabSize;
  if (!sameVocab) notComparable.push(`next-token distributions: the vocabularies differ (${ha.model.vocabSize} vs ${hb.model.vocabSize} tokens)`);
  if (sameVocab && (!A.logits || !B.logits)) notComparable.push('next-token distributions: a run was saved without per-position logits (too large)');
  const sameShape = ha.model.layers === hb.model.layers && ha.model.heads === hb.model.heads;
  if (!sameShape) notComparable.push(`heads: the models differ in shape (${ha.model.layers}×${ha.model.heads} vs ${hb.model.layers}×${hb.model.heads})`);
  const patternsOk = sameShape && !!A.patterns && !!B.patterns;
  if (sameShape && !patternsOk) notComparable.push('attention shift: a run was saved without attention patterns');
  const V = ha.model.vocabSize;
  const Ta = ha.tokens.length;
  const Tb = hb.tokens.length;
  const positions: PositionDiff[] = [];
  for (const p of pairs) {
    let kl = NaN;
    let topA: { id: number; prob: number }[] = [];
    let topB: { id: number; prob: number }[] = [];
    if (sameVocab && A.logits && B.logits) {
      const la = logSoftmaxRow(A.logits, p.a, V);
      const lb = logSoftmaxRow(B.logits, p.b, V);
      kl = klDivergence(la, lb);
      topA = topOf(la, topK);
      topB = topOf(lb, topK);
    }
    const idsA = new Set(topA.map((t) => t.id));
    const idsB = new Set(topB.map((t) => t.id));
    let attentionShift: number | null = null;
    if (patternsOk) {
      // Mean over heads of the row, compared over the keys both runs have (aligned), as total variation.
      const { layers: L, heads: H } = ha.model;
      const keyPairs = pairs.filter((k) => k.a <= p.a && k.b <= p.b);
      let tv = 0;
      for (const k of keyPairs) {
        let sa = 0;
        let sb = 0;
        for (let lh = 0; lh < L * H; lh++) {
          sa += A.patterns![(lh * Ta + p.a) * Ta + k.a]!;
          sb += B.patterns![(lh * Tb + p.b) * Tb + k.b]!;
        }
        tv += Math.abs(sa - sb) / (L * H);
      }
      attentionShift = tv / 2;
    }
    positions.push({ ...p, text: ha.tokens[p.a]!.text, kl, topA, topB, left: [...idsA].filter((i) => !idsB.has(i)), entered: [...idsB].filter((i) => !idsA.has(i)), attentionShift });
  }
  const headDeltas: HeadDelta[] = [];
  if (sameShape) {
    for (const x of ha.heads) {
      const y = hb.heads.find((h) => h.layer === x.layer && h.head === x.head);
      if (!y) continue;
      const delta = { layer: x.layer, head: x.head } as HeadDelta;
      for (const k of METRICS) delta[k] = x[k] === null || y[k] === null ? null : y[k]! - x[k]!;
      headDeltas.push(delta);
    }
  }
  const mostDifferent = positions.filter((p) => Number.isFinite(p.kl)).sort((x, y) => y.kl - x.kl).slice(0, 10);
  return {
    aligned: pairs.length,
    unalignedA: ha.tokens.map((_, i) => i).filter((i) => !inA.has(i)),
    unalignedB: hb.tokens.map((_, i) => i).filter((i) => !inB.has(i)),
    positions,
    headDeltas,
    mostDifferent,
    notComparable,
  };
}
