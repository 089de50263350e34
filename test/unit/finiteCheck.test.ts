// The post-run numeric check: which metrics may be NaN (undefined) and which may not, and what the
// one-line NUMERIC error says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFiniteRun, duplicateTokenDefined, firstNonFiniteAttentionLayer, inductionDefined } from '../../src/engine/finiteCheck';
import { METRICS } from '../../src/shared/heads';
import { EngineError } from '../../src/engine/errors';

const L = 3, H = 2, M = METRICS.length, V = 4;
const IND = METRICS.indexOf('induction');
const DUP = METRICS.indexOf('duplicateToken');
const metrics = (fill: (l: number, h: number, i: number) => number) => {
  const m = new Float32Array(L * H * M);
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let i = 0; i < M; i++) m[(l * H + h) * M + i] = fill(l, h, i);
  return m;
};

test('induction is defined when some k < q has ids[k-1] == ids[q]', () => {
  assert.equal(inductionDefined([1, 2, 3, 4]), false);
  assert.equal(inductionDefined([1, 2, 1]), true); // q=2, k=1: ids[0] == ids[2]
  assert.equal(inductionDefined([1, 1]), false); // q=1 needs k=0, which has no ids[k-1]
  assert.equal(inductionDefined([]), false);
});

test('metrics: NaN induction without a repeat, and anything at T = 1, are legitimate', () => {
  // [5, 6, 7]: no token repeats, so neither induction nor duplicate-token is defined
  const noInd = metrics((_l, _h, i) => (i === IND || i === DUP ? NaN : 0.5));
  assert.equal(firstNonFiniteAttentionLayer(noInd, L, H, [5, 6, 7]), -1);
  assert.equal(firstNonFiniteAttentionLayer(metrics(() => NaN), L, H, [5]), -1);
  assert.equal(firstNonFiniteAttentionLayer(noInd, L, H, [5, 6, 9, 5, 6]), 0, 'with a repeat, induction must be finite');
  // [5, 5, 7]: a duplicate (duplicate-token defined) but no induction row (q=1 has no k-1 before it)
  const dupOnly = metrics((_l, _h, i) => (i === IND ? NaN : 0.5));
  assert.equal(firstNonFiniteAttentionLayer(dupOnly, L, H, [5, 5, 7]), -1);
  assert.equal(firstNonFiniteAttentionLayer(noInd, L, H, [5, 5, 7]), 0, 'with a duplicate, duplicate-token must be finite');
  assert.equal(duplicateTokenDefined([1, 2, 3]), false);
  assert.equal(duplicateTokenDefined([1, 2, 1]), true);
  const layer2 = metrics((l, h, i) => (l === 2 && h === 1 && i === 0 ? Infinity : 0.5));
  assert.equal(firstNonFiniteAttentionLayer(layer2, L, H, [5, 6, 7]), 2);
});

test('checkFiniteRun: finite passes; the first non-finite position and layer are named in one line', () => {
  const ok = metrics(() => 0.5);
  checkFiniteRun({ L, H, V, ids: [1, 2, 3], logits: new Float32Array(V).fill(1), metrics: ok });
  const err = (f: () => void) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof EngineError);
      assert.equal(e.code, 'NUMERIC');
      assert.ok(!e.message.includes('\n'));
      return e.message;
    }
    assert.fail('expected a NUMERIC error');
  };
  const logits = Float32Array.of(0, 1, NaN, 2);
  assert.match(err(() => checkFiniteRun({ L, H, V, ids: [1, 2, 3], logits, metrics: ok, tokenAt: (p) => ` (#${p})` })), /^the model produced NaN in its logits at position 2 \(#2\); every layer's attention is finite/);
  const all = new Float32Array(3 * V).fill(0);
  all[V + 3] = -Infinity;
  assert.match(err(() => checkFiniteRun({ L, H, V, ids: [1, 2, 3], logits: all })), /produced -Infinity in its logits at position 1; the weights/);
  const hidden = new Float32Array(3 * 2);
  hidden[5] = Infinity;
  const bad = metrics((l) => (l >= 1 ? NaN : 0.5));
  assert.match(err(() => checkFiniteRun({ L, H, V, ids: [1, 2, 3], logits, hidden, metrics: bad }, 'X')), /^X produced Infinity in its final hidden state at position 2; layer 1's attention is the first that is non-finite \(so it arose in layer 0's attention output or MLP/);
  assert.match(err(() => checkFiniteRun({ L, H, V, ids: [1, 2, 3], logits: new Float32Array(V), metrics: bad })), /^the model produced non-finite attention \(NaN or Infinity in the head metrics\); layer 1's/);
});
