// Activation patching (src/engine/analysis/patching.ts): every head's patched log-prob against the
// float64 reference (whose z hook captures the clean run's head outputs and replaces one head's in
// the corrupt run), on generated checkpoints of three families; the patch graph's z output and its
// all-heads patch; identities (mask 0 = the plain graph, self-patching = no change, every head at
// once = the clean run where both prompts end in the same token); progress,
// cancellation and bad requests; on the embedded default model the induction head carries the
// repeated-words answer; and `attnscope patch` as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { patchHeads, rankByEffect } from '../../src/engine/analysis/patching';
import { EngineError } from '../../src/engine/errors';
import { headLabel } from '../../src/shared/heads';
import { makeTinyCheckpoint, tinyVariant, type TinyCheckpoint } from '../fixtures/tinyModels';
import { referenceForward } from '../reference/forward';
import { logSoftmax } from '../reference/logSoftmax';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'default');
const REPEATED = path.join(ROOT, 'examples', 'repeated-words.prompt');
const TOL = 1e-3;
const CLEAN = 'the cat sat on the mat and the cat sat';
const CORRUPT = 'the mat sat on the cat and the mat sat';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-patching-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The reference's head outputs z per layer [T][H·hd] for `ids` (the z hook, observing only). */
function refZ(ck: TinyCheckpoint, ids: number[]): { z: Float64Array[][]; logits: Float64Array[] } {
  const z: Float64Array[][] = [];
  const r = referenceForward(ck.config, ck.tensors, ids, { hooks: { z: (l, zl) => void (z[l] = zl.map((v) => Float64Array.from(v))) } });
  return { z, logits: r.logits };
}

/** log p(target) at the last position of the reference run of `ids` with the listed heads' z replaced by `clean`'s. */
function refPatched(ck: TinyCheckpoint, ids: number[], clean: Float64Array[][], heads: { layer: number; head: number }[], hd: number, target: number): number {
  const r = referenceForward(ck.config, ck.tensors, ids, {
    hooks: {
      z: (l, zl) => {
        const out = zl.map((v) => Float64Array.from(v));
        for (const h of heads.filter((x) => x.layer === l)) {
          for (let t = 0; t < out.length; t++) out[t]!.set(clean[l]![t]!.subarray(h.head * hd, (h.head + 1) * hd), h.head * hd);
        }
        return out;
      },
    },
  });
  return logSoftmax(r.logits[ids.length - 1]!)[target]!;
}

