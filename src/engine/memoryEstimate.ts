// What an inspection needs in memory, estimated from the model's shape and the prompt length. Used to
// explain a death by memory ("the run had 8,000 tokens and needed about 72 GB") and to format sizes.
import * as os from 'node:os';
import type { ModelDims } from './spec';
import { BLOCK_ELEMENTS, BLOCK_ROWS, MATCH_LIST_VALUES } from './graph/blockedAttention';

/** Parameters of the model (float32 after conversion: 4 bytes each). */
export function parameterCount(d: ModelDims): number {
  const D = d.hiddenSize;
  const attn = D * d.headDim * (d.heads + 2 * d.kvHeads) + d.heads * d.headDim * D;
  const mlp = (d.gatedMlp ? 3 : 2) * D * d.intermediateSize;
  const embed = d.vocabSize * D * (d.tiedEmbeddings ? 1 : 2);
  return d.layers * (attn + mlp + 4 * D) + embed;
}

/** What an inspection run holds for its views (see estimateInspection). */
export type KeptState =
  /** a kept run (the extension's): every layer's queries, keys, row lse and bias, O(L·(H + KV)·T·d) */
  | { kind: 'qk' }
  /** fetched patterns [H, T, T] of `layers` layers (the CLI's --attention) */
  | { kind: 'patterns'; layers: number };

export interface InspectionMemory {
  /** the float32 weights (already resident once the model is open) */
  weights: number;
  /**
   * a second session's copy of the weights (onnxruntime sessions do not share them): a pattern run
   * opens the inspection session beside the plain one; a kept run's session is the one opened first
   */
  sessionWeights: number;
  /** what the run keeps for its views */
  kept: number;
  /**
   * one attention block's transient scores, softmax and metric products ([H, B, T] each, B·H·T at
   * most BLOCK_ELEMENTS when the graph runs in blocks, else B = T), its [B, T] masks, the run-wide
   * induction/duplicate-token match lists of a blocked run (at most MATCH_LIST_VALUES int32) and a
   * fixed overhead
   */
  transient: number;
  /** activations [T, ~8·D + 2·I] and the logits */
  activations: number;
  total: number;
}

/** onnxruntime's second session and arena beyond the weights, the engine's heap (measured, see BENCHMARKS.md) */
const RUN_OVERHEAD = 256 * 2 ** 20;

/**
 * Bytes an inspection of `tokens` tokens holds at its peak. A run that fetches no patterns (kept runs,
 * metrics only) takes the qk graph, whose attention runs in blocks of query rows
 * (graph/blockedAttention.ts): about five [H, B, T] float32 buffers are live at the peak (scores,
 * biased and masked scores, softmax, the metrics' p·s) plus the block's [B, T] masks, with B·H·T at
 * most BLOCK_ELEMENTS. A run that fetches patterns forms each layer's whole [H, T, T] (B = T) and
 * opens a second session (the inspection graph beside the plain one) with its own copy of the
 * weights. Calibrated on a SmolLM2-135M-shaped model (30 layers × 9 heads, BENCHMARKS.md "Long
 * prompts"): the engine's peak was 0.88 / 1.46 / 2.22 GiB at 1,024 / 4,096 / 8,000 tokens, this estimate 0.95 / 1.54 / 2.29 GiB.
 */
