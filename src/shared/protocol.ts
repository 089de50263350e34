// Host <-> webview protocol of the AttnScope panel. Plain types only: imported by the extension
// host and by the webview bundle. Every message travels in an Envelope; tensors travel as
// ArrayBuffers of float32 values with explicit dims, row-major, never as nested JSON arrays.
//
// Lifecycle: the webview posts `ready`; the host answers with `init` (the full state) and sends
// nothing before that. Requests (`requestPattern`) get a reply with `inReplyTo` set; errors come
// back as `error` replies. Everything from the webview is validated by the host before use.

import type { HeadRef, HeadSummary, MetricName } from './heads';
import type { Emphasis, Interventions } from './interventions';
import type { ImportanceView } from './importance';
import type { Scene } from './figures/scene';
import type { ThemeColors } from './figures/palette';
import type { PatchingView } from './patching';
import type { WatchedToken, WatchView } from './watch';

// The head vocabulary lives in heads.ts; re-exported for the pages that speak this protocol.
export { METRICS, headKey, headLabel, type HeadRef, type MetricName } from './heads';
export type { ImportanceView } from './importance';
export type { PatchingView } from './patching';
export type { WatchedToken, WatchStat, WatchView, WatchedTokenView } from './watch';

export const PROTOCOL_VERSION = 1;

export interface TokenView {
  text: string;
  /** UTF-16 offsets into the prompt, end exclusive */
  start: number;
  end: number;
  special: boolean;
  id: number;
}

export interface HeadView extends HeadSummary {
  /** output scale: 0 masked, 1 normal, other values scale */
  scale: number;
}

export interface ModelView {
  name: string;
  arch: string;
  layers: number;
  heads: number;
  kvHeads: number;
  device: string;
}

/** The session's interventions, with the emphasized text. */
export interface InterventionsView extends Interventions {
  emphasis: (Emphasis & { text: string }) | null;
}

/** 'rollout': attention rollout (Abnar & Zuidema 2020) over the enabled heads; a from-row only */
export type Aggregation = 'mean' | 'head' | 'layer' | 'rollout';
export const AGGREGATIONS: readonly Aggregation[] = ['mean', 'head', 'layer', 'rollout'];
export type Direction = 'from' | 'to';

/**
 * What the head grid is colored by: a head metric, importance by ablation or the activation
 * patching effect (each when a result exists).
 */
export type GridMetric = MetricName | 'importance' | 'patching';

export interface ViewSettings {
  aggregation: Aggregation;
  direction: Direction;
  metric: GridMetric;
  /** exclude the first (sink) token from the color scale */
  discountSink: boolean;
}

export interface RunView {
  runId: number;
  prompt: string;
  tokens: TokenView[];
  heads: HeadView[];
  next: { id: number; text: string; prob: number }[];
  timings: { runMs: number; loadMs: number };
  truncated: number;
}

export interface PanelState {
  model: ModelView | null;
  run: RunView | null;
  selected: HeadRef | null;
  interventions: InterventionsView;
  settings: ViewSettings;
  busy: string | null;
  error: string | null;
  /** head importance by ablation for the current run; null when none (or cleared) */
  importance: ImportanceView | null;
  /** why an earlier ablation result was cleared (the prompt, model or interventions changed) */
  importanceNote: string | null;
  /** activation patching (clean → the inspected prompt) for the current run; null when none (or cleared) */
  patching: PatchingView | null;
  /** why an earlier patching result was cleared */
  patchingNote: string | null;
  /** the watched tokens with their values in the current run and the clean baseline */
  watch: WatchView;
}

/** One layer of the logit lens at the cursor token: 0 = the embeddings, L = the model's output. */
export interface LensLayerView {
  layer: number;
  top: { id: number; text: string; prob: number }[];
  /** the watched tokens, in the order of the watch list */
  watched: { id: number; prob: number; logit: number; rank: number }[];
}

/**
 * Patterns of runs longer than this many tokens travel as tiles (`requestPatternTile`), never whole:
 * [T, T] float32 is 1 MB at 512 tokens but 256 MB at 8,000. Up to it the panel fetches the exact
 * [T, T] pattern once and zooms and pans locally.
 */
export const PATTERN_EXACT_MAX_T = 512;
/** The largest tile side the panel asks for (cells per side; the engine's own cap is higher). */
export const PATTERN_TILE_MAX = 1024;

