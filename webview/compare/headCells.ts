// The cells of the compare page's head grid, DOM-free: per head its color (a diverging scale for
// the B − A deltas, blue lower / red higher in B; a sequential one for one run's metric), the
// label (tooltip and aria-label) and the one-line summary of the selected head.
import { METRICS, type MetricName } from '../../src/shared/protocol';
import { METRIC_INFO } from '../logic/gridLogic';
import { divergingFraction, divergingMax } from './compareLogic';

export interface HeadCell {
  /** 'nan' (no value: hatched), else 'pos' or 'neg' with `f` (0..1) the strength of the color */
  tone: 'pos' | 'neg' | 'nan';
  f: number;
  label: string;
}

export interface HeadCellsProps {
  mode: 'single' | 'compare';
  layers: number;
  heads: number;
  metric: MetricName;
  /** [layer, head] the metric in A */
  a: ArrayLike<number>;
  /** [layer, head] the metric in B (compare) */
  b: ArrayLike<number> | null;
  /** [layer, head] the colored values: B − A (compare) or A (single) */
  values: ArrayLike<number>;
}

/** A metric value for labels: 3 decimals (1 past 10, exponent below 0.01), `signed` adds "+"; "—" when missing. */
export function formatValue(v: number, signed = false): string {
  if (!Number.isFinite(v)) return '—';
  const s = Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1);
  return signed && v > 0 ? `+${s}` : s;
}

/** Cells in row-major order [layer, head]. The scale's top is the largest |value| of the grid. */
export function headCells(p: HeadCellsProps): HeadCell[] {
  const max = divergingMax(p.values);
  const name = METRIC_INFO[p.metric].label;
  const out: HeadCell[] = [];
  for (let l = 0; l < p.layers; l++) {
    for (let h = 0; h < p.heads; h++) {
      const i = l * p.heads + h;
      const v = p.values[i]!;
      let tone: HeadCell['tone'] = 'nan';
      let f = 0;
      if (Number.isFinite(v)) {
        const s = p.mode === 'compare' ? divergingFraction(v, max) : Math.sqrt(Math.min(1, Math.abs(v) / max));
        tone = s < 0 ? 'neg' : 'pos';
        f = Math.abs(s);
      }
      const a = p.a[i]!;
      const label = p.mode === 'compare' ? `L${l}H${h} ${name}: A ${formatValue(a)} → B ${formatValue(p.b ? p.b[i]! : NaN)} (Δ ${formatValue(v, true)})` : `L${l}H${h} ${name}: ${formatValue(a)}`;
      out.push({ tone, f, label });
    }
  }
  return out;
}

/** Every metric of one head, "ent Δ +0.120 · sink Δ …" (deltas) or "ent 1.234 · sink …" (values); `all` is [metric, layer, head]. */
export function allMetricsLine(all: ArrayLike<number>, layers: number, heads: number, layer: number, head: number, deltas: boolean): string {
  return METRICS.map((m, k) => {
    const v = all[(k * layers + layer) * heads + head]!;
    return deltas ? `${METRIC_INFO[m].short} Δ ${formatValue(v, true)}` : `${METRIC_INFO[m].short} ${formatValue(v)}`;
  }).join(' · ');
}
