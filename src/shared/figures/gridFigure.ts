// The layer × head grid as a figure: one cell per head colored by a metric (or by importance from
// ablation), labels L{l} (rows) and H{h} (columns), the value in each cell when cells are large
// enough, a colorbar, a title with the model, prompt excerpt, metric and interventions, and the
// metric's definition and citation underneath. Pure: returns a Scene (scene.ts).
import { formatMetricValue, headLabel, METRIC_INFO, type HeadRef, type HeadSummary, type MetricName } from '../heads';
import { headRoles, ROLE_INFO } from '../headLabels';
import { harm, IMPORTANCE_CITE, IMPORTANCE_INFO, importanceIndex, type ImportanceView } from '../importance';
import { caption, colorbar, COLORBAR_WIDTH, header, PAD, SMALL_SIZE, TEXT_SIZE } from './layout';
import { rampColor, textOn, type Palette } from './palette';
import { promptExcerpt, textWidth, type Scene, type Shape } from './scene';

export type FigureMetric = MetricName | 'importance';

export interface FigureModel {
  name: string;
  arch: string;
  layers: number;
  heads: number;
}

export interface GridFigureInput {
  model: FigureModel;
  prompt: string;
  /** the run's heads with their metrics and output scale */
  heads: readonly (HeadSummary & { scale: number })[];
  /** prompt length in tokens (the roles depend on it) */
  tokens: number;
  metric: FigureMetric;
  /** required when metric is 'importance' */
  importance: ImportanceView | null;
  /** one line per intervention (describeInterventions) */
  interventions: readonly string[];
  selected: HeadRef | null;
  palette: Palette;
}

export interface GridCell {
  head: HeadRef;
  /** the number the cell is colored by (null = n/a) */
  value: number | null;
  /** position on the color ramp, 0..1 (null = n/a) */
  t: number | null;
  /** the value as the cell prints it */
  text: string;
  scale: number;
}

export interface GridColoring {
  cells: GridCell[];
  /** 'sequential' or 'diverging' ramp */
  ramp: 'sequential' | 'diverging';
  /** colorbar ticks (t, label) */
  ticks: { t: number; label: string }[];
  /** colorbar title */
  legend: string;
  /** what the colors mean, one sentence each (definition, citation, sign convention) */
  notes: string[];
}

function metricText(m: MetricName, v: number | null): string {
  if (v === null) return 'n/a';
  return METRIC_INFO[m].unit === 'fraction' ? v.toFixed(2) : v.toFixed(2);
}

/** The signed number with two decimals and a real minus sign. */
export function signed2(v: number): string {
  if (v === 0) return '0.00';
  return `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(2)}`;
}

