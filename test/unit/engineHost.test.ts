// The worker-thread engine host: runs, superseding, and crash containment with restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineHost, describeEngineExit, formatInspectTrace } from '../../src/engine/worker/engineHost';
import { EngineError } from '../../src/engine/errors';
import { maskedHeads, withScale, noInterventions } from '../../src/shared/interventions';
import type { HeadRef } from '../../src/shared/heads';

const masking = (heads: HeadRef[]) => withScale(noInterventions(), heads, 0);
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

const ENGINE = path.resolve(__dirname, '..', '..', '..', 'dist', 'engineProcess.js');
let tmp: string;
let modelDir: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-host-'));
  modelDir = makeTinyCheckpoint(path.join(tmp, 'm'), tinyVariant('qwen2-untied')).dir;
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function host(crashes: string[] = []): EngineHost {
  return new EngineHost({ engineScript: ENGINE, maxHeapMb: 256, onCrash: (m) => crashes.push(m) });
}

test('worker: open, inspect with interventions, typed results', async () => {
  const h = host();
  try {
    const progress: string[] = [];
    const info = await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') }, (m) => progress.push(m));
    assert.equal(info.arch, 'llama');
    assert.equal(info.modelType, 'qwen2');
    assert.equal(info.layers, 3);
    assert.equal(info.device, 'cpu');
    assert.ok(progress.length > 0, 'progress reported while loading');
    const { result } = await h.inspect({ prompt: 'the cat and the cat', attention: [{ layer: 1, head: 2 }], interventions: masking([{ layer: 0, head: 0 }]) });
    const T = result.tokens.length;
    assert.ok(result.patterns.get(1) instanceof Float32Array, 'tensors arrive as typed arrays');
    assert.equal(result.patterns.get(1)!.length, 4 * T * T);
    assert.equal(result.heads.length, 12);
  } finally {
    await h.dispose();
  }
});

test('worker: a newer inspection supersedes an older one', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const runs = ['a b c', 'a b c d', 'a b c d e'].map((prompt) => h.inspect({ prompt }));
    const settled = await Promise.allSettled(runs);
    assert.equal(settled[2]!.status, 'fulfilled');
    for (const s of settled.slice(0, 2)) {
      assert.equal(s.status, 'rejected');
      assert.equal(((s as PromiseRejectedResult).reason as EngineError).code, 'CANCELLED');
    }
  } finally {
    await h.dispose();
  }
});

