// The extension's saved-run logic without VS Code: pruning of auto-saved runs, the compare view
// model built from two runs and their CompareResult, and the validation of webview messages
// (both directions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRuns } from '../../src/engine/analysis/compare';
import { newRunPath, type SavedRun } from '../../src/engine/runs/runFile';
import { buildCompareView, buildRunView, checkGenerateOptions, fallbackDecoder, interventionLines, isAutoRunName, parseFromCompare, parseFromGenerate, runStem, runsToPrune } from '../../src/extension/runs/runsLogic';
import { divergingFraction, divergingMax, floats, formatNats, positionIndex, validateToCompare, validateToGenerate } from '../../webview/compare/compareLogic';

const tok = (id: number, text: string, start: number) => ({ id, text, start, end: start + text.length, special: false });

/** 1 layer × 2 heads, vocab 3; logits per token row. */
function run(texts: [number, string][], logits: number[][], entropy: [number, number], iv: SavedRun['header']['interventions'] = {}): SavedRun {
  let at = 0;
  const tokens = texts.map(([id, t]) => {
    const x = tok(id, t, at);
    at += t.length;
    return x;
  });
  return {
    header: {
      createdAt: '2026-11-23T00:00:00.000Z',
      prompt: texts.map((t) => t[1]).join(''),
      model: { dir: '', hash: 'h', arch: 'gpt2', modelType: 'gpt2', layers: 1, heads: 2, kvHeads: 2, hiddenSize: 4, vocabSize: 3 },
      device: 'cpu',
      interventions: iv,
      tokens,
      heads: [
        { layer: 0, head: 0, entropy: entropy[0], sink: 0.5, prevToken: 0.1, selfAttn: 0.2, induction: null },
        { layer: 0, head: 1, entropy: entropy[1], sink: 0.25, prevToken: 0.1, selfAttn: 0.2, induction: null },
      ],
      next: [{ id: 2, text: '!', prob: 0.6 }],
      timings: { loadMs: 1, runMs: 2 },
    },
    logits: Float32Array.from(logits.flat()),
  };
}

test('auto-saved run names are recognised; Save As names are not', () => {
  const f = newRunPath('/nonexistent-dir-for-test', 'my prompt', new Date('2026-11-23T10:20:30.123Z'));
  assert.ok(isAutoRunName(f.split('/').pop()!), f);
  assert.ok(isAutoRunName('x-2026-11-23T10-20-30-123Z-2.attnrun'));
  assert.ok(!isAutoRunName('baseline.attnrun'));
  assert.ok(!isAutoRunName('x-2026-11-23T10-20-30-123Z.json'));
  assert.equal(runStem('/a/b/story.prompt'), 'story');
  assert.equal(runStem(undefined), 'untitled');
  assert.equal(runStem('Untitled-1'), 'Untitled-1');
});

test('pruning keeps the newest N auto-saved runs and never touches explicit or foreign files', () => {
  const entries = Array.from({ length: 55 }, (_, i) => ({ name: `p-2026-11-23T10-20-${String(i).padStart(2, '0')}-000Z.attnrun`, mtimeMs: 1000 + i }));
  entries.push({ name: 'kept.attnrun', mtimeMs: 1 }, { name: 'notes.txt', mtimeMs: 2 });
  const explicit = new Set([entries[0]!.name]); // the oldest, but saved explicitly
  const del = runsToPrune(entries, 50, explicit);
  assert.equal(del.length, 4, `deletes ${del}`);
  // the four oldest auto-saved ones after the explicit one
  assert.deepEqual(new Set(del), new Set([1, 2, 3, 4].map((i) => entries[i]!.name)));
  assert.ok(!del.includes('kept.attnrun') && !del.includes(entries[0]!.name));
  assert.deepEqual(runsToPrune(entries.slice(0, 10), 50), []);
  assert.deepEqual(runsToPrune(entries.slice(0, 3), 0), entries.slice(0, 3).map((e) => e.name).reverse());
});

test('intervention lines', () => {
  const lines = interventionLines({ scale: [{ head: { layer: 0, head: 1 }, value: 0 }, { head: { layer: 1, head: 0 }, value: 2 }], emphasize: { start: 4, end: 7, alpha: 0.01 }, sink: { heads: [{ layer: 0, head: 0 }], value: 0.5 } }, 'The cat sat');
  assert.deepEqual(lines, ['mask L0H1', 'scale L1H0 ×2', 'emphasize "cat" α=0.01 on all heads', 'sink ×0.5 on L0H0']);
  assert.deepEqual(interventionLines({}, 'x'), []);
});

