// Head importance by ablation (Michel et al. 2019) as every view shows it: the measured change of a
// metric when one head is masked, and the "harm" that ranks heads (larger harm = more important).
// Plain data and tiny pure functions; the engine computes the numbers (src/engine/analysis/ablation.ts).
//
// Sign conventions, kept in one place:
//   logprob  delta = log p(target | masked) − log p(target);  harm = −delta (a drop in log p hurts)
//   loss     delta = loss(masked) − loss;                     harm = delta  (a rise in loss hurts)
//   kl       delta = KL(original ‖ masked) − 0;               harm = delta  (≥ 0: any change counts)
// A negative harm means masking the head helped the metric.
import { indexByHead, type HeadRef } from './heads';

export const IMPORTANCE_METRICS = ['logprob', 'loss', 'kl'] as const;
export type ImportanceMetric = (typeof IMPORTANCE_METRICS)[number];

export const IMPORTANCE_INFO: Record<ImportanceMetric, { label: string; delta: string; description: string; pick: string }> = {
  logprob: {
    label: 'log-probability of the top-1 token',
    delta: 'Δ log p',
    description: 'change of log p(top-1 token) at the last position when the head is masked (nats); negative = the head supports the prediction',
    pick: 'How much each head supports the current top-1 prediction (Δ log p at the last position)',
  },
  loss: {
    label: 'next-token loss',
    delta: 'Δ loss',
    description: 'change of the mean next-token cross-entropy over the prompt when the head is masked (nats); positive = the head helps predict the prompt',
    pick: 'How much each head helps predict every next token of the prompt (Δ mean cross-entropy)',
  },
  kl: {
    label: 'KL divergence',
    delta: 'KL',
    description: 'mean KL(original ‖ masked) of the next-token distributions over the prompt (nats); how much masking the head changes the predictions',
    pick: 'How much masking each head changes the predictions anywhere in the prompt (mean KL)',
  },
};

export const IMPORTANCE_CITE = 'Michel et al. 2019, Are Sixteen Heads Really Better than One?';

export function isImportanceMetric(v: unknown): v is ImportanceMetric {
  return typeof v === 'string' && (IMPORTANCE_METRICS as readonly string[]).includes(v);
}

export interface HeadImportance extends HeadRef {
  /** the metric with this head masked */
  value: number;
  /** value − baseline (see the sign conventions above) */
  delta: number;
}

/** A ranking by ablation of the heads of one run (panel protocol and Heads view). */
export interface ImportanceView {
  metric: ImportanceMetric;
  /** the metric with no head masked (with the run's interventions) */
  baseline: number;
  /** logprob: the token whose log-probability is measured */
  targetText: string | null;
  /** one per head, layer-major */
  heads: HeadImportance[];
  /** the run it was computed on (same prompt, model and interventions) */
  runId: number;
}

/** Larger = masking the head hurts the metric more (see the sign conventions above). */
export function harm(metric: ImportanceMetric, delta: number): number {
  return metric === 'logprob' ? -delta : delta;
}

/** Heads ordered by harm, most important first (ties: lower layer, then head). */
export function rankImportance(v: Pick<ImportanceView, 'metric' | 'heads'>): HeadImportance[] {
  return [...v.heads].sort((a, b) => harm(v.metric, b.delta) - harm(v.metric, a.delta) || a.layer - b.layer || a.head - b.head);
}

/** A signed number with a real minus sign: "+0.523", "−1.20", "−3.4e−5", "0". */
export function formatSigned(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v === 0) return '0';
  const a = Math.abs(v);
  const body = a < 10 ** -digits ? a.toExponential(1).replace('e-', 'e−') : a.toFixed(digits);
  return `${v < 0 ? '−' : '+'}${body}`;
}

/** "Δ log p −0.523" (the measured change, sign as measured). */
export function formatImportance(metric: ImportanceMetric, delta: number): string {
  return `${IMPORTANCE_INFO[metric].delta} ${metric === 'kl' ? formatSigned(delta).replace(/^\+/, '') : formatSigned(delta)}`;
}

/** Indexes a view's heads by layer * H + head. */
export function importanceIndex(v: ImportanceView | null | undefined, L: number, H: number): (HeadImportance | undefined)[] {
  return indexByHead(v?.heads, L, H);
}

/** What an ablation result depends on: the model, the prompt (and its file), the interventions, the token limit. */
export interface ImportanceKey {
  model: string;
  doc: string;
  prompt: string;
  /** JSON of the normalized interventions */
  interventions: string;
  maxTokens: number;
}

export function importanceKey(model: string, doc: string, prompt: string, interventions: unknown, maxTokens: number): ImportanceKey {
  return { model, doc, prompt, interventions: JSON.stringify(interventions), maxTokens };
}

/** Why a result computed under `then` does not hold under `now` ("the prompt changed"), or null when it holds. */
export function staleReason(then: ImportanceKey, now: ImportanceKey): string | null {
  if (then.model !== now.model) return 'the model changed';
  if (then.doc !== now.doc || then.prompt !== now.prompt) return 'the prompt changed';
  if (then.interventions !== now.interventions) return 'the interventions changed';
  if (then.maxTokens !== now.maxTokens) return 'the token limit (attnscope.maxTokens) changed';
  return null;
}
