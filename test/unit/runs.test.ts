// Saved runs (.attnrun): round trip, damaged files, never overwriting; the comparison math on
// hand-computed values; and the CLI's --save + compare on a real model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeRun, encodeRun, newRunPath, readRunFile, writeRunFile, type SavedRun } from '../../src/engine/runs/runFile';
import { alignTokens, compareRuns, klDivergence } from '../../src/engine/analysis/compare';
import { EngineError } from '../../src/engine/errors';
import type { HeadSummary } from '../../src/shared/heads';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-runs-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tok = (id: number, text: string, start: number, special = false) => ({ id, text, start, end: start + text.length, special });
const head = (layer: number, h: number, v: number) => ({ layer, head: h, entropy: v, sink: v / 2, prevToken: 0.1, selfAttn: 0.2, induction: null, duplicateToken: null });

/** A tiny run: 1 layer × 1 head, vocab 2, the given tokens, logits and patterns. */
function run(tokens: ReturnType<typeof tok>[], logits: number[], patterns: number[], entropy = 1): SavedRun {
  return {
    header: {
      createdAt: '2026-11-23T00:00:00.000Z',
      prompt: tokens.map((t) => t.text).join(''),
      model: { dir: '/m', hash: 'abc', arch: 'llama', modelType: 'llama', layers: 1, heads: 1, kvHeads: 1, hiddenSize: 4, vocabSize: 2 },
      device: 'cpu',
      interventions: { scales: [{ layer: 0, head: 0, value: 0 }], emphasis: null, sink: null },
      tokens,
      heads: [head(0, 0, entropy)],
      next: [{ id: 1, text: 'x', prob: 0.5 }],
      timings: { loadMs: 1, runMs: 2 },
    },
    logits: Float32Array.from(logits),
    patterns: Float32Array.from(patterns),
  };
}

const A = run([tok(0, 'a', 0), tok(1, 'b', 1), tok(2, 'c', 2)], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5]);
const B = run([tok(0, 'a', 0), tok(9, 'x', 1), tok(1, 'b', 2), tok(2, 'c', 3)], [Math.log(3), 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.25, 0.25, 0, 0.1, 0.1, 0.1, 0.7], 1.5);

test('run file: round trip keeps every field and tensor', () => {
  const back = decodeRun(encodeRun(A), 'a.attnrun');
  assert.deepEqual(back.header, A.header);
  assert.deepEqual(Array.from(back.logits!), Array.from(A.logits!));
  assert.deepEqual(Array.from(back.patterns!), Array.from(A.patterns!));
  const f = newRunPath(path.join(tmp, 'runs'), 'my prompt.prompt');
  writeRunFile(f, A);
  assert.match(path.basename(f), /^my-prompt\.prompt-.*\.attnrun$/);
  assert.deepEqual(readRunFile(f).header, A.header);
  assert.notEqual(newRunPath(path.join(tmp, 'runs'), 'my prompt.prompt', new Date(A.header.createdAt)), f);
});

test('run file: a run saved before a metric existed opens with null for it, and compares', () => {
  // Written as older AttnScope wrote it: the five metrics before duplicateToken.
  const old = (r: SavedRun): SavedRun => ({ ...r, header: { ...r.header, heads: r.header.heads.map(({ duplicateToken: _d, ...rest }) => rest as HeadSummary) } });
  const back = decodeRun(encodeRun(old(A)), 'old.attnrun');
  assert.deepEqual(back.header.heads, A.header.heads);
  assert.equal(back.header.heads[0]!.duplicateToken, null);
  const c = compareRuns(back, decodeRun(encodeRun(B), 'b.attnrun'));
  assert.equal(c.headDeltas[0]!.duplicateToken, null);
  assert.ok(Math.abs(c.headDeltas[0]!.entropy! - 0.5) < 1e-12);
});

test('run file: damaged files give a clear error and are never overwritten', () => {
  const good = encodeRun(A);
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', good.subarray(0, good.length - 5), /truncated/],
    ['header-cut', good.subarray(0, 30), /truncated/],
    ['magic', Buffer.concat([Buffer.from('NOTARUN\n'), good.subarray(8)]), /signature/],
    ['empty', Buffer.alloc(0), /signature/],
  ];
  const v2 = Buffer.from(good);
  v2.writeUInt32LE(2, 8);
  cases.push(['version', v2, /version 2 is not supported/]);
  const json = Buffer.from(good);
  json.write('}', 16, 'latin1');
  cases.push(['json', json, /not valid JSON/]);
  for (const [name, bytes, re] of cases) {
    const f = path.join(tmp, `${name}.attnrun`);
    fs.writeFileSync(f, bytes);
    const before = fs.readFileSync(f);
    assert.throws(() => readRunFile(f), (e: unknown) => e instanceof EngineError && re.test(e.message) && e.message.includes(f) && !e.message.includes('\n'), name);
    assert.deepEqual(fs.readFileSync(f), before, `${name}: the file is untouched`);
    assert.throws(() => writeRunFile(f, A), /already exists/, `${name}: never overwritten`);
    assert.deepEqual(fs.readFileSync(f), before);
  }
  assert.throws(() => readRunFile(path.join(tmp, 'nope.attnrun')), /run file not found/);
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left');
});

