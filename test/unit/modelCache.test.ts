// The compiled-model cache: a warm open reuses the converted weights, a changed checkpoint or an
// incomplete cache entry is rebuilt, and the weights file is page-aligned external data. Keyed by the
// weights' content; damaged entries are rebuilt; NaN weights are refused; safe across processes;
// bounded by an LRU size cap; clear one-line errors for an unusable cache folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { EngineError } from '../../src/engine/errors';
import { specFromCheckpoint } from '../../src/engine/arch';
import { openCheckpoint } from '../../src/engine/sources/checkpoint';
import { readSafetensorsHeader } from '../../src/engine/sources/safetensors';
import { contentHash } from '../../src/engine/runtime/contentHash';
import { cacheMaxBytes, cacheUsage, clearCache, openCache, GRAPH_VERSION } from '../../src/engine/runtime/modelCache';
import { STALE_TEMP_MS } from '../../src/engine/runtime/cacheFolder';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'attnscope.js');
let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-cache-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const HOUR = 3600 * 1000;
const ago = (ms: number) => new Date(Date.now() - ms);
/** Sets a file's mtime (and atime) into the past, as if written `ms` ago. */
const backdate = (file: string, ms: number) => fs.utimesSync(file, ago(ms), ago(ms));

async function openModel(dir: string, cacheRoot: string): Promise<Model> {
  return Model.open(dir, { device: 'cpu', cacheRoot });
}

/** Last-position logits of a fixed prompt, then the model is released. */
async function logitsOf(m: Model): Promise<Float32Array> {
  try {
    const { layers: L, heads: H } = m.dims;
    const ids = [3, 17, 42, 5, 99, 7];
    const out = await m.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) }, { inspect: false });
    return out.logits;
  } finally {
    await m.release();
  }
}

