// Heatmap geometry and pixels without the DOM: where the T × T plot sits in the canvas (snapped to
// device pixels), which (query, key) a mouse position hits, and the pooled, colored image.
import { scaleFraction, type ScaleKind } from './colorScale';

export interface HeatmapLayout {
  /** plot square in CSS px, relative to the canvas' top-left */
  x: number;
  y: number;
  size: number;
  /** plot square in device px (size * dpr, an integer) */
  devSize: number;
  dpr: number;
  /** image resolution: T when the plot has at least T device px, else devSize (max-pooled) */
  res: number;
  /** canvas CSS size */
  cssWidth: number;
  cssHeight: number;
}

/**
 * Places a square plot of T × T cells in a canvas `cssWidth` wide, at most `maxHeight` tall, with
 * gutters on the left (query labels) and the bottom (key labels). The plot edge is snapped so that
 * it covers a whole number of device pixels and, when each token gets at least one device pixel,
 * a whole number of device pixels per token (crisp cells, no seams).
 */
export function heatmapLayout(cssWidth: number, maxHeight: number, dpr: number, T: number, gutter: { left: number; bottom: number; top?: number; right?: number }): HeatmapLayout {
  const d = dpr > 0 && Number.isFinite(dpr) ? dpr : 1;
  const top = gutter.top ?? 4;
  const right = gutter.right ?? 4;
  const avail = Math.max(16, Math.min(cssWidth - gutter.left - right, maxHeight - top - gutter.bottom));
  let devSize = Math.floor(avail * d);
  if (T > 0 && devSize >= T) devSize = Math.floor(devSize / T) * T;
  const size = devSize / d;
  const res = T > 0 ? Math.min(T, devSize) : 0;
  return { x: gutter.left, y: top, size, devSize, dpr: d, res, cssWidth, cssHeight: top + size + gutter.bottom };
}

/**
 * The cell under a point given in CSS px relative to the canvas (e.g. MouseEvent.offsetX/Y):
 * null outside the plot and above the diagonal (k > q: a causal model never attends forward).
 */
export function hoverCell(x: number, y: number, l: HeatmapLayout, T: number): { q: number; k: number } | null {
  if (T <= 0 || l.size <= 0) return null;
  const fx = (x - l.x) / l.size;
  const fy = (y - l.y) / l.size;
  if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
  const k = Math.min(T - 1, Math.floor(fx * T));
  const q = Math.min(T - 1, Math.floor(fy * T));
  return k > q ? null : { q, k };
}

/** CSS px rectangle of cell (q, k). */
export function cellRect(q: number, k: number, l: HeatmapLayout, T: number): { x: number; y: number; w: number; h: number } {
  const s = l.size / T;
  return { x: l.x + k * s, y: l.y + q * s, w: s, h: s };
}

export interface Pooled {
  res: number;
  /** [res, res] row-major; −1 where a block holds no causal entry (k > q everywhere) */
  cells: Float32Array;
  /** largest value over the causal entries whose key is not excluded */
  max: number;
}

/**
 * Max-pools a causal [T, T] pattern (row = query) to res × res (res ≤ T), so a sharp one-token
 * stripe (previous-token, induction) survives downsampling. Reads only k ≤ q; NaN and negative
 * entries count as 0. `exclude[k] = 1` keeps key k out of `max` (sink discount) but not out of
 * the image. Key k falls in column block floor(k·res/T); block b spans [ceil(b·T/res), ceil((b+1)·T/res)).
 */
export function poolPattern(values: Float32Array, T: number, res: number, exclude: Uint8Array | null = null): Pooled {
  const R = Math.max(1, Math.min(T, Math.floor(res)));
  const cells = new Float32Array(R * R).fill(-1);
  const colBlock = new Int32Array(T);
  for (let k = 0; k < T; k++) colBlock[k] = Math.floor((k * R) / T);
  // Per row block: first the max over its rows for every key (a tight loop over each row's causal
  // prefix), then that accumulator folded into the column blocks.
  const acc = new Float32Array(T);
  let max = 0;
  let q = 0;
  for (let br = 0; br < R; br++) {
    const qEnd = Math.floor(((br + 1) * T + R - 1) / R);
    if (q >= qEnd) continue;
    acc.fill(-1, 0, qEnd);
    for (; q < qEnd; q++) {
      const row = q * T;
      for (let k = 0; k <= q; k++) {
        const v = values[row + k]!;
        const a = acc[k]!;
        acc[k] = v > a ? v : a; // branch-free; NaN keeps a
      }
    }
    const base = br * R;
    for (let k = 0; k < qEnd; k++) {
      const a = acc[k]!;
      const x = a > 0 ? a : 0;
      const i = base + colBlock[k]!;
      if (x > cells[i]!) cells[i] = x;
      if (x > max && !(exclude && exclude[k])) max = x;
    }
  }
  return { res: R, cells, max };
}

const LUT_BINS = 16384;

/**
 * Colors pooled cells through a ramp of packed ABGR colors (see color.rampUint32) into `out`
 * (a Uint32Array view of ImageData pixels, res × res); −1 cells get `voidColor`. The scale goes
 * through a lookup table of LUT_BINS linear bins, so the per-pixel cost is one multiply.
 */
export function colorize(p: Pooled, kind: ScaleKind, ramp: Uint32Array, voidColor: number, out: Uint32Array): void {
  const n = ramp.length - 1;
  const last = LUT_BINS - 1;
  const lut = new Uint32Array(LUT_BINS);
  for (let i = 0; i < LUT_BINS; i++) lut[i] = ramp[Math.round(scaleFraction(i / last, 1, kind) * n)]!;
  const { cells, max } = p;
  const f = max > 0 ? last / max : 0;
  for (let i = 0; i < cells.length; i++) {
    const v = cells[i]!;
    if (v < 0) out[i] = voidColor;
    else {
      const b = (v * f + 0.5) | 0;
      out[i] = lut[b > last ? last : b]!;
    }
  }
}

/** Tick positions for an index axis of T tokens: about `count` round numbers. */
export function axisTicks(T: number, count: number): number[] {
  if (T <= 1) return [0];
  const raw = (T - 1) / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = 0; t < T; t += step) out.push(Math.round(t));
  return out;
}
