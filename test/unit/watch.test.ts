// Watched tokens and activation patching as the views show them: lookup outcomes, the logit
// difference pair, patching ranks, scales and staleness, and the validation of their messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addWatched, emptyWatch, logitDiff, lookupOutcome, MAX_WATCHED, quoteToken, watchPair, type WatchedTokenView } from '../../src/shared/watch';
import { formatEffect, patchingDomain, patchingFraction, patchingStaleReason, rankPatching, type PatchingView } from '../../src/shared/patching';
import { importanceKey } from '../../src/shared/importance';
import { lensLayers, patchingView, validate, watchView } from '../../src/shared/validate';
import { parseFromWebview } from '../../src/extension/panelMessages';
import { orderValue } from '../../src/extension/viewLogic';
import { sanitizeUiState } from '../../webview/logic/uiState';

const tok = (id: number, text: string) => ({ id, text });
const stat = (prob: number, logit: number, rank: number) => ({ prob, logprob: Math.log(prob), logit, rank });

test('lookupOutcome: one token is watched; several tokens or an ambiguous text say why and offer the tokens', () => {
  assert.deepEqual(lookupOutcome(' table', { pieces: [tok(7, ' table')], spaced: null }), { token: tok(7, ' table') });
  // the spaced form is the same token (a tokenizer that adds the prefix space itself): not ambiguous
  assert.deepEqual(lookupOutcome('table', { pieces: [tok(7, ' table')], spaced: [tok(7, ' table')] }), { token: tok(7, ' table') });
  const amb = lookupOutcome('table', { pieces: [tok(3, 'table')], spaced: [tok(7, ' table')] });
  assert.ok('message' in amb);
  assert.match(amb.message, /“table” is ambiguous: it is token 3 “table”, and with a leading space token 7 “·table”/);
  assert.deepEqual(amb.candidates, [tok(7, ' table'), tok(3, 'table')]);
  const multi = lookupOutcome('tablecloth', { pieces: [tok(3, 'table'), tok(9, 'cl'), tok(11, 'oth')], spaced: [tok(20, ' tab'), tok(21, 'lecloth')] });
  assert.ok('message' in multi);
  assert.match(multi.message, /“tablecloth” is 3 tokens \(“table” \+ “cl” \+ “oth”\); a watched token is a single token: pick one/);
  assert.deepEqual(multi.candidates.map((c) => c.id), [3, 9, 11]);
  const multiSpaced = lookupOutcome('tablecloth', { pieces: [tok(3, 'table'), tok(9, 'cl')], spaced: [tok(30, ' tablecloth')] });
  assert.ok('message' in multiSpaced);
  assert.match(multiSpaced.message, /and “·tablecloth” with a leading space is one/);
  assert.deepEqual(multiSpaced.candidates.map((c) => c.id), [30, 3, 9]);
  const none = lookupOutcome('x', { pieces: [], spaced: null });
  assert.ok('message' in none && none.candidates.length === 0);
  assert.equal(quoteToken(' a\nb\t'), '“·a↵b→”');
});

test('watch list: no duplicates, a bound, the pair falls back to the first two, logit difference', () => {
  let l = addWatched([], tok(1, 'a'));
  l = addWatched(l, tok(1, 'a'));
  assert.equal(l.length, 1);
  for (let i = 2; i <= MAX_WATCHED; i++) l = addWatched(l, tok(i, `t${i}`));
  assert.throws(() => addWatched(l, tok(99, 'z')), /at most 8 tokens/);
  const v = (id: number, cur: number): WatchedTokenView => ({ ...tok(id, `t${id}`), current: stat(0.1, cur, 2), baseline: null });
  const tokens = [v(1, 5), v(2, 3.5), v(3, 1)];
  assert.deepEqual(watchPair({ tokens, pair: null })!.map((t) => t.id), [1, 2]);
  assert.deepEqual(watchPair({ tokens, pair: [3, 1] })!.map((t) => t.id), [3, 1]);
  assert.deepEqual(watchPair({ tokens, pair: [3, 9] })!.map((t) => t.id), [1, 2], 'a pair naming an unwatched token falls back');
  assert.equal(watchPair({ tokens: [v(1, 0)], pair: null }), null);
  assert.equal(logitDiff(tokens[0]!.current, tokens[1]!.current), 1.5);
  assert.equal(logitDiff(tokens[0]!.current, null), null);
});

const pv = (effects: (number | null)[]): PatchingView => ({
  targetId: 4,
  targetText: ' table',
  clean: -0.5,
  corrupt: -4,
  heads: effects.map((e, i) => ({ layer: Math.floor(i / 2), head: i % 2, value: e === null ? -4 : -4 + 3.5 * e, effect: e })),
  cleanLabel: 'clean.prompt',
  tokens: 12,
  runId: 3,
  interventionsIgnored: false,
});

test('patching: ranking (nulls last), effect text, a 0..1 scale that widens for overshoot and diverges for negatives', () => {
  const v = pv([0.1, 0.9, null, -0.2]);
  assert.deepEqual(rankPatching(v).map((h) => `${h.layer}.${h.head}`), ['0.1', '0.0', '1.1', '1.0']);
  assert.equal(formatEffect(-0.2), '−0.20');
  assert.equal(formatEffect(-0.0001), '0.00');
  assert.equal(formatEffect(null), 'n/a');
  const d = patchingDomain(v);
  assert.deepEqual(d, { hi: 1, diverging: true, min: -0.2, max: 0.9 });
  assert.equal(patchingFraction(0.9, d), 0.9);
  assert.equal(patchingFraction(-0.2, d), -0.2);
  assert.equal(patchingFraction(null, d), null);
  const over = patchingDomain(pv([1.6, 0.2]));
  assert.equal(over.hi, 1.6);
  assert.equal(over.diverging, false);
  assert.equal(patchingFraction(0.8, over), 0.5);
  assert.deepEqual(patchingDomain(pv([null, null])), { hi: 1, diverging: false, min: null, max: null });
  // the Heads view orders by the effect
  const hv = { layer: 0, head: 1, entropy: 1, sink: 0, prevToken: 0, selfAttn: 0, induction: null, duplicateToken: null, scale: 1 };
  assert.equal(orderValue(hv, 'patching', null, v), 0.9);
  assert.equal(orderValue(hv, 'patching', null, null), null);
});

