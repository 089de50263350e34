// The kept run's fast path (graph/queryGraph.ts: onnxruntime over the kept q, k, lse and bias)
// equals the JS path (graph/attentionScores.ts, itself checked against the graph's own patterns in
// keptQk.test.ts) on every generated family checkpoint, with no interventions, masked and scaled
// heads, and PASTA emphasis with sink calibration (a bias in every score): every head's row and
// column, the overlay both ways, token details, patterns and pattern windows. Masked entries are
// exactly 0 on both paths.
//
// Tolerance: the fast path's scores are float32 MatMuls (as in the model's own graph), the JS
// path's float64 dot products of the same float32 q and k; lse is passed as a float32 hi/lo pair,
// so the difference is the float32 score rounding times p: ≤ 1e-6 absolute.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { runInspection } from '../../src/engine/run';
import { answer, answerFast, qkSource, type HeadBlock, type KeptRun, type RunQuery } from '../../src/engine/analysis/kept';
import { probabilityColumn, probabilityRow, firstKey } from '../../src/engine/graph/attentionScores';
import { QueryGraph } from '../../src/engine/graph/queryGraph';
import { GraphBuilder } from '../../src/engine/graph/onnxGraph';
import { ort } from '../../src/engine/runtime/ortSession';
import { makeTinyCheckpoint, TINY_VARIANTS } from '../fixtures/tinyModels';
import { BIG_MEMORY, KEPT_PROMPT, keptCases } from '../fixtures/keptCases';

const TOL = 1e-6;
const PROMPT = KEPT_PROMPT;
const BIG = BIG_MEMORY;

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-keptfast-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));


/** head h's values of a block as [T] (zeros outside it) */
function headValues(b: HeadBlock, h: number, H: number, T: number): Float64Array {
  const out = new Float64Array(T);
  for (let i = 0; i * H < b.values.length; i++) out[b.start + i] = b.values[i * H + h]!;
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('ort.Tensor wraps the JS buffer (no copy), also a view at an offset', () => {
  const buf = new Float32Array(16);
  const view = buf.subarray(4, 12);
  assert.equal(new ort.Tensor('float32', buf, [16]).data, buf);
  assert.equal(new ort.Tensor('float32', view, [8]).data, view);
});

test("onnxruntime's Tanh and Exp are within the error the refinement bound allows (16u absolute, 8u relative)", async () => {
  // queryGraph.ts boundTerms assumes these of the CPU kernels (MLAS tanh, Eigen exp) on this machine
  const u = 2 ** -24;
  for (const [op, allowed, x] of [
    ['Tanh', 16 * u, Float32Array.from({ length: 1 << 20 }, (_, i) => (i / (1 << 20) - 0.5) * 24)],
    // (results above float32's denormals: below them the absolute error is under 1e-38)
    ['Exp', 8 * u, Float32Array.from({ length: 1 << 20 }, (_, i) => -(i / (1 << 20)) * 80)],
  ] as const) {
    const g = new GraphBuilder('');
    g.op(op, [g.input('x', 'float', ['n'])], {}, undefined, 'y');
    g.output('y', 'float', ['n']);
    const session = await ort.InferenceSession.create(g.encode(op, ''));
    const y = (await session.run({ x: new ort.Tensor('float32', x, [x.length]) }))['y']!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const want = op === 'Tanh' ? Math.tanh(x[i]!) : Math.exp(x[i]!);
      // Tanh: absolute (|tanh| ≤ 1); Exp: relative
      worst = Math.max(worst, Math.abs(y[i]! - want) / (op === 'Tanh' ? 1 : want));
    }
    assert.ok(worst <= allowed, `${op}: error ${worst / u} u`);
    await session.release();
  }
});

