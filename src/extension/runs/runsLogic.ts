// Pure logic of saved runs in the extension (no vscode import, unit-tested): which auto-saved run
// files to prune, the compare/run view model built from SavedRuns and a CompareResult, and the
// validation of messages from the compare and generation webviews.
import type { CompareResult } from '../../engine/analysis/compare';
import { describeInterventions } from '../../shared/interventions';
import { runTopK, type SavedRun } from '../../engine/runs/runFile';
import { headLabel, METRICS, type HeadRef, type MetricName } from '../../shared/heads';
import type { TensorMsg } from '../../shared/protocol';
import { LIMITS, fail, generateOptions, headRef, int, list, nullable, obj, oneOf, parseMessage, str, validate, type Check, type Obj, type ParsedMessage } from '../../shared/validate';
import { WATCH_SOURCES, type CompareSource, type CompareView, type CompareWatch, type CompareWatchSide, type FromCompare, type FromGenerate, type OverlayMode, type PositionView, type ProbText, type RunSideView, type WatchSource } from '../../shared/runsProtocol';
import type { WatchedToken } from '../../shared/watch';

/** Names newRunPath gives: `<stem>-2024-05-01T10-20-30-123Z[-n].attnrun`. */
const AUTO_NAME = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z(-\d+)?\.attnrun$/;

export function isAutoRunName(name: string): boolean {
  return AUTO_NAME.test(name);
}

export interface RunFileEntry {
  /** file name (no folder) */
  name: string;
  mtimeMs: number;
  /** bytes */
  size: number;
  /** the file's header says AttnScope auto-saved it (the only files pruning may delete) */
  autoSaved: boolean;
}

/** How many auto-saved runs are kept, and how many bytes they may take together. */
export interface PruneLimits {
  count: number;
  bytes: number;
}

/**
 * The auto-saved runs to delete, oldest first, so that the newest ones kept are at most
 * `limits.count` files and `limits.bytes` bytes together (the newest is always kept). Only files
 * whose header says AttnScope auto-saved them count and may be deleted, whatever their names;
 * files in `protect` (shown in a panel now, or saved with "Save Run As…") are never deleted.
 */
export function runsToPrune(entries: readonly RunFileEntry[], limits: PruneLimits, protect: ReadonlySet<string> = new Set()): string[] {
  const auto = entries.filter((e) => e.autoSaved && !protect.has(e.name));
  const sorted = [...auto].sort((x, y) => y.mtimeMs - x.mtimeMs || (y.name < x.name ? -1 : y.name > x.name ? 1 : 0));
  const out: string[] = [];
  let count = 0;
  let bytes = 0;
  for (const e of sorted) {
    if (count === 0 || (count < limits.count && bytes + e.size <= limits.bytes)) {
      count++;
      bytes += e.size;
    } else out.push(e.name);
  }
  return limits.count <= 0 ? sorted.map((e) => e.name) : out;
}

/** The prompt file's stem for run names ("untitled" for unsaved documents). */
export function runStem(promptPath: string | undefined): string {
  if (!promptPath) return 'untitled';
  const base = promptPath.split(/[\\/]/).pop() ?? '';
  return base.replace(/\.[^.]*$/, '') || 'untitled';
}

function tensor(values: ArrayLike<number>, dims: number[]): TensorMsg {
  const f = Float32Array.from(values as ArrayLike<number>);
  return { dims, data: f.buffer as ArrayBuffer };
}

/** [metric, layer, head] of a run's head metrics, NaN where absent. */
export function metricsTensor(run: SavedRun): TensorMsg {
  const { layers: L, heads: H } = run.header.model;
  const out = new Float32Array(METRICS.length * L * H).fill(NaN);
  for (const h of run.header.heads) {
    if (h.layer < 0 || h.layer >= L || h.head < 0 || h.head >= H) continue;
    METRICS.forEach((m, i) => {
      const v = (h as unknown as Record<MetricName, number | null>)[m];
      if (typeof v === 'number') out[(i * L + h.layer) * H + h.head] = v;
    });
  }
  return { dims: [METRICS.length, L, H], data: out.buffer as ArrayBuffer };
}

