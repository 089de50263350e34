// The .attnrun file: a saved inspection (prompt, model, interventions, tokens, metrics, top-K,
// timings) plus the tensors needed to redraw and compare it, in a versioned binary layout:
//
//   bytes 0..7   magic "ATTNRUN\n"
//   u32 LE       format version (1)
//   u32 LE       header length N
//   N bytes      UTF-8 JSON header (RunFileHeader)
//   zero padding to a multiple of 8, then the data section: little-endian float32 tensors at the
//   header's `tensors[name].offset` (relative to the data section), `length` bytes each.
//
// Files are written to a temporary name and renamed, so a crash never leaves half a file, and a
// name that exists is never overwritten. Every field is validated on reading.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../errors';
import { METRICS, type HeadSummary } from '../../shared/heads';
import { interventionsFromJson, type Interventions } from '../../shared/interventions';
import type { PromptToken } from '../sources/tokenizer';

export const RUN_MAGIC = 'ATTNRUN\n';
export const RUN_VERSION = 1;
const MAX_HEADER = 256 * 1024 * 1024;
/** Tensors larger than this many float32 values are not saved (the header says so). */
export const MAX_SAVED_VALUES = 64 * 1024 * 1024;

/** The model a run was made with: what identifies it and its shape. */
export interface RunModelInfo {
  dir: string;
  hash: string;
  arch: string;
  modelType: string;
  layers: number;
  heads: number;
  kvHeads: number;
  hiddenSize: number;
  vocabSize: number;
}

export interface TensorRef {
  dims: number[];
  offset: number;
  length: number;
}

export interface RunFileHeader {
  format: 'attnscope-run';
  version: number;
  createdAt: string;
  prompt: string;
  model: RunModelInfo;
  device: string;
  interventions: Interventions;
  tokens: PromptToken[];
  heads: HeadSummary[];
  next: { id: number; text: string; prob: number }[];
  timings: { loadMs: number; runMs: number };
  /** names of tensors left out because they were too large */
  omitted: string[];
  tensors: Record<string, TensorRef>;
}

export interface SavedRun {
  file?: string;
  header: Omit<RunFileHeader, 'tensors' | 'format' | 'version' | 'omitted'>;
  /** [T, V] logits at every position */
  logits?: Float32Array;
  /** [L, H, T, T] every head's attention pattern */
  patterns?: Float32Array;
}

function bad(file: string, what: string): EngineError {
  return new EngineError('PROMPT', `${file}: ${what}; the run file is damaged or not an AttnScope run`);
}

export function encodeRun(run: SavedRun): Buffer {
  const tensors: Record<string, TensorRef> = {};
  const omitted: string[] = [];
  const blobs: Float32Array[] = [];
  let offset = 0;
  const T = run.header.tokens.length;
  const { layers: L, heads: H, vocabSize: V } = run.header.model;
  const add = (name: string, data: Float32Array | undefined, dims: number[]) => {
    if (!data) return;
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`internal: ${name} has ${data.length} values for dims [${dims}]`);
    if (data.length > MAX_SAVED_VALUES) {
      omitted.push(name);
      return;
    }
    tensors[name] = { dims, offset, length: data.byteLength };
    blobs.push(data);
    offset += data.byteLength;
  };
  add('logits', run.logits, [T, V]);
  add('patterns', run.patterns, [L, H, T, T]);
  const header: RunFileHeader = { format: 'attnscope-run', version: RUN_VERSION, ...run.header, omitted, tensors };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16);
  pre.write(RUN_MAGIC, 0, 'latin1');
  pre.writeUInt32LE(RUN_VERSION, 8);
  pre.writeUInt32LE(json.length, 12);
  const pad = Buffer.alloc((8 - ((16 + json.length) % 8)) % 8);
  return Buffer.concat([pre, json, pad, ...blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

/** Writes a run atomically. Refuses to overwrite an existing file. */
export function writeRunFile(file: string, run: SavedRun): void {
  const bytes = encodeRun(run);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, bytes, { flag: 'wx' });
  try {
    fs.linkSync(tmp, file); // fails if `file` exists: never overwrite
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new EngineError('BAD_ARGUMENT', `${file}: already exists; choose another name (runs are never overwritten)`);
    throw e;
  }
  fs.rmSync(tmp, { force: true });
}

/** A fresh file name in `dir` (e.g. .attnscope/runs), from the prompt file's name and the time. */
export function newRunPath(dir: string, stem: string, when = new Date()): string {
  const safe = stem.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60) || 'run';
  const t = when.toISOString().replace(/[:.]/g, '-');
  for (let i = 0; ; i++) {
    const f = path.join(dir, `${safe}-${t}${i ? `-${i}` : ''}.attnrun`);
    if (!fs.existsSync(f)) return f;
  }
}

