// Path-reporting validation combinators: every message that crosses the host ↔ webview boundary is
// checked with these, on both sides, against one set of limits. A check returns the value (a clean
// copy for objects it builds, e.g. headRef) or throws `Invalid` with the path to the first problem:
//
//   body.state.run.tokens[3].start: expected an integer ≥ 0
//
// `validate(() => …)` turns that into a result; `parseMessage` checks an envelope and its body and
// keeps the messageId of a bad message, so that the error can be sent back as its reply.
import type { HeadRef } from './heads';
import type { Envelope, PatternTileMsg, TensorMsg } from './protocol';
import type { GenerateOptions } from './runsProtocol';
import { IMPORTANCE_METRICS, type ImportanceView } from './importance';
import type { Scene, Shape } from './figures/scene';
import { isHexColor, type ThemeColors } from './figures/palette';
import type { PatchingView } from './patching';
import { MAX_WATCHED, type WatchedToken, type WatchStat, type WatchView } from './watch';
import type { LensLayerView } from './protocol';

/** The limits of everything a message may carry, defined once for the host and the webviews. */
export const LIMITS = {
  /** layer and head indexes are below this */
  headIndex: 4096,
  /** heads named in one list (every head of the largest models fits) */
  heads: 65_536,
  /** tokens, positions, predictions, lines and any other list */
  list: 1 << 20,
  /** any text (a prompt is the longest) */
  text: 1 << 24,
  /** a file path */
  path: 4096,
  /** a label (e.g. a run's name in a title) */
  label: 200,
  /** a head's output scale: 0 (masked) to this */
  scale: 100,
  /** the attention-sink factor: above 0, up to this */
  sink: 100,
  /** tokens per generation */
  maxTokens: 1024,
  /** sampling temperature: 0 (greedy) to this */
  temperature: 10,
  /** the sampler's seed: 0 to this */
  seed: 0xffffffff,
} as const;

/** A failed check: its message starts with the path to the problem. */
export class Invalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Invalid';
  }
}

export type Validated<T> = { ok: true; value: T } | { ok: false; error: string };

/** A checked envelope, or why not (with the messageId when it could be read, for an error reply). */
export type ParsedMessage<T> = { ok: true; value: Envelope<T> } | { ok: false; error: string; messageId?: number };

export type Obj = Record<string, unknown>;
/** A check of one value at a path. */
export type Check<T> = (v: unknown, path: string) => T;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function fail(path: string, what: string): never {
  throw new Invalid(`${path}: ${what}`);
}

/** Runs checks; an `Invalid` becomes `{ok: false, error}` (anything else is a bug and is thrown). */
export function validate<T>(check: () => T): Validated<T> {
  try {
    return { ok: true, value: check() };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    throw e;
  }
}

export function obj(v: unknown, path: string): Obj {
  return isObj(v) ? v : fail(path, 'expected an object');
}

