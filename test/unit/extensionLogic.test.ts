// View logic of the extension host (no vscode API): token lookup, aggregation weights, overlay
// quantisation, tree ordering, head ids, and validation of webview messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeadView, TokenView } from '../../src/shared/protocol';
import { busyStatusText, formatScale, orderHeads, parseHeadId, refreshesHeadsView, runProgressDelayMs, runProgressStep, samePaint } from '../../src/extension/viewLogic';
import { aggregationWeights, overlayValues, quantize, tokenAtOffset, OVERLAY_LEVELS } from '../../src/shared/overlay';
import { parseFromWebview } from '../../src/extension/panelMessages';
import { stateDelta, stateSignatures } from '../../src/shared/stateDelta';
import { makeFixture } from '../fixtures/webviewFixtures';

// "<s>Hello world!" tokens: <s> (special, 0..0), "Hello" 0..5, " world" 5..11, "!" 11..12
const toks: TokenView[] = [
  { text: '<s>', start: 0, end: 0, special: true, id: 1 },
  { text: 'Hello', start: 0, end: 5, special: false, id: 2 },
  { text: ' world', start: 5, end: 11, special: false, id: 3 },
  { text: '!', start: 11, end: 12, special: false, id: 4 },
];

test('tokenAtOffset: inside, at boundaries, past the end, never the special token', () => {
  assert.equal(tokenAtOffset(toks, 0), 1);
  assert.equal(tokenAtOffset(toks, 3), 1);
  assert.equal(tokenAtOffset(toks, 5), 2, 'a token owns its first character');
  assert.equal(tokenAtOffset(toks, 10), 2);
  assert.equal(tokenAtOffset(toks, 11), 3);
  assert.equal(tokenAtOffset(toks, 12), 3, 'cursor after the last character');
  assert.equal(tokenAtOffset(toks, 500), 3);
  assert.equal(tokenAtOffset([toks[0]!], 0), undefined);
  // a gap the tokenizer dropped (e.g. a normalizer): belongs to the token before it
  const gap: TokenView[] = [{ text: 'a', start: 0, end: 1, special: false, id: 1 }, { text: 'b', start: 3, end: 4, special: false, id: 2 }];
  assert.equal(tokenAtOffset(gap, 2), 0);
  // 2,000 tokens: binary search agrees with a linear scan
  const many: TokenView[] = Array.from({ length: 2000 }, (_, i) => ({ text: 'ab', start: 2 * i, end: 2 * i + 2, special: false, id: i }));
  for (const off of [0, 1, 2, 777, 3999, 4000]) assert.equal(tokenAtOffset(many, off), Math.min(1999, Math.floor(off / 2)));
});

test('aggregationWeights: mean over enabled heads, one head, one layer, fallback', () => {
  const scales = new Map([['0.1', 0], ['1.0', 2]]);
  assert.deepEqual(Array.from(aggregationWeights(2, 2, scales, 'mean', null)), [1, 0, 1, 1]);
  assert.deepEqual(Array.from(aggregationWeights(2, 2, scales, 'head', { layer: 1, head: 1 })), [0, 0, 0, 1]);
  assert.deepEqual(Array.from(aggregationWeights(2, 2, scales, 'layer', { layer: 0, head: 0 })), [1, 0, 0, 0], 'masked heads of the layer do not count');
  assert.deepEqual(Array.from(aggregationWeights(2, 2, scales, 'head', null)), [1, 0, 1, 1], 'nothing selected: mean');
});

test('overlayValues: row (from) and column (to)', () => {
  const T = 3;
  const agg = Float32Array.from([1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5]);
  assert.deepEqual(Array.from(overlayValues(agg, T, 2, 'from')), [0.2, 0.3, 0.5].map(Math.fround));
  assert.deepEqual(Array.from(overlayValues(agg, T, 0, 'to')), [1, 0.5, 0.2].map(Math.fround));
});

