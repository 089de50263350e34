// The compiled-model cache: a warm open reuses the converted weights, a changed checkpoint or an
// incomplete cache entry is rebuilt, and the weights file is page-aligned external data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-cache-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('cache: cold open converts, warm open reuses, changes rebuild', async () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'm'), tinyVariant('llama-tied-bf16'));
  const cacheRoot = path.join(tmp, 'cache');
  const open = async () => {
    const m = await Model.open(ck.dir, { device: 'cpu', cacheRoot });
    await m.release();
    return m;
  };
  const cold = await open();
  assert.equal(cold.fromCache, false);
  const meta = JSON.parse(fs.readFileSync(path.join(cold.cacheDir, 'meta.json'), 'utf8'));
  for (const ref of Object.values(meta.refs) as { offset: number; length: number }[]) {
    if (ref.length >= 4096) assert.equal(ref.offset % 4096, 0, 'large weights are page aligned');
  }
  const size = fs.statSync(path.join(cold.cacheDir, 'weights.bin')).size;
  const params = Object.values(meta.refs as Record<string, { dims: number[] }>).reduce((a, r) => a + r.dims.reduce((x, y) => x * y, 1), 0);
  assert.ok(size >= params * 4, 'BF16 weights stored as float32');
  const warm = await open();
  assert.equal(warm.fromCache, true);
  assert.equal(warm.cacheDir, cold.cacheDir);
  // An interrupted conversion (no meta.json) is redone.
  fs.rmSync(path.join(cold.cacheDir, 'meta.json'));
  assert.equal((await open()).fromCache, false);
  // A changed checkpoint gets its own entry.
  const cfgFile = path.join(ck.dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, rope_theta: cfg.rope_theta * 2 }));
  const changed = await open();
  assert.equal(changed.fromCache, false);
  assert.notEqual(changed.cacheDir, cold.cacheDir);
});
