// DOM-free logic of the panel webview: color scales, grid metrics and navigation, heatmap geometry
// and pooling, the envelope messenger, incoming message validation, UI state sanitizing, and the
// synthetic fixture (its metrics agree with the engine's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headMetricsFromProbs } from '../reference/metrics';
import type { Envelope, FromWebview, HeadView, PanelState, ToWebview } from '../../src/shared/protocol';
import { contrast, mix, packABGR, parseCssColor, rampAt, rampUint32 } from '../../webview/logic/color';
import { formatProb, scaleFraction, scaleLevels, scaleMax, sinkMask } from '../../webview/logic/colorScale';
import { cellAt, cellOrigin, formatMetric, gridLayout, indexHeads, metricDomain, metricFraction, moveSelection, topHeads } from '../../webview/logic/gridLogic';
import { axisTicks, cellRect, clampView, colorize, fullView, heatmapLayout, hoverCell, panView, poolPattern, zoomView } from '../../webview/logic/heatmapMath';
import { sanitizeUiState, DEFAULT_UI_STATE } from '../../webview/logic/uiState';
import { tensorValues, validateToWebview } from '../../webview/logic/validate';
import { visibleToken, truncateLabel } from '../../webview/logic/tokenText';
import { Messenger, RequestError } from '../../src/shared/messenger';
import { fixturePattern, fixtureTokens, makeFixture, patternMetrics } from '../fixtures/webviewFixtures';
import { changedKeys, partsFor, RenderBatch, type RenderPart } from '../../webview/logic/renderPlan';
import { sameGridProp } from '../../webview/logic/gridLogic';

const near = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// ------------------------------------------------------------------ color scale
test('color scale: max ignores NaN, negatives and (with the sink discount) token 0 and special tokens', () => {
  const v = new Float32Array([0.6, NaN, 0.2, -1, 0.3]);
  assert.equal(scaleMax(v), Math.fround(0.6));
  const mask = sinkMask(5, [true, false, false, false, true], true);
  assert.deepEqual([...mask], [1, 0, 0, 0, 1]);
  assert.equal(scaleMax(v, mask), Math.fround(0.2));
  assert.deepEqual([...sinkMask(3, [false, true, false], false)], [0, 0, 0]);
  assert.deepEqual([...sinkMask(3, null, true)], [1, 0, 0]);
  assert.equal(scaleMax(new Float32Array(0)), 0);
  assert.equal(scaleMax(new Float32Array([NaN, NaN])), 0);
});

test('color scale: fractions for linear/sqrt/log, saturating above max, 0 for NaN/negative/zero max', () => {
  near(scaleFraction(0.25, 1, 'linear'), 0.25);
  near(scaleFraction(0.25, 1, 'sqrt'), 0.5);
  near(scaleFraction(1, 1, 'log'), 1);
  near(scaleFraction(0.01, 1, 'log'), Math.log(1.99) / Math.log(100));
  assert.equal(scaleFraction(0.9, 0.3, 'linear'), 1, 'a discounted sink saturates');
  for (const v of [NaN, -0.1, 0]) assert.equal(scaleFraction(v, 1, 'sqrt'), 0);
  for (const m of [0, -1, NaN, Infinity]) assert.equal(scaleFraction(0.5, m, 'linear'), 0);
  // Monotone in v for every kind.
  for (const kind of ['linear', 'sqrt', 'log'] as const) {
    let last = -1;
    for (let i = 0; i <= 100; i++) {
      const f = scaleFraction(i / 100, 1, kind);
      assert.ok(f >= last && f <= 1, `${kind} monotone`);
      last = f;
    }
  }
});

test('color scale: levels — all-zero input gives no tint; tiny nonzero values get level 1; sink discount saturates', () => {
  assert.deepEqual([...scaleLevels(new Float32Array(4), 0, 'linear', 8)], [0, 0, 0, 0]);
  const v = new Float32Array([0.9, 0.1, 0.05, 1e-6, 0, NaN]);
  const mask = sinkMask(v.length, null, true);
  const levels = scaleLevels(v, scaleMax(v, mask), 'linear', 8);
  assert.deepEqual([...levels], [8, 8, 4, 1, 0, 0]);
});

test('formatProb', () => {
  assert.equal(formatProb(0), '0%');
  assert.equal(formatProb(0.5), '50.0%');
  assert.equal(formatProb(0.0123), '1.23%');
  assert.equal(formatProb(NaN), 'n/a');
  assert.equal(formatProb(1e-7), '<0.01%');
});

