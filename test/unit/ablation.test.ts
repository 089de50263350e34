// Head ablation (src/engine/analysis/ablation.ts): every number against the float64 reference with
// the head masked through the reference's own head scale, on generated checkpoints, for all three
// metrics; progress, cancellation and bad requests; on the embedded default model the ranking finds
// the induction circuit; and `attnscope ablate` as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { ablateHeads, rankByHarm, type AblationMetric } from '../../src/engine/analysis/ablation';
import { runInspection } from '../../src/engine/run';
import { EngineError } from '../../src/engine/errors';
import { headLabel } from '../../src/shared/heads';
import { makeTinyCheckpoint, tinyVariant, type TinyCheckpoint } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';
import { logSoftmax } from '../reference/logSoftmax';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'default');
const REPEATED = path.join(ROOT, 'examples', 'repeated-words.prompt');
const TOL = 1e-3;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-ablation-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The metric from the reference's logits [T][V], written from the definitions. */
function refMetric(metric: AblationMetric, logits: Float64Array[], ids: number[], target: number, base?: Float64Array[]): number {
  const T = ids.length;
  if (metric === 'logprob') return logSoftmax(logits[T - 1]!)[target]!;
  if (metric === 'loss') {
    let s = 0;
    for (let t = 0; t + 1 < T; t++) s -= logSoftmax(logits[t]!)[ids[t + 1]!]!;
    return s / (T - 1);
  }
  let s = 0;
  for (let t = 0; t < T; t++) {
    const lp = logSoftmax(base![t]!);
    const lq = logSoftmax(logits[t]!);
    for (let i = 0; i < lp.length; i++) s += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
  }
  return s / T;
}

for (const name of ['llama-gqa', 'neox-parallel-rot25']) {
  test(`ablation: every head and metric equals the float64 reference (${name})`, async () => {
    const ck: TinyCheckpoint = makeTinyCheckpoint(path.join(tmp, name), tinyVariant(name));
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const prompt = 'the cat sat on the mat and the cat sat';
      const ids = (await model.tokenizer.encode(prompt)).map((t) => t.id);
      assert.ok(ids.length >= 8, `${ids.length} tokens`);
      const { layers: L, heads: H } = model.dims;
      const ones = () => Array.from({ length: L }, () => new Array<number>(H).fill(1));
      const ref = referenceForward(ck.config, ck.tensors, ids, {});
      const masked = Array.from({ length: L * H }, (_, i) => {
        const headScale = ones();
        headScale[Math.floor(i / H)]![i % H] = 0;
        return referenceForward(ck.config, ck.tensors, ids, { headScale }).logits;
      });
      let worst = 0;
      for (const metric of ['logprob', 'loss', 'kl'] as const) {
        const progress: [number, number][] = [];
        const r = await ablateHeads(model, { prompt, metric }, { onProgress: (d, t) => progress.push([d, t]) });
        assert.deepEqual(r.tokens.map((t) => t.id), ids);
        assert.deepEqual(progress, Array.from({ length: L * H + 1 }, (_, i) => [i, L * H]), 'progress after the baseline and after each head');
        assert.deepEqual(r.heads.map((h) => [h.layer, h.head]), Array.from({ length: L * H }, (_, i) => [Math.floor(i / H), i % H]), 'layer-major');
        let target = -1;
        if (metric === 'logprob') {
          const lp = logSoftmax(ref.logits[ids.length - 1]!);
          target = lp.indexOf(Math.max(...lp));
          assert.equal(r.targetId, target, 'default target: the baseline top-1');
        } else assert.equal(r.targetId, undefined);
        const baseline = refMetric(metric, ref.logits, ids, target, ref.logits);
        assert.ok(Math.abs(r.baseline - baseline) <= TOL, `${metric} baseline ${r.baseline} vs ${baseline}`);
        if (metric === 'kl') assert.ok(Math.abs(r.baseline) < 1e-9, 'KL of the baseline with itself is 0');
        worst = Math.max(worst, Math.abs(r.baseline - baseline));
        r.heads.forEach((h, i) => {
          const want = refMetric(metric, masked[i]!, ids, target, ref.logits);
          const err = Math.abs(h.value - want);
          worst = Math.max(worst, err);
          assert.ok(err <= TOL, `${metric} ${headLabel(h)}: ${h.value} vs reference ${want}`);
          assert.ok(Math.abs(h.delta - (h.value - r.baseline)) < 1e-12, 'delta = value − baseline');
        });
        // the masks change the metric (or the comparison above proves little)
        assert.ok(r.heads.some((h) => Math.abs(h.delta) > 1e-3), `${metric}: some head matters`);
      }
      // an explicit target, and ablation on top of other interventions (L0H0 scaled for every run)
      const target = 7;
      const headScale = ones();
      headScale[0]![0] = 0.5;
      const iv = { scales: [{ layer: 0, head: 0, value: 0.5 }], emphasis: null, sink: null };
      const r = await ablateHeads(model, { prompt, metric: 'logprob', targetId: target, interventions: iv, heads: [{ layer: L - 1, head: 1 }, { layer: 0, head: 0 }] });
      assert.equal(r.targetId, target);
      const base = referenceForward(ck.config, ck.tensors, ids, { headScale }).logits;
      assert.ok(Math.abs(r.baseline - refMetric('logprob', base, ids, target)) <= TOL);
      const m1 = ones();
      m1[0]![0] = 0.5;
      m1[L - 1]![1] = 0;
      const m2 = ones();
      m2[0]![0] = 0;
      assert.deepEqual(r.heads.map((h) => headLabel(h)), [`L${L - 1}H1`, 'L0H0'], 'the requested heads, in order');
      assert.ok(Math.abs(r.heads[0]!.value - refMetric('logprob', referenceForward(ck.config, ck.tensors, ids, { headScale: m1 }).logits, ids, target)) <= TOL);
      assert.ok(Math.abs(r.heads[1]!.value - refMetric('logprob', referenceForward(ck.config, ck.tensors, ids, { headScale: m2 }).logits, ids, target)) <= TOL);
      console.log(`${name}: max |Δ| vs reference ${worst.toExponential(2)}`);
    } finally {
      await model.release();
    }
  });
}

