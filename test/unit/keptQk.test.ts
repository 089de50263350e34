// Kept runs hold queries, keys and row log-sum-exps instead of patterns (graph/attentionScores.ts,
// analysis/kept.ts). On every generated family checkpoint, with no interventions, masked and
// scaled heads, and PASTA emphasis with sink calibration, every probability the kept state gives
// (rows, columns, patterns, the overlay, token details, rollout) equals the inspection graph's own
// softmax output, and the qk graph's head metrics equal the inspection graph's.
//
// Tolerances: the kept p (float64 scores from the qk graph's q and k, lse from its max_key and
// ln p_max) is within 1e-6 of the float64 softmax of those scores (measured ≤ 4.7e-7 on every
// checkpoint). The pattern graph's own p carries its float32 scores' rounding, an ulp of |s| ≈ 20–40
// in these random-weight models (2–4e-6), and onnxruntime rounds the two graphs differently since
// the qk graph's attention runs in a Loop (graph/blockedAttention.ts; the inline pattern graph's
// scale Mul, Transpose and MatMul fuse into one FusedMatMul): measured |p_kept − p_graph| ≤ 4.2e-6,
// hence TOL 5e-6. Both stay within 1e-4 of the float64 reference (engineParity, blockedAttention).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { runInspection, type RunResult } from '../../src/engine/run';
import { answer, patternSource, qkSource, type KeptRun } from '../../src/engine/analysis/kept';
import { rolloutRow } from '../../src/engine/analysis/rollout';
import { attentionScore, type LayerScores } from '../../src/engine/graph/attentionScores';
import { overlayValues } from '../../src/shared/overlay';
import type { Interventions } from '../../src/shared/interventions';
import { makeTinyCheckpoint, TINY_VARIANTS } from '../fixtures/tinyModels';
import { BIG_MEMORY, KEPT_PROMPT, keptCases } from '../fixtures/keptCases';

/** kept vs graph (see the file comment) */
const TOL = 5e-6;
/** kept vs the float64 softmax of the same scores: the lse recovered from max_key and ln p_max */
const EXACT_TOL = 1e-6;
const PROMPT = KEPT_PROMPT;
const BIG = BIG_MEMORY;

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-keptqk-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));


function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** max |p_kept − softmax_float64(s)| over row q of head h: the kept lse against a float64 log-sum-exp. */
function lseError(s: LayerScores, h: number, q: number): number {
  const sc = Array.from({ length: q + 1 }, (_, k) => attentionScore(s, h, q, k));
  const m = Math.max(...sc);
  const lse = m + Math.log(sc.reduce((a, x) => a + Math.exp(x - m), 0));
  return Math.max(...sc.map((x) => Math.abs(Math.exp(x - lse) - Math.exp(x - s.lse[h * s.T + q]!))));
}

function keptFrom(r: RunResult): KeptRun {
  return { runId: 1, T: r.tokens.length, L: r.model.layers, H: r.model.heads, attention: qkSource(r.qk!) };
}