/** An integer from `min` to `max` (safe integers when no max is given). */
export function int(v: unknown, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max) return v;
  return fail(path, max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}` : `expected an integer from ${min} to ${max}`);
}

export interface NumRange {
  min?: number;
  max?: number;
  /** exclusive lower bound */
  above?: number;
}

/** A finite number, within the range when one is given. */
export function num(v: unknown, path: string, range: NumRange = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return fail(path, 'expected a finite number');
  const { min, max, above } = range;
  if ((min !== undefined && v < min) || (max !== undefined && v > max) || (above !== undefined && v <= above)) {
    const low = above !== undefined ? `> ${above}` : min !== undefined ? `≥ ${min}` : '';
    const high = max !== undefined ? `≤ ${max}` : '';
    return fail(path, `expected a number ${[low, high].filter(Boolean).join(' and ')}`);
  }
  return v;
}

/** A finite number or null (a metric that is not available); NaN reads as null. */
export function numOrNull(v: unknown, path: string): number | null {
  if (v === null || (typeof v === 'number' && Number.isNaN(v))) return null;
  return num(v, path);
}

/** A string of at most `max` UTF-16 units (and at least `min`). */
export function str(v: unknown, path: string, max: number = LIMITS.text, min = 0): string {
  if (typeof v !== 'string') return fail(path, 'expected a string');
  if (v.length > max) return fail(path, `expected at most ${max} characters, got ${v.length}`);
  if (v.length < min) return fail(path, min === 1 ? 'expected a non-empty string' : `expected at least ${min} characters`);
  return v;
}

export function strOrNull(v: unknown, path: string, max: number = LIMITS.text): string | null {
  return v === null ? null : str(v, path, max);
}

export function bool(v: unknown, path: string): boolean {
  return typeof v === 'boolean' ? v : fail(path, 'expected a boolean');
}

export function oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
  return typeof v === 'string' && (options as readonly string[]).includes(v) ? (v as T) : fail(path, `expected one of ${options.join(', ')}`);
}

/** An array of at most `max` items (items unchecked; see `list`). */
export function arr(v: unknown, path: string, max: number = LIMITS.list): unknown[] {
  if (!Array.isArray(v)) return fail(path, 'expected an array');
  if (v.length > max) return fail(path, `expected at most ${max} items, got ${v.length}`);
  return v;
}

/** An array of at most `max` items, each checked at `path[i]`; returns the checked items. */
export function list<T>(v: unknown, path: string, item: Check<T>, max: number = LIMITS.list): T[] {
  return arr(v, path, max).map((x, i) => item(x, `${path}[${i}]`));
}

/** null, or the check's value. */
export function nullable<T>(v: unknown, path: string, check: Check<T>): T | null {
  return v === null ? null : check(v, path);
}

/** A head {layer, head} (a clean copy: other fields are dropped). */
export function headRef(v: unknown, path: string): HeadRef {
  const o = obj(v, path);
  return { layer: int(o.layer, `${path}.layer`, 0, LIMITS.headIndex - 1), head: int(o.head, `${path}.head`, 0, LIMITS.headIndex - 1) };
}

export function headList(v: unknown, path: string): HeadRef[] {
  return list(v, path, headRef, LIMITS.heads);
}

/**
 * A float32 tensor: `dims` of the given rank (any when omitted) and `data` an ArrayBuffer (or a
 * view of one) of exactly 4 × product(dims) bytes.
 */
export function tensor(v: unknown, path: string, rank?: number): TensorMsg {
  const o = obj(v, path);
  const dims = list(o.dims, `${path}.dims`, (d, p) => int(d, p), 8);
  if (rank !== undefined && dims.length !== rank) fail(`${path}.dims`, `expected ${rank} dimension(s)`);
  const n = dims.reduce((a, b) => a * b, 1);
  const d = o.data;
  const bytes = d instanceof ArrayBuffer ? d.byteLength : ArrayBuffer.isView(d) ? d.byteLength : fail(`${path}.data`, 'expected an ArrayBuffer');
  if (bytes !== 4 * n) fail(`${path}.data`, `expected ${4 * n} bytes (float32 × ${dims.join('×') || 'scalar'}), got ${bytes}`);
  return o as unknown as TensorMsg;
}

/** Generation options within LIMITS (a clean copy). */
export function generateOptions(v: unknown, path: string): GenerateOptions {
  const o = obj(v, path);
  return {
    maxTokens: int(o.maxTokens, `${path}.maxTokens`, 1, LIMITS.maxTokens),
    temperature: num(o.temperature, `${path}.temperature`, { min: 0, max: LIMITS.temperature }),
    seed: int(o.seed, `${path}.seed`, 0, LIMITS.seed),
  };
}

/** Checks an envelope {messageId, inReplyTo?, body: {type, …}}; the body's other fields are not checked. */
export function envelope(v: unknown, path = 'message'): { messageId: number; inReplyTo?: number; body: Obj; type: string } {
  if (!isObj(v)) return fail(path, 'expected an envelope {messageId, body}');
  const messageId = int(v.messageId, `${path}.messageId`);
  const inReplyTo = v.inReplyTo === undefined ? undefined : int(v.inReplyTo, `${path}.inReplyTo`);
  const body = obj(v.body, 'body');
  const type = str(body.type, 'body.type', 64);
  return { messageId, ...(inReplyTo !== undefined ? { inReplyTo } : {}), body, type };
}

/**
 * Checks a message from the other side: the envelope, then its body with `bodies[type]` (which
 * returns the clean body). Errors name the message: `malformed setScale message: body.value: …`,
 * `unknown message type "x"`; a bad body keeps its messageId (to answer it with an error reply).
 */
export function parseMessage<T extends { type: string }>(raw: unknown, bodies: { [K in T['type']]: (b: Obj) => Extract<T, { type: K }> }): ParsedMessage<T> {
  let env: ReturnType<typeof envelope>;
  try {
    env = envelope(raw);
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message, ...(isObj(raw) && Number.isSafeInteger(raw.messageId) ? { messageId: raw.messageId as number } : {}) };
    throw e;
  }
  const { messageId, type, body } = env;
  const check = Object.prototype.hasOwnProperty.call(bodies, type) ? (bodies as Record<string, (b: Obj) => T>)[type] : undefined;
  if (!check) return { ok: false, error: `unknown message type ${JSON.stringify(type.slice(0, 40))}`, messageId };
  const r = validate(() => check(body));
  return r.ok ? { ok: true, value: { messageId, body: r.value } } : { ok: false, error: `malformed ${type} message: ${r.error}`, messageId };
}

/**
 * Checks a message in place (the webview side: large states and tensors are not copied): the
 * envelope, then its body with `checks[type]`. Errors are the path to the problem
 * ("body.state.run.tokens[3].start: expected an integer ≥ 0"); an unknown type is "body.type: …".
 */
export function checkMessage<T extends { type: string }>(raw: unknown, checks: { [K in T['type']]: (b: Obj) => void }): Validated<Envelope<T>> {
  return validate(() => {
    const b = envelope(raw).body;
    const type = oneOf(b.type, 'body.type', Object.keys(checks));
    (checks as Record<string, (b: Obj) => void>)[type]!(b);
    return raw as Envelope<T>;
  });
}

/**
 * A list of per-head records, each head at most once (`headKey` order is not required); `fields`
 * validates the rest of a record. A clean copy.
 */
export function distinctHeadList<T>(v: unknown, path: string, fields: (o: Obj, q: string) => T): (HeadRef & T)[] {
  const seen = new Set<string>();
  return list(
    v,
    path,
    (h, q) => {
      const ref = headRef(h, q);
      const k = `${ref.layer}.${ref.head}`;
      if (seen.has(k)) fail(q, `head ${k} appears twice`);
      seen.add(k);
      return { ...ref, ...fields(obj(h, q), q) };
    },
    LIMITS.heads,
  );
}

/** A head ranking by ablation (src/shared/importance.ts): finite values, every head at most once. */
export function importanceView(v: unknown, path: string): ImportanceView {
  const o = obj(v, path);
  const heads = distinctHeadList(o.heads, `${path}.heads`, (ho, q) => ({ value: num(ho.value, `${q}.value`), delta: num(ho.delta, `${q}.delta`) }));
  return {
    metric: oneOf(o.metric, `${path}.metric`, IMPORTANCE_METRICS),
    baseline: num(o.baseline, `${path}.baseline`),
    targetText: strOrNull(o.targetText, `${path}.targetText`),
    heads,
    runId: int(o.runId, `${path}.runId`),
  };
}

/** The most shapes one figure may have (a 160×160 downsampled pattern with labels fits). */
export const SCENE_MAX_SHAPES = 100_000;
/** The largest figure side in CSS px (a raster of it at scale 4 stays under a canvas's limits). */
export const SCENE_MAX_SIDE = 8000;

function color(v: unknown, path: string, allowNone = false): string {
  if (allowNone && v === 'none') return 'none';
  if (!isHexColor(v)) fail(path, `expected a color #rrggbb${allowNone ? " or 'none'" : ''}`);
  return v;
}

