// The compiled-model cache: one folder per checkpoint content key (./contentHash.ts) holding
// weights.bin (every weight in float32, canonical layout, 4096-aligned so onnxruntime can map it),
// meta.json (the weight offsets, weights.bin's size, sha256 and stat) and the graphs built on demand.
//
// Safe across processes: an entry is built whole in a unique `.tmp-*` folder (meta.json included)
// and renamed into place; when another process got there first, its entry is used and ours dropped.
// Nothing is ever written into a published entry except whole files renamed over (graphs, meta.json).
//
// Damage is found and repaired, not reported forever: every open parses meta.json and checks
// weights.bin's size; weights.bin's sha256 is recomputed when its stat (mtime, ctime, inode) differs
// from the one recorded (any write into it changes them), when the recorded stat is "racy" (mtime
// within RACY_MS of the last check, so a write in the same clock tick would not show: this is the
// case once, on the first open after a build), and at least every VERIFY_EVERY_MS (bit rot). Per
// open that costs one stat; a full checksum runs ~1 s per GB, too much for every warm open of a big
// model. A graph is rebuilt in memory (~10 ms) and rewritten when the file differs. A damaged entry
// is rebuilt.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError, oneLine } from '../errors';
import { buildGraph, listWeights, type GraphOptions } from '../graph/inspectionGraph';
import type { ExternalRef } from '../graph/onnxGraph';
import { readTensorF32, type TensorEntry } from '../sources/safetensors';
import type { ModelSpec } from '../spec';
import {
  cacheFolderError, cacheMaxBytes, defaultCacheRoot, evictLeastRecentlyUsed, LAST_USED_FILE, markInUse, removeDir,
  removeLeftovers, TMP_PREFIX, touchLastUsed,
} from './cacheFolder';
import { HASH_ALGORITHM, hashFileSync } from './contentHash';

export { cacheUsage, clearCache, defaultCacheRoot, cacheMaxBytes, CONTENT_INDEX_FILE, DEFAULT_MAX_GB, formatBytes } from './cacheFolder';
export type { CacheUsage, CacheEntryUsage, ClearResult } from './cacheFolder';

/** Bump when the graph or weight layout changes, so stale caches are not reused. */
export const GRAPH_VERSION = 22;
const WEIGHTS_FILE = 'weights.bin';
const META_FILE = 'meta.json';
const ALIGN = 4096;
/** Full checksum of weights.bin at least this often, even when its stat is unchanged. */
export const VERIFY_EVERY_MS = 7 * 24 * 60 * 60 * 1000;
/** Coarsest mtime granularity among common filesystems (FAT: 2 s), plus margin. */
const RACY_MS = 3000;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

interface WeightsRecord {
  bytes: number;
  sha256: string;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** Date.now() of the last full checksum */
  verifiedAt: number;
}

interface Meta {
  version: number;
  key: string;
  refs: Record<string, ExternalRef>;
  weights: WeightsRecord;
}

export interface CacheOptions {
  /** the cache folder (default: defaultCacheRoot()) */
  root?: string;
  /** size cap in bytes (default: cacheMaxBytes()) */
  maxBytes?: number;
  /** the checkpoint's tensors, to name the one holding NaN or Inf when a converted weight does */
  source?: Iterable<TensorEntry>;
}

export interface CacheEntry {
  dir: string;
  /** true when the weights were converted during this call (a cold open) */
  built: boolean;
  /** why the existing entry was rebuilt, when it was damaged */
  repaired?: string;
  graphPath(opts: GraphOptions): string;
  /** this process no longer uses the entry: eviction may take it */
  release(): void;
}