async function rejection(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EngineError, `an EngineError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail('expected a rejection');
}

/** Writes float32 `values` into a checkpoint tensor at element `index`. */
function pokeTensor(file: string, tensor: string, index: number, values: number[]): void {
  const t = readSafetensorsHeader(file).tensors.find((x) => x.name === tensor)!;
  assert.equal(t.dtype, 'F32');
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(new Float32Array(values).buffer), 0, values.length * 4, t.offset + index * 4);
  fs.closeSync(fd);
}

const leftovers = (root: string) => (fs.existsSync(root) ? fs.readdirSync(root).filter((n) => n.startsWith('.tmp-') || n.startsWith('.trash-')) : []);

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

test('cache: a checkpoint retrained in place (same shapes and sizes, new bytes) is converted again', async () => {
  const dir = path.join(tmp, 'retrained');
  const cacheRoot = path.join(tmp, 'cache-retrained');
  const variant = tinyVariant('llama-gqa');
  makeTinyCheckpoint(dir, variant);
  const file = path.join(dir, 'model.safetensors');
  const headerBefore = readSafetensorsHeader(file);
  const first = await openModel(dir, cacheRoot);
  const logitsA = await logitsOf(first);
  makeTinyCheckpoint(dir, { ...variant, seed: variant.seed + 1000 }); // overwrites the same files
  const headerAfter = readSafetensorsHeader(file);
  assert.equal(headerAfter.size, headerBefore.size, 'same file size');
  assert.ok(headerAfter.headerBytes.equals(headerBefore.headerBytes), 'same safetensors header (names, shapes, offsets)');
  const second = await openModel(dir, cacheRoot);
  assert.equal(second.fromCache, false, 'the new weights are converted');
  assert.notEqual(second.hash, first.hash);
  assert.notEqual(second.cacheDir, first.cacheDir);
  const logitsB = await logitsOf(second);
  assert.notDeepEqual(logitsB, logitsA, 'the retrained weights give other logits');
  // ...and exactly the logits of the new checkpoint opened with an empty cache.
  assert.deepEqual(logitsB, await logitsOf(await openModel(dir, path.join(tmp, 'cache-retrained-fresh'))));
});

test('content hash: unchanged files are not re-read; a touched or replaced file is', async () => {
  const dir = path.join(tmp, 'hashed');
  makeTinyCheckpoint(dir, tinyVariant('qwen2-tied-sharded'));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(dir, f)).sort();
  assert.equal(files.length, 2);
  const index = path.join(tmp, 'hash-index', 'content-index.json');
  for (const f of files) backdate(f, HOUR);
  const cold = await contentHash('cfg', files, index);
  assert.deepEqual(cold.hashed, files, 'first open reads every file');
  const warm = await contentHash('cfg', files, index);
  assert.deepEqual(warm.hashed, [], 'warm open: stat pre-check only');
  assert.equal(warm.hash, cold.hash);
  assert.notEqual((await contentHash('other config', files, index)).hash, cold.hash, 'the config is part of the key');
  // Touching a file (same bytes) re-hashes it, to the same digest.
  backdate(files[1]!, 2 * HOUR);
  const touched = await contentHash('cfg', files, index);
  assert.deepEqual(touched.hashed, [files[1]]);
  assert.equal(touched.hash, cold.hash);
  // A file written just now is hashed again next time too (a write in the same clock tick could go unseen).
  fs.utimesSync(files[0]!, new Date(), new Date());
  assert.deepEqual((await contentHash('cfg', files, index)).hashed, [files[0]]);
  assert.deepEqual((await contentHash('cfg', files, index)).hashed, [files[0]]);
  backdate(files[0]!, HOUR);
  await contentHash('cfg', files, index);
  // Different bytes of the same size with the old mtime restored (cp -p, touch -r): ctime gives it away.
  const st = fs.statSync(files[0]!);
  const bytes = fs.readFileSync(files[0]!);
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(files[0]!, bytes);
  fs.utimesSync(files[0]!, st.atime, st.mtime);
  const replaced = await contentHash('cfg', files, index);
  assert.deepEqual(replaced.hashed, [files[0]]);
  assert.notEqual(replaced.hash, cold.hash);
});

test('cache: touching the checkpoint re-hashes it but reuses the converted weights', async () => {
  const dir = path.join(tmp, 'touched');
  const cacheRoot = path.join(tmp, 'cache-touched');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const cold = await openModel(dir, cacheRoot);
  await cold.release();
  fs.utimesSync(path.join(dir, 'model.safetensors'), new Date(), new Date());
  const warm = await openModel(dir, cacheRoot);
  await warm.release();
  assert.equal(warm.fromCache, true);
  assert.equal(warm.hash, cold.hash);
});

test('cache: a damaged entry (NaN or truncated weights.bin, bad meta.json, broken graph) is rebuilt', async () => {
  const dir = path.join(tmp, 'damaged');
  const cacheRoot = path.join(tmp, 'cache-damaged');
  makeTinyCheckpoint(dir, tinyVariant('mistral-gqa-f16'));
  const first = await openModel(dir, cacheRoot);
  const good = await logitsOf(first);
  const weights = path.join(first.cacheDir, 'weights.bin');
  const meta = () => JSON.parse(fs.readFileSync(path.join(first.cacheDir, 'meta.json'), 'utf8'));
  const ref = meta().refs['layers.0.qkv.weight'] as { offset: number };
  // NaN written into the converted weights, same size.
  const fd = fs.openSync(weights, 'r+');
  fs.writeSync(fd, Buffer.from(new Float32Array([NaN, NaN]).buffer), 0, 8, ref.offset);
  fs.closeSync(fd);
  const afterNaN = await openModel(dir, cacheRoot);
  assert.equal(afterNaN.fromCache, false, 'checksum mismatch: rebuilt');
  assert.deepEqual(await logitsOf(afterNaN), good);

  const spec = specFromCheckpoint(openCheckpoint(dir));
  const key = path.basename(first.cacheDir).replace(/-g\d+$/, '');
  const reopen = () => {
    const e = openCache(spec, key, { root: cacheRoot });
    e.release();
    return e;
  };
  assert.equal(reopen().built, false, 'the rebuilt entry is good');
  fs.truncateSync(weights, fs.statSync(weights).size - 100);
  assert.match(reopen().repaired ?? '', /^weights\.bin has \d+ bytes instead of \d+$/);
  fs.writeFileSync(path.join(first.cacheDir, 'meta.json'), '{"version":');
  assert.equal(reopen().repaired, 'meta.json is not valid JSON');
  fs.rmSync(weights);
  assert.equal(reopen().repaired, 'weights.bin is missing');
  // An in-place write into weights.bin that keeps its size is found by the checksum.
  const w = fs.readFileSync(weights);
  w[w.length - 1] ^= 0x40;
  fs.writeFileSync(weights, w);
  assert.equal(reopen().repaired, 'weights.bin does not match its checksum');
  // A truncated graph is rewritten.
  await (await openModel(dir, cacheRoot)).release();
  const graph = path.join(first.cacheDir, 'plain.onnx');
  const graphSize = fs.statSync(graph).size;
  fs.truncateSync(graph, 10);
  const afterGraph = await openModel(dir, cacheRoot);
  assert.equal(afterGraph.fromCache, true, 'the weights are fine');
  assert.deepEqual(await logitsOf(afterGraph), good);
  assert.equal(fs.statSync(graph).size, graphSize);
  assert.deepEqual(leftovers(cacheRoot), []);
});

test('cache: NaN in a checkpoint tensor is refused with one line naming it, and nothing is cached', async () => {
  const dir = path.join(tmp, 'nan');
  const cacheRoot = path.join(tmp, 'cache-nan');
  makeTinyCheckpoint(dir, tinyVariant('llama-gqa'));
  const file = path.join(dir, 'model.safetensors');
  pokeTensor(file, 'model.layers.1.mlp.up_proj.weight', 5, [NaN, 1, NaN, NaN]);
  const e = await rejection(openModel(dir, cacheRoot));
  assert.equal(e.code, 'MODEL');
  assert.equal(e.message, `${file}: tensor model.layers.1.mlp.up_proj.weight contains NaN (3 values); the checkpoint is damaged, re-download or re-export it`);
  assert.deepEqual(leftovers(cacheRoot), [], 'the partial build is removed');
  assert.deepEqual(cacheUsage(cacheRoot).entries, []);
  // Inf outside the layers (the embedding) is named too.
  makeTinyCheckpoint(dir, tinyVariant('llama-gqa'));
  pokeTensor(file, 'model.embed_tokens.weight', 0, [Infinity, -Infinity]);
  const inf = await rejection(openModel(dir, cacheRoot));
  assert.match(inf.message, /tensor model\.embed_tokens\.weight contains Inf \(2 values\); the checkpoint is damaged/);
});

test('cache: another process publishing the same entry first wins; its entry is used', () => {
  const dir = path.join(tmp, 'race');
  const cacheRoot = path.join(tmp, 'cache-race');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const spec = specFromCheckpoint(openCheckpoint(dir));
  const key = '0123456789abcdef';
  const entryDir = path.join(cacheRoot, `${key}-g${GRAPH_VERSION}`);
  const theirs = path.join(tmp, 'race-theirs');
  openCache(spec, key, { root: cacheRoot }).release();
  fs.renameSync(entryDir, theirs);
  // While this process converts, "the other process" renames its finished entry into place.
  const nodeFs = require('node:fs') as typeof fs;
  const rename = nodeFs.renameSync;
  let theirIno = -1;
  nodeFs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
    if (to === entryDir && theirIno < 0) {
      rename(theirs, entryDir);
      theirIno = fs.statSync(path.join(entryDir, 'weights.bin')).ino;
    }
    rename(from, to);
  };
  let entry;
  try {
    entry = openCache(spec, key, { root: cacheRoot });
  } finally {
    nodeFs.renameSync = rename;
  }
  entry.release();
  assert.ok(theirIno > 0, 'the race happened');
  assert.equal(entry.built, true);
  assert.equal(fs.statSync(path.join(entryDir, 'weights.bin')).ino, theirIno, "the other process's entry stays");
  assert.deepEqual(leftovers(cacheRoot), [], 'our build folder is removed');
  assert.equal(openCache(spec, key, { root: cacheRoot }).built, false);
});

test('cache: concurrent first opens from several CLI processes all succeed', async () => {
  const dir = path.join(tmp, 'concurrent');
  makeTinyCheckpoint(dir, { ...tinyVariant('llama-gqa'), hidden: 128, heads: 4, kvHeads: 2, intermediate: 512, layers: 4 });
  const promptFile = path.join(tmp, 'concurrent-prompt.txt');
  fs.writeFileSync(promptFile, 'the cat sat on the mat and the cat sat');
  const runCli = (cache: string, args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ATTNSCOPE_CACHE: cache } });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  let reference: string | undefined;
  for (let round = 0; round < 3; round++) {
    const cache = path.join(tmp, `cache-concurrent-${round}`);
    const results = await Promise.all([0, 1, 2].map(() => runCli(cache, ['inspect', promptFile, '--model', dir, '--logits', '--device', 'cpu'])));
    for (const r of results) {
      assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
      const json = JSON.parse(r.stdout);
      assert.ok(Array.isArray(json.lastLogits) && json.lastLogits.length > 0);
      const logits = JSON.stringify(json.lastLogits);
      reference ??= logits;
      assert.equal(logits, reference, 'every process computes the same numbers');
    }
    const usage = cacheUsage(cache);
    assert.equal(usage.entries.length, 1, 'one entry');
    assert.deepEqual(leftovers(cache), []);
  }
  // `attnscope cache` shows it, `attnscope cache --clear` empties it.
  const cache = path.join(tmp, 'cache-concurrent-0');
  const shown = spawnSync(process.execPath, [BIN, 'cache'], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: cache } });
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^${cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 1 compiled model, `));
  const cleared = spawnSync(process.execPath, [BIN, 'cache', '--clear'], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: cache } });
  assert.equal(cleared.status, 0, cleared.stderr);
  assert.match(cleared.stdout, /: removed 1 compiled model \(/);
  assert.deepEqual(cacheUsage(cache).entries, []);
});

