// The extension's saved-run logic without VS Code: pruning of auto-saved runs, the compare view
// model built from two runs and their CompareResult, and the validation of webview messages
// (both directions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRuns } from '../../src/engine/analysis/compare';
import { METRICS } from '../../src/shared/heads';
import { describeInterventions, noInterventions } from '../../src/shared/interventions';
import { newRunPath, type SavedRun } from '../../src/engine/runs/runFile';
import { attentionRow, attentionRows, attentionUnavailable, buildCompareView, buildRunView, checkGenerateOptions, fallbackDecoder, isAutoRunName, parseCompareSource, parseFromCompare, parseFromGenerate, patternsOnly, runStem, runsToPrune } from '../../src/extension/runs/runsLogic';
import { parseGenerateFields, seedUsed } from '../../webview/generate/generateLogic';
import { attentionTints, divergingFraction, divergingMax, floats, formatNats, positionIndex, rowsKey, validateToCompare, validateToGenerate } from '../../webview/compare/compareLogic';

const tok = (id: number, text: string, start: number) => ({ id, text, start, end: start + text.length, special: false });

/** 1 layer × 2 heads, vocab 3; logits per token row. */
function run(texts: [number, string][], logits: number[][], entropy: [number, number], iv: SavedRun['header']['interventions'] = noInterventions()): SavedRun {
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
        { layer: 0, head: 0, entropy: entropy[0], sink: 0.5, prevToken: 0.1, selfAttn: 0.2, induction: null, duplicateToken: null },
        { layer: 0, head: 1, entropy: entropy[1], sink: 0.25, prevToken: 0.1, selfAttn: 0.2, induction: null, duplicateToken: null },
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
  const entries = Array.from({ length: 55 }, (_, i) => ({ name: `p-2026-11-23T10-20-${String(i).padStart(2, '0')}-000Z.attnrun`, mtimeMs: 1000 + i, size: 1000, autoSaved: true }));
  entries.push({ name: 'kept.attnrun', mtimeMs: 1, size: 1000, autoSaved: false }, { name: 'notes.txt', mtimeMs: 2, size: 1000, autoSaved: false });
  const explicit = new Set([entries[0]!.name]); // the oldest, but saved explicitly
  const limits = { count: 50, bytes: 1e9 };
  const del = runsToPrune(entries, limits, explicit);
  assert.equal(del.length, 4, `deletes ${del}`);
  // the four oldest auto-saved ones after the explicit one
  assert.deepEqual(new Set(del), new Set([1, 2, 3, 4].map((i) => entries[i]!.name)));
  assert.ok(!del.includes('kept.attnrun') && !del.includes(entries[0]!.name));
  assert.deepEqual(runsToPrune(entries.slice(0, 10), limits), []);
  assert.deepEqual(runsToPrune(entries.slice(0, 3), { count: 0, bytes: 1e9 }), entries.slice(0, 3).map((e) => e.name).reverse());
});

test('pruning goes by the header flag, not the name, and caps the total size', () => {
  const at = (i: number) => `p-2026-11-23T10-20-${String(i).padStart(2, '0')}-000Z.attnrun`;
  // a file with an auto-save name that AttnScope did not auto-save (its header says so) is never deleted
  const entries = [0, 1, 2, 3].map((i) => ({ name: at(i), mtimeMs: 1000 + i, size: 100, autoSaved: i !== 0 }));
  entries.push({ name: 'my-run.attnrun', mtimeMs: 1, size: 100, autoSaved: true }); // auto-saved, then renamed: still ours
  assert.deepEqual(runsToPrune(entries, { count: 2, bytes: 1e9 }), [at(1), 'my-run.attnrun']);
  // 250 bytes allowed: the newest two (200 bytes) stay
  assert.deepEqual(runsToPrune(entries, { count: 50, bytes: 250 }), [at(1), 'my-run.attnrun']);
  // the newest is kept even when it alone is over the size cap; the older ones go
  const big = [{ name: 'a.attnrun', mtimeMs: 2, size: 500, autoSaved: true }, { name: 'b.attnrun', mtimeMs: 1, size: 10, autoSaved: true }];
  assert.deepEqual(runsToPrune(big, { count: 50, bytes: 100 }), ['b.attnrun']);
  // protected files (shown in a panel now) are never deleted and do not count
  assert.deepEqual(runsToPrune(big, { count: 1, bytes: 1e9 }, new Set(['a.attnrun'])), []);
});

