// Watched tokens in the compare page: values in A and B at every aligned position from what each
// run saved (every position's logits; the last position's logits; the saved top-K log-probabilities,
// where a token below the top K has no value), the pair's logit difference, and the validation of
// what the webview receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareRuns, topKOf, logSoftmaxRow, topLogprobsOfRow } from '../../src/engine/analysis/compare';
import { noInterventions } from '../../src/shared/interventions';
import { decodeRun, encodeRun, RUN_TOP_K, type SavedRun } from '../../src/engine/runs/runFile';
import { buildCompareView, compareWatch, fallbackDecoder, watchListPair } from '../../src/extension/runs/runsLogic';
import { floats, validateToCompare, watchCell, watchPairDiff } from '../../webview/compare/compareLogic';
import { mulberry32 } from '../../src/shared/random';

const V = 24;

/** A run over `ids` (1 layer × 1 head, vocabulary V) with seeded logits [T, V]. */
function run(ids: number[], seed: number): SavedRun {
  const rand = mulberry32(seed);
  let at = 0;
  const tokens = ids.map((id) => {
    const text = ` t${id}`;
    const t = { id, text, start: at, end: at + text.length, special: false };
    at += text.length;
    return t;
  });
  const logits = Float32Array.from({ length: ids.length * V }, () => (rand() - 0.5) * 8);
  return {
    header: {
      createdAt: '2026-11-23T00:00:00.000Z',
      prompt: tokens.map((t) => t.text).join(''),
      model: { dir: '', hash: 'h', arch: 'gpt2', modelType: 'gpt2', layers: 1, heads: 1, kvHeads: 1, hiddenSize: 4, vocabSize: V },
      device: 'cpu',
      interventions: noInterventions(),
      tokens,
      heads: [{ layer: 0, head: 0, entropy: 1, sink: 0.5, prevToken: 0.1, selfAttn: 0.2, induction: null, duplicateToken: null }],
      next: [{ id: 2, text: ' t2', prob: 0.5 }],
      timings: { loadMs: 1, runMs: 2 },
    },
    logits,
  };
}

/** The run as an auto-save keeps it (format 2 without tensors): top-K per position and the last logits, through the file format. */
function topKOnly(r: SavedRun): SavedRun {
  const T = r.header.tokens.length;
  const topIds = new Float32Array(T * RUN_TOP_K);
  const topLogprobs = new Float32Array(T * RUN_TOP_K);
  const topTexts: Record<string, string> = {};
  for (let t = 0; t < T; t++) {
    topKOf(logSoftmaxRow(r.logits!, t, V), RUN_TOP_K).forEach((x, i) => {
      topIds[t * RUN_TOP_K + i] = x.id;
      topLogprobs[t * RUN_TOP_K + i] = x.logprob;
      topTexts[String(x.id)] = ` t${x.id}`;
    });
  }
  const saved: SavedRun = { header: { ...r.header, topTexts }, topIds, topLogprobs, lastLogits: r.logits!.slice((T - 1) * V) };
  return decodeRun(encodeRun(saved), 'saved.attnrun');
}

/** Reference values at row t of logits [T, V]: float64 log-softmax, rank by sorting. */
function reference(logits: Float32Array, t: number, id: number): { logprob: number; logit: number; rank: number } {
  const row = Array.from(logits.subarray(t * V, (t + 1) * V));
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  const sorted = [...row].sort((a, b) => b - a);
  return { logprob: row[id]! - lse, logit: row[id]!, rank: sorted.indexOf(row[id]!) + 1 };
}

