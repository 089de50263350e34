// What an inspection needs in memory, estimated from the model's shape and the prompt length. Used to
// explain a death by memory ("the run had 8,000 tokens and needed about 72 GB") and to format sizes.
import * as os from 'node:os';
import type { ModelDims } from './spec';

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
  /** the inspection session's own copy of the weights (onnxruntime sessions do not share them) */
  sessionWeights: number;
  /** what the run keeps for its views */
  kept: number;
  /** one layer's transient scores, softmax and metric products ([H, T, T] each), the [T, T] masks and a fixed overhead */
  transient: number;
  /** activations [T, ~8·D + 2·I] and the logits */
  activations: number;
  total: number;
}

/** onnxruntime's second session and arena beyond the weights, the engine's heap (measured, see BENCHMARKS.md) */
const RUN_OVERHEAD = 256 * 2 ** 20;

/**
 * Bytes an inspection of `tokens` tokens holds at its peak. The graph still forms one layer's scores
 * at a time (not all layers at once: inspectionGraph.ts afterMetrics): about four [H, T, T] float32
 * buffers are live at the peak (scores, biased and masked scores, softmax, the metrics' p·s) plus
 * the [T, T] masks. The inspection session holds its own copy of the weights besides the plain
 * session's. Calibrated on a SmolLM2-135M-shaped model (30 layers × 9 heads, BENCHMARKS.md): the
 * engine's peak RSS was 1.54 / 4.15 / 10.5 GiB at 1,024 / 4,096 / 8,000 tokens, this estimate
 * 1.52 / 4.11 / 11.3 GiB.
 */
export function estimateInspection(d: ModelDims, tokens: number, allLogits = false, kept: KeptState = { kind: 'qk' }): InspectionMemory {
  const T = tokens;
  const weights = 4 * parameterCount(d);
  const keptBytes =
    kept.kind === 'qk'
      ? 4 * d.layers * (T * d.headDim * (d.heads + d.kvHeads) + 2 * d.heads * T) + 4 * T * d.hiddenSize
      : 4 * kept.layers * d.heads * T * T;
  const transient = 4 * 4 * d.heads * T * T + 8 * T * T + RUN_OVERHEAD;
  const activations = 4 * T * (8 * d.hiddenSize + 2 * d.intermediateSize) + 4 * (allLogits ? T : 1) * d.vocabSize;
  return { weights, sessionWeights: weights, kept: keptBytes, transient, activations, total: 2 * weights + keptBytes + transient + activations };
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
