// Comparing two saved runs: baseline vs steered, two prompts, or two models sharing a tokenizer.
// Tokens are aligned by id and text (a longest common subsequence in bounded memory, so an edit in
// the middle of a prompt keeps the tokens before and after it aligned); per aligned position the
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

/** Most insertions + deletions the exact alignment explores (memory about (D+1)² int32s, time O((Ta+Tb)·D)). */
export const MAX_ALIGN_EDITS = 2048;

export interface Alignment {
  pairs: AlignedPair[];
  /** false when the runs differ in more than `maxEdits` tokens: only the common beginning and end are aligned */
  exact: boolean;
  /** tokens matched at the start and the end before the differing middle */
  prefix: number;
  suffix: number;
}

type Tokens = SavedRun['header']['tokens'];

/**
 * A longest common subsequence of the tokens (same id, text and specialness), in bounded memory:
 * the common beginning and end are matched first, then the differing middle by Myers' O(ND) diff
 * (a shortest edit script of insertions and deletions is exactly an LCS), exploring at most
 * `maxEdits` edits; past that only the beginning and end are aligned and `exact` is false.
 */
export function alignment(a: Tokens, b: Tokens, maxEdits = MAX_ALIGN_EDITS): Alignment {
  const same = (i: number, j: number) => a[i]!.id === b[j]!.id && a[i]!.text === b[j]!.text && !!a[i]!.special === !!b[j]!.special;
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && same(prefix, prefix)) prefix++;
  let suffix = 0;
  while (suffix < a.length - prefix && suffix < b.length - prefix && same(a.length - 1 - suffix, b.length - 1 - suffix)) suffix++;
  const N = a.length - prefix - suffix;
  const M = b.length - prefix - suffix;
  const head = Array.from({ length: prefix }, (_, i) => ({ a: i, b: i }));
  const tail = Array.from({ length: suffix }, (_, i) => ({ a: a.length - suffix + i, b: b.length - suffix + i }));
  const eq = (x: number, y: number) => same(prefix + x, prefix + y);
  const middle = myers(N, M, eq, maxEdits);
  if (!middle) return { pairs: [...head, ...tail], exact: false, prefix, suffix };
  return { pairs: [...head, ...middle.map((p) => ({ a: prefix + p.a, b: prefix + p.b })), ...tail], exact: true, prefix, suffix };
}

/** Myers' greedy shortest edit script; the matched pairs, or undefined past `maxD` edits. */
function myers(N: number, M: number, eq: (x: number, y: number) => boolean, maxD: number): AlignedPair[] | undefined {
  if (N === 0 || M === 0) return [];
  const max = Math.min(N + M, maxD);
  const off = max + 1;
  const V = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && V[off + k - 1]! < V[off + k + 1]!) ? V[off + k + 1]! : V[off + k - 1]! + 1;
      let y = x - k;
      while (x < N && y < M && eq(x, y)) {
        x++;
        y++;
      }
      V[off + k] = x;
      if (x >= N && y >= M) found = d;
    }
    trace.push(V.slice(off - d, off + d + 1)); // V[k] for k in -d..d
  }
  if (found < 0) return undefined;
  const pairs: AlignedPair[] = [];
  let x = N;
  let y = M;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1]!;
    const at = (k: number) => prev[k + d - 1]!;
    const k = x - y;
    const pk = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    const sx = pk === k + 1 ? px : px + 1; // where the snake of step d starts
    const sy = sx - k;
    while (x > sx && y > sy) pairs.push({ a: --x, b: --y });
    x = px;
    y = py;
  }
  while (x > 0 && y > 0) pairs.push({ a: --x, b: --y });
  return pairs.reverse();
}

