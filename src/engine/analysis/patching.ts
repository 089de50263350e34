// Activation patching per head (clean → corrupt), as TransformerLens patches blocks.{l}.attn.hook_z:
// run the corrupt prompt with one head's output z (its headDim slice of the attention output before
// the output projection, at every position) replaced by that head's z from the clean run, and
// measure log p(target) at the last position.
//
//   value    log p(target) of the patched corrupt run
//   clean    log p(target) of the clean run;  corrupt: of the unpatched corrupt run
//   effect   (value − corrupt) / (clean − corrupt): 0 = the head carries none of the difference,
//            1 = patching it alone restores the clean value; null when clean and corrupt agree to
//            within EFFECT_MIN_GAP (a ratio of float32 rounding noise would mean nothing)
//   target   the clean run's top-1 unless given
//
// Both prompts must have the same number of tokens (positions correspond). One run of the patch
// graph (GraphOptions.patch) for the clean prompt (fetching every head's z), one for the corrupt
// baseline, then one per head; sequential, with progress and cancellation between runs.
import { EngineError } from '../errors';
import type { Model } from '../model';
import { argmax, checkHead, logSumExp } from '../run';
import { checkTokenIds, type PromptToken } from '../sources/tokenizer';
import { allHeads, type HeadRef } from '../../shared/heads';

/** |clean − corrupt| at or below this (nats) gives effect null. */
export const EFFECT_MIN_GAP = 1e-6;

export interface PatchRequest {
  clean: string;
  corrupt: string;
  /** the token whose log-probability is measured (default: the clean run's top-1) */
  targetId?: number;
  /** the heads to patch, one at a time (default: every head, layer-major) */
  heads?: HeadRef[];
}

export interface PatchHooks {
  /** after the corrupt baseline (done = 0) and after each patched run */
  onProgress?(done: number, total: number): void;
  /** asked before each run; true stops with a CANCELLED error */
  isCancelled?(): boolean;
  onWarning?(message: string): void;
}

export interface HeadPatchEffect extends HeadRef {
  /** log p(target) of the corrupt run with this head's z from the clean run */
  value: number;
  /** (value − corrupt) / (clean − corrupt), null when clean ≈ corrupt */
  effect: number | null;
}

export interface PatchResult {
  targetId: number;
  targetText: string;
  /** log p(target) of the clean run */
  clean: number;
  /** log p(target) of the unpatched corrupt run */
  corrupt: number;
  /** in the order of the request's heads (layer-major by default) */
  heads: HeadPatchEffect[];
  cleanTokens: PromptToken[];
  corruptTokens: PromptToken[];
  /** tokens dropped from each prompt (both were longer than the model's max positions) */
  truncated: number;
  timings: { tokenizeMs: number; runMs: number };
}

/** Patches each head alone from the clean run into the corrupt run; see the file comment. */
export async function patchHeads(model: Model, req: PatchRequest, hooks: PatchHooks = {}): Promise<PatchResult> {
  for (const [name, p] of [['clean', req.clean], ['corrupt', req.corrupt]] as const) {
    if (typeof p !== 'string' || p.length === 0) throw new EngineError('PROMPT', `the ${name} prompt is empty; write some text to patch`);
  }
  const { layers: L, heads: H, vocabSize: V } = model.dims;
  if (req.targetId !== undefined && (!Number.isInteger(req.targetId) || req.targetId < 0 || req.targetId >= V)) {
    throw new EngineError('BAD_ARGUMENT', `target token id ${req.targetId} is not in the vocabulary (0..${V - 1})`);
  }
  const heads = req.heads ?? allHeads(L, H);
  for (const h of heads) checkHead(model, h, 'patching');

  const t0 = performance.now();
  let cleanTokens = await model.tokenizer.encode(req.clean);
  let corruptTokens = await model.tokenizer.encode(req.corrupt);
  const tokenizeMs = performance.now() - t0;
  if (cleanTokens.length !== corruptTokens.length) {
    throw new EngineError('PROMPT', `the clean prompt has ${cleanTokens.length} tokens and the corrupt prompt ${corruptTokens.length}; patching needs prompts of the same token count`);
  }
  if (cleanTokens.length === 0) throw new EngineError('PROMPT', 'the prompts produced no tokens');
  let truncated = 0;
  const limit = model.dims.maxPositions;
  if (cleanTokens.length > limit) {
    truncated = cleanTokens.length - limit;
    cleanTokens = cleanTokens.slice(0, limit);
    corruptTokens = corruptTokens.slice(0, limit);
    hooks.onWarning?.(`the prompts have ${limit + truncated} tokens but the model takes at most ${limit}; the last ${truncated} of each were dropped`);
  }
  checkTokenIds(model.tokenizer.file, cleanTokens, V);
  checkTokenIds(model.tokenizer.file, corruptTokens, V);
  const T = cleanTokens.length;
  const headScale = new Float32Array(L * H).fill(1);
  const attnBias = new Float32Array(L * H * T);
  const total = heads.length;

  const t1 = performance.now();
  const cleanRun = await model.forward({ ids: cleanTokens.map((t) => t.id), headScale, attnBias }, { inspect: false, z: true });
  const targetId = req.targetId ?? argmax(cleanRun.logits, 0, V);
  const logp = (lg: Float32Array, what: string) => {
    const v = lg[targetId]! - logSumExp(lg, 0, V);
    if (!Number.isFinite(v)) throw new EngineError('NUMERIC', `the ${what} run gave non-finite logits at the last position (float32 overflow in the model)`);
    return v;
  };
  const clean = logp(cleanRun.logits, 'clean');

  const corruptIds = corruptTokens.map((t) => t.id);
  const mask = new Float32Array(L * H);
  const patch = { z: cleanRun.z!, mask };
  const run = async (done: number, what: string): Promise<number> => {
    if (hooks.isCancelled?.()) throw new EngineError('CANCELLED', `activation patching was cancelled after ${done} of ${total} heads`);
    return logp((await model.forward({ ids: corruptIds, headScale, attnBias }, { inspect: false, patch })).logits, what);
  };
  const corrupt = await run(0, 'corrupt');
  hooks.onProgress?.(0, total);
  const gap = clean - corrupt;

  const out: HeadPatchEffect[] = [];
  for (const h of heads) {
    const i = h.layer * H + h.head;
    mask[i] = 1;
    const value = await run(out.length, `patched L${h.layer}H${h.head}`);
    mask[i] = 0;
    out.push({ layer: h.layer, head: h.head, value, effect: Math.abs(gap) <= EFFECT_MIN_GAP ? null : (value - corrupt) / gap });
    hooks.onProgress?.(out.length, total);
  }
  return {
    targetId,
    targetText: model.tokenizer.decodeToken(targetId),
    clean,
    corrupt,
    heads: out,
    cleanTokens,
    corruptTokens,
    truncated,
    timings: { tokenizeMs, runMs: performance.now() - t1 },
  };
}

/** The heads ordered by effect, largest first (null effects last). */
export function rankByEffect(heads: readonly HeadPatchEffect[]): HeadPatchEffect[] {
  return [...heads].sort((a, b) => (b.effect ?? -Infinity) - (a.effect ?? -Infinity) || a.layer - b.layer || a.head - b.head);
}

