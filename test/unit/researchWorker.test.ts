// The engine process's lens, patch and lookupToken calls: the same numbers as the analyses run
// in-process (the host only moves them), progress and cancellation of patching, vocabulary lookup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineHost } from '../../src/engine/worker/engineHost';
import { EngineError } from '../../src/engine/errors';
import { noInterventions, withScale } from '../../src/shared/interventions';
import { lookupOutcome } from '../../src/shared/watch';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

const ENGINE = path.resolve(__dirname, '..', '..', '..', 'dist', 'engineProcess.js');
let tmp: string;
let modelDir: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-research-'));
  modelDir = makeTinyCheckpoint(path.join(tmp, 'm'), tinyVariant('llama-gqa')).dir;
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const host = () => new EngineHost({ engineScript: ENGINE, maxHeapMb: 256 });

test('worker: lens equals logitLens in-process (top-K and watched ids at every layer, with interventions)', async () => {
  const h = host();
  const cacheRoot = path.join(tmp, 'cache');
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot });
    const iv = withScale(noInterventions(), [{ layer: 1, head: 0 }], 0);
    const request = { prompt: 'red green blue red green blue', position: 3, topK: 4, watch: [5, 17], interventions: iv };
    const r = await h.lens(request);
    const { Model } = await import('../../src/engine/model');
    const { logitLens } = await import('../../src/engine/analysis/lens');
    const m = await Model.open(modelDir, { device: 'cpu', cacheRoot });
    try {
      const direct = await logitLens(m, request);
      assert.equal(r.tokenCount, direct.tokens.length);
      assert.equal(r.position, 3);
      assert.deepEqual(r.layers, direct.layers);
      assert.equal(r.layers.length, m.dims.layers + 1);
      assert.deepEqual(r.layers[0]!.watched.map((w) => w.id), [5, 17]);
      // without the interventions the numbers differ (the masked head matters somewhere)
      const plain = await logitLens(m, { ...request, interventions: undefined });
      assert.notDeepEqual(plain.layers[m.dims.layers]!.watched, direct.layers[m.dims.layers]!.watched);
    } finally {
      await m.release();
    }
    await assert.rejects(h.lens({ prompt: 'red green', position: 9 }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT' && /position 9 is not a token/.test(e.message));
  } finally {
    await h.dispose();
  }
});

test('worker: patch equals patchHeads in-process with done/total progress; stop cancels; unequal lengths name both', async () => {
  const h = host();
  const cacheRoot = path.join(tmp, 'cache');
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot });
    const request = { clean: 'red green blue red green blue', corrupt: 'red green blue pink grey blue' };
    const steps: [number, number][] = [];
    const r = await h.patch(request, (done, total) => steps.push([done, total])).done;
    const { Model } = await import('../../src/engine/model');
    const { patchHeads } = await import('../../src/engine/analysis/patching');
    const m = await Model.open(modelDir, { device: 'cpu', cacheRoot });
    const n = m.dims.layers * m.dims.heads;
    try {
      const direct = await patchHeads(m, request);
      assert.equal(r.tokenCount, direct.cleanTokens.length);
      assert.equal(r.targetId, direct.targetId);
      assert.equal(r.clean, direct.clean);
      assert.equal(r.corrupt, direct.corrupt);
      assert.deepEqual(r.heads, direct.heads);
    } finally {
      await m.release();
    }
    assert.deepEqual(steps, Array.from({ length: n + 1 }, (_, i) => [i, n]));

    // Stop asked for at once (it reaches the engine right behind the call and is checked before
    // every run): stopping from a progress message raced with a tiny model under load.
    let seen = 0;
    const job = h.patch(request, () => {
      seen++;
    });
    job.stop();
    await assert.rejects(job.done, (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED' && /cancelled after \d+ of \d+ heads/.test(e.message));
    assert.ok(seen <= n, `stopped after ${seen} progress steps`);
    await assert.rejects(h.patch({ clean: 'red green blue', corrupt: 'red green' }).done, (e: unknown) => e instanceof EngineError && e.code === 'PROMPT' && /clean prompt has \d+ tokens and the corrupt prompt \d+/.test(e.message));
  } finally {
    await h.dispose();
  }
});

test('worker: lookupToken finds the tokens of a text (special tokens left out) and the text of an id', async () => {
  const h = host();
  try {
    await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    const { Model } = await import('../../src/engine/model');
    const m = await Model.open(modelDir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const enc = (await m.tokenizer.encode(' green')).filter((t) => !t.special);
      const r = await h.lookupToken({ text: ' green' });
      assert.deepEqual(r.pieces.map((p) => p.id), enc.map((t) => t.id));
      assert.equal(r.spaced, null, 'a text with a leading space has no spaced variant');
      assert.equal(r.pieces[0]!.text, m.tokenizer.decodeToken(enc[0]!.id));
      const byId = await h.lookupToken({ id: enc[0]!.id });
      assert.deepEqual(byId.pieces, [{ id: enc[0]!.id, text: m.tokenizer.decodeToken(enc[0]!.id) }]);
      const noSpace = await h.lookupToken({ text: 'green' });
      assert.ok(noSpace.spaced, 'the spaced variant is looked up');
      // whatever the tokenizer does, the outcome is a token or a message with candidates, never both
      const o = lookupOutcome('green', noSpace);
      assert.ok('token' in o || o.message.length > 0);
      await assert.rejects(h.lookupToken({ id: m.dims.vocabSize }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT' && /not in the vocabulary/.test(e.message));
    } finally {
      await m.release();
    }
  } finally {
    await h.dispose();
  }
});
