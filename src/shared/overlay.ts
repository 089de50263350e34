// The editor overlay's math, shared by the extension (decorations, hover) and `attnscope bench
// --views` (which times exactly what the extension does): pure functions, no vscode.
import { headKey, type HeadRef } from './heads';
import type { Aggregation, TokenView } from './protocol';

/** Number of tint levels in the editor overlay (one cached decoration type each). */
export const OVERLAY_LEVELS = 8;

/**
 * The token under a UTF-16 offset: the last non-special token starting at or before it (so a cursor
 * right after a token, or in whitespace a tokenizer dropped, belongs to the token before it); the
 * first non-special token when the offset precedes them all. Zero-width special tokens are never
 * chosen. Binary search over the start offsets: O(log T).
 */
export function tokenAtOffset(tokens: readonly TokenView[], offset: number): number | undefined {
  let lo = 0;
  let hi = tokens.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (tokens[mid]!.start <= offset) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = at; i >= 0; i--) if (!tokens[i]!.special) return i;
  const first = tokens.findIndex((t) => !t.special);
  return first >= 0 ? first : undefined;
}

/** Per-head weights [L*H] for an aggregation: disabled (scale 0) heads never count. */
export function aggregationWeights(L: number, H: number, scales: ReadonlyMap<string, number>, mode: Aggregation, selected: HeadRef | null): Float32Array {
  const w = new Float32Array(L * H);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const enabled = (scales.get(headKey({ layer: l, head: h })) ?? 1) !== 0;
      if (mode === 'mean') w[l * H + h] = enabled ? 1 : 0;
      else if (mode === 'layer') w[l * H + h] = enabled && selected?.layer === l ? 1 : 0;
      else w[l * H + h] = selected && selected.layer === l && selected.head === h ? 1 : 0;
    }
  }
  // 'layer'/'head' with nothing selected fall back to the mean over enabled heads.
  if (mode !== 'mean' && w.every((v) => v === 0)) return aggregationWeights(L, H, scales, 'mean', null);
  return w;
}

/**
 * Overlay values for one token: the row (attention FROM token q) or column (attention TO q) of an
 * aggregate [T, T] matrix.
 */
export function overlayValues(agg: Float32Array, T: number, q: number, direction: 'from' | 'to'): Float32Array {
  const out = new Float32Array(T);
  if (direction === 'from') out.set(agg.subarray(q * T, q * T + T));
  else for (let r = 0; r < T; r++) out[r] = agg[r * T + q]!;
  return out;
}

export type ColorScale = 'linear' | 'sqrt' | 'log';

/**
 * Quantises overlay values to levels 0..OVERLAY_LEVELS (0 = no tint), relative to the largest
 * value; with `discountSink` the first token and special tokens do not set the maximum (they are
 * clamped to the top level), so a BOS attention sink does not wash out the rest.
 */
export function quantize(values: Float32Array, tokens: readonly TokenView[], scale: ColorScale, discountSink: boolean): Uint8Array {
  const T = values.length;
  const max = scaleMax(values, tokens, discountSink);
  const out = new Uint8Array(T);
  if (!(max > 0)) return out;
  const f = (x: number) => (scale === 'sqrt' ? Math.sqrt(x) : scale === 'log' ? Math.log1p(99 * x) / Math.log(100) : x);
  for (let i = 0; i < T; i++) {
    const v = values[i]!;
    if (!(v > 0)) continue;
    const r = Math.min(1, v / max);
    out[i] = Math.max(1, Math.min(OVERLAY_LEVELS, Math.ceil(f(r) * OVERLAY_LEVELS - 1e-9)));
  }
  return out;
}


/** The value the top tint level stands for: the largest finite value (without the sink and special tokens under `discountSink`). */
export function scaleMax(values: Float32Array, tokens: readonly TokenView[], discountSink: boolean): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    if (discountSink && (i === 0 || tokens[i]?.special)) continue;
    const v = values[i]!;
    if (Number.isFinite(v) && v > max) max = v;
  }
  return max;
}

/**
 * The part of a token the overlay paints, as UTF-16 offsets into the prompt: the token without its
 * leading whitespace (" world" paints "world"; indentation and newlines are never painted as
 * blocks). Null for a token that is all whitespace or empty: it gets no background.
 */
export function paintSpan(prompt: string, t: Pick<TokenView, 'start' | 'end'>): [number, number] | null {
  let start = t.start;
  while (start < t.end && /\s/.test(prompt[start]!)) start++;
  return start < t.end ? [start, t.end] : null;
}

export interface LegendInput {
  direction: 'from' | 'to';
  aggregation: Aggregation;
  /** the selected head ('head'/'layer' aggregations), null when none */
  selected: HeadRef | null;
  /** enabled heads (mean aggregation) and all heads */
  enabled: number;
  total: number;
  /** the cursor (query) token: index and text */
  token: { index: number; text: string } | null;
  scale: ColorScale;
  discountSink: boolean;
  /** the value of the top tint level (scaleMax) */
  max: number;
}

/** What the editor overlay shows, in words: direction, heads, color scale. One entry per line. */
export function overlayLegend(g: LegendInput): string[] {
  const tok = g.token ? `token ${g.token.index} ${JSON.stringify(g.token.text)}` : 'the cursor token';
  const what =
    g.aggregation === 'rollout'
      ? `Attention rollout FROM ${tok} (where its top-layer representation came from; Abnar & Zuidema 2020)`
      : g.direction === 'from'
        ? `Attention FROM ${tok} (outlined) to each earlier token`
        : `Attention TO ${tok} (outlined) from each later token`;
  const headLabelOf = (h: HeadRef) => `L${h.layer}H${h.head}`;
  const heads =
    g.aggregation === 'mean' || g.aggregation === 'rollout' || !g.selected
      ? `mean over ${g.enabled} enabled of ${g.total} heads${g.aggregation !== 'mean' && g.aggregation !== 'rollout' && !g.selected ? ` (no head selected for "${g.aggregation}")` : ''}`
      : g.aggregation === 'head'
        ? `head ${headLabelOf(g.selected)} only`
        : `mean over the enabled heads of layer ${g.selected.layer}`;
  const scale = `${OVERLAY_LEVELS} tint levels, ${g.scale} scale: darkest = ${g.max > 0 ? g.max.toFixed(3) : '0'}${g.discountSink ? ' (first and special tokens left out of the scale; a larger value shows as darkest)' : ''}; untinted = 0; leading whitespace is not painted`;
  return [what, `Heads: ${heads}`, `Color: ${scale}`];
}
