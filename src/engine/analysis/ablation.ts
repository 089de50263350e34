// Head importance by ablation (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"):
// mask one head at a time (head_scale = 0 before the output projection) and measure how a metric
// of the model's output moves against the unmasked baseline.
//
//   logprob  log p(target | prompt) at the last position; target: the baseline's top-1 unless given
//   loss     mean next-token cross-entropy over the prompt, −(1/(T−1)) Σ_{t<T−1} log p(x_{t+1} | x_≤t)
//   kl       mean over the T positions of KL(baseline ‖ masked) of the next-token distributions
//
// One tokenization and one attn_bias serve every run; each run is the plain (logits-only) graph,
// with every position's logits only when the metric needs them (loss, kl). Everything is
// accumulated in float64 from the float32 logits. Runs are sequential (the graph has no batch
// axis); between runs progress is reported and a cancellation request honoured.
import { EngineError } from '../errors';
import type { Model } from '../model';
import { analysisTokens, argmax, attnBiasFor, checkHead, headScaleFor, logSumExp } from '../run';
import type { PromptToken } from '../sources/tokenizer';
import { allHeads, type HeadRef } from '../../shared/heads';
import { noInterventions, type Interventions } from '../../shared/interventions';

export const ABLATION_METRICS = ['logprob', 'loss', 'kl'] as const;
export type AblationMetric = (typeof ABLATION_METRICS)[number];

export function isAblationMetric(v: unknown): v is AblationMetric {
  return typeof v === 'string' && (ABLATION_METRICS as readonly string[]).includes(v);
}

export interface AblationRequest {
  prompt: string;
  /** default 'logprob' */
  metric?: AblationMetric;
  /** logprob only: the token whose log-probability is measured (default: the baseline's top-1) */
  targetId?: number;
  /** the heads to mask, one at a time (default: every head, layer-major) */
  heads?: HeadRef[];
  /** applied to the baseline and to every masked run (each run also masks its head) */
  interventions?: Interventions;
  /** cut the prompt to this many tokens (never more than the model's max positions) */
  maxTokens?: number;
}

export interface AblationHooks {
  /** after the baseline (done = 0) and after each masked run */
  onProgress?(done: number, total: number): void;
  /** asked before each run; true stops the ablation with a CANCELLED error */
  isCancelled?(): boolean;
  onWarning?(message: string): void;
}

export interface HeadAblation extends HeadRef {
  /** the metric with this head masked */
  value: number;
  /** value − baseline */
  delta: number;
}

export interface AblationResult {
  metric: AblationMetric;
  /** the metric without any head masked (with the request's interventions) */
  baseline: number;
  /** logprob only */
  targetId?: number;
  targetText?: string;
  tokens: PromptToken[];
  /** tokens dropped because the prompt was longer than allowed */
  truncated: number;
  /** in the order of the request's heads (layer-major by default) */
  heads: HeadAblation[];
  timings: { tokenizeMs: number; runMs: number };
}

/** Masks each head alone and measures `req.metric`; see the file comment. */
export async function ablateHeads(model: Model, req: AblationRequest, hooks: AblationHooks = {}): Promise<AblationResult> {
  const metric = req.metric ?? 'logprob';
  if (!isAblationMetric(metric)) throw new EngineError('BAD_ARGUMENT', `ablation metric "${String(metric)}" is not one of ${ABLATION_METRICS.join(', ')}`);
  if (typeof req.prompt !== 'string' || req.prompt.length === 0) throw new EngineError('PROMPT', 'the prompt is empty; write some text to ablate over');
  const { layers: L, heads: H, vocabSize: V } = model.dims;
  if (req.targetId !== undefined) {
    if (metric !== 'logprob') throw new EngineError('BAD_ARGUMENT', `a target token applies to the logprob metric only, not ${metric}`);
    if (!Number.isInteger(req.targetId) || req.targetId < 0 || req.targetId >= V) throw new EngineError('BAD_ARGUMENT', `target token id ${req.targetId} is not in the vocabulary (0..${V - 1})`);
  }
  const heads = req.heads ?? allHeads(L, H);
  for (const h of heads) checkHead(model, h, 'ablation');
  const iv = req.interventions ?? noInterventions();

  const { tokens, truncated, tokenizeMs } = await analysisTokens(model, req.prompt, req.maxTokens, hooks.onWarning);
  const T = tokens.length;
  if (metric === 'loss' && T < 2) throw new EngineError('PROMPT', 'the loss needs a prompt of at least 2 tokens (it predicts each next token)');
  const ids = tokens.map((t) => t.id);
  const baseScale = headScaleFor(model, iv);
  const attnBias = attnBiasFor(model, iv, tokens);
  const allLogits = metric !== 'logprob';
  const total = heads.length;

  const t1 = performance.now();
  const run = async (headScale: Float32Array, done: number): Promise<Float32Array> => {
    if (hooks.isCancelled?.()) throw new EngineError('CANCELLED', `head ablation was cancelled after ${done} of ${total} heads`);
    return (await model.forward({ ids, headScale, attnBias }, { inspect: false, allLogits })).logits;
  };

  const base = await run(baseScale, 0);
  let targetId: number | undefined;
  let measure: (logits: Float32Array) => number;
  if (metric === 'logprob') {
    const lastOff = base.length - V;
    targetId = req.targetId ?? argmax(base, lastOff, V);
    const tid = targetId;
    measure = (lg) => lg[lg.length - V + tid]! - logSumExp(lg, lg.length - V, V);
  } else if (metric === 'loss') {
    measure = (lg) => {
      let s = 0;
      for (let t = 0; t < T - 1; t++) s += logSumExp(lg, t * V, V) - lg[t * V + ids[t + 1]!]!;
      return s / (T - 1);
    };
  } else {
    const baseLse = new Float64Array(T);
    for (let t = 0; t < T; t++) baseLse[t] = logSumExp(base, t * V, V);
    measure = (lg) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += klRow(base, baseLse[t]!, lg, logSumExp(lg, t * V, V), t * V, V);
      return s / T;
    };
  }
  const baseline = measure(base);
  hooks.onProgress?.(0, total);

  const out: HeadAblation[] = [];
  const scale = new Float32Array(baseScale);
  for (const h of heads) {
    const i = h.layer * H + h.head;
    scale[i] = 0;
    const value = measure(await run(scale, out.length));
    scale[i] = baseScale[i]!;
    out.push({ layer: h.layer, head: h.head, value, delta: value - baseline });
    hooks.onProgress?.(out.length, total);
  }
  return {
    metric,
    baseline,
    ...(targetId !== undefined ? { targetId, targetText: model.tokenizer.decodeToken(targetId) } : {}),
    tokens,
    truncated,
    heads: out,
    timings: { tokenizeMs, runMs: performance.now() - t1 },
  };
}

/** The heads ordered by how much masking them hurts: largest loss/KL increase or log-prob drop first. */
export function rankByHarm(r: Pick<AblationResult, 'metric' | 'heads'>): HeadAblation[] {
  const sign = r.metric === 'logprob' ? 1 : -1;
  return [...r.heads].sort((a, b) => sign * (a.delta - b.delta) || a.layer - b.layer || a.head - b.head);
}

/** KL(P‖Q) of one position, from logits and their log-sum-exps: Σ p·(log p − log q). */
function klRow(p: Float32Array, lseP: number, q: Float32Array, lseQ: number, off: number, n: number): number {
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const lp = p[off + i]! - lseP;
    kl += Math.exp(lp) * (lp - (q[off + i]! - lseQ));
  }
  return Math.max(0, kl);
}
