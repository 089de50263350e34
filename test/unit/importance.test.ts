// Importance by ablation as the views show it (src/shared/importance.ts), the Heads view's order by
// importance and flat list (src/extension/viewLogic.ts), the grid's importance scale
// (webview/logic/gridLogic.ts) and the validation of a ranking crossing to the webview.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatImportance, formatSigned, harm, importanceIndex, importanceKey, rankImportance, staleReason, type ImportanceView } from '../../src/shared/importance';
import { flatHeads, orderHeads, orderValue } from '../../src/extension/viewLogic';
import { headHarm, importanceDomain, importanceFraction, importanceInfoLine, importanceOptionDescription, metricInfoLine, metricOptionDescription } from '../../webview/logic/gridLogic';
import { importanceView, validate } from '../../src/shared/validate';
import { parseFromWebview } from '../../src/extension/panelMessages';
import type { HeadView } from '../../src/shared/protocol';

const view = (metric: ImportanceView['metric'], deltas: number[][]): ImportanceView => ({
  metric,
  baseline: metric === 'kl' ? 0 : -2,
  targetText: metric === 'logprob' ? ' Paris' : null,
  runId: 3,
  heads: deltas.flatMap((row, layer) => row.map((delta, head) => ({ layer, head, delta, value: (metric === 'kl' ? 0 : -2) + delta }))),
});

test('harm: a drop in log p, a rise in loss, any KL is harm; ranking puts the largest harm first', () => {
  assert.equal(harm('logprob', -0.5), 0.5);
  assert.equal(harm('loss', 0.5), 0.5);
  assert.equal(harm('kl', 0.25), 0.25);
  const lp = view('logprob', [[-0.1, 0.2], [-1.5, -0.1]]);
  assert.deepEqual(rankImportance(lp).map((h) => `${h.layer}.${h.head}`), ['1.0', '0.0', '1.1', '0.1']);
  const loss = view('loss', [[0.3, -0.2], [0.01, 0.9]]);
  assert.deepEqual(rankImportance(loss).map((h) => `${h.layer}.${h.head}`), ['1.1', '0.0', '1.0', '0.1']);
});

test('formatting keeps the measured sign with a real minus', () => {
  assert.equal(formatSigned(-0.5234), '−0.523');
  assert.equal(formatSigned(0.5), '+0.500');
  assert.equal(formatSigned(0), '0');
  assert.equal(formatSigned(-3.4e-5), '−3.4e−5');
  assert.equal(formatSigned(Number.NaN), 'n/a');
  assert.equal(formatImportance('logprob', -1.25), 'Δ log p −1.250');
  assert.equal(formatImportance('loss', 0.02), 'Δ loss +0.020');
  assert.equal(formatImportance('kl', 0.02), 'KL 0.020');
});

test('a ranking goes stale when the model, prompt, interventions or token limit change, and says which', () => {
  const k = importanceKey('m1', 'file:///a.prompt', 'the cat', { scales: [] }, 1024);
  assert.equal(staleReason(k, importanceKey('m1', 'file:///a.prompt', 'the cat', { scales: [] }, 1024)), null);
  assert.equal(staleReason(k, importanceKey('m2', 'file:///a.prompt', 'the cat', { scales: [] }, 1024)), 'the model changed');
  assert.equal(staleReason(k, importanceKey('m1', 'file:///a.prompt', 'the dog', { scales: [] }, 1024)), 'the prompt changed');
  assert.equal(staleReason(k, importanceKey('m1', 'file:///b.prompt', 'the cat', { scales: [] }, 1024)), 'the prompt changed');
  assert.equal(staleReason(k, importanceKey('m1', 'file:///a.prompt', 'the cat', { scales: [{ layer: 0, head: 1, value: 0 }] }, 1024)), 'the interventions changed');
  assert.match(staleReason(k, importanceKey('m1', 'file:///a.prompt', 'the cat', { scales: [] }, 64))!, /token limit/);
});

const hv = (layer: number, head: number, induction: number | null): HeadView => ({ layer, head, entropy: 1, sink: 0, prevToken: 0, selfAttn: 0, induction, duplicateToken: null, scale: 1 });