test('ablation: cancellation between runs, and bad requests are one-line engine errors', async () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'gpt2'), tinyVariant('gpt2'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    let done = 0;
    await assert.rejects(
      ablateHeads(model, { prompt: 'hello world again', metric: 'kl' }, { onProgress: (d) => (done = d), isCancelled: () => done >= 3 }),
      (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED' && /after 3 of 8 heads/.test(e.message),
    );
    assert.equal(done, 3, 'no run after the cancellation');
    const bad = async (req: Parameters<typeof ablateHeads>[1], code: string, re: RegExp) =>
      assert.rejects(ablateHeads(model, req), (e: unknown) => e instanceof EngineError && e.code === code && re.test(e.message) && !e.message.includes('\n'));
    await bad({ prompt: 'x', metric: 'nope' as AblationMetric }, 'BAD_ARGUMENT', /"nope" is not one of logprob, loss, kl/);
    await bad({ prompt: 'hi there', targetId: model.dims.vocabSize }, 'BAD_ARGUMENT', /not in the vocabulary/);
    await bad({ prompt: 'hi there', targetId: 1.5 }, 'BAD_ARGUMENT', /not in the vocabulary/);
    await bad({ prompt: 'hi there', metric: 'loss', targetId: 3 }, 'BAD_ARGUMENT', /logprob metric only/);
    await bad({ prompt: 'hi there', heads: [{ layer: 9, head: 0 }] }, 'BAD_ARGUMENT', /head 9\.0 does not exist/);
    await bad({ prompt: '' }, 'PROMPT', /empty/);
    const one = (await model.tokenizer.encode('a')).length;
    assert.equal(one, 1, 'a one-token prompt (gpt2 adds no BOS)');
    await bad({ prompt: 'a', metric: 'loss' }, 'PROMPT', /at least 2 tokens/);
    // a one-token prompt still works for logprob and kl
    const r = await ablateHeads(model, { prompt: 'a', metric: 'kl' });
    assert.equal(r.heads.length, 8);
  } finally {
    await model.release();
  }
});

