// RunRequest (prompt + interventions) -> RunResult (serialisable): the one entry point the CLI,
// the worker and the tests share.
import { EngineError } from './errors';
import type { Model } from './model';
import { checkTokenIds, type PromptToken } from './sources/tokenizer';
import { checkFiniteRun } from './finiteCheck';
import { allHeads, headKey, METRICS, type HeadRef, type HeadSummary } from '../shared/heads';
import { interventionProblems, type Interventions } from '../shared/interventions';

export type { HeadSummary, Interventions };

export interface RunRequest {
  prompt: string;
  /** none when absent */
  interventions?: Interventions;
  /** which heads' attention patterns to return */
  attention?: 'all' | 'none' | HeadRef[];
  logits?: boolean;
  topK?: number;
  /** logits for every position (else only the last) */
  allLogits?: boolean;
  /** cut the prompt to this many tokens (never more than the model's max positions) */
  maxTokens?: number;
}

export interface RunResult {
  model: { arch: string; modelType: string; layers: number; heads: number; kvHeads: number; hiddenSize: number; vocabSize: number; hash: string; dir: string };
  device: string;
  deviceNote?: string;
  tokens: PromptToken[];
  /** tokens dropped because the prompt was longer than the model's max positions */
  truncated: number;
  /** [vocab] logits at the last position (only when asked) */
  lastLogits?: Float32Array;
  /** [T, vocab] (only with allLogits) */
  allLogits?: Float32Array;
  /** [T, D] final hidden states (without allLogits): Model.headLogits turns them into allLogits */
  hidden?: Float32Array;
  next: { id: number; text: string; prob: number }[];
  heads: HeadSummary[];
  /** per layer with at least one requested head: [H, T, T] row-major */
  patterns: Map<number, Float32Array>;
  /** the requested heads, in order */
  attentionHeads: HeadRef[];
  timings: { loadMs: number; tokenizeMs: number; runMs: number };
}

/** Throws BAD_ARGUMENT, in engine terms, when `h` is not a head of the model. */
export function checkHead(model: Model, h: HeadRef, what: string): void {
  const { layers, heads } = model.dims;
  if (!Number.isInteger(h.layer) || !Number.isInteger(h.head) || h.layer < 0 || h.layer >= layers || h.head < 0 || h.head >= heads) {
    throw new EngineError('BAD_ARGUMENT', `${what}: head ${headKey(h)} does not exist; this model has layers 0..${layers - 1} and heads 0..${heads - 1}`);
  }
}

/** Throws BAD_ARGUMENT with the first problem of `iv` for this model (and prompt). */
export function checkInterventions(model: Model, iv: Interventions, prompt?: string): void {
  const problems = interventionProblems(iv, model.dims.layers, model.dims.heads, prompt?.length);
  if (problems.length) throw new EngineError('BAD_ARGUMENT', problems[0]!);
}

/** The [L, H] head_scale input for a set of interventions. */
export function headScaleFor(model: Model, iv: Interventions | undefined): Float32Array {
  const { layers: L, heads: H } = model.dims;
  const s = new Float32Array(L * H).fill(1);
  if (!iv) return s;
  checkInterventions(model, iv);
  for (const h of iv.scales) s[h.layer * H + h.head] = h.value;
  return s;
}

/** The heads PASTA steers (every head for 'all'). */
export function steeredHeads(model: Model, iv: Interventions): HeadRef[] {
  const e = iv.emphasis;
  return !e ? [] : e.heads === 'all' ? allHeads(model.dims.layers, model.dims.heads) : e.heads;
}

/** The [L, H, T] attn_bias input: PASTA emphasis and sink calibration. */
export function attnBiasFor(model: Model, iv: Interventions | undefined, tokens: PromptToken[]): Float32Array {
  const { layers: L, heads: H } = model.dims;
  const T = tokens.length;
  const bias = new Float32Array(L * H * T);
  if (!iv) return bias;
  checkInterventions(model, iv);
  if (iv.emphasis) {
    const { start, end, alpha } = iv.emphasis;
    // A token is inside the span when its characters overlap it; zero-width special tokens are outside.
    const inside = tokens.map((t) => t.end > start && t.start < end);
    if (!inside.some(Boolean)) throw new EngineError('BAD_ARGUMENT', `emphasis: span ${start}:${end} covers no token of the prompt`);
    const lnA = Math.log(alpha);
    for (const h of steeredHeads(model, iv)) {
      const base = (h.layer * H + h.head) * T;
      for (let k = 0; k < T; k++) if (!inside[k]) bias[base + k]! += lnA;
    }
  }
  if (iv.sink) {
    const lnV = Math.log(iv.sink.value);
    for (const h of iv.sink.heads) bias[(h.layer * H + h.head) * T]! += lnV;
  }
  return bias;
}

