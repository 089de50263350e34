// What an inspection needs in memory, estimated from the model's shape and the prompt length. Used to
// explain a death by memory ("the run had 8,000 tokens and needed about 72 GB") and to format sizes.
import type { ModelDims } from './spec';

/** Parameters of the model (float32 after conversion: 4 bytes each). */
export function parameterCount(d: ModelDims): number {
  const D = d.hiddenSize;
  const attn = D * d.headDim * (d.heads + 2 * d.kvHeads) + d.heads * d.headDim * D;
  const mlp = (d.gatedMlp ? 3 : 2) * D * d.intermediateSize;
  const embed = d.vocabSize * D * (d.tiedEmbeddings ? 1 : 2);
  return d.layers * (attn + mlp + 4 * D) + embed;
}

/**
 * Bytes an inspection of `tokens` tokens holds at its peak: the float32 weights, every layer's kept
 * attention probabilities [L, H, T, T], one layer's transient scores, softmax and masks (about three
 * [H, T, T] buffers), activations [T, ~8·D], and the logits ([T, V] with every position's logits, else
 * [V]).
 */
export function estimateInspectionBytes(d: ModelDims, tokens: number, allLogits = false): number {
  const T = tokens;
  const weights = 4 * parameterCount(d);
  const kept = 4 * d.layers * d.heads * T * T;
  const transient = 3 * 4 * d.heads * T * T;
  const activations = 4 * T * (8 * d.hiddenSize + 2 * d.intermediateSize);
  const logits = 4 * (allLogits ? T : 1) * d.vocabSize;
  return weights + kept + transient + activations + logits;
}

/** "1.3 GB", "640 MB" */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} GB`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}
