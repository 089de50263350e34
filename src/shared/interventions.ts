// The one interventions value: head scaling/masking, PASTA emphasis and attention-sink calibration.
// The session, the engine (runs and generation), the worker, saved runs, the CLI and the webviews
// all use this shape; it is plain JSON (it travels to workers and webviews and into run files).
//
// Normal form: `scales` holds only heads whose scale is not 1, sorted layer-major, one entry per
// head; `emphasis.heads` and `sink.heads` are sorted and unique. `normalizeInterventions` makes it.
import { headKey, headLabel, type HeadRef } from './heads';

export interface HeadScale extends HeadRef {
  /** output scale before the output projection: 0 masks, 1 keeps, > 1 amplifies */
  value: number;
}

/** PASTA (Zhang et al. 2023): attention to keys outside the span is multiplied by `alpha`. */
export interface Emphasis {
  /** UTF-16 offsets into the prompt, end exclusive */
  start: number;
  end: number;
  /** 0 < alpha; ln alpha is added to the pre-softmax scores of keys outside the span */
  alpha: number;
  /** the steered heads */
  heads: HeadRef[] | 'all';
}

/** Attention-sink calibration: attention to the first token is multiplied by `value` on these heads. */
export interface SinkCalibration {
  heads: HeadRef[];
  /** 0 < value */
  value: number;
}

export interface Interventions {
  scales: HeadScale[];
  emphasis: Emphasis | null;
  sink: SinkCalibration | null;
}

export function noInterventions(): Interventions {
  return { scales: [], emphasis: null, sink: null };
}

export function hasInterventions(iv: Interventions | undefined | null): boolean {
  return !!iv && (iv.scales.some((s) => s.value !== 1) || !!iv.emphasis || !!iv.sink);
}

const byHead = (a: HeadRef, b: HeadRef) => a.layer - b.layer || a.head - b.head;

function uniqueHeads(hs: readonly HeadRef[]): HeadRef[] {
  const seen = new Map<string, HeadRef>();
  for (const h of hs) seen.set(headKey(h), { layer: h.layer, head: h.head });
  return [...seen.values()].sort(byHead);
}

/** The normal form (see the file comment); a later scale for the same head wins. */
export function normalizeInterventions(iv: Interventions): Interventions {
  const scales = new Map<string, HeadScale>();
  for (const s of iv.scales) scales.set(headKey(s), { layer: s.layer, head: s.head, value: s.value });
  return {
    scales: [...scales.values()].filter((s) => s.value !== 1).sort(byHead),
    emphasis: iv.emphasis ? { start: iv.emphasis.start, end: iv.emphasis.end, alpha: iv.emphasis.alpha, heads: iv.emphasis.heads === 'all' ? 'all' : uniqueHeads(iv.emphasis.heads) } : null,
    sink: iv.sink ? { heads: uniqueHeads(iv.sink.heads), value: iv.sink.value } : null,
  };
}

/** The scale of one head (1 when not set). */
export function scaleOf(iv: Interventions, h: HeadRef): number {
  for (const s of iv.scales) if (s.layer === h.layer && s.head === h.head) return s.value;
  return 1;
}

/** A copy with `heads` set to `value` (1 removes them). */
export function withScale(iv: Interventions, heads: readonly HeadRef[], value: number): Interventions {
  return normalizeInterventions({ ...iv, scales: [...iv.scales, ...heads.map((h) => ({ layer: h.layer, head: h.head, value }))] });
}

/** Heads with scale 0. */
export function maskedHeads(iv: Interventions): HeadRef[] {
  return iv.scales.filter((s) => s.value === 0).map((s) => ({ layer: s.layer, head: s.head }));
}

/** Map "l.h" → scale, for views that look scales up per head. */
export function scaleMap(iv: Interventions): Map<string, number> {
  return new Map(iv.scales.map((s) => [headKey(s), s.value]));
}

/**
 * The problems of an interventions value for a model of `layers`×`heads` and a prompt of
 * `promptLength` UTF-16 units, in engine terms ("scale of head 7.3: …"); empty when it is valid.
 * Callers add their own context (the CLI names its flags).
 */
export function interventionProblems(iv: Interventions, layers: number, heads: number, promptLength?: number): string[] {
  const out: string[] = [];
  const head = (h: HeadRef, what: string) => {
    if (!Number.isInteger(h.layer) || !Number.isInteger(h.head) || h.layer < 0 || h.head < 0 || h.layer >= layers || h.head >= heads) {
      out.push(`${what}: head ${headKey(h)} does not exist; this model has layers 0..${layers - 1} and heads 0..${heads - 1}`);
      return false;
    }
    return true;
  };
  for (const s of iv.scales) {
    if (head(s, 'head scale') && !(Number.isFinite(s.value) && s.value >= 0)) out.push(`head scale: ${headKey(s)}=${s.value} must be a finite number ≥ 0 (0 masks the head)`);
  }
  const e = iv.emphasis;
  if (e) {
    if (!(Number.isFinite(e.alpha) && e.alpha > 0)) out.push(`emphasis: alpha ${e.alpha} must be a positive number (e.g. 0.01)`);
    if (!Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < 0 || e.end <= e.start) out.push(`emphasis: span ${e.start}:${e.end} must be START:END with 0 ≤ START < END`);
    else if (promptLength !== undefined && e.end > promptLength) out.push(`emphasis: span ${e.start}:${e.end} is past the end of the prompt (${promptLength} characters)`);
    if (e.heads !== 'all') for (const h of e.heads) head(h, 'emphasis');
  }
  const k = iv.sink;
  if (k) {
    if (!(Number.isFinite(k.value) && k.value > 0)) out.push(`sink calibration: scale ${k.value} must be a positive number`);
    if (k.heads.length === 0) out.push('sink calibration: no heads given');
    for (const h of k.heads) head(h, 'sink calibration');
  }
  return out;
}