function graphName(opts: GraphOptions): string {
  if (opts.blockRows !== undefined) return graphName({ ...opts, blockRows: undefined }).replace('.onnx', `-rows${opts.blockRows}.onnx`);
  if (opts.head) return opts.headTop !== undefined ? `head-top${opts.headTop}.onnx` : 'head.onnx';
  if (opts.lens) return 'lens.onnx';
  if (opts.patch) return 'patch.onnx';
  if (opts.qk) return `inspect-qk${opts.allLogits ? '-all' : ''}.onnx`;
  return `${opts.inspect ? 'inspect' : opts.cache ? 'cached' : 'plain'}${opts.allLogits ? '-all' : ''}.onnx`;
}

export function openCache(spec: ModelSpec, key: string, opts: CacheOptions = {}): CacheEntry {
  const root = path.resolve(opts.root ?? defaultCacheRoot());
  const maxBytes = opts.maxBytes ?? cacheMaxBytes();
  const dir = path.join(root, `${key}-g${GRAPH_VERSION}`);
  const source = opts.source ? [...opts.source] : undefined;
  const ensure = () => {
    const c = checkEntry(dir, key);
    if (c.meta) return { meta: c.meta, built: false, repaired: undefined };
    return { meta: build(spec, key, root, dir, maxBytes, source), built: true, repaired: c.damaged };
  };
  touchLastUsed(dir); // first, so that another process's eviction passes over it while it is checked
  let state = ensure();
  const release = markInUse(dir);
  removeLeftovers(root);
  evictLeastRecentlyUsed(root, maxBytes);
  let refs = new Map(Object.entries(state.meta.refs));
  return {
    dir,
    built: state.built,
    repaired: state.repaired,
    graphPath(g: GraphOptions): string {
      // Another process may have evicted or replaced the entry since it was opened.
      const size = statOrUndefined(path.join(dir, WEIGHTS_FILE))?.size;
      if (size !== state.meta.weights.bytes) {
        state = ensure();
        refs = new Map(Object.entries(state.meta.refs));
      }
      touchLastUsed(dir);
      const file = path.join(dir, graphName(g));
      const bytes = buildGraph(spec, refs, WEIGHTS_FILE, g);
      if (!sameBytes(file, bytes)) writeAtomic(root, file, bytes, 'writing a graph');
      return file;
    },
    release,
  };
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

function sameBytes(file: string, bytes: Uint8Array): boolean {
  try {
    const cur = fs.readFileSync(file);
    return cur.length === bytes.length && cur.equals(bytes);
  } catch {
    return false;
  }
}

function writeAtomic(root: string, file: string, bytes: Uint8Array | string, doing: string): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw cacheFolderError(root, e, doing);
  }
}

function validMeta(m: unknown, key: string): m is Meta {
  const o = m as Meta;
  if (typeof o !== 'object' || o === null || o.version !== GRAPH_VERSION || o.key !== key) return false;
  const w = o.weights;
  if (typeof w !== 'object' || w === null || typeof w.sha256 !== 'string') return false;
  if (![w.bytes, w.mtimeMs, w.ctimeMs, w.ino, w.verifiedAt].every((n) => typeof n === 'number')) return false;
  if (typeof o.refs !== 'object' || o.refs === null) return false;
  return Object.values(o.refs).every((r) => Array.isArray(r?.dims) && Number.isInteger(r.offset) && Number.isInteger(r.length) && r.offset + r.length <= w.bytes);
}

interface EntryCheck {
  exists: boolean;
  meta?: Meta;
  /** what is wrong with an entry that exists */
  damaged?: string;
}