const close = (a: number, b: number, msg: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${msg}: ${a} vs ${b}`);

test('watched tokens from every position\'s logits: exact prob, logit and rank in A and B, and the pair\'s logit difference', () => {
  // B inserts a token: aligned positions (0,0) (1,2) (2,3)
  const A = run([5, 6, 7], 1);
  const B = run([5, 9, 6, 7], 2);
  const watch = { tokens: [{ id: 3, text: ' t3' }, { id: 11, text: ' t11' }, { id: 20, text: ' t20' }], pair: [20, 3] as [number, number] };
  const view = buildCompareView(A, B, compareRuns(A, B), fallbackDecoder(A, B), ['A', 'B'], watch);
  const w = view.watch!;
  assert.deepEqual(w.tokens.map((t) => t.id), [3, 11, 20]);
  assert.deepEqual(w.pair, [20, 3], 'the chosen pair');
  assert.deepEqual(view.positions.map((p) => [p.a, p.b]), [[0, 0], [1, 2], [2, 3]]);
  assert.deepEqual(w.a.logprob.dims, [3, 3]);
  for (const [side, r, which] of [[w.a, A, 'a'], [w.b, B, 'b']] as const) {
    view.positions.forEach((pos, p) => {
      watch.tokens.forEach((t, i) => {
        const c = watchCell(side, i, p);
        assert.equal(c.kind, 'value');
        if (c.kind !== 'value') return;
        const ref = reference(r.logits!, pos[which], t.id);
        close(c.logprob, ref.logprob, `${which} pos ${p} id ${t.id} log p`);
        close(c.prob, Math.exp(ref.logprob), `${which} pos ${p} id ${t.id} p`);
        assert.equal(c.logit, ref.logit);
        assert.equal(c.rank, ref.rank);
        assert.equal(c.source, 'logits');
      });
      const d = watchPairDiff(side, p);
      assert.equal(typeof d, 'number');
      close(d as number, reference(r.logits!, pos[which], 20).logit - reference(r.logits!, pos[which], 3).logit, `${which} pos ${p} logit diff`);
    });
  }
  // the webview accepts it, in the init and as a `watch` update
  assert.ok(validateToCompare({ messageId: 1, body: { type: 'init', init: { view, error: null, canGenerate: false } } }).ok);
  assert.ok(validateToCompare({ messageId: 2, body: { type: 'watch', watch: w } }).ok);
  assert.ok(validateToCompare({ messageId: 2, body: { type: 'watch', watch: null } }).ok);
});

test('watched tokens from a run saved without tensors: last logits exact at the last token, top-K elsewhere, "below the saved top 10" otherwise', () => {
  const full = run([5, 6, 7, 8], 3);
  const A = full;
  const B = topKOnly(full);
  assert.equal(B.logits, undefined);
  const T = 4;
  // per position, one id inside B's saved top 10 and one outside it
  const lp = (t: number) => logSoftmaxRow(full.logits!, t, V);
  const inTop = topKOf(lp(1), RUN_TOP_K)[3]!.id;
  const ranked = topKOf(lp(1), V).map((x) => x.id);
  const below = ranked[RUN_TOP_K + 2]!;
  const watch = { tokens: [{ id: inTop, text: 'in' }, { id: below, text: 'out' }], pair: null };
  const view = buildCompareView(A, B, compareRuns(A, B), fallbackDecoder(A, B), ['A', 'B'], watch);
  const w = view.watch!;
  assert.deepEqual(w.pair, [inTop, below], 'the first two by default');
  assert.equal(w.b.topK, RUN_TOP_K);
  // position 1: inTop is the 4th most likely: exact prob (the saved log-prob), rank 4, no logit
  const c = watchCell(w.b, 0, 1);
  assert.equal(c.kind, 'value');
  if (c.kind === 'value') {
    assert.equal(c.source, 'topK');
    close(c.logprob, lp(1)[inTop]!, 'saved log p');
    assert.equal(c.rank, 4);
    assert.equal(c.logit, null, 'no logit from top-K log-probabilities');
  }
  // the token below the top 10: no number, and why
  assert.deepEqual(watchCell(w.b, 1, 1), { kind: 'missing', why: `below the saved top ${RUN_TOP_K}` });
  assert.equal(Number.isNaN(floats(w.b.logprob)[1 * T + 1]!), true);
  // its pair difference cannot be known there either
  assert.deepEqual(watchPairDiff(w.b, 1), { why: `a token is below the saved top ${RUN_TOP_K}` });
  // A (full logits) has it
  assert.equal(watchCell(w.a, 1, 1).kind, 'value');
  // last position: the saved last logits, exact for both tokens whatever their rank
  for (const i of [0, 1]) {
    const x = watchCell(w.b, i, T - 1);
    const ref = reference(full.logits!, T - 1, watch.tokens[i]!.id);
    assert.equal(x.kind, 'value');
    if (x.kind === 'value') {
      assert.equal(x.source, 'lastLogits');
      close(x.logprob, ref.logprob, 'last log p');
      assert.equal(x.logit, ref.logit);
      assert.equal(x.rank, ref.rank);
    }
  }
  close(watchPairDiff(w.b, T - 1) as number, reference(full.logits!, T - 1, inTop).logit - reference(full.logits!, T - 1, below).logit, 'last diff');
  // both in the top K at some position: the difference of the saved log-probabilities
  const both = topKOf(lp(0), 2).map((x) => x.id);
  const v2 = compareWatch(A, B, view.positions, { tokens: both.map((id) => ({ id, text: `#${id}` })), pair: null })!;
  close(watchPairDiff(v2.b, 0) as number, lp(0)[both[0]!]! - lp(0)[both[1]!]!, 'top-K diff');
  assert.equal(watchCell(v2.b, 0, 0).kind === 'value' && (watchCell(v2.b, 0, 0) as { rank: number }).rank, 1);
});

