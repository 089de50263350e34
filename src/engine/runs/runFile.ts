// The .attnrun file: a saved inspection (prompt, model, interventions, tokens with their texts,
// head metrics, predictions, timings) and, when asked, the heavy tensors, in a versioned binary layout:
//
//   bytes 0..7   magic "ATTNRUN\n"
//   u32 LE       format version (1 or 2; this AttnScope writes 2)
//   u32 LE       header length N
//   N bytes      UTF-8 JSON header (RunFileHeader)
//   zero padding to a multiple of 8, then the data section: little-endian float32 tensors at the
//   header's `tensors[name].offset` (relative to the data section), `length` bytes each.
//
// Version 2 (what a run needs to be reopened and compared, without a tokenizer):
//   always     header: prompt, model (id, hash, shape), interventions, tokens with texts, head
//              metrics, `next` (top-K with texts), `autoSaved` (true only for AttnScope's own
//              auto-saves, the only files pruning may delete), `topTexts` (id -> text of every id in
//              `topIds`); tensors `topIds` and `topLogprobs` [T, K] (each position's K most likely
//              next tokens, K = min(RUN_TOP_K, V)) and `lastLogits` [V] (the last position's full
//              logits: the next-token distribution exactly, so two runs' final KL is exact; 16 KB on
//              the default model, where top-K only would make that KL impossible).
//   with tensors  `logits` [T, V] (every position: per-position KL) and `patterns` [L, H, T, T]
//              (every head: attention overlays, attention shift). 151 MB at 1,024 tokens on the
//              default model, so auto-saves leave them out; "Save Run As…" (with tensors), Compare
//              with Baseline and the CLI's `inspect --save` keep them.
// Version 1 (logits and patterns, no top-K, no autoSaved) still reads.
//
// Reading never trusts the file: every header value is bounded against the file's size (and
// MAX_HEADER) before anything is allocated, JSON nesting and item count are bounded before parsing,
// tensors must lie inside the file without overlapping, and nothing named inside a file (e.g.
// model.dir) is ever opened. Decoding allocates at most the file's tensor bytes plus a small multiple
// of the header's. Files are written to a temporary name and linked, so a crash never leaves half a
// file, and a name that exists is never overwritten.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../errors';
import { METRICS, type HeadSummary } from '../../shared/heads';
import { interventionProblems, interventionsFromJson, type Interventions } from '../../shared/interventions';
import type { PromptToken } from '../sources/tokenizer';
import { topLogprobsOfRow } from '../analysis/compare';
import { jsonShape } from '../sources/boundedJson';

export const RUN_MAGIC = 'ATTNRUN\n';
export const RUN_VERSION = 2;
const READS = [1, 2];
/** The JSON header may not be longer than this (a 16k-token run's header is about 1 MB). */
export const MAX_HEADER = 32 * 1024 * 1024;
/** Deepest JSON nesting a header has (header > tokens > [i] is 3; allow some room). */
const MAX_DEPTH = 8;
/** Tensors larger than this many float32 values are not saved (the header says so), nor read. */
export const MAX_SAVED_VALUES = 64 * 1024 * 1024;
/** How many next-token candidates per position a run keeps (with their texts). */
export const RUN_TOP_K = 10;
/** Largest vocabulary read (token ids are stored exactly as float32 up to 2^24). */
const MAX_VOCAB = 1 << 24;
const MAX_LAYERS = 4096;

/** The model a run was made with: what identifies it and its shape. `dir` is shown, never opened. */
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

/** What every saved run has (version 1 and 2). */
export interface RunHeader {
  createdAt: string;
  prompt: string;
  model: RunModelInfo;
  device: string;
  interventions: Interventions;
  tokens: PromptToken[];
  heads: HeadSummary[];
  next: { id: number; text: string; prob: number }[];
  timings: { loadMs: number; runMs: number };
  /** true only in runs AttnScope saved by itself (pruning deletes nothing else) */
  autoSaved?: boolean;
  /** id -> text of every id in `topIds` (version 2) */
  topTexts?: Record<string, string>;
}

export interface RunFileHeader extends RunHeader {
  format: 'attnscope-run';
  version: number;
  /** names of tensors left out because they were too large */
  omitted: string[];
  tensors: Record<string, TensorRef>;
}