function coord(v: unknown, path: string): number {
  return num(v, path, { min: -SCENE_MAX_SIDE, max: SCENE_MAX_SIDE });
}

/** A figure scene (figures/scene.ts): bounded size and shape count, colors only as #rrggbb, texts bounded. A clean copy. */
export function scene(v: unknown, path: string): Scene {
  const o = obj(v, path);
  const shape = (x: unknown, p: string): Shape => {
    const s = obj(x, p);
    const kind = oneOf(s.kind, `${p}.kind`, ['rect', 'text', 'line'] as const);
    if (kind === 'rect') {
      const r: Shape = { kind, x: coord(s.x, `${p}.x`), y: coord(s.y, `${p}.y`), w: num(s.w, `${p}.w`, { min: 0, max: SCENE_MAX_SIDE }), h: num(s.h, `${p}.h`, { min: 0, max: SCENE_MAX_SIDE }), fill: color(s.fill, `${p}.fill`, true) };
      if (s.stroke !== undefined) r.stroke = color(s.stroke, `${p}.stroke`);
      if (s.strokeWidth !== undefined) r.strokeWidth = num(s.strokeWidth, `${p}.strokeWidth`, { min: 0, max: 100 });
      if (s.title !== undefined) r.title = str(s.title, `${p}.title`, 4096);
      return r;
    }
    if (kind === 'line') return { kind, x1: coord(s.x1, `${p}.x1`), y1: coord(s.y1, `${p}.y1`), x2: coord(s.x2, `${p}.x2`), y2: coord(s.y2, `${p}.y2`), stroke: color(s.stroke, `${p}.stroke`), width: num(s.width, `${p}.width`, { min: 0, max: 100 }) };
    const t: Shape = { kind, x: coord(s.x, `${p}.x`), y: coord(s.y, `${p}.y`), text: str(s.text, `${p}.text`, 4096), size: num(s.size, `${p}.size`, { above: 0, max: 200 }), fill: color(s.fill, `${p}.fill`) };
    if (s.anchor !== undefined) t.anchor = oneOf(s.anchor, `${p}.anchor`, ['start', 'middle', 'end'] as const);
    if (s.baseline !== undefined) t.baseline = oneOf(s.baseline, `${p}.baseline`, ['middle', 'alphabetic'] as const);
    if (s.bold !== undefined) t.bold = bool(s.bold, `${p}.bold`);
    if (s.rotate !== undefined) t.rotate = num(s.rotate, `${p}.rotate`, { min: -360, max: 360 });
    if (s.mono !== undefined) t.mono = bool(s.mono, `${p}.mono`);
    return t;
  };
  return {
    width: num(o.width, `${path}.width`, { above: 0, max: SCENE_MAX_SIDE }),
    height: num(o.height, `${path}.height`, { above: 0, max: SCENE_MAX_SIDE }),
    background: color(o.background, `${path}.background`),
    fontFamily: str(o.fontFamily, `${path}.fontFamily`, LIMITS.label),
    title: str(o.title, `${path}.title`, 4096),
    desc: str(o.desc, `${path}.desc`, 4096),
    shapes: list(o.shapes, `${path}.shapes`, shape, SCENE_MAX_SHAPES),
  };
}

