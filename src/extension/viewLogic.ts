// View logic of the extension that does not need the vscode API, so unit tests cover it directly.
import type { HeadRef, HeadView, MetricName } from '../shared/protocol';

export interface TreeOrder {
  metric: MetricName;
  /** descending by the metric */
  sort: boolean;
  /** keep only heads whose metric is at least this */
  minValue: number | null;
}

/** Heads of one layer in tree order (sorted and filtered by a metric when asked). */
export function orderHeads(heads: readonly HeadView[], layer: number, order: TreeOrder): HeadView[] {
  let hs = heads.filter((h) => h.layer === layer);
  if (order.minValue !== null) hs = hs.filter((h) => (h[order.metric] ?? -Infinity) >= order.minValue!);
  if (order.sort) hs = [...hs].sort((a, b) => (b[order.metric] ?? -Infinity) - (a[order.metric] ?? -Infinity) || a.head - b.head);
  return hs;
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