test('worker: a kept run stopped in flight (Cancel) is dropped in the engine; the previous kept run stays queryable', async () => {
  const h = host();
  try {
    // The committed default model (4 layers × 8 heads, width 256) at 1,500 tokens: its forward pass
    // takes far longer than the stop's round trip through the host.
    await h.open({ modelDir: path.resolve(__dirname, '..', '..', '..', 'models', 'default'), device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const first = await h.inspect({ prompt: 'the cat sat on the mat' }, true);
    const weights = new Float32Array(32).fill(1);
    const want = (await h.query(first.runId, { what: 'overlay', q: 2, direction: 'from', weights })).row!;
    // Cancel once the engine has the prompt's tokens, i.e. before or during the forward pass, which
    // cannot be interrupted: the engine hears the stop and drops the result after the pass.
    const ac = new AbortController();
    let loaded = 0;
    const cancelled = h.inspect({ prompt: 'a much longer prompt that is cancelled while it runs '.repeat(200), maxTokens: 1500 }, true, ac.signal, (tokens) => {
      loaded = tokens;
      ac.abort();
    });
    await assert.rejects(cancelled, (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED');
    assert.ok(loaded > 0, 'the run reached the engine');
    const again = (await h.query(first.runId, { what: 'overlay', q: 2, direction: 'from', weights })).row!;
    assert.deepEqual(Array.from(again), Array.from(want), 'the first run is still the kept one');
    // and the next run is kept as usual
    const next = await h.inspect({ prompt: 'the dog ran' }, true);
    assert.ok(next.runId > first.runId);
    await assert.rejects(h.query(first.runId, { what: 'overlay', q: 0, direction: 'from', weights }), (e: unknown) => e instanceof EngineError);
  } finally {
    await h.dispose();
  }
});

test('worker: a lens stopped while it waits behind a run is dropped in the engine; the run\'s trace orders its marks and names what was sent meanwhile', async () => {
  const h = host();
  try {
    // The committed default model at 1,500 tokens: its forward pass takes far longer than the
    // lens call's and its stop's way to the engine, so both arrive while the run is in it.
    await h.open({ modelDir: path.resolve(__dirname, '..', '..', '..', 'models', 'default'), device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const ac = new AbortController();
    let stopped: Promise<unknown> | undefined;
    const run = h.inspect({ prompt: 'a much longer prompt that runs while a lens waits '.repeat(200), maxTokens: 1500 }, true, undefined, () => {
      stopped = h.lens({ prompt: 'the cat sat on the mat', topK: 1 }, ac.signal);
      // once the lens call is sent (after the host's model check): stop it
      setTimeout(() => ac.abort(), 0);
    });
    const { trace, result } = await run;
    assert.ok(stopped, 'the lens was asked while the run was in the engine');
    await assert.rejects(stopped, (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED' && /replaced by a newer one/.test(e.message));
    // the marks of each process are in order (the two processes' clocks are not compared)
    assert.ok(trace.called! <= trace.sent! && trace.sent! <= trace.arrived!, 'host marks in order');
    assert.ok(trace.received <= trace.started && trace.started <= trace.ran && trace.ran <= trace.replied, 'engine marks in order');
    assert.deepEqual(trace.during, { lens: 1 });
    assert.equal(result.tokens.length, 1500);
    assert.ok(result.timings.keptMs! <= result.timings.finishMs!, 'the kept state is part of the work after the forward pass');
    const line = formatInspectTrace(trace, result.timings);
    for (const stage of ['host wait', 'to engine', 'queued', 'tokenize', 'prep', 'forward', 'after forward', 'kept state', 'query setup', 'reply', 'sent meanwhile: lens×1']) assert.ok(line.includes(stage), `${stage} in: ${line}`);
    // A lens that is not stopped runs as usual; one whose signal was already aborted is not sent.
    const lens = await h.lens({ prompt: 'the cat sat on the mat', topK: 1 }, new AbortController().signal);
    assert.ok(lens.tokenCount > 0 && lens.layers.length === 5);
    await assert.rejects(h.lens({ prompt: 'the cat sat on the mat', topK: 1 }, ac.signal), (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED');
  } finally {
    await h.dispose();
  }
});

test('worker: an auto-save is sent after the queries asked in the same turn (a new run\'s overlay does not wait behind it)', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const { runId } = await h.inspect({ prompt: 'the cat sat on the mat' }, true);
    const order: string[] = [];
    const sentKinds: string[] = [];
    const child = (h as unknown as { child: { send: (m: { type: string; kind?: string }) => boolean } }).child;
    const send = child.send.bind(child);
    child.send = (m) => {
      if (m.type === 'call') sentKinds.push(m.kind!);
      return send(m);
    };
    const file = path.join(tmp, 'auto.attnrun');
    const saved = h.saveRun(runId, file, { tensors: false, autoSaved: true }).then((f) => (order.push('save'), f));
    const weights = new Float32Array(12).fill(1);
    const row = h.query(runId, { what: 'overlay', q: 2, direction: 'from', weights }).then((r) => (order.push('query'), r));
    const [f, r] = await Promise.all([saved, row]);
    assert.equal(f, file);
    assert.ok(fs.existsSync(file));
    assert.ok(r.row instanceof Float32Array);
    assert.deepEqual(sentKinds, ['query', 'saveRun'], 'the query went first');
    assert.deepEqual(order, ['query', 'save']);
  } finally {
    await h.dispose();
  }
});

test('formatInspectTrace: the stages add up to the span from the call to the reply', () => {
  const trace = { called: 1000, sent: 1010, received: 1012, started: 1100, ran: 2100, replied: 2110, arrived: 2150, queries: 2, queryMs: 40, during: { query: 2, lens: 1 } };
  const line = formatInspectTrace(trace, { tokenizeMs: 50, prepMs: 10, runMs: 900, finishMs: 30, keptMs: 20 });
  assert.equal(line, 'host wait 10, to engine 2, queued 88, tokenize 50, prep 10, forward 900, after forward 30 (kept state 20), other 10, query setup 10, reply 40; the engine answered 2 queries meanwhile (40 ms); sent meanwhile: query×2, lens×1');
  const sum = [10, 2, 88, 50, 10, 900, 30, 10, 10, 40].reduce((a, b) => a + b, 0);
  assert.equal(sum, trace.arrived - trace.called);
});

const crashWords = { throw: /exited with code 1 \(Error: deliberate crash\)/, exit: /exited with code 3/, oom: /ran out of JavaScript memory \(heap limit 256 MB\)/, abort: /aborted in native code/, kill: /was killed \(SIGKILL\), most likely by the system for lack of memory/ };
for (const how of ['throw', 'exit', 'oom', 'abort', 'kill'] as const) {
  test(`engine process: a crash (${how}) is contained, said in one line, and the process restarts`, async () => {
    const crashes: string[] = [];
    const h = host(crashes);
    try {
      await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
      await assert.rejects(h.crashForTest(how), (e: unknown) => e instanceof EngineError && e.code === 'RUNTIME' && /engine worker stopped/.test(e.message) && crashWords[how].test(e.message) && !e.message.includes('\n'));
      assert.equal(crashes.length, 1);
      assert.equal(h.crashes, 1);
      // The next run restarts the worker and re-opens the model.
      const { result } = await h.inspect({ prompt: 'still alive' });
      assert.ok(result.tokens.length > 0);
    } finally {
      await h.dispose();
    }
  });
}

test('worker: engine errors come back as one-line EngineErrors', async () => {
  const h = host();
  try {
    await assert.rejects(h.open({ modelDir: path.join(tmp, 'missing'), device: 'cpu' }), (e: unknown) => e instanceof EngineError && e.code === 'MODEL' && /model folder not found/.test(e.message));
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    await assert.rejects(h.inspect({ prompt: '' }), (e: unknown) => e instanceof EngineError && e.code === 'PROMPT');
    await assert.rejects(h.inspect({ prompt: 'x', interventions: masking([{ layer: 9, head: 0 }]) }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT');
  } finally {
    await h.dispose();
  }
});

test('worker: a kept run answers aggregate, pattern and token queries without re-running', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const full = await h.inspect({ prompt: 'red green blue red green', attention: 'all' });
    const { result, runId } = await h.inspect({ prompt: 'red green blue red green' }, true);
    assert.equal(result.patterns.size, 0, 'kept patterns stay in the worker');
    const T = result.tokens.length;
    const L = 3, H = 4;
    const weights = new Float32Array(L * H);
    weights[1 * H + 2] = 1; // L1H2
    weights[2 * H + 0] = 3; // L2H0
    const { matrix } = await h.query(runId, { what: 'aggregate', weights });
    const p1 = full.result.patterns.get(1)!, p2 = full.result.patterns.get(2)!;
    for (let i = 0; i < T * T; i++) {
      const want = (p1[2 * T * T + i]! + 3 * p2[i]!) / 4;
      assert.ok(Math.abs(matrix![i]! - want) < 1e-6);
    }
    const { matrix: pat } = await h.query(runId, { what: 'pattern', layer: 2, head: 3 });
    // Recomputed from the kept queries and keys: the graph's own probabilities up to float32 rounding
    // of its scores (test/unit/keptQk.test.ts); masked entries exactly 0.
    const want3 = p2.subarray(3 * T * T, 4 * T * T);
    assert.equal(pat!.length, want3.length);
    pat!.forEach((v, i) => assert.ok(want3[i] === 0 ? v === 0 : Math.abs(v - want3[i]!) < 1.5e-6));
    const q = T - 1;
    const { detail } = await h.query(runId, { what: 'tokenDetail', q, direction: 'from', weights, top: 3 });
    assert.equal(detail!.items.length, 3);
    const row = Array.from({ length: T }, (_, k) => matrix![q * T + k]!);
    const best = row.indexOf(Math.max(...row));
    assert.equal(detail!.items[0]!.token, best);
    assert.ok(Math.abs(detail!.items[0]!.value - row[best]!) < 1e-6);
    // A newer run replaces the kept one.
    const second = await h.inspect({ prompt: 'another prompt' }, true);
    await assert.rejects(h.query(runId, { what: 'pattern', layer: 0, head: 0 }), (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED');
    assert.ok((await h.query(second.runId, { what: 'pattern', layer: 0, head: 0 })).matrix);
  } finally {
    await h.dispose();
  }
});

test('worker: ablate ranks every head with done/total progress, equal to ablateHeads in-process; stop cancels between heads', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const request = { prompt: 'red green blue red green blue', metric: 'loss' as const, interventions: masking([{ layer: 2, head: 1 }]) };
    const steps: [number, number][] = [];
    const job = h.ablate(request, (done, total) => steps.push([done, total]));
    const r = await job.done;
    assert.equal(r.metric, 'loss');
    assert.equal(r.heads.length, 12);
    assert.deepEqual(steps, Array.from({ length: 13 }, (_, i) => [i, 12]), 'baseline (0), then one step per head');
    // The same numbers as the analysis run directly on a model in this process.
    const { Model } = await import('../../src/engine/model');
    const { ablateHeads } = await import('../../src/engine/analysis/ablation');
    const m = await Model.open(modelDir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const direct = await ablateHeads(m, request);
      assert.equal(r.tokenCount, direct.tokens.length);
      assert.equal(r.baseline, direct.baseline);
      assert.deepEqual(r.heads, direct.heads);
    } finally {
      await m.release();
    }
    // The head masked by the interventions is masked in the baseline already: no change.
    assert.equal(r.heads.find((x) => x.layer === 2 && x.head === 1)!.delta, 0);

    // Stop is asked for at once: it reaches the engine process right behind the call, and the engine
    // checks it before every head's run (each run starts on a new event-loop turn), so the ablation
    // stops early whatever the machine's speed. (Stopping from a progress callback raced: on a tiny
    // model all 12 heads can finish before the host hears of the third.)
    let seen = 0;
    const stopped = h.ablate({ prompt: 'red green blue red green blue', metric: 'logprob' }, () => {
      seen++;
    });
    stopped.stop();
    await assert.rejects(stopped.done, (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED' && /cancelled after [0-9]+ of 12 heads/.test(e.message));
    // The contract is that a cancelled analysis yields no result (above); how many heads ran before
    // the engine heard the stop depends on scheduling, so only the bound is checked.
    assert.ok(seen <= 13, `stopped after ${seen} progress steps`);
    // The engine serves the next call normally after a cancellation.
    assert.equal((await h.ablate({ prompt: 'red green', metric: 'kl', heads: [{ layer: 0, head: 0 }] }).done).heads.length, 1);
  } finally {
    await h.dispose();
  }
});

test('worker: a kept run answers rollout rows over the enabled heads; bad positions are refused', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const full = await h.inspect({ prompt: 'red green blue red green', attention: 'all' });
    const { result, runId } = await h.inspect({ prompt: 'red green blue red green' }, true);
    const T = result.tokens.length;
    const { rolloutRow } = await import('../../src/engine/analysis/rollout');
    const weights = new Float32Array(12).fill(1);
    const { row } = await h.query(runId, { what: 'rollout', q: T - 1, weights });
    const want = rolloutRow({ L: 3, H: 4, T, patterns: full.result.patterns }, T - 1);
    for (let k = 0; k < T; k++) assert.ok(Math.abs(row![k]! - want[k]!) < 1e-6);
    assert.ok(Math.abs(row!.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    await assert.rejects(h.query(runId, { what: 'rollout', q: T, weights }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT' && /token .* outside the run/.test(e.message));
    await assert.rejects(h.query(runId, { what: 'rollout', q: 0, weights: new Float32Array(3) }), /one value per head/);
  } finally {
    await h.dispose();
  }
});

test('worker: generation streams tokens and stops on request; a kept run saves to an .attnrun', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const streamed: number[] = [];
    const full = h.generate({ prompt: 'the cat and the', maxTokens: 12, stopTokenId: -1 }, (t) => streamed.push(t.id));
    const r = await full.done;
    assert.equal(r.tokens.length, 12);
    assert.deepEqual(streamed, r.tokens.map((t) => t.id));
    let seen = 0;
    const g = h.generate({ prompt: 'the cat and the', maxTokens: 40, stopTokenId: -1 }, () => {
      if (++seen === 3) g.stop();
    });
    const stoppedRun = await g.done;
    assert.equal(stoppedRun.stopReason, 'cancelled');
    assert.ok(stoppedRun.tokens.length < 40 && stoppedRun.tokens.length >= 3, `stopped after ${stoppedRun.tokens.length}`);
    const { runId } = await h.inspect({ prompt: 'red green blue red', allLogits: true, interventions: masking([{ layer: 0, head: 1 }]) }, true);
    const file = path.join(tmp, 'runs', 'kept.attnrun');
    assert.equal(await h.saveRun(runId, file), file);
    const { readRunFile } = await import('../../src/engine/runs/runFile');
    const saved = readRunFile(file);
    assert.equal(saved.header.model.layers, 3);
    assert.deepEqual(maskedHeads(saved.header.interventions), [{ layer: 0, head: 1 }]);
    assert.ok(saved.logits && saved.patterns);
  } finally {
    await h.dispose();
  }
});

test('worker: a run kept without allLogits saves every position\'s logits from its hidden states', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const { readRunFile } = await import('../../src/engine/runs/runFile');
    const req = { prompt: 'blue red blue red green', interventions: withScale(noInterventions(), [{ layer: 1, head: 2 }], 2) };
    const a = await h.inspect({ ...req, allLogits: true }, true);
    const fa = path.join(tmp, 'runs', 'with-all.attnrun');
    await h.saveRun(a.runId, fa);
    const b = await h.inspect(req, true);
    assert.equal(b.result.hidden, undefined, 'hidden states stay in the worker');
    const fb = path.join(tmp, 'runs', 'from-hidden.attnrun');
    await h.saveRun(b.runId, fb);
    const la = readRunFile(fa).logits!;
    const lb = readRunFile(fb).logits!;
    assert.equal(la.length, lb.length);
    let d = 0;
    for (let i = 0; i < la.length; i++) d = Math.max(d, Math.abs(la[i]! - lb[i]!));
    assert.ok(d < 1e-4, `max |Δ logit| ${d}`);
    // Saved without tensors (the auto-save): every position's top-K from the head graph's top-k
    // variant (no [T, V] logits), the same as the top-K of the run with every position's logits.
    const fc = path.join(tmp, 'runs', 'slim.attnrun');
    await h.saveRun(b.runId, fc, { tensors: false, autoSaved: true });
    const ra = readRunFile(fa);
    const rc = readRunFile(fc);
    assert.equal(rc.logits, undefined);
    assert.ok(ra.topIds && rc.topIds && ra.topLogprobs && rc.topLogprobs, "top-K saved");
    assert.deepEqual(Array.from(rc.topIds), Array.from(ra.topIds), "top-K ids at every position");
    let dl = 0;
    for (let i = 0; i < ra.topLogprobs.length; i++) dl = Math.max(dl, Math.abs(ra.topLogprobs[i]! - rc.topLogprobs[i]!));
    assert.ok(dl < 1e-4, `max |Δ top-K log-prob| ${dl}`);
    const V = ra.header.model.vocabSize;
    const T = ra.header.tokens.length;
    let dLast = 0;
    for (let i = 0; i < V; i++) dLast = Math.max(dLast, Math.abs(rc.lastLogits![i]! - la[(T - 1) * V + i]!));
    assert.ok(dLast < 1e-4, `last position's logits: max |Δ| ${dLast}`);
  } finally {
    await h.dispose();
  }
});

test('engine process: a death is explained with the run it interrupted', () => {
  const load = { tokens: 8000, estimatedBytes: 72e9 };
  assert.equal(
    describeEngineExit({ code: null, signal: 'SIGKILL', heapMb: 4096, stderrTail: '', load }),
    'was killed (SIGKILL), most likely by the system for lack of memory; the run had 8,000 tokens and needed about 72 GB; try a shorter prompt or a lower attnscope.maxTokens',
  );
  const v8 = '<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n';
  assert.equal(describeEngineExit({ code: null, signal: 'SIGABRT', heapMb: 512, stderrTail: v8, load: { tokens: 1024, estimatedBytes: 3.2e9 } }), 'ran out of JavaScript memory (heap limit 512 MB); the run had 1,024 tokens and needed about 3.2 GB');
  const panic = "thread '<unnamed>' panicked at src/processors/template.rs:12:5:\nMissing SpecialToken(s) with id(s) `<bos>`\nnote: run with RUST_BACKTRACE=1\n";
  assert.equal(describeEngineExit({ code: null, signal: 'SIGABRT', heapMb: 512, stderrTail: panic }), 'aborted in native code (Missing SpecialToken(s) with id(s) `<bos>`)');
});

test('engine process: a native abort inside the tokenizers binding leaves the host alive', async () => {
  // A TemplateProcessing post-processor naming a special token it does not define panics in Rust
  // ("no entry found for key") and aborts the process that encodes with it.
  const bad = path.join(tmp, 'bad-tokenizer');
  fs.cpSync(modelDir, bad, { recursive: true });
  const tj = JSON.parse(fs.readFileSync(path.join(bad, 'tokenizer.json'), 'utf8'));
  const template = { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<nope>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: {} };
  tj.post_processor = template;
  fs.writeFileSync(path.join(bad, 'tokenizer.json'), JSON.stringify(tj));
  const crashes: string[] = [];
  const h = host(crashes);
  try {
    let opened = true;
    try {
      await h.open({ modelDir: bad, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
      await h.inspect({ prompt: 'the cat' });
    } catch (e) {
      opened = false;
      assert.ok(e instanceof EngineError, 'an EngineError');
      // Either refused before it reaches the binding (a TOKENIZER error) or contained (RUNTIME).
      assert.ok(e.code === 'TOKENIZER' || (e.code === 'RUNTIME' && /aborted in native code/.test(e.message)), e.message);
      assert.ok(!e.message.includes('\n'));
    }
    assert.equal(opened, false, 'a broken post-processor never yields a result');
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const { result } = await h.inspect({ prompt: 'still alive' });
    assert.ok(result.tokens.length > 0, 'the host recovers with a good model');
  } finally {
    await h.dispose();
  }
});