/** Theme colors reported by the panel (a clean copy). */
export function themeColors(v: unknown, path: string): ThemeColors {
  const o = obj(v, path);
  return {
    kind: oneOf(o.kind, `${path}.kind`, ['dark', 'light', 'hc', 'hc-light'] as const),
    bg: color(o.bg, `${path}.bg`),
    fg: color(o.fg, `${path}.fg`),
    muted: color(o.muted, `${path}.muted`),
    low: color(o.low, `${path}.low`),
    high: color(o.high, `${path}.high`),
    focus: color(o.focus, `${path}.focus`),
  };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The largest PNG a panel may send back (bytes). */
export const PNG_MAX_BYTES = 64 << 20;

/**
 * PNG bytes: the signature, an IHDR chunk first, and its width and height; `expect` (when given)
 * must match them. Returns the dimensions.
 */
export function pngInfo(v: unknown, path: string, expect?: { width: number; height: number }): { width: number; height: number } {
  if (!(v instanceof ArrayBuffer) && !ArrayBuffer.isView(v)) fail(path, 'expected PNG bytes (an ArrayBuffer)');
  const b = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (b.byteLength > PNG_MAX_BYTES) fail(path, `expected at most ${PNG_MAX_BYTES} bytes, got ${b.byteLength}`);
  if (b.byteLength < 33 || PNG_SIGNATURE.some((x, i) => b[i] !== x)) fail(path, 'not a PNG (no PNG signature)');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(8) !== 13 || String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!) !== 'IHDR') fail(path, 'not a PNG (no IHDR chunk first)');
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  if (expect && (width !== expect.width || height !== expect.height)) fail(path, `expected a ${expect.width}×${expect.height} PNG, got ${width}×${height}`);
  return { width, height };
}