/** Checks an entry as described at the top of this file; a verified changed stat is recorded. */
function checkEntry(dir: string, key: string, now = Date.now()): EntryCheck {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, META_FILE), 'utf8');
  } catch {
    return fs.existsSync(dir) ? { exists: true, damaged: 'meta.json is missing' } : { exists: false };
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    return { exists: true, damaged: 'meta.json is not valid JSON' };
  }
  if (!validMeta(meta, key)) return { exists: true, damaged: 'meta.json is incomplete or from another version' };
  const weights = path.join(dir, WEIGHTS_FILE);
  const st = statOrUndefined(weights);
  if (!st) return { exists: true, damaged: 'weights.bin is missing' };
  const w = meta.weights;
  if (st.size !== w.bytes) return { exists: true, damaged: `weights.bin has ${st.size} bytes instead of ${w.bytes}` };
  const changed = st.mtimeMs !== w.mtimeMs || st.ctimeMs !== w.ctimeMs || st.ino !== w.ino;
  if (changed || w.mtimeMs >= w.verifiedAt - RACY_MS || now - w.verifiedAt > VERIFY_EVERY_MS) {
    let digest: string;
    try {
      digest = hashFileSync(weights);
    } catch (e) {
      return { exists: true, damaged: `weights.bin cannot be read (${oneLine(e)})` };
    }
    if (digest !== w.sha256) return { exists: true, damaged: 'weights.bin does not match its checksum' };
    meta.weights = { ...w, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, verifiedAt: now };
    try {
      writeAtomic(path.dirname(dir), path.join(dir, META_FILE), JSON.stringify(meta), 'recording a checksum');
    } catch {
      // a read-only cache verifies again next time
    }
  }
  return { exists: true, meta };
}

/** Bytes weights.bin will take (without alignment padding). */
function weightBytes(spec: ModelSpec): number {
  return listWeights(spec).reduce((a, [, t]) => a + 4 * t.dims.reduce((x, y) => x * y, 1), 0);
}

/** Converts the weights into a fresh build folder and publishes it as `dir` (or uses another process's). */
function build(spec: ModelSpec, key: string, root: string, dir: string, maxBytes: number, source: TensorEntry[] | undefined): Meta {
  const need = weightBytes(spec);
  try {
    fs.mkdirSync(root, { recursive: true });
  } catch (e) {
    throw cacheFolderError(root, e, 'creating it');
  }
  evictLeastRecentlyUsed(root, Math.max(0, maxBytes - need));
  let tmp: string;
  try {
    tmp = fs.mkdtempSync(path.join(root, `${TMP_PREFIX}${key}-`));
  } catch (e) {
    throw cacheFolderError(root, e, 'creating a build folder');
  }
  try {
    const meta = writeWeights(spec, key, tmp, source);
    fs.writeFileSync(path.join(tmp, META_FILE), JSON.stringify(meta));
    fs.writeFileSync(path.join(tmp, LAST_USED_FILE), '');
    return publish(root, tmp, dir, key, meta);
  } catch (e) {
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch {
      // removed as a stale leftover later
    }
    if (e instanceof EngineError) throw e;
    // An operating-system error (EACCES, ENOSPC, …) is about the cache folder; Node's own ERR_* codes
    // (e.g. ERR_OUT_OF_RANGE) are not, and must not send the user to change the folder.
    const code = (e as NodeJS.ErrnoException).code;
    if (code && !code.startsWith('ERR_')) throw cacheFolderError(root, e, 'converting the weights', need);
    throw e;
  }
}

/** Renames the finished build folder into place; a valid entry already there wins, a damaged one is replaced. */
function publish(root: string, tmp: string, dir: string, key: string, ours: Meta): Meta {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.renameSync(tmp, dir);
      return ours;
    } catch (e) {
      last = e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY') throw e;
    }
    const theirs = checkEntry(dir, key);
    if (theirs.meta) {
      try {
        fs.rmSync(tmp, { recursive: true, force: true });
      } catch {
        // removed as a stale leftover later
      }
      return theirs.meta;
    }
    if (theirs.exists) removeDir(root, dir);
  }
  throw last;
}

/** fs.writeSync and Hash.update refuse more than 2 GiB at once (a 200k × 3072 float32 embedding is 2.46 GB). */
const IO_CHUNK = 1 << 30;

/** Writes all of `bytes` at the file's position, at most `chunk` bytes per call. */
export function writeAll(fd: number, bytes: Uint8Array, chunk = IO_CHUNK): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, Math.min(chunk, bytes.length - done));
}