test('compare view model: aligned positions, KL as a float tensor, unaligned tokens, top-K changes, head deltas', () => {
  // A: "a b c", B: "a X b c" (X inserted). Logits differ at "b".
  const A = run([[0, 'a'], [1, ' b'], [2, ' c']], [[2, 0, 0], [0, 3, 0], [0, 0, 1]], [1.0, 2.0]);
  const B = run([[0, 'a'], [9, ' X'], [1, ' b'], [2, ' c']], [[2, 0, 0], [1, 1, 1], [3, 0, 0], [0, 0, 1]], [1.5, 1.0], { scale: [{ head: { layer: 0, head: 0 }, value: 0 }] });
  const cmp = compareRuns(A, B, 2);
  const names: Record<number, string> = { 0: 'a', 1: ' b', 2: ' c' };
  const view = buildCompareView(A, B, cmp, (id) => names[id] ?? `#${id}`, ['base', 'masked']);
  assert.equal(view.mode, 'compare');
  assert.equal(view.aligned, 3);
  assert.deepEqual(view.b!.unaligned, [1]);
  assert.deepEqual(view.a.unaligned, []);
  assert.equal(view.a.label, 'base');
  assert.deepEqual(view.b!.interventions, ['mask L0H0']);
  const kl = floats(view.kl);
  assert.equal(kl.length, 3);
  assert.ok(Math.abs(kl[0]!) < 1e-6, 'same logits at "a" → KL 0');
  assert.ok(kl[1]! > 0.5, `KL at " b" ${kl[1]}`);
  assert.deepEqual(view.positions.map((p) => [p.a, p.b]), [[0, 0], [1, 2], [2, 3]]);
  assert.equal(view.mostDifferent[0], 1, 'the most different position is " b"');
  const p = view.positions[1]!;
  assert.equal(p.topA[0]!.text, ' b');
  assert.equal(p.topB[0]!.text, 'a');
  // top-2 of A at " b": {1, 0|2}; of B: {0, 1|2}: what left and entered have texts and both probabilities
  for (const x of p.entered) assert.ok(x.probB > 0 && typeof x.text === 'string');
  for (const x of p.left) assert.ok(x.probA > 0);
  // deltas [metric, layer, head]: entropy B − A = +0.5, −1.0; induction is null → NaN
  const d = floats(view.deltas);
  assert.equal(view.deltas!.dims.join(), '5,1,2');
  assert.ok(Math.abs(d[0]! - 0.5) < 1e-6 && Math.abs(d[1]! + 1) < 1e-6, `entropy deltas ${d[0]} ${d[1]}`);
  assert.ok(Number.isNaN(d[4 * 2]!), 'induction delta is NaN when absent');
  // the model-level tensor of A's metrics
  assert.equal(floats(view.a.metrics)[2 + 1], 0.25, 'sink of L0H1');
  // token ↔ position maps
  assert.equal(positionIndex(view, 'b').get(2), 1);
  assert.equal(positionIndex(view, 'b').get(1), undefined);
  // the webview accepts what the host builds
  const v = validateToCompare({ messageId: 1, body: { type: 'init', init: { view, error: null, canGenerate: true } } });
  assert.ok(v.ok, v.ok ? '' : v.error);
});

test('compare view model says what cannot be compared (different vocabularies)', () => {
  const A = run([[0, 'a']], [[1, 0, 0]], [1, 1]);
  const B = run([[0, 'a']], [[1, 0, 0]], [1, 1]);
  B.header.model = { ...B.header.model, vocabSize: 4 };
  B.logits = Float32Array.from([1, 0, 0, 0]);
  const view = buildCompareView(A, B, compareRuns(A, B), fallbackDecoder(A, B));
  assert.ok(view.notComparable.some((r) => /vocabularies differ/.test(r)), view.notComparable.join());
  assert.ok(Number.isNaN(floats(view.kl)[0]!));
  assert.deepEqual(view.mostDifferent, []);
});

