// Attention in blocks of query rows (src/engine/graph/blockedAttention.ts): with the blocks forced
// to 3 rows (13 and 6+1+1 tokens: several blocks, the last one padded), every graph that runs the
// Loop — the qk inspection (logits, head metrics, the kept queries/keys/lse every probability is
// recomputed from), the plain graph with every position's logits, and the KV-cache graph's prefill
// and steps — equals the independent float64 reference on every generated family checkpoint, with
// masked/scaled heads and a PASTA-style bias in play.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { blockLimitsFor, Model, type KvCache } from '../../src/engine/model';
import { BLOCK_LIMITS_INPUT, blockPlan, CPU_BLOCK_LIMITS, GPU_BLOCK_LIMITS, MATCH_LIST_VALUES } from '../../src/engine/graph/blockedAttention';
import { GraphBuilder } from '../../src/engine/graph/onnxGraph';
import { ort } from '../../src/engine/runtime/ortSession';
import { METRIC_ORDER } from '../../src/engine/graph/inspectionGraph';
import { layerScores, probabilityRow } from '../../src/engine/graph/attentionScores';
import { makeTinyCheckpoint, mulberry32, TINY_VARIANTS, type TinyCheckpoint } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';
import { headMetricsFromProbs } from '../reference/metrics';
import { logSoftmax } from '../reference/logSoftmax';

const LOGPROB_TOL = 1e-3;
const ATTN_TOL = 1e-4;
const METRIC_TOL = 1e-4;
const ROWS = 3;

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-blocks-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Seeded ids with a repeated stretch (induction and duplicate-token metrics defined). */
function promptIds(ck: TinyCheckpoint, T: number, seed: number): number[] {
  const rnd = mulberry32(seed);
  const first = Array.from({ length: Math.ceil(T / 2) }, () => Math.floor(rnd() * ck.tokenizerVocabSize));
  return [...first, ...first].slice(0, T);
}

