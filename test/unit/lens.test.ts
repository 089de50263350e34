// Logit lens (src/engine/analysis/lens.ts): every layer's top-K probabilities and watched tokens'
// log-probabilities against the float64 reference (the residual stream captured by the reference's
// own hook at every block boundary, through the family's final norm and unembedding), on generated
// checkpoints of three families; the last entry is the model's own prediction; bad requests; the
// embedded default model on repeated words; and `attnscope lens` as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { logitLens } from '../../src/engine/analysis/lens';
import { runInspection, softmax } from '../../src/engine/run';
import { EngineError } from '../../src/engine/errors';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';
import { referenceFinalHead, referenceForward } from '../reference/forward';
import { logSoftmax } from '../reference/logSoftmax';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'default');
const REPEATED = path.join(ROOT, 'examples', 'repeated-words.prompt');

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-lens-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

for (const name of ['llama-gqa', 'gpt2', 'neox-parallel-rot25', 'neox-sequential-rot50', 'phi3-mini-window', 'gemma2-softcap-window', 'gemma3-multimodal-legacy-bf16', 'gemma-hidden-act-gelu', 'olmo2-gqa-bias-bf16', 'smollm3-nope-list']) {
  test(`lens: every layer's top-K and watched log-probs equal the float64 reference (${name})`, async () => {
    const ck = makeTinyCheckpoint(path.join(tmp, name), tinyVariant(name));
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const prompt = 'the cat sat on the mat and the cat sat';
      const ids = (await model.tokenizer.encode(prompt)).map((t) => t.id);
      const T = ids.length;
      const { layers: L, heads: H, vocabSize: V } = model.dims;
      assert.ok(T >= 8, `${T} tokens`);
      const watch = [0, 5, 17, ids[T - 1]!, V - 1];
      let worstProb = 0;
      let worstLogp = 0;
      // plain, and with a head masked and another scaled (interventions reach the lens run)
      const scaled = { scales: [{ layer: 0, head: 1, value: 0 }, { layer: L - 1, head: H - 1, value: 2 }], emphasis: null, sink: null };
      for (const iv of [undefined, scaled]) {
        const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
        for (const s of iv?.scales ?? []) headScale[s.layer]![s.head] = s.value;
        const resid: Float64Array[][] = [];
        const ref = referenceForward(ck.config, ck.tensors, ids, { headScale, hooks: { resid: (l, x) => (resid[l] = x.map((v) => Float64Array.from(v))) } });
        assert.equal(resid.length, L + 1, 'the reference hook saw every boundary');
        for (const position of [T - 1, 2, 0]) {
          const r = await logitLens(model, { prompt, position, topK: 5, watch, interventions: iv });
          assert.equal(r.position, position);
          assert.equal(r.layers.length, L + 1);
          const refLogits = referenceFinalHead(ck.config, ck.tensors, resid.map((x) => x[position]!));
          // the reference's lens at layer L is its own forward's logits (the hook is at the right place)
          refLogits[L]!.forEach((v, i) => assert.ok(Math.abs(v - ref.logits[position]![i]!) < 1e-9));
          r.layers.forEach((layer, l) => {
            assert.equal(layer.layer, l);
            const lp = logSoftmax(refLogits[l]!);
            const refTop = [...lp.keys()].sort((a, b) => lp[b]! - lp[a]!);
            assert.equal(layer.top.length, 5);
            layer.top.forEach((t, i) => {
              const want = Math.exp(lp[t.id]!);
              worstProb = Math.max(worstProb, Math.abs(t.prob - want));
              assert.ok(Math.abs(t.prob - want) <= 1e-4, `layer ${l} top ${i} id ${t.id}: ${t.prob} vs reference ${want}`);
              // the same ranking as the reference, up to near-ties
              assert.ok(Math.abs(want - Math.exp(lp[refTop[i]!]!)) <= 1e-4, `layer ${l}: rank ${i} is ${t.id}, reference has ${refTop[i]}`);
              assert.equal(t.text, model.tokenizer.decodeToken(t.id));
            });
            assert.deepEqual(layer.watched.map((w) => w.id), watch);
            for (const w of layer.watched) {
              worstLogp = Math.max(worstLogp, Math.abs(w.logprob - lp[w.id]!));
              assert.ok(Math.abs(w.logprob - lp[w.id]!) <= 1e-3, `layer ${l} watched ${w.id}: log p ${w.logprob} vs ${lp[w.id]}`);
              assert.ok(Math.abs(w.logit - refLogits[l]![w.id]!) <= 1e-3, `layer ${l} watched ${w.id}: logit ${w.logit} vs ${refLogits[l]![w.id]}`);
              assert.ok(Math.abs(w.prob - Math.exp(w.logprob)) < 1e-9);
              const above = refLogits[l]!.filter((v) => v > refLogits[l]![w.id]! + 1e-4).length;
              const within = refLogits[l]!.filter((v) => v > refLogits[l]![w.id]! - 1e-4).length;
              assert.ok(w.rank >= above + 1 && w.rank <= within, `layer ${l} watched ${w.id}: rank ${w.rank}, reference ${above + 1}..${within}`);
            }
          });
          // layers differ (or the comparison proves little)
          assert.ok(r.layers.some((x) => x.top[0]!.id !== r.layers[L]!.top[0]!.id || Math.abs(x.top[0]!.prob - r.layers[L]!.top[0]!.prob) > 1e-3), 'the lens changes across layers');
        }
      }
      console.log(`${name}: lens max |Δp| ${worstProb.toExponential(2)}, max |Δ log p| ${worstLogp.toExponential(2)}`);
    } finally {
      await model.release();
    }
  });
}