export interface SavedRun {
  file?: string;
  /** the format version read (absent for a run not read from a file) */
  version?: number;
  header: RunHeader;
  /** tensors left out of the file because they were too large (not because the run was saved without tensors) */
  omitted?: string[];
  /** [T, V] logits at every position (runs saved with tensors) */
  logits?: Float32Array;
  /** [L, H, T, T] every head's attention pattern (runs saved with tensors) */
  patterns?: Float32Array;
  /** [V] the last position's logits (version 2 runs without `logits`) */
  lastLogits?: Float32Array;
  /** [T, K] each position's K most likely next token ids (exact integers), most likely first (version 2) */
  topIds?: Float32Array;
  /** [T, K] their log-probabilities (version 2) */
  topLogprobs?: Float32Array;
}

const TENSORS = ['logits', 'patterns', 'lastLogits', 'topIds', 'topLogprobs'] as const;
type TensorName = (typeof TENSORS)[number];

function bad(file: string, what: string): EngineError {
  return new EngineError('PROMPT', `${file}: ${what}; the run file is damaged or not an AttnScope run`);
}

/** The K of a run's per-position top-K (0 without one). */
export function runTopK(run: SavedRun): number {
  const T = run.header.tokens.length;
  return run.topIds && T > 0 ? run.topIds.length / T : 0;
}