test('colors: CSS parsing, mixing, ramps and contrast', () => {
  assert.deepEqual(parseCssColor('#fff'), [255, 255, 255, 1]);
  assert.deepEqual(parseCssColor('#1f1f1f'), [31, 31, 31, 1]);
  assert.deepEqual(parseCssColor('#00000080'), [0, 0, 0, 128 / 255]);
  assert.deepEqual(parseCssColor('rgb(1, 2, 3)'), [1, 2, 3, 1]);
  assert.deepEqual(parseCssColor('rgba(10, 20, 30, 0.5)'), [10, 20, 30, 0.5]);
  assert.deepEqual(parseCssColor('rgb(10 20 30 / 25%)'), [10, 20, 30, 0.25]);
  for (const bad of ['', 'red', '#12', 'rgb(1,2)', 'rgb(a,b,c)', '#ggg']) assert.equal(parseCssColor(bad), null, bad);
  assert.deepEqual(mix([0, 0, 0, 1], [255, 255, 255, 1], 0.5), [128, 128, 128, 1]);
  assert.deepEqual(mix([0, 0, 0, 1], [255, 255, 255, 1], NaN), [0, 0, 0, 1]);
  assert.deepEqual(rampAt([[0, 0, 0, 1], [100, 0, 0, 1], [100, 100, 0, 1]], 0.75), [100, 50, 0, 1]);
  const ramp = rampUint32([[0, 0, 0, 1], [255, 0, 0, 1]], 3);
  assert.equal(ramp[0], packABGR([0, 0, 0, 1]));
  assert.equal(ramp[2], 0xff0000ff, 'opaque red as little-endian ABGR');
  near(contrast([0, 0, 0, 1], [255, 255, 255, 1]), 21, 1e-6);
});

// ------------------------------------------------------------------ head grid
const hv = (layer: number, head: number, m: Partial<HeadView> = {}): HeadView => ({ layer, head, entropy: null, sink: null, prevToken: null, selfAttn: null, induction: null, duplicateToken: null, scale: 1, ...m } as HeadView);

test('grid: metric domains — fractions on 0..1, entropy on 0..max, nulls counted and skipped', () => {
  const heads = [hv(0, 0, { sink: 0.2, entropy: 1.5 }), hv(0, 1, { sink: 0.8, entropy: 3 }), hv(1, 0, { sink: null, entropy: NaN as unknown as number })];
  const d = metricDomain(heads, 'sink');
  assert.deepEqual(d, { lo: 0, hi: 1, min: 0.2, max: 0.8, missing: 1 });
  const e = metricDomain(heads, 'entropy');
  assert.equal(e.hi, 3);
  assert.equal(e.missing, 1, 'NaN counts as missing');
  assert.equal(metricFraction(1.5, e), 0.5);
  assert.equal(metricFraction(null, e), null);
  assert.equal(metricFraction(7, d), 1, 'clamped');
  const none = metricDomain([hv(0, 0)], 'induction');
  assert.deepEqual(none, { lo: 0, hi: 1, min: null, max: null, missing: 1 });
  assert.deepEqual(metricDomain([hv(0, 0, { entropy: 0 })], 'entropy').hi, 1, 'all-zero entropy keeps a usable domain');
  assert.equal(formatMetric('sink', 0.123), '12.3%');
  assert.equal(formatMetric('entropy', 2.345), '2.35 nats');
  assert.equal(formatMetric('induction', null), 'n/a');
  assert.equal(formatMetric('sink', 1, true), '100%');
});

test('grid: top heads and indexing ignore nulls and out-of-range heads', () => {
  const heads = [hv(0, 0, { induction: 0.1 }), hv(1, 1, { induction: 0.9 }), hv(1, 0, { induction: 0.9 }), hv(0, 1), hv(5, 5, { induction: 1 })];
  assert.deepEqual(topHeads(heads.slice(0, 4), 'induction', 2).map((h) => `${h.layer}.${h.head}`), ['1.0', '1.1']);
  const idx = indexHeads(heads, 2, 2);
  assert.equal(idx.length, 4);
  assert.equal(idx[3]!.induction, 0.9);
  assert.equal(idx.filter(Boolean).length, 4, 'L5H5 dropped');
});