export function estimateInspection(d: ModelDims, tokens: number, allLogits = false, kept: KeptState = { kind: 'qk' }): InspectionMemory {
  const T = tokens;
  const weights = 4 * parameterCount(d);
  const blocked = kept.kind === 'qk' || kept.layers === 0;
  const keptBytes =
    kept.kind === 'qk'
      ? 4 * d.layers * (T * d.headDim * (d.heads + d.kvHeads) + 2 * d.heads * T) + 4 * T * d.hiddenSize
      : 4 * kept.layers * d.heads * T * T;
  const rows = blocked ? Math.max(1, Math.min(T, BLOCK_ROWS, Math.floor(BLOCK_ELEMENTS / (d.heads * T)))) : T;
  // the match lists (int32): 2 lists of nb rows of at most B·T pairs, and never past their limit
  const matchLists = blocked ? 4 * Math.min(MATCH_LIST_VALUES, 2 * Math.ceil(T / rows) * rows * T) : 0;
  const transient = (blocked ? 5 : 4) * 4 * d.heads * rows * T + 8 * rows * T + matchLists + RUN_OVERHEAD;
  const activations = 4 * T * (8 * d.hiddenSize + 2 * d.intermediateSize) + 4 * (allLogits ? T : 1) * d.vocabSize;
  const sessionWeights = blocked ? 0 : weights;
  // A kept run's queries and keys are graph outputs, copied into the caller's buffers when the run
  // ends; onnxruntime's own copies are freed one by one as they are copied (no CPU arena, ortSession.ts),
  // which measured as up to 1.65× the kept bytes at the peak (SmolLM2-135M shape, 1,024–8,000 tokens; 1.7 here).
  const keptPeak = kept.kind === 'qk' ? 1.7 * keptBytes : keptBytes;
  return { weights, sessionWeights, kept: keptBytes, transient, activations, total: weights + sessionWeights + keptPeak + transient + activations };
}

/**
 * Bytes a generation holds at its peak: the weights (the KV-cache graph's session), the keys and
 * values of every position up to the last (float32 [KV, K, hd] per layer, twice during a step: the
 * past fed in and the present written out), the prefill's attention block and activations (the
 * prompt's attention runs in blocks of rows, as in estimateInspection) and a fixed overhead.
 */
export function estimateGeneration(d: ModelDims, promptTokens: number, newTokens: number): { weights: number; kv: number; prefill: number; total: number } {
  const T = promptTokens;
  const K = Math.min(T + newTokens, d.maxPositions);
  const weights = 4 * parameterCount(d);
  const kv = 2 * 4 * 2 * d.layers * d.kvHeads * d.headDim * K;
  const rows = Math.max(1, Math.min(T, BLOCK_ROWS, Math.floor(BLOCK_ELEMENTS / (d.heads * T))));
  const prefill = 3 * 4 * d.heads * rows * T + 8 * rows * T + 4 * T * (8 * d.hiddenSize + 2 * d.intermediateSize) + 4 * d.vocabSize + RUN_OVERHEAD;
  return { weights, kv, prefill, total: weights + kv + prefill };
}

/** Total bytes of estimateInspection (explains a death by memory; see engineHost). */
export function estimateInspectionBytes(d: ModelDims, tokens: number, allLogits = false, kept: KeptState = { kind: 'qk' }): number {
  return estimateInspection(d, tokens, allLogits, kept).total;
}

/** Memory the machine can give a run: what is available now (the weights are already resident), less a margin. */
export interface MemoryBudget {
  /** bytes available for what a run adds beyond the open model (os.freemem() less a margin) */
  available: number;
  /** bytes the whole process may hold (os.totalmem() less a margin) */
  total: number;
}

/** The budget from the operating system: 85% of free memory for the run's own buffers, 90% of all memory in total. */
export function systemMemoryBudget(): MemoryBudget {
  return { available: 0.85 * os.freemem(), total: 0.9 * os.totalmem() };
}

/** Whether an inspection of `tokens` tokens fits the budget (the weights count against `total` only: they are already loaded). */
export function inspectionFits(d: ModelDims, tokens: number, budget: MemoryBudget, allLogits = false, kept: KeptState = { kind: 'qk' }): boolean {
  const m = estimateInspection(d, tokens, allLogits, kept);
  return m.total - m.weights <= budget.available && m.total <= budget.total;
}

/** The largest token count ≤ `max` whose inspection fits the budget (0 when not even one token fits). */
export function tokensThatFit(d: ModelDims, max: number, budget: MemoryBudget, allLogits = false, kept: KeptState = { kind: 'qk' }): number {
  if (inspectionFits(d, max, budget, allLogits, kept)) return max;
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (inspectionFits(d, mid, budget, allLogits, kept)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** "1.3 GB", "640 MB" */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} GB`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}
