// Defensive validation of everything that arrives from the host. A malformed message is rejected
// as a whole with a path to the first problem (e.g. "body.state.run.tokens[3].start: expected an
// integer ≥ 0"), never half-applied.
import { METRICS, type Envelope, type PanelState, type TensorMsg, type ToWebview } from '../../src/shared/protocol';

export type Validated<T> = { ok: true; value: T } | { ok: false; error: string };

class Invalid extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(path: string, what: string): never {
  throw new Invalid(`${path}: ${what}`);
}
function obj(v: unknown, path: string): Obj {
  return isObj(v) ? v : fail(path, 'expected an object');
}
function int(v: unknown, path: string, min = 0): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min ? v : fail(path, `expected an integer ≥ ${min}`);
}
function num(v: unknown, path: string): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fail(path, 'expected a finite number');
}
function numOrNull(v: unknown, path: string): number | null {
  // Metrics may legitimately be null; NaN (e.g. JSON-less structured clone of a bad value) reads as null.
  if (v === null || (typeof v === 'number' && Number.isNaN(v))) return null;
  return num(v, path);
}
function str(v: unknown, path: string): string {
  return typeof v === 'string' ? v : fail(path, 'expected a string');
}
function strOrNull(v: unknown, path: string): string | null {
  return v === null ? null : str(v, path);
}
function bool(v: unknown, path: string): boolean {
  return typeof v === 'boolean' ? v : fail(path, 'expected a boolean');
}
function oneOf<T extends string>(v: unknown, options: readonly T[], path: string): T {
  return typeof v === 'string' && (options as readonly string[]).includes(v) ? (v as T) : fail(path, `expected one of ${options.join(', ')}`);
}
function arr(v: unknown, path: string): unknown[] {
  return Array.isArray(v) ? v : fail(path, 'expected an array');
}
function headRef(v: unknown, path: string): void {
  const o = obj(v, path);
  int(o.layer, `${path}.layer`);
  int(o.head, `${path}.head`);
}

function checkModel(v: unknown, p: string): void {
  if (v === null) return;
  const o = obj(v, p);
  str(o.name, `${p}.name`);
  str(o.arch, `${p}.arch`);
  int(o.layers, `${p}.layers`, 1);
  int(o.heads, `${p}.heads`, 1);
  int(o.kvHeads, `${p}.kvHeads`, 1);
  str(o.device, `${p}.device`);
}

function checkRun(v: unknown, p: string): void {
  if (v === null) return;
  const o = obj(v, p);
  int(o.runId, `${p}.runId`);
  const prompt = str(o.prompt, `${p}.prompt`);
  arr(o.tokens, `${p}.tokens`).forEach((t, i) => {
    const q = `${p}.tokens[${i}]`;
    const to = obj(t, q);
    str(to.text, `${q}.text`);
    const start = int(to.start, `${q}.start`);
    const end = int(to.end, `${q}.end`);
    if (end < start || end > prompt.length) fail(`${q}.end`, `expected start ≤ end ≤ prompt length (${prompt.length})`);
    bool(to.special, `${q}.special`);
    int(to.id, `${q}.id`);
  });
  arr(o.heads, `${p}.heads`).forEach((h, i) => {
    const q = `${p}.heads[${i}]`;
    const ho = obj(h, q);
    headRef(ho, q);
    for (const m of METRICS) numOrNull(ho[m], `${q}.${m}`);
    num(ho.scale, `${q}.scale`);
  });
  arr(o.next, `${p}.next`).forEach((n, i) => {
    const q = `${p}.next[${i}]`;
    const no = obj(n, q);
    int(no.id, `${q}.id`);
    str(no.text, `${q}.text`);
    num(no.prob, `${q}.prob`);
  });
  const t = obj(o.timings, `${p}.timings`);
  num(t.runMs, `${p}.timings.runMs`);
  num(t.loadMs, `${p}.timings.loadMs`);
  int(o.truncated, `${p}.truncated`);
}

function checkInterventions(v: unknown, p: string): void {
  const o = obj(v, p);
  arr(o.scales, `${p}.scales`).forEach((s, i) => {
    headRef(s, `${p}.scales[${i}]`);
    num((s as Obj).value, `${p}.scales[${i}].value`);
  });
  if (o.emphasis !== null) {
    const e = obj(o.emphasis, `${p}.emphasis`);
    int(e.start, `${p}.emphasis.start`);
    int(e.end, `${p}.emphasis.end`);
    num(e.alpha, `${p}.emphasis.alpha`);
    if (e.heads !== 'all') arr(e.heads, `${p}.emphasis.heads`).forEach((h, i) => headRef(h, `${p}.emphasis.heads[${i}]`));
    str(e.text, `${p}.emphasis.text`);
  }
  if (o.sink !== null) {
    const s = obj(o.sink, `${p}.sink`);
    arr(s.heads, `${p}.sink.heads`).forEach((h, i) => headRef(h, `${p}.sink.heads[${i}]`));
    num(s.value, `${p}.sink.value`);
  }
}