test('quantize: levels relative to the max, sink discount, zeros and NaN', () => {
  const v = Float32Array.from([0.9, 0.05, 0.05, 0]);
  const plain = quantize(v, toks, 'linear', false);
  assert.equal(plain[0], OVERLAY_LEVELS);
  assert.equal(plain[1], 1);
  assert.equal(plain[3], 0);
  const disc = quantize(v, toks, 'linear', true);
  assert.equal(disc[1], OVERLAY_LEVELS, 'without the sink, the rest spans the scale');
  assert.equal(disc[0], OVERLAY_LEVELS, 'the sink is clamped to the top');
  assert.deepEqual(Array.from(quantize(new Float32Array(4), toks, 'sqrt', true)), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(quantize(Float32Array.from([NaN, 0.5, NaN, 0.25]), toks, 'linear', false)), [0, OVERLAY_LEVELS, 0, OVERLAY_LEVELS / 2]);
  const sq = quantize(Float32Array.from([0, 1, 0.25, 0.01]), toks, 'sqrt', false);
  assert.deepEqual(Array.from(sq), [0, 8, 4, 1]);
});

test('orderHeads: layer order, sorted, filtered; nulls last', () => {
  const hv = (head: number, induction: number | null): HeadView => ({ layer: 0, head, induction, entropy: 1, sink: 0, prevToken: 0, selfAttn: 0, duplicateToken: null, scale: 1 });
  const heads = [hv(0, 0.1), hv(1, null), hv(2, 0.7), hv(3, 0.4), { ...hv(0, 0.9), layer: 1 }];
  assert.deepEqual(orderHeads(heads, 0, { metric: 'induction', sort: false, minValue: null }).map((h) => h.head), [0, 1, 2, 3]);
  assert.deepEqual(orderHeads(heads, 0, { metric: 'induction', sort: true, minValue: null }).map((h) => h.head), [2, 3, 0, 1]);
  assert.deepEqual(orderHeads(heads, 0, { metric: 'induction', sort: true, minValue: 0.3 }).map((h) => h.head), [2, 3]);
});

test('parseHeadId and formatScale', () => {
  assert.deepEqual(parseHeadId('L2H5', 4, 8), { layer: 2, head: 5 });
  assert.deepEqual(parseHeadId(' l1 h0 ', 4, 8), { layer: 1, head: 0 });
  assert.deepEqual(parseHeadId('3.7', 4, 8), { layer: 3, head: 7 });
  assert.equal(parseHeadId('4.0', 4, 8), undefined);
  assert.equal(parseHeadId('L1', 4, 8), undefined);
  assert.equal(formatScale(0), 'masked');
  assert.equal(formatScale(1), '');
  assert.equal(formatScale(1.5), '×1.5');
});