export type Decode = (id: number) => string;

/**
 * A decoder from what the runs themselves know (their tokens, final predictions and, in format 2,
 * the texts of every position's top-K), else `#id`. No tokenizer is loaded: nothing named in a run
 * file is opened.
 */
export function fallbackDecoder(...runs: SavedRun[]): Decode {
  const known = new Map<number, string>();
  for (const r of runs) {
    for (const t of r.header.tokens) known.set(t.id, t.text);
    for (const n of r.header.next) known.set(n.id, n.text);
    for (const [id, text] of Object.entries(r.header.topTexts ?? {})) known.set(Number(id), text);
  }
  return (id) => known.get(id) ?? `#${id}`;
}

export function sideView(run: SavedRun, label: string, unaligned: number[]): RunSideView {
  const h = run.header;
  const name = h.model.dir ? h.model.dir.split(/[\\/]/).filter(Boolean).pop() ?? h.model.dir : h.model.modelType;
  return {
    label,
    file: run.file ?? null,
    createdAt: h.createdAt,
    prompt: h.prompt,
    model: `${name} (${h.model.modelType}, ${h.model.layers}×${h.model.heads})`,
    device: h.device,
    layers: h.model.layers,
    heads: h.model.heads,
    interventions: describeInterventions(h.interventions, h.prompt),
    tokens: h.tokens.map((t) => ({ text: t.text, start: t.start, end: t.end, special: t.special, id: t.id })),
    unaligned,
    next: h.next.map((n) => ({ id: n.id, text: n.text, prob: n.prob })),
    metrics: metricsTensor(run),
    runMs: h.timings.runMs,
  };
}

// ---- watched tokens in saved runs ----

/** The watched tokens and the pair of the logit difference (ids; null = the first two). */
export interface WatchList {
  tokens: readonly WatchedToken[];
  pair: [number, number] | null;
}

/** The pair of the logit difference: the chosen pair when both are watched, else the first two, else null. */
export function watchListPair(w: WatchList): [number, number] | null {
  const ids = w.tokens.map((t) => t.id);
  if (w.pair && w.pair[0] !== w.pair[1] && ids.includes(w.pair[0]) && ids.includes(w.pair[1])) return [w.pair[0], w.pair[1]];
  return ids.length >= 2 ? [ids[0]!, ids[1]!] : null;
}

/**
 * One run's watched values at the given token indexes (the next-token distribution after each),
 * from what the run saved: every position's logits, else the last position's logits at the last
 * token, else the saved top-K log-probabilities (a token below the top K gets NaN: not saved, never
 * a guessed number). Ids outside the run's vocabulary get NaN.
 */
