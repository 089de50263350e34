// The ONNX inspection graph against the independent float64 reference, on generated checkpoints
// of every family and layout: logits, every head's attention, head metrics, masking, scaling and
// PASTA-style steering bias.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { topLogprobsOfRow } from '../../src/engine/analysis/compare';
import { RUN_TOP_K } from '../../src/engine/runs/runFile';
import { headMetricsFromProbs } from '../reference/metrics';
import { METRIC_ORDER } from '../../src/engine/graph/inspectionGraph';
import { makeTinyCheckpoint, mulberry32, TINY_VARIANTS, type TinyCheckpoint } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';
import { logSoftmax } from '../reference/logSoftmax';

const LOGPROB_TOL = 1e-3;
const ATTN_TOL = 1e-4;
const METRIC_TOL = 1e-4;

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-parity-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Seeded ids with a repeated stretch, so the induction metric is defined. */
function promptIds(ck: TinyCheckpoint, T: number, seed: number): number[] {
  const rnd = mulberry32(seed);
  const n = Math.ceil(T / 2);
  const first = Array.from({ length: n }, () => Math.floor(rnd() * ck.tokenizerVocabSize));
  return [...first, ...first].slice(0, T);
}

interface Case {
  headScale?: number[][];
  bias?: number[][][];
}

async function compare(model: Model, ck: TinyCheckpoint, ids: number[], c: Case, label: string): Promise<{ maxLp: number; maxAttn: number }> {
  const { layers: L, heads: H, vocabSize: V } = model.dims;
  const T = ids.length;
  const headScale = new Float32Array(L * H).fill(1);
  const attnBias = new Float32Array(L * H * T);
  c.headScale?.forEach((row, l) => row.forEach((v, h) => (headScale[l * H + h] = v)));
  c.bias?.forEach((hs, l) => hs.forEach((ks, h) => ks.forEach((v, k) => (attnBias[(l * H + h) * T + k] = v))));
  const got = await model.forward({ ids, headScale, attnBias }, { inspect: true, allLogits: true, layers: Array.from({ length: L }, (_, l) => l) });
  const ref = referenceForward(ck.config, ck.tensors, ids, c);
  let maxLp = 0;
  for (let t = 0; t < T; t++) {
    const a = logSoftmax(got.logits, t * V, V);
    const b = logSoftmax(ref.logits[t]!, 0, V);
    for (let i = 0; i < V; i++) maxLp = Math.max(maxLp, Math.abs(a[i]! - b[i]!));
  }
  let maxAttn = 0;
  let maxMetric = 0;
  for (let l = 0; l < L; l++) {
    const p = got.patterns.get(l)!;
    assert.equal(p.length, H * T * T, `${label}: layer ${l} pattern size`);
    const refLayer = new Float64Array(H * T * T);
    for (let h = 0; h < H; h++) {
      const r = ref.attn[l]![h]!;
      refLayer.set(r, h * T * T);
      for (let i = 0; i < T * T; i++) maxAttn = Math.max(maxAttn, Math.abs(p[h * T * T + i]! - r[i]!));
    }
    const refMetrics = headMetricsFromProbs(refLayer, H, T, ids);
    for (let h = 0; h < H; h++) {
      METRIC_ORDER.forEach((name, i) => {
        const want = refMetrics[h]![name];
        const have = got.metrics![(l * H + h) * METRIC_ORDER.length + i]!;
        if (want === null) assert.ok(Number.isNaN(have), `${label}: L${l}H${h} ${name} should be undefined, got ${have}`);
        else maxMetric = Math.max(maxMetric, Math.abs(have - want));
      });
    }
  }
  assert.ok(maxLp <= LOGPROB_TOL, `${label}: max |Δ log-prob| ${maxLp} > ${LOGPROB_TOL}`);
  assert.ok(maxAttn <= ATTN_TOL, `${label}: max |Δ attention| ${maxAttn} > ${ATTN_TOL}`);
  assert.ok(maxMetric <= METRIC_TOL, `${label}: max |Δ metric| ${maxMetric} > ${METRIC_TOL}`);
  console.log(`${label}: max dlogp ${maxLp.toExponential(2)} max dattn ${maxAttn.toExponential(2)} max dmetric ${maxMetric.toExponential(2)}`);
  return { maxLp, maxAttn };
}

