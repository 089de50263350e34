// Head grid logic without the DOM: metric domains and values, layout, hit testing and keyboard
// navigation over a layer × head grid (rows = layers L0.., columns = heads H0..).
import type { HeadRef, HeadView, MetricName } from '../../src/shared/protocol';
import { formatMetricValue, METRIC_INFO, sameHead } from '../../src/shared/heads';
import { harm, IMPORTANCE_CITE, type HeadImportance, type ImportanceView } from '../../src/shared/importance';

export { METRIC_INFO };

export interface MetricDomain {
  /** color scale ends: 0..1 for fractions, 0..max observed for entropy */
  lo: number;
  hi: number;
  /** observed extremes over the non-null values; null when every value is null */
  min: number | null;
  max: number | null;
  /** heads whose value is null or not finite */
  missing: number;
}

export function metricValue(h: HeadView, m: MetricName): number | null {
  const v = h[m];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function metricDomain(heads: readonly HeadView[], m: MetricName): MetricDomain {
  let min = Infinity;
  let max = -Infinity;
  let missing = 0;
  for (const h of heads) {
    const v = metricValue(h, m);
    if (v === null) {
      missing++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const any = max >= min;
  const fraction = METRIC_INFO[m].unit === 'fraction';
  const hi = fraction ? 1 : any && max > 0 ? max : 1;
  return { lo: 0, hi, min: any ? min : null, max: any ? max : null, missing };
}

/** Position of a value in its domain, 0..1; null for a missing value. */
export function metricFraction(v: number | null, d: MetricDomain): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  if (!(d.hi > d.lo)) return 0;
  return Math.max(0, Math.min(1, (v - d.lo) / (d.hi - d.lo)));
}

/** `short`: scale ends (0%, 100%, 2.3 nats) rather than values. */
export const formatMetric = formatMetricValue;

export function formatScale(s: number): string {
  if (s === 0) return 'masked';
  return `×${Number(s.toFixed(2))}`;
}

/** Heads ranked by a metric, highest first, nulls dropped (ties: lower layer, then head, first). */
export function topHeads(heads: readonly HeadView[], m: MetricName, n: number): HeadView[] {
  return heads
    .filter((h) => metricValue(h, m) !== null)
    .sort((a, b) => metricValue(b, m)! - metricValue(a, m)! || a.layer - b.layer || a.head - b.head)
    .slice(0, n);
}

/** heads indexed by layer * H + head (missing heads: undefined). */
export function indexHeads(heads: readonly HeadView[], L: number, H: number): (HeadView | undefined)[] {
  const out = new Array<HeadView | undefined>(L * H).fill(undefined);
  for (const h of heads) if (h.layer >= 0 && h.layer < L && h.head >= 0 && h.head < H) out[h.layer * H + h.head] = h;
  return out;
}

export interface GridLayout {
  /** CSS px */
  cell: number;
  gap: number;
  /** left gutter (layer labels) and top gutter (head labels) */
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Fits L × H cells in `width` CSS px: cells between minCell and maxCell (the grid may overflow). */
export function gridLayout(width: number, L: number, H: number, opts: { minCell?: number; maxCell?: number; left?: number; top?: number; gap?: number } = {}): GridLayout {
  const minCell = opts.minCell ?? 12;
  const maxCell = opts.maxCell ?? 30;
  const left = opts.left ?? 34;
  const top = opts.top ?? 18;
  const gap = opts.gap ?? 2;
  const avail = Math.max(0, width - left - 2);
  const fit = H > 0 ? Math.floor(avail / H) - gap : maxCell;
  const cell = Math.max(minCell, Math.min(maxCell, fit));
  return { cell, gap, left, top, width: left + H * (cell + gap) + 2, height: top + L * (cell + gap) + 2 };
}

/** The head under a point (CSS px relative to the grid's top-left); gaps and gutters: null. */
export function cellAt(x: number, y: number, g: GridLayout, L: number, H: number): HeadRef | null {
  const pitch = g.cell + g.gap;
  const cx = x - g.left;
  const cy = y - g.top;
  if (cx < 0 || cy < 0) return null;
  const head = Math.floor(cx / pitch);
  const layer = Math.floor(cy / pitch);
  if (head >= H || layer >= L) return null;
  if (cx - head * pitch >= g.cell || cy - layer * pitch >= g.cell) return null;
  return { layer, head };
}

/** Top-left corner of a cell, CSS px. */
export function cellOrigin(h: HeadRef, g: GridLayout): { x: number; y: number } {
  const pitch = g.cell + g.gap;
  return { x: g.left + h.head * pitch, y: g.top + h.layer * pitch };
}

/**
 * Keyboard navigation: arrows move by one cell (clamped), Home/End to the first/last head of the
 * row, PageUp/PageDown to the first/last layer. Returns null for keys it does not handle.
 */
export function moveSelection(cur: HeadRef | null, key: string, L: number, H: number): HeadRef | null {
  if (L <= 0 || H <= 0) return null;
  const c = cur ?? { layer: 0, head: 0 };
  const clampRef = (layer: number, head: number): HeadRef => ({ layer: Math.max(0, Math.min(L - 1, layer)), head: Math.max(0, Math.min(H - 1, head)) });
  switch (key) {
    case 'ArrowLeft':
      return clampRef(c.layer, c.head - 1);
    case 'ArrowRight':
      return clampRef(c.layer, c.head + 1);
    case 'ArrowUp':
      return clampRef(c.layer - 1, c.head);
    case 'ArrowDown':
      return clampRef(c.layer + 1, c.head);
    case 'Home':
      return clampRef(c.layer, 0);
    case 'End':
      return clampRef(c.layer, H - 1);
    case 'PageUp':
      return clampRef(0, c.head);
    case 'PageDown':
      return clampRef(L - 1, c.head);
    default:
      return null;
  }
}

// ---------------------------------------------------------------- importance by ablation
// The grid's "Importance (ablation)" choice colors heads by harm (src/shared/importance.ts: larger
// = masking the head hurts the metric more). When some heads have a negative harm (masking them
// helped) the scale diverges around 0 with a second hue; otherwise one hue from 0 to the largest harm.

export interface ImportanceDomain {
  /** some harm < 0: a diverging scale symmetric around 0 */
  diverging: boolean;
  /** the scale's end: the largest |harm| (diverging) or the largest harm; 1 when all are 0 */
  hi: number;
  /** observed extremes of the harm; null without values */
  min: number | null;
  max: number | null;
}

export function importanceDomain(v: ImportanceView | null): ImportanceDomain {
  let min = Infinity;
  let max = -Infinity;
  for (const h of v?.heads ?? []) {
    const x = harm(v!.metric, h.delta);
    if (!Number.isFinite(x)) continue;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (!(max >= min)) return { diverging: false, hi: 1, min: null, max: null };
  const diverging = min < 0;
  const end = diverging ? Math.max(-min, max) : max;
  return { diverging, hi: end > 0 ? end : 1, min, max };
}

/** A harm's place on the scale: −1..1 on a diverging scale, 0..1 otherwise; null when missing. */
export function importanceFraction(x: number | null, d: ImportanceDomain): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = x / d.hi;
  return Math.max(d.diverging ? -1 : 0, Math.min(1, f));
}

/** A head's harm in a ranking, or null when the ranking has no value for it. */
export function headHarm(v: ImportanceView | null, index: readonly (HeadImportance | undefined)[], H: number, h: HeadRef): number | null {
  const r = index[h.layer * H + h.head];
  return v && r ? harm(v.metric, r.delta) : null;
}

/** "text." — a full stop unless the text already ends in punctuation ("…Better than One?"). */
function sentence(t: string): string {
  return /[.?!]$/.test(t) ? t : `${t}.`;
}

/** The author and year of a citation ("Olsson et al. 2022" of "Olsson et al. 2022, In-context …"). */
export function shortCite(cite: string): string {
  return cite.split(',')[0]!.trim();
}

/**
 * The option description of a head metric in the grid's dropdown (vscode-single-select shows the
 * highlighted option's description in a footer as wide as the control): one short line with the source.
 */
export function metricOptionDescription(m: MetricName): string {
  return `${METRIC_INFO[m].description} (${shortCite(METRIC_INFO[m].cite)})`;
}

/** The line under the grid controls: what the chosen metric measures, and the full citation. */
export function metricInfoLine(m: MetricName): string {
  return `${sentence(METRIC_INFO[m].description)} ${sentence(METRIC_INFO[m].cite)}`;
}

function importanceWhat(v: ImportanceView): string {
  const target = v.targetText !== null ? ` of ${JSON.stringify(v.targetText)}` : '';
  return v.metric === 'logprob' ? `Δ log p${target} at the last position` : v.metric === 'loss' ? 'Δ mean next-token loss over the prompt' : 'mean KL(original ‖ masked) over the prompt';
}

/** The same for importance by ablation (dropdown footer). */
export function importanceOptionDescription(v: ImportanceView): string {
  return `Each head masked alone: ${importanceWhat(v)} (${shortCite(IMPORTANCE_CITE)})`;
}

/** The line under the grid controls for importance by ablation: what was measured, the sign, the source. */
export function importanceInfoLine(v: ImportanceView): string {
  const sign = v.metric === 'logprob' ? 'negative Δ = the head supports the prediction' : v.metric === 'loss' ? 'positive Δ = the head helps predict the prompt' : 'larger = masking changes the predictions more';
  return `Each head masked alone: ${importanceWhat(v)} (nats); ${sign}. ${sentence(IMPORTANCE_CITE)}`;
}

/**
 * Whether a head grid prop is unchanged for drawing: the selection and the extra heads by their
 * heads, notes by content, everything else by identity (the panel passes the state's own arrays).
 */
export function sameGridProp(key: string, a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a == null || b == null) return false;
  if (key === 'selected') return sameHead(a as HeadRef, b as HeadRef);
  if (key === 'extra') {
    const x = a as ReadonlySet<string>;
    const y = b as ReadonlySet<string>;
    return x.size === y.size && [...x].every((v) => y.has(v));
  }
  if (key === 'notes') {
    const x = a as ReadonlyMap<string, readonly string[]>;
    const y = b as ReadonlyMap<string, readonly string[]>;
    return x.size === y.size && [...x].every(([k, v]) => JSON.stringify(y.get(k)) === JSON.stringify(v));
  }
  return false;
}