/**
 * A window of one head's pattern: queries q0..q1−1 × keys k0..k1−1 as rows × cols cells. Row r
 * covers queries rowEdges[r]..rowEdges[r+1]−1 (cols likewise). pooled false: each cell is one exact
 * probability; true: each cell is the max over its block (so a one-token stripe survives). The
 * engine's PatternTile, this message and the webview's Tile carry it with their own arrays.
 */
export interface PatternWindow {
  q0: number;
  q1: number;
  k0: number;
  k1: number;
  pooled: boolean;
}

/** A pattern window on the wire (see PatternWindow). */
export interface PatternTileMsg extends PatternWindow {
  /** [rows + 1] block edges, rowEdges[0] = q0, rowEdges[rows] = q1 */
  rowEdges: number[];
  /** [cols + 1] block edges, colEdges[0] = k0, colEdges[cols] = k1 */
  colEdges: number[];
  /** dims [rows, cols], row-major */
  values: TensorMsg;
}

/** A float32 tensor. `data.byteLength === 4 * product(dims)`. */
export interface TensorMsg {
  dims: number[];
  data: ArrayBuffer;
}

export type ToWebview =
  | { type: 'init'; state: PanelState }
  | { type: 'state'; state: Partial<PanelState> }
  /** attention of the aggregate (per settings) from/to the cursor token: dims [T] */
  | { type: 'overlay'; runId: number; token: number; direction: Direction; values: TensorMsg }
  /** reply to requestPattern: one head's pattern, dims [T, T] (row = query) */
  | { type: 'pattern'; runId: number; head: HeadRef; values: TensorMsg }
  /** reply to requestPatternTile: the window asked for (see PatternTileMsg) */
  | { type: 'patternTile'; runId: number; head: HeadRef; tile: PatternTileMsg }
  /** reply to requestLens: the logit lens of the run at a position (with the interventions) */
  | { type: 'lens'; runId: number; position: number; layers: LensLayerView[] }
  /**
   * reply to watchText: the token added, or why the text is not one token (message) with the
   * tokens to choose from
   */
  | { type: 'tokenLookup'; text: string; added: WatchedToken | null; message: string | null; candidates: WatchedToken[] }
  | { type: 'error'; message: string }
  /** export: draw this figure on a canvas at `scale` × its size and answer with `rasterized` (same job) */
  | { type: 'rasterize'; job: number; scene: Scene; scale: number };

export type FromWebview =
  | { type: 'ready'; version: number }
  | { type: 'selectHead'; head: HeadRef }
  | { type: 'toggleMask'; head: HeadRef }
  | { type: 'setScale'; heads: HeadRef[]; value: number }
  | { type: 'emphasizeSelection'; alpha: number; heads: HeadRef[] | 'all' }
  | { type: 'clearEmphasis' }
  | { type: 'setSink'; heads: HeadRef[]; value: number }
  | { type: 'reset' }
  | { type: 'setSettings'; settings: Partial<ViewSettings> }
  /** the user clicked a token in the panel: move the editor cursor there */
  | { type: 'revealToken'; index: number }
  | { type: 'requestPattern'; head: HeadRef }
  /**
   * a window of one head's pattern of run `runId` (answered with `patternTile`), queries q0..q1−1 ×
   * keys k0..k1−1, at most size × size cells (1 ≤ size ≤ PATTERN_TILE_MAX); used past PATTERN_EXACT_MAX_T tokens
   */
  | { type: 'requestPatternTile'; runId: number; head: HeadRef; q0: number; q1: number; k0: number; k1: number; size: number }
  /** the PNG bytes of a `rasterize` job, or why it failed */
  | { type: 'rasterized'; job: number; png: ArrayBuffer | null; error: string | null }
  /** the panel's theme colors (sent after ready and on every theme change), for "current theme" exports */
  | { type: 'theme'; colors: ThemeColors }
  /** the logit lens at a token of the current run (answered with `lens`) */
  | { type: 'requestLens'; runId: number; position: number }
  /** pin a token by id (from the next-token list or a lookup's candidates) */
  | { type: 'watchToken'; id: number }
  /** pin a token by its text: looked up in the vocabulary (answered with `tokenLookup`) */
  | { type: 'watchText'; text: string }
  | { type: 'unwatchToken'; id: number }
  /** the pair whose logit difference is shown (ids, first − second); null = the first two */
  | { type: 'setWatchPair'; pair: [number, number] | null };

export interface Envelope<B> {
  messageId: number;
  inReplyTo?: number;
  body: B;
}
