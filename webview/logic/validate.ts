// Defensive validation of everything that arrives from the host, with the shared combinators
// (src/shared/validate.ts). A malformed message is rejected as a whole with a path to the first
// problem (e.g. "body.state.run.tokens[3].start: expected an integer ≥ 0"), never half-applied.
import { AGGREGATIONS, METRICS, PATTERN_TILE_MAX, type Envelope, type PanelState, type TensorMsg, type ToWebview } from '../../src/shared/protocol';
import { LIMITS, bool, checkMessage, fail, headList, headRef, importanceView, int, lensLayers, list, num, numOrNull, obj, oneOf, patchingView, patternTileMsg, scene, str, strOrNull, tensor, watchedToken, watchView, type Obj, type Validated } from '../../src/shared/validate';

export type { Validated } from '../../src/shared/validate';

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

/** A token of a prompt of `promptLength` UTF-16 units: {text, start ≤ end ≤ promptLength, special, id}. */
export function checkToken(v: unknown, q: string, promptLength: number): void {
  const to = obj(v, q);
  str(to.text, `${q}.text`);
  const start = int(to.start, `${q}.start`);
  const end = int(to.end, `${q}.end`);
  if (end < start || end > promptLength) fail(`${q}.end`, `expected start ≤ end ≤ prompt length (${promptLength})`);
  bool(to.special, `${q}.special`);
  int(to.id, `${q}.id`);
}

function checkRun(v: unknown, p: string): void {
  if (v === null) return;
  const o = obj(v, p);
  int(o.runId, `${p}.runId`);
  const prompt = str(o.prompt, `${p}.prompt`);
  list(o.tokens, `${p}.tokens`, (t, q) => checkToken(t, q, prompt.length));
  list(
    o.heads,
    `${p}.heads`,
    (h, q) => {
      const ho = obj(h, q);
      headRef(ho, q);
      for (const m of METRICS) numOrNull(ho[m], `${q}.${m}`);
      num(ho.scale, `${q}.scale`);
    },
    LIMITS.heads,
  );
  list(o.next, `${p}.next`, (n, q) => {
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
  list(
    o.scales,
    `${p}.scales`,
    (s, q) => {
      headRef(s, q);
      num(obj(s, q).value, `${q}.value`);
    },
    LIMITS.heads,
  );
  if (o.emphasis !== null) {
    const e = obj(o.emphasis, `${p}.emphasis`);
    int(e.start, `${p}.emphasis.start`);
    int(e.end, `${p}.emphasis.end`);
    num(e.alpha, `${p}.emphasis.alpha`);
    if (e.heads !== 'all') headList(e.heads, `${p}.emphasis.heads`);
    str(e.text, `${p}.emphasis.text`);
  }
  if (o.sink !== null) {
    const s = obj(o.sink, `${p}.sink`);
    headList(s.heads, `${p}.sink.heads`);
    num(s.value, `${p}.sink.value`);
  }
}

function checkSettings(v: unknown, p: string, partial: boolean): void {
  const o = obj(v, p);
  const has = (k: string): boolean => !partial || k in o;
  if (has('aggregation')) oneOf(o.aggregation, `${p}.aggregation`, AGGREGATIONS);
  if (has('direction')) oneOf(o.direction, `${p}.direction`, ['from', 'to']);
  if (has('metric')) oneOf(o.metric, `${p}.metric`, [...METRICS, 'importance', 'patching']);
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
  busy: (v, p) => strOrNull(v, p),
  error: (v, p) => strOrNull(v, p),
  importance: (v, p) => {
    if (v !== null) importanceView(v, p);
  },
  importanceNote: (v, p) => strOrNull(v, p),
  patching: (v, p) => {
    if (v !== null) patchingView(v, p);
  },
  patchingNote: (v, p) => strOrNull(v, p),
  watch: (v, p) => watchView(v, p),
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

/** The float32 values of a validated tensor (copies only when the bytes are misaligned). */
export function tensorValues(t: TensorMsg): Float32Array {
  const d = t.data as ArrayBuffer | ArrayBufferView;
  if (d instanceof ArrayBuffer) return new Float32Array(d);
  if (d instanceof Float32Array) return d;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (d.byteOffset % 4 === 0) return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

const TO_WEBVIEW: { [K in ToWebview['type']]: (b: Obj) => void } = {
  init: (b) => checkState(b.state, 'body.state', false),
  state: (b) => checkState(b.state, 'body.state', true),
  overlay: (b) => {
    int(b.runId, 'body.runId');
    int(b.token, 'body.token');
    oneOf(b.direction, 'body.direction', ['from', 'to']);
    tensor(b.values, 'body.values', 1);
  },
  pattern: (b) => {
    int(b.runId, 'body.runId');
    headRef(b.head, 'body.head');
    const dims = tensor(b.values, 'body.values', 2).dims;
    if (dims[0] !== dims[1]) fail('body.values.dims', 'expected a square [T, T] pattern');
  },
  patternTile: (b) => {
    int(b.runId, 'body.runId');
    headRef(b.head, 'body.head');
    patternTileMsg(b.tile, 'body.tile', PATTERN_TILE_MAX);
  },
  lens: (b) => {
    int(b.runId, 'body.runId');
    int(b.position, 'body.position');
    lensLayers(b.layers, 'body.layers');
  },
  tokenLookup: (b) => {
    str(b.text, 'body.text', LIMITS.label);
    if (b.added !== null) watchedToken(b.added, 'body.added');
    strOrNull(b.message, 'body.message');
    list(b.candidates, 'body.candidates', watchedToken, 64);
  },
  error: (b) => str(b.message, 'body.message'),
  rasterize: (b) => {
    int(b.job, 'body.job');
    scene(b.scene, 'body.scene');
    num(b.scale, 'body.scale', { min: 1, max: 4 });
  },
};

/** Validates an envelope from the host. */
export function validateToWebview(raw: unknown): Validated<Envelope<ToWebview>> {
  return checkMessage<ToWebview>(raw, TO_WEBVIEW);
}