for (const v of TINY_VARIANTS) {
  test(`kept fast path (onnxruntime) = the JS path: ${v.name}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, v.name), v);
    const model = await Model.open(ck.dir, { cacheRoot: path.join(root, 'cache'), device: 'cpu' });
    try {
      const { layers: L, heads: H } = model.dims;
      const maxTokens = Math.min(20, model.dims.maxPositions);
      for (const [label, interventions] of keptCases(L, H)) {
        const r = await runInspection(model, { prompt: PROMPT, interventions, maxTokens }, undefined, undefined, { ...BIG, qk: true });
        const T = r.tokens.length;
        const layers = r.qk!;
        const graph = new QueryGraph(layers, 1);
        const js: KeptRun = { runId: 1, T, L, H, attention: qkSource(layers) };
        const fast: KeptRun = { ...js, fast: graph };
        // Every head's row and column.
        let worst = 0;
        const want = new Float64Array(T);
        for (let i = 0; i < T; i++) {
          const rows = await graph.rows(i);
          const cols = await graph.columns(i);
          for (let l = 0; l < L; l++) {
            const s = layers[l]!;
            // exactly the positions the masks allow: keys firstKey..i of row i, queries i..last of column i
            assert.equal(rows[l]!.start, firstKey(s, i), `${label}: L${l} row ${i} start`);
            assert.equal(rows[l]!.values.length, (i + 1 - firstKey(s, i)) * H, `${label}: L${l} row ${i} keys`);
            const last = s.window > 0 ? Math.min(T - 1, i + s.window - 1) : T - 1;
            assert.equal(cols[l]!.start, i, `${label}: L${l} column ${i} start`);
            assert.equal(cols[l]!.values.length, (last + 1 - i) * H, `${label}: L${l} column ${i} queries`);
            for (let h = 0; h < H; h++) {
              probabilityRow(s, h, i, want);
              worst = Math.max(worst, maxDiff(headValues(rows[l]!, h, H, T), want));
              probabilityColumn(s, h, i, want);
              worst = Math.max(worst, maxDiff(headValues(cols[l]!, h, H, T), want));
            }
          }
        }
        assert.ok(worst <= TOL, `${label}: max |p_fast − p_js| = ${worst}`);
        // The queries answerFast takes through the graph, against answer's JS path.
        const weights = new Float32Array(L * H).map((_, i) => (i % 3 === 1 ? 0 : 1 + (i % 4)));
        for (const q of [0, 5, T - 1]) {
          for (const direction of ['from', 'to'] as const) {
            const query: RunQuery = { what: 'overlay', q, direction, weights };
            assert.ok(maxDiff((await answerFast(fast, query)).row!, answer(js, query).row!) <= TOL, `${label}: overlay ${direction} ${q}`);
            const dq: RunQuery = { what: 'tokenDetail', q, direction, weights, top: 4 };
            const df = (await answerFast(fast, dq)).detail!;
            const dj = answer(js, dq).detail!;
            assert.equal(df.items.length, dj.items.length, `${label}: token detail ${direction} ${q}`);
            df.items.forEach((it, j) => {
              const jt = dj.items[j]!;
              assert.ok(Math.abs(it.value - jt.value) <= TOL, `${label}: token detail ${direction} ${q} item ${j}`);
              // the same token, unless two values tie within the tolerance
              if (it.token !== jt.token) assert.ok(dj.items.some((x) => x.token === it.token && Math.abs(x.value - it.value) <= TOL), `${label}: token detail ${direction} ${q}: token ${it.token} vs ${jt.token}`);
              it.heads.forEach((hh, n) => assert.ok(Math.abs(hh.value - jt.heads[n]!.value) <= TOL, `${label}: token detail heads`));
            });
          }
        }
        for (let l = 0; l < L; l++) {
          for (let h = 0; h < H; h++) {
            const pq: RunQuery = { what: 'pattern', layer: l, head: h };
            const pf = (await answerFast(fast, pq)).matrix!;
            assert.ok(maxDiff(pf, answer(js, pq).matrix!) <= TOL, `${label}: pattern ${l}.${h}`);
            // masked entries (Where in the tile graph) are exactly 0, never exp of a masked score
            for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) if (k > q || k < firstKey(layers[l]!, q)) assert.equal(pf[q * T + k], 0, `${label}: pattern ${l}.${h} [${q}, ${k}]`);
          }
        }
        // Exact and pooled windows, one entirely above the diagonal.
        for (const [q0, q1, k0, k1, size] of [
          [0, T, 0, T, 64],
          [3, T - 1, 2, T - 4, 5],
          [0, 4, 6, T, 8],
          [T - 7, T, 1, T, 3],
        ] as const) {
          const tq: RunQuery = { what: 'patternTile', layer: L - 1, head: H - 1, q0, q1, k0, k1, size };
          const tf = (await answerFast(fast, tq)).tile!;
          const tj = answer(js, tq).tile!;
          assert.deepEqual({ ...tf, values: undefined }, { ...tj, values: undefined });
          assert.ok(maxDiff(tf.values, tj.values) <= TOL, `${label}: pattern window ${q0}..${q1} × ${k0}..${k1}`);
        }
      }
    } finally {
      await model.release();
    }
  });
}

test('the overlay with few weighted heads takes the JS path and gives the same values', async () => {
  const v = TINY_VARIANTS.find((x) => x.name === 'gemma2-softcap-window')!;
  const ck = makeTinyCheckpoint(path.join(root, 'few-' + v.name), v);
  const model = await Model.open(ck.dir, { cacheRoot: path.join(root, 'cache'), device: 'cpu' });
  try {
    const { layers: L, heads: H } = model.dims;
    const r = await runInspection(model, { prompt: PROMPT, maxTokens: 20 }, undefined, undefined, { ...BIG, qk: true });
    const T = r.tokens.length;
    const js: KeptRun = { runId: 1, T, L, H, attention: qkSource(r.qk!) };
    let calls = 0;
    const graph = new QueryGraph(r.qk!, 1);
    const counting = { rows: (q: number) => (calls++, graph.rows(q)), columns: (k: number) => (calls++, graph.columns(k)), tile: graph.tile.bind(graph) };
    const fast: KeptRun = { ...js, fast: counting };
    for (const weights of [new Float32Array(L * H), new Float32Array(L * H).fill(1)]) {
      for (const direction of ['from', 'to'] as const) {
        const query: RunQuery = { what: 'overlay', q: 7, direction, weights };
        assert.ok(maxDiff((await answerFast(fast, query)).row!, answer(js, query).row!) <= TOL);
      }
    }
    // all-zero weights: no graph run; every head: one per direction
    assert.equal(calls, 2);
  } finally {
    await model.release();
  }
});