test('default model: masking the previous-token head or the main induction head costs the most log-prob on repeated words', async () => {
  const model = await Model.open(DEFAULT_MODEL, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const prompt = fs.readFileSync(REPEATED, 'utf8');
    const r = await ablateHeads(model, { prompt, metric: 'logprob' });
    const insp = await runInspection(model, { prompt, topK: 1 });
    assert.equal(r.targetId, insp.next[0]!.id, 'target: the baseline top-1');
    assert.ok(Math.abs(r.baseline - Math.log(insp.next[0]!.prob)) < 1e-4, 'baseline log p agrees with the inspection run');
    assert.equal(r.heads.length, model.dims.layers * model.dims.heads);
    // the circuit, as the metrics find it on this prompt
    const best = (k: 'prevToken' | 'induction') => [...insp.heads].sort((a, b) => (b[k] ?? -1) - (a[k] ?? -1))[0]!;
    const prev = headLabel(best('prevToken'));
    const ind = headLabel(best('induction'));
    const ranked = rankByHarm(r);
    const top2 = ranked.slice(0, 2).map(headLabel);
    console.log(`default model, logprob of ${JSON.stringify(r.targetText)} (baseline ${r.baseline.toFixed(4)}): ${ranked.slice(0, 5).map((h) => `${headLabel(h)} ${h.delta.toFixed(3)}`).join(', ')}; previous-token head ${prev}, induction head ${ind}`);
    assert.deepEqual(new Set(top2), new Set([prev, ind]), `the two most harmful heads ${top2} are the previous-token head ${prev} and the induction head ${ind}`);
    for (const h of ranked.slice(0, 2)) assert.ok(h.delta < -3, `${headLabel(h)}: masking it costs ${h.delta} nats`);
    for (const h of ranked.slice(2)) assert.ok(h.delta > -2, `${headLabel(h)} costs only ${h.delta}`);
    // loss and KL agree on the most harmful head
    const kl = rankByHarm(await ablateHeads(model, { prompt, metric: 'kl' }));
    const loss = rankByHarm(await ablateHeads(model, { prompt, metric: 'loss' }));
    console.log(`default model, kl: ${kl.slice(0, 4).map((h) => `${headLabel(h)} ${h.value.toFixed(3)}`).join(', ')}; loss: ${loss.slice(0, 4).map((h) => `${headLabel(h)} ${h.delta.toFixed(3)}`).join(', ')}`);
    assert.ok(kl.every((h) => h.value >= 0), 'KL ≥ 0');
    assert.ok(top2.includes(headLabel(kl[0]!)) && top2.includes(headLabel(loss[0]!)), `kl's ${headLabel(kl[0]!)} and loss's ${headLabel(loss[0]!)} among ${top2}`);
  } finally {
    await model.release();
  }
});

test('CLI: attnscope ablate writes every head layer-major with value and delta; bad flags are one-line errors', () => {
  const BIN = path.join(ROOT, 'bin', 'attnscope.js');
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: path.join(tmp, 'cli-cache') }, timeout: 120_000 });
  const out = path.join(tmp, 'ablate.json');
  const r = run(['ablate', REPEATED, '--device', 'cpu', '--json', out]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(j.metric, 'logprob');
  assert.ok(Number.isInteger(j.targetId));
  assert.equal(j.heads.length, 32);
  j.heads.forEach((h: { layer: number; head: number; value: number; delta: number }, i: number) => {
    assert.deepEqual([h.layer, h.head], [Math.floor(i / 8), i % 8]);
    assert.ok(Math.abs(h.delta - (h.value - j.baseline)) < 1e-6);
  });
  const k = run(['ablate', REPEATED, '--device', 'cpu', '--metric', 'kl']);
  assert.equal(k.status, 0, k.stderr);
  const kj = JSON.parse(k.stdout);
  assert.equal(kj.metric, 'kl');
  assert.equal(kj.targetId, undefined);
  assert.equal(kj.baseline, 0);
  const t = run(['ablate', REPEATED, '--device', 'cpu', '--target-id', String(j.targetId)]);
  assert.deepEqual(JSON.parse(t.stdout).heads, j.heads, '--target-id of the top-1 gives the default');
  for (const [args, re] of [
    [['--metric', 'acc'], /--metric: "acc" is not one of logprob, loss, kl/],
    [['--metric', 'loss', '--target-id', '3'], /--target-id applies to --metric logprob only/],
    [['--target-id=-1'], /--target-id: "-1" must be a token id/],
    [['--target-id', '99999999'], /--target-id: 99999999 is not in the vocabulary/],
  ] as const) {
    const e = run(['ablate', REPEATED, '--device', 'cpu', ...args]);
    assert.equal(e.status, 2, e.stderr);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr.trim().split('\n').length, 1);
    assert.match(e.stderr, re);
  }
});
