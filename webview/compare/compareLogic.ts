// Pure helpers of the compare webview (DOM-free, unit-tested): message validation, float tensors,
// the diverging and sequential color fractions, and the position ↔ token maps of the aligned runs.
import type { Envelope, HeadRef, TensorMsg } from '../../src/shared/protocol';
import { scaleFraction, scaleMax, sinkMask } from '../logic/colorScale';
import type { CompareInit, CompareView, ToCompare, ToGenerate } from '../../src/shared/runsProtocol';

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

export function floats(t: TensorMsg | null | undefined): Float32Array {
  if (!t) return new Float32Array(0);
  return new Float32Array(t.data);
}

function tensorOk(t: unknown): boolean {
  if (typeof t !== 'object' || t === null) return false;
  const m = t as TensorMsg;
  if (!Array.isArray(m.dims) || !m.dims.every((d) => Number.isInteger(d) && d >= 0)) return false;
  if (!(m.data instanceof ArrayBuffer)) return false;
  return m.data.byteLength === 4 * m.dims.reduce((a, b) => a * b, 1);
}

function viewOk(v: unknown): string | undefined {
  const c = v as CompareView;
  if (typeof v !== 'object' || v === null) return 'view is not an object';
  if (c.mode !== 'compare' && c.mode !== 'single') return 'view.mode';
  if (!c.a || !Array.isArray(c.a.tokens) || !tensorOk(c.a.metrics)) return 'view.a';
  if (c.mode === 'compare' && (!c.b || !Array.isArray(c.b.tokens) || !tensorOk(c.b.metrics))) return 'view.b';
  if (!Array.isArray(c.positions) || !tensorOk(c.kl) || !tensorOk(c.shift)) return 'view.positions';
  if (c.kl.dims[0] !== c.positions.length || c.shift.dims[0] !== c.positions.length) return 'view.kl has the wrong length';
  if (c.deltas !== null && !tensorOk(c.deltas)) return 'view.deltas';
  if (!Array.isArray(c.mostDifferent) || !c.mostDifferent.every((i) => Number.isInteger(i) && i >= 0 && i < c.positions.length)) return 'view.mostDifferent';
  if (!Array.isArray(c.notComparable)) return 'view.notComparable';
  if (c.attention !== null && typeof c.attention !== 'string') return 'view.attention';
  return undefined;
}

export function validateToCompare(raw: unknown): Checked<Envelope<ToCompare>> {
  const e = raw as Envelope<ToCompare>;
  if (typeof raw !== 'object' || raw === null || !Number.isInteger(e.messageId) || typeof e.body !== 'object' || e.body === null) return { ok: false, error: 'not an envelope' };
  const b = e.body;
  if (b.type === 'error') return typeof b.message === 'string' ? { ok: true, value: e } : { ok: false, error: 'error without message' };
  if (b.type === 'init') {
    const i = b.init as CompareInit;
    if (typeof i !== 'object' || i === null) return { ok: false, error: 'init without init' };
    if (i.view === null) return typeof i.error === 'string' ? { ok: true, value: e } : { ok: false, error: 'init without view or error' };
    const bad = viewOk(i.view);
    return bad ? { ok: false, error: `init: bad ${bad}` } : { ok: true, value: e };
  }
  if (b.type === 'attentionRows') {
    const headOk = b.head === null || (typeof b.head === 'object' && Number.isInteger(b.head.layer) && Number.isInteger(b.head.head));
    const row = (t: unknown) => tensorOk(t) && (t as TensorMsg).dims.length === 1;
    return Number.isInteger(b.position) && b.position >= 0 && headOk && row(b.a) && row(b.b) ? { ok: true, value: e } : { ok: false, error: 'bad attentionRows' };
  }
  return { ok: false, error: `unknown message ${String((b as { type?: unknown }).type)}` };
}

