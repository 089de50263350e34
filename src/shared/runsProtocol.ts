// Host <-> webview protocol of the Compare panel (webview/compare) and the Generation panel
// (webview/generate). Plain types only (imported by both sides). Messages travel in the same
// Envelope as the main panel's (src/shared/protocol.ts); per-position and per-head numbers travel
// as float32 ArrayBuffers with explicit dims, NaN where a value cannot be compared.
import type { HeadRef, MetricName, TensorMsg, TokenView } from './protocol';
import type { WatchedToken } from './watch';

export const RUNS_PROTOCOL_VERSION = 2;

export interface ProbText {
  id: number;
  text: string;
  prob: number;
}

/** One run as the compare panel (or the .attnrun editor) shows it. */
export interface RunSideView {
  /** "A", "B", or the run file's name */
  label: string;
  file: string | null;
  createdAt: string;
  prompt: string;
  model: string;
  device: string;
  layers: number;
  heads: number;
  /** one line per intervention ("mask L0H1", "emphasize "cat" α=0.01"…); empty = none */
  interventions: string[];
  tokens: TokenView[];
  /** indexes of this run's tokens that have no partner in the other run */
  unaligned: number[];
  /** next-token predictions after the last token */
  next: ProbText[];
  /** [metric (METRICS order), layer, head] head metrics, NaN = not available */
  metrics: TensorMsg;
  runMs: number;
}

export interface PositionView {
  /** token indexes in A and B */
  a: number;
  b: number;
  text: string;
  topA: ProbText[];
  topB: ProbText[];
  /** top-K ids that left (in A, not B) / entered (in B, not A), with both probabilities */
  left: { id: number; text: string; probA: number; probB: number | null }[];
  entered: { id: number; text: string; probA: number | null; probB: number }[];
}

export interface CompareView {
  mode: 'compare' | 'single';
  a: RunSideView;
  b: RunSideView | null;
  positions: PositionView[];
  /** [positions] KL(A‖B) of the next-token distributions, nats; NaN = not comparable */
  kl: TensorMsg;
  /** [positions] attention shift (total variation of the mean attention row); NaN = not comparable */
  shift: TensorMsg;
  /** [metric (METRICS order), layer, head] B − A; null when the models differ in shape */
  deltas: TensorMsg | null;
  /** indexes into `positions`, largest KL first */
  mostDifferent: number[];
  notComparable: string[];
  aligned: number;
  /**
   * why the attention overlay (tokens tinted by the attention from the selected position) cannot be
   * shown, e.g. a run saved without attention patterns; null = it can (rows via `attentionRows`)
   */
  attention: string | null;
  /** the session's watched tokens in A and B at every aligned position; null = none watched */
  watch: CompareWatch | null;
}

/**
 * Where a run's watched values at a position come from, best first: every position's logits
 * (exact prob, logit and rank), the last position's logits (the same, at the last position only),
 * the saved top-K log-probabilities (a token in it: exact prob and rank, no logit; a token below
 * it: nothing), or nothing saved. `source` tensors hold the index into this list.
 */
export const WATCH_SOURCES = ['logits', 'lastLogits', 'topK', 'none'] as const;
export type WatchSource = (typeof WATCH_SOURCES)[number];

/** One run's watched values at the aligned positions (W watched tokens, P aligned positions). */
export interface CompareWatchSide {
  /** [W, P] log-probabilities; NaN = not saved (below the saved top K there, or nothing saved) */
  logprob: TensorMsg;
  /** [W, P] logits; NaN where only top-K log-probabilities were saved */
  logit: TensorMsg;
  /** [W, P] rank, 1 = most likely (1 + the number of tokens more likely); NaN = unknown */
  rank: TensorMsg;
  /** [P] logit(pair[0]) − logit(pair[1]) (= the difference of their log-probabilities); NaN = unknown */
  pairDiff: TensorMsg;
  /** [P] index into WATCH_SOURCES */
  source: TensorMsg;
  /** how many next tokens per position the run saved (0 = none) */
  topK: number;
}

export interface CompareWatch {
  tokens: WatchedToken[];
  /** the pair of the logit difference (ids, first − second); null with fewer than two watched */
  pair: [number, number] | null;
  a: CompareWatchSide;
  b: CompareWatchSide;
}

export interface CompareInit {
  view: CompareView | null;
  /** a run file that could not be read: its one-line error */
  error: string | null;
  /** whether the "Generate" button makes sense (a prompt is inspected) */
  canGenerate: boolean;
  /** a line under `error` (what was or can be done about it) */
  hint?: string;
}

/** What the Compare panel keeps in its webview state to be restored after a window reload. */
export interface CompareSource {
  files: [string, string];
  labels: [string, string];
}

export type ToCompare =
  | { type: 'init'; init: CompareInit }
  /**
   * reply to `attentionRows`: the attention FROM the position's token in A and in B ([Ta] and [Tb],
   * summing to 1 over the keys up to the token), of `head` or the mean over all heads (null)
   */
  | { type: 'attentionRows'; position: number; head: HeadRef | null; a: TensorMsg; b: TensorMsg }
  /** the session's watched tokens changed: the view's new `watch` */
  | { type: 'watch'; watch: CompareWatch | null }
  | { type: 'error'; message: string };

export type FromCompare =
  | { type: 'ready'; version: number }
  /** "Compare with…" (the .attnrun editor) */
  | { type: 'compareWith' }
  /** open the Generation panel for the inspected prompt */
  | { type: 'generate' }
  /** UI sync hint for tests and the log: the selected position / head and the overlay mode */
  | { type: 'selected'; position: number | null; head: HeadRef | null; metric: MetricName; overlay: OverlayMode }
  /** request: the attention rows of an aligned position (index into `positions`) in A and B */
  | { type: 'attentionRows'; position: number; head: HeadRef | null };

/** What tints the A and B token views of the Compare panel. */
export type OverlayMode = 'kl' | 'attention';

export interface GenerateOptions {
  maxTokens: number;
  /** 0 = greedy */
  temperature: number;
  seed: number;
}

export type Lane = 'with' | 'without';

/** What the Generation panel shows of the session (sent again whenever its run or interventions change). */
export interface GenerateSession {
  prompt: string;
  promptName: string;
  /** the current interventions as lines; empty = none (both lanes then give the same text) */
  interventions: string[];
}

export interface GenerateInit extends GenerateSession {
  options: GenerateOptions;
}

export type ToGenerate =
  | { type: 'init'; init: GenerateInit }
  /** the session changed (Reset Interventions, a head masked, another prompt inspected) */
  | { type: 'session'; session: GenerateSession }
  /** `watched`: the tokens whose probabilities every `token` message carries, in this order (absent = none) */
  | { type: 'started'; lanes: Lane[]; options: GenerateOptions; watched?: WatchedToken[] }
  /** `watched`: the probabilities of the started message's watched tokens at this step (absent when none is watched) */
  | { type: 'token'; lane: Lane; text: string; prob: number; watched?: number[] }
  | { type: 'done'; lane: Lane; stopReason: string; tokens: number; perTokenMs: number }
  | { type: 'finished' }
  | { type: 'error'; message: string };

export type FromGenerate =
  | { type: 'ready'; version: number }
  | { type: 'generate'; options: GenerateOptions }
  | { type: 'stop' }
  | { type: 'inspect'; lane: Lane };
