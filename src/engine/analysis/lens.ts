// The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): the residual stream at
// one position after each block, read through the model's own final head (final norm, unembedding,
// and the family's final logit soft-capping where it has one), as if the model stopped there.
//
//   layer 0      the embeddings as the model scales them (position embeddings included)
//   layer l      the residual stream after block l−1 (entering block l)
//   layer L      after the last block: exactly the model's own prediction at that position
//
// One run of the lens graph (the plain graph plus the residual stream at the position, see
// GraphOptions.lens) and one run of the head graph over the L+1 normalised vectors; the
// probabilities are computed in float64 from the float32 logits.
import { EngineError } from '../errors';
import type { Model } from '../model';
import { analysisTokens, attnBiasFor, headScaleFor, logSumExp, softmax, tokenStats, topK as topOf } from '../run';
import { checkTokenIds, type PromptToken } from '../sources/tokenizer';
import { noInterventions, type Interventions } from '../../shared/interventions';

export interface LensRequest {
  prompt: string;
  /** the position read (0-based token index; default: the last) */
  position?: number;
  /** predictions per layer (default 10) */
  topK?: number;
  /** applied to the run (head scales, emphasis, sink calibration) */
  interventions?: Interventions;
  /** token ids whose probability, logit and rank are reported at every layer */
  watch?: number[];
  /** cut the prompt to this many tokens (never more than the model's max positions) */
  maxTokens?: number;
}

export interface LensToken {
  id: number;
  text: string;
  prob: number;
}

export interface WatchedToken extends LensToken {
  logprob: number;
  logit: number;
  /** 1 = the most likely token; 1 + the number of tokens with a larger logit */
  rank: number;
}

export interface LensLayer {
  /** 0 = the embeddings, L = after the last block */
  layer: number;
  top: LensToken[];
  /** in the order of the request's watch list */
  watched: WatchedToken[];
}

export interface LensResult {
  position: number;
  tokens: PromptToken[];
  /** tokens dropped because the prompt was longer than allowed */
  truncated: number;
  /** L + 1 entries, layer 0..L */
  layers: LensLayer[];
  /** [L+1, V] the lens logits at the position, layer-major (float32, as the head graph gave them) */
  logits: Float32Array;
  timings: { tokenizeMs: number; runMs: number };
}

/** Runs the logit lens at one position; see the file comment. */
export async function logitLens(model: Model, req: LensRequest, onWarning?: (msg: string) => void): Promise<LensResult> {
  if (typeof req.prompt !== 'string' || req.prompt.length === 0) throw new EngineError('PROMPT', 'the prompt is empty; write some text for the logit lens');
  const { layers: L, vocabSize: V } = model.dims;
  const k = req.topK ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new EngineError('BAD_ARGUMENT', `top-K ${k} must be a positive integer`);
  const watch = req.watch ?? [];
  for (const id of watch) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new EngineError('BAD_ARGUMENT', `watched token id ${id} is not in the vocabulary (0..${V - 1})`);
  }
  const iv = req.interventions ?? noInterventions();

  const { tokens, truncated, tokenizeMs } = await analysisTokens(model, req.prompt, req.maxTokens, onWarning);
  checkTokenIds(model.tokenizer.file, tokens, V);
  const T = tokens.length;
  const position = req.position ?? T - 1;
  if (!Number.isInteger(position) || position < 0 || position >= T) {
    throw new EngineError('BAD_ARGUMENT', `position ${position} is not a token of the prompt; it has ${T} tokens (positions 0..${T - 1})`);
  }
  const ids = tokens.map((t) => t.id);

  const t1 = performance.now();
  const out = await model.forward({ ids, headScale: headScaleFor(model, iv), attnBias: attnBiasFor(model, iv, tokens) }, { inspect: false, resid: [position] });
  const logits = await model.headLogits(out.residNormed!);
  const runMs = performance.now() - t1;
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]!)) {
      const layer = Math.floor(i / V);
      throw new EngineError('NUMERIC', `the logit lens at position ${position} gave a non-finite logit after ${layer === 0 ? 'the embeddings' : `block ${layer - 1}`} (float32 overflow in the model)`);
    }
  }

  const layers: LensLayer[] = [];
  for (let l = 0; l <= L; l++) {
    const off = l * V;
    const probs = softmax(logits, off, V);
    const top = topOf(probs, k).map(({ id, prob }) => ({ id, text: model.tokenizer.decodeToken(id), prob }));
    const lse = watch.length ? logSumExp(logits, off, V) : 0;
    const watched = watch.map((id) => ({ id, text: model.tokenizer.decodeToken(id), ...tokenStats(logits, off, V, id, lse) }));
    layers.push({ layer: l, top, watched });
  }
  return { position, tokens, truncated, layers, logits, timings: { tokenizeMs, runMs } };
}

