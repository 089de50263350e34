// Text generation with the KV-cache graph: one prefill over the prompt, then one position per new
// token, so each token costs the same whatever the length so far. The interventions of a run
// (head masks/scales, PASTA emphasis, sink calibration) apply at every step: generated tokens lie
// outside an emphasized span, so steered heads get ln α on them too.
import { estimateGeneration, formatBytes, systemMemoryBudget, type MemoryBudget } from './memoryEstimate';
import { EngineError } from './errors';
import type { KvCache, Model } from './model';
import type { ModelDims } from './spec';
import { attnBiasFor, headScaleFor, softmax, steeredHeads, tokenNote, type Interventions } from './run';
import { checkTokenIds, type PromptToken } from './sources/tokenizer';
import { checkFiniteRun, firstNonFinite } from './finiteCheck';
import { mulberry32 } from '../shared/random';

export interface GenerateRequest {
  prompt: string;
  /** none when absent */
  interventions?: Interventions;
  maxTokens: number;
  /** 0 = greedy (argmax); otherwise sample from softmax(logits / temperature) */
  temperature?: number;
  /** seed of the sampler (mulberry32); the same seed gives the same text */
  seed?: number;
  /** stop at this token id (the model's eos_token_id by default, when it has one) */
  stopTokenId?: number;
  /**
   * token ids whose probability is reported at every step (GeneratedToken.watched, in this order):
   * softmax of the step's logits, the same distribution as `prob`; at most MAX_GENERATE_WATCH ids
   */
  watch?: number[];
}

/** At most this many ids are watched during generation (each adds a number per step to the stream). */
export const MAX_GENERATE_WATCH = 64;

export interface GeneratedToken {
  id: number;
  text: string;
  /** probability of this token under the (temperature-free) model distribution */
  prob: number;
  /** the probabilities of `GenerateRequest.watch`'s ids at this step, in that order (absent without `watch`) */
  watched?: number[];
}

export interface GenerateResult {
  promptTokens: PromptToken[];
  tokens: GeneratedToken[];
  text: string;
  stopReason: 'maxTokens' | 'stopToken' | 'maxPositions' | 'cancelled';
  timings: { prefillMs: number; decodeMs: number; perTokenMs: number };
}


function pick(probs: Float64Array, logits: Float32Array, temperature: number, rand: () => number): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
    return best;
  }
  const scaled = softmax(Float32Array.from(logits, (v) => v / temperature));
  let r = rand();
  for (let i = 0; i < scaled.length; i++) {
    r -= scaled[i]!;
    if (r < 0) return i;
  }
  return scaled.length - 1;
}

/**
 * The step's logits hold NaN/Infinity: throws NUMERIC. To say where it began, the positions so far
 * are re-run once through the inspection graph (its head metrics name the first layer whose
 * attention is non-finite, its final hidden states the first position); when that run is finite
 * (the graphs differ in rounding) or fails, the message names the step's position only.
 */
async function refuseNonFinite(model: Model, promptTokens: PromptToken[], generated: GeneratedToken[], logits: Float32Array, headScale: Float32Array, attnBias: Float32Array): Promise<never> {
  const { layers: L, heads: H, vocabSize: V } = model.dims;
  const ids = [...promptTokens.map((t) => t.id), ...generated.map((t) => t.id)];
  const what = generated.length ? `while generating token ${generated.length + 1}, the model` : 'the model (on the prompt, before generating)';
  const tokenAt = (pos: number) => tokenNote(pos < promptTokens.length ? promptTokens[pos] : { ...generated[pos - promptTokens.length]!, start: 0, end: 0, special: false });
  let diag: Awaited<ReturnType<Model['forward']>> | undefined;
  try {
    diag = await model.forward({ ids, headScale, attnBias }, { inspect: true, layers: [] });
  } catch {
    diag = undefined;
  }
  if (diag) checkFiniteRun({ L, H, V, ids, logits: diag.logits, hidden: diag.hidden, metrics: diag.metrics, tokenAt }, what);
  checkFiniteRun({ L, H, V, ids, logits, tokenAt }, what);
  throw new Error('internal: non-finite logits passed the finite check'); // unreachable: the line above throws
}

/**
 * The cache length at which cached decoding re-runs the whole sequence, or undefined: Phi-3 models
 * whose RoPE switches to longrope's long factors past original_max_position_embeddings
 * (transformers 5 Phi3ForCausalLM.prepare_inputs_for_generation drops the cache when the input
 * reaches original_max + 1 tokens with at most original_max cached). Other families keep their
 * cache across the switch, as transformers does.
 */
export function longropeRecomputeAt(d: ModelDims): number | undefined {
  if (d.modelType !== 'phi3') return undefined;
  const ropes = [d.rope, ...(d.layerRope ?? [])];
  for (const r of ropes) if (r?.byLength?.kind === 'longrope') return r.byLength.originalMax;
  return undefined;
}

/**
 * Refuses, in one line naming tokens and gigabytes, a generation whose KV cache and prefill would not
 * fit in memory (the weights are already resident; see estimateGeneration).
 */
