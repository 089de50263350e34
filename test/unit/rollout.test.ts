// Attention rollout (src/engine/analysis/rollout.ts): a hand-computed case, every row against a
// float64 rollout formed as the full matrix product from the reference forward's patterns on
// generated checkpoints, bad input, and `attnscope inspect --rollout`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { runInspection } from '../../src/engine/run';
import { rolloutLast, rolloutRow } from '../../src/engine/analysis/rollout';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TOL = 1e-4;

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-rollout-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** R = Ā_{L−1}⋯Ā_0 as a full T×T product, Ā_l = ½·mean_h P_l + ½·I with rows renormalised (Abnar & Zuidema 2020). */
function fullRollout(attn: Float64Array[][], T: number): Float64Array[] {
  let R: Float64Array[] = Array.from({ length: T }, (_, i) => Float64Array.from({ length: T }, (_, j) => (i === j ? 1 : 0)));
  for (let l = 0; l < attn.length; l++) {
    const H = attn[l]!.length;
    const A = Array.from({ length: T }, (_, i) => {
      const row = new Float64Array(T);
      for (let k = 0; k < T; k++) {
        let m = 0;
        for (let h = 0; h < H; h++) m += attn[l]![h]![i * T + k]!;
        row[k] = 0.5 * (m / H) + (i === k ? 0.5 : 0);
      }
      const s = row.reduce((a, b) => a + b, 0);
      return row.map((v) => v / s);
    });
    // R ← Ā_l · R (layer l applied after the layers below it)
    R = A.map((a) => {
      const out = new Float64Array(T);
      for (let j = 0; j < T; j++) for (let k = 0; k < T; k++) out[k]! += a[j]! * R[j]![k]!;
      return out;
    });
  }
  return R;
}

test('rollout: one layer, one head, two tokens, by hand', () => {
  // P = [[1, 0], [0.4, 0.6]] → Ā = [[1, 0], [0.2, 0.8]]
  const src = { L: 1, H: 1, T: 2, patterns: new Map([[0, Float32Array.from([1, 0, 0.4, 0.6])]]) };
  const r = rolloutLast(src);
  assert.ok(Math.abs(r[0]! - 0.2) < 1e-7 && Math.abs(r[1]! - 0.8) < 1e-7, `${r}`);
  assert.deepEqual(Array.from(rolloutRow(src, 0)), [1, 0]);
  // two identical layers: Ā² row 1 = [0.2 + 0.8·0.2, 0.64]
  const two = rolloutLast({ L: 2, H: 1, T: 2, patterns: new Map([[0, src.patterns.get(0)!], [1, src.patterns.get(0)!]]) });
  assert.ok(Math.abs(two[0]! - 0.36) < 1e-7 && Math.abs(two[1]! - 0.64) < 1e-7, `${two}`);
});

test('rollout: bad input is a RangeError that says what is wrong', () => {
  const p = new Map([[0, new Float32Array(4)]]);
  assert.throws(() => rolloutRow({ L: 2, H: 1, T: 2, patterns: p }, 1), /layer 1's attention pattern is missing/);
  assert.throws(() => rolloutRow({ L: 1, H: 2, T: 2, patterns: p }, 1), /4 values, not 2×2×2/);
  assert.throws(() => rolloutRow({ L: 1, H: 1, T: 2, patterns: p }, 2), /position 2 is outside 0\.\.1/);
});

for (const name of ['llama-gqa', 'gpt2-bare-keys', 'neox-sequential-rot50']) {
  test(`rollout: every row equals the float64 rollout of the reference's patterns (${name})`, async () => {
    const ck = makeTinyCheckpoint(path.join(tmp, name), tinyVariant(name));
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const r = await runInspection(model, { prompt: 'a rollout over a few words and a few more words', attention: 'all' });
      const T = r.tokens.length;
      const ids = r.tokens.map((t) => t.id);
      const want = fullRollout(referenceForward(ck.config, ck.tensors, ids, {}).attn, T);
      const src = { L: model.dims.layers, H: model.dims.heads, T, patterns: r.patterns };
      let worst = 0;
      for (let q = 0; q < T; q++) {
        const row = rolloutRow(src, q);
        let sum = 0;
        for (let k = 0; k < T; k++) {
          worst = Math.max(worst, Math.abs(row[k]! - want[q]![k]!));
          sum += row[k]!;
          if (k > q) assert.equal(row[k], 0, `causal: row ${q} key ${k}`);
        }
        assert.ok(Math.abs(sum - 1) < 1e-9, `row ${q} sums to ${sum}`);
      }
      assert.ok(worst <= TOL, `max |Δ| ${worst}`);
      assert.deepEqual(rolloutLast(src), rolloutRow(src, T - 1));
      console.log(`${name}: T=${T} max |Δ rollout| ${worst.toExponential(2)}`);
    } finally {
      await model.release();
    }
  });
}

test('CLI: inspect --rollout adds the last position\'s row and keeps the attention to the heads asked for', async () => {
  const BIN = path.join(ROOT, 'bin', 'attnscope.js');
  const PROMPT = path.join(ROOT, 'examples', 'repeated-words.prompt');
  const cache = path.join(tmp, 'cli-cache');
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: cache }, timeout: 120_000 });
  const a = run(['inspect', PROMPT, '--device', 'cpu', '--rollout']);
  assert.equal(a.status, 0, a.stderr);
  const j = JSON.parse(a.stdout);
  assert.equal(j.rollout.length, j.tokens.length);
  assert.deepEqual(j.attention, {}, 'no patterns in the JSON unless asked for');
  const model = await Model.open(path.join(ROOT, 'models', 'default'), { device: 'cpu', cacheRoot: cache });
  try {
    const r = await runInspection(model, { prompt: fs.readFileSync(PROMPT, 'utf8'), attention: 'all' });
    const want = rolloutLast({ L: model.dims.layers, H: model.dims.heads, T: r.tokens.length, patterns: r.patterns });
    j.rollout.forEach((v: number, k: number) => assert.ok(Math.abs(v - want[k]!) < 1e-6, `key ${k}: ${v} vs ${want[k]}`));
  } finally {
    await model.release();
  }
  const b = run(['inspect', PROMPT, '--device', 'cpu', '--rollout', '--attention', '1.0']);
  assert.deepEqual(Object.keys(JSON.parse(b.stdout).attention), ['1.0']);
  const c = run(['inspect', PROMPT, '--device', 'cpu']);
  assert.equal(JSON.parse(c.stdout).rollout, undefined, 'no rollout unless asked for');
});
