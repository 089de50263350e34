// The worker-thread engine host: runs, superseding, and crash containment with restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineHost } from '../../src/engine/runtime/engineHost';
import { EngineError } from '../../src/engine/errors';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

const WORKER = path.resolve(__dirname, '..', '..', '..', 'dist', 'engineWorker.js');
let tmp: string;
let modelDir: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-host-'));
  modelDir = makeTinyCheckpoint(path.join(tmp, 'm'), tinyVariant('qwen2-untied')).dir;
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function host(crashes: string[] = []): EngineHost {
  return new EngineHost({ workerScript: WORKER, maxHeapMb: 256, onCrash: (m) => crashes.push(m) });
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
    const { result } = await h.inspect({ prompt: 'the cat and the cat', attention: [{ layer: 1, head: 2 }], mask: [{ layer: 0, head: 0 }] });
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

for (const how of ['throw', 'exit', 'oom'] as const) {
  test(`worker: a crash (${how}) is contained and the worker restarts`, async () => {
    const crashes: string[] = [];
    const h = host(crashes);
    try {
      await h.open({ modelDir, device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
      await assert.rejects(h.crashForTest(how), (e: unknown) => e instanceof EngineError && e.code === 'RUNTIME' && /engine worker stopped/.test(e.message));
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
    await assert.rejects(h.inspect({ prompt: 'x', mask: [{ layer: 9, head: 0 }] }), (e: unknown) => e instanceof EngineError && e.code === 'BAD_ARGUMENT');
  } finally {
    await h.dispose();
  }
});