export function encodeRun(run: SavedRun): Buffer {
  const tensors: Record<string, TensorRef> = {};
  const omitted: string[] = [];
  const blobs: Float32Array[] = [];
  let offset = 0;
  const T = run.header.tokens.length;
  const { layers: L, heads: H, vocabSize: V } = run.header.model;
  const K = runTopK(run);
  const add = (name: TensorName, data: Float32Array | undefined, dims: number[]) => {
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
  add('lastLogits', run.lastLogits, [V]);
  add('topIds', run.topIds, [T, K]);
  add('topLogprobs', run.topLogprobs, [T, K]);
  for (const o of run.omitted ?? []) if (!omitted.includes(o)) omitted.push(o);
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

// ---- reading: prefix, bounded header, planned tensors ----

interface Prefix {
  version: number;
  headerLength: number;
  dataStart: number;
}

function readPrefix(pre: Buffer, size: number, file: string): Prefix {
  if (size < 16 || pre.length < 16 || pre.toString('latin1', 0, 8) !== RUN_MAGIC) throw bad(file, 'no AttnScope run signature at the start');
  const version = pre.readUInt32LE(8);
  if (!READS.includes(version)) throw new EngineError('PROMPT', `${file}: run format version ${version} is not supported (this AttnScope reads versions ${READS.join(' and ')}); update AttnScope`);
  const n = pre.readUInt32LE(12);
  if (16 + n > size) throw bad(file, `header length ${n} runs past the end of the file (${size} bytes): truncated`);
  if (n > MAX_HEADER) throw bad(file, `header length ${n} is over the limit of ${MAX_HEADER} bytes`);
  return { version, headerLength: n, dataStart: 16 + n + ((8 - ((16 + n) % 8)) % 8) };
}

/**
 * Bounds a JSON text before JSON.parse: nesting depth, and the number of values (so that parsing
 * allocates a small multiple of the text's size: a value takes at least 4 characters here, which
 * every real header meets and `[0,0,0,…]` does not).
 */
function checkJsonShape(text: string, file: string): void {
  const { depth, items } = jsonShape(text);
  if (depth > MAX_DEPTH) throw bad(file, `header nests deeper than ${MAX_DEPTH} levels`);
  if (items * 4 > text.length + 64) throw bad(file, 'header has more values than its size allows');
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

interface TensorPlan {
  name: TensorName;
  count: number;
  /** absolute byte position in the file */
  at: number;
}

interface Plan {
  version: number;
  header: RunHeader;
  omitted: string[];
  tensors: TensorPlan[];
}

/** Validates a parsed header against the file's size; plans the tensor reads (nothing allocated yet). */
function planRun(h: unknown, p: Prefix, size: number, file: string): Plan {
  const need = (cond: unknown, what: string) => {
    if (!cond) throw bad(file, what);
  };
  need(isObj(h) && h.format === 'attnscope-run', 'header is not an AttnScope run header');
  const o = h as Record<string, unknown>;
  need(typeof o.prompt === 'string', 'missing prompt');
  const prompt = o.prompt as string;
  need(typeof o.createdAt === 'string' && (o.createdAt as string).length <= 64, 'createdAt is not a date');
  need(o.device === undefined || (typeof o.device === 'string' && (o.device as string).length <= 256), 'device is not a string');
  const m = o.model as Record<string, unknown>;
  need(isObj(m), 'missing model shape');
  for (const k of ['dir', 'hash', 'arch', 'modelType'] as const) need(m[k] === undefined || (typeof m[k] === 'string' && (m[k] as string).length <= 4096), `model.${k} is not a string`);
  need(isInt(m.layers, 1, MAX_LAYERS) && isInt(m.heads, 1, MAX_LAYERS), 'model.layers and model.heads must be integers from 1 to 4096');
  need(isInt(m.vocabSize, 1, MAX_VOCAB), `model.vocabSize must be an integer from 1 to ${MAX_VOCAB}`);
  need((m.kvHeads === undefined || isInt(m.kvHeads, 1, MAX_LAYERS)) && (m.hiddenSize === undefined || isInt(m.hiddenSize, 1, 1 << 20)), 'model.kvHeads or model.hiddenSize is out of range');
  const L = m.layers as number;
  const H = m.heads as number;
  const V = m.vocabSize as number;
  const model: RunModelInfo = { dir: (m.dir as string) ?? '', hash: (m.hash as string) ?? '', arch: (m.arch as string) ?? '', modelType: (m.modelType as string) ?? '', layers: L, heads: H, kvHeads: (m.kvHeads as number) ?? H, hiddenSize: (m.hiddenSize as number) ?? 0, vocabSize: V };

  need(Array.isArray(o.tokens) && (o.tokens as unknown[]).length >= 1, 'bad token list: no tokens');
  const tokens: PromptToken[] = [];
  (o.tokens as unknown[]).forEach((t, i) => {
    const x = t as Record<string, unknown>;
    need(isObj(t) && isInt(x.id, 0, 0x7fffffff) && typeof x.text === 'string' && isInt(x.start, 0, prompt.length) && isInt(x.end, x.start as number, prompt.length) && (x.special === undefined || typeof x.special === 'boolean'), `bad token list: token ${i} is not {id, text, start <= end <= prompt length, special}`);
    tokens.push({ id: x.id as number, text: x.text as string, start: x.start as number, end: x.end as number, special: x.special === true });
  });
  const T = tokens.length;

  need(Array.isArray(o.heads) && (o.heads as unknown[]).length === L * H, `head metrics: expected ${L}×${H} heads`);
  const seen = new Uint8Array(L * H);
  const heads: HeadSummary[] = [];
  for (const [i, e] of (o.heads as unknown[]).entries()) {
    const x = e as Record<string, unknown>;
    need(isObj(e) && isInt(x.layer, 0, L - 1) && isInt(x.head, 0, H - 1) && !seen[(x.layer as number) * H + (x.head as number)], `head metrics: entry ${i} is not a distinct {layer, head} of the model`);
    seen[(x.layer as number) * H + (x.head as number)] = 1;
    const s = { layer: x.layer, head: x.head } as HeadSummary;
    for (const k of METRICS) {
      // A run saved before a metric existed reads it as null (not defined for that run).
      need(x[k] === undefined || x[k] === null || isNum(x[k]), `head metrics: ${k} of entry ${i} is not a number or null`);
      s[k] = x[k] === undefined ? null : (x[k] as number | null);
    }
    heads.push(s);
  }

  need(Array.isArray(o.next) && (o.next as unknown[]).length <= 4096, 'missing predictions');
  const next = (o.next as unknown[]).map((e, i) => {
    const x = e as Record<string, unknown>;
    need(isObj(e) && isInt(x.id, 0, V - 1) && typeof x.text === 'string' && isNum(x.prob) && (x.prob as number) >= 0 && (x.prob as number) <= 1, `prediction ${i} is not {id < vocabSize, text, prob in 0..1}`);
    return { id: x.id as number, text: x.text as string, prob: x.prob as number };
  });
  const tm = o.timings as Record<string, unknown>;
  need(isObj(tm) && isNum(tm.loadMs) && isNum(tm.runMs), 'timings are not numbers');
  // Runs written before the shared interventions shape ({mask, scale, emphasize, steerHeads}) read as the same value.
  const iv = interventionsFromJson(o.interventions ?? {});
  if (typeof iv === 'string') throw bad(file, iv);
  const problems = interventionProblems(iv, L, H, prompt.length);
  if (problems.length) throw bad(file, `interventions: ${problems[0]}`);
  need(o.autoSaved === undefined || typeof o.autoSaved === 'boolean', 'autoSaved is not true or false');
  let topTexts: Record<string, string> | undefined;
  if (o.topTexts !== undefined) {
    need(isObj(o.topTexts), 'topTexts is not an object');
    topTexts = {};
    for (const [k, v] of Object.entries(o.topTexts as Record<string, unknown>)) {
      need(/^\d{1,8}$/.test(k) && Number(k) < V && typeof v === 'string', `topTexts: entry "${k.slice(0, 20)}" is not a token id with its text`);
      topTexts[k] = v as string;
    }
  }
  need(o.omitted === undefined || (Array.isArray(o.omitted) && (o.omitted as unknown[]).every((x) => (TENSORS as readonly unknown[]).includes(x))), 'omitted is not a list of tensor names');

  // tensors: known names, the dims the header implies, inside the data section, not overlapping
  need(isObj(o.tensors), 'missing tensor table');
  const table = o.tensors as Record<string, unknown>;
  const dataBytes = size - p.dataStart;
  const K = (() => {
    const t = table.topIds as Record<string, unknown> | undefined;
    if (!t) return 0;
    need(isObj(t) && Array.isArray(t.dims) && t.dims.length === 2 && isInt(t.dims[1], 1, 1024), 'tensor topIds has dims that are not [tokens, K <= 1024]');
    return (t.dims as number[])[1]!;
  })();
  const expected: Record<TensorName, number[]> = { logits: [T, V], patterns: [L, H, T, T], lastLogits: [V], topIds: [T, K], topLogprobs: [T, K] };
  const plans: TensorPlan[] = [];
  for (const [name, t] of Object.entries(table)) {
    need((TENSORS as readonly string[]).includes(name), `unknown tensor "${name.slice(0, 40)}"`);
    const dims = expected[name as TensorName];
    const x = t as Record<string, unknown>;
    need(isObj(t) && Array.isArray(x.dims) && x.dims.length === dims.length && (x.dims as unknown[]).every((d, i) => d === dims[i]), `tensor ${name} has dims [${Array.isArray(x?.dims) ? (x.dims as unknown[]).slice(0, 8).join(',') : '?'}] but the header implies [${dims}]`);
    // dims are integers the header bounds; their product is compared to the file before any allocation
    const count = dims.reduce((a, b) => a * b, 1);
    need(count <= MAX_SAVED_VALUES, `tensor ${name} has ${count} values, over the limit of ${MAX_SAVED_VALUES}`);
    need(isInt(x.offset, 0, dataBytes) && (x.offset as number) % 4 === 0 && x.length === count * 4, `tensor ${name} has an invalid extent`);
    need((x.offset as number) + count * 4 <= dataBytes, `tensor ${name} runs past the end of the file: truncated`);
    plans.push({ name: name as TensorName, count, at: p.dataStart + (x.offset as number) });
  }
  const sorted = [...plans].sort((a, b) => a.at - b.at);
  for (let i = 1; i < sorted.length; i++) need(sorted[i - 1]!.at + sorted[i - 1]!.count * 4 <= sorted[i]!.at, `tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`);
  const has = (n: TensorName) => plans.some((x) => x.name === n);
  need(has('topIds') === has('topLogprobs'), 'topIds and topLogprobs must come together');
  need(!has('topIds') || topTexts, 'topIds without topTexts');
  if (p.version >= 2) need(has('logits') || has('lastLogits'), 'neither logits nor lastLogits: the next-token distribution is missing');

  const header: RunHeader = {
    createdAt: o.createdAt as string,
    prompt,
    model,
    device: (o.device as string) ?? '',
    interventions: iv,
    tokens,
    heads,
    next,
    timings: { loadMs: tm.loadMs as number, runMs: tm.runMs as number },
  };
  if (o.autoSaved !== undefined) header.autoSaved = o.autoSaved as boolean;
  if (topTexts) header.topTexts = topTexts;
  return { version: p.version, header, omitted: (o.omitted as string[] | undefined) ?? [], tensors: plans };
}

function parseHeader(bytes: Buffer, p: Prefix, size: number, file: string): Plan {
  const text = bytes.toString('utf8');
  checkJsonShape(text, file);
  let h: unknown;
  try {
    h = JSON.parse(text);
  } catch {
    throw bad(file, 'header is not valid JSON');
  }
  return planRun(h, p, size, file);
}

/** The run from a validated plan and its tensors; checks the values that must be token ids. */
function assemble(plan: Plan, data: Map<TensorName, Float32Array>, file: string | undefined, name: string): SavedRun {
  const run: SavedRun = { header: plan.header, version: plan.version };
  if (file !== undefined) run.file = file;
  if (plan.omitted.length) run.omitted = plan.omitted;
  for (const [k, v] of data) {
    // A run is numbers or nothing: a file holding NaN or Infinity (a broken run, or a crafted file)
    // would compare as "identical" (KL of NaN) or draw as empty; refuse it in one line instead.
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (x !== x || x === Infinity || (x === -Infinity && k !== 'topLogprobs')) {
        throw new EngineError('PROMPT', `${name}: tensor ${k} holds ${Number.isNaN(x) ? 'NaN' : 'Infinity'} (value ${i}): the run that wrote it was numerically broken; inspect the prompt again`);
      }
    }
    run[k] = v;
  }
  if (run.topIds) {
    const V = plan.header.model.vocabSize;
    const texts = plan.header.topTexts!;
    for (const id of run.topIds) if (!(Number.isInteger(id) && id >= 0 && id < V && texts[id] !== undefined)) throw bad(name, `topIds holds ${id}, not a token id with a text`);
  }
  return run;
}

export function decodeRun(bytes: Uint8Array, file = 'run'): SavedRun {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const p = readPrefix(buf.subarray(0, 16), buf.length, file);
  const plan = parseHeader(buf.subarray(16, 16 + p.headerLength), p, buf.length, file);
  const data = new Map<TensorName, Float32Array>();
  for (const t of plan.tensors) {
    const out = new Float32Array(t.count);
    new Uint8Array(out.buffer).set(buf.subarray(t.at, t.at + t.count * 4));
    data.set(t.name, out);
  }
  return assemble(plan, data, file, file);
}

function readError(file: string, e: unknown): EngineError {
  if (e instanceof EngineError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new EngineError('PROMPT', `${file}: ${code === 'ENOENT' ? 'run file not found' : code === 'EISDIR' ? 'is a folder, not a run file' : `cannot read (${code ?? String(e)})`}`);
}

async function openRegular(file: string): Promise<{ fh: fs.promises.FileHandle; size: number }> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(file, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw new EngineError('PROMPT', `${file}: not a regular file; a run file is an .attnrun file`);
    return { fh, size: st.size };
  } catch (e) {
    await fh?.close().catch(() => undefined);
    throw readError(file, e);
  }
}

async function readExactly(fh: fs.promises.FileHandle, into: Uint8Array, at: number, file: string): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fh.read(into, done, into.length - done, at + done);
    if (bytesRead === 0) throw bad(file, 'the file ended early (it changed while being read)');
    done += bytesRead;
  }
}

