// RunRequest (prompt + interventions) -> RunResult (serialisable): the one entry point the CLI,
// the worker and the tests share.
import { EngineError } from './errors';
import type { ForwardOutputs, Model } from './model';
import type { ModelDims } from './spec';
import { checkTokenIds, type PromptToken } from './sources/tokenizer';
import { checkFiniteRun } from './finiteCheck';
import { layerScores, type LayerScores } from './graph/attentionScores';
import { estimateInspection, formatBytes, inspectionFits, systemMemoryBudget, tokensThatFit, type KeptState, type MemoryBudget } from './memoryEstimate';
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
  /**
   * cut the prompt to this many tokens (never more than the model's max positions); absent or 0:
   * automatic, the model's max positions or fewer, as many as fit in memory
   */
  maxTokens?: number;
}

/** How a run is made beyond its request (the engine process's choices, not the caller's). */
export interface RunOptions {
  /**
   * keep every layer's queries, keys and row lse (RunResult.qk) instead of fetching patterns: the
   * bounded state a kept run answers its queries from (analysis/kept.ts); `attention` must be 'none'
   */
  qk?: boolean;
  /** the memory a run may use (default: systemMemoryBudget()) */
  memory?: MemoryBudget;
}

export interface RunResult {
  model: { arch: string; modelType: string; layers: number; heads: number; kvHeads: number; hiddenSize: number; vocabSize: number; hash: string; dir: string };
  device: string;
  deviceNote?: string;
  tokens: PromptToken[];
  /**
   * tokens dropped because the prompt was longer than the token limit; when the dropped text was
   * not tokenized (truncatedExact false), only those counted in the tokenized prefix: a lower bound
   */
  truncated: number;
  /** false when `truncated` is a lower bound (the rest of the prompt was not tokenized) */
  truncatedExact?: boolean;
  /** UTF-16 code units of the prompt after the last token that was run (0 when nothing was cut) */
  truncatedChars?: number;
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
  /** qk runs (RunOptions.qk): per layer what any probability is recomputed from (graph/attentionScores.ts) */
  qk?: LayerScores[];
  /**
   * ms: tokenizeMs (cutting and tokenizing the prompt), prepMs (checks and the intervention inputs,
   * after tokenizing, before the forward pass), runMs (the forward pass), finishMs (after it: the
   * finite check, the next-token list, the head summaries and, for a qk run, keptMs of building the
   * kept state); prepMs and finishMs are absent in results read from older sources
   */
  timings: { loadMs: number; tokenizeMs: number; runMs: number; prepMs?: number; finishMs?: number; keptMs?: number };
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

/** Index (relative to `off`) of the largest of the n values at `off`; the first one on ties. */
export function argmax(x: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[off + i]! > x[off + best]!) best = i;
  return best;
}

// One definition of these for the engine and the extension (the watched tokens read the run's logits).
export { logSumExp, tokenStats } from '../shared/logits';

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

/** Characters tokenized first when a prompt may be longer than the limit: generous for any tokenizer (≥ 8 per token). */
const CHARS_PER_TOKEN_GUESS = 8;
/** Tokens past the limit a prefix must give before its first `limit` tokens are trusted (the cut's effect stays near the cut). */
const CUT_MARGIN_TOKENS = 32;

export interface CutPrompt {
  tokens: PromptToken[];
  /** tokens dropped; a lower bound when !exact */
  truncated: number;
  exact: boolean;
  /** characters after the last kept token's end */
  truncatedChars: number;
}

/**
 * The first `limit` tokens of the prompt, without tokenizing all of a long prompt: a prefix of
 * about (limit + margin)·8 characters, cut at whitespace, is tokenized; when it gives more than
 * limit + margin tokens, its first `limit` are the prompt's (a pre-token far from the cut is
 * tokenized the same whether or not the text goes on); otherwise the prefix doubles, up to the
 * whole prompt (then the count of dropped tokens is exact).
 */
