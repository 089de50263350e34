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
 * The visible part of the pattern: rows q0 .. q0+n−1 and columns k0 .. k0+n−1 (a square window;
 * the full pattern is {q0: 0, k0: 0, n: T}).
 */
export interface View {
  q0: number;
  k0: number;
  n: number;
}

export const fullView = (T: number): View => ({ q0: 0, k0: 0, n: T });

/** Clamps a view into a T-token pattern: n in [min(minN, T), T], offsets inside. */
export function clampView(v: View, T: number, minN = 16): View {
  const n = Math.max(Math.min(minN, T), Math.min(T, Math.round(v.n)));
  const c = (o: number): number => Math.max(0, Math.min(T - n, Math.round(o)));
  return { q0: c(v.q0), k0: c(v.k0), n };
}

/**
 * Zooms by `factor` (< 1 in, > 1 out) keeping the token under the plot fraction (fx, fy) in place.
 */
export function zoomView(v: View, T: number, factor: number, fx: number, fy: number, minN = 16): View {
  const n = Math.max(Math.min(minN, T), Math.min(T, Math.round(v.n * factor)));
  return clampView({ q0: v.q0 + fy * v.n - fy * n, k0: v.k0 + fx * v.n - fx * n, n }, T, minN);
}

/** Moves the view by (dx, dy) CSS px of a plot `size` px wide (dragging right shows earlier keys). */
export function panView(v: View, T: number, dx: number, dy: number, size: number, minN = 16): View {
  const per = v.n / size;
  return clampView({ q0: v.q0 - dy * per, k0: v.k0 - dx * per, n: v.n }, T, minN);
}

/**
 * The cell under a point given in CSS px relative to the canvas (e.g. MouseEvent.offsetX/Y):
 * null outside the plot and above the diagonal (k > q: a causal model never attends forward).
 */
export function hoverCell(x: number, y: number, l: HeatmapLayout, T: number, v: View = fullView(T)): { q: number; k: number } | null {
  if (T <= 0 || v.n <= 0 || l.size <= 0) return null;
  const fx = (x - l.x) / l.size;
  const fy = (y - l.y) / l.size;
  if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
  const k = Math.min(T - 1, v.k0 + Math.floor(fx * v.n));
  const q = Math.min(T - 1, v.q0 + Math.floor(fy * v.n));
  return k > q ? null : { q, k };
}

/** CSS px rectangle of cell (q, k) (may lie outside the plot when the cell is outside the view). */
export function cellRect(q: number, k: number, l: HeatmapLayout, T: number, v: View = fullView(T)): { x: number; y: number; w: number; h: number } {
  const s = l.size / v.n;
  return { x: l.x + (k - v.k0) * s, y: l.y + (q - v.q0) * s, w: s, h: s };
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
export function poolPattern(values: Float32Array, T: number, res: number, exclude: Uint8Array | null = null, view: View = fullView(T)): Pooled {
  const { q0, k0, n } = view;
  const R = Math.max(1, Math.min(n, Math.floor(res)));
  const cells = new Float32Array(R * R).fill(-1);
  const colBlock = new Int32Array(n);
  for (let j = 0; j < n; j++) colBlock[j] = Math.floor((j * R) / n);
  // Per row block: first the max over its rows for every key (a tight loop over each row's causal
  // prefix inside the view), then that accumulator folded into the column blocks.
  const acc = new Float32Array(n);
  let max = 0;
  let i0 = 0; // row index inside the view
  for (let br = 0; br < R; br++) {
    const iEnd = Math.floor(((br + 1) * n + R - 1) / R);
    if (i0 >= iEnd) continue;
    // Keys (view-relative) that any row of this block can see: j ≤ q − k0.
    const jEnd = Math.min(n, q0 + iEnd - 1 - k0 + 1);
    if (jEnd > 0) acc.fill(-1, 0, jEnd);
    for (; i0 < iEnd; i0++) {
      const q = q0 + i0;
      const base = q * T + k0;
      const jMax = Math.min(n, q - k0 + 1);
      for (let j = 0; j < jMax; j++) {
        const v = values[base + j]!;
        const a = acc[j]!;
        acc[j] = v > a ? v : a; // branch-free; NaN keeps a
      }
    }
    const out = br * R;
    for (let j = 0; j < jEnd; j++) {
      const a = acc[j]!;
      const x = a > 0 ? a : 0;
      const i = out + colBlock[j]!;
      if (x > cells[i]!) cells[i] = x;
      if (x > max && !(exclude && exclude[k0 + j])) max = x;
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

/** Tick positions for an index axis showing tokens start .. start+n−1: about `count` round numbers. */
export function axisTicks(n: number, count: number, start = 0): number[] {
  if (n <= 1) return [start];
  const raw = (n - 1) / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(start / step) * step; t < start + n; t += step) out.push(Math.round(t));
  return out;
}