export function validateToGenerate(raw: unknown): Checked<Envelope<ToGenerate>> {
  const e = raw as Envelope<ToGenerate>;
  if (typeof raw !== 'object' || raw === null || !Number.isInteger(e.messageId) || typeof e.body !== 'object' || e.body === null) return { ok: false, error: 'not an envelope' };
  const b = e.body;
  const lane = (l: unknown) => l === 'with' || l === 'without';
  switch (b.type) {
    case 'init':
      return b.init && typeof b.init.prompt === 'string' && Array.isArray(b.init.interventions) && b.init.options ? { ok: true, value: e } : { ok: false, error: 'bad init' };
    case 'started':
      return Array.isArray(b.lanes) && b.lanes.every(lane) ? { ok: true, value: e } : { ok: false, error: 'bad started' };
    case 'token':
      return lane(b.lane) && typeof b.text === 'string' && typeof b.prob === 'number' ? { ok: true, value: e } : { ok: false, error: 'bad token' };
    case 'done':
      return lane(b.lane) && typeof b.stopReason === 'string' ? { ok: true, value: e } : { ok: false, error: 'bad done' };
    case 'finished':
      return { ok: true, value: e };
    case 'error':
      return typeof b.message === 'string' ? { ok: true, value: e } : { ok: false, error: 'bad error' };
    default:
      return { ok: false, error: `unknown message ${String((b as { type?: unknown }).type)}` };
  }
}

/** Symmetric bound of a diverging scale: the largest |value| (finite), at least `floor`. */
export function divergingMax(values: ArrayLike<number>, floor = 1e-6): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  }
  return Math.max(m, floor);
}

/** −1..1 on a diverging scale (sqrt-compressed so small deltas stay visible); NaN stays NaN. */
export function divergingFraction(v: number, max: number): number {
  if (!Number.isFinite(v)) return NaN;
  const f = Math.min(1, Math.abs(v) / max);
  return Math.sign(v) * Math.sqrt(f);
}

/** Token index → position index, for side A or B. */
export function positionIndex(view: Pick<CompareView, 'positions'>, side: 'a' | 'b'): Map<number, number> {
  const m = new Map<number, number>();
  view.positions.forEach((p, i) => m.set(p[side], i));
  return m;
}

export function formatNats(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  if (v < 0.001) return v.toExponential(1);
  return v < 10 ? v.toFixed(3) : v.toFixed(1);
}

export function formatPct(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return '—';
  const v = p * 100;
  return v >= 10 ? `${v.toFixed(0)}%` : v >= 0.1 ? `${v.toFixed(1)}%` : `${v.toFixed(2)}%`;
}

/** The cache key of an attention row request: the position and the head (or the mean). */
export function rowsKey(position: number, head: HeadRef | null): string {
  return `${position}|${head ? `L${head.layer}H${head.head}` : 'mean'}`;
}

/**
 * Tint fractions (0..1, sqrt scale) of the attention rows of A and B on ONE scale, so the two sides
 * can be compared by eye: the largest value of either row sets the top, except that the first token
 * and special tokens (attention sinks) do not count towards it when `discountSink` (they saturate
 * instead of washing out the rest), as in the editor overlay; when they are all that is attended to,
 * they set the scale.
 */
export function attentionTints(
  rowA: ArrayLike<number>,
  rowB: ArrayLike<number>,
  specialA: ArrayLike<boolean>,
  specialB: ArrayLike<boolean>,
  discountSink = true,
): { a: Float32Array; b: Float32Array; max: number } {
  let max = Math.max(scaleMax(rowA, sinkMask(rowA.length, specialA, discountSink)), scaleMax(rowB, sinkMask(rowB.length, specialB, discountSink)));
  // all the attention on left-out tokens (e.g. from the first token, to itself): scale by them instead
  if (!(max > 0)) max = Math.max(scaleMax(rowA), scaleMax(rowB));
  const f = (row: ArrayLike<number>) => Float32Array.from({ length: row.length }, (_, i) => scaleFraction(row[i]!, max, 'sqrt'));
  return { a: f(rowA), b: f(rowB), max };
}