test('cache: an unusable cache folder gives one line naming it and the setting to change', async () => {
  const dir = path.join(tmp, 'unwritable');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const aFile = path.join(tmp, 'a-regular-file');
  fs.writeFileSync(aFile, 'not a folder');
  const under = path.join(aFile, 'cache');
  const e = await rejection(openModel(dir, under));
  assert.equal(e.code, 'RUNTIME');
  assert.ok(e.message.startsWith(`${under}: `), e.message);
  assert.match(e.message, /ENOTDIR/);
  assert.match(e.message, /attnscope\.cacheRoot/);
  assert.match(e.message, /ATTNSCOPE_CACHE/);
  // The CLI prints that line, not an internal error.
  const promptFile = path.join(tmp, 'unwritable-prompt.txt');
  fs.writeFileSync(promptFile, 'hello');
  const r = spawnSync(process.execPath, [BIN, 'inspect', promptFile, '--model', dir], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: under } });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `attnscope: ${e.message}\n`);
});

test('cache: a read-only cache folder gives one line (skipped as root, where permissions do not apply)', { skip: process.getuid?.() === 0 }, async () => {
  const dir = path.join(tmp, 'readonly');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const ro = path.join(tmp, 'cache-readonly');
  fs.mkdirSync(ro);
  fs.chmodSync(ro, 0o500);
  try {
    const e = await rejection(openModel(dir, ro));
    assert.match(e.message, /the model cache folder is not writable \(EACCES\)/);
  } finally {
    fs.chmodSync(ro, 0o700);
  }
});

