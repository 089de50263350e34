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