/**
 * Reads a run file without blocking the caller's thread on I/O: the prefix and the bounded header
 * first, then each tensor straight into its array (no copy of the whole file). The extension host
 * reads runs only through this function. `tensors: false` reads the header only (the per-position
 * top-K and last logits included; logits and patterns left out).
 */
export async function readRunFileAsync(file: string, opts: { tensors?: boolean } = {}): Promise<SavedRun> {
  const { fh, size } = await openRegular(file);
  try {
    const pre = Buffer.alloc(16);
    if (size >= 16) await readExactly(fh, pre, 0, file);
    const p = readPrefix(pre, size, file);
    const hb = Buffer.alloc(p.headerLength);
    await readExactly(fh, hb, 16, file);
    const plan = parseHeader(hb, p, size, file);
    const data = new Map<TensorName, Float32Array>();
    for (const t of plan.tensors) {
      if (opts.tensors === false && (t.name === 'logits' || t.name === 'patterns')) continue;
      const out = new Float32Array(t.count);
      await readExactly(fh, new Uint8Array(out.buffer), t.at, file);
      data.set(t.name, out);
    }
    return assemble(plan, data, file, file);
  } catch (e) {
    throw readError(file, e);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Whether a file is a run AttnScope auto-saved (its header says so); false for anything unreadable. */
export async function isAutoSavedRun(file: string): Promise<boolean> {
  try {
    return (await readRunFileAsync(file, { tensors: false })).header.autoSaved === true;
  } catch {
    return false;
  }
}

/** Synchronous read for the CLI's and tests' convenience (same bounds); the extension host uses readRunFileAsync. */
export function readRunFile(file: string): SavedRun {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new EngineError('PROMPT', `${file}: not a regular file; a run file is an .attnrun file`);
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw readError(file, e);
  }
  return decodeRun(bytes, file);
}

export interface SaveOptions {
  /** keep every position's logits [T, V] and every head's patterns [L, H, T, T] */
  tensors: boolean;
  /** mark the file as AttnScope's own auto-save (pruning may delete it) */
  autoSaved: boolean;
  /** the text of a token id (the model's tokenizer), for the top-K lists */
  decode: (id: number) => string;
  /**
   * with `tensors`, for a run without stored patterns (a kept run holds queries and keys): writes
   * head (layer, head)'s pattern into out [T, T] (zeros); filled head by head into the one
   * [L, H, T, T] tensor, so no second copy is held. Saved while L·H·T² ≤ MAX_SAVED_VALUES (64·2²⁰
   * values, 256 MB: e.g. 30 layers × 9 heads up to 498 tokens), else listed in `omitted`.
   */
  patternInto?: (layer: number, head: number, out: Float32Array) => void;
}

/**
 * Each position's k = min(RUN_TOP_K, V) largest logits [T, k] with their ids (ties: the lower id) and
 * the log-sum-exp of its logits [T] in float64: what the head graph's top-k variant returns
 * (Model.headTop), so a long run is saved without forming its [T, V] logits.
 */
export interface PositionTop {
  logits: Float32Array;
  ids: BigInt64Array;
  lse: Float64Array;
}

/**
 * A RunResult as a SavedRun: each position's top-K from `top` when given, else from allLogits; with
 * `tensors`, allLogits (saved while under MAX_SAVED_VALUES) and every layer's patterns; without the
 * whole logits the last position's (r.lastLogits, or allLogits' last row).
 */
export function savedRunFrom(r: import('../run').RunResult, prompt: string, interventions: Interventions, opts: SaveOptions, top?: PositionTop): SavedRun {
  const { layers: L, heads: H, vocabSize: V } = r.model;
  const T = r.tokens.length;
  const all = r.allLogits;
  if (all && all.length !== T * V) throw new Error('internal: savedRunFrom: logits size');
  if (!all && !top) throw new Error('internal: savedRunFrom needs every position\'s logits or top-K');
  // each position's top-K, log-probabilities in float64 like the comparison (stored as float32), ties to the lower id
  const K = Math.min(RUN_TOP_K, V);
  const topIds = new Float32Array(T * K);
  const topLogprobs = new Float32Array(T * K);
  const topTexts: Record<string, string> = {};
  if (top && (top.logits.length !== T * K || top.ids.length !== T * K || top.lse.length !== T)) throw new Error('internal: savedRunFrom: top-K size');
  for (let t = 0; t < T; t++) {
    const row = top
      ? Array.from({ length: K }, (_, i) => ({ id: Number(top.ids[t * K + i]!), logprob: top.logits[t * K + i]! - top.lse[t]! }))
      : topLogprobsOfRow(all!, t, V, K);
    row.forEach((x, i) => {
      topIds[t * K + i] = x.id;
      topLogprobs[t * K + i] = x.logprob;
      topTexts[x.id] ??= opts.decode(x.id);
    });
  }
  const run: SavedRun = {
    header: {
      createdAt: new Date().toISOString(),
      prompt,
      model: { dir: r.model.dir, hash: r.model.hash, arch: r.model.arch, modelType: r.model.modelType, layers: L, heads: H, kvHeads: r.model.kvHeads, hiddenSize: r.model.hiddenSize, vocabSize: V },
      device: r.device,
      interventions,
      tokens: r.tokens,
      heads: r.heads,
      next: r.next,
      timings: { loadMs: r.timings.loadMs, runMs: r.timings.runMs },
      autoSaved: opts.autoSaved,
      topTexts,
    },
    topIds,
    topLogprobs,
  };
  const omitted: string[] = [];
  if (opts.tensors && all && all.length <= MAX_SAVED_VALUES) run.logits = all;
  else if (opts.tensors) omitted.push('logits');
  if (!run.logits) {
    const last = all ? all.slice((T - 1) * V, T * V) : r.lastLogits;
    if (!last || last.length !== V) throw new Error('internal: savedRunFrom needs the last position\'s logits');
    run.lastLogits = last;
  }
  if (opts.tensors) {
    if (L * H * T * T > MAX_SAVED_VALUES) omitted.push('patterns');
    else if (r.patterns.size === L) {
      const patterns = new Float32Array(L * H * T * T);
      for (let l = 0; l < L; l++) patterns.set(r.patterns.get(l)!, l * H * T * T);
      run.patterns = patterns;
    } else if (opts.patternInto) {
      const patterns = new Float32Array(L * H * T * T);
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) opts.patternInto(l, h, patterns.subarray((l * H + h) * T * T, (l * H + h + 1) * T * T));
      run.patterns = patterns;
    } else omitted.push('patterns');
  }
  if (omitted.length) run.omitted = omitted;
  return run;
}