for (const v of TINY_VARIANTS) {
  test(`kept q/k/lse = the graph's own patterns: ${v.name}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, v.name), v);
    const model = await Model.open(ck.dir, { cacheRoot: path.join(root, 'cache'), device: 'cpu' });
    try {
      const { layers: L, heads: H } = model.dims;
      const maxTokens = Math.min(20, model.dims.maxPositions);
      for (const [label, interventions] of keptCases(L, H)) {
        const req = { prompt: PROMPT, interventions, maxTokens };
        const full = await runInspection(model, { ...req, attention: 'all' }, undefined, undefined, BIG);
        const qk = await runInspection(model, req, undefined, undefined, { ...BIG, qk: true });
        const T = full.tokens.length;
        assert.ok(T >= 12, `${label}: ${T} tokens`);
        assert.equal(qk.patterns.size, 0, 'a qk run fetches no patterns');
        assert.equal(qk.qk!.length, L);
        // The same head metrics from the same nodes.
        full.heads.forEach((h, i) => {
          for (const m of ['entropy', 'sink', 'prevToken', 'selfAttn', 'induction', 'duplicateToken'] as const) {
            const a = h[m];
            const b = qk.heads[i]![m];
            assert.ok(a === b || (a !== null && b !== null && Math.abs(a - b) < TOL), `${label}: L${h.layer}H${h.head} ${m} ${a} vs ${b}`);
          }
        });
        const kept = keptFrom(qk);
        const fromGraph: KeptRun = { runId: 2, T, L, H, attention: patternSource(full.patterns, T) };
        let worst = 0;
        let exact = 0;
        const row = new Float64Array(T);
        const col = new Float64Array(T);
        for (let l = 0; l < L; l++) {
          const p = full.patterns.get(l)!;
          for (let h = 0; h < H; h++) {
            const want = p.subarray(h * T * T, (h + 1) * T * T);
            worst = Math.max(worst, maxDiff(answer(kept, { what: 'pattern', layer: l, head: h }).matrix!, want));
            for (let i = 0; i < T; i++) {
              kept.attention.row(l, h, i, row);
              worst = Math.max(worst, maxDiff(row, want.subarray(i * T, (i + 1) * T)));
              kept.attention.column(l, h, i, col);
              worst = Math.max(worst, maxDiff(col, Array.from({ length: T }, (_, q) => want[q * T + i]!)));
              // masked keys are exactly 0, and so is −∞ out of the score function
              for (let k = i + 1; k < T; k++) assert.equal(row[k], 0);
              exact = Math.max(exact, lseError(qk.qk![l]!, h, i));
              assert.equal(attentionScore(qk.qk![l]!, h, i, T - 1 > i ? T - 1 : i) === -Infinity, T - 1 > i);
            }
          }
        }
        assert.ok(worst < TOL, `${label}: max |p_kept − p_graph| = ${worst}`);
        assert.ok(exact < EXACT_TOL, `${label}: max |p_kept − p_float64| = ${exact}`);
        // The overlay's row and column, the aggregate, token details and rollout from the kept state.
        const weights = new Float32Array(L * H).map((_, i) => (i % 3 === 1 ? 0 : 1 + (i % 4)));
        const agg = answer(fromGraph, { what: 'aggregate', weights }).matrix!;
        assert.ok(maxDiff(answer(kept, { what: 'aggregate', weights }).matrix!, agg) < TOL, `${label}: aggregate`);
        for (const q of [0, 5, T - 1]) {
          for (const direction of ['from', 'to'] as const) {
            const got = answer(kept, { what: 'overlay', q, direction, weights }).row!;
            assert.ok(maxDiff(got, overlayValues(agg, T, q, direction)) < TOL, `${label}: overlay ${direction} ${q}`);
            const dk = answer(kept, { what: 'tokenDetail', q, direction, weights, top: 4 }).detail!;
            const dg = answer(fromGraph, { what: 'tokenDetail', q, direction, weights, top: 4 }).detail!;
            assert.equal(dk.items.length, dg.items.length);
            dk.items.forEach((it, j) => {
              assert.ok(Math.abs(it.value - dg.items[j]!.value) < TOL, `${label}: token detail ${direction} ${q}`);
              it.heads.forEach((hh, n) => assert.ok(Math.abs(hh.value - dg.items[j]!.heads[n]!.value) < TOL));
            });
          }
          const all = new Float32Array(L * H).fill(1);
          assert.ok(maxDiff(answer(kept, { what: 'rollout', q, weights: all }).row!, rolloutRow({ L, H, T, patterns: full.patterns }, q)) < TOL, `${label}: rollout ${q}`);
          assert.ok(maxDiff(answer(kept, { what: 'rollout', q, weights }).row!, answer(fromGraph, { what: 'rollout', q, weights }).row!) < TOL, `${label}: rollout over some heads ${q}`);
        }
      }
    } finally {
      await model.release();
    }
  });
}

test('saving a kept run with tensors writes the patterns computed head by head from the kept state', async () => {
  const { savedRunFrom } = await import('../../src/engine/runs/runFile');
  const { patternInto } = await import('../../src/engine/analysis/kept');
  const v = TINY_VARIANTS.find((x) => x.name === 'gemma2-softcap-window')!;
  const ck = makeTinyCheckpoint(path.join(root, 'save-' + v.name), v);
  const model = await Model.open(ck.dir, { cacheRoot: path.join(root, 'cache'), device: 'cpu' });
  try {
    const iv: Interventions = { scales: [{ layer: 1, head: 0, value: 0 }], emphasis: { start: 0, end: 7, alpha: 0.1, heads: 'all' }, sink: null };
    const full = await runInspection(model, { prompt: PROMPT, interventions: iv, attention: 'all', allLogits: true }, undefined, undefined, BIG);
    const qk = await runInspection(model, { prompt: PROMPT, interventions: iv, allLogits: true }, undefined, undefined, { ...BIG, qk: true });
    const kept = keptFrom(qk);
    const saved = savedRunFrom({ ...qk, patterns: new Map() }, PROMPT, iv, { tensors: true, autoSaved: false, decode: String, patternInto: (l, h, out) => patternInto(kept, l, h, out) });
    const { layers: L, heads: H } = model.dims;
    const T = qk.tokens.length;
    const want = new Float32Array(L * H * T * T);
    for (let l = 0; l < L; l++) want.set(full.patterns.get(l)!, l * H * T * T);
    assert.ok(maxDiff(saved.patterns!, want) < TOL);
    assert.equal(saved.omitted, undefined);
  } finally {
    await model.release();
  }
});