export function softmax(logits: Float32Array, offset = 0, n = logits.length - offset): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp(logits[offset + i]! - max);
  for (let i = 0; i < n; i++) p[i]! /= sum;
  return p;
}

export function topK(probs: Float64Array, k: number): { id: number; prob: number }[] {
  const out: { id: number; prob: number }[] = [];
  for (let id = 0; id < probs.length; id++) {
    const prob = probs[id]!;
    if (out.length < k) out.push({ id, prob });
    else if (prob > out[out.length - 1]!.prob) out[out.length - 1] = { id, prob };
    else continue;
    out.sort((a, b) => b.prob - a.prob || a.id - b.id);
  }
  return out;
}

/** ` ("text")` of a token for messages (shortened). */
export function tokenNote(t: PromptToken | undefined): string {
  if (!t) return '';
  const s = t.text.length > 24 ? t.text.slice(0, 24) + '…' : t.text;
  return ` (${JSON.stringify(s)})`;
}

/** `onTokens` hears the prompt's token count before the model runs (the engine process reports what a run needs). */
export async function runInspection(model: Model, req: RunRequest, onWarning?: (msg: string) => void, onTokens?: (tokens: number) => void): Promise<RunResult> {
  if (typeof req.prompt !== 'string' || req.prompt.length === 0) throw new EngineError('PROMPT', 'the prompt is empty; write some text to inspect');
  const { layers: L, heads: H } = model.dims;
  const t0 = performance.now();
  let tokens = await model.tokenizer.encode(req.prompt);
  const tokenizeMs = performance.now() - t0;
  if (tokens.length === 0) throw new EngineError('PROMPT', 'the prompt produced no tokens');
  let truncated = 0;
  const limit = Math.min(model.dims.maxPositions, req.maxTokens ?? Infinity);
  if (tokens.length > limit) {
    truncated = tokens.length - limit;
    tokens = tokens.slice(0, limit);
    const why = limit === model.dims.maxPositions ? 'the model takes at most' : 'the token limit is';
    onWarning?.(`the prompt has ${tokens.length + truncated} tokens but ${why} ${limit}; the last ${truncated} were dropped`);
  }
  const T = tokens.length;
  const ids = tokens.map((t) => t.id);
  checkTokenIds(model.tokenizer.file, tokens, model.dims.vocabSize);
  onTokens?.(T);

  let attentionHeads: HeadRef[];
  if (req.attention === 'all') attentionHeads = allHeads(L, H);
  else if (!req.attention || req.attention === 'none') attentionHeads = [];
  else {
    for (const h of req.attention) checkHead(model, h, 'attention');
    attentionHeads = req.attention;
  }
  const layers = [...new Set(attentionHeads.map((h) => h.layer))].sort((a, b) => a - b);

  const headScale = headScaleFor(model, req.interventions);
  const attnBias = attnBiasFor(model, req.interventions, tokens);
  const t1 = performance.now();
  const out = await model.forward({ ids, headScale, attnBias }, { inspect: true, allLogits: req.allLogits, layers });
  const runMs = performance.now() - t1;

  const V = model.dims.vocabSize;
  checkFiniteRun({ L, H, V, ids, logits: out.logits, hidden: out.hidden, metrics: out.metrics, tokenAt: (pos) => tokenNote(tokens[pos]) });
  const lastOffset = out.logits.length - V;
  const probs = softmax(out.logits, lastOffset, V);
  const next = topK(probs, req.topK ?? 10).map(({ id, prob }) => ({ id, prob, text: model.tokenizer.decodeToken(id) }));
  const heads: HeadSummary[] = [];
  const m = out.metrics!;
  const nm = METRICS.length;
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const at = (l * H + h) * nm;
      const summary = { layer: l, head: h } as HeadSummary;
      METRICS.forEach((name, i) => (summary[name] = Number.isFinite(m[at + i]!) && T > 1 ? m[at + i]! : null));
      heads.push(summary);
    }
  }
  return {
    model: { arch: model.dims.arch, modelType: model.dims.modelType, layers: L, heads: H, kvHeads: model.dims.kvHeads, hiddenSize: model.dims.hiddenSize, vocabSize: V, hash: model.hash, dir: model.dir },
    device: model.device,
    deviceNote: model.deviceNote,
    tokens,
    truncated,
    lastLogits: req.logits ? out.logits.slice(lastOffset) : undefined,
    allLogits: req.allLogits ? out.logits : undefined,
    hidden: out.hidden,
    next,
    heads,
    patterns: out.patterns,
    attentionHeads,
    timings: { loadMs: model.loadMs, tokenizeMs, runMs },
  };
}
