// Saved runs (.attnrun): round trip, damaged files, never overwriting; the comparison math on
// hand-computed values; and the CLI's --save + compare on a real model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeRun, encodeRun, isAutoSavedRun, newRunPath, readRunFile, readRunFileAsync, RUN_TOP_K, savedRunFrom, writeRunFile, type SavedRun } from '../../src/engine/runs/runFile';
import { alignment, alignTokens, compareRuns, klDivergence } from '../../src/engine/analysis/compare';
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

test('run file: NaN or Infinity in a tensor is refused in one line (never compared as identical)', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const logits = Float32Array.from(A.logits!);
    logits[4] = bad;
    const bytes = encodeRun({ ...A, logits });
    assert.throws(() => decodeRun(bytes, 'nan.attnrun'), (e: unknown) => e instanceof EngineError && /^nan\.attnrun: tensor logits holds (NaN|Infinity) \(value 4\)/.test(e.message) && !e.message.includes('\n'));
  }
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
  v2.writeUInt32LE(3, 8); // this AttnScope reads versions 1 and 2
  cases.push(['version', v2, /version 3 is not supported/]);
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

// ---- format 2, bounds on every header value, bounded alignment ----

/** A fake RunResult of L×H heads, T tokens, vocab V: seeded logits and patterns. */
function result(T: number, V: number, L = 1, H = 2, seed = 1) {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const allLogits = Float32Array.from({ length: T * V }, () => rnd() * 4 - 2);
  const patterns = new Map<number, Float32Array>();
  for (let l = 0; l < L; l++) patterns.set(l, Float32Array.from({ length: H * T * T }, () => rnd()));
  const heads = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) heads.push(head(l, h, rnd()));
  return {
    model: { arch: 'llama', modelType: 'llama', layers: L, heads: H, kvHeads: H, hiddenSize: 8, vocabSize: V, hash: 'h', dir: '/dev/zero' },
    device: 'cpu',
    tokens: Array.from({ length: T }, (_, i) => tok(i % V, `t${i % V}`, i * 3)),
    truncated: 0,
    allLogits,
    next: [{ id: 1, text: 't1', prob: 0.25 }],
    heads,
    patterns,
    attentionHeads: [],
    timings: { loadMs: 1, tokenizeMs: 1, runMs: 2 },
  } as unknown as import('../../src/engine/run').RunResult;
}
const decodeT = (id: number) => `t${id}`;
const noIv = { scales: [], emphasis: null, sink: null };

test('format 2: a run saved without tensors keeps top-K with texts and the last logits; with tensors, everything', () => {
  const r = result(6, 20);
  const prompt = 'x'.repeat(18);
  const slim = decodeRun(encodeRun(savedRunFrom(r, prompt, noIv, { tensors: false, autoSaved: true, decode: decodeT })));
  assert.equal(slim.version, 2);
  assert.equal(slim.header.autoSaved, true);
  assert.equal(slim.logits, undefined);
  assert.equal(slim.patterns, undefined);
  assert.deepEqual([...slim.lastLogits!], [...r.allLogits!.subarray(5 * 20, 6 * 20)], 'the last position, exactly');
  assert.equal(slim.topIds!.length, 6 * RUN_TOP_K);
  for (let t = 0; t < 6; t++) {
    // the stored top-K is the row's sorted order, ties to the lower id
    const row = [...r.allLogits!.subarray(t * 20, (t + 1) * 20)].map((v, id) => ({ v, id })).sort((x, y) => y.v - x.v || x.id - y.id);
    assert.deepEqual([...slim.topIds!.subarray(t * RUN_TOP_K, (t + 1) * RUN_TOP_K)], row.slice(0, RUN_TOP_K).map((x) => x.id));
    for (const id of slim.topIds!.subarray(t * RUN_TOP_K, (t + 1) * RUN_TOP_K)) assert.equal(slim.header.topTexts![id], `t${id}`);
  }
  const full = decodeRun(encodeRun(savedRunFrom(r, prompt, noIv, { tensors: true, autoSaved: false, decode: decodeT })));
  assert.equal(full.header.autoSaved, false);
  assert.deepEqual([...full.logits!], [...r.allLogits!]);
  assert.equal(full.patterns!.length, 1 * 2 * 6 * 6);
  assert.equal(full.lastLogits, undefined, 'the logits hold the last row');
  assert.ok(encodeRun(savedRunFrom(result(64, 200), 'x'.repeat(200), noIv, { tensors: false, autoSaved: true, decode: decodeT })).length < encodeRun(savedRunFrom(result(64, 200), 'x'.repeat(200), noIv, { tensors: true, autoSaved: true, decode: decodeT })).length / 4);
});