export async function cutPrompt(model: Model, prompt: string, limit: number): Promise<CutPrompt> {
  let n = (limit + CUT_MARGIN_TOKENS) * CHARS_PER_TOKEN_GUESS;
  for (;;) {
    if (n >= prompt.length) {
      const all = await model.tokenizer.encode(prompt);
      const kept = all.slice(0, limit);
      return { tokens: kept, truncated: all.length - kept.length, exact: true, truncatedChars: all.length > limit ? prompt.length - endOf(kept) : 0 };
    }
    const prefix = prompt.slice(0, cutAt(prompt, n));
    const toks = await model.tokenizer.encode(prefix);
    if (toks.length > limit + CUT_MARGIN_TOKENS) {
      const kept = toks.slice(0, limit);
      // Special tokens a post-processor appends (an EOS) are not prompt text: not counted as dropped.
      const dropped = toks.slice(limit).filter((t) => t.end > t.start).length;
      return { tokens: kept, truncated: dropped, exact: false, truncatedChars: prompt.length - endOf(kept) };
    }
    n *= 2;
  }
}

/**
 * The prompt's tokens for an analysis (ablation, lens): at most `maxTokens` (absent or 0: the model's
 * max positions), cut before tokenizing all of a long prompt, with a warning when cut.
 */
export async function analysisTokens(model: Model, prompt: string, maxTokens: number | undefined, onWarning?: (msg: string) => void): Promise<{ tokens: PromptToken[]; truncated: number; tokenizeMs: number }> {
  const t0 = performance.now();
  const limit = Math.min(model.dims.maxPositions, maxTokens !== undefined && maxTokens > 0 ? maxTokens : Infinity);
  const cut = await cutPrompt(model, prompt, limit);
  const tokenizeMs = performance.now() - t0;
  if (cut.tokens.length === 0) throw new EngineError('PROMPT', 'the prompt produced no tokens');
  if (cut.truncatedChars > 0 || cut.truncated > 0) {
    onWarning?.(cut.exact ? `the prompt has ${cut.tokens.length + cut.truncated} tokens but at most ${limit} are used; the last ${cut.truncated} were dropped` : `the prompt was cut to ${limit} tokens; the last ${cut.truncatedChars} characters were not tokenized`);
  }
  return { tokens: cut.tokens, truncated: cut.truncated, tokenizeMs };
}

function endOf(tokens: PromptToken[]): number {
  let end = 0;
  for (const t of tokens) end = Math.max(end, t.end);
  return end;
}

/** A cut at or before n: after the last whitespace in the second half of the prefix, never inside a surrogate pair. */
function cutAt(text: string, n: number): number {
  for (let i = n; i > n / 2; i--) if (/\s/.test(text[i - 1]!)) return i;
  const c = text.charCodeAt(n - 1);
  return c >= 0xd800 && c <= 0xdbff ? n - 1 : n;
}

/**
 * The token limit of a run: the request's maxTokens (never more than the model's max positions),
 * or, automatic (absent or 0), the model's max positions or as many tokens as fit in memory.
 */
export function tokenLimit(model: Model, maxTokens: number | undefined, budget: MemoryBudget, allLogits: boolean, kept: KeptState): { limit: number; why: string } {
  const max = model.dims.maxPositions;
  if (maxTokens !== undefined && maxTokens > 0) return maxTokens >= max ? { limit: max, why: 'the model takes at most' } : { limit: maxTokens, why: 'the token limit is' };
  const fit = tokensThatFit(model.dims, max, budget, allLogits, kept);
  return fit >= max ? { limit: max, why: 'the model takes at most' } : { limit: Math.max(1, fit), why: 'the memory this machine has free fits at most' };
}

/** Throws PROMPT, in one line naming tokens and gigabytes, when an inspection of T tokens would not fit in memory. */
export function checkMemory(model: Model, T: number, budget: MemoryBudget, allLogits: boolean, kept: KeptState): void {
  if (inspectionFits(model.dims, T, budget, allLogits, kept)) return;
  const need = estimateInspection(model.dims, T, allLogits, kept);
  const run = need.total - need.weights;
  const has = run > budget.available ? `only about ${formatBytes(budget.available)} is free for it` : `this machine has ${formatBytes(budget.total)} in all (with a margin)`;
  throw new EngineError(
    'PROMPT',
    `inspecting ${T.toLocaleString('en-US')} tokens needs about ${formatBytes(need.total)} of memory (${formatBytes(run)} for the run, ${formatBytes(need.weights)} for the model) but ${has}; lower the token limit or use a shorter prompt`,
  );
}

/** Every layer's kept state (LayerScores) from a qk forward's outputs; `attnBias` is the run's [L, H, T]. */
export function keptLayers(dims: ModelDims, T: number, qk: NonNullable<ForwardOutputs['qk']>, attnBias: Float32Array): LayerScores[] {
  return qk.q.map((q, l) => layerScores(dims, l, T, { q, k: qk.k[l]!, maxKey: qk.maxKey[l]!, logMaxP: qk.logMaxP[l]! }, attnBias));
}