test('Heads view: order by importance within a layer and flat across layers; unknown importance last', () => {
  const heads = [hv(0, 0, 0.1), hv(0, 1, 0.9), hv(1, 0, 0.5), hv(1, 1, null)];
  const imp = view('logprob', [[-0.2, 0.1], [-2.0, -0.05]]);
  assert.equal(orderValue(heads[0]!, 'importance', imp), 0.2);
  assert.equal(orderValue(heads[0]!, 'importance', null), null);
  assert.equal(orderValue(heads[1]!, 'induction'), 0.9);
  const order = { metric: 'importance' as const, sort: true, minValue: null };
  assert.deepEqual(orderHeads(heads, 0, order, imp).map((h) => h.head), [0, 1]);
  assert.deepEqual(flatHeads(heads, { ...order, flat: true }, imp).map((h) => `${h.layer}.${h.head}`), ['1.0', '0.0', '1.1', '0.1']);
  assert.deepEqual(flatHeads(heads, { ...order, flat: true, minValue: 0.1 }, imp).map((h) => `${h.layer}.${h.head}`), ['1.0', '0.0']);
  // by a head metric the flat list is sorted by that metric, nulls last
  assert.deepEqual(flatHeads(heads, { metric: 'induction', sort: false, minValue: null, flat: true }).map((h) => `${h.layer}.${h.head}`), ['0.1', '1.0', '0.0', '1.1']);
  // without a ranking every head's importance is unknown: layer order kept (ties)
  assert.deepEqual(flatHeads(heads, { ...order, flat: true }, null).map((h) => `${h.layer}.${h.head}`), ['0.0', '0.1', '1.0', '1.1']);
});

test('grid: importance scale is single-hue without negative harm and diverging (symmetric) with it', () => {
  const kl = view('kl', [[0, 0.5], [0.25, 1]]);
  const d = importanceDomain(kl);
  assert.deepEqual(d, { diverging: false, hi: 1, min: 0, max: 1 });
  assert.equal(importanceFraction(0.25, d), 0.25);
  const lp = view('logprob', [[0.5, -1], [-2, 0]]); // harms −0.5, 1, 2, 0
  const dd = importanceDomain(lp);
  assert.equal(dd.diverging, true);
  assert.equal(dd.hi, 2);
  assert.equal(importanceFraction(-0.5, dd), -0.25);
  assert.equal(importanceFraction(2, dd), 1);
  assert.equal(importanceFraction(null, dd), null);
  const idx = importanceIndex(lp, 2, 2);
  assert.equal(headHarm(lp, idx, 2, { layer: 1, head: 0 }), 2);
  assert.equal(headHarm(null, importanceIndex(null, 2, 2), 2, { layer: 1, head: 0 }), null);
  assert.deepEqual(importanceDomain(null), { diverging: false, hi: 1, min: null, max: null });
  assert.deepEqual(importanceDomain(view('loss', [[0, 0]])).hi, 1, 'all-zero harm does not divide by zero');
  assert.equal(importanceOptionDescription(lp), 'Each head masked alone: Δ log p of " Paris" at the last position (Michel et al. 2019)');
  assert.equal(importanceInfoLine(view('kl', [[0]])), 'Each head masked alone: mean KL(original ‖ masked) over the prompt (nats); larger = masking changes the predictions more. Michel et al. 2019, Are Sixteen Heads Really Better than One?');
  assert.equal(metricOptionDescription('sink'), 'mean attention to the first token (Xiao et al. 2023)');
  assert.equal(metricInfoLine('sink'), 'mean attention to the first token. Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks.');
});

test('validation: a ranking from the host is checked; the panel may ask for importance and rollout', () => {
  const ok = validate(() => importanceView(view('loss', [[0.1, 0.2]]), 'v'));
  assert.equal(ok.ok, true);
  const dup = view('loss', [[0.1]]);
  dup.heads.push({ ...dup.heads[0]! });
  assert.match((validate(() => importanceView(dup, 'v')) as { error: string }).error, /v\.heads\[1\]: head 0\.0 appears twice/);
  const nan = view('loss', [[Number.NaN]]);
  assert.match((validate(() => importanceView(nan, 'v')) as { error: string }).error, /v\.heads\[0\]\.value: expected a finite number/);
  assert.match((validate(() => importanceView({ ...view('loss', []), metric: 'acc' }, 'v')) as { error: string }).error, /v\.metric/);
  const msg = (settings: unknown) => parseFromWebview({ messageId: 1, body: { type: 'setSettings', settings } });
  assert.equal(msg({ metric: 'importance', aggregation: 'rollout' }).ok, true);
  assert.equal(msg({ aggregation: 'flow' }).ok, false);
});