function maxLogProbDiff(got: Float32Array, at: number, want: ArrayLike<number>, V: number): number {
  const a = logSoftmax(got, at * V, V);
  const b = logSoftmax(want, 0, V);
  let d = 0;
  for (let i = 0; i < V; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

// The blocks forced two ways: a graph built with 3-row blocks (a constant), and the default graph
// fed [3 rows, any values] through its block limits input at run time (as the engine feeds GPU limits);
// fed once more with room for no run-wide match list, so every layer's blocks compute their own
// induction and duplicate-token matches (hoistMatches' fallback).
const FORCED = [
  { how: 'graph', opts: { blockRows: ROWS } },
  { how: 'limits input', opts: { blockLimits: [ROWS, 1 << 22, MATCH_LIST_VALUES] as const } },
  { how: 'no match lists', opts: { blockLimits: [ROWS, 1 << 22, 1] as const } },
];
for (const v of TINY_VARIANTS) for (const forced of FORCED) {
  test(`attention in ${ROWS}-row blocks (${forced.how}) equals the reference: ${v.name}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, `${v.name}-${forced.how.replace(/ /g, '-')}`), v);
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache'), ...forced.opts });
    try {
      const { layers: L, heads: H, vocabSize: V } = model.dims;
      const T = Math.min(13, model.dims.maxPositions);
      assert.ok(T % ROWS !== 0 && T > 2 * ROWS, 'several blocks, the last one padded');
      const ids = promptIds(ck, T, 7);
      // L0H1 masked, the last layer's head 0 scaled; a PASTA-style bias on keys outside 2..6, different
      // for each of layer 0's heads (the folded bias is one key dimension per head of a KV group), and
      // a sink calibration (ln 3 on key 0) on the last layer's last head only.
      const scale = (l: number, h: number) => (l === 0 && h === 1 ? 0 : l === L - 1 && h === 0 ? 1.7 : 1);
      const bias = (l: number, h: number, k: number) =>
        l === 0 && (k < 2 || k > 6) ? (Math.log(0.05) * (h + 1)) / 2 : l === L - 1 && h === H - 1 && k === 0 ? Math.log(3) : 0;
      const headScale = new Float32Array(L * H).map((_, i) => scale(Math.floor(i / H), i % H));
      const biasFlat = (K: number) => {
        const b = new Float32Array(L * H * K);
        for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let k = 0; k < K; k++) b[(l * H + h) * K + k] = bias(l, h, k);
        return b;
      };
      const refOpts = (K: number) => ({
        headScale: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => scale(l, h))),
        bias: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => Array.from({ length: K }, (_, k) => bias(l, h, k)))),
      });
      const attnBias = biasFlat(T);
      const ref = referenceForward(ck.config, ck.tensors, ids, refOpts(T));

      // The qk inspection: last logits, head metrics, and every probability from the kept state.
      const qk = await model.forward({ ids, headScale, attnBias }, { inspect: true, qk: true });
      assert.ok(maxLogProbDiff(qk.logits, 0, ref.logits[T - 1]!, V) <= LOGPROB_TOL, 'qk logits');
      let maxAttn = 0;
      let maxMetric = 0;
      const row = new Float64Array(T);
      for (let l = 0; l < L; l++) {
        const s = layerScores(model.dims, l, T, { q: qk.qk!.q[l]!, k: qk.qk!.k[l]!, maxKey: qk.qk!.maxKey[l]!, logMaxP: qk.qk!.logMaxP[l]! }, attnBias);
        const refLayer = new Float64Array(H * T * T);
        for (let h = 0; h < H; h++) {
          refLayer.set(ref.attn[l]![h]!, h * T * T);
          for (let q = 0; q < T; q++) {
            probabilityRow(s, h, q, row);
            for (let k = 0; k < T; k++) maxAttn = Math.max(maxAttn, Math.abs(row[k]! - ref.attn[l]![h]![q * T + k]!));
          }
        }
        const want = headMetricsFromProbs(refLayer, H, T, ids);
        for (let h = 0; h < H; h++) {
          METRIC_ORDER.forEach((name, i) => {
            const have = qk.metrics![(l * H + h) * METRIC_ORDER.length + i]!;
            const w = want[h]![name];
            if (w === null) assert.ok(Number.isNaN(have), `L${l}H${h} ${name} should be undefined, got ${have}`);
            else maxMetric = Math.max(maxMetric, Math.abs(have - w));
          });
        }
      }
      assert.ok(maxAttn <= ATTN_TOL, `kept attention: max |Δ| ${maxAttn}`);
      assert.ok(maxMetric <= METRIC_TOL, `head metrics: max |Δ| ${maxMetric}`);

      // The plain graph, every position's logits.
      const plain = await model.forward({ ids, headScale, attnBias }, { inspect: false, allLogits: true });
      let maxLp = 0;
      for (let t = 0; t < T; t++) maxLp = Math.max(maxLp, maxLogProbDiff(plain.logits, t, ref.logits[t]!, V));
      assert.ok(maxLp <= LOGPROB_TOL, `plain logits: max |Δ log-prob| ${maxLp}`);

      // The KV-cache graph: a 7-token prefill (3 blocks), then two one-token steps.
      const seq = ids.slice(0, 7);
      let cache: KvCache | undefined;
      let step = await model.decode(seq, cache, headScale, biasFlat(seq.length));
      for (let n = 0; n < 3; n++) {
        const r = referenceForward(ck.config, ck.tensors, seq, refOpts(seq.length));
        const d = maxLogProbDiff(step.logits, 0, r.logits[seq.length - 1]!, V);
        assert.ok(d <= LOGPROB_TOL, `cached step ${n}: max |Δ log-prob| ${d}`);
        if (n === 2) break;
        seq.push(ids[7 + n]!);
        cache = step.present;
        step = await model.decode([seq[seq.length - 1]!], cache, headScale, biasFlat(seq.length));
      }
      console.log(`${v.name} (${forced.how}): dattn ${maxAttn.toExponential(2)} dmetric ${maxMetric.toExponential(2)} dlogp ${maxLp.toExponential(2)}`);
    } finally {
      await model.release();
    }
  });
}

// The limits input bounds the blocks: B = clamp(min(values / (H·K), rows), 1, T), nb = ⌈T / B⌉,
// read back from a graph of blockPlan alone (the rows are independent, so no model output shows B).
test('the block limits input sets the block size (CPU limits: 64 rows, 2^22 values, 2^22 match-list values)', async () => {
  const H = 9;
  const g = new GraphBuilder('unused.bin');
  const T = g.input('T', 'int64', []);
  const plan = blockPlan(g, H, T, T, g.i64([0], []), g.i64([0]), undefined);
  g.op('Identity', [plan.B], {}, 'B', 'B_out');
  g.op('Identity', [plan.nb], {}, 'nb', 'nb_out');
  g.output('B_out', 'int64', []);
  g.output('nb_out', 'int64', []);
  const session = await ort.InferenceSession.create(Buffer.from(g.encode('plan', '')), { logSeverityLevel: 3, graphOptimizationLevel: 'all' });
  const run = async (t: number, limits: readonly number[] = CPU_BLOCK_LIMITS) => {
    const feeds: Record<string, ort.Tensor> = { T: new ort.Tensor('int64', BigInt64Array.from([BigInt(t)]), []) };
    feeds[BLOCK_LIMITS_INPUT] = new ort.Tensor('int64', BigInt64Array.from(limits, (n) => BigInt(n)), [3]);
    const out = await session.run(feeds);
    return [Number(out['B_out']!.data[0]), Number(out['nb_out']!.data[0])];
  };
  try {
    assert.deepEqual(await run(40), [40, 1], 'CPU: all 40 rows in one block');
    assert.deepEqual(await run(1000), [64, 16], 'CPU: 64 rows');
    assert.deepEqual(await run(8000), [58, 138], 'CPU: the value cap (2^22 / (9 · 8,000) = 58 rows)');
    assert.deepEqual(await run(1000, [5, 1 << 22, 1]), [5, 200], 'fed rows');
    assert.deepEqual(await run(1000, GPU_BLOCK_LIMITS), [1000, 1], 'GPU limits: one block');
    assert.deepEqual(await run(2048, GPU_BLOCK_LIMITS), [1024, 2], 'GPU limits at 2,048 tokens');
    assert.deepEqual(await run(4096, GPU_BLOCK_LIMITS), [910, 5], 'GPU limits at 4,096 tokens: the value cap (2^25 / (9 · 4,096) = 910 rows)');
    assert.deepEqual(await run(100, [64, H * 100 * 7, 1]), [7, 15], 'fed value cap');
    assert.deepEqual(await run(100, [64, 1, 1]), [1, 100], 'at least one row');
  } finally {
    await session.release();
  }
});

test('the engine feeds GPU block limits on CUDA, CPU limits on CPU, an override on either', () => {
  assert.deepEqual(blockLimitsFor('cpu', undefined), CPU_BLOCK_LIMITS);
  assert.deepEqual(blockLimitsFor('cuda', undefined), GPU_BLOCK_LIMITS);
  assert.deepEqual(blockLimitsFor('cpu', [3, 100, 5]), [3, 100, 5]);
  assert.deepEqual(blockLimitsFor('cuda', [3, 100, 5]), [3, 100, 5]);
  assert.throws(() => blockLimitsFor('cpu', [0, 100, 5]), /block limits/);
});

// The run-wide match lists (hoistMatches) read back from a graph of blockPlan alone, against the
// matches counted here per block: for each block of B rows, the flat r·hi + k of every key k < q with
// ids[k − 1] == ids[q] (induction) or ids[k] == ids[q] (duplicate token), hi the block's last row + 1;
// the row weights and own/previous key positions; and the fallback when the lists would not fit.
test('the run-wide match lists hold every block’s induction and duplicate-token matches', async () => {
  const H = 4;
  const g = new GraphBuilder('unused.bin');
  const ids = g.input('ids', 'int64', ['T']);
  const T = g.op('Squeeze', [g.op('Shape', [ids]), g.i64([0])]);
  const plan = blockPlan(g, H, T, T, g.i64([0], []), g.op('Range', [g.i64([0], []), T, g.i64([1], [])]), ids);
  const h = plan.metrics!.hoisted!;
  const outs = { use: h.use, ind: h.ind, dup: h.dup, nInd: h.nInd, nDup: h.nDup, rowW: h.rowW, diag: h.diagIdx, prev: h.prevIdx, prevOk: h.prevOk, B: plan.B };
  for (const [name, v] of Object.entries(outs)) {
    g.op('Identity', [v], {}, name, `${name}_out`);
    const dims = name === 'use' || name === 'B' ? [] : name === 'nInd' || name === 'nDup' ? ['nb'] : ['nb', 'm'];
    g.output(`${name}_out`, name === 'use' ? 'bool' : name === 'rowW' || name === 'prevOk' ? 'float' : name === 'ind' || name === 'dup' ? 'int32' : 'int64', dims);
  }
  const session = await ort.InferenceSession.create(Buffer.from(g.encode('plan', '')), { logSeverityLevel: 3, graphOptimizationLevel: 'all' });
  const run = async (tokens: number[], limits: readonly number[]) => {
    const out = await session.run({
      ids: new ort.Tensor('int64', BigInt64Array.from(tokens, (n) => BigInt(n)), [tokens.length]),
      [BLOCK_LIMITS_INPUT]: new ort.Tensor('int64', BigInt64Array.from(limits, (n) => BigInt(n)), [3]),
    });
    const num = (name: string) => Array.from(out[`${name}_out`]!.data as ArrayLike<number | bigint>, Number);
    return { use: num('use')[0] === 1, ind: num('ind'), dup: num('dup'), nInd: num('nInd'), nDup: num('nDup'), rowW: num('rowW'), diag: num('diag'), prev: num('prev'), prevOk: num('prevOk'), B: num('B')[0]! };
  };
  const expected = (tokens: number[], B: number) => {
    const n = tokens.length;
    const nb = Math.ceil(n / B);
    const lists = { ind: [] as number[][], dup: [] as number[][] };
    const rowW: number[] = [], diag: number[] = [], prev: number[] = [], prevOk: number[] = [];
    for (let b = 0; b < nb; b++) {
      const hi = Math.min((b + 1) * B, n);
      const ind: number[] = [], dup: number[] = [];
      for (let r = 0; r < B; r++) {
        const q = b * B + r;
        for (let k = 0; k < hi; k++) {
          if (q >= n || k >= q) continue;
          if (k > 0 && tokens[k - 1] === tokens[q]) ind.push(r * hi + k);
          if (tokens[k] === tokens[q]) dup.push(r * hi + k);
        }
        rowW.push(q < n && q > 0 ? 1 / (n - 1) : 0);
        const self = Math.min(q, hi - 1);
        diag.push(r * hi + self);
        prev.push(r * hi + Math.max(self - 1, 0));
        prevOk.push(self >= 1 ? 1 : 0);
      }
      lists.ind.push(ind);
      lists.dup.push(dup);
    }
    return { ...lists, rowW, diag, prev, prevOk };
  };
  try {
    const rnd = mulberry32(11);
    const first = Array.from({ length: 9 }, () => Math.floor(rnd() * 5)); // few distinct ids: many matches
    const tokens = [...first, ...first, 3, 3, 3];
    const B = 4;
    const want = expected(tokens, B);
    const got = await run(tokens, [B, 1 << 22, MATCH_LIST_VALUES]);
    assert.equal(got.B, B);
    assert.ok(got.use, 'the lists fit');
    const M = Math.max(...want.ind.map((l) => l.length), ...want.dup.map((l) => l.length));
    assert.ok(M > 0);
    for (const kind of ['ind', 'dup'] as const) {
      const n = kind === 'ind' ? got.nInd : got.nDup;
      assert.deepEqual(n, want[kind].map((l) => l.length), `${kind} counts`);
      const rows = want[kind].map((_, b) => got[kind].slice(b * M, b * M + n[b]!));
      assert.deepEqual(rows, want[kind], `${kind} lists`);
    }
    assert.deepEqual(got.diag, want.diag);
    assert.deepEqual(got.prev, want.prev);
    assert.deepEqual(got.prevOk, want.prevOk);
    got.rowW.forEach((w, i) => assert.ok(Math.abs(w - want.rowW[i]!) < 1e-7, `row weight ${i}`));
    // 2·nb·M values do not fit a limit one below them: no lists, the per-block fallback.
    const nb = Math.ceil(tokens.length / B);
    assert.equal((await run(tokens, [B, 1 << 22, 2 * nb * M])).use, true, 'exactly at the limit');
    assert.equal((await run(tokens, [B, 1 << 22, 2 * nb * M - 1])).use, false, 'over the limit');
    // No repeated token: nothing to list, and the (empty) lists are used.
    const none = await run([0, 1, 2, 3, 4, 5, 6], [B, 1 << 22, 1]);
    assert.ok(none.use);
    assert.deepEqual([...none.nInd, ...none.nDup], [0, 0, 0, 0]);
  } finally {
    await session.release();
  }
});