for (const name of ['llama-gqa', 'gpt2', 'neox-parallel-rot25']) {
  test(`patching: every head's patched log-prob equals the float64 reference (${name})`, async () => {
    const ck = makeTinyCheckpoint(path.join(tmp, name), tinyVariant(name));
    const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
    try {
      const { layers: L, heads: H, headDim: hd } = model.dims;
      const cleanIds = (await model.tokenizer.encode(CLEAN)).map((t) => t.id);
      const corruptIds = (await model.tokenizer.encode(CORRUPT)).map((t) => t.id);
      assert.equal(cleanIds.length, corruptIds.length, 'the test prompts tokenize to the same length');
      const T = cleanIds.length;
      const clean = refZ(ck, cleanIds);
      const lpClean = logSoftmax(clean.logits[T - 1]!);
      const target = lpClean.indexOf(Math.max(...lpClean));
      const lpCorrupt = logSoftmax(referenceForward(ck.config, ck.tensors, corruptIds).logits[T - 1]!);
      assert.ok(Math.abs(lpClean[target]! - lpCorrupt[target]!) > 0.05, 'the prompts differ in the measured log-prob');

      const progress: [number, number][] = [];
      const r = await patchHeads(model, { clean: CLEAN, corrupt: CORRUPT }, { onProgress: (d, t) => progress.push([d, t]) });
      assert.equal(r.targetId, target, "default target: the clean run's top-1");
      assert.equal(r.targetText, model.tokenizer.decodeToken(target));
      assert.deepEqual(progress, Array.from({ length: L * H + 1 }, (_, i) => [i, L * H]), 'progress after the corrupt baseline and after each head');
      assert.ok(Math.abs(r.clean - lpClean[target]!) <= TOL, `clean ${r.clean} vs ${lpClean[target]}`);
      assert.ok(Math.abs(r.corrupt - lpCorrupt[target]!) <= TOL, `corrupt ${r.corrupt} vs ${lpCorrupt[target]}`);
      assert.deepEqual(r.heads.map((h) => [h.layer, h.head]), Array.from({ length: L * H }, (_, i) => [Math.floor(i / H), i % H]), 'layer-major');
      let worst = Math.max(Math.abs(r.clean - lpClean[target]!), Math.abs(r.corrupt - lpCorrupt[target]!));
      for (const h of r.heads) {
        const want = refPatched(ck, corruptIds, clean.z, [h], hd, target);
        worst = Math.max(worst, Math.abs(h.value - want));
        assert.ok(Math.abs(h.value - want) <= TOL, `${headLabel(h)}: ${h.value} vs reference ${want}`);
        assert.ok(h.effect !== null && Math.abs(h.effect - (h.value - r.corrupt) / (r.clean - r.corrupt)) < 1e-12, 'effect = (value − corrupt) / (clean − corrupt)');
      }
      assert.ok(r.heads.some((h) => Math.abs(h.value - r.corrupt) > 1e-2), 'some head moves the log-prob (or the comparison proves little)');

      // an explicit target and a subset of heads, in the requested order
      const sub = await patchHeads(model, { clean: CLEAN, corrupt: CORRUPT, targetId: 7, heads: [{ layer: L - 1, head: 1 }, { layer: 0, head: 0 }] });
      assert.equal(sub.targetId, 7);
      assert.deepEqual(sub.heads.map(headLabel), [`L${L - 1}H1`, 'L0H0']);
      for (const h of sub.heads) assert.ok(Math.abs(h.value - refPatched(ck, corruptIds, clean.z, [h], hd, 7)) <= TOL);

      // the patch graph itself: hook_z equals the reference's z; patching every head at once equals
      // the reference's all-heads patch; mask 0 is the plain graph exactly
      const ones = new Float32Array(L * H).fill(1);
      const feed = (ids: number[]) => ({ ids, headScale: ones, attnBias: new Float32Array(L * H * T) });
      const cz = await model.forward(feed(cleanIds), { inspect: false, z: true });
      assert.equal(cz.z!.length, L * T * H * hd);
      let worstZ = 0;
      for (let l = 0; l < L; l++) for (let t = 0; t < T; t++) for (let i = 0; i < H * hd; i++) worstZ = Math.max(worstZ, Math.abs(cz.z![(l * T + t) * H * hd + i]! - clean.z[l]![t]![i]!));
      assert.ok(worstZ <= 1e-4, `hook_z vs reference z: ${worstZ}`);
      const all = await model.forward(feed(corruptIds), { inspect: false, patch: { z: cz.z!, mask: new Float32Array(L * H).fill(1) } });
      const allHeads = Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
      const lpAll = logSoftmax(Float64Array.from(all.logits))[target]!;
      const wantAll = refPatched(ck, corruptIds, clean.z, allHeads, hd, target);
      assert.ok(Math.abs(lpAll - wantAll) <= TOL, `all heads patched: ${lpAll} vs reference ${wantAll}`);
      // Attention is the only path between positions: with every head's z from the clean run at every
      // position, the last position (the same token in both prompts) computes exactly the clean run.
      assert.equal(cleanIds[T - 1], corruptIds[T - 1], 'the prompts end in the same token');
      assert.ok(Math.abs(lpAll - r.clean) <= TOL, `all heads patched ${lpAll} reproduces the clean run's ${r.clean}`);
      const plain = await model.forward(feed(corruptIds), { inspect: false });
      const unpatched = await model.forward(feed(corruptIds), { inspect: false, patch: { z: cz.z!, mask: new Float32Array(L * H) } });
      assert.deepEqual(unpatched.logits, plain.logits, 'mask 0: the plain graph, bit for bit');
      // patching a run with its own z changes nothing
      const self = await model.forward(feed(cleanIds), { inspect: false, patch: { z: cz.z!, mask: ones } });
      assert.deepEqual(self.logits, cz.logits, 'a run patched with its own z: unchanged, bit for bit');
      console.log(`${name}: patching max |Δ| vs reference ${worst.toExponential(2)}, hook_z ${worstZ.toExponential(2)}; all heads patched ${lpAll.toFixed(4)} (reference ${wantAll.toFixed(4)}) vs clean ${r.clean.toFixed(4)}, corrupt ${r.corrupt.toFixed(4)}`);
    } finally {
      await model.release();
    }
  });
}