/** The aligned token pairs (see `alignment`). */
export function alignTokens(a: Tokens, b: Tokens): AlignedPair[] {
  return alignment(a, b).pairs;
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

/**
 * The k largest of the n values from `off` (a log-probability row, or a row of logits), largest first,
 * ties to the lower id (ids relative to `off`): O(n·k).
 */
export function topKOf(values: ArrayLike<number>, k: number, off = 0, n = values.length - off): { id: number; logprob: number }[] {
  const top: { id: number; logprob: number }[] = [];
  for (let id = 0; id < n; id++) {
    const v = values[off + id]!;
    if (top.length === k && !(v > top[k - 1]!.logprob)) continue;
    let i = Math.min(top.length, k - 1);
    if (top.length < k) top.push({ id, logprob: v });
    while (i > 0 && top[i - 1]!.logprob < v) {
      top[i] = top[i - 1]!;
      i--;
    }
    top[i] = { id, logprob: v };
  }
  return top;
}

/**
 * topKOf(logSoftmaxRow(logits, row, V), k) without the V-long float64 row: the order of the logits is
 * the order of their log-probabilities, so the k largest are chosen on the logits (same ties) and only
 * they are shifted by the row's log-sum-exp (computed as logSoftmaxRow does, from the row's largest
 * logit, the first of the top: the same values). Two passes over the row instead of four and no
 * allocation: a saved run does this at every position.
 */
export function topLogprobsOfRow(logits: Float32Array, row: number, V: number, k: number): { id: number; logprob: number }[] {
  const off = row * V;
  const top = topKOf(logits, k, off, V);
  const max = top[0]!.logprob;
  let s = 0;
  for (let i = 0; i < V; i++) s += Math.exp(logits[off + i]! - max);
  const lse = max + Math.log(s);
  for (const t of top) t.logprob -= lse;
  return top;
}

/** The logits row of token `i`, when the run has it: every position with tensors, else the last one. */
function logitsRow(run: SavedRun, i: number): Float32Array | undefined {
  const V = run.header.model.vocabSize;
  if (run.logits) return run.logits.subarray(i * V, (i + 1) * V);
  if (run.lastLogits && i === run.header.tokens.length - 1) return run.lastLogits;
  return undefined;
}

/** K of a run's saved per-position top-K (0 without one). */
function runTopK(run: SavedRun): number {
  const T = run.header.tokens.length;
  return run.topIds && T > 0 ? run.topIds.length / T : 0;
}

/** Position i's top-k: from its logits, else from the run's saved top-K (version 2). */
function topAt(run: SavedRun, i: number, logp: Float64Array | undefined, k: number): { id: number; prob: number }[] {
  if (logp) return topKOf(logp, k).map((t) => ({ id: t.id, prob: Math.exp(t.logprob) }));
  const K = runTopK(run);
  const out: { id: number; prob: number }[] = [];
  for (let j = 0; j < Math.min(k, K); j++) out.push({ id: run.topIds![i * K + j]!, prob: Math.exp(run.topLogprobs![i * K + j]!) });
  return out;
}

/**
 * Compares two runs. Work and memory are bounded: the alignment as `alignment` says, per aligned
 * position O(V) for the distributions and O(L·H·T) for the attention shift (the patterns are read
 * once). Parts a run cannot show (a run saved without tensors has the last position's logits and
 * each position's top-K, not every position's distribution nor the patterns) are said in
 * `notComparable`, never guessed.
 */
export function compareRuns(A: SavedRun, B: SavedRun, topK = 5, labels: [string, string] = ['run A', 'run B']): CompareResult {
  const ha = A.header;
  const hb = B.header;
  const notComparable: string[] = [];
  const al = alignment(ha.tokens, hb.tokens);
  const pairs = al.pairs;
  if (!al.exact) notComparable.push(`token alignment: the runs differ in more than ${MAX_ALIGN_EDITS} inserted or deleted tokens, so only the common beginning (${al.prefix} tokens) and end (${al.suffix} tokens) are aligned`);
  const inA = new Uint8Array(ha.tokens.length);
  const inB = new Uint8Array(hb.tokens.length);
  for (const p of pairs) {
    inA[p.a] = 1;
    inB[p.b] = 1;
  }
  const who = (miss: boolean[]) => (miss[0] && miss[1] ? 'both runs were' : `${miss[0] ? labels[0] : labels[1]} was`);
  const sameVocab = ha.model.vocabSize === hb.model.vocabSize;
  if (!sameVocab) notComparable.push(`next-token distributions: the vocabularies differ (${ha.model.vocabSize} vs ${hb.model.vocabSize} tokens)`);
  const allLogits = [!!A.logits, !!B.logits];
  // how many candidates per position each run can list: all with logits, else its saved top-K
  const Kmax = Math.min(A.logits ? Infinity : runTopK(A), B.logits ? Infinity : runTopK(B));
  if (sameVocab && !(allLogits[0] && allLogits[1])) {
    const lastAligned = pairs.some((p) => p.a === ha.tokens.length - 1 && p.b === hb.tokens.length - 1) && !!logitsRow(A, ha.tokens.length - 1) && !!logitsRow(B, hb.tokens.length - 1);
    const miss = allLogits.map((x) => !x);
    const reason = [A, B].some((r, i) => miss[i] && r.omitted?.includes('logits')) ? 'every position\'s logits (too large to save)' : 'every position\'s logits (saved without tensors)';
    notComparable.push(`per-position KL: ${who(miss)} saved without ${reason}, so the KL is ${lastAligned ? 'shown for the last position only' : 'not shown'}${Kmax > 0 ? '; the top-K changes are shown at every position' : ''}`);
  }
  if (sameVocab && Kmax > 0 && Kmax < topK) notComparable.push(`top-K: a run saved without tensors keeps each position's ${Kmax} most likely tokens, so the top ${Kmax} are compared, not ${topK}`);
  const sameShape = ha.model.layers === hb.model.layers && ha.model.heads === hb.model.heads;
  if (!sameShape) notComparable.push(`heads: the models differ in shape (${ha.model.layers}×${ha.model.heads} vs ${hb.model.layers}×${hb.model.heads})`);
  const patternsOk = sameShape && !!A.patterns && !!B.patterns;
  if (sameShape && !patternsOk) {
    const miss = [!A.patterns, !B.patterns];
    const tooLarge = [A, B].some((r, i) => miss[i] && r.omitted?.includes('patterns'));
    notComparable.push(`attention shift: ${who(miss)} saved without attention patterns (${tooLarge ? 'layers × heads × tokens² too large to save' : 'saved without tensors'})`);
  }
  const V = ha.model.vocabSize;
  const Ta = ha.tokens.length;
  const Tb = hb.tokens.length;
  const positions: PositionDiff[] = [];
  // the attention shift compares rows over the aligned keys: pairs before position i are pairs[0..i]
  const { layers: L, heads: H } = ha.model;
  const rowA = new Float64Array(Ta);
  const rowB = new Float64Array(Tb);
  pairs.forEach((p, idx) => {
    let kl = NaN;
    const ra = sameVocab ? logitsRow(A, p.a) : undefined;
    const rb = sameVocab ? logitsRow(B, p.b) : undefined;
    const la = ra ? logSoftmaxRow(ra, 0, V) : undefined;
    const lb = rb ? logSoftmaxRow(rb, 0, V) : undefined;
    if (la && lb) kl = klDivergence(la, lb);
    const k = la && lb ? topK : Math.min(topK, Kmax);
    const topA = sameVocab ? topAt(A, p.a, la, k) : [];
    const topB = sameVocab ? topAt(B, p.b, lb, k) : [];
    const idsA = new Set(topA.map((t) => t.id));
    const idsB = new Set(topB.map((t) => t.id));
    let attentionShift: number | null = null;
    if (patternsOk) {
      // mean over heads of the row, compared over the keys both runs have (aligned), as total variation
      rowA.fill(0, 0, p.a + 1);
      rowB.fill(0, 0, p.b + 1);
      for (let lh = 0; lh < L * H; lh++) {
        const atA = (lh * Ta + p.a) * Ta;
        const atB = (lh * Tb + p.b) * Tb;
        for (let j = 0; j <= p.a; j++) rowA[j]! += A.patterns![atA + j]!;
        for (let j = 0; j <= p.b; j++) rowB[j]! += B.patterns![atB + j]!;
      }
      let tv = 0;
      for (let j = 0; j <= idx; j++) tv += Math.abs(rowA[pairs[j]!.a]! - rowB[pairs[j]!.b]!) / (L * H);
      attentionShift = tv / 2;
    }
    positions.push({ ...p, text: ha.tokens[p.a]!.text, kl, topA, topB, left: [...idsA].filter((i) => !idsB.has(i)), entered: [...idsB].filter((i) => !idsA.has(i)), attentionShift });
  });
  const headDeltas: HeadDelta[] = [];
  if (sameShape) {
    const byKey = new Map(hb.heads.map((h) => [h.layer * hb.model.heads + h.head, h]));
    for (const x of ha.heads) {
      const y = byKey.get(x.layer * hb.model.heads + x.head);
      if (!y) continue;
      const delta = { layer: x.layer, head: x.head } as HeadDelta;
      for (const k of METRICS) delta[k] = x[k] === null || y[k] === null ? null : y[k]! - x[k]!;
      headDeltas.push(delta);
    }
  }
  const mostDifferent = positions.filter((p) => Number.isFinite(p.kl)).sort((x, y) => y.kl - x.kl).slice(0, 10);
  return {
    aligned: pairs.length,
    unalignedA: ha.tokens.map((_, i) => i).filter((i) => !inA[i]),
    unalignedB: hb.tokens.map((_, i) => i).filter((i) => !inB[i]),
    positions,
    headDeltas,
    mostDifferent,
    notComparable,
  };
}
