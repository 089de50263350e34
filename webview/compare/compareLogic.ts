// Pure helpers of the compare webview (DOM-free, unit-tested): message validation (of the compare
// and generation pages, with the shared combinators of src/shared/validate.ts), float tensors,
// the diverging and sequential color fractions, and the position ↔ token maps of the aligned runs.
import { METRICS, type Envelope, type HeadRef, type TensorMsg } from '../../src/shared/protocol';
import { scaleFraction, scaleMax, sinkMask } from '../logic/colorScale';
import { checkToken, tensorValues } from '../logic/validate';
import { WATCH_SOURCES, type CompareView, type CompareWatchSide, type WatchSource, type Lane, type ToCompare, type ToGenerate } from '../../src/shared/runsProtocol';
import { MAX_WATCHED } from '../../src/shared/watch';
import { LIMITS, arr, bool, checkMessage, fail, generateOptions, headRef, int, list, nullable, num, numOrNull, obj, oneOf, prob, str, strOrNull, tensor, tokenId, watchedToken, type Obj, type Validated } from '../../src/shared/validate';

export type Checked<T> = Validated<T>;

export function floats(t: TensorMsg | null | undefined): Float32Array {
  return t ? tensorValues(t) : new Float32Array(0);
}

function probText(v: unknown, p: string): void {
  const o = obj(v, p);
  int(o.id, `${p}.id`);
  str(o.text, `${p}.text`);
  num(o.prob, `${p}.prob`);
}

function checkSide(v: unknown, p: string): void {
  const o = obj(v, p);
  str(o.label, `${p}.label`);
  strOrNull(o.file, `${p}.file`, LIMITS.path);
  str(o.createdAt, `${p}.createdAt`);
  const prompt = str(o.prompt, `${p}.prompt`);
  str(o.model, `${p}.model`);
  str(o.device, `${p}.device`);
  const layers = int(o.layers, `${p}.layers`, 1);
  const heads = int(o.heads, `${p}.heads`, 1);
  list(o.interventions, `${p}.interventions`, (x, q) => str(x, q));
  const tokens = list(o.tokens, `${p}.tokens`, (t, q) => checkToken(t, q, prompt.length));
  list(o.unaligned, `${p}.unaligned`, (x, q) => int(x, q, 0, tokens.length - 1));
  list(o.next, `${p}.next`, probText);
  metricsTensor(o.metrics, `${p}.metrics`, layers, heads);
  num(o.runMs, `${p}.runMs`);
}

/** A [metric (METRICS order), layer, head] tensor. */
function metricsTensor(v: unknown, p: string, layers: number, heads: number): void {
  const d = tensor(v, p, 3).dims;
  if (d[0] !== METRICS.length || d[1] !== layers || d[2] !== heads) fail(`${p}.dims`, `expected [${METRICS.length}, ${layers}, ${heads}] (metric, layer, head), got [${d.join(', ')}]`);
}

function checkPosition(v: unknown, p: string): void {
  const o = obj(v, p);
  int(o.a, `${p}.a`);
  int(o.b, `${p}.b`);
  str(o.text, `${p}.text`);
  list(o.topA, `${p}.topA`, probText);
  list(o.topB, `${p}.topB`, probText);
  list(o.left, `${p}.left`, topKChange('b'));
  list(o.entered, `${p}.entered`, topKChange('a'));
}

/** An id that left (absent from B's top-K) or entered (absent from A's): that side's probability may be null. */
function topKChange(mayBeNull: 'a' | 'b') {
  return (v: unknown, q: string): void => {
    const o = obj(v, q);
    int(o.id, `${q}.id`);
    str(o.text, `${q}.text`);
    (mayBeNull === 'a' ? numOrNull : num)(o.probA, `${q}.probA`);
    (mayBeNull === 'b' ? numOrNull : num)(o.probB, `${q}.probB`);
  };
}

/** A per-position tensor: [positions]. */
function positionsTensor(v: unknown, p: string, n: number): void {
  if (tensor(v, p, 1).dims[0] !== n) fail(`${p}.dims`, `expected [${n}] (one value per position)`);
}