test('cache: the size cap evicts least-recently-used entries, never one in use', () => {
  const dir = path.join(tmp, 'lru');
  const root = path.join(tmp, 'cache-lru');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const spec = specFromCheckpoint(openCheckpoint(dir));
  const key = (c: string) => c.repeat(16);
  const entry = (c: string) => path.join(root, `${key(c)}-g${GRAPH_VERSION}`);
  const lastUsed = (c: string, msAgo: number) => backdate(path.join(entry(c), 'last-used'), msAgo);
  const big = 1e15;
  for (const c of ['a', 'b', 'c']) openCache(spec, key(c), { root, maxBytes: big }).release();
  const sizes = cacheUsage(root).entries.map((e) => e.bytes);
  const S = Math.max(...sizes);
  assert.ok(Math.min(...sizes) > S - 100, 'entries of one model have about the same size (meta.json varies by a few bytes)');
  lastUsed('a', 3 * HOUR);
  lastUsed('b', 2 * HOUR);
  lastUsed('c', 1 * HOUR);
  // Room for 2.5 entries: opening d evicts the two least recently used.
  openCache(spec, key('d'), { root, maxBytes: 2.5 * S }).release();
  assert.deepEqual(cacheUsage(root).entries.map((e) => e.key[0]), ['d', 'c']);

  // b open in this process and e used a few minutes ago (maybe by another process): both stay.
  for (const c of ['a', 'b', 'e']) openCache(spec, key(c), { root, maxBytes: big }).release();
  const b = openCache(spec, key('b'), { root, maxBytes: big });
  lastUsed('a', 4 * HOUR);
  lastUsed('b', 5 * HOUR);
  lastUsed('c', 3 * HOUR);
  lastUsed('d', 2 * HOUR);
  lastUsed('e', 10 * 60 * 1000);
  openCache(spec, key('f'), { root, maxBytes: 2.5 * S }).release();
  assert.deepEqual(cacheUsage(root).entries.map((e) => e.key[0]).sort(), ['b', 'e', 'f'], 'everything evictable went; the cap is exceeded only by entries in use');
  // clearCache keeps what this process has open.
  const cleared = clearCache(root);
  assert.deepEqual({ removed: cleared.removed, keptInUse: cleared.keptInUse }, { removed: 2, keptInUse: 1 });
  b.release();
  assert.equal(clearCache(root).removed, 1);
  assert.deepEqual(fs.readdirSync(root), []);
});