test('intervention lines', () => {
  const lines = describeInterventions({ scales: [{ layer: 0, head: 1, value: 0 }, { layer: 1, head: 0, value: 2 }], emphasis: { start: 4, end: 7, alpha: 0.01, heads: 'all' }, sink: { heads: [{ layer: 0, head: 0 }], value: 0.5 } }, 'The cat sat');
  assert.deepEqual(lines, ['mask L0H1', 'scale L1H0 ×2', 'emphasize "cat" α=0.01 on all heads', 'sink ×0.5 on L0H0']);
  assert.deepEqual(describeInterventions(noInterventions(), 'x'), []);
});

test('compare view model: aligned positions, KL as a float tensor, unaligned tokens, top-K changes, head deltas', () => {
  // A: "a b c", B: "a X b c" (X inserted). Logits differ at "b".
  const A = run([[0, 'a'], [1, ' b'], [2, ' c']], [[2, 0, 0], [0, 3, 0], [0, 0, 1]], [1.0, 2.0]);
  const B = run([[0, 'a'], [9, ' X'], [1, ' b'], [2, ' c']], [[2, 0, 0], [1, 1, 1], [3, 0, 0], [0, 0, 1]], [1.5, 1.0], { scales: [{ layer: 0, head: 0, value: 0 }], emphasis: null, sink: null });
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
  assert.equal(view.deltas!.dims.join(), '6,1,2');
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
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'selected', position: 3, head: { layer: 0, head: 1 }, metric: 'entropy', overlay: 'attention' } }).ok);
  assert.ok(parseFromCompare({ messageId: 1, body: { type: 'selected', position: null, head: null, metric: 'sink', overlay: 'kl' } }).ok);
  const rq = parseFromCompare({ messageId: 7, body: { type: 'attentionRows', position: 2, head: { layer: 1, head: 0, extra: 'dropped' } } });
  assert.ok(rq.ok);
  assert.deepEqual(rq.value.body, { type: 'attentionRows', position: 2, head: { layer: 1, head: 0 } });
  assert.ok(parseFromCompare({ messageId: 7, body: { type: 'attentionRows', position: 0, head: null } }).ok);
  for (const bad of [
    null,
    { body: { type: 'ready', version: 1 } },
    { messageId: 1 },
    { messageId: 1, body: { type: 'ready', version: '1' } },
    { messageId: 1, body: { type: 'selected', position: -1, head: null, metric: 'entropy', overlay: 'kl' } },
    { messageId: 1, body: { type: 'selected', position: 1, head: { layer: 'x', head: 0 }, metric: 'entropy', overlay: 'kl' } },
    { messageId: 1, body: { type: 'selected', position: 1, head: null, metric: 'bogus', overlay: 'kl' } },
    { messageId: 1, body: { type: 'selected', position: 1, head: null, metric: 'entropy', overlay: 'heat' } },
    { messageId: 1, body: { type: 'attentionRows', position: 1.5, head: null } },
    { messageId: 1, body: { type: 'attentionRows', position: 1, head: { layer: -1, head: 0 } } },
    { messageId: 1, body: { type: 'attentionRows', head: null } },
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

test('the generation page takes session updates (interventions reset) and refuses malformed ones with a path', () => {
  const session = { prompt: 'The cat', promptName: 'story', interventions: [] as string[] };
  assert.ok(validateToGenerate({ messageId: 2, body: { type: 'session', session } }).ok);
  assert.ok(validateToGenerate({ messageId: 1, inReplyTo: 1, body: { type: 'init', init: { ...session, interventions: ['mask L0H1'], options: { maxTokens: 8, temperature: 0, seed: 0 } } } }).ok);
  const err = (raw: unknown) => {
    const r = validateToGenerate(raw);
    assert.equal(r.ok, false, JSON.stringify(raw));
    return (r as { error: string }).error;
  };
  assert.equal(err({ messageId: 2, body: { type: 'session', session: { ...session, interventions: ['ok', 3] } } }), 'body.session.interventions[1]: expected a string');
  assert.equal(err({ messageId: 2, body: { type: 'init', init: { ...session, options: { maxTokens: 0, temperature: 0, seed: 0 } } } }), 'body.init.options.maxTokens: expected an integer from 1 to 1024');
  assert.equal(err({ messageId: 2, body: { type: 'started', lanes: ['with', 'both'], options: { maxTokens: 8, temperature: 0, seed: 0 } } }), 'body.lanes[1]: expected one of with, without');
  assert.equal(err({ messageId: 2, body: { type: 'token', lane: 'with', text: 'x', prob: NaN } }), 'body.prob: expected a finite number');
  // host side: the error names the message and the field
  const g = parseFromGenerate({ messageId: 3, body: { type: 'generate', options: { maxTokens: 8, temperature: 11, seed: 0 } } });
  assert.deepEqual(g, { ok: false, error: 'malformed generate message: body.options.temperature: expected a number ≥ 0 and ≤ 10', messageId: 3 });
  assert.equal(checkGenerateOptions({ maxTokens: 8, temperature: 0, seed: 2 ** 32 }), 'options.seed: expected an integer from 0 to 4294967295');
});

test('compare init: a view whose parts disagree is refused with the path to the part', () => {
  const A = run([[0, 'a'], [1, ' b']], [[1, 0, 0], [0, 1, 0]], [1, 2]);
  const B = run([[0, 'a'], [1, ' b']], [[1, 0, 0], [0, 0, 1]], [1, 2]);
  const view = buildCompareView(A, B, compareRuns(A, B), fallbackDecoder(A, B));
  const init = (v: unknown) => ({ messageId: 1, body: { type: 'init', init: { view: v, error: null, canGenerate: true } } });
  assert.ok(validateToCompare(init(view)).ok);
  const err = (v: unknown) => {
    const r = validateToCompare(init(v));
    assert.equal(r.ok, false);
    return (r as { error: string }).error;
  };
  const c = structuredClone(view);
  c.a.tokens[1]!.end = 99;
  assert.equal(err(c), 'body.init.view.a.tokens[1].end: expected start ≤ end ≤ prompt length (3)');
  assert.equal(err({ ...view, mostDifferent: [view.positions.length] }), `body.init.view.mostDifferent[0]: expected an integer from 0 to ${view.positions.length - 1}`);
  assert.equal(err({ ...view, b: { ...view.b, metrics: { dims: [5, 2, 1], data: new ArrayBuffer(40) } } }), `body.init.view.b.metrics.dims: expected [${METRICS.length}, 1, 2] (metric, layer, head), got [5, 2, 1]`);
  assert.equal(err({ ...view, mode: 'single' }), 'body.init.view.b: expected null for a single run');
  assert.match(err({ ...view, positions: [{ ...view.positions[0], topA: [{ id: 1, text: 'x', prob: Infinity }] }] }), /^body\.init\.view\.positions\[0\]\.topA\[0\]\.prob: expected a finite number$/);
  const noView = validateToCompare({ messageId: 1, body: { type: 'init', init: { view: null, error: null, canGenerate: false } } });
  assert.deepEqual(noView, { ok: false, error: 'body.init.error: expected a string' }, 'no view and no error: nothing to show');
});

/**
 * Hand-made patterns, 1 layer × 2 heads. A = "a b c" (T 3), B = "a X b c" (T 4). Head 0 attends to
 * the previous token (the first token to itself); head 1 spreads evenly over the tokens so far.
 */
function withPatterns(r: SavedRun): SavedRun {
  const T = r.header.tokens.length;
  const P = new Float32Array(2 * T * T);
  for (let q = 0; q < T; q++) {
    P[q * T + Math.max(0, q - 1)] = 1; // head 0
    for (let k = 0; k <= q; k++) P[(T + q) * T + k] = 1 / (q + 1); // head 1
  }
  return { ...r, patterns: P };
}

test('attention rows of a saved run: one head, the mean of all heads, and the errors', () => {
  const A = withPatterns(run([[0, 'a'], [1, ' b'], [2, ' c']], [[2, 0, 0], [0, 3, 0], [0, 0, 1]], [1, 2]));
  assert.deepEqual([...attentionRow(A, 2, { layer: 0, head: 0 })], [0, 1, 0], 'head 0 from " c": the previous token');
  assert.deepEqual([...attentionRow(A, 2, { layer: 0, head: 1 })].map((v) => +v.toFixed(6)), [0.333333, 0.333333, 0.333333]);
  // mean of the two heads from " b": ([1, 0, 0] + [0.5, 0.5, 0]) / 2
  assert.deepEqual([...attentionRow(A, 1, null)], [0.75, 0.25, 0]);
  assert.deepEqual([...attentionRow(A, 0, null)], [1, 0, 0]);
  // a copy, not a view into the patterns
  const row = attentionRow(A, 2, { layer: 0, head: 0 });
  row[0] = 9;
  assert.equal(A.patterns![2 * 3], 0);
  assert.throws(() => attentionRow(A, 3, null, 'A'), /A has no token 3 \(it has 3\)/);
  assert.throws(() => attentionRow(A, 0, { layer: 1, head: 0 }, 'A'), /L1H0 is not in A's model \(1 layers × 2 heads\)/);
  assert.throws(() => attentionRow(A, 0, { layer: 0, head: 2 }, 'A'), /L0H2 is not in/);
  const noPatterns = run([[0, 'a']], [[1, 0, 0]], [1, 1]);
  assert.throws(() => attentionRow(noPatterns, 0, null, 'base.attnrun'), /base.attnrun was saved without attention patterns/);
  assert.throws(() => attentionRow({ ...A, patterns: new Float32Array(5) }, 0, null, 'A'), /5 values, not 1×2×3×3/);
});

test('attention rows of an aligned position in A and B (dims explicit), and when they are unavailable', () => {
  const A = withPatterns(run([[0, 'a'], [1, ' b'], [2, ' c']], [[2, 0, 0], [0, 3, 0], [0, 0, 1]], [1, 2]));
  const B = withPatterns(run([[0, 'a'], [9, ' X'], [1, ' b'], [2, ' c']], [[2, 0, 0], [1, 1, 1], [3, 0, 0], [0, 0, 1]], [1, 1]));
  const view = buildCompareView(A, B, compareRuns(A, B), fallbackDecoder(A, B));
  assert.equal(view.attention, null, 'both runs saved patterns');
  // position 1 is " b": A token 1, B token 2
  assert.deepEqual([view.positions[1]!.a, view.positions[1]!.b], [1, 2]);
  const r = attentionRows(A, B, view.positions, 1, { layer: 0, head: 0 });
  assert.deepEqual(r.a.dims, [3]);
  assert.deepEqual(r.b.dims, [4]);
  assert.deepEqual([...floats(r.a)], [1, 0, 0]);
  assert.deepEqual([...floats(r.b)], [0, 1, 0, 0], 'in B " b" follows the inserted " X"');
  const mean = attentionRows(A, B, view.positions, 2, null);
  assert.deepEqual([...floats(mean.b)].map((v) => +v.toFixed(6)), [0.125, 0.125, 0.625, 0.125]);
  assert.throws(() => attentionRows(A, B, view.positions, 3, null), /no aligned position 3 \(there are 3\)/);
  // the webview accepts the reply
  assert.ok(validateToCompare({ messageId: 9, inReplyTo: 4, body: { type: 'attentionRows', position: 1, head: null, ...r } }).ok);
  assert.ok(!validateToCompare({ messageId: 9, body: { type: 'attentionRows', position: 1, head: null, a: r.a, b: { dims: [5], data: r.b.data } } }).ok, 'dims must match the data');
  // a run without patterns: the view says why, and the rows cannot be had
  const B2: SavedRun = { ...B, patterns: undefined };
  const v2 = buildCompareView(A, B2, compareRuns(A, B2), fallbackDecoder(A, B2), ['base', 'steered']);
  assert.match(v2.attention!, /^steered was saved without attention patterns/);
  assert.ok(v2.notComparable.some((x) => /without attention patterns/.test(x)));
  assert.throws(() => attentionRows(A, B2, v2.positions, 0, null, ['base', 'steered']), /steered was saved without/);
  assert.match(attentionUnavailable([B2, { ...A, patterns: undefined }], ['x', 'y'])!, /^both runs were saved/);
  assert.equal(buildRunView(A, 'a.attnrun').attention, null);
  // the panel keeps the patterns, not the logits
  const kept = patternsOnly(A);
  assert.equal(kept.logits, undefined);
  assert.equal(kept.patterns, A.patterns);
});

test('attention tints: one scale for A and B, the first token left out of the maximum', () => {
  const t = attentionTints([0.9, 0.05, 0.05], [0.6, 0.2, 0.1, 0.1], [false, false, false], [false, false, false, false]);
  assert.equal(t.max, 0.2, 'the largest non-first value of either row');
  assert.equal(t.a[0], 1, 'the sink saturates');
  assert.equal(t.b[1], 1);
  assert.ok(Math.abs(t.a[1]! - Math.sqrt(0.25)) < 1e-6);
  const s = attentionTints([0.5, 0.5], [1, 0], [false, true], [false, false], true);
  assert.equal(s.max, 1, 'all the attention on left-out tokens (first, special): they set the scale');
  assert.deepEqual([...s.a].map((v) => +v.toFixed(6)), [0.707107, 0.707107]);
  assert.deepEqual([...attentionTints([0.5, 0.5, 0], [1, 0], [false, false, false], [false, false]).a].map((v) => +v.toFixed(6)), [1, 1, 0], 'special only counts when marked');
  assert.deepEqual([...attentionTints([0, 0], [0, 0], [false, false], [false, false]).a], [0, 0]);
  assert.equal(attentionTints([0.5, 0.5], [1, 0], [false, false], [false, false], false).max, 1);
  assert.notEqual(rowsKey(1, null), rowsKey(1, { layer: 0, head: 0 }));
});

test('the compare panel state restored after a reload is checked', () => {
  const ok = parseCompareSource({ metric: 'entropy', source: { files: ['/w/.attnscope/runs/a.attnrun', '/tmp/b.attnrun'], labels: ['baseline', 'with interventions'] } });
  assert.deepEqual(ok, { files: ['/w/.attnscope/runs/a.attnrun', '/tmp/b.attnrun'], labels: ['baseline', 'with interventions'] });
  for (const bad of [undefined, null, 'x', {}, { source: { files: ['/a.attnrun'], labels: ['a'] } }, { source: { files: ['/a.attnrun', '/etc/passwd'], labels: ['a', 'b'] } }, { source: { files: ['/a.attnrun', '/b.attnrun'], labels: ['a', 3] } }, { source: { files: ['', '/b.attnrun'], labels: ['a', 'b'] } }]) {
    assert.equal(parseCompareSource(bad), undefined, JSON.stringify(bad));
  }
});

test('generation fields: the seed is not used (nor checked) at temperature 0', () => {
  assert.equal(seedUsed('0'), false);
  assert.equal(seedUsed(' 0.0 '), false);
  assert.equal(seedUsed('0.7'), true);
  assert.equal(seedUsed(''), true, 'no temperature yet: the seed field stays enabled');
  assert.equal(seedUsed('x'), true);
  assert.deepEqual(parseGenerateFields({ tokens: '32', temperature: '0', seed: 'abc' }), { maxTokens: 32, temperature: 0, seed: 0 });
  assert.deepEqual(parseGenerateFields({ tokens: '32', temperature: '0', seed: '7' }), { maxTokens: 32, temperature: 0, seed: 7 });
  assert.deepEqual(parseGenerateFields({ tokens: '8', temperature: '0.8', seed: '42' }), { maxTokens: 8, temperature: 0.8, seed: 42 });
  assert.match(parseGenerateFields({ tokens: '8', temperature: '0.8', seed: 'abc' }) as string, /^Seed:/);
  assert.match(parseGenerateFields({ tokens: '8', temperature: '0.8', seed: '' }) as string, /^Seed:/);
  assert.match(parseGenerateFields({ tokens: '', temperature: '0', seed: '0' }) as string, /^Tokens:/);
  assert.match(parseGenerateFields({ tokens: '8', temperature: '', seed: '0' }) as string, /^Temperature:/);
  assert.match(parseGenerateFields({ tokens: '8', temperature: '11', seed: '0' }) as string, /^Temperature:/);
  for (const f of [{ tokens: '8', temperature: '0', seed: 'x' }, { tokens: '1024', temperature: '10', seed: '4294967295' }]) {
    const o = parseGenerateFields(f);
    assert.ok(typeof o !== 'string' && checkGenerateOptions(o) === undefined, 'what the panel sends, the host accepts');
  }
});

test('diverging scale helpers', () => {
  assert.equal(divergingMax([0.1, -0.4, NaN, 0.2]), 0.4);
  assert.equal(divergingFraction(-0.4, 0.4), -1);
  assert.equal(divergingFraction(0.1, 0.4), 0.5);
  assert.ok(Number.isNaN(divergingFraction(NaN, 1)));
  assert.equal(formatNats(NaN), '—');
  assert.equal(formatNats(0.12345), '0.123');
});