export function watchSide(run: SavedRun, positions: readonly number[], ids: readonly number[], pair: [number, number] | null): CompareWatchSide {
  const W = ids.length;
  const P = positions.length;
  const T = run.header.tokens.length;
  const V = run.header.model.vocabSize;
  const K = runTopK(run);
  const logprob = new Float32Array(W * P).fill(NaN);
  const logit = new Float32Array(W * P).fill(NaN);
  const rank = new Float32Array(W * P).fill(NaN);
  const pairDiff = new Float32Array(P).fill(NaN);
  const source = new Float32Array(P);
  const pairIdx = pair ? [ids.indexOf(pair[0]), ids.indexOf(pair[1])] : null;
  for (let p = 0; p < P; p++) {
    const t = positions[p]!;
    let row: Float32Array | undefined;
    let src: WatchSource = 'none';
    if (run.logits && run.logits.length === T * V && t >= 0 && t < T) (row = run.logits.subarray(t * V, (t + 1) * V)), (src = 'logits');
    else if (run.lastLogits && run.lastLogits.length === V && t === T - 1) (row = run.lastLogits), (src = 'lastLogits');
    else if (K > 0 && run.topIds && run.topLogprobs && t >= 0 && t < T) src = 'topK';
    source[p] = WATCH_SOURCES.indexOf(src);
    const diffs: number[] = [];
    if (row) {
      // log-sum-exp in float64 over the float32 logits; rank = 1 + the number of larger logits
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(row[v]! - max);
      const lse = max + Math.log(sum);
      ids.forEach((id, w) => {
        if (!(id >= 0 && id < V)) return;
        const x = row![id]!;
        let above = 0;
        for (let v = 0; v < V; v++) if (row![v]! > x) above++;
        logprob[w * P + p] = x - lse;
        logit[w * P + p] = x;
        rank[w * P + p] = above + 1;
      });
      if (pairIdx && pairIdx[0]! >= 0 && pairIdx[1]! >= 0 && pair![0] < V && pair![1] < V) diffs.push(row[pair![0]]! - row[pair![1]]!);
    } else if (src === 'topK') {
      const at = t * K;
      ids.forEach((id, w) => {
        for (let k = 0; k < K; k++) {
          if (run.topIds![at + k] !== id) continue;
          const lp = run.topLogprobs![at + k]!;
          let above = 0;
          for (let j = 0; j < K; j++) if (run.topLogprobs![at + j]! > lp) above++;
          logprob[w * P + p] = lp;
          rank[w * P + p] = above + 1;
          return;
        }
      });
      // logit(a) − logit(b) = log p(a) − log p(b): known when both are in the saved top K
      if (pairIdx && pairIdx[0]! >= 0 && pairIdx[1]! >= 0) diffs.push(logprob[pairIdx[0]! * P + p]! - logprob[pairIdx[1]! * P + p]!);
    }
    if (diffs.length) pairDiff[p] = diffs[0]!;
  }
  const t = (x: Float32Array, dims: number[]): TensorMsg => ({ dims, data: x.buffer as ArrayBuffer });
  return { logprob: t(logprob, [W, P]), logit: t(logit, [W, P]), rank: t(rank, [W, P]), pairDiff: t(pairDiff, [P]), source: t(source, [P]), topK: K };
}

/** The watched tokens in A and B at every aligned position; null when none is watched. */
export function compareWatch(A: SavedRun, B: SavedRun, positions: readonly { a: number; b: number }[], watch: WatchList | null | undefined): CompareWatch | null {
  if (!watch || watch.tokens.length === 0) return null;
  const ids = watch.tokens.map((t) => t.id);
  const pair = watchListPair(watch);
  return {
    tokens: watch.tokens.map((t) => ({ id: t.id, text: t.text })),
    pair,
    a: watchSide(A, positions.map((p) => p.a), ids, pair),
    b: watchSide(B, positions.map((p) => p.b), ids, pair),
  };
}

/** The compare panel's view model (`watch`: the session's watched tokens, shown at every aligned position). */
export function buildCompareView(A: SavedRun, B: SavedRun, cmp: CompareResult, decode: Decode, labels: [string, string] = ['A', 'B'], watch: WatchList | null = null): CompareView {
  const positions: PositionView[] = cmp.positions.map((p) => {
    const pa = new Map(p.topA.map((t) => [t.id, t.prob]));
    const pb = new Map(p.topB.map((t) => [t.id, t.prob]));
    const pt = (t: { id: number; prob: number }): ProbText => ({ id: t.id, text: decode(t.id), prob: t.prob });
    return {
      a: p.a,
      b: p.b,
      text: p.text,
      topA: p.topA.map(pt),
      topB: p.topB.map(pt),
      left: p.left.map((id) => ({ id, text: decode(id), probA: pa.get(id) ?? 0, probB: pb.get(id) ?? null })),
      entered: p.entered.map((id) => ({ id, text: decode(id), probA: pa.get(id) ?? null, probB: pb.get(id) ?? 0 })),
    };
  });
  const index = new Map(cmp.positions.map((p, i) => [`${p.a}:${p.b}`, i]));
  let deltas: TensorMsg | null = null;
  if (cmp.headDeltas.length > 0) {
    const { layers: L, heads: H } = A.header.model;
    const out = new Float32Array(METRICS.length * L * H).fill(NaN);
    for (const d of cmp.headDeltas) {
      if (d.layer >= L || d.head >= H) continue;
      METRICS.forEach((m, i) => {
        const v = d[m];
        if (v !== null) out[(i * L + d.layer) * H + d.head] = v;
      });
    }
    deltas = { dims: [METRICS.length, L, H], data: out.buffer as ArrayBuffer };
  }
  return {
    mode: 'compare',
    a: sideView(A, labels[0], cmp.unalignedA),
    b: sideView(B, labels[1], cmp.unalignedB),
    positions,
    kl: tensor(cmp.positions.map((p) => p.kl), [cmp.positions.length]),
    shift: tensor(cmp.positions.map((p) => (p.attentionShift === null ? NaN : p.attentionShift)), [cmp.positions.length]),
    deltas,
    mostDifferent: cmp.mostDifferent.map((p) => index.get(`${p.a}:${p.b}`)).filter((i): i is number => i !== undefined),
    notComparable: cmp.notComparable,
    aligned: cmp.aligned,
    attention: attentionUnavailable([A, B], labels),
    watch: compareWatch(A, B, cmp.positions, watch),
  };
}

