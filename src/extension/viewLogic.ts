// View logic of the extension that does not need the vscode API, so unit tests cover it directly.
import type { GridMetric, HeadRef, HeadView } from '../shared/protocol';
import { harm, type ImportanceView } from '../shared/importance';
import type { PatchingView } from '../shared/patching';

export interface TreeOrder {
  /** a head metric, or 'importance' (harm by ablation, see shared/importance.ts) */
  metric: GridMetric;
  /** descending by the metric */
  sort: boolean;
  /** keep only heads whose metric is at least this */
  minValue: number | null;
  /** one flat list of heads across layers (sorted by the metric) instead of Layer ▸ Head */
  flat?: boolean;
}

/** The value a head is sorted and filtered by: its metric, its harm by ablation or its patching effect (null when unknown). */
export function orderValue(h: HeadView, metric: GridMetric, importance?: ImportanceView | null, patching?: PatchingView | null): number | null {
  if (metric === 'patching') return patching?.heads.find((x) => x.layer === h.layer && x.head === h.head)?.effect ?? null;
  if (metric !== 'importance') return h[metric] ?? null;
  const r = importance?.heads.find((x) => x.layer === h.layer && x.head === h.head);
  return r && importance ? harm(importance.metric, r.delta) : null;
}

function ordered(hs: HeadView[], order: TreeOrder, importance?: ImportanceView | null, patching?: PatchingView | null): HeadView[] {
  const v = (h: HeadView) => orderValue(h, order.metric, importance, patching) ?? -Infinity;
  if (order.minValue !== null) hs = hs.filter((h) => v(h) >= order.minValue!);
  if (order.sort || order.flat) hs = [...hs].sort((a, b) => v(b) - v(a) || a.layer - b.layer || a.head - b.head);
  return hs;
}

/** Heads of one layer in tree order (sorted and filtered by a metric when asked). */
export function orderHeads(heads: readonly HeadView[], layer: number, order: TreeOrder, importance?: ImportanceView | null, patching?: PatchingView | null): HeadView[] {
  return ordered(heads.filter((h) => h.layer === layer), order, importance, patching);
}

/** Every head in one list across layers, highest value first (filtered when asked): the flat view. */
export function flatHeads(heads: readonly HeadView[], order: TreeOrder, importance?: ImportanceView | null, patching?: PatchingView | null): HeadView[] {
  return ordered([...heads], { ...order, sort: true }, importance, patching);
}

export function formatScale(v: number): string {
  return v === 0 ? 'masked' : v === 1 ? '' : `×${Number(v.toFixed(2))}`;
}

/** Parses a head id as users type it: "L2H5", "2.5" or "2 5". */
export function parseHeadId(s: string, layers: number, heads: number): HeadRef | undefined {
  const m = /^\s*(?:L\s*(\d+)\s*H\s*(\d+)|(\d+)\s*[.\s,:]\s*(\d+))\s*$/i.exec(s);
  if (!m) return undefined;
  const layer = Number(m[1] ?? m[3]);
  const head = Number(m[2] ?? m[4]);
  return layer < layers && head < heads ? { layer, head } : undefined;
}

// Busy indicators. Nothing here animates: a spinning icon or VS Code's infinite progress bar makes
// the workbench's renderer paint every frame for as long as a run lasts, and on a small machine
// (measured on 2 cores, BENCHMARKS.md "VS Code after the ring and save fixes") that takes CPU from
// the forward pass the user is waiting for.

/** The status bar's text while a run or a model load is in flight: a still icon. */
export function busyStatusText(busy: string): string {
  return `$(sync) AttnScope: ${busy}`;
}

/**
 * A step of the run notification (shown when a run takes a while): what runs, the whole seconds
 * so far and, for a re-run of the prompt on screen, how long that run took, so the notification
 * moves without an animation. `increment: 0` makes VS Code draw a still, empty bar instead of its
 * infinite animated one.
 */
export function runProgressStep(label: string, elapsedMs: number, previousRunMs?: number): { message: string; increment: number } {
  const s = Math.max(0, Math.floor(elapsedMs / 1000));
  const prev = previousRunMs !== undefined && previousRunMs > 0 ? ` (the last run took ${formatSeconds(previousRunMs)})` : '';
  return { message: `${label} ${s} s${prev}. Cancel keeps the previous run.`, increment: 0 };
}

/**
 * When a re-run gets its notification with Cancel: after a second for a prompt not run before, else
 * once the run has taken 1.5× this prompt's last run (at least 1 s, at most 3 s). A re-run expected
 * to end in a moment gets none (the status bar and the panel say Running): the toast slides in and
 * out, and on a 2-core machine each of those frames (the whole window re-layerized) slows the very
 * run it reports on; a run that takes longer than expected still gets Cancel within 3 s.
 */
export function runProgressDelayMs(previousRunMs?: number): number {
  if (previousRunMs === undefined || !(previousRunMs > 0)) return 1000;
  return Math.min(3000, Math.max(1000, Math.round(previousRunMs * 1.5)));
}

/**
 * Whether a session change alters the Heads view (model, run, masks and scales, selection icon,
 * importance and patching). 'busy' (twice per run), 'watch' and 'overlay' (every cursor move) do not:
 * each refresh re-renders the tree, with its indent-guide transitions, while the model runs.
 */
export function refreshesHeadsView(what: string): boolean {
  return what !== 'overlay' && what !== 'busy' && what !== 'watch';
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** What the overlay paints in one editor: the run's token ranges (one array per run and document version), each token's tint level, the cursor token; `levels` null: nothing. */
export interface OverlayPaint<R> {
  ranges: R | null;
  levels: Uint8Array | null;
  cursor: number;
}

/**
 * Whether painting `b` would leave an editor that shows `a` as it is (then the overlay skips the
 * editor: each setDecorations re-renders its decorated lines). Nothing painted equals nothing
 * painted; otherwise the same ranges array, cursor token and every level.
 */
export function samePaint<R>(a: OverlayPaint<R> | undefined, b: OverlayPaint<R>): boolean {
  if (!a) return false;
  if (a.levels === null || b.levels === null) return a.levels === b.levels;
  if (a.ranges !== b.ranges || a.cursor !== b.cursor || a.levels.length !== b.levels.length) return false;
  for (let i = 0; i < a.levels.length; i++) if (a.levels[i] !== b.levels[i]) return false;
  return true;
}