test("lens: the last layer's entry is the model's own prediction, at the last and at an earlier position", async () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'llama-gqa-pred'), tinyVariant('llama-gqa'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const prompt = 'she is reading a book in the garden';
    const L = model.dims.layers;
    const V = model.dims.vocabSize;
    const insp = await runInspection(model, { prompt, topK: 8, allLogits: true });
    const T = insp.tokens.length;
    let worst = 0;
    for (const position of [T - 1, 3]) {
      const r = await logitLens(model, { prompt, position, topK: 8 });
      const probs = softmax(insp.allLogits!, position * V, V);
      r.layers[L]!.top.forEach((t, i) => {
        worst = Math.max(worst, Math.abs(t.prob - probs[t.id]!));
        assert.ok(Math.abs(t.prob - probs[t.id]!) <= 1e-6, `position ${position}: ${t.id} ${t.prob} vs the model's ${probs[t.id]}`);
        if (position === T - 1) {
          assert.equal(t.id, insp.next[i]!.id, 'the same top-K as the inspection run');
          assert.ok(Math.abs(t.prob - insp.next[i]!.prob) <= 1e-6);
        }
      });
    }
    console.log(`lens layer L vs the model's prediction: max |Δp| ${worst.toExponential(2)}`);
  } finally {
    await model.release();
  }
});

test('lens: bad requests are one-line engine errors', async () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'gpt2-bad'), tinyVariant('gpt2'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const T = (await model.tokenizer.encode('hello world')).length;
    const bad = async (req: Parameters<typeof logitLens>[1], code: string, re: RegExp) =>
      assert.rejects(logitLens(model, req), (e: unknown) => e instanceof EngineError && e.code === code && re.test(e.message) && !e.message.includes('\n'));
    await bad({ prompt: 'hello world', position: T }, 'BAD_ARGUMENT', new RegExp(`position ${T} is not a token of the prompt; it has ${T} tokens`));
    await bad({ prompt: 'hello world', position: -1 }, 'BAD_ARGUMENT', /position -1/);
    await bad({ prompt: 'hello world', watch: [model.dims.vocabSize] }, 'BAD_ARGUMENT', /watched token id \d+ is not in the vocabulary/);
    await bad({ prompt: 'hello world', topK: 0 }, 'BAD_ARGUMENT', /top-K 0/);
    await bad({ prompt: '' }, 'PROMPT', /empty/);
    await bad({ prompt: 'hello', interventions: { scales: [{ layer: 7, head: 0, value: 0 }], emphasis: null, sink: null } }, 'BAD_ARGUMENT', /7/);
  } finally {
    await model.release();
  }
});