test('patching: identical prompts give every head the clean value and no effect; cancellation; bad requests are one-line errors', async () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'gpt2-bad'), tinyVariant('gpt2'));
  const model = await Model.open(ck.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const same = await patchHeads(model, { clean: CLEAN, corrupt: CLEAN });
    assert.equal(same.clean, same.corrupt);
    for (const h of same.heads) {
      assert.equal(h.value, same.clean, `${headLabel(h)}: patching a run with itself changes nothing`);
      assert.equal(h.effect, null);
    }
    let done = 0;
    await assert.rejects(
      patchHeads(model, { clean: CLEAN, corrupt: CORRUPT }, { onProgress: (d) => (done = d), isCancelled: () => done >= 3 }),
      (e: unknown) => e instanceof EngineError && e.code === 'CANCELLED' && /after 3 of 8 heads/.test(e.message),
    );
    assert.equal(done, 3, 'no run after the cancellation');
    const n = (s: string) => model.tokenizer.encode(s).then((t) => t.length);
    const bad = async (req: Parameters<typeof patchHeads>[1], code: string, re: RegExp) =>
      assert.rejects(patchHeads(model, req), (e: unknown) => e instanceof EngineError && e.code === code && re.test(e.message) && !e.message.includes('\n'));
    const longer = CORRUPT + ' again';
    await bad({ clean: CLEAN, corrupt: longer }, 'PROMPT', new RegExp(`the clean prompt has ${await n(CLEAN)} tokens and the corrupt prompt ${await n(longer)}; patching needs prompts of the same token count`));
    await bad({ clean: CLEAN, corrupt: CORRUPT, targetId: model.dims.vocabSize }, 'BAD_ARGUMENT', /not in the vocabulary/);
    await bad({ clean: CLEAN, corrupt: CORRUPT, targetId: -1 }, 'BAD_ARGUMENT', /not in the vocabulary/);
    await bad({ clean: CLEAN, corrupt: CORRUPT, heads: [{ layer: 0, head: 9 }] }, 'BAD_ARGUMENT', /head 0\.9 does not exist/);
    await bad({ clean: '', corrupt: CORRUPT }, 'PROMPT', /clean prompt is empty/);
    await bad({ clean: CLEAN, corrupt: '' }, 'PROMPT', /corrupt prompt is empty/);
  } finally {
    await model.release();
  }
});

/** repeated-words.prompt with its second half (the repeat of the first words) replaced by words the prompt does not have. */
function corruptedRepeat(prompt: string): { corrupt: string; firstHalf: string } {
  const words = prompt.trim().split(/\s+/);
  const repeatAt = words.findIndex((w, i) => words.indexOf(w) < i);
  assert.ok(repeatAt > 0, 'the prompt repeats its words');
  const first = words.slice(0, repeatAt);
  const other = ['music', 'paper', 'cloud', 'ocean', 'tiger', 'silver', 'coffee'].filter((w) => !words.includes(w));
  assert.ok(other.length >= words.length - repeatAt);
  return { corrupt: [...first, ...other.slice(0, words.length - repeatAt)].join(' '), firstHalf: first.join(' ') };
}