test('compare: alignment, KL, top-K changes, attention shift and head deltas by hand', () => {
  assert.deepEqual(alignTokens(A.header.tokens, B.header.tokens), [{ a: 0, b: 0 }, { a: 1, b: 2 }, { a: 2, b: 3 }]);
  const c = compareRuns(A, B, 2);
  assert.equal(c.aligned, 3);
  assert.deepEqual(c.unalignedA, []);
  assert.deepEqual(c.unalignedB, [1]);
  // position 0: P = (.5, .5), Q = (.75, .25): KL = .5 ln(4/3)
  assert.ok(Math.abs(c.positions[0]!.kl - 0.5 * Math.log(4 / 3)) < 1e-7);
  assert.ok(Math.abs(c.positions[1]!.kl) < 1e-12);
  assert.equal(c.mostDifferent[0]!.a, 0);
  assert.deepEqual(c.positions[0]!.topA.map((t) => t.id), [0, 1]);
  assert.deepEqual(c.positions[0]!.topB.map((t) => t.id), [0, 1]);
  // attention shift at A's token 2 (B's 3) over the aligned keys (0,0),(1,2),(2,3):
  // A row [.2,.3,.5], B row at those keys [.1,.1,.7]: TV = (.1+.2+.2)/2 = .25
  assert.ok(Math.abs(c.positions[2]!.attentionShift! - 0.25) < 1e-6);
  assert.deepEqual(c.headDeltas, [{ layer: 0, head: 0, entropy: 0.5, sink: 0.25, prevToken: 0, selfAttn: 0, induction: null, duplicateToken: null }]);
  assert.deepEqual(c.notComparable, []);
  assert.ok(Math.abs(klDivergence(Float64Array.from([Math.log(0.5), Math.log(0.5)]), Float64Array.from([Math.log(0.5), Math.log(0.5)]))) < 1e-15);
  // different shapes and vocabularies are reported, not guessed
  const C = run([tok(0, 'a', 0)], [0, 0, 0], [1]);
  C.header.model = { ...C.header.model, vocabSize: 3, heads: 2 };
  C.patterns = undefined;
  const d = compareRuns(A, C);
  assert.equal(d.notComparable.length, 2);
  assert.match(d.notComparable.join(' '), /vocabularies differ.*shape/);
  assert.ok(Number.isNaN(d.positions[0]!.kl));
});

test('CLI: inspect --save, then compare baseline vs masked', () => {
  const ck = makeTinyCheckpoint(path.join(tmp, 'model'), tinyVariant('gpt2'));
  const p = path.join(tmp, 'p.prompt');
  fs.writeFileSync(p, 'one two three one two three');
  const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'attnscope.js');
  const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: path.join(tmp, 'cache') } });
  const base = path.join(tmp, 'base.attnrun');
  const masked = path.join(tmp, 'masked.attnrun');
  assert.equal(cli(['inspect', p, '--model', ck.dir, '--save', base]).status, 0);
  const r = cli(['inspect', p, '--model', ck.dir, '--save', masked, '--mask', '1.0,1.1', '--attention', '0.0']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(Object.keys(JSON.parse(r.stdout).attention), ['0.0'], 'the JSON keeps only the heads asked for');
  const again = cli(['inspect', p, '--model', ck.dir, '--save', base]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /already exists/);
  const c = cli(['compare', base, masked]);
  assert.equal(c.status, 0, c.stderr);
  const j = JSON.parse(c.stdout);
  assert.equal(j.aligned, j.a.tokens);
  assert.deepEqual(j.notComparable, []);
  assert.ok(j.mostDifferent[0].kl > 0, 'masking layer-1 heads changes the predictions');
  const layer0 = j.headDeltas.filter((h: { layer: number }) => h.layer === 0);
  assert.ok(layer0.every((h: { entropy: number }) => Math.abs(h.entropy) < 1e-5), 'layer 0 patterns do not change when layer 1 is masked');
  const self = JSON.parse(cli(['compare', base, base]).stdout);
  assert.ok(self.positions.every((x: { kl: number }) => x.kl === 0));
  const bad = cli(['compare', base, path.join(tmp, 'missing.attnrun')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^attnscope: .*missing\.attnrun: run file not found\n$/);
});