/** Cell values, colors and legend of a grid colored by `metric` (layer-major cells, every head of the model). */
export function gridColoring(input: Pick<GridFigureInput, 'model' | 'heads' | 'metric' | 'importance'>): GridColoring {
  const { layers: L, heads: H } = input.model;
  const byIndex = new Array<(HeadSummary & { scale: number }) | undefined>(L * H);
  for (const h of input.heads) if (h.layer < L && h.head < H) byIndex[h.layer * H + h.head] = h;
  const cells: GridCell[] = [];
  if (input.metric === 'importance') {
    const imp = input.importance;
    if (!imp) throw new Error('no ablation result to color the grid by; run "Rank Heads by Ablation" first');
    const idx = importanceIndex(imp, L, H);
    const info = IMPORTANCE_INFO[imp.metric];
    const kl = imp.metric === 'kl';
    let m = 0;
    for (const h of imp.heads) if (Number.isFinite(h.delta)) m = Math.max(m, Math.abs(h.delta));
    if (!(m > 0)) m = 1;
    for (let i = 0; i < L * H; i++) {
      const head = { layer: Math.floor(i / H), head: i % H };
      const d = idx[i]?.delta;
      const ok = d !== undefined && Number.isFinite(d);
      // Color by harm (red = masking the head hurts the metric); the printed value is the measured Δ.
      const t = ok ? (kl ? d / m : 0.5 + harm(imp.metric, d) / (2 * m)) : null;
      cells.push({ head, value: ok ? d : null, t, text: ok ? signed2(d) : 'n/a', scale: byIndex[i]?.scale ?? 1 });
    }
    const deltaAt = (h: number) => (imp.metric === 'logprob' ? -h : h);
    const ticks = kl
      ? [0, 0.5, 1].map((t) => ({ t, label: (t * m).toPrecision(3) }))
      : [0, 0.25, 0.5, 0.75, 1].map((t) => ({ t, label: signed2(Number(deltaAt((t - 0.5) * 2 * m).toPrecision(3))) }));
    const target = imp.metric === 'logprob' && imp.targetText !== null ? ` (target ${JSON.stringify(imp.targetText)})` : '';
    return {
      cells,
      ramp: kl ? 'sequential' : 'diverging',
      ticks,
      legend: `${info.delta} (nats)`,
      notes: [
        `Importance by ablation: ${info.description}${target}; baseline ${imp.baseline.toPrecision(6).replace('-', '−')} nats.${kl ? '' : ' Red: masking the head hurts; blue: masking it helps.'}`,
        `Michel et al. 2019 — ${IMPORTANCE_CITE.replace(/^Michel et al\. 2019, /, '')}`,
      ],
    };
  }
  const metric = input.metric;
  const info = METRIC_INFO[metric];
  let max = 0;
  for (const h of input.heads) {
    const v = h[metric];
    if (typeof v === 'number' && Number.isFinite(v)) max = Math.max(max, v);
  }
  const hi = info.unit === 'fraction' ? 1 : max > 0 ? max : 1;
  for (let i = 0; i < L * H; i++) {
    const head = { layer: Math.floor(i / H), head: i % H };
    const h = byIndex[i];
    const raw = h ? h[metric] : null;
    const v = typeof raw === 'number' && Number.isFinite(raw) ? raw : null;
    cells.push({ head, value: v, t: v === null ? null : Math.max(0, Math.min(1, v / hi)), text: metricText(metric, v), scale: h?.scale ?? 1 });
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => ({ t, label: info.unit === 'fraction' ? (t * hi).toFixed(2) : (t * hi).toFixed(2) }));
  return {
    cells,
    ramp: 'sequential',
    ticks,
    legend: info.unit === 'fraction' ? `${info.label} (share of attention)` : `${info.label} (nats)`,
    notes: [`${info.label}: ${info.description}.`, info.cite],
  };
}

/** The figure title and subtitle lines shared by the grid and pattern figures. */
export function figureHeader(model: FigureModel, prompt: string, what: string, interventions: readonly string[]): { title: string; lines: string[] } {
  return {
    title: `${model.name} · ${what}`,
    lines: [
      `${model.arch}, ${model.layers} layers × ${model.heads} heads · prompt: “${promptExcerpt(prompt)}”`,
      interventions.length ? `interventions: ${interventions.join('; ')}` : 'interventions: none',
    ],
  };
}