test('cache: the size cap comes from the option, else ATTNSCOPE_CACHE_MAX_GB, else 20 GB', () => {
  const saved = process.env['ATTNSCOPE_CACHE_MAX_GB'];
  try {
    delete process.env['ATTNSCOPE_CACHE_MAX_GB'];
    assert.equal(cacheMaxBytes(), 20e9);
    process.env['ATTNSCOPE_CACHE_MAX_GB'] = '1.5';
    assert.equal(cacheMaxBytes(), 1.5e9);
    assert.equal(cacheMaxBytes(3), 3e9);
    process.env['ATTNSCOPE_CACHE_MAX_GB'] = 'lots';
    assert.throws(() => cacheMaxBytes(), (e: unknown) => e instanceof EngineError && e.message === 'ATTNSCOPE_CACHE_MAX_GB="lots" is not a size; set it to a number of gigabytes such as 20');
  } finally {
    if (saved === undefined) delete process.env['ATTNSCOPE_CACHE_MAX_GB'];
    else process.env['ATTNSCOPE_CACHE_MAX_GB'] = saved;
  }
});

test('cache: leftovers of crashed builds are removed once stale; live builds are left alone', () => {
  const dir = path.join(tmp, 'leftovers');
  const root = path.join(tmp, 'cache-leftovers');
  makeTinyCheckpoint(dir, tinyVariant('gpt2'));
  const spec = specFromCheckpoint(openCheckpoint(dir));
  const e = openCache(spec, 'feedfacefeedface', { root });
  e.release();
  const mk = (rel: string, msAgo: number) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, 'partial');
    backdate(p, msAgo);
    backdate(path.dirname(p), msAgo);
  };
  const stale = STALE_TEMP_MS + HOUR;
  mk('.tmp-deadbeefdeadbeef-crashed/weights.bin', stale);
  mk('.tmp-deadbeefdeadbeef-live/weights.bin', 0);
  mk('.trash-deadbeefdeadbeef-g6-1-x/weights.bin', 0);
  mk('content-index.json.1.abc.tmp', stale);
  fs.writeFileSync(path.join(e.dir, 'inspect.onnx.1.abc.tmp'), 'partial');
  backdate(path.join(e.dir, 'inspect.onnx.1.abc.tmp'), stale);
  assert.ok(cacheUsage(root).tempBytes > 0);
  openCache(spec, 'feedfacefeedface', { root }).release();
  assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('.') || n.endsWith('.tmp')), ['.tmp-deadbeefdeadbeef-live']);
  assert.deepEqual(fs.readdirSync(e.dir).filter((n) => n.endsWith('.tmp')), []);
});

test('weights larger than one write or hash call (2 GiB) go out in chunks: same bytes, same digest', async () => {
  const { writeAll, hashAll } = await import('../../src/engine/runtime/modelCache');
  const { createHash } = await import('node:crypto');
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) % 251);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-chunks-'));
  try {
    const f = path.join(dir, 'w.bin');
    const fd = fs.openSync(f, 'w');
    try {
      writeAll(fd, bytes, 7); // 143 calls, the last one short
    } finally {
      fs.closeSync(fd);
    }
    assert.deepEqual(new Uint8Array(fs.readFileSync(f)), bytes);
    const h = createHash('sha256');
    hashAll(h, bytes, 7);
    assert.equal(h.digest('hex'), createHash('sha256').update(bytes).digest('hex'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