for (const variant of TINY_VARIANTS) {
  test(`parity: ${variant.name}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, variant.name), variant);
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
    try {
      const { layers: L, heads: H } = model.dims;
      const ids = promptIds(ck, 24, variant.seed);
      const T = ids.length;
      const plain = await compare(model, ck, ids, {}, `${variant.name} plain`);
      // Masking a head equals the reference with that head's output zeroed; other heads scaled.
      const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
      headScale[0]![1] = 0;
      headScale[L - 1]![H - 1] = 2.5;
      const masked = await compare(model, ck, ids, { headScale }, `${variant.name} masked`);
      // PASTA: ln(0.01) on keys outside positions 3..7 for two heads, plus sink calibration on another.
      const bias = Array.from({ length: L }, () => Array.from({ length: H }, () => new Array<number>(T).fill(0)));
      for (let k = 0; k < T; k++) if (k < 3 || k >= 8) bias[0]![0]![k] = bias[L - 1]![1]![k] = Math.log(0.01);
      bias[L - 1]![0]![0] = Math.log(0.25);
      await compare(model, ck, ids, { bias, headScale }, `${variant.name} steered`);
      if (variant.lengthDependent) {
        // Frequencies that depend on the length: also a prompt short enough for the other branch.
        await compare(model, ck, promptIds(ck, 12, variant.seed + 1), {}, `${variant.name} short`);
      }
      // The interventions must actually change the output, or the checks above prove nothing.
      const base = await model.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * T) }, { inspect: false, allLogits: true });
      const hs = new Float32Array(L * H).fill(1);
      hs[1] = 0;
      const m = await model.forward({ ids, headScale: hs, attnBias: new Float32Array(L * H * T) }, { inspect: false, allLogits: true });
      let diff = 0;
      for (let i = 0; i < base.logits.length; i++) diff = Math.max(diff, Math.abs(base.logits[i]! - m.logits[i]!));
      assert.ok(diff > 1e-3, `${variant.name}: masking L0H1 changed the logits by only ${diff}`);
      assert.ok(plain.maxLp >= 0 && masked.maxLp >= 0);
    } finally {
      await model.release();
    }
  });
}

test('parity: the plain graph gives the inspection graph\'s logits', async () => {
  const variant = TINY_VARIANTS.find((v) => v.family === 'llama')!;
  const ck = makeTinyCheckpoint(path.join(root, 'plain-vs-inspect'), variant);
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const ids = promptIds(ck, 17, 7);
    const { layers: L, heads: H } = model.dims;
    const inputs = { ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) };
    const a = await model.forward(inputs, { inspect: false });
    const b = await model.forward(inputs, { inspect: true, layers: [] });
    assert.equal(a.logits.length, model.dims.vocabSize);
    for (let i = 0; i < a.logits.length; i++) assert.ok(Math.abs(a.logits[i]! - b.logits[i]!) < 1e-4);
    assert.equal(b.patterns.size, 0, 'no pattern fetched when none asked for');
  } finally {
    await model.release();
  }
});

test('parity: without a repeated token the induction score is undefined (NaN in the graph, null in the reference)', async () => {
  const variant = TINY_VARIANTS.find((v) => v.family === 'gpt_neox')!;
  const ck = makeTinyCheckpoint(path.join(root, 'no-repeat'), variant);
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const ids = Array.from({ length: 12 }, (_, i) => 5 + 7 * i);
    await compare(model, ck, ids, {}, 'no-repeat');
    const one = await model.forward({ ids: [5], headScale: new Float32Array(model.dims.layers * model.dims.heads).fill(1), attnBias: new Float32Array(model.dims.layers * model.dims.heads) }, { inspect: true, layers: [0] });
    assert.equal(one.patterns.get(0)!.length, model.dims.heads, 'T = 1 works');
    assert.ok(one.metrics!.every((v) => Number.isNaN(v)), 'T = 1: every metric undefined');
  } finally {
    await model.release();
  }
});

test('parity: the head graph (logits from final_hidden) gives the reference logits at every position, final soft-capping included', async () => {
  const variant = TINY_VARIANTS.find((v) => v.name === 'gemma2-softcap-window')!;
  const ck = makeTinyCheckpoint(path.join(root, 'head-graph'), variant);
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const ids = promptIds(ck, 14, 3);
    const { layers: L, heads: H, vocabSize: V } = model.dims;
    const out = await model.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) }, { inspect: true, layers: [] });
    const logits = await model.headLogits(out.hidden!);
    const ref = referenceForward(ck.config, ck.tensors, ids);
    let maxLp = 0;
    for (let t = 0; t < ids.length; t++) {
      const a = logSoftmax(logits, t * V, V);
      const b = logSoftmax(ref.logits[t]!, 0, V);
      for (let i = 0; i < V; i++) maxLp = Math.max(maxLp, Math.abs(a[i]! - b[i]!));
    }
    assert.ok(maxLp <= LOGPROB_TOL, `head graph: max |Δ log-prob| ${maxLp}`);
  } finally {
    await model.release();
  }
});

test('the head graph\'s top-k variant (a saved run\'s every-position top-K, in chunks of positions) equals the top-K of the head graph\'s logits: same ids, log-probabilities within 1e-12', async () => {
  for (const name of ['gemma2-softcap-window', 'llama-gqa']) {
    const variant = TINY_VARIANTS.find((v) => v.name === name)!;
    const ck = makeTinyCheckpoint(path.join(root, `head-top-${name}`), variant);
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
    try {
      const ids = promptIds(ck, 11, 5);
      const { layers: L, heads: H, vocabSize: V } = model.dims;
      const out = await model.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) }, { inspect: true, layers: [] });
      const logits = await model.headLogits(out.hidden!);
      const k = Math.min(RUN_TOP_K, V);
      // chunks of 3 positions: 11 = 3 + 3 + 3 + 2
      const top = await model.headTop(out.hidden!, k, 3 * V);
      let maxD = 0;
      for (let t = 0; t < ids.length; t++) {
        const want = topLogprobsOfRow(logits, t, V, k);
        want.forEach((w, i) => {
          assert.equal(Number(top.ids[t * k + i]), w.id, `${name} position ${t} rank ${i}`);
          maxD = Math.max(maxD, Math.abs(top.logits[t * k + i]! - top.lse[t]! - w.logprob));
        });
      }
      assert.ok(maxD <= 1e-12, `${name}: max |Δ log-prob| ${maxD}`);
    } finally {
      await model.release();
    }
  }
});