export function checkGenerationMemory(model: Model, promptTokens: number, newTokens: number, budget: MemoryBudget): void {
  const need = estimateGeneration(model.dims, promptTokens, newTokens);
  const run = need.total - need.weights;
  if (run <= budget.available && need.total <= budget.total) return;
  const has = run > budget.available ? `only about ${formatBytes(budget.available)} is free for it` : `this machine has ${formatBytes(budget.total)} in all (with a margin)`;
  throw new EngineError(
    'PROMPT',
    `generating ${newTokens.toLocaleString('en-US')} tokens after a ${promptTokens.toLocaleString('en-US')}-token prompt needs about ${formatBytes(need.total)} of memory (${formatBytes(need.kv)} for the keys and values, ${formatBytes(need.prefill)} for the prompt's pass, ${formatBytes(need.weights)} for the model) but ${has}; use a shorter prompt or generate fewer tokens`,
  );
}

/** `memory`: the budget to check against (default: this machine's; tests pass their own). */
export async function generate(model: Model, req: GenerateRequest, onToken?: (t: GeneratedToken) => void, isCancelled?: () => boolean, memory?: MemoryBudget): Promise<GenerateResult> {
  if (!req.prompt) throw new EngineError('PROMPT', 'the prompt is empty; write some text to continue');
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new EngineError('BAD_ARGUMENT', `the number of tokens to generate (${req.maxTokens}) must be a positive integer`);
  const temperature = req.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) throw new EngineError('BAD_ARGUMENT', `temperature ${temperature} must be 0 (greedy) or positive`);
  const { layers: L, heads: H, vocabSize: V, maxPositions } = model.dims;
  const watch = req.watch ?? [];
  if (!Array.isArray(watch) || watch.length > MAX_GENERATE_WATCH) throw new EngineError('BAD_ARGUMENT', `at most ${MAX_GENERATE_WATCH} token ids can be watched while generating`);
  const badId = watch.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
  if (badId !== undefined) throw new EngineError('BAD_ARGUMENT', `watched token id ${badId} is not in the vocabulary (0..${V - 1})`);
  const promptTokens = await model.tokenizer.encode(req.prompt);
  checkTokenIds(model.tokenizer.file, promptTokens, V);
  if (promptTokens.length >= maxPositions) throw new EngineError('PROMPT', `the prompt has ${promptTokens.length} tokens; the model takes at most ${maxPositions} positions, so nothing can be generated`);
  checkGenerationMemory(model, promptTokens.length, req.maxTokens, memory ?? systemMemoryBudget());
  const headScale = headScaleFor(model, req.interventions);
  const promptBias = attnBiasFor(model, req.interventions, promptTokens);
  // Bias for keys added later: PASTA's ln α on steered heads (generated text is outside the span).
  const laterBias = new Float32Array(L * H);
  if (req.interventions?.emphasis) {
    const lnA = Math.log(req.interventions.emphasis.alpha);
    for (const h of steeredHeads(model, req.interventions)) laterBias[h.layer * H + h.head] = lnA;
  }
  const biasFor = (K: number): Float32Array => {
    const T0 = promptTokens.length;
    const b = new Float32Array(L * H * K);
    for (let lh = 0; lh < L * H; lh++) {
      b.set(promptBias.subarray(lh * T0, lh * T0 + T0), lh * K);
      b.fill(laterBias[lh]!, lh * K + T0, lh * K + K);
    }
    return b;
  };
  const stop = req.stopTokenId ?? model.eosTokenId;
  const recomputeAt = longropeRecomputeAt(model.dims);
  const rand = mulberry32(req.seed ?? 0);
  const tokens: GeneratedToken[] = [];
  const t0 = performance.now();
  let cache: KvCache | undefined;
  let step = await model.decode(promptTokens.map((t) => t.id), undefined, headScale, biasFor(promptTokens.length));
  const prefillMs = performance.now() - t0;
  let stopReason: GenerateResult['stopReason'] = 'maxTokens';
  const t1 = performance.now();
  for (;;) {
    cache = step.present;
    if (firstNonFinite(step.logits, 0, V) >= 0) await refuseNonFinite(model, promptTokens, tokens, step.logits, headScale, biasFor(cache.length));
    const probs = softmax(step.logits, 0, V);
    const id = pick(probs, step.logits, temperature, rand);
    const tok: GeneratedToken = { id, text: model.tokenizer.decodeToken(id), prob: probs[id]! };
    if (req.watch) tok.watched = watch.map((w) => probs[w]!);
    tokens.push(tok);
    onToken?.(tok);
    if (stop !== undefined && id === stop) {
      stopReason = 'stopToken';
      break;
    }
    if (tokens.length >= req.maxTokens) break;
    if (cache.length + 1 > maxPositions) {
      stopReason = 'maxPositions';
      break;
    }
    if (isCancelled?.()) {
      stopReason = 'cancelled';
      break;
    }
    // Phi-3 with longrope: the step that takes the sequence past original_max_position_embeddings
    // re-runs the whole sequence (transformers' Phi3ForCausalLM drops its cache there), so every
    // key is rotated with the long factors from then on, as a forward over the whole text would.
    if (cache.length === recomputeAt) step = await model.decode([...promptTokens.map((t) => t.id), ...tokens.map((t) => t.id)], undefined, headScale, biasFor(cache.length + 1));
    else step = await model.decode([id], cache, headScale, biasFor(cache.length + 1));
  }
  const decodeMs = performance.now() - t1;
  return {
    promptTokens,
    tokens,
    text: await model.tokenizer.decode(tokens.map((t) => t.id)),
    stopReason,
    timings: { prefillMs, decodeMs, perTokenMs: tokens.length > 1 ? decodeMs / (tokens.length - 1) : 0 },
  };
}