test('single-run view and damaged-run init validate', () => {
  const A = run([[0, 'a'], [1, ' b']], [[1, 0, 0], [0, 1, 0]], [1, 2]);
  const view = buildRunView(A, 'a.attnrun');
  assert.equal(view.mode, 'single');
  assert.equal(view.b, null);
  assert.ok(validateToCompare({ messageId: 2, body: { type: 'init', init: { view, error: null, canGenerate: false } } }).ok);
  assert.ok(validateToCompare({ messageId: 3, body: { type: 'init', init: { view: null, error: 'x.attnrun: truncated', canGenerate: false } } }).ok);
  // a view whose KL tensor lies about its size is refused
  const bad = { ...view, kl: { dims: [5], data: new ArrayBuffer(4) } };
  assert.ok(!validateToCompare({ messageId: 4, body: { type: 'init', init: { view: bad, error: null, canGenerate: false } } }).ok);
  assert.ok(!validateToCompare({ messageId: 5, body: { type: 'nope' } }).ok);
  assert.ok(!validateToCompare(null).ok);
  assert.equal(fallbackDecoder(A)(1), ' b');
  assert.equal(fallbackDecoder(A)(77), '#77');
});

test('messages from the compare webview are validated', () => {
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'ready', version: 1 } }).ok);
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'compareWith' } }).ok);
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'selected', position: 3, head: { layer: 0, head: 1 }, metric: 'entropy' } }).ok);
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'selected', position: null, head: null, metric: 'sink' } }).ok);
  for (const bad of [
    null,
    { body: { type: 'ready', version: 1 } },
    { messageId: 1 },
    { messageId: 1, body: { type: 'ready', version: '1' } },
    { messageId: 1, body: { type: 'selected', position: -1, head: null, metric: 'entropy' } },
    { messageId: 1, body: { type: 'selected', position: 1, head: { layer: 'x', head: 0 }, metric: 'entropy' } },
    { messageId: 1, body: { type: 'selected', position: 1, head: null, metric: 'bogus' } },
    { messageId: 1, body: { type: 'deleteEverything' } },
  ]) {
    const r = parseFromCompare(bad);
    assert.ok(!r.ok, `accepted ${JSON.stringify(bad)}`);
  }
});

test('messages from the generation webview are validated', () => {
  assert.ok(parseFromGenerate({ messageId: 1, body: { type: 'generate', options: { maxTokens: 32, temperature: 0, seed: 0 } } }).ok);
  assert.ok(parseFromGenerate({ messageId: 1, body: { type: 'stop' } }).ok);
  assert.ok(parseFromGenerate({ messageId: 1, body: { type: 'inspect', lane: 'with' } }).ok);
  assert.ok(!parseFromGenerate({ messageId: 1, body: { type: 'inspect', lane: 'both' } }).ok);
  for (const o of [{ maxTokens: 0, temperature: 0, seed: 0 }, { maxTokens: 2.5, temperature: 0, seed: 0 }, { maxTokens: 5000, temperature: 0, seed: 0 }, { maxTokens: 5, temperature: -1, seed: 0 }, { maxTokens: 5, temperature: NaN, seed: 0 }, { maxTokens: 5, temperature: 1, seed: -3 }, null]) {
    assert.ok(checkGenerateOptions(o), `accepted ${JSON.stringify(o)}`);
    assert.ok(!parseFromGenerate({ messageId: 1, body: { type: 'generate', options: o } }).ok);
  }
  // host → webview
  assert.ok(validateToGenerate({ messageId: 1, body: { type: 'token', lane: 'with', text: 'x', prob: 0.5 } }).ok);
  assert.ok(!validateToGenerate({ messageId: 1, body: { type: 'token', lane: 'sideways', text: 'x', prob: 0.5 } }).ok);
  assert.ok(validateToGenerate({ messageId: 1, body: { type: 'done', lane: 'without', stopReason: 'cancelled', tokens: 3, perTokenMs: 1 } }).ok);
});

test('diverging scale helpers', () => {
  assert.equal(divergingMax([0.1, -0.4, NaN, 0.2]), 0.4);
  assert.equal(divergingFraction(-0.4, 0.4), -1);
  assert.equal(divergingFraction(0.1, 0.4), 0.5);
  assert.ok(Number.isNaN(divergingFraction(NaN, 1)));
  assert.equal(formatNats(NaN), '—');
  assert.equal(formatNats(0.12345), '0.123');
});
