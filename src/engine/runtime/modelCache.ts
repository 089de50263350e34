// The compiled-model cache: one folder per checkpoint hash holding weights.bin (every weight in
// float32, canonical layout, 4096-aligned so onnxruntime can map it) and the graphs built on demand.
// A folder is complete when meta.json exists; it is written last, after an atomic rename.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineError } from '../errors';
import { buildGraph, listWeights, type GraphOptions } from '../graph/inspectionGraph';
import type { ExternalRef } from '../graph/onnxGraph';
import type { ModelSpec } from '../spec';

/** Bump when the graph or weight layout changes, so stale caches are not reused. */
export const GRAPH_VERSION = 8;
const WEIGHTS_FILE = 'weights.bin';
const ALIGN = 4096;

export function defaultCacheRoot(): string {
  const env = process.env['ATTNSCOPE_CACHE'];
  if (env) return path.resolve(env);
  const xdg = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'attnscope');
}

interface Meta {
  version: number;
  hash: string;
  refs: Record<string, ExternalRef>;
}

export interface CacheEntry {
  dir: string;
  /** true when the weights were converted during this call (a cold open) */
  built: boolean;
  graphPath(opts: GraphOptions): string;
}

function graphName(opts: GraphOptions): string {
  if (opts.head) return 'head.onnx';
  return `${opts.inspect ? 'inspect' : opts.cache ? 'cached' : 'plain'}${opts.allLogits ? '-all' : ''}.onnx`;
}

export function openCache(spec: ModelSpec, hash: string, root = defaultCacheRoot()): CacheEntry {
  const dir = path.join(root, `${hash}-g${GRAPH_VERSION}`);
  const metaFile = path.join(dir, 'meta.json');
  let meta: Meta | undefined;
  let built = false;
  try {
    const m = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Meta;
    if (m.version === GRAPH_VERSION && m.hash === hash && fs.existsSync(path.join(dir, WEIGHTS_FILE))) meta = m;
  } catch {
    meta = undefined;
  }
  if (!meta) {
    meta = writeWeights(spec, hash, root);
    built = true;
  }
  const refs = new Map(Object.entries(meta.refs));
  return {
    dir,
    built,
    graphPath(opts: GraphOptions): string {
      const file = path.join(dir, graphName(opts));
      if (!fs.existsSync(file)) {
        const bytes = buildGraph(spec, refs, WEIGHTS_FILE, opts);
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, bytes);
        fs.renameSync(tmp, file);
      }
      return file;
    },
  };
}

function writeWeights(spec: ModelSpec, hash: string, root: string): Meta {
  try {
    fs.mkdirSync(root, { recursive: true });
  } catch (e) {
    throw new EngineError('RUNTIME', `${root}: cannot create the model cache (${(e as NodeJS.ErrnoException).code}); set ATTNSCOPE_CACHE to a writable folder`);
  }
  const tmpDir = fs.mkdtempSync(path.join(root, `.${hash}-`));
  try {
    const refs: Record<string, ExternalRef> = {};
    const fd = fs.openSync(path.join(tmpDir, WEIGHTS_FILE), 'w');
    let offset = 0;
    try {
      for (const [name, t] of listWeights(spec)) {
        const data = t.load();
        const expected = t.dims.reduce((a, b) => a * b, 1);
        if (data.length !== expected) throw new Error(`internal: ${name} has ${data.length} values, expected ${expected}`);
        const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
        if (pad) {
          fs.writeSync(fd, Buffer.alloc(pad));
          offset += pad;
        }
        fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        refs[name] = { dims: t.dims, offset, length: data.byteLength };
        offset += data.byteLength;
      }
    } finally {
      fs.closeSync(fd);
    }
    const meta: Meta = { version: GRAPH_VERSION, hash, refs };
    const target = path.join(root, `${hash}-g${GRAPH_VERSION}`);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(tmpDir, target);
    fs.writeFileSync(path.join(target, 'meta.json'), JSON.stringify(meta));
    return meta;
  } catch (e) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    if (e instanceof EngineError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new EngineError('RUNTIME', `${root}: disk full while converting the weights; free space or set ATTNSCOPE_CACHE elsewhere`);
    throw e;
  }
}