test('format 1 files still read', () => {
  const v1 = Buffer.from(encodeRun(A));
  v1.writeUInt32LE(1, 8);
  const back = decodeRun(v1, 'old.attnrun');
  assert.equal(back.version, 1);
  assert.deepEqual(Array.from(back.logits!), Array.from(A.logits!));
  assert.equal(back.header.autoSaved, undefined);
});

/** A file from a header object and a data section of `dataBytes` zero bytes. */
function crafted(header: unknown, dataBytes = 64, version = 2): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16);
  pre.write('ATTNRUN\n', 0, 'latin1');
  pre.writeUInt32LE(version, 8);
  pre.writeUInt32LE(json.length, 12);
  return Buffer.concat([pre, json, Buffer.alloc((8 - ((16 + json.length) % 8)) % 8), Buffer.alloc(dataBytes)]);
}

test('crafted headers: every value is bounded against the file before anything is allocated; one-line errors; file untouched', async () => {
  const enc = encodeRun(savedRunFrom(result(3, 4), 'abcdefghi', noIv, { tensors: false, autoSaved: true, decode: decodeT }));
  const good = JSON.parse(enc.toString('utf8', 16, 16 + enc.readUInt32LE(12)));
  const bytesOf = (h: Record<string, unknown>) => crafted(h, 4 * 4 + 2 * 3 * 4 * 4);
  assert.ok(decodeRun(bytesOf(good)), 'the base header is good');
  const m = good.model;
  const t = good.tensors;
  const cases: [string, Buffer, RegExp][] = [
    // the 2.6 KB file that used to allocate 5·L·H floats (8 GB)
    ['huge L and H', bytesOf({ ...good, model: { ...m, layers: 1e9, heads: 1e9 } }), /layers and model.heads must be integers from 1 to 4096/],
    ['L·H without heads', bytesOf({ ...good, model: { ...m, layers: 4096, heads: 4096 } }), /expected 4096×4096 heads/],
    ['huge V', bytesOf({ ...good, model: { ...m, vocabSize: 1e12 } }), /vocabSize must be an integer/],
    ['V past the file', bytesOf({ ...good, model: { ...m, vocabSize: 1 << 24 }, tensors: { ...t, lastLogits: { dims: [1 << 24], offset: 0, length: 4 << 24 } } }), /runs past the end of the file|over the limit/],
    ['huge T dims', bytesOf({ ...good, tensors: { ...t, topIds: { dims: [1e9, 2], offset: 0, length: 8e9 } } }), /topIds has dims/],
    ['negative layers', bytesOf({ ...good, model: { ...m, layers: -1 } }), /model.layers/],
    ['null model', bytesOf({ ...good, model: null }), /missing model shape/],
    ['NaN via 1e999', crafted(JSON.stringify({ ...good, model: { ...m, heads: 7 } }).replace('"heads":7', '"heads":1e999'), 96), /model.heads/],
    ['NaN literal', crafted(JSON.stringify(good).replace('"runMs":2', '"runMs":NaN'), 96), /not valid JSON/],
    ['null token', bytesOf({ ...good, tokens: [null, ...good.tokens.slice(1)] }), /token 0/],
    ['negative token end', bytesOf({ ...good, tokens: [{ ...good.tokens[0], end: -1 }, ...good.tokens.slice(1)] }), /token 0/],
    ['token past the prompt', bytesOf({ ...good, tokens: [{ ...good.tokens[0], end: 1e9 }] }), /token 0/],
    ['no tokens', bytesOf({ ...good, tokens: [] }), /no tokens/],
    ['null head', bytesOf({ ...good, heads: [null, good.heads[1]] }), /entry 0/],
    ['duplicate head', bytesOf({ ...good, heads: [good.heads[0], good.heads[0]] }), /entry 1 is not a distinct/],
    ['metric string', bytesOf({ ...good, heads: [{ ...good.heads[0], entropy: 'x' }, good.heads[1]] }), /entropy of entry 0/],
    ['null prediction', bytesOf({ ...good, next: [null] }), /prediction 0/],
    ['prediction id past V', bytesOf({ ...good, next: [{ id: 99, text: 'x', prob: 0.1 }] }), /prediction 0/],
    ['offset past EOF', bytesOf({ ...good, tensors: { ...t, lastLogits: { ...t.lastLogits, offset: 1 << 30 } } }), /invalid extent|past the end/],
    ['negative offset', bytesOf({ ...good, tensors: { ...t, lastLogits: { ...t.lastLogits, offset: -4 } } }), /invalid extent/],
    ['wrong length', bytesOf({ ...good, tensors: { ...t, lastLogits: { ...t.lastLogits, length: 1 << 30 } } }), /invalid extent/],
    ['overlapping tensors', bytesOf({ ...good, tensors: { ...t, lastLogits: { ...t.lastLogits, offset: t.topIds.offset } } }), /overlap/],
    ['unknown tensor', bytesOf({ ...good, tensors: { ...t, weights: { dims: [1], offset: 0, length: 4 } } }), /unknown tensor/],
    ['top texts missing', bytesOf({ ...good, topTexts: {} }), /topIds holds/],
    ['top text key', bytesOf({ ...good, topTexts: { ...good.topTexts, '-1': 'x' } }), /topTexts: entry "-1"/],
    ['no distribution', bytesOf({ ...good, tensors: { topIds: t.topIds, topLogprobs: t.topLogprobs } }), /neither logits nor lastLogits/],
    ['bad interventions', bytesOf({ ...good, interventions: { scales: [{ layer: 9, head: 0, value: 0 }], emphasis: null, sink: null } }), /interventions: .*head 9.0 does not exist/],
    ['deep nesting', crafted(JSON.stringify({ ...good, x: JSON.parse('['.repeat(20) + ']'.repeat(20)) }), 96), /nests deeper/],
    ['many values', crafted(JSON.stringify({ ...good, x: new Array(100000).fill(0) }), 96), /more values than its size allows/],
    ['header length past EOF', (() => { const b = bytesOf(good); b.writeUInt32LE(0xfffffff0, 12); return b; })(), /header length \d+ runs past the end/],
    ['header not an object', crafted('[1]'), /not an AttnScope run header/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = path.join(tmp, `crafted-${name.replace(/\W+/g, '-')}.attnrun`);
    fs.writeFileSync(f, bytes);
    const oneLineError = (e: unknown) => e instanceof EngineError && re.test(e.message) && !e.message.includes('\n') && e.message.startsWith(f);
    assert.throws(() => readRunFile(f), (e: unknown) => (oneLineError(e) ? true : assert.fail(`${name}: ${(e as Error).message}`)), name);
    await assert.rejects(readRunFileAsync(f), (e: unknown) => (oneLineError(e) ? true : assert.fail(`${name} (async): ${(e as Error).message}`)), name);
    assert.deepEqual(fs.readFileSync(f), bytes, `${name}: the file is untouched`);
  }
  await assert.rejects(readRunFileAsync('/dev/zero'), /not a regular file/);
  await assert.rejects(readRunFileAsync(tmp), /not a regular file|folder/);
  await assert.rejects(readRunFileAsync(path.join(tmp, 'nope.attnrun')), /run file not found/);
});

test('readRunFileAsync reads what decodeRun reads; isAutoSavedRun trusts only the header flag', async () => {
  const r = result(5, 12, 2, 2, 7);
  const fa = path.join(tmp, 'x-2026-11-23T10-20-30-123Z.attnrun');
  const fb = path.join(tmp, 'async-full.attnrun');
  writeRunFile(fa, savedRunFrom(r, 'p'.repeat(15), noIv, { tensors: false, autoSaved: false, decode: decodeT }));
  writeRunFile(fb, savedRunFrom(r, 'p'.repeat(15), noIv, { tensors: true, autoSaved: true, decode: decodeT }));
  const a = await readRunFileAsync(fb);
  const b = readRunFile(fb);
  assert.deepEqual(a.header, b.header);
  assert.deepEqual([...a.patterns!], [...b.patterns!]);
  assert.deepEqual([...a.logits!], [...b.logits!]);
  const headerOnly = await readRunFileAsync(fb, { tensors: false });
  assert.equal(headerOnly.patterns, undefined);
  assert.equal(await isAutoSavedRun(fa), false, 'an auto-save name is not enough');
  assert.equal(await isAutoSavedRun(fb), true);
  assert.equal(await isAutoSavedRun('/dev/zero'), false);
});

/** Reference LCS length (quadratic DP), for small inputs only. */
function lcsLength(a: number[], b: number[]): number {
  const dp = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  return dp[0]![0]!;
}

test('alignment: a longest common subsequence (checked against the DP on seeded inputs), and bounded', () => {
  let s = 42;
  const rnd = (n: number) => (s = (s * 1103515245 + 12345) % 2147483648) % n;
  const toks = (ids: number[]) => ids.map((id, i) => tok(id, `w${id}`, i));
  for (let trial = 0; trial < 60; trial++) {
    const base = Array.from({ length: 5 + rnd(60) }, () => rnd(6));
    const other = base.filter(() => rnd(5) !== 0);
    for (let e = rnd(6); e > 0; e--) other.splice(rnd(other.length + 1), 0, rnd(8));
    const al = alignment(toks(base), toks(other));
    assert.ok(al.exact);
    assert.equal(al.pairs.length, lcsLength(base, other), `trial ${trial}`);
    al.pairs.forEach((p, i) => {
      assert.equal(base[p.a], other[p.b]);
      if (i) assert.ok(p.a > al.pairs[i - 1]!.a && p.b > al.pairs[i - 1]!.b);
    });
  }
  // too different: only the common beginning and end are aligned, and the comparison says so
  const x = toks([7, ...Array.from({ length: 3000 }, (_, i) => 100 + i), 8]);
  const y = toks([7, ...Array.from({ length: 3000 }, (_, i) => 5000 + i), 8]);
  const al = alignment(x, y);
  assert.equal(al.exact, false);
  assert.deepEqual(al.pairs, [{ a: 0, b: 0 }, { a: 3001, b: 3001 }]);
  const mk = (tokens: ReturnType<typeof tok>[]): SavedRun => ({ header: { ...A.header, tokens, prompt: 'x'.repeat(4000), heads: [] }, lastLogits: new Float32Array(2) });
  const c = compareRuns(mk(x), mk(y));
  assert.match(c.notComparable.join('\n'), /differ in more than 2048 inserted or deleted tokens, so only the common beginning \(1 tokens\) and end \(1 tokens\) are aligned/);
  assert.equal(c.aligned, 2);
});

test('compare: runs saved without tensors give the last position\'s KL and every position\'s top-K, and say what they lack', () => {
  const r1 = result(4, 30, 1, 2, 3);
  const r2 = result(4, 30, 1, 2, 4);
  const a = decodeRun(encodeRun(savedRunFrom(r1, 'x'.repeat(12), noIv, { tensors: false, autoSaved: true, decode: decodeT })));
  const b = decodeRun(encodeRun(savedRunFrom(r2, 'x'.repeat(12), noIv, { tensors: false, autoSaved: true, decode: decodeT })));
  const fa = decodeRun(encodeRun(savedRunFrom(r1, 'x'.repeat(12), noIv, { tensors: true, autoSaved: true, decode: decodeT })));
  const fb = decodeRun(encodeRun(savedRunFrom(r2, 'x'.repeat(12), noIv, { tensors: true, autoSaved: true, decode: decodeT })));
  const slim = compareRuns(a, b, 5, ['base', 'steered']);
  const full = compareRuns(fa, fb, 5);
  assert.deepEqual(slim.positions.slice(0, 3).map((p) => p.kl).every(Number.isNaN), true);
  assert.ok(Math.abs(slim.positions[3]!.kl - full.positions[3]!.kl) < 1e-12, 'the last position\'s KL is exact');
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(slim.positions[i]!.topA.map((t) => t.id), full.positions[i]!.topA.map((t) => t.id));
    assert.deepEqual(slim.positions[i]!.entered, full.positions[i]!.entered);
    slim.positions[i]!.topB.forEach((t, j) => assert.ok(Math.abs(t.prob - full.positions[i]!.topB[j]!.prob) < 1e-6));
  }
  assert.match(slim.notComparable.join('\n'), /^per-position KL: both runs were saved without every position's logits \(saved without tensors\), so the KL is shown for the last position only; the top-K changes are shown at every position$/m);
  assert.match(slim.notComparable.join('\n'), /attention shift: both runs were saved without attention patterns \(saved without tensors\)/);
  assert.deepEqual(full.notComparable, []);
  assert.match(compareRuns(fa, b, 20, ['base', 'steered']).notComparable.join('\n'), /steered was saved without every position's logits[^]*top-K: .* the top 10 are compared, not 20/);
});