function headList(hs: readonly HeadRef[]): string {
  return hs.length <= 6 ? hs.map(headLabel).join(', ') : `${hs.slice(0, 5).map(headLabel).join(', ')} and ${hs.length - 5} more`;
}

/** One line per intervention, for run lists, reports and the CLI. */
export function describeInterventions(iv: Interventions, prompt: string): string[] {
  const out: string[] = [];
  const masked = iv.scales.filter((s) => s.value === 0);
  if (masked.length) out.push(`mask ${headList(masked)}`);
  for (const s of iv.scales) if (s.value !== 0 && s.value !== 1) out.push(`scale ${headLabel(s)} ×${Number(s.value.toFixed(3))}`);
  const e = iv.emphasis;
  if (e) {
    const text = prompt.slice(e.start, e.end);
    const short = text.length > 40 ? `${text.slice(0, 37)}…` : text;
    out.push(`emphasize "${short}" α=${e.alpha} on ${e.heads === 'all' ? 'all heads' : headList(e.heads)}`);
  }
  if (iv.sink) out.push(`sink ×${iv.sink.value} on ${headList(iv.sink.heads)}`);
  return out;
}

/**
 * Reads interventions from untrusted JSON (run files, webview state): the current shape, or the
 * shape run files had before (mask/scale/emphasize/steerHeads). Returns an error string when the
 * value is neither.
 */
export function interventionsFromJson(v: unknown): Interventions | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'interventions: expected an object';
  const o = v as Record<string, unknown>;
  const isHead = (x: unknown): x is HeadRef => typeof x === 'object' && x !== null && Number.isSafeInteger((x as HeadRef).layer) && Number.isSafeInteger((x as HeadRef).head) && (x as HeadRef).layer >= 0 && (x as HeadRef).head >= 0;
  const heads = (x: unknown, what: string): HeadRef[] | string => (Array.isArray(x) && x.every(isHead) ? x.map((h) => ({ layer: h.layer, head: h.head })) : `${what}: expected a list of {layer, head}`);
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if ('scales' in o || 'emphasis' in o || 'sink' in o) {
    if (!Array.isArray(o.scales) || !o.scales.every((s) => isHead(s) && num((s as HeadScale).value))) return 'interventions.scales: expected a list of {layer, head, value}';
    const scales = (o.scales as HeadScale[]).map((s) => ({ layer: s.layer, head: s.head, value: s.value }));
    let emphasis: Emphasis | null = null;
    if (o.emphasis !== null && o.emphasis !== undefined) {
      const e = o.emphasis as Record<string, unknown>;
      if (typeof e !== 'object' || !num(e.start) || !num(e.end) || !num(e.alpha)) return 'interventions.emphasis: expected {start, end, alpha, heads}';
      const hs = e.heads === 'all' ? 'all' : heads(e.heads, 'interventions.emphasis.heads');
      if (typeof hs === 'string' && hs !== 'all') return hs;
      emphasis = { start: e.start as number, end: e.end as number, alpha: e.alpha as number, heads: hs as HeadRef[] | 'all' };
    }
    const sink = sinkFrom(o.sink, heads, num);
    if (typeof sink === 'string') return sink;
    return normalizeInterventions({ scales, emphasis, sink });
  }
  // The earlier shape: { mask?, scale?: {head, value}[], emphasize?: {start, end, alpha}, steerHeads?, sink? }
  const scales: HeadScale[] = [];
  if (o.scale !== undefined) {
    if (!Array.isArray(o.scale) || !o.scale.every((s) => typeof s === 'object' && s !== null && isHead((s as { head: unknown }).head) && num((s as { value: unknown }).value))) return 'interventions.scale: expected a list of {head, value}';
    for (const s of o.scale as { head: HeadRef; value: number }[]) scales.push({ layer: s.head.layer, head: s.head.head, value: s.value });
  }
  if (o.mask !== undefined) {
    const m = heads(o.mask, 'interventions.mask');
    if (typeof m === 'string') return m;
    for (const h of m) scales.push({ ...h, value: 0 });
  }
  let emphasis: Emphasis | null = null;
  if (o.emphasize !== undefined && o.emphasize !== null) {
    const e = o.emphasize as Record<string, unknown>;
    if (typeof e !== 'object' || !num(e.start) || !num(e.end) || !num(e.alpha)) return 'interventions.emphasize: expected {start, end, alpha}';
    let steer: HeadRef[] | 'all' = 'all';
    if (o.steerHeads !== undefined) {
      const s = heads(o.steerHeads, 'interventions.steerHeads');
      if (typeof s === 'string') return s;
      steer = s;
    }
    emphasis = { start: e.start as number, end: e.end as number, alpha: e.alpha as number, heads: steer };
  }
  const sink = sinkFrom(o.sink, heads, num);
  if (typeof sink === 'string') return sink;
  return normalizeInterventions({ scales, emphasis, sink });
}

function sinkFrom(v: unknown, heads: (x: unknown, what: string) => HeadRef[] | string, num: (x: unknown) => boolean): SinkCalibration | null | string {
  if (v === undefined || v === null) return null;
  const s = v as Record<string, unknown>;
  if (typeof s !== 'object' || !num(s.value)) return 'interventions.sink: expected {heads, value}';
  const hs = heads(s.heads, 'interventions.sink.heads');
  if (typeof hs === 'string') return hs;
  return { heads: hs, value: s.value as number };
}
