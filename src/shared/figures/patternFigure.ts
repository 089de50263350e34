// One head's attention pattern [T, T] as a figure: rows = query (attending) tokens, columns = key
// (attended) tokens, colored by probability on a fixed 0..1 sequential scale. Token text on both
// axes when the prompt is short; index ticks (and block-mean downsampling past `maxCells` per
// axis, said in the caption) when it is long. The causal upper triangle (keys after the query) is
// left as background, so "masked" never reads as "zero". Pure: returns a Scene (scene.ts).
import { formatMetricValue, headLabel, METRIC_INFO, METRICS, type HeadRef, type HeadSummary } from '../heads';
import type { TokenView } from '../protocol';
import { figureHeader, type FigureModel } from './gridFigure';
import { caption, colorbar, header, PAD, SMALL_SIZE } from './layout';
import { rampColor, type Palette } from './palette';
import { MONO_FONT, promptExcerpt, textWidth, tokenLabel, type Scene, type Shape } from './scene';

export interface PatternFigureInput {
  model: FigureModel;
  prompt: string;
  tokens: readonly TokenView[];
  head: HeadRef;
  /** [T, T] row-major, row = query */
  pattern: Float32Array;
  /** the head's metrics (a subtitle line), when known */
  metrics?: HeadSummary | null;
  interventions: readonly string[];
  palette: Palette;
  /** the most cells per axis before block-mean downsampling (default 160) */
  maxCells?: number;
  /** up to this many tokens the axes carry token text (default 48) */
  maxLabeled?: number;
}

/** Bin b of n over T items: [floor(b·T/n), floor((b+1)·T/n)). */
export function binBounds(T: number, n: number, b: number): [number, number] {
  return [Math.floor((b * T) / n), Math.floor(((b + 1) * T) / n)];
}

/**
 * The pattern at n × n: itself when n === T, else block means (bin (i, j) = the mean of p[q, k]
 * over q in row bin i and k in column bin j, causal zeros included). Returns [n*n].
 */
export function downsample(p: Float32Array, T: number, n: number): Float64Array {
  const out = new Float64Array(n * n);
  if (n === T) {
    for (let i = 0; i < T * T; i++) out[i] = p[i]!;
    return out;
  }
  for (let i = 0; i < n; i++) {
    const [q0, q1] = binBounds(T, n, i);
    for (let j = 0; j < n; j++) {
      const [k0, k1] = binBounds(T, n, j);
      let s = 0;
      for (let q = q0; q < q1; q++) for (let k = k0; k < k1; k++) s += p[q * T + k]!;
      out[i * n + j] = s / ((q1 - q0) * (k1 - k0));
    }
  }
  return out;
}