test('default model: patching the repeat into a prompt without one restores the answer through the induction head', async () => {
  const model = await Model.open(DEFAULT_MODEL, { device: 'cpu', cacheRoot: path.join(tmp, 'cache') });
  try {
    const prompt = fs.readFileSync(REPEATED, 'utf8');
    const { corrupt, firstHalf } = corruptedRepeat(prompt);
    const [a, b] = [await model.tokenizer.encode(prompt), await model.tokenizer.encode(corrupt)];
    assert.equal(a.length, b.length, `${JSON.stringify(corrupt)}: the same token count as the clean prompt`);
    const shared = a.filter((t) => t.end <= firstHalf.length).length;
    assert.ok(shared >= 10, `${shared} tokens in the first half`);
    assert.deepEqual(b.slice(0, shared).map((t) => t.id), a.slice(0, shared).map((t) => t.id), 'the first half is the same');
    assert.ok(b.slice(shared).every((t) => !a.slice(0, shared).some((u) => u.id === t.id)), 'the second half repeats nothing');
    const r = await patchHeads(model, { clean: prompt, corrupt });
    const ranked = rankByEffect(r.heads);
    const byLabel = new Map(r.heads.map((h) => [headLabel(h), h]));
    console.log(`default model, ${JSON.stringify(corrupt)}: log p(${JSON.stringify(r.targetText)}) clean ${r.clean.toFixed(4)}, corrupt ${r.corrupt.toFixed(4)}; top effects ${ranked.slice(0, 5).map((h) => `${headLabel(h)} ${h.effect!.toFixed(4)}`).join(', ')}; L0H7 ${byLabel.get('L0H7')!.effect!.toFixed(4)}`);
    assert.equal(r.targetText, ' table');
    assert.ok(r.clean > -0.1 && r.corrupt < -5, 'the repeat makes " table" likely; without it, it is not');
    // the induction head alone restores the clean log-prob almost entirely; no other head does much
    assert.equal(headLabel(ranked[0]!), 'L1H0');
    assert.ok(ranked[0]!.effect! > 0.98, `L1H0 effect ${ranked[0]!.effect}`);
    for (const h of ranked.slice(1)) assert.ok(h.effect! < 0.1, `${headLabel(h)} effect ${h.effect}`);
  } finally {
    await model.release();
  }
});

test('CLI: attnscope patch writes every head layer-major with value and effect; mismatched prompts and bad flags are one-line errors', () => {
  const BIN = path.join(ROOT, 'bin', 'attnscope.js');
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: path.join(tmp, 'cli-cache') }, timeout: 120_000 });
  const corruptFile = path.join(tmp, 'corrupt.prompt');
  fs.writeFileSync(corruptFile, corruptedRepeat(fs.readFileSync(REPEATED, 'utf8')).corrupt);
  const out = path.join(tmp, 'patch.json');
  const r = run(['patch', REPEATED, corruptFile, '--device', 'cpu', '--json', out]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(j.targetText, ' table');
  assert.ok(Number.isInteger(j.targetId));
  assert.ok(j.clean > j.corrupt);
  assert.equal(j.heads.length, 32);
  j.heads.forEach((h: { layer: number; head: number; value: number; effect: number }, i: number) => {
    assert.deepEqual([h.layer, h.head], [Math.floor(i / 8), i % 8]);
    assert.ok(Math.abs(h.effect - (h.value - j.corrupt) / (j.clean - j.corrupt)) < 1e-5);
  });
  const t = run(['patch', REPEATED, corruptFile, '--device', 'cpu', '--target-id', String(j.targetId)]);
  assert.deepEqual(JSON.parse(t.stdout).heads, j.heads, '--target-id of the top-1 gives the default');
  const longer = path.join(tmp, 'longer.prompt');
  fs.writeFileSync(longer, fs.readFileSync(REPEATED, 'utf8') + ' table');
  for (const [args, code, re] of [
    [[REPEATED, longer], 1, /the clean prompt has 16 tokens and the corrupt prompt 17; patching needs prompts of the same token count/],
    [[REPEATED], 2, /patch takes a clean and a corrupt prompt file \(got 1 files\)/],
    [[REPEATED, corruptFile, '--target-id=-1'], 2, /--target-id: "-1" must be a token id/],
    [[REPEATED, corruptFile, '--target-id', '99999999'], 2, /--target-id: 99999999 is not in the vocabulary/],
  ] as const) {
    const e = run(['patch', ...args, '--device', 'cpu']);
    assert.equal(e.status, code, e.stderr);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr.trim().split('\n').length, 1);
    assert.match(e.stderr, re);
  }
});
