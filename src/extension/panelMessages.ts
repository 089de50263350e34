// Validation of everything the panel's webview sends, with the shared combinators
// (src/shared/validate.ts): a malformed message is answered with an error reply and never reaches
// the session. Pure, so unit tests cover it. The result holds clean copies (unknown fields dropped).
import { AGGREGATIONS, METRICS, PATTERN_TILE_MAX, type FromWebview, type GridMetric, type ViewSettings } from '../shared/protocol';
import { LIMITS, arr, bool, fail, headList, headRef, int, num, obj, oneOf, parseMessage, patternWindow, pngInfo, str, strOrNull, themeColors, type Obj, type ParsedMessage } from '../shared/validate';

const SETTINGS: { [K in keyof ViewSettings]: (v: unknown, p: string) => ViewSettings[K] } = {
  aggregation: (v, p) => oneOf(v, p, AGGREGATIONS),
  direction: (v, p) => oneOf(v, p, ['from', 'to']),
  metric: (v, p) => oneOf<GridMetric>(v, p, [...METRICS, 'importance', 'patching']),
  discountSink: bool,
};

/** Some of the view settings; an unknown key is refused. */
function settings(v: unknown, p: string): Partial<ViewSettings> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(obj(v, p))) {
    if (!Object.prototype.hasOwnProperty.call(SETTINGS, k)) fail(`${p}.${k.slice(0, 40)}`, `unknown setting; expected ${Object.keys(SETTINGS).join(', ')}`);
    out[k] = SETTINGS[k as keyof ViewSettings](x, `${p}.${k}`);
  }
  return out as Partial<ViewSettings>;
}

const BODIES: { [K in FromWebview['type']]: (b: Obj) => Extract<FromWebview, { type: K }> } = {
  ready: (b) => ({ type: 'ready', version: int(b.version, 'body.version') }),
  selectHead: (b) => ({ type: 'selectHead', head: headRef(b.head, 'body.head') }),
  toggleMask: (b) => ({ type: 'toggleMask', head: headRef(b.head, 'body.head') }),
  requestPattern: (b) => ({ type: 'requestPattern', head: headRef(b.head, 'body.head') }),
  requestPatternTile: (b) => ({ type: 'requestPatternTile', runId: int(b.runId, 'body.runId'), head: headRef(b.head, 'body.head'), ...patternWindow(b, 'body'), size: int(b.size, 'body.size', 1, PATTERN_TILE_MAX) }),
  setScale: (b) => ({ type: 'setScale', heads: headList(b.heads, 'body.heads'), value: num(b.value, 'body.value', { min: 0, max: LIMITS.scale }) }),
  emphasizeSelection: (b) => ({ type: 'emphasizeSelection', alpha: num(b.alpha, 'body.alpha', { above: 0 }), heads: b.heads === 'all' ? 'all' : headList(b.heads, 'body.heads') }),
  setSink: (b) => ({ type: 'setSink', heads: headList(b.heads, 'body.heads'), value: num(b.value, 'body.value', { above: 0, max: LIMITS.sink }) }),
  clearEmphasis: () => ({ type: 'clearEmphasis' }),
  reset: () => ({ type: 'reset' }),
  setSettings: (b) => ({ type: 'setSettings', settings: settings(b.settings, 'body.settings') }),
  revealToken: (b) => ({ type: 'revealToken', index: int(b.index, 'body.index', 0, LIMITS.list) }),
  rasterized: (b) => {
    const job = int(b.job, 'body.job');
    const error = strOrNull(b.error, 'body.error', LIMITS.label * 5);
    if (b.png !== null) pngInfo(b.png, 'body.png');
    else if (error === null) fail('body.png', 'expected PNG bytes or an error');
    return { type: 'rasterized', job, png: b.png === null ? null : (b.png as ArrayBuffer), error };
  },
  theme: (b) => ({ type: 'theme', colors: themeColors(b.colors, 'body.colors') }),
  requestLens: (b) => ({ type: 'requestLens', runId: int(b.runId, 'body.runId'), position: int(b.position, 'body.position', 0, LIMITS.list) }),
  watchToken: (b) => ({ type: 'watchToken', id: int(b.id, 'body.id', 0, LIMITS.list * 16) }),
  watchText: (b) => ({ type: 'watchText', text: str(b.text, 'body.text', LIMITS.label, 1) }),
  unwatchToken: (b) => ({ type: 'unwatchToken', id: int(b.id, 'body.id', 0, LIMITS.list * 16) }),
  setWatchPair: (b) => ({ type: 'setWatchPair', pair: b.pair === null ? null : tokenPair(b.pair, 'body.pair') }),
};

/** Two token ids. */
function tokenPair(v: unknown, p: string): [number, number] {
  const a = arr(v, p, 2);
  if (a.length !== 2) fail(p, 'expected two token ids');
  return [int(a[0], `${p}[0]`, 0, LIMITS.list * 16), int(a[1], `${p}[1]`, 0, LIMITS.list * 16)];
}

export function parseFromWebview(raw: unknown): ParsedMessage<FromWebview> {
  return parseMessage<FromWebview>(raw, BODIES);
}
