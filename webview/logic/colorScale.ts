// Mapping attention values to 0..1 for tints and heatmaps. Shared by the prompt overlay, the head
// grid and the heatmap, and consistent with the editor overlay (src/extension/viewLogic.ts): the
// maximum sets the top of the scale; with the sink discounted, the first token and special tokens
// do not count towards that maximum (they saturate instead of washing out everything else).

export const SCALE_KINDS = ['linear', 'sqrt', 'log'] as const;
export type ScaleKind = (typeof SCALE_KINDS)[number];

export function isScaleKind(v: unknown): v is ScaleKind {
  return typeof v === 'string' && (SCALE_KINDS as readonly string[]).includes(v);
}

/**
 * Which positions to leave out of the maximum: with `discount`, token 0 and every special token;
 * otherwise none. Returns a mask (1 = excluded) of length `n`.
 */
export function sinkMask(n: number, special: ArrayLike<boolean> | null, discount: boolean): Uint8Array {
  const m = new Uint8Array(n);
  if (!discount) return m;
  if (n > 0) m[0] = 1;
  if (special) for (let i = 0; i < n && i < special.length; i++) if (special[i]) m[i] = 1;
  return m;
}

/**
 * The largest finite value not excluded by `mask`; 0 when there is none (all excluded, empty,
 * all NaN, or all ≤ 0).
 */
export function scaleMax(values: ArrayLike<number>, mask: Uint8Array | null = null): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask && mask[i]) continue;
    const v = values[i]!;
    if (v > max && Number.isFinite(v)) max = v;
  }
  return max;
}

/**
 * v relative to max, through the scale, clamped to 0..1. NaN, negative values and max ≤ 0 give 0;
 * values above max (e.g. a discounted sink) give 1. log: ln(1 + 99r) / ln(100), as in the editor.
 */
export function scaleFraction(v: number, max: number, kind: ScaleKind): number {
  if (!(v > 0) || !(max > 0) || !Number.isFinite(max)) return 0;
  const r = v >= max ? 1 : v / max;
  if (kind === 'sqrt') return Math.sqrt(r);
  if (kind === 'log') return Math.log1p(99 * r) / Math.log(100);
  return r;
}

/**
 * Levels 0..levels for every value (0 = no tint; any value > 0 gets at least level 1 so a small
 * but nonzero attention is still visible).
 */
export function scaleLevels(values: ArrayLike<number>, max: number, kind: ScaleKind, levels: number): Uint8Array {
  const out = new Uint8Array(values.length);
  if (!(max > 0)) return out;
  for (let i = 0; i < values.length; i++) {
    const f = scaleFraction(values[i]!, max, kind);
    if (f > 0) out[i] = Math.max(1, Math.min(levels, Math.ceil(f * levels - 1e-9)));
  }
  return out;
}

/** A value formatted for tooltips: probabilities as percentages with sensible precision. */
export function formatProb(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const p = v * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) < 0.01) return p > 0 ? '<0.01%' : '>−0.01%';
  if (Math.abs(p) < 10) return `${p.toFixed(2)}%`;
  return `${p.toFixed(1)}%`;
}