function checkView(v: unknown, p: string): void {
  const o = obj(v, p);
  const mode = oneOf(o.mode, `${p}.mode`, ['compare', 'single']);
  checkSide(o.a, `${p}.a`);
  if (mode === 'compare') checkSide(o.b, `${p}.b`);
  else if (o.b !== null) fail(`${p}.b`, 'expected null for a single run');
  const n = list(o.positions, `${p}.positions`, checkPosition).length;
  positionsTensor(o.kl, `${p}.kl`, n);
  positionsTensor(o.shift, `${p}.shift`, n);
  if (o.deltas !== null) {
    const a = o.a as { layers: number; heads: number };
    metricsTensor(o.deltas, `${p}.deltas`, a.layers, a.heads);
  }
  list(o.mostDifferent, `${p}.mostDifferent`, (x, q) => int(x, q, 0, n - 1));
  list(o.notComparable, `${p}.notComparable`, (x, q) => str(x, q));
  int(o.aligned, `${p}.aligned`);
  strOrNull(o.attention, `${p}.attention`);
  if (o.watch !== null) checkCompareWatch(o.watch, `${p}.watch`, n);
}

/** A tensor with exactly these dims. */
function dimsTensor(v: unknown, p: string, dims: number[], what: string): void {
  const d = tensor(v, p, dims.length).dims;
  if (d.some((x, i) => x !== dims[i])) fail(`${p}.dims`, `expected [${dims.join(', ')}] (${what}), got [${d.join(', ')}]`);
}

/** The watched tokens in A and B at the `n` aligned positions (null: as many as `a.source` has). */
export function checkCompareWatch(v: unknown, p: string, positions: number | null): void {
  const o = obj(v, p);
  const n = positions ?? tensor(obj(o.a, `${p}.a`).source, `${p}.a.source`, 1).dims[0]!;
  const W = list(o.tokens, `${p}.tokens`, watchedToken, MAX_WATCHED).length;
  if (o.pair !== null) {
    const pr = arr(o.pair, `${p}.pair`, 2);
    if (pr.length !== 2) fail(`${p}.pair`, 'expected two token ids');
    pr.forEach((x, i) => tokenId(x, `${p}.pair[${i}]`));
  }
  for (const side of ['a', 'b'] as const) {
    const q = `${p}.${side}`;
    const s = obj(o[side], q);
    for (const k of ['logprob', 'logit', 'rank'] as const) dimsTensor(s[k], `${q}.${k}`, [W, n], 'watched token, position');
    dimsTensor(s.pairDiff, `${q}.pairDiff`, [n], 'position');
    dimsTensor(s.source, `${q}.source`, [n], 'position');
    if (floats(s.source as never).some((x) => !(Number.isInteger(x) && x >= 0 && x < WATCH_SOURCES.length))) fail(`${q}.source`, `expected indexes into ${WATCH_SOURCES.join('/')}`);
    int(s.topK, `${q}.topK`, 0, 1024);
  }
}

function checkCompareInit(v: unknown, p: string): void {
  const o = obj(v, p);
  if (o.view === null) str(o.error, `${p}.error`);
  else {
    checkView(o.view, `${p}.view`);
    strOrNull(o.error, `${p}.error`);
  }
  bool(o.canGenerate, `${p}.canGenerate`);
  if (o.hint !== undefined) str(o.hint, `${p}.hint`);
}

const TO_COMPARE: { [K in ToCompare['type']]: (b: Obj) => void } = {
  init: (b) => checkCompareInit(b.init, 'body.init'),
  attentionRows: (b) => {
    int(b.position, 'body.position');
    nullable(b.head, 'body.head', headRef);
    tensor(b.a, 'body.a', 1);
    tensor(b.b, 'body.b', 1);
  },
  watch: (b) => {
    // the number of positions is the shown view's: main.ts drops a reply whose size differs
    if (b.watch !== null) checkCompareWatch(b.watch, 'body.watch', null);
  },
  error: (b) => str(b.message, 'body.message'),
};

export function validateToCompare(raw: unknown): Checked<Envelope<ToCompare>> {
  return checkMessage<ToCompare>(raw, TO_COMPARE);
}

function checkGenerateSession(o: Obj, p: string): void {
  str(o.prompt, `${p}.prompt`);
  str(o.promptName, `${p}.promptName`);
  list(o.interventions, `${p}.interventions`, (x, q) => str(x, q));
}

const LANES = ['with', 'without'] as const satisfies readonly Lane[];

