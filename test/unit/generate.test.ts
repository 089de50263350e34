// Generation with the KV-cache graph: every cached step equals the float64 reference run on the
// whole sequence so far (with interventions too), greedy decoding follows the argmax, seeded
// sampling is deterministic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model, type KvCache } from '../../src/engine/model';
import { generate } from '../../src/engine/generate';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';
import { logSoftmax } from '../reference/logSoftmax';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-gen-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

for (const name of ['llama-gqa', 'gpt2', 'neox-parallel-rot25', 'mistral-gqa-f16', 'qwen2-untied', 'qwen3-untied', 'qwen3-window-per-type-rope-f16', 'qwen2-v5-window', 'mistral-linear-f16', 'llama3-rope-v4-f16', 'llama-yarn', 'llama-longrope', 'phi3-mini-window', 'phi3.5-longrope-bf16', 'phi4mini-partial-tied-f16', 'gemma2-softcap-window', 'gemma2-defaults-bf16', 'gemma2-v5-untied-bias-f16', 'gemma3-text-v4', 'gemma3-multimodal-legacy-bf16', 'gemma3-multimodal-v5-untied-f16', 'gemma-hidden-act-gelu', 'olmo2-untied', 'olmo2-gqa-bias-bf16', 'smollm3-nope-list', 'smollm3-interval-window-bf16']) {
  test(`cached decoding equals the reference on the whole sequence: ${name}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, name), tinyVariant(name));
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
    try {
      const { layers: L, heads: H } = model.dims;
      const ids = [5, 17, 33, 17, 90, 4];
      // interventions: head L0H1 masked, L(L-1)H0 scaled; PASTA bias on keys outside 1..3 for L0H0
      const headScale = new Float32Array(L * H).fill(1);
      headScale[1] = 0;
      headScale[(L - 1) * H] = 1.7;
      const lnA = Math.log(0.05);
      const biasRow = (l: number, h: number, K: number) => Array.from({ length: K }, (_, k) => (l === 0 && h === 0 && (k < 1 || k > 3) ? lnA : 0));
      const biasFlat = (K: number) => {
        const b = new Float32Array(L * H * K);
        for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) b.set(biasRow(l, h, K), (l * H + h) * K);
        return b;
      };
      let cache: KvCache | undefined;
      let step = await model.decode(ids, undefined, headScale, biasFlat(ids.length));
      const seq = [...ids];
      for (let n = 0; n < 6; n++) {
        const ref = referenceForward(ck.config, ck.tensors, seq, {
          headScale: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => headScale[l * H + h]!)),
          bias: Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => biasRow(l, h, seq.length))),
        });
        const a = logSoftmax(step.logits);
        const b = logSoftmax(ref.logits[seq.length - 1]!);
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
        assert.ok(d < 1e-3, `${name} step ${n}: max |Δ log-prob| ${d}`);
        assert.equal(step.present.length, seq.length);
        let next = 0;
        for (let i = 1; i < a.length; i++) if (a[i]! > a[next]!) next = i;
        seq.push(next);
        cache = step.present;
        step = await model.decode([next], cache, headScale, biasFlat(seq.length));
      }
    } finally {
      await model.release();
    }
  });
}

test('generate: greedy follows the argmax, seeded sampling is deterministic, stop token and limits', async () => {
  const ck = makeTinyCheckpoint(path.join(root, 'gen'), tinyVariant('llama-tied-bf16'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const prompt = 'The cat sat on the mat. The cat';
    const streamed: number[] = [];
    const greedy = await generate(model, { prompt, maxTokens: 8, stopTokenId: -1 }, (t) => streamed.push(t.id));
    assert.equal(greedy.tokens.length, 8);
    assert.equal(greedy.stopReason, 'maxTokens');
    assert.deepEqual(streamed, greedy.tokens.map((t) => t.id), 'tokens stream in order');
    // Greedy with the cache equals greedy by full re-runs of the plain graph.
    const { layers: L, heads: H } = model.dims;
    const ids = greedy.promptTokens.map((t) => t.id);
    for (const t of greedy.tokens) {
      const out = await model.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) }, { inspect: false });
      let best = 0;
      for (let i = 1; i < out.logits.length; i++) if (out.logits[i]! > out.logits[best]!) best = i;
      assert.equal(t.id, best);
      ids.push(t.id);
    }
    const s1 = await generate(model, { prompt, maxTokens: 10, temperature: 1.5, seed: 42, stopTokenId: -1 });
    const s2 = await generate(model, { prompt, maxTokens: 10, temperature: 1.5, seed: 42, stopTokenId: -1 });
    assert.deepEqual(s1.tokens.map((t) => t.id), s2.tokens.map((t) => t.id), 'same seed, same text');
    const others = await Promise.all([1, 2, 3].map((seed) => generate(model, { prompt, maxTokens: 10, temperature: 1.5, seed, stopTokenId: -1 })));
    assert.ok(others.some((o) => o.tokens.map((t) => t.id).join() !== s1.tokens.map((t) => t.id).join()), 'other seeds sample other text');
    const stopped = await generate(model, { prompt, maxTokens: 8, stopTokenId: greedy.tokens[2]!.id });
    assert.equal(stopped.stopReason, 'stopToken');
    assert.ok(stopped.tokens.length <= 3);
    const steered = await generate(model, { prompt, maxTokens: 8, stopTokenId: -1, interventions: { scales: [{ layer: 0, head: 0, value: 0 }, { layer: 1, head: 1, value: 0 }], emphasis: { start: 0, end: 7, alpha: 0.01, heads: 'all' }, sink: null } });
    assert.notDeepEqual(steered.tokens.map((t) => t.id), greedy.tokens.map((t) => t.id), 'interventions change the continuation');
    await assert.rejects(generate(model, { prompt, maxTokens: 0 }), /must be a positive integer/);
    await assert.rejects(generate(model, { prompt: '', maxTokens: 3 }), /empty/);
    const long = await generate(model, { prompt: 'a '.repeat(28), maxTokens: 100, stopTokenId: -1 });
    assert.equal(long.stopReason, 'maxPositions', 'stops at the model\'s positions');
  } finally {
    await model.release();
  }
});

test('generate: watched ids report softmax of each step\'s logits (the float64 reference on the sequence so far)', async () => {
  const name = 'llama-gqa';
  const ck = makeTinyCheckpoint(path.join(root, 'gen-watch'), tinyVariant(name));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const { vocabSize: V } = model.dims;
    const prompt = 'The cat sat on the mat. The cat';
    const greedy0 = await generate(model, { prompt, maxTokens: 6, stopTokenId: -1 });
    assert.equal(greedy0.tokens[0]!.watched, undefined, 'no watched probabilities without `watch`');
    // the first generated id (so one watched id is the argmax at step 1), two others, one repeated
    const watch = [greedy0.tokens[0]!.id, 3, V - 1, 3];
    const r = await generate(model, { prompt, maxTokens: 6, stopTokenId: -1, watch });
    assert.deepEqual(r.tokens.map((t) => t.id), greedy0.tokens.map((t) => t.id), 'watching does not change the text');
    const seq = r.promptTokens.map((t) => t.id);
    for (const [n, t] of r.tokens.entries()) {
      assert.equal(t.watched!.length, watch.length);
      const ref = referenceForward(ck.config, ck.tensors, seq, {});
      const lp = logSoftmax(ref.logits[seq.length - 1]!);
      watch.forEach((id, i) => {
        // the same bound as the cached-decoding check above: |Δ log-prob| < 1e-3
        assert.ok(t.watched![i]! > 0 && Math.abs(Math.log(t.watched![i]!) - lp[id]!) < 1e-3, `step ${n} id ${id}: ${t.watched![i]} vs reference ${Math.exp(lp[id]!)}`);
        if (id === t.id) assert.equal(t.watched![i], t.prob, 'the same distribution as the token\'s own probability');
      });
      assert.equal(t.watched![1], t.watched![3]);
      seq.push(t.id);
    }
    await assert.rejects(generate(model, { prompt, maxTokens: 2, watch: [V] }), /watched token id .* not in the vocabulary/);
    await assert.rejects(generate(model, { prompt, maxTokens: 2, watch: [1.5] }), /not in the vocabulary/);
  } finally {
    await model.release();
  }
});

test('generate: a generation whose keys, values and prefill would not fit in memory is refused in one line before it runs', async () => {
  const { estimateGeneration } = await import('../../src/engine/memoryEstimate');
  const ck = makeTinyCheckpoint(path.join(root, 'gen-mem'), tinyVariant('llama-gqa'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const prompt = 'The cat sat on the mat. The cat';
    const T = (await model.tokenizer.encode(prompt)).length;
    const need = estimateGeneration(model.dims, T, 20);
    // the keys and values grow with every position: 2 (past and present) × 2 (k, v) × L × KV × hd × 4 bytes
    const d = model.dims;
    assert.equal(need.kv, 16 * d.layers * d.kvHeads * d.headDim * Math.min(T + 20, d.maxPositions));
    const tight = { available: need.total - need.weights - 1, total: 1e15 };
    await assert.rejects(generate(model, { prompt, maxTokens: 20 }, undefined, undefined, tight), (e: unknown) => {
      const m = (e as Error).message;
      return /^generating 20 tokens after a \d+-token prompt needs about .* of memory \(.* for the keys and values, .* for the prompt's pass, .* for the model\) but only about .* is free for it; use a shorter prompt or generate fewer tokens$/.test(m) && !m.includes('\n');
    });
    const enough = { available: need.total - need.weights, total: need.total };
    const r = await generate(model, { prompt, maxTokens: 2, stopTokenId: -1 }, undefined, undefined, enough);
    assert.equal(r.tokens.length, 2);
  } finally {
    await model.release();
  }
});

test('generate: Phi-3 longrope re-runs the sequence where it crosses original_max_position_embeddings (as transformers does), so every step equals the reference on the whole text', async () => {
  const { longropeRecomputeAt } = await import('../../src/engine/generate');
  const ck = makeTinyCheckpoint(path.join(root, 'gen-longrope'), tinyVariant('phi3.5-longrope-bf16'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    assert.equal(longropeRecomputeAt(model.dims), 16, 'the fixture switches to the long factors past 16 tokens');
    // a 13-token prompt and 8 new tokens: the cache reaches 16 at the 4th step
    const prompt = 'the cat sat on a mat';
    const T0 = (await model.tokenizer.encode(prompt)).length;
    assert.ok(T0 >= 10 && T0 < 16, `${T0} prompt tokens`);
    const watch = [3, 7, 11];
    const r = await generate(model, { prompt, maxTokens: 8, stopTokenId: -1, watch });
    const seq = r.promptTokens.map((t) => t.id);
    let crossed = false;
    for (const [n, t] of r.tokens.entries()) {
      crossed ||= seq.length > 16;
      const lp = logSoftmax(referenceForward(ck.config, ck.tensors, seq, {}).logits[seq.length - 1]!);
      watch.forEach((id, i) => assert.ok(Math.abs(Math.log(t.watched![i]!) - lp[id]!) < 1e-3, `step ${n} (${seq.length} tokens) id ${id}: ${Math.log(t.watched![i]!)} vs reference ${lp[id]}`));
      seq.push(t.id);
    }
    assert.ok(crossed, 'the generation went past original_max_position_embeddings');
    assert.equal(longropeRecomputeAt({ ...model.dims, modelType: 'llama' }), undefined, 'other families keep their cache, as transformers does');
  } finally {
    await model.release();
  }
});