test('grid: layout, hit testing (gaps and gutters miss) and keyboard moves', () => {
  const g = gridLayout(30 + 8 * 32 + 2, 4, 8, { left: 30, top: 16, gap: 2, minCell: 12, maxCell: 40 });
  assert.equal(g.cell, 30);
  assert.deepEqual(cellAt(30 + 0.5, 16 + 0.5, g, 4, 8), { layer: 0, head: 0 });
  assert.deepEqual(cellAt(30 + 32 * 3 + 29, 16 + 32 * 2 + 5, g, 4, 8), { layer: 2, head: 3 });
  assert.equal(cellAt(30 + 30.5, 20, g, 4, 8), null, 'gap');
  assert.equal(cellAt(10, 20, g, 4, 8), null, 'gutter');
  assert.equal(cellAt(30 + 32 * 8 + 1, 20, g, 4, 8), null, 'past the last head');
  assert.equal(cellAt(40, 16 + 32 * 4 + 1, g, 4, 8), null, 'past the last layer');
  assert.deepEqual(cellOrigin({ layer: 1, head: 2 }, g), { x: 30 + 64, y: 16 + 32 });
  // Narrow: cells stop at the minimum and the grid overflows.
  const narrow = gridLayout(100, 32, 32, { minCell: 12 });
  assert.equal(narrow.cell, 12);
  assert.ok(narrow.width > 100);
  assert.deepEqual(moveSelection({ layer: 1, head: 1 }, 'ArrowLeft', 4, 8), { layer: 1, head: 0 });
  assert.deepEqual(moveSelection({ layer: 1, head: 0 }, 'ArrowLeft', 4, 8), { layer: 1, head: 0 }, 'clamped');
  assert.deepEqual(moveSelection({ layer: 3, head: 7 }, 'ArrowDown', 4, 8), { layer: 3, head: 7 });
  assert.deepEqual(moveSelection({ layer: 2, head: 3 }, 'End', 4, 8), { layer: 2, head: 7 });
  assert.deepEqual(moveSelection({ layer: 2, head: 3 }, 'PageUp', 4, 8), { layer: 0, head: 3 });
  assert.deepEqual(moveSelection(null, 'ArrowRight', 4, 8), { layer: 0, head: 1 });
  assert.equal(moveSelection({ layer: 0, head: 0 }, 'a', 4, 8), null);
  assert.equal(moveSelection(null, 'ArrowUp', 0, 0), null);
});

// ------------------------------------------------------------------ heatmap
test('heatmap: layout snaps to device pixels and whole pixels per token', () => {
  const l = heatmapLayout(500, 1000, 2, 60, { left: 40, bottom: 20, top: 4, right: 4 });
  // avail = min(500 - 44, 1000 - 24) = 456 CSS px = 912 device px → 15 px per token → 900.
  assert.equal(l.devSize, 900);
  assert.equal(l.size, 450);
  assert.equal(l.res, 60);
  assert.equal(l.cssHeight, 4 + 450 + 20);
  const big = heatmapLayout(500, 1000, 1.5, 2000, { left: 40, bottom: 20 });
  assert.equal(big.res, big.devSize, 'more tokens than device pixels: pooled to the plot size');
  assert.ok(big.res < 2000);
  assert.ok(Number.isInteger(big.devSize));
  near(big.size * 1.5, big.devSize);
});

test('heatmap: hover maps mouse → (q, k) with DPR and scaling; above the diagonal and outside → none', () => {
  const T = 10;
  const l = heatmapLayout(40 + 200 + 4, 1000, 2, T, { left: 40, bottom: 20, top: 4, right: 4 });
  assert.equal(l.size, 200);
  // cell size 20 CSS px (40 device px at DPR 2); CSS coordinates in, independent of DPR.
  assert.deepEqual(hoverCell(40 + 5, 4 + 5, l, T), { q: 0, k: 0 });
  assert.deepEqual(hoverCell(40 + 20 * 3 + 1, 4 + 20 * 7 + 19.9, l, T), { q: 7, k: 3 });
  assert.deepEqual(hoverCell(40 + 199.9, 4 + 199.9, l, T), { q: 9, k: 9 });
  assert.equal(hoverCell(40 + 20 * 5 + 1, 4 + 20 * 4 + 1, l, T), null, 'k > q: causal mask');
  assert.equal(hoverCell(39, 50, l, T), null, 'left gutter');
  assert.equal(hoverCell(40 + 200, 4 + 199, l, T), null, 'right edge is exclusive');
  assert.equal(hoverCell(60, 4 + 200.5, l, T), null, 'bottom gutter');
  assert.equal(hoverCell(60, 60, l, 0), null, 'no tokens');
  // Scaled down: 2,000 tokens in a 300 px plot at DPR 1.
  const l2 = heatmapLayout(344, 1000, 1, 2000, { left: 40, bottom: 20, top: 4, right: 4 });
  assert.equal(l2.size, 300);
  assert.deepEqual(hoverCell(40 + 150, 4 + 299.99, l2, 2000), { q: 1999, k: 1000 });
  const r = cellRect(7, 3, l, T);
  assert.deepEqual(r, { x: 40 + 60, y: 4 + 140, w: 20, h: 20 });
});