/** A token id (below any vocabulary AttnScope opens). */
export const tokenId = (v: unknown, path: string): number => int(v, path, 0, LIMITS.list * 16);

/** A probability: a number from 0 to 1. */
export const prob = (v: unknown, path: string): number => num(v, path, { min: 0, max: 1 });

/** A vocabulary token {id, text} (a clean copy). */
export function watchedToken(v: unknown, path: string): WatchedToken {
  const o = obj(v, path);
  return { id: tokenId(o.id, `${path}.id`), text: str(o.text, `${path}.text`, LIMITS.label) };
}

function watchStat(v: unknown, path: string): WatchStat | null {
  if (v === null) return null;
  const o = obj(v, path);
  return { prob: prob(o.prob, `${path}.prob`), logprob: num(o.logprob, `${path}.logprob`, { max: 0 }), logit: num(o.logit, `${path}.logit`), rank: int(o.rank, `${path}.rank`, 1) };
}

/** The watched tokens with their values (src/shared/watch.ts). */
export function watchView(v: unknown, path: string): WatchView {
  const o = obj(v, path);
  const tokens = list(
    o.tokens,
    `${path}.tokens`,
    (t, q) => ({ ...watchedToken(t, q), current: watchStat(obj(t, q).current, `${q}.current`), baseline: watchStat(obj(t, q).baseline, `${q}.baseline`) }),
    MAX_WATCHED,
  );
  let pair: [number, number] | null = null;
  if (o.pair !== null) {
    const a = arr(o.pair, `${path}.pair`, 2);
    if (a.length !== 2) fail(`${path}.pair`, 'expected two token ids');
    pair = [tokenId(a[0], `${path}.pair[0]`), tokenId(a[1], `${path}.pair[1]`)];
  }
  return { tokens, pair, runId: o.runId === null ? null : int(o.runId, `${path}.runId`), steered: bool(o.steered, `${path}.steered`), error: strOrNull(o.error, `${path}.error`) };
}

/** A patching result (src/shared/patching.ts): finite values, every head at most once. */
export function patchingView(v: unknown, path: string): PatchingView {
  const o = obj(v, path);
  const heads = distinctHeadList(o.heads, `${path}.heads`, (ho, q) => ({ value: num(ho.value, `${q}.value`), effect: numOrNull(ho.effect, `${q}.effect`) }));
  return {
    targetId: tokenId(o.targetId, `${path}.targetId`),
    targetText: str(o.targetText, `${path}.targetText`, LIMITS.label),
    clean: num(o.clean, `${path}.clean`),
    corrupt: num(o.corrupt, `${path}.corrupt`),
    heads,
    cleanLabel: str(o.cleanLabel, `${path}.cleanLabel`, LIMITS.path),
    tokens: int(o.tokens, `${path}.tokens`, 1),
    runId: int(o.runId, `${path}.runId`),
    interventionsIgnored: bool(o.interventionsIgnored, `${path}.interventionsIgnored`),
  };
}