const TO_GENERATE: { [K in ToGenerate['type']]: (b: Obj) => void } = {
  init: (b) => {
    const i = obj(b.init, 'body.init');
    checkGenerateSession(i, 'body.init');
    generateOptions(i.options, 'body.init.options');
  },
  session: (b) => checkGenerateSession(obj(b.session, 'body.session'), 'body.session'),
  started: (b) => {
    list(b.lanes, 'body.lanes', (x, q) => oneOf(x, q, LANES), LANES.length);
    generateOptions(b.options, 'body.options');
    if (b.watched !== undefined) list(b.watched, 'body.watched', watchedToken, MAX_WATCHED);
  },
  token: (b) => {
    oneOf(b.lane, 'body.lane', LANES);
    str(b.text, 'body.text');
    num(b.prob, 'body.prob');
    if (b.watched !== undefined) list(b.watched, 'body.watched', prob, MAX_WATCHED);
  },
  done: (b) => {
    oneOf(b.lane, 'body.lane', LANES);
    str(b.stopReason, 'body.stopReason');
    int(b.tokens, 'body.tokens');
    num(b.perTokenMs, 'body.perTokenMs');
  },
  finished: () => undefined,
  error: (b) => str(b.message, 'body.message'),
};

export function validateToGenerate(raw: unknown): Checked<Envelope<ToGenerate>> {
  return checkMessage<ToGenerate>(raw, TO_GENERATE);
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

// ---- watched tokens at a position (DOM-free) ----

/** A watched token's value in one run at one position, or why there is none. */
export type WatchCell =
  | { kind: 'value'; prob: number; logprob: number; logit: number | null; rank: number | null; source: WatchSource }
  | { kind: 'missing'; why: string };

/** Why a position has no value: the saved top K did not hold the token, or nothing was saved. */
function missingWhy(source: WatchSource, topK: number): string {
  return source === 'topK' ? `below the saved top ${topK}` : 'not saved';
}

/** One run's value of watched token `w` at aligned position `p` (NaN in the tensors = not saved). */
export function watchCell(side: CompareWatchSide, w: number, p: number): WatchCell {
  const P = side.source.dims[0]!;
  const source = WATCH_SOURCES[floats(side.source)[p]!] ?? 'none';
  const lp = floats(side.logprob)[w * P + p]!;
  if (!Number.isFinite(lp)) return { kind: 'missing', why: missingWhy(source, side.topK) };
  const logit = floats(side.logit)[w * P + p]!;
  const rank = floats(side.rank)[w * P + p]!;
  return { kind: 'value', prob: Math.exp(lp), logprob: lp, logit: Number.isFinite(logit) ? logit : null, rank: Number.isFinite(rank) ? rank : null, source };
}

/** The pair's logit difference in one run at position `p`, or why there is none. */
export function watchPairDiff(side: CompareWatchSide, p: number): number | { why: string } {
  const v = floats(side.pairDiff)[p]!;
  if (Number.isFinite(v)) return v;
  const source = WATCH_SOURCES[floats(side.source)[p]!] ?? 'none';
  return { why: source === 'topK' ? `a token is below the saved top ${side.topK}` : 'not saved' };
}

/** What a run's watched values at a position are computed from, in words. */
export function watchSourceText(source: WatchSource, topK: number): string {
  switch (source) {
    case 'logits':
      return 'every position’s logits (exact)';
    case 'lastLogits':
      return 'the last position’s logits (exact)';
    case 'topK':
      return `the saved top ${topK} log-probabilities (no logits saved)`;
    default:
      return 'nothing saved at this position';
  }
}

/** A probability in percent that stays readable for rare tokens: "93.9%", "0.25%", "0.0032%", "4.1e−7%". */
export function formatWatchProb(p: number): string {
  if (!Number.isFinite(p)) return '—';
  const v = p * 100;
  if (v === 0) return '0%';
  if (v >= 10) return `${v.toFixed(1)}%`;
  if (v >= 0.01) return `${v.toFixed(2)}%`;
  return `${v.toPrecision(2).replace('e-', 'e−')}%`;
}

/** A signed number with a real minus: "+1.23", "−0.40". */
export function formatSignedNum(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return '—';
  const s = Math.abs(v).toFixed(digits);
  return Number(s) === 0 ? s : `${v < 0 ? '−' : '+'}${s}`;
}