export function decodeRun(bytes: Uint8Array, file = 'run'): SavedRun {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== RUN_MAGIC) throw bad(file, 'no AttnScope run signature at the start');
  const version = buf.readUInt32LE(8);
  if (version !== RUN_VERSION) throw new EngineError('PROMPT', `${file}: run format version ${version} is not supported (this AttnScope reads version ${RUN_VERSION}); update AttnScope`);
  const n = buf.readUInt32LE(12);
  if (n > MAX_HEADER || 16 + n > buf.length) throw bad(file, `header length ${n} runs past the end of the file (${buf.length} bytes): truncated`);
  let h: RunFileHeader;
  try {
    h = JSON.parse(buf.toString('utf8', 16, 16 + n));
  } catch {
    throw bad(file, 'header is not valid JSON');
  }
  if (typeof h !== 'object' || h === null || h.format !== 'attnscope-run') throw bad(file, 'header is not an AttnScope run header');
  const need = (cond: unknown, what: string) => {
    if (!cond) throw bad(file, what);
  };
  need(typeof h.prompt === 'string', 'missing prompt');
  need(h.model && Number.isInteger(h.model.layers) && Number.isInteger(h.model.heads) && Number.isInteger(h.model.vocabSize), 'missing model shape');
  need(Array.isArray(h.tokens) && h.tokens.every((t) => Number.isInteger(t.id) && Number.isInteger(t.start) && Number.isInteger(t.end)), 'bad token list');
  need(Array.isArray(h.heads) && Array.isArray(h.next), 'missing head metrics or predictions');
  need(h.tensors && typeof h.tensors === 'object', 'missing tensor table');
  // Runs written before the shared interventions shape ({mask, scale, emphasize, steerHeads}) read as the same value.
  const iv = interventionsFromJson(h.interventions ?? {});
  if (typeof iv === 'string') throw bad(file, iv);
  h.interventions = iv;
  need(h.heads.every((x) => typeof x === 'object' && x !== null && Number.isInteger(x.layer) && Number.isInteger(x.head)), 'bad head list');
  // Runs saved before a metric existed read it as null (not defined for that run); unknown ones are dropped.
  h.heads = h.heads.map((x) => {
    const out = { layer: x.layer, head: x.head } as HeadSummary;
    for (const m of METRICS) out[m] = typeof x[m] === 'number' ? x[m] : null;
    return out;
  });
  const dataStart = 16 + n + ((8 - ((16 + n) % 8)) % 8);
  const read = (name: string, dims: number[]): Float32Array | undefined => {
    const t = h.tensors[name];
    if (!t) return undefined;
    need(Array.isArray(t.dims) && t.dims.length === dims.length && t.dims.every((d, i) => d === dims[i]), `tensor ${name} has dims [${t.dims}] but the header implies [${dims}]`);
    const count = dims.reduce((a, b) => a * b, 1);
    need(Number.isInteger(t.offset) && t.offset >= 0 && t.length === count * 4 && t.offset % 4 === 0, `tensor ${name} has an invalid extent`);
    need(dataStart + t.offset + t.length <= buf.length, `tensor ${name} runs past the end of the file: truncated`);
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(buf.subarray(dataStart + t.offset, dataStart + t.offset + t.length));
    return out;
  };
  const T = h.tokens.length;
  const { layers: L, heads: H, vocabSize: V } = h.model;
  const { tensors: _t, format: _f, version: _v, omitted: _o, ...header } = h;
  return { file, header, logits: read('logits', [T, V]), patterns: read('patterns', [L, H, T, T]) };
}

export function readRunFile(file: string): SavedRun {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('PROMPT', `${file}: ${code === 'ENOENT' ? 'run file not found' : `cannot read (${code})`}`);
  }
  return decodeRun(bytes, file);
}

/** A RunResult (with allLogits and every layer's patterns) as a SavedRun. */
export function savedRunFrom(r: import('../run').RunResult, prompt: string, interventions: Interventions): SavedRun {
  const { layers: L, heads: H } = r.model;
  const T = r.tokens.length;
  let patterns: Float32Array | undefined;
  if (r.patterns.size === L && L * H * T * T <= MAX_SAVED_VALUES) {
    patterns = new Float32Array(L * H * T * T);
    for (let l = 0; l < L; l++) patterns.set(r.patterns.get(l)!, l * H * T * T);
  }
  return {
    header: {
      createdAt: new Date().toISOString(),
      prompt,
      model: { dir: r.model.dir, hash: r.model.hash, arch: r.model.arch, modelType: r.model.modelType, layers: L, heads: H, kvHeads: r.model.kvHeads, hiddenSize: r.model.hiddenSize, vocabSize: r.model.vocabSize },
      device: r.device,
      interventions,
      tokens: r.tokens,
      heads: r.heads,
      next: r.next,
      timings: { loadMs: r.timings.loadMs, runMs: r.timings.runMs },
    },
    logits: r.allLogits,
    patterns,
  };
}