test('default model: the lens on repeated words', async () => {
  const model = await Model.open(DEFAULT_MODEL, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const prompt = fs.readFileSync(REPEATED, 'utf8');
    const r = await logitLens(model, { prompt, topK: 3, watch: [] });
    const insp = await runInspection(model, { prompt, topK: 3 });
    const L = model.dims.layers;
    console.log(`default model lens at ${JSON.stringify(r.tokens[r.position]!.text)}: ${r.layers.map((l) => `${l.layer} ${JSON.stringify(l.top[0]!.text)} ${l.top[0]!.prob.toFixed(4)}`).join(', ')}`);
    assert.deepEqual(r.layers[L]!.top.map((t) => t.id), insp.next.map((t) => t.id), "layer L: the model's top-3");
    r.layers[L]!.top.forEach((t, i) => assert.ok(Math.abs(t.prob - insp.next[i]!.prob) <= 1e-6));
    // the induction answer (the word after the first " garden") appears only after the induction layer
    const answer = insp.next[0]!.id;
    assert.equal(insp.next[0]!.text, ' table');
    const w = (await logitLens(model, { prompt, watch: [answer] })).layers.map((l) => l.watched[0]!);
    console.log(`default model lens, " table" per layer: ${w.map((x, l) => `${l}: rank ${x.rank} p ${x.prob.toPrecision(3)}`).join(', ')}`);
    assert.ok(w[0]!.rank > 1 && w[1]!.rank > 1, 'not predicted from the embeddings or after block 0');
    assert.ok(w.slice(2).every((x) => x.rank === 1), 'predicted from block 1 (the induction heads) on');
  } finally {
    await model.release();
  }
});

test('CLI: attnscope lens writes every layer with its top-K; bad flags are one-line errors', () => {
  const BIN = path.join(ROOT, 'bin', 'attnscope.js');
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: path.join(tmp, 'cli-cache') }, timeout: 120_000 });
  const out = path.join(tmp, 'lens.json');
  const r = run(['lens', REPEATED, '--device', 'cpu', '--json', out, '--top', '3']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(j.position, 15);
  assert.equal(j.layers.length, 5);
  j.layers.forEach((l: { layer: number; top: { id: number; text: string; prob: number }[] }, i: number) => {
    assert.equal(l.layer, i);
    assert.equal(l.top.length, 3);
    for (const t of l.top) assert.ok(Number.isInteger(t.id) && typeof t.text === 'string' && t.prob >= 0 && t.prob <= 1);
  });
  assert.equal(j.layers[4].top[0].text, ' table');
  const p = run(['lens', REPEATED, '--device', 'cpu', '--position', '3', '--watch', `${j.layers[4].top[0].id},5`]);
  assert.equal(p.status, 0, p.stderr);
  const pj = JSON.parse(p.stdout);
  assert.equal(pj.position, 3);
  assert.deepEqual(pj.layers[0].watched.map((w: { id: number }) => w.id), [j.layers[4].top[0].id, 5]);
  for (const [args, re] of [
    [['--position', '16'], /--position: 16 is past the last token; the prompt has 16 tokens/],
    [['--position=-1'], /--position: "-1" must be a token position/],
    [['--top', '0'], /--top: "0" must be a positive integer/],
    [['--watch', 'x'], /--watch: "x" must be a token id/],
    [['--watch', '99999999'], /--watch: 99999999 is not in the vocabulary/],
  ] as const) {
    const e = run(['lens', REPEATED, '--device', 'cpu', ...args]);
    assert.equal(e.status, 2, e.stderr);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr.trim().split('\n').length, 1);
    assert.match(e.stderr, re);
  }
  const u = run(['nope']);
  assert.match(u.stderr, /commands: .*lens, patch/);
});