/** The layers of a logit lens (0 = the embeddings … L = the output), in order. */
export function lensLayers(v: unknown, path: string): LensLayerView[] {
  return list(
    v,
    path,
    (l, q) => {
      const o = obj(l, q);
      const layer = int(o.layer, `${q}.layer`, 0, LIMITS.headIndex);
      if (layer !== Number(q.slice(q.lastIndexOf('[') + 1, -1))) fail(`${q}.layer`, 'expected the layers in order from 0');
      return {
        layer,
        top: list(o.top, `${q}.top`, (t, r) => ({ ...watchedToken(t, r), prob: prob(obj(t, r).prob, `${r}.prob`) }), 100),
        watched: list(o.watched, `${q}.watched`, (w, r) => {
          const wo = obj(w, r);
          return { id: tokenId(wo.id, `${r}.id`), prob: prob(wo.prob, `${r}.prob`), logit: num(wo.logit, `${r}.logit`), rank: int(wo.rank, `${r}.rank`, 1) };
        }, MAX_WATCHED),
      };
    },
    LIMITS.headIndex + 1,
  );
}

/**
 * A pattern window {q0, q1, k0, k1}: whole numbers with q0 < q1 and k0 < k1 (the run's length is
 * checked by whoever knows it: the extension host, against the current run).
 */
export function patternWindow(o: Obj, path: string): { q0: number; q1: number; k0: number; k1: number } {
  const q0 = int(o.q0, `${path}.q0`, 0, LIMITS.list);
  const q1 = int(o.q1, `${path}.q1`, 1, LIMITS.list);
  const k0 = int(o.k0, `${path}.k0`, 0, LIMITS.list);
  const k1 = int(o.k1, `${path}.k1`, 1, LIMITS.list);
  if (q1 <= q0) fail(`${path}.q1`, `expected q1 > q0 (${q0})`);
  if (k1 <= k0) fail(`${path}.k1`, `expected k1 > k0 (${k0})`);
  return { q0, q1, k0, k1 };
}

/** Block edges from `a` to `b` in `n` strictly increasing steps: [n + 1] integers. */
function blockEdges(v: unknown, path: string, a: number, b: number, n: number): number[] {
  const e = list(v, path, (x, p) => int(x, p, 0, LIMITS.list), n + 1);
  if (e.length !== n + 1) fail(path, `expected ${n + 1} edges`);
  if (e[0] !== a || e[n] !== b) fail(path, `expected edges from ${a} to ${b}`);
  for (let i = 1; i <= n; i++) if (e[i]! <= e[i - 1]!) fail(`${path}[${i}]`, 'expected strictly increasing edges');
  return e;
}

/** A pattern tile (protocol PatternTileMsg): window, edges matching the values' [rows, cols], pooled flag. */
export function patternTileMsg(v: unknown, path: string, maxSide: number): PatternTileMsg {
  const o = obj(v, path);
  const w = patternWindow(o, path);
  const values = tensor(o.values, `${path}.values`, 2);
  const [rows, cols] = values.dims as [number, number];
  if (rows < 1 || cols < 1 || rows > maxSide || cols > maxSide) fail(`${path}.values.dims`, `expected 1..${maxSide} rows and columns`);
  if (rows > w.q1 - w.q0 || cols > w.k1 - w.k0) fail(`${path}.values.dims`, 'expected at most one cell per token');
  const rowEdges = blockEdges(o.rowEdges, `${path}.rowEdges`, w.q0, w.q1, rows);
  const colEdges = blockEdges(o.colEdges, `${path}.colEdges`, w.k0, w.k1, cols);
  const pooled = bool(o.pooled, `${path}.pooled`);
  if (!pooled && (rows !== w.q1 - w.q0 || cols !== w.k1 - w.k0)) fail(`${path}.pooled`, 'an exact tile has one cell per token');
  return { ...w, pooled, rowEdges, colEdges, values };
}
