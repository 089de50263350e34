// RunRequest (prompt + interventions) -> RunResult (serialisable): the one entry point the CLI,
// the worker and the tests share.
import { EngineError } from './errors';
import { METRIC_ORDER } from './graph/inspectionGraph';
import type { Model } from './model';
import type { PromptToken } from './sources/tokenizer';
import type { HeadRef } from './spec';

export interface Emphasis {
  /** UTF-16 offsets into the prompt, end exclusive */
  start: number;
  end: number;
  /** attention to keys outside the span is multiplied by alpha (ln alpha added pre-softmax) */
  alpha: number;
}

export interface Interventions {
  /** heads whose output is zeroed */
  mask?: HeadRef[];
  /** per-head output scale (0 masks, 1 keeps, >1 amplifies) */
  scale?: { head: HeadRef; value: number }[];
  emphasize?: Emphasis;
  /** heads PASTA steering applies to; all heads when absent */
  steerHeads?: HeadRef[];
  /** sink calibration: attention to the first token is multiplied by `value` for these heads */
  sink?: { heads: HeadRef[]; value: number };
}

export interface RunRequest extends Interventions {
  prompt: string;
  /** which heads' attention patterns to return */
  attention?: 'all' | 'none' | HeadRef[];
  logits?: boolean;
  topK?: number;
  /** logits for every position (else only the last) */
  allLogits?: boolean;
  /** cut the prompt to this many tokens (never more than the model's max positions) */
  maxTokens?: number;
}

export interface HeadSummary {
  layer: number;
  head: number;
  entropy: number | null;
  sink: number | null;
  prevToken: number | null;
  selfAttn: number | null;
  induction: number | null;
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

export function checkHead(model: Model, h: HeadRef, what: string): void {
  const { layers, heads } = model.dims;
  if (!Number.isInteger(h.layer) || !Number.isInteger(h.head) || h.layer < 0 || h.layer >= layers || h.head < 0 || h.head >= heads) {
    throw new EngineError('BAD_ARGUMENT', `${what}: head ${h.layer}.${h.head} does not exist; this model has layers 0..${layers - 1} and heads 0..${heads - 1}`);
  }
}

/** The [L, H] head_scale input for a set of interventions. */
export function headScaleFor(model: Model, iv: Interventions): Float32Array {
  const { layers: L, heads: H } = model.dims;
  const s = new Float32Array(L * H).fill(1);
  for (const { head, value } of iv.scale ?? []) {
    checkHead(model, head, '--scale');
    if (!Number.isFinite(value)) throw new EngineError('BAD_ARGUMENT', `--scale: ${head.layer}.${head.head}=${value} is not a finite number`);
    s[head.layer * H + head.head] = value;
  }
  for (const h of iv.mask ?? []) {
    checkHead(model, h, '--mask');
    s[h.layer * H + h.head] = 0;
  }
  return s;
}

/** The [L, H, T] attn_bias input: PASTA emphasis and sink calibration. */
export function attnBiasFor(model: Model, iv: Interventions, tokens: PromptToken[]): Float32Array {
  const { layers: L, heads: H } = model.dims;
  const T = tokens.length;
  const bias = new Float32Array(L * H * T);
  const every = (): HeadRef[] => Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  if (iv.emphasize) {
    const { start, end, alpha } = iv.emphasize;
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw new EngineError('BAD_ARGUMENT', `--emphasize: alpha ${alpha} must be a positive number (e.g. 0.01)`);
    // A token is inside the span when its characters overlap it; zero-width special tokens are outside.
    const inside = tokens.map((t) => t.end > start && t.start < end);
    if (!inside.some(Boolean)) throw new EngineError('BAD_ARGUMENT', `--emphasize: span ${start}:${end} covers no token of the prompt`);
    const lnA = Math.log(alpha);
    for (const h of iv.steerHeads ?? every()) {
      checkHead(model, h, '--steer-heads');
      const base = (h.layer * H + h.head) * T;
      for (let k = 0; k < T; k++) if (!inside[k]) bias[base + k]! += lnA;
    }
  }
  if (iv.sink) {
    const v = iv.sink.value;
    if (!(v > 0) || !Number.isFinite(v)) throw new EngineError('BAD_ARGUMENT', `sink calibration: scale ${v} must be a positive number`);
    for (const h of iv.sink.heads) {
      checkHead(model, h, 'sink calibration');
      bias[(h.layer * H + h.head) * T]! += Math.log(v);
    }
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

export async function runInspection(model: Model, req: RunRequest, onWarning?: (msg: string) => void): Promise<RunResult> {
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

  let attentionHeads: HeadRef[];
  if (req.attention === 'all') attentionHeads = Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  else if (!req.attention || req.attention === 'none') attentionHeads = [];
  else {
    for (const h of req.attention) checkHead(model, h, '--attention');
    attentionHeads = req.attention;
  }
  const layers = [...new Set(attentionHeads.map((h) => h.layer))].sort((a, b) => a - b);

  const headScale = headScaleFor(model, req);
  const attnBias = attnBiasFor(model, req, tokens);
  const t1 = performance.now();
  const out = await model.forward({ ids, headScale, attnBias }, { inspect: true, allLogits: req.allLogits, layers });
  const runMs = performance.now() - t1;

  const V = model.dims.vocabSize;
  const lastOffset = out.logits.length - V;
  const probs = softmax(out.logits, lastOffset, V);
  const next = topK(probs, req.topK ?? 10).map(({ id, prob }) => ({ id, prob, text: model.tokenizer.decodeToken(id) }));
  const heads: HeadSummary[] = [];
  const m = out.metrics!;
  const nm = METRIC_ORDER.length;
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const at = (l * H + h) * nm;
      const val = (i: number) => (Number.isFinite(m[at + i]!) && T > 1 ? m[at + i]! : null);
      heads.push({ layer: l, head: h, entropy: val(0), sink: val(1), prevToken: val(2), selfAttn: val(3), induction: val(4) });
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