test('patching staleness: either prompt, the model, the interventions or the token limit', () => {
  const k = { ...importanceKey('m', 'doc', 'corrupt text', { scales: [] }, 1024), clean: 'clean text' };
  assert.equal(patchingStaleReason(k, { ...k }), null);
  assert.equal(patchingStaleReason(k, { ...k, clean: 'other' }), 'the clean prompt changed');
  assert.equal(patchingStaleReason(k, { ...k, prompt: 'other' }), 'the inspected (corrupt) prompt changed');
  assert.equal(patchingStaleReason(k, { ...k, model: 'n' }), 'the model changed');
  assert.equal(patchingStaleReason(k, { ...k, interventions: '{"scales":[1]}' }), 'the interventions changed');
  assert.equal(patchingStaleReason(k, { ...k, maxTokens: 8 }), 'the token limit (attnscope.maxTokens) changed');
});

test('validation: watch view, patching view and lens layers; panel messages for the lens and watched tokens', () => {
  const w = { ...emptyWatch(), tokens: [{ ...tok(5, ' table'), current: stat(0.4, 9, 1), baseline: null }], runId: 3, steered: true };
  assert.deepEqual(validate(() => watchView(w, 'w')), { ok: true, value: w });
  assert.match((validate(() => watchView({ ...w, tokens: [{ ...w.tokens[0], current: { ...stat(0.4, 9, 1), prob: 1.5 } }] }, 'w')) as { error: string }).error, /^w\.tokens\[0\]\.current\.prob: expected a number ≥ 0 and ≤ 1/);
  assert.match((validate(() => watchView({ ...w, pair: [1] }, 'w')) as { error: string }).error, /w\.pair: expected two token ids/);
  const p = pv([0.5, null]);
  assert.deepEqual(validate(() => patchingView(p, 'p')), { ok: true, value: p });
  assert.match((validate(() => patchingView({ ...p, heads: [p.heads[0], p.heads[0]] }, 'p')) as { error: string }).error, /appears twice/);
  const layers = [
    { layer: 0, top: [{ id: 1, text: 'a', prob: 0.5 }], watched: [{ id: 5, prob: 0.01, logit: -1, rank: 40 }] },
    { layer: 1, top: [{ id: 2, text: 'b', prob: 0.7 }], watched: [{ id: 5, prob: 0.2, logit: 3, rank: 2 }] },
  ];
  assert.ok(validate(() => lensLayers(layers, 'l')).ok);
  assert.match((validate(() => lensLayers([layers[1]], 'l')) as { error: string }).error, /l\[0\]\.layer: expected the layers in order from 0/);
  assert.match((validate(() => lensLayers([{ ...layers[0], watched: [{ id: 5, prob: 0.1, logit: 1, rank: 0 }] }], 'l')) as { error: string }).error, /rank: expected an integer/);

  const ok = (body: unknown) => {
    const r = parseFromWebview({ messageId: 1, body });
    assert.ok(r.ok, JSON.stringify(r));
    return r.value.body;
  };
  assert.deepEqual(ok({ type: 'requestLens', runId: 4, position: 2, extra: 1 }), { type: 'requestLens', runId: 4, position: 2 });
  assert.deepEqual(ok({ type: 'watchText', text: ' table' }), { type: 'watchText', text: ' table' });
  assert.deepEqual(ok({ type: 'setWatchPair', pair: [3, 4] }), { type: 'setWatchPair', pair: [3, 4] });
  assert.deepEqual(ok({ type: 'setWatchPair', pair: null }), { type: 'setWatchPair', pair: null });
  assert.deepEqual(ok({ type: 'setSettings', settings: { metric: 'patching' } }), { type: 'setSettings', settings: { metric: 'patching' } });
  const bad = (body: unknown, re: RegExp) => {
    const r = parseFromWebview({ messageId: 1, body });
    assert.ok(!r.ok);
    assert.match(r.error, re);
  };
  bad({ type: 'watchText', text: '' }, /body\.text: expected a non-empty string/);
  bad({ type: 'watchToken', id: -1 }, /body\.id: expected an integer/);
  bad({ type: 'setWatchPair', pair: [1, 2, 3] }, /body\.pair: expected at most 2 items/);
  bad({ type: 'requestLens', runId: 1, position: 1.5 }, /body\.position/);
});

test('UI state keeps a sanitized watch list and the lens columns', () => {
  const s = sanitizeUiState({ v: 1, watched: [{ id: 4, text: ' a' }, { id: -1, text: 'x' }, { id: 2 }, 'junk'], watchedModel: 'default model', lensTopK: 10 });
  assert.deepEqual(s.watched, [{ id: 4, text: ' a' }]);
  assert.equal(s.watchedModel, 'default model');
  assert.equal(s.lensTopK, 10);
  assert.equal(sanitizeUiState({ v: 1, lensTopK: 7 }).lensTopK, 5);
  assert.deepEqual(sanitizeUiState(null).watched, []);
});