function checkSettings(v: unknown, p: string, partial: boolean): void {
  const o = obj(v, p);
  const has = (k: string): boolean => !partial || k in o;
  if (has('aggregation')) oneOf(o.aggregation, ['mean', 'head', 'layer'], `${p}.aggregation`);
  if (has('direction')) oneOf(o.direction, ['from', 'to'], `${p}.direction`);
  if (has('metric')) oneOf(o.metric, METRICS, `${p}.metric`);
  if (has('discountSink')) bool(o.discountSink, `${p}.discountSink`);
}

const STATE_CHECKS: Record<keyof PanelState, (v: unknown, p: string) => void> = {
  model: checkModel,
  run: checkRun,
  selected: (v, p) => {
    if (v !== null) headRef(v, p);
  },
  interventions: checkInterventions,
  settings: (v, p) => checkSettings(v, p, false),
  busy: strOrNull,
  error: strOrNull,
};

function checkState(v: unknown, p: string, partial: boolean): void {
  const o = obj(v, p);
  for (const key of Object.keys(STATE_CHECKS) as (keyof PanelState)[]) {
    if (!(key in o) || o[key] === undefined) {
      if (partial) continue;
      fail(`${p}.${key}`, 'missing');
    }
    STATE_CHECKS[key](o[key], `${p}.${key}`);
  }
}

/** Byte length of the tensor's data when it is an ArrayBuffer or a view of one; else fails. */
function checkTensor(v: unknown, p: string, rank: number): void {
  const o = obj(v, p);
  const dims = arr(o.dims, `${p}.dims`);
  if (dims.length !== rank) fail(`${p}.dims`, `expected ${rank} dimension(s)`);
  let n = 1;
  dims.forEach((d, i) => (n *= int(d, `${p}.dims[${i}]`)));
  const d = o.data;
  const bytes = d instanceof ArrayBuffer ? d.byteLength : ArrayBuffer.isView(d) ? d.byteLength : fail(`${p}.data`, 'expected an ArrayBuffer');
  if (bytes !== 4 * n) fail(`${p}.data`, `expected ${4 * n} bytes (float32 × ${dims.join('×')}), got ${bytes}`);
}

/** The float32 values of a validated tensor (copies only when the bytes are misaligned). */
export function tensorValues(t: TensorMsg): Float32Array {
  const d = t.data as ArrayBuffer | ArrayBufferView;
  if (d instanceof ArrayBuffer) return new Float32Array(d);
  if (d instanceof Float32Array) return d;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (d.byteOffset % 4 === 0) return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

/** Validates an envelope from the host. */
export function validateToWebview(raw: unknown): Validated<Envelope<ToWebview>> {
  try {
    const env = obj(raw, 'message');
    int(env.messageId, 'message.messageId');
    if (env.inReplyTo !== undefined) int(env.inReplyTo, 'message.inReplyTo');
    const b = obj(env.body, 'body');
    const type = oneOf(b.type, ['init', 'state', 'overlay', 'pattern', 'error'] as const satisfies readonly ToWebview['type'][], 'body.type');
    switch (type) {
      case 'init':
        checkState(b.state, 'body.state', false);
        break;
      case 'state':
        checkState(b.state, 'body.state', true);
        break;
      case 'overlay':
        int(b.runId, 'body.runId');
        int(b.token, 'body.token');
        oneOf(b.direction, ['from', 'to'], 'body.direction');
        checkTensor(b.values, 'body.values', 1);
        break;
      case 'pattern': {
        int(b.runId, 'body.runId');
        headRef(b.head, 'body.head');
        checkTensor(b.values, 'body.values', 2);
        const dims = (b.values as Obj).dims as number[];
        if (dims[0] !== dims[1]) fail('body.values.dims', 'expected a square [T, T] pattern');
        break;
      }
      case 'error':
        str(b.message, 'body.message');
        break;
      default: {
        const never: never = type;
        fail('body.type', `unknown ${String(never)}`);
      }
    }
    return { ok: true, value: raw as Envelope<ToWebview> };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    throw e;
  }
}