/** The view model of one saved run (the .attnrun editor): A only. */
export function buildRunView(run: SavedRun, label: string): CompareView {
  return {
    mode: 'single',
    a: sideView(run, label, []),
    b: null,
    positions: [],
    kl: tensor([], [0]),
    shift: tensor([], [0]),
    deltas: null,
    mostDifferent: [],
    notComparable: [],
    aligned: 0,
    attention: attentionUnavailable([run], [label]),
    watch: null,
  };
}

// ---- the attention overlay of the compare panel (rows of the saved patterns) ----

/** Why the runs' attention cannot be shown as an overlay (a run without saved patterns), or null. */
export function attentionUnavailable(runs: SavedRun[], labels: string[]): string | null {
  const missing = runs.map((r, i) => (r.patterns ? null : labels[i] ?? `run ${i + 1}`)).filter((x): x is string => x !== null);
  if (missing.length === 0) return null;
  const who = missing.length === runs.length && runs.length > 1 ? 'both runs were' : `${missing.join(' and ')} was`;
  const tooLarge = runs.some((r) => !r.patterns && r.omitted?.includes('patterns'));
  const why = tooLarge
    ? 'layers × heads × tokens² too large to save'
    : 'saved without tensors: auto-saved runs keep the prompt, tokens, head metrics and predictions; use “Save Run As…” with tensors, or Compare with Baseline, to keep every head\'s attention';
  return `${who} saved without attention patterns (${why}), so there is no attention to show`;
}

/**
 * The attention FROM token `token` of a saved run to every token ([T]; zero after `token` in a
 * causal model): row `token` of `head`'s pattern, or the mean over all L×H heads when `head` is
 * null. Throws a one-line error when the run has no patterns or the token or head is out of range.
 */
export function attentionRow(run: SavedRun, token: number, head: HeadRef | null, label = 'the run'): Float32Array {
  const { layers: L, heads: H } = run.header.model;
  const T = run.header.tokens.length;
  const P = run.patterns;
  if (!P) throw new Error(`${label} was saved without attention patterns`);
  if (P.length !== L * H * T * T) throw new Error(`${label}: the attention patterns have ${P.length} values, not ${L}×${H}×${T}×${T}`);
  if (!Number.isInteger(token) || token < 0 || token >= T) throw new Error(`${label} has no token ${token} (it has ${T})`);
  const out = new Float32Array(T);
  if (head) {
    if (head.layer >= L || head.head >= H) throw new Error(`${headLabel(head)} is not in ${label}'s model (${L} layers × ${H} heads)`);
    const at = ((head.layer * H + head.head) * T + token) * T;
    out.set(P.subarray(at, at + T));
    return out;
  }
  const acc = new Float64Array(T);
  for (let lh = 0; lh < L * H; lh++) {
    const at = (lh * T + token) * T;
    for (let k = 0; k < T; k++) acc[k]! += P[at + k]!;
  }
  for (let k = 0; k < T; k++) out[k] = acc[k]! / (L * H);
  return out;
}