/** `onTokens` hears the prompt's token count before the model runs (the engine process reports what a run needs). */
export async function runInspection(model: Model, req: RunRequest, onWarning?: (msg: string) => void, onTokens?: (tokens: number) => void, opts: RunOptions = {}): Promise<RunResult> {
  if (typeof req.prompt !== 'string' || req.prompt.length === 0) throw new EngineError('PROMPT', 'the prompt is empty; write some text to inspect');
  const { layers: L, heads: H } = model.dims;
  const budget = opts.memory ?? systemMemoryBudget();
  const requested = req.attention === 'all' ? L : !req.attention || req.attention === 'none' ? 0 : new Set(req.attention.map((h) => h.layer)).size;
  const keptState: KeptState = opts.qk || requested === 0 ? { kind: 'qk' } : { kind: 'patterns', layers: requested };
  const { limit, why } = tokenLimit(model, req.maxTokens, budget, !!req.allLogits, keptState);
  const t0 = performance.now();
  const cut = await cutPrompt(model, req.prompt, limit);
  const tokenizeMs = performance.now() - t0;
  const tokens = cut.tokens;
  if (tokens.length === 0) throw new EngineError('PROMPT', 'the prompt produced no tokens');
  const truncated = cut.truncated;
  if (cut.truncatedChars > 0 || truncated > 0) {
    onWarning?.(
      cut.exact
        ? `the prompt has ${tokens.length + truncated} tokens but ${why} ${limit}; the last ${truncated} were dropped`
        : `the prompt has more than ${limit} tokens and ${why} ${limit}; the rest (${cut.truncatedChars.toLocaleString('en-US')} characters, not tokenized) was dropped`,
    );
  }
  const T = tokens.length;
  const ids = tokens.map((t) => t.id);
  checkTokenIds(model.tokenizer.file, tokens, model.dims.vocabSize);
  checkMemory(model, T, budget, !!req.allLogits, keptState);
  onTokens?.(T);

  let attentionHeads: HeadRef[];
  if (req.attention === 'all') attentionHeads = allHeads(L, H);
  else if (!req.attention || req.attention === 'none') attentionHeads = [];
  else {
    for (const h of req.attention) checkHead(model, h, 'attention');
    attentionHeads = req.attention;
  }
  const layers = [...new Set(attentionHeads.map((h) => h.layer))].sort((a, b) => a - b);
  if (opts.qk && layers.length > 0) throw new Error('internal: a qk run fetches no patterns');

  const headScale = headScaleFor(model, req.interventions);
  const attnBias = attnBiasFor(model, req.interventions, tokens);
  const t1 = performance.now();
  // Without patterns to fetch the run takes the qk graph (attention in blocks: bounded memory); its
  // queries and keys are turned into a kept state only when the caller keeps the run.
  const qkGraph = opts.qk === true || layers.length === 0;
  const out = await model.forward({ ids, headScale, attnBias }, { inspect: true, allLogits: req.allLogits, layers, ...(qkGraph ? { qk: true } : {}) });
  const t2 = performance.now();
  const runMs = t2 - t1;
  const prepMs = t1 - t0 - tokenizeMs;

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
  const t3 = performance.now();
  const qk = opts.qk && out.qk ? keptLayers(model.dims, T, out.qk, attnBias) : undefined;
  const t4 = performance.now();
  return {
    model: { arch: model.dims.arch, modelType: model.dims.modelType, layers: L, heads: H, kvHeads: model.dims.kvHeads, hiddenSize: model.dims.hiddenSize, vocabSize: V, hash: model.hash, dir: model.dir },
    device: model.device,
    deviceNote: model.deviceNote,
    tokens,
    truncated,
    ...(truncated > 0 || cut.truncatedChars > 0 ? { truncatedExact: cut.exact, truncatedChars: cut.truncatedChars } : {}),
    lastLogits: req.logits ? out.logits.slice(lastOffset) : undefined,
    allLogits: req.allLogits ? out.logits : undefined,
    hidden: out.hidden,
    next,
    heads,
    patterns: out.patterns,
    attentionHeads,
    ...(qk ? { qk } : {}),
    timings: { loadMs: model.loadMs, tokenizeMs, runMs, prepMs, finishMs: t4 - t2, ...(qk ? { keptMs: t4 - t3 } : {}) },
  };
}