test('heatmap: pooling keeps maxima, marks blocks above the diagonal, and excludes sink keys from the max', () => {
  const T = 4;
  // Row-major [q][k]; the upper triangle holds garbage that must be ignored.
  const p = new Float32Array([1, 9, 9, 9, 0.5, 0.5, 9, 9, 0.7, 0.1, 0.2, 9, 0.4, 0.3, NaN, -1]);
  const full = poolPattern(p, T, 4);
  assert.equal(full.res, 4);
  assert.equal(full.cells[1], -1, 'above the diagonal');
  assert.equal(full.cells[3 * 4 + 2], 0, 'NaN draws as 0');
  assert.equal(full.cells[3 * 4 + 3], 0, 'negative draws as 0');
  assert.equal(full.max, 1);
  const excl = poolPattern(p, T, 4, new Uint8Array([1, 0, 0, 0]));
  assert.equal(excl.max, 0.5, 'sink column left out of the max');
  assert.equal(excl.cells[0], 1, 'but still drawn');
  const half = poolPattern(p, T, 2);
  assert.deepEqual([...half.cells].map((x) => Math.round(x * 10) / 10), [1, -1, 0.7, 0.2]);
  // A sharp previous-token stripe survives 10× downsampling.
  const N = 100;
  const prev = new Float32Array(N * N);
  for (let q = 1; q < N; q++) prev[q * N + q - 1] = 1;
  const pooled = poolPattern(prev, N, 10);
  for (let b = 0; b < 10; b++) assert.equal(pooled.cells[b * 10 + b], 1, `diagonal block ${b}`);
  assert.equal(pooled.cells[5 * 10 + 2], 0);
});

test('heatmap: zoomed views — hover, pooling, zoom about the pointer, pan, clamping, ticks', () => {
  const T = 100;
  const l = heatmapLayout(40 + 200 + 4, 1000, 1, 20, { left: 40, bottom: 20, top: 4, right: 4 });
  const v = { q0: 50, k0: 30, n: 20 };
  // 10 px per token; the top-left cell is (q 50, k 30).
  assert.deepEqual(hoverCell(40 + 1, 4 + 1, l, T, v), { q: 50, k: 30 });
  assert.deepEqual(hoverCell(40 + 195, 4 + 195, l, T, v), { q: 69, k: 49 });
  assert.equal(hoverCell(40 + 195, 4 + 1, { ...l }, T, { q0: 0, k0: 30, n: 20 }), null, 'k 49 > q 0');
  assert.deepEqual(cellRect(52, 31, l, T, v), { x: 40 + 10, y: 4 + 20, w: 10, h: 10 });
  // Pooling a window reads only inside it.
  const p = new Float32Array(T * T);
  for (let q = 1; q < T; q++) p[q * T + q - 1] = 1;
  p[60 * T + 35] = 0.5;
  const win = poolPattern(p, T, 20, null, v);
  assert.equal(win.cells[10 * 20 + 5], 0.5);
  assert.equal(win.cells[0], 0, 'row 50, key 30: causal, zero');
  const diag = poolPattern(p, T, 10, null, { q0: 40, k0: 40, n: 20 });
  for (let b = 0; b < 10; b++) assert.equal(diag.cells[b * 10 + b], 1, `previous-token stripe in block ${b}`);
  assert.equal(diag.cells[9], -1, 'top-right block is above the diagonal');
  const above = poolPattern(p, T, 4, null, { q0: 0, k0: 80, n: 20 });
  assert.ok(above.cells.every((c) => c === -1) && above.max === 0, 'a view entirely above the diagonal is void');
  // Zoom keeps the token under the pointer; out to the full pattern; clamped inside.
  const z = zoomView(fullView(T), T, 0.5, 0.5, 0.5);
  assert.deepEqual(z, { q0: 25, k0: 25, n: 50 });
  assert.deepEqual(zoomView(z, T, 4, 0.5, 0.5), fullView(T));
  assert.deepEqual(zoomView(fullView(T), T, 0.01, 1, 1), { q0: 84, k0: 84, n: 16 }, 'minimum window, clamped at the end');
  assert.deepEqual(panView({ q0: 10, k0: 10, n: 20 }, T, 100, -50, 200), { q0: 15, k0: 0, n: 20 });
  assert.deepEqual(clampView({ q0: -5, k0: 500, n: 1000 }, T), fullView(T));
  assert.deepEqual(clampView({ q0: 3, k0: 3, n: 4 }, 8), { q0: 0, k0: 0, n: 8 }, 'tiny prompts: the whole pattern');
  assert.deepEqual(axisTicks(200, 4, 1000), [1000, 1050, 1100, 1150]);
});