export function patternFigure(input: PatternFigureInput): Scene {
  const p = input.palette;
  const T = input.tokens.length;
  if (input.pattern.length !== T * T) throw new Error(`the pattern has ${input.pattern.length} values; a ${T}×${T} pattern has ${T * T}`);
  if (T === 0) throw new Error('the run has no tokens');
  const maxCells = Math.max(2, input.maxCells ?? 160);
  const n = Math.min(T, maxCells);
  const labeled = T <= (input.maxLabeled ?? 48);
  const values = downsample(input.pattern, T, n);
  // whole pixels, so adjacent cells meet without antialiased seams (in SVG viewers and on the canvas)
  const cell = labeled ? Math.max(12, Math.min(28, Math.floor(560 / T))) : Math.max(2, Math.min(12, Math.floor(560 / n)));
  const side = n * cell;
  const labels = labeled ? input.tokens.map((t) => tokenLabel(t.text, 12)) : [];
  const labelW = labeled ? Math.max(...labels.map((l) => textWidth(l, SMALL_SIZE, true))) + 8 : textWidth(String(T - 1), SMALL_SIZE) + 8;
  const what = `${headLabel(input.head)} attention pattern`;
  const head = figureHeader(input.model, input.prompt, what, input.interventions);
  const m = input.metrics;
  if (m) head.lines.push(METRICS.map((k) => `${METRIC_INFO[k].label.toLowerCase()} ${formatMetricValue(k, m[k])}`).join(' · '));
  const axisTitle = 14;
  const x0 = Math.ceil(PAD + axisTitle + labelW);
  const barX = x0 + side + 20;
  const natural = Math.max(...[head.title, ...head.lines].map((l) => textWidth(l, 11))) + 2 * PAD;
  const width = Math.ceil(Math.max(barX + 12 + 40 + PAD, Math.min(natural, 900), 420));
  const hdr = header(head.title, head.lines, width, p);
  const shapes: Shape[] = [...hdr.shapes];
  const y0 = Math.ceil(hdr.bottom + axisTitle + labelW + 4);
  // axis titles
  shapes.push({ kind: 'text', x: x0 + side / 2, y: hdr.bottom + 10, text: 'key (attended) token →', size: SMALL_SIZE, fill: p.muted, anchor: 'middle' });
  shapes.push({ kind: 'text', x: PAD + 8, y: y0 + side / 2, text: 'query (attending) token', size: SMALL_SIZE, fill: p.muted, anchor: 'middle', rotate: -90 });
  // frame of the causal region's background and the cells
  shapes.push({ kind: 'rect', x: x0, y: y0, w: side, h: side, fill: 'none', stroke: p.muted, strokeWidth: 0.5 });
  for (let i = 0; i < n; i++) {
    const [q0, q1] = binBounds(T, n, i);
    for (let j = 0; j < n; j++) {
      const [k0] = binBounds(T, n, j);
      if (k0 > q1 - 1) continue; // keys after every query of the bin: the causal mask
      const v = values[i * n + j]!;
      const title =
        n === T
          ? `query ${i} ${JSON.stringify(input.tokens[i]!.text)} → key ${j} ${JSON.stringify(input.tokens[j]!.text)}: ${v.toFixed(4)}`
          : `queries ${q0}–${q1 - 1} → keys ${k0}–${binBounds(T, n, j)[1] - 1}: mean ${v.toFixed(4)}`;
      shapes.push({ kind: 'rect', x: x0 + j * cell, y: y0 + i * cell, w: cell, h: cell, fill: rampColor(p.sequential, v), ...(labeled ? { title } : {}) });
    }
  }
  if (labeled) {
    for (let i = 0; i < T; i++) {
      const special = input.tokens[i]!.special;
      const fill = special ? p.muted : p.foreground;
      shapes.push({ kind: 'text', x: x0 - 4, y: y0 + i * cell + cell / 2, text: labels[i]!, size: SMALL_SIZE, fill, anchor: 'end', baseline: 'middle', mono: true });
      shapes.push({ kind: 'text', x: x0 + i * cell + cell / 2, y: y0 - 4, text: labels[i]!, size: SMALL_SIZE, fill, anchor: 'start', baseline: 'middle', mono: true, rotate: -90 });
    }
  } else {
    const step = niceStep(T, Math.max(2, Math.floor(side / 40)));
    for (let k = 0; k < T; k += step) {
      const pos = ((k + 0.5) / T) * side;
      shapes.push({ kind: 'line', x1: x0 - 3, y1: y0 + pos, x2: x0, y2: y0 + pos, stroke: p.muted, width: 0.75 });
      shapes.push({ kind: 'text', x: x0 - 5, y: y0 + pos, text: String(k), size: SMALL_SIZE, fill: p.foreground, anchor: 'end', baseline: 'middle' });
      shapes.push({ kind: 'line', x1: x0 + pos, y1: y0 - 3, x2: x0 + pos, y2: y0, stroke: p.muted, width: 0.75 });
      shapes.push({ kind: 'text', x: x0 + pos, y: y0 - 5, text: String(k), size: SMALL_SIZE, fill: p.foreground, anchor: 'start', baseline: 'middle', rotate: -90 });
    }
  }
  const bar = colorbar({ x: barX, y: y0, height: Math.max(side, 120), stops: p.sequential, ticks: [0, 0.25, 0.5, 0.75, 1].map((t) => ({ t, label: t.toFixed(2) })), title: 'attention' }, p);
  shapes.push(...bar.shapes);
  const notes = [
    'Row q: how query token q distributes its attention over keys 0..q (each row sums to 1). Upper triangle: keys after the query (causal mask), left blank.',
  ];
  if (n !== T) notes.push(`Downsampled from ${T}×${T} to ${n}×${n}: each cell is the mean of its block (masked entries count as 0).`);
  else if (!labeled) notes.push(`${T} tokens: axes show token indices.`);
  const cap = caption(notes, y0 + Math.max(side, 120) + 10, width, p);
  shapes.push(...cap.shapes);
  return {
    width,
    height: Math.ceil(cap.bottom + PAD),
    background: p.background,
    fontFamily: p.fontFamily,
    title: head.title,
    desc: `${T}×${T} attention pattern of ${headLabel(input.head)} (${input.model.name}) on “${promptExcerpt(input.prompt, 200)}”; mono font for tokens: ${MONO_FONT}`,
    shapes,
  };
}

/** A tick step from 1, 2, 5 × 10^k giving at most `maxTicks` ticks over T. */
export function niceStep(T: number, maxTicks: number): number {
  const raw = T / Math.max(1, maxTicks);
  const pow = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}