test('parseFromWebview: accepts each well-formed message, rejects malformed ones', () => {
  const ok = (body: unknown) => {
    const r = parseFromWebview({ messageId: 7, body });
    assert.ok(r.ok, JSON.stringify(body));
    return r.value.body;
  };
  assert.deepEqual(ok({ type: 'ready', version: 1 }), { type: 'ready', version: 1 });
  assert.deepEqual(ok({ type: 'selectHead', head: { layer: 1, head: 2 } }), { type: 'selectHead', head: { layer: 1, head: 2 } });
  assert.deepEqual(ok({ type: 'setScale', heads: [{ layer: 0, head: 0 }], value: 2.5 }), { type: 'setScale', heads: [{ layer: 0, head: 0 }], value: 2.5 });
  assert.deepEqual(ok({ type: 'emphasizeSelection', alpha: 0.01, heads: 'all' }), { type: 'emphasizeSelection', alpha: 0.01, heads: 'all' });
  assert.deepEqual(ok({ type: 'setSettings', settings: { metric: 'sink', direction: 'to' } }), { type: 'setSettings', settings: { metric: 'sink', direction: 'to' } });
  assert.deepEqual(ok({ type: 'reset', extra: 1 }), { type: 'reset' });
  const bad = (raw: unknown, re: RegExp) => {
    const r = parseFromWebview(raw);
    assert.equal(r.ok, false, JSON.stringify(raw));
    assert.match((r as { error: string }).error, re);
  };
  bad(null, /messageId/);
  bad({ body: { type: 'reset' } }, /messageId/);
  bad({ messageId: 1, body: { type: 'selectHead', head: { layer: -1, head: 0 } } }, /malformed selectHead/);
  bad({ messageId: 1, body: { type: 'selectHead', head: { layer: 1.5, head: 0 } } }, /malformed/);
  bad({ messageId: 1, body: { type: 'setScale', heads: [{ layer: 0, head: 0 }], value: NaN } }, /malformed setScale/);
  bad({ messageId: 1, body: { type: 'setScale', heads: 'all', value: 1 } }, /malformed setScale/);
  bad({ messageId: 1, body: { type: 'setSink', heads: [], value: 0 } }, /malformed setSink/);
  bad({ messageId: 1, body: { type: 'emphasizeSelection', alpha: -1, heads: 'all' } }, /malformed/);
  bad({ messageId: 1, body: { type: 'setSettings', settings: { metric: 'bogus' } } }, /malformed setSettings/);
  bad({ messageId: 1, body: { type: 'revealToken', index: '3' } }, /malformed revealToken/);
  bad({ messageId: 1, body: { type: 'rm -rf' } }, /unknown message type/);
});

test('parseFromWebview: errors say which field is wrong; bad messages keep their messageId for the error reply', () => {
  assert.deepEqual(parseFromWebview({ messageId: 9, body: { type: 'setScale', heads: [{ layer: 0, head: 0 }], value: 101 } }), {
    ok: false,
    error: 'malformed setScale message: body.value: expected a number ≥ 0 and ≤ 100',
    messageId: 9,
  });
  assert.deepEqual(parseFromWebview({ messageId: 9, body: { type: 'setSettings', settings: { aggregation: 'mean', colour: 'red' } } }), {
    ok: false,
    error: 'malformed setSettings message: body.settings.colour: unknown setting; expected aggregation, direction, metric, discountSink',
    messageId: 9,
  });
  const r = parseFromWebview({ messageId: 9, body: { type: 'toggleMask', head: { layer: 2, head: 5000 } } });
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /^malformed toggleMask message: body\.head\.head: expected an integer from 0 to 4095$/);
  assert.equal((r as { messageId?: number }).messageId, 9);
  const set = parseFromWebview({ messageId: 2, body: { type: 'setSettings', settings: { discountSink: false, metric: 'entropy' } } });
  assert.ok(set.ok);
  assert.deepEqual(set.value.body, { type: 'setSettings', settings: { discountSink: false, metric: 'entropy' } });
});

test('busy indicators do not animate: a still status bar icon, and a run notification with a still bar that counts seconds', () => {
  // $(name~spin) is VS Code's spinning-icon syntax; an animated icon repaints the workbench every frame during a run
  assert.equal(busyStatusText('Running 2,048 tokens…'), '$(sync) AttnScope: Running 2,048 tokens…');
  assert.doesNotMatch(busyStatusText('Loading the default model…'), /~spin/);
  // increment 0 (a number) is what makes VS Code draw a determinate bar; without one it animates an infinite bar
  assert.deepEqual(runProgressStep('Running 2,048 tokens…', 1000), { message: 'Running 2,048 tokens… 1 s. Cancel keeps the previous run.', increment: 0 });
  assert.deepEqual(runProgressStep('Running 8,000 tokens…', 12_999, 48_600), { message: 'Running 8,000 tokens… 12 s (the last run took 49 s). Cancel keeps the previous run.', increment: 0 });
  assert.equal(runProgressStep('Running 9 tokens…', 1500, 1234).message, 'Running 9 tokens… 1 s (the last run took 1.2 s). Cancel keeps the previous run.');
  assert.equal(runProgressStep('Running 9 tokens…', 1500, 0).message, 'Running 9 tokens… 1 s. Cancel keeps the previous run.', 'no previous run: no comparison');
});

