// Kept-run queries (src/engine/analysis/kept.ts): the rollout query over the enabled heads, checked
// against an independent float64 rollout formed as the full matrix product over those heads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, patternSource, rollout, type KeptRun } from '../../src/engine/analysis/kept';
import { rolloutRow } from '../../src/engine/analysis/rollout';

/** A seeded causal kept run: every row a softmax over keys 0..q. */
function keptRun(L: number, H: number, T: number, seed: number): KeptRun & { patterns: Map<number, Float32Array> } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const patterns = new Map<number, Float32Array>();
  for (let l = 0; l < L; l++) {
    const p = new Float32Array(H * T * T);
    for (let h = 0; h < H; h++)
      for (let q = 0; q < T; q++) {
        const e = Array.from({ length: q + 1 }, () => Math.exp(3 * rnd()));
        const z = e.reduce((a, b) => a + b, 0);
        for (let k = 0; k <= q; k++) p[(h * T + q) * T + k] = e[k]! / z;
      }
    patterns.set(l, p);
  }
  return { runId: 1, T, L, H, patterns, attention: patternSource(patterns, T) };
}

/** R = Ā_{L−1}⋯Ā_0 with Ā_l = ½·mean over the included heads + ½·I (identity when none), rows renormalised. */
function fullRollout(run: KeptRun & { patterns: Map<number, Float32Array> }, included: (l: number, h: number) => boolean): Float64Array[] {
  const { T, L, H } = run;
  let R = Array.from({ length: T }, (_, i) => Float64Array.from({ length: T }, (_, j) => (i === j ? 1 : 0)));
  for (let l = 0; l < L; l++) {
    const heads = Array.from({ length: H }, (_, h) => h).filter((h) => included(l, h));
    const p = run.patterns.get(l)!;
    const A = Array.from({ length: T }, (_, i) => {
      const row = new Float64Array(T);
      for (let k = 0; k < T; k++) {
        let m = 0;
        for (const h of heads) m += p[(h * T + i) * T + k]!;
        row[k] = heads.length ? 0.5 * (m / heads.length) + (i === k ? 0.5 : 0) : i === k ? 1 : 0;
      }
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((v) => v / sum);
    });
    R = A.map((a) => {
      const out = new Float64Array(T);
      for (let j = 0; j < T; j++) for (let k = 0; k < T; k++) out[k]! += a[j]! * R[j]![k]!;
      return out;
    });
  }
  return R;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst < tol, `max |diff| ${worst}`);
};

test('kept rollout query: all heads enabled = rolloutRow of the kept patterns; rows sum to 1', () => {
  const run = keptRun(3, 4, 9, 7);
  const all = new Float32Array(12).fill(1);
  for (let q = 0; q < run.T; q++) {
    const got = answer(run, { what: 'rollout', q, weights: all }).row!;
    assert.equal(got.length, run.T);
    close(got, rolloutRow(run, q));
    close(got, fullRollout(run, () => true)[q]!);
    assert.ok(Math.abs(got.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    for (let k = q + 1; k < run.T; k++) assert.equal(got[k], 0, 'causal: nothing from later tokens');
  }
});

test('kept rollout query: masked heads leave the mean; a fully masked layer passes the residual only', () => {
  const run = keptRun(3, 4, 8, 11);
  const w = new Float32Array(12).fill(1);
  w[0 * 4 + 1] = 0; // L0H1 masked
  w[2 * 4 + 0] = 0;
  w[2 * 4 + 3] = 0; // L2H0, L2H3 masked
  const want = fullRollout(run, (l, h) => w[l * 4 + h] !== 0);
  for (let q = 0; q < run.T; q++) close(rollout(run, q, w), want[q]!);
  // Different from the all-heads rollout (the masked heads' patterns are not counted).
  const allRow = rolloutRow(run, run.T - 1);
  const masked = rollout(run, run.T - 1, w);
  assert.ok(allRow.some((v, i) => Math.abs(v - masked[i]!) > 1e-4));

  const layerOff = new Float32Array(12).fill(1);
  for (let h = 0; h < 4; h++) layerOff[1 * 4 + h] = 0; // all of layer 1
  const want2 = fullRollout(run, (l) => l !== 1);
  for (let q = 0; q < run.T; q++) close(rollout(run, q, layerOff), want2[q]!);
  // With nothing enabled anywhere, every layer is the identity: the row is the token itself.
  assert.deepEqual(Array.from(rollout(run, 5, new Float32Array(12))), [0, 0, 0, 0, 0, 1, 0, 0]);
  // The kept patterns are not modified by a query.
  assert.deepEqual(rolloutRow(run, run.T - 1), allRow);
});

test('pattern tiles: an exact window is the pattern\'s slice; a larger one is the max over each block; bad windows are refused', async () => {
  const { patternTile } = await import('../../src/engine/analysis/kept');
  const run = keptRun(2, 3, 23, 5);
  const p = run.patterns.get(1)!;
  const T = run.T;
  const at = (q: number, k: number) => p[(2 * T + q) * T + k]!;
  const exact = patternTile(run, 1, 2, 4, 15, 2, 11, 64);
  assert.equal(exact.pooled, false);
  assert.deepEqual([exact.rowEdges.length, exact.colEdges.length], [12, 10]);
  for (let q = 4; q < 15; q++) for (let k = 2; k < 11; k++) assert.equal(exact.values[(q - 4) * 9 + (k - 2)], at(q, k));
  const pooled = patternTile(run, 1, 2, 0, T, 0, T, 5);
  assert.equal(pooled.pooled, true);
  assert.equal(pooled.values.length, 25);
  for (let r = 0; r < 5; r++) {
    for (let c = 0; c < 5; c++) {
      let m = 0;
      for (let q = pooled.rowEdges[r]!; q < pooled.rowEdges[r + 1]!; q++) for (let k = pooled.colEdges[c]!; k < pooled.colEdges[c + 1]!; k++) m = Math.max(m, at(q, k));
      assert.equal(pooled.values[r * 5 + c], Math.fround(m), `block ${r},${c}`);
    }
  }
  assert.equal(pooled.rowEdges[0], 0);
  assert.equal(pooled.rowEdges[5], T);
  for (const bad of [[0, 0, 0, 5], [0, T + 1, 0, 5], [3, 2, 0, 5], [0, 5, -1, 5]]) {
    assert.throws(() => patternTile(run, 1, 2, bad[0]!, bad[1]!, bad[2]!, bad[3]!, 8), /pattern window .* is not inside 0\.\.23/);
  }
  assert.throws(() => patternTile(run, 1, 2, 0, 5, 0, 5, 0), /size 0 must be a whole number/);
});