export function gridFigure(input: GridFigureInput): Scene {
  const p = input.palette;
  const { layers: L, heads: H } = input.model;
  const col = gridColoring(input);
  const stops = col.ramp === 'diverging' ? p.diverging : p.sequential;
  const c = Math.max(12, Math.min(40, Math.floor(Math.min(640 / H, 560 / L))));
  const rowLabelW = Math.ceil(textWidth(`L${L - 1}`, TEXT_SIZE) + 8);
  const metricName = input.metric === 'importance' ? `importance (${input.importance!.metric})` : METRIC_INFO[input.metric].label.toLowerCase();
  const head = figureHeader(input.model, input.prompt, `heads by ${metricName}`, input.interventions);
  const gridW = H * c;
  const gridH = L * c;
  // width: the grid, the colorbar and its labels, at least the header's natural width (capped)
  const barX0 = PAD + rowLabelW + gridW + 20;
  const tickW = Math.max(...col.ticks.map((t) => textWidth(t.label, SMALL_SIZE)), textWidth(col.legend, SMALL_SIZE) - COLORBAR_WIDTH);
  const natural = Math.max(...[head.title, ...head.lines].map((l) => textWidth(l, TEXT_SIZE))) + 2 * PAD;
  const width = Math.ceil(Math.max(barX0 + COLORBAR_WIDTH + 5 + tickW + PAD, Math.min(natural, 900), 420));
  const hdr = header(head.title, head.lines, width, p);
  const shapes: Shape[] = [...hdr.shapes];
  const x0 = PAD + rowLabelW;
  const colLabelStep = Math.max(1, Math.ceil((textWidth(`H${H - 1}`, SMALL_SIZE) + 4) / c));
  const y0 = Math.ceil(hdr.bottom + 26);
  // column labels H{h}
  for (let h = 0; h < H; h += colLabelStep) shapes.push({ kind: 'text', x: x0 + h * c + c / 2, y: y0 - 5, text: `H${h}`, size: SMALL_SIZE, fill: p.foreground, anchor: 'middle' });
  const rowLabelStep = c < TEXT_SIZE + 2 ? Math.ceil((TEXT_SIZE + 2) / c) : 1;
  for (let l = 0; l < L; l += rowLabelStep) shapes.push({ kind: 'text', x: x0 - 6, y: y0 + l * c + c / 2, text: `L${l}`, size: TEXT_SIZE, fill: p.foreground, anchor: 'end', baseline: 'middle' });
  const showValues = c >= 30;
  const valueSize = Math.min(10, Math.floor(c / 3.4));
  let masked = 0;
  const summaries = new Map(input.heads.map((h) => [`${h.layer}.${h.head}`, h]));
  for (const cell of col.cells) {
    const x = x0 + cell.head.head * c;
    const y = y0 + cell.head.layer * c;
    const fill = cell.t === null ? p.missing : rampColor(stops, cell.t);
    const summary = summaries.get(`${cell.head.layer}.${cell.head.head}`);
    const roles = summary ? headRoles(summary, input.tokens).map((r) => ROLE_INFO[r].label.toLowerCase()) : [];
    const valueDesc = input.metric === 'importance' ? `${IMPORTANCE_INFO[input.importance!.metric].delta} ${cell.text}` : formatMetricValue(input.metric, cell.value);
    const title = `${headLabel(cell.head)}: ${valueDesc}${roles.length ? ` · ${roles.join(', ')}` : ''}${cell.scale === 0 ? ' · masked' : cell.scale !== 1 ? ` · scale ×${Number(cell.scale.toFixed(3))}` : ''}`;
    shapes.push({ kind: 'rect', x, y, w: c, h: c, fill, stroke: p.background, strokeWidth: 1, title });
    if (showValues) shapes.push({ kind: 'text', x: x + c / 2, y: y + c / 2, text: cell.text, size: valueSize, fill: textOn(fill), anchor: 'middle', baseline: 'middle' });
    if (cell.scale === 0) {
      masked++;
      // a × over the whole cell, or in its top-right corner when the cell prints its value
      const ink = textOn(fill);
      const a = showValues ? 6 : c - 6;
      const left = x + c - 3 - a;
      shapes.push({ kind: 'line', x1: left, y1: y + 3, x2: left + a, y2: y + 3 + a, stroke: ink, width: 1 });
      shapes.push({ kind: 'line', x1: left + a, y1: y + 3, x2: left, y2: y + 3 + a, stroke: ink, width: 1 });
    }
  }
  const sel = input.selected;
  if (sel && sel.layer < L && sel.head < H) shapes.push({ kind: 'rect', x: x0 + sel.head * c + 1, y: y0 + sel.layer * c + 1, w: c - 2, h: c - 2, fill: 'none', stroke: p.selected, strokeWidth: 2 });
  const bar = colorbar({ x: barX0, y: y0, height: Math.max(gridH, 120), stops, ticks: col.ticks, title: col.legend }, p);
  shapes.push(...bar.shapes);
  const notes = [...col.notes];
  if (masked) notes.push(`× = head masked (output zeroed) in this run.`);
  if (sel) notes.push(`Outlined: the selected head ${headLabel(sel)}.`);
  const cap = caption(notes, y0 + Math.max(gridH, 120) + 10, width, p);
  shapes.push(...cap.shapes);
  return {
    width,
    height: Math.ceil(cap.bottom + PAD),
    background: p.background,
    fontFamily: p.fontFamily,
    title: head.title,
    desc: `${L}×${H} head grid of ${input.model.name} colored by ${metricName}; prompt “${promptExcerpt(input.prompt, 200)}”`,
    shapes,
  };
}
