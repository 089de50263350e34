// The compare page's head grid (`#head-grid`): a metric select (`#metric`), a layer × head grid of
// buttons (`.cell[data-head="l.h"]`) colored by the B − A delta of the metric on a diverging scale
// (blue lower in B, red higher; compare mode) or by one run's metric (single mode), and the
// selected head's values (`#head-detail`). A DOM grid rather than the panel's canvas HeadGrid:
// every head is a focusable button with its values as aria-label, and there is no masking here.
//
// Props: mode, layers, heads, metric, selected (head or null), a / b / deltas ([metric, layer,
// head] in METRICS order; b and deltas null in single mode; deltas null when the models differ in
// shape), attentionHint (mention the token views' attention in the hint). Callbacks:
// onMetric(metric), onHead(head | null) (a click on the selected head deselects it).
import { METRICS, type HeadRef, type MetricName } from '../../../src/shared/protocol';
import { el } from '../../components/el';
import { METRIC_INFO } from '../../logic/gridLogic';
import { allMetricsLine, formatValue, headCells } from '../headCells';
import { section } from './section';

export interface HeadMetricGridProps {
  mode: 'single' | 'compare';
  layers: number;
  heads: number;
  metric: MetricName;
  selected: HeadRef | null;
  /** [metric, layer, head] run A (or the one run) */
  a: Float32Array;
  /** [metric, layer, head] run B; null in single mode */
  b: Float32Array | null;
  /** [metric, layer, head] B − A; null in single mode or when the models differ in shape */
  deltas: Float32Array | null;
  attentionHint: boolean;
}

export interface HeadMetricGridCallbacks {
  onMetric(m: MetricName): void;
  onHead(h: HeadRef | null): void;
}

function metricSelect(metric: MetricName, onMetric: (m: MetricName) => void): HTMLElement {
  const sel = el('vscode-single-select') as HTMLElement & { value: string };
  sel.id = 'metric';
  for (const m of METRICS) {
    const o = el('vscode-option') as HTMLElement & { value: string };
    o.textContent = METRIC_INFO[m].label;
    o.setAttribute('value', m);
    if (m === metric) o.setAttribute('selected', '');
    sel.append(o);
  }
  sel.addEventListener('change', () => {
    if (METRICS.includes(sel.value as MetricName)) onMetric(sel.value as MetricName);
  });
  return sel;
}

export function headMetricGrid(p: HeadMetricGridProps, cb: HeadMetricGridCallbacks): HTMLElement {
  const compare = p.mode === 'compare';
  const sec = section(compare ? 'Head metric deltas (B − A)' : 'Head metrics', 'head-grid');
  const bar = el('div', 'toolbar');
  bar.append(el('label', 'muted', 'Metric'), metricSelect(p.metric, cb.onMetric), el('span', 'muted small', METRIC_INFO[p.metric].description));
  sec.append(bar);
  if (compare && !p.deltas) {
    sec.append(el('p', 'muted', 'The runs’ models differ in shape: head metrics cannot be compared.'));
    return sec;
  }
  const { layers: L, heads: H } = p;
  const mi = METRICS.indexOf(p.metric);
  const slice = (t: Float32Array) => t.subarray(mi * L * H, (mi + 1) * L * H);
  const A = slice(p.a);
  const B = p.b ? slice(p.b) : null;
  const values = compare ? slice(p.deltas!) : A;
  const cells = headCells({ mode: p.mode, layers: L, heads: H, metric: p.metric, a: A, b: B, values });
  const grid = el('div', 'hgrid');
  grid.style.setProperty('--cols', String(H));
  grid.append(el('span', 'corner'));
  for (let h = 0; h < H; h++) grid.append(el('span', 'axis', `H${h}`));
  for (let l = 0; l < L; l++) {
    grid.append(el('span', 'axis', `L${l}`));
    for (let h = 0; h < H; h++) {
      const c = cells[l * H + h]!;
      const cell = el('button', 'cell');
      cell.dataset.head = `${l}.${h}`;
      cell.classList.add(c.tone);
      if (c.tone !== 'nan') cell.style.setProperty('--f', String(c.f));
      const selected = p.selected !== null && p.selected.layer === l && p.selected.head === h;
      if (selected) cell.classList.add('selected');
      cell.title = c.label;
      cell.setAttribute('aria-label', c.label);
      cell.addEventListener('click', () => cb.onHead(selected ? null : { layer: l, head: h }));
      grid.append(cell);
    }
  }
  sec.append(grid);
  const info = el('div', 'headinfo');
  info.id = 'head-detail';
  if (p.selected) {
    const { layer: l, head: h } = p.selected;
    const i = l * H + h;
    if (compare) {
      info.append(el('strong', '', `L${l}H${h}`), el('span', 'chip', `A ${formatValue(A[i]!)}`), el('span', 'chip', `B ${formatValue(B![i]!)}`), el('span', 'chip', `Δ ${formatValue(values[i]!, true)}`));
      info.append(el('div', 'muted small', allMetricsLine(p.deltas!, L, H, l, h, true)));
    } else info.append(el('strong', '', `L${l}H${h}`), el('span', 'muted', allMetricsLine(p.a, L, H, l, h, false)));
  } else info.append(el('span', 'muted small', compare ? `Click a head to see its metrics in A and B${p.attentionHint ? ' and its attention in the token views' : ''}. Blue: lower in B; red: higher in B.` : 'Click a head for all its metrics.'));
  sec.append(info);
  return sec;
}