test('watched tokens in a run with nothing saved at a position; no watched tokens; pair choice', () => {
  const A = run([5, 6], 4);
  const B: SavedRun = { header: A.header, lastLogits: A.logits!.slice(V) }; // a format-1-like run without top-K
  const w = compareWatch(A, B, [{ a: 0, b: 0 }, { a: 1, b: 1 }], { tokens: [{ id: 1, text: 'x' }], pair: null })!;
  assert.deepEqual(watchCell(w.b, 0, 0), { kind: 'missing', why: 'not saved' });
  assert.equal(watchCell(w.b, 0, 1).kind, 'value');
  assert.deepEqual(watchPairDiff(w.b, 0), { why: 'not saved' }, 'no pair with one token');
  assert.equal(w.pair, null);
  assert.equal(compareWatch(A, B, [], { tokens: [], pair: null }), null);
  assert.equal(compareWatch(A, B, [], null), null);
  const t = [1, 2, 3].map((id) => ({ id, text: `#${id}` }));
  assert.deepEqual(watchListPair({ tokens: t, pair: [3, 1] }), [3, 1]);
  assert.deepEqual(watchListPair({ tokens: t, pair: [3, 9] }), [1, 2], 'a pair token no longer watched: the first two');
  assert.deepEqual(watchListPair({ tokens: t, pair: [2, 2] }), [1, 2]);
});

test('the webview refuses watched values whose dims disagree', () => {
  const A = run([5, 6], 5);
  const view = buildCompareView(A, A, compareRuns(A, A), fallbackDecoder(A, A), ['A', 'B'], { tokens: [{ id: 1, text: 'x' }, { id: 2, text: 'y' }], pair: null });
  const bad = structuredClone(view);
  bad.watch!.b.logprob = { dims: [2, 3], data: new ArrayBuffer(24) };
  const r = validateToCompare({ messageId: 1, body: { type: 'init', init: { view: bad, error: null, canGenerate: false } } });
  assert.deepEqual(r, { ok: false, error: 'body.init.view.watch.b.logprob.dims: expected [2, 2] (watched token, position), got [2, 3]' });
  const bad2 = structuredClone(view.watch!);
  bad2.a.source = { dims: [2], data: Float32Array.from([0, 7]).buffer };
  const r2 = validateToCompare({ messageId: 1, body: { type: 'watch', watch: bad2 } });
  assert.equal(r2.ok, false);
  assert.match((r2 as { error: string }).error, /^body\.watch\.a\.source: expected indexes into logits\/lastLogits\/topK\/none/);
});

test('formatting of watched probabilities and the generation sparkline\'s points', async () => {
  const { formatWatchProb, formatSignedNum } = await import('../../webview/compare/compareLogic');
  const { sparkPoints } = await import('../../webview/generate/watchedSteps');
  assert.deepEqual([0.939, 0.0025, 0.000032, 4.1e-9, 0, NaN].map(formatWatchProb), ['93.9%', '0.25%', '0.0032%', '4.1e−7%', '0%', '—']);
  assert.deepEqual([1.234, -0.4, 0, NaN].map((v) => formatSignedNum(v)), ['+1.23', '−0.40', '0.00', '—']);
  // x evenly from 1 to width − 1; y from height − 1 (0) up to 1 (the top)
  assert.equal(sparkPoints([0, 0.5, 1], 1, 102, 22), '1.0,21.0 51.0,11.0 101.0,1.0');
  assert.equal(sparkPoints([0.2], 0.4, 100, 22), '50.0,11.0', 'one step in the middle');
  assert.equal(sparkPoints([0, 0], 0, 10, 22), '1.0,21.0 9.0,21.0', 'an all-zero line lies on the base');
});

test('a saved run\'s per-position top-K (topLogprobsOfRow) equals topKOf over the full log-softmax row, ties to the lower id', () => {
  const rand = mulberry32(11);
  const W = 500;
  for (const k of [1, 3, RUN_TOP_K]) {
    for (let row = 0; row < 4; row++) {
      // rounded logits: many exact ties, including among the largest
      const logits = Float32Array.from({ length: 4 * W }, () => Math.round((rand() - 0.5) * 12) / 2);
      const want = topKOf(logSoftmaxRow(logits, row, W), k);
      const got = topLogprobsOfRow(logits, row, W, k);
      assert.deepEqual(got, want, `k ${k} row ${row}`);
    }
  }
});