/** Feeds all of `bytes` to a hash, at most `chunk` bytes per update. */
export function hashAll(h: ReturnType<typeof createHash>, bytes: Uint8Array, chunk = IO_CHUNK): void {
  for (let at = 0; at < bytes.length; at += chunk) h.update(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
}

function writeWeights(spec: ModelSpec, key: string, tmp: string, source: TensorEntry[] | undefined): Meta {
  const file = path.join(tmp, WEIGHTS_FILE);
  const refs: Record<string, ExternalRef> = {};
  const sha = createHash(HASH_ALGORITHM);
  const fd = fs.openSync(file, 'w');
  let offset = 0;
  try {
    for (const [name, t] of listWeights(spec)) {
      let data: Float32Array;
      try {
        data = t.load();
      } catch (e) {
        if (e instanceof EngineError) throw e;
        throw new EngineError('MODEL', `cannot read the weight ${name} from the checkpoint (${(e as NodeJS.ErrnoException).code ?? oneLine(e)}); check the model folder`);
      }
      const expected = t.dims.reduce((a, b) => a * b, 1);
      if (data.length !== expected) throw new Error(`internal: ${name} has ${data.length} values, expected ${expected}`);
      if (!allFinite(data)) throw nonFiniteError(name, data, source);
      const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
      if (pad) {
        const zeros = new Uint8Array(pad);
        writeAll(fd, zeros);
        sha.update(zeros);
        offset += pad;
      }
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      writeAll(fd, bytes);
      hashAll(sha, bytes);
      refs[name] = { dims: t.dims, offset, length: data.byteLength };
      offset += data.byteLength;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const st = fs.statSync(file);
  return { version: GRAPH_VERSION, key, refs, weights: { bytes: offset, sha256: sha.digest('hex'), mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, verifiedAt: Date.now() } };
}

function allFinite(data: Float32Array): boolean {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]! * 0; // NaN * 0 and ±Inf * 0 are NaN
  return s === 0;
}

function countNonFinite(data: Float32Array): { nan: number; inf: number } {
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) inf++;
  }
  return { nan, inf };
}

function describeNonFinite(c: { nan: number; inf: number }): string {
  const n = (k: number) => `${k} value${k === 1 ? '' : 's'}`;
  return [c.nan ? `NaN (${n(c.nan)})` : '', c.inf ? `Inf (${n(c.inf)})` : ''].filter(Boolean).join(' and ');
}

/**
 * The error for a converted weight holding NaN or Inf, naming the checkpoint tensor that holds
 * them: the tensors of the same layer (or outside the layers) are read first, then the rest.
 */
function nonFiniteError(name: string, data: Float32Array, source: TensorEntry[] | undefined): EngineError {
  if (source) {
    const layer = /^layers\.(\d+)\./.exec(name)?.[1];
    const inLayer = (n: string, l: string) => new RegExp(`(^|\\.)(layers|h|blocks)\\.${l}\\.`).test(n);
    const floats = source.filter((t) => FLOAT_DTYPES.has(t.dtype));
    const near = floats.filter((t) => (layer !== undefined ? inLayer(t.name, layer) : !inLayer(t.name, '\\d+')));
    for (const t of [...near, ...floats.filter((t) => !near.includes(t))]) {
      let c: { nan: number; inf: number };
      try {
        c = countNonFinite(readTensorF32(t));
      } catch {
        continue;
      }
      if (c.nan || c.inf) return new EngineError('MODEL', `${t.file}: tensor ${t.name} contains ${describeNonFinite(c)}; the checkpoint is damaged, re-download or re-export it`);
    }
  }
  return new EngineError('MODEL', `weight ${name} contains ${describeNonFinite(countNonFinite(data))} after conversion to float32; the checkpoint is damaged or holds values too large for float32`);
}