test('samePaint: an editor is repainted only when its ranges, cursor token or a tint level differ', () => {
  const ranges = ['r0', 'r1', 'r2'];
  const paint = (levels: number[] | null, cursor = 2, r: unknown = ranges) => ({ ranges: levels ? r : null, levels: levels ? Uint8Array.from(levels) : null, cursor: levels ? cursor : -1 });
  assert.equal(samePaint(undefined, paint([0, 1, 2])), false, 'never painted');
  assert.equal(samePaint(undefined, paint(null)), false, 'never painted, even to clear');
  assert.equal(samePaint(paint([0, 1, 2]), paint([0, 1, 2])), true);
  assert.equal(samePaint(paint([0, 1, 2]), paint([0, 1, 3])), false, 'one level');
  assert.equal(samePaint(paint([0, 1, 2]), paint([0, 1, 2], 1)), false, 'the cursor token');
  assert.equal(samePaint(paint([0, 1, 2]), paint([0, 1, 2], 2, [...ranges])), false, 'another run (its own ranges array), same levels');
  assert.equal(samePaint(paint([0, 1, 2]), paint([0, 1])), false, 'another length');
  assert.equal(samePaint(paint([0, 1, 2]), paint(null)), false, 'tint to nothing');
  assert.equal(samePaint(paint(null), paint([0, 0, 0])), false, 'nothing to a (blank) tint');
  assert.equal(samePaint(paint(null), paint(null)), true, 'nothing to nothing');
});

test('stateDelta: the panel host posts only fields whose value the page does not hold', () => {
  const { state } = makeFixture();
  const known = stateSignatures(state);
  const copy = JSON.parse(JSON.stringify(state)) as typeof state;
  // a re-run re-sends interventions, model and notes it already sent: nothing to post
  assert.deepEqual(stateDelta(known, { interventions: copy.interventions, model: copy.model, importanceNote: copy.importanceNote }), {});
  // busy changes, error stays: only busy
  assert.deepEqual(stateDelta(known, { busy: 'Running…', error: null }), { busy: 'Running…' });
  // and it is remembered: the same busy again is nothing
  assert.deepEqual(stateDelta(known, { busy: 'Running…' }), {});
  // a new run (new id) goes; the same run object again does not
  const run = { ...state.run!, runId: state.run!.runId + 7 };
  assert.deepEqual(Object.keys(stateDelta(known, { run, model: copy.model })), ['run']);
  assert.deepEqual(stateDelta(known, { run }), {});
  // a changed value in a nested field is a change
  const masked = { ...copy.interventions, scales: [{ layer: 0, head: 1, value: 0 }] };
  assert.deepEqual(stateDelta(known, { interventions: masked }), { interventions: masked });
  // null and undefined are values too
  assert.deepEqual(stateDelta(known, { run: null }), { run: null });
});

test('run notification delay: 1 s for a new prompt; a re-run at 1.5x its last run, between 1 and 3 s', () => {
  assert.equal(runProgressDelayMs(undefined), 1000);
  assert.equal(runProgressDelayMs(0), 1000);
  assert.equal(runProgressDelayMs(NaN), 1000);
  assert.equal(runProgressDelayMs(400), 1000, 'never before a second');
  assert.equal(runProgressDelayMs(900), 1350, 'a 0.9 s re-run gets none unless it takes 1.35 s');
  assert.equal(runProgressDelayMs(50_000), 3000, 'a long run still offers Cancel within 3 s');
});

test('the Heads view refreshes on what it shows, not on busy, watch or cursor (overlay) changes', () => {
  for (const w of ['run', 'interventions', 'selection', 'model', 'importance', 'patching']) assert.equal(refreshesHeadsView(w), true, w);
  for (const w of ['busy', 'watch', 'overlay']) assert.equal(refreshesHeadsView(w), false, w);
});