/** The `attentionRows` reply: position `position` of the view's aligned positions, in A and in B. */
export function attentionRows(
  A: SavedRun,
  B: SavedRun,
  positions: readonly { a: number; b: number }[],
  position: number,
  head: HeadRef | null,
  labels: [string, string] = ['A', 'B'],
): { a: TensorMsg; b: TensorMsg } {
  const p = positions[position];
  if (!p) throw new Error(`there is no aligned position ${position} (there are ${positions.length})`);
  const a = attentionRow(A, p.a, head, labels[0]);
  const b = attentionRow(B, p.b, head, labels[1]);
  return { a: { dims: [a.length], data: a.buffer as ArrayBuffer }, b: { dims: [b.length], data: b.buffer as ArrayBuffer } };
}

/** The attention overlay needs the patterns only: a run without its logits (smaller to keep). */
export function patternsOnly(run: SavedRun): SavedRun {
  return { file: run.file, header: run.header, patterns: run.patterns };
}

/**
 * Checks the Compare panel's saved webview state (restored after a reload): two .attnrun paths and
 * two labels (cut to LIMITS.label); undefined if unusable.
 */
export function parseCompareSource(state: unknown): CompareSource | undefined {
  const r = validate((): CompareSource => {
    const src = obj(obj(state, 'state').source, 'state.source');
    const file: Check<string> = (v, p) => {
      const f = str(v, p, LIMITS.path, 1);
      return f.endsWith('.attnrun') ? f : fail(p, 'expected an .attnrun file');
    };
    const files = list(src.files, 'state.source.files', file, 2);
    const labels = list(src.labels, 'state.source.labels', (v, p) => str(v, p, LIMITS.path, 1).slice(0, LIMITS.label), 2);
    if (files.length !== 2 || labels.length !== 2) fail('state.source', 'expected two files and two labels');
    return { files: [files[0]!, files[1]!], labels: [labels[0]!, labels[1]!] };
  });
  return r.ok ? r.value : undefined;
}

// ---- message validation (everything from a webview is checked before use; src/shared/validate.ts) ----

export const OVERLAY_MODES: readonly OverlayMode[] = ['kl', 'attention'];

const ready = (b: Obj) => ({ type: 'ready' as const, version: int(b.version, 'body.version') });

const FROM_COMPARE: { [K in FromCompare['type']]: (b: Obj) => Extract<FromCompare, { type: K }> } = {
  ready,
  compareWith: () => ({ type: 'compareWith' }),
  generate: () => ({ type: 'generate' }),
  selected: (b) => ({
    type: 'selected',
    position: nullable(b.position, 'body.position', (v, p) => int(v, p, 0, LIMITS.list)),
    head: nullable(b.head, 'body.head', headRef),
    metric: oneOf(b.metric, 'body.metric', METRICS),
    overlay: oneOf(b.overlay, 'body.overlay', OVERLAY_MODES),
  }),
  attentionRows: (b) => ({ type: 'attentionRows', position: int(b.position, 'body.position', 0, LIMITS.list), head: nullable(b.head, 'body.head', headRef) }),
};

export function parseFromCompare(raw: unknown): ParsedMessage<FromCompare> {
  return parseMessage<FromCompare>(raw, FROM_COMPARE);
}

/** Checks generation options; returns the error text or undefined. */
export function checkGenerateOptions(o: unknown): string | undefined {
  const r = validate(() => generateOptions(o, 'options'));
  return r.ok ? undefined : r.error;
}

const FROM_GENERATE: { [K in FromGenerate['type']]: (b: Obj) => Extract<FromGenerate, { type: K }> } = {
  ready,
  stop: () => ({ type: 'stop' }),
  generate: (b) => ({ type: 'generate', options: generateOptions(b.options, 'body.options') }),
  inspect: (b) => ({ type: 'inspect', lane: oneOf(b.lane, 'body.lane', ['with', 'without']) }),
};

export function parseFromGenerate(raw: unknown): ParsedMessage<FromGenerate> {
  return parseMessage<FromGenerate>(raw, FROM_GENERATE);
}