test('heatmap: colorize through the ramp; void cells get the void color', () => {
  const ramp = rampUint32([[0, 0, 0, 1], [255, 255, 255, 1]], 256);
  const out = new Uint32Array(4);
  colorize({ res: 2, cells: new Float32Array([1, -1, 0.25, 0]), max: 1 }, 'sqrt', ramp, 7, out);
  assert.equal(out[0], ramp[255]);
  assert.equal(out[1], 7);
  assert.equal(out[2], ramp[128], 'sqrt(0.25) = 0.5');
  assert.equal(out[3], ramp[0]);
  colorize({ res: 1, cells: new Float32Array([0.3]), max: 0 }, 'linear', ramp, 7, out);
  assert.equal(out[0], ramp[0], 'zero max: all low');
  assert.deepEqual(axisTicks(2000, 6), [0, 500, 1000, 1500]);
  assert.deepEqual(axisTicks(60, 6), [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(axisTicks(1, 6), [0]);
});

// ------------------------------------------------------------------ messenger
test('messenger: events and requests are numbered; replies resolve by inReplyTo; error replies reject', async () => {
  const sent: Envelope<FromWebview>[] = [];
  const m = new Messenger<ToWebview, FromWebview>((e) => sent.push(e), { errorOf: (b) => (b.type === 'error' ? b.message : undefined), timeoutMs: 0 });
  m.sendEvent({ type: 'ready', version: 1 });
  const a = m.sendRequest({ type: 'requestPattern', head: { layer: 0, head: 1 } });
  const b = m.sendRequest({ type: 'requestPattern', head: { layer: 1, head: 0 } });
  assert.deepEqual(sent.map((e) => e.messageId), [1, 2, 3]);
  assert.equal(m.pendingCount, 2);
  // Replies out of order; an event without inReplyTo is not consumed; an unknown inReplyTo neither.
  assert.equal(m.receive({ messageId: 10, body: { type: 'error', message: 'not a reply' } }), false);
  assert.equal(m.receive({ messageId: 11, inReplyTo: 99, body: { type: 'error', message: 'stale' } }), false);
  assert.equal(m.receive({ messageId: 12, inReplyTo: 3, body: { type: 'error', message: 'no such head' } }), true);
  const pattern: ToWebview = { type: 'pattern', runId: 1, head: { layer: 0, head: 1 }, values: { dims: [1, 1], data: new ArrayBuffer(4) } };
  assert.equal(m.receive({ messageId: 13, inReplyTo: 2, body: pattern }), true);
  assert.equal(await a, pattern);
  await assert.rejects(b, (e: unknown) => e instanceof RequestError && e.code === 'error' && e.message === 'no such head');
  assert.equal(m.pendingCount, 0);
  assert.equal(m.receive({ messageId: 14, inReplyTo: 2, body: pattern }), false, 'a second reply is an event');
});

test('messenger: replies (the host side) carry inReplyTo and share the numbering; nothing after dispose', () => {
  const sent: Envelope<ToWebview>[] = [];
  const m = new Messenger<FromWebview, ToWebview>((e) => sent.push(e));
  assert.equal(m.reply(7, { type: 'error', message: 'bad' }), 1);
  assert.equal(m.sendEvent({ type: 'state', state: { busy: null } }), 2);
  assert.deepEqual(sent, [
    { messageId: 1, inReplyTo: 7, body: { type: 'error', message: 'bad' } },
    { messageId: 2, body: { type: 'state', state: { busy: null } } },
  ]);
  m.dispose();
  m.reply(8, { type: 'error', message: 'late' });
  assert.equal(sent.length, 2);
});

test('messenger: timeouts and dispose reject pending requests', async () => {
  const m = new Messenger<ToWebview, FromWebview>(() => {}, { timeoutMs: 5 });
  await assert.rejects(m.sendRequest({ type: 'reset' }), (e: unknown) => e instanceof RequestError && e.code === 'timeout');
  const m2 = new Messenger<ToWebview, FromWebview>(() => {}, { timeoutMs: 0 });
  const p = m2.sendRequest({ type: 'reset' });
  m2.dispose();
  await assert.rejects(p, (e: unknown) => e instanceof RequestError && e.code === 'disposed');
  await assert.rejects(m2.sendRequest({ type: 'reset' }), (e: unknown) => e instanceof RequestError && e.code === 'disposed');
});

// ------------------------------------------------------------------ validation
const fx = makeFixture();
const env = (body: unknown, extra: Record<string, unknown> = {}): unknown => ({ messageId: 1, ...extra, body });
const clone = <T>(x: T): T => structuredClone(x);

test('validation: accepts the fixture init, partial states, overlays, patterns and errors', () => {
  assert.ok(validateToWebview(env({ type: 'init', state: fx.state })).ok);
  assert.ok(validateToWebview(env({ type: 'state', state: { busy: 'Running…' } })).ok);
  assert.ok(validateToWebview(env({ type: 'state', state: { settings: fx.state.settings, selected: null } })).ok);
  const T = fx.state.run!.tokens.length;
  assert.ok(validateToWebview(env({ type: 'overlay', runId: 1, token: 3, direction: 'to', values: { dims: [T], data: new ArrayBuffer(4 * T) } })).ok);
  assert.ok(validateToWebview(env({ type: 'overlay', runId: 1, token: 3, direction: 'to', values: { dims: [T], data: new Float32Array(T) } })).ok, 'typed array view');
  assert.ok(validateToWebview(env({ type: 'pattern', runId: 1, head: { layer: 0, head: 0 }, values: { dims: [3, 3], data: new ArrayBuffer(36) } }, { inReplyTo: 4 })).ok);
  assert.ok(validateToWebview(env({ type: 'error', message: 'boom' })).ok);
  const s = clone(fx.state);
  s.run!.heads[0]!.induction = NaN as unknown as null;
  assert.ok(validateToWebview(env({ type: 'init', state: s })).ok, 'NaN metric reads as null');
});

test('validation: rejects malformed messages with a path to the problem', () => {
  const bad = (raw: unknown, pathPart: string): void => {
    const r = validateToWebview(raw);
    assert.equal(r.ok, false, JSON.stringify(raw)?.slice(0, 80));
    if (!r.ok) assert.ok(r.error.includes(pathPart), `${r.error} should mention ${pathPart}`);
  };
  bad(null, 'message');
  bad({ body: { type: 'error', message: 'x' } }, 'messageId');
  bad({ messageId: 1.5, body: { type: 'error', message: 'x' } }, 'messageId');
  bad(env({ type: 'error', message: 'x' }, { inReplyTo: 'a' }), 'inReplyTo');
  bad(env({ type: 'nope' }), 'body.type');
  bad(env('init'), 'body');
  bad(env({ type: 'error' }), 'body.message');
  const noRun = clone(fx.state) as Partial<PanelState>;
  delete noRun.run;
  bad(env({ type: 'init', state: noRun }), 'body.state.run');
  const s1 = clone(fx.state);
  (s1.run!.tokens[3] as unknown as { start: number }).start = -1;
  bad(env({ type: 'init', state: s1 }), 'body.state.run.tokens[3].start');
  const s2 = clone(fx.state);
  s2.run!.tokens[2]!.end = s2.run!.prompt.length + 5;
  bad(env({ type: 'init', state: s2 }), 'tokens[2].end');
  const s3 = clone(fx.state);
  (s3.run!.heads[5] as unknown as { scale: string }).scale = '1';
  bad(env({ type: 'init', state: s3 }), 'heads[5].scale');
  const s4 = clone(fx.state);
  (s4.settings as unknown as { metric: string }).metric = 'retrieval';
  bad(env({ type: 'init', state: s4 }), 'settings.metric');
  bad(env({ type: 'state', state: { busy: 3 } }), 'body.state.busy');
  bad(env({ type: 'state', state: { selected: { layer: -1, head: 0 } } }), 'selected.layer');
  bad(env({ type: 'state', state: { interventions: { scales: [], emphasis: { start: 0, end: 1, alpha: 0.01, heads: 'some', text: '' }, sink: null } } }), 'emphasis.heads');
  bad(env({ type: 'overlay', runId: 1, token: 0, direction: 'up', values: { dims: [2], data: new ArrayBuffer(8) } }), 'direction');
  bad(env({ type: 'overlay', runId: 1, token: 0, direction: 'from', values: { dims: [3], data: new ArrayBuffer(8) } }), 'body.values.data');
  bad(env({ type: 'overlay', runId: 1, token: 0, direction: 'from', values: { dims: [2], data: [0, 1] } }), 'body.values.data');
  bad(env({ type: 'overlay', runId: 1, token: 0, direction: 'from', values: { dims: [2, 1], data: new ArrayBuffer(8) } }), 'body.values.dims');
  bad(env({ type: 'pattern', runId: 1, head: { layer: 0, head: 0 }, values: { dims: [2, 3], data: new ArrayBuffer(24) } }), 'square');
  bad(env({ type: 'pattern', runId: 1, head: { layer: 0 }, values: { dims: [1, 1], data: new ArrayBuffer(4) } }), 'body.head.head');
});

test('tensorValues: ArrayBuffer, aligned and misaligned views', () => {
  const f = new Float32Array([1, 2, 3]);
  assert.deepEqual([...tensorValues({ dims: [3], data: f.buffer })], [1, 2, 3]);
  const bytes = new Uint8Array(13);
  bytes.set(new Uint8Array(f.buffer), 1);
  const misaligned = new Uint8Array(bytes.buffer, 1, 12);
  assert.deepEqual([...tensorValues({ dims: [3], data: misaligned as unknown as ArrayBuffer })], [1, 2, 3]);
  const aligned = new Uint8Array(f.buffer, 4, 8);
  assert.deepEqual([...tensorValues({ dims: [2], data: aligned as unknown as ArrayBuffer })], [2, 3]);
});

// ------------------------------------------------------------------ UI state, token text
test('UI state: sanitized field by field, defaults for garbage', () => {
  assert.deepEqual(sanitizeUiState(undefined), DEFAULT_UI_STATE);
  assert.deepEqual(sanitizeUiState({ v: 2, heatmapScale: 'log' }), DEFAULT_UI_STATE);
  const s = sanitizeUiState({
    v: 1,
    extraSelection: ['1.2', 'x', 3, '10.20'],
    selected: { layer: 1, head: -2 },
    overlayScale: 'log',
    heatmapScale: 'cubic',
    heatmapDiscountSink: false,
    collapsed: { pattern: true, heads: 'yes' },
    scrollTop: -5,
    pageScrollTop: 30,
    promptScrollTop: 120,
    alpha: 3,
    emphasisHeads: 'all',
    sinkHeads: 'none',
  });
  assert.deepEqual(s.extraSelection, ['1.2', '10.20']);
  assert.equal(s.selected, null);
  assert.equal(s.overlayScale, 'log');
  assert.equal(s.heatmapScale, 'sqrt');
  assert.equal(s.heatmapDiscountSink, false);
  assert.deepEqual(s.collapsed, { pattern: true });
  assert.equal(s.scrollTop, 0);
  assert.equal(s.pageScrollTop, 30);
  assert.equal(s.promptScrollTop, 120);
  assert.equal(s.alpha, 0.01);
  assert.equal(s.emphasisHeads, 'all');
  assert.equal(s.sinkHeads, 'selected');
  assert.deepEqual(sanitizeUiState({ v: 1, selected: { layer: 2, head: 5 } }).selected, { layer: 2, head: 5 });
});

test('token text: visible whitespace and truncation', () => {
  assert.equal(visibleToken(' the'), '·the');
  assert.equal(visibleToken('\n'), '↵');
  assert.equal(visibleToken('\r\n\t'), '↵→');
  assert.equal(visibleToken(''), '∅');
  assert.equal(truncateLabel('abcdef', 4), 'abc…');
  assert.equal(truncateLabel('abc', 4), 'abc');
});

// ------------------------------------------------------------------ fixture
test('fixture: tokens tile the prompt, BOS is special, metrics match the engine, roles show', () => {
  const { prompt, tokens } = fixtureTokens(60);
  assert.equal(tokens.length, 60);
  assert.equal(tokens[0]!.special, true);
  for (let i = 1; i < tokens.length; i++) assert.equal(prompt.slice(tokens[i]!.start, tokens[i]!.end), tokens[i]!.text);
  const ids = tokens.map((t) => t.id);
  const p = fixturePattern('induction', ids, 7);
  const T = ids.length;
  for (let q = 0; q < T; q++) {
    let s = 0;
    for (let k = 0; k < T; k++) s += p[q * T + k]!;
    near(s, 1, 1e-5);
    for (let k = q + 1; k < T; k++) assert.equal(p[q * T + k], 0);
  }
  const ours = patternMetrics(p, ids);
  const engine = headMetricsFromProbs(p, 1, T, ids)[0]!;
  for (const m of ['entropy', 'sink', 'prevToken', 'selfAttn', 'induction', 'duplicateToken'] as const) near(ours[m]!, engine[m]!, 1e-5);
  const heads = makeFixture().state.run!.heads;
  const get = (l: number, h: number): HeadView => heads.find((x) => x.layer === l && x.head === h)!;
  assert.ok(get(1, 3).prevToken! > 0.5, 'L1H3 is a previous-token head');
  assert.ok(get(2, 5).induction! > 0.5, 'L2H5 is an induction head');
  assert.ok(get(1, 0).sink! > 0.5, 'L1H0 is a sink head');
});

// ------------------------------------------------------------------ render plan (what a state message re-renders)
test('render plan: a re-run\'s messages re-render only the parts they change', () => {
  const { state } = makeFixture();
  // the same values in new objects (as structured clone delivers them) change nothing
  const same = JSON.parse(JSON.stringify(state)) as PanelState;
  assert.deepEqual(changedKeys(state, { interventions: same.interventions, model: same.model, selected: same.selected, watch: same.watch, settings: same.settings }), []);
  assert.deepEqual(changedKeys(state, { run: same.run }), [], 'a run is the same run by its id');
  // busy: the toolbar only
  assert.deepEqual([...partsFor(changedKeys(state, { busy: 'Running 60 tokens…', error: null }))], ['toolbar']);
  // a new run: everything that shows it, not the overlay settings
  const run = { ...state.run!, runId: state.run!.runId + 1 };
  assert.deepEqual(changedKeys(state, { run, model: same.model, error: null }), ['run']);
  assert.deepEqual([...partsFor(['run'])].sort(), ['grid', 'pattern', 'run', 'steering', 'toolbar', 'watch']);
  // a mask: the grid (its notes) and the steering controls
  const interventions = { ...state.interventions, scales: [{ layer: 0, head: 0, value: 0 }] };
  assert.deepEqual([...partsFor(changedKeys(state, { interventions }))].sort(), ['grid', 'steering']);
  // fields the panel does not know are ignored, not rendered
  assert.deepEqual(changedKeys(state, { bogus: 1 } as unknown as Partial<PanelState>), []);
});

test('render plan: the batch renders once per scheduled callback, in page order; flush renders what is pending now', () => {
  const scheduled: (() => void)[] = [];
  const renders: RenderPart[][] = [];
  const b = new RenderBatch((cb) => scheduled.push(cb), (parts) => renders.push([...parts]));
  b.mark(['watch', 'toolbar']);
  b.mark(['grid', 'toolbar']);
  b.mark([]);
  assert.equal(scheduled.length, 1, 'one callback for the messages of a frame');
  assert.deepEqual(renders, []);
  scheduled.shift()!();
  assert.deepEqual(renders, [['toolbar', 'grid', 'watch']]);
  b.mark([]);
  assert.equal(scheduled.length, 0, 'nothing to render: nothing scheduled');
  b.mark(['run']);
  b.flush();
  assert.deepEqual(renders[1], ['run']);
  assert.equal(b.isPending, false);
  scheduled.shift()!();
  assert.equal(renders.length, 2, 'a flushed batch is not rendered again');
});

test('head grid props: the selection and extra heads by their heads, notes by content, the rest by identity', () => {
  assert.ok(sameGridProp('selected', { layer: 1, head: 2 }, { layer: 1, head: 2 }));
  assert.ok(sameGridProp('selected', null, null));
  assert.ok(!sameGridProp('selected', null, { layer: 0, head: 0 }));
  assert.ok(!sameGridProp('selected', { layer: 1, head: 2 }, { layer: 2, head: 1 }));
  assert.ok(sameGridProp('extra', new Set(['1.2', '0.3']), new Set(['0.3', '1.2'])));
  assert.ok(!sameGridProp('extra', new Set(['1.2']), new Set(['1.2', '0.3'])));
  assert.ok(!sameGridProp('extra', new Set(['1.2']), new Set(['0.3'])));
  assert.ok(sameGridProp('notes', new Map([['0.1', ['PASTA α 0.1']]]), new Map([['0.1', ['PASTA α 0.1']]])));
  assert.ok(!sameGridProp('notes', new Map([['0.1', ['PASTA α 0.1']]]), new Map([['0.1', ['sink ×0.5']]])));
  const data = makeFixture().state.run!.heads;
  assert.ok(sameGridProp('data', data, data));
  assert.ok(!sameGridProp('data', data, [...data]), 'a new heads array is a new run');
});
