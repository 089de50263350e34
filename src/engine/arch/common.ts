// Helpers shared by the family files: typed config reading and weight re-layout.
import { EngineError } from '../errors';
import { requireTensor, readTensorF32, type Checkpoint } from '../sources/checkpoint';
import type { Activation, LazyTensor } from '../spec';

/** Range a number read from config.json must lie in; every bound is inclusive unless said. */
export interface NumRange {
  min?: number;
  /** the value must be strictly greater */
  above?: number;
  max?: number;
}

/**
 * Typed, validated reading of config.json (or of one of its nested objects such as
 * rope_parameters, then named `rope_parameters.<key>` in errors). Every error is one MODEL line
 * naming the file and the key.
 */
export class ConfigReader {
  constructor(
    private readonly ck: Checkpoint,
    private readonly arch: string,
    private readonly source: Record<string, unknown> = ck.config,
    private readonly prefix = '',
  ) {}
  private get file() {
    return `${this.ck.dir}/config.json`;
  }
  /** A reader over a nested object (e.g. rope_parameters), keys named `<key>.<inner>` in errors. */
  nested(key: string, obj: Record<string, unknown>): ConfigReader {
    return new ConfigReader(this.ck, this.arch, obj, `${this.prefix}${key}.`);
  }
  private get(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.source, key) ? this.source[key] : undefined;
  }
  name(key: string): string {
    return `${this.prefix}${key}`;
  }
  raw(key: string): unknown {
    return this.get(key);
  }
  has(key: string): boolean {
    const v = this.get(key);
    return v !== undefined && v !== null;
  }
  int(key: string, fallback?: number, min = 1): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(`missing "${this.name(key)}", which a ${this.arch} config needs`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      this.fail(`"${this.name(key)}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }
  /** A finite number within `range`; `fallback` when absent or null. */
  num(key: string, fallback: number, range: NumRange = {}): number {
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`"${this.name(key)}" must be a number, got ${JSON.stringify(v)}`);
    const bad =
      (range.min !== undefined && v < range.min) || (range.above !== undefined && !(v > range.above)) || (range.max !== undefined && v > range.max);
    if (bad) {
      const parts = [range.above !== undefined ? `> ${range.above}` : '', range.min !== undefined ? `≥ ${range.min}` : '', range.max !== undefined ? `≤ ${range.max}` : ''];
      this.fail(`"${this.name(key)}" must be ${parts.filter(Boolean).join(' and ')}, got ${v}`);
    }
    return v;
  }
  /** A number that must be present. */
  needNum(key: string, range: NumRange = {}): number {
    if (!this.has(key)) this.fail(`missing "${this.name(key)}", which a ${this.arch} config needs here`);
    return this.num(key, 0, range);
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(`"${this.name(key)}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, fallback: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') this.fail(`"${this.name(key)}" must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  /** A JSON object, or undefined when absent or null. */
  obj(key: string): Record<string, unknown> | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(`"${this.name(key)}" must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  }
  /** An array of finite numbers of length `len`. */
  numbers(key: string, len: number, range: NumRange = {}): number[] {
    const v = this.get(key);
    if (!Array.isArray(v) || v.length !== len || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(`"${this.name(key)}" must be a list of ${len} numbers, got ${JSON.stringify(v)?.slice(0, 80)}`);
    }
    const arr = v as number[];
    if (arr.some((x) => (range.above !== undefined && !(x > range.above)) || (range.min !== undefined && x < range.min))) {
      this.fail(`"${this.name(key)}" must hold numbers ${range.above !== undefined ? `> ${range.above}` : `≥ ${range.min}`}`);
    }
    return arr;
  }
  /** An array of strings, or undefined when absent or null. */
  strings(key: string): string[] | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(`"${this.name(key)}" must be a list of strings`);
    return v as string[];
  }
  /** A string key looked up in `table` by own property only ("toString" is not an activation). */
  choice<T>(key: string, table: Record<string, T>, fallback: string): T {
    const v = this.str(key, fallback);
    if (!Object.prototype.hasOwnProperty.call(table, v)) {
      this.fail(`${this.name(key)} "${v}" is not supported (supported: ${Object.keys(table).join(', ')})`);
    }
    return table[v]!;
  }
  /** Refuses a key set to anything but its neutral value(s). */
  refuseUnless(key: string, neutral: unknown[], why: string): void {
    const v = this.get(key);
    if (v === undefined || v === null || neutral.some((n) => n === v)) return;
    this.fail(`"${this.name(key)}": ${JSON.stringify(v)} is not supported (${why})`);
  }
  fail(what: string): never {
    throw new EngineError('MODEL', `${this.file}: ${what}`);
  }
}

/** hidden_act names of the Llama-style families (llama, mistral, qwen2/3, smollm3, phi3, olmo2), as transformers' ACT2FN maps them. */
export const LLAMA_ACTS: Record<string, Activation> = { silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu' };

/** The shape keys every Llama-style decoder config has, read and checked in one place. */
export interface DecoderDims {
  D: number;
  L: number;
  H: number;
  KV: number;
  hd: number;
  I: number;
  V: number;
  P: number;
  eps: number;
  act: Activation;
}

/**
 * hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads (default: MHA), head_dim
 * (default `headDim`, else hidden / heads), intermediate_size, vocab_size, max_position_embeddings,
 * rms_norm_eps and hidden_act (LLAMA_ACTS, default silu), with the checks they share.
 */
export function readDecoderDims(c: ConfigReader, defaults: { headDim?: number; positions: number; eps: number }): DecoderDims {
  const D = c.int('hidden_size');
  const L = c.int('num_hidden_layers');
  const H = c.int('num_attention_heads');
  const KV = c.int('num_key_value_heads', H);
  const hd = c.int('head_dim', defaults.headDim ?? Math.floor(D / H));
  if (hd < 2) c.fail(`head_dim ${hd} is too small (hidden_size / num_attention_heads, or "head_dim")`);
  const I = c.int('intermediate_size');
  const V = c.int('vocab_size');
  const P = c.int('max_position_embeddings', defaults.positions);
  const eps = c.num('rms_norm_eps', defaults.eps, { min: 0 });
  const act = c.choice('hidden_act', LLAMA_ACTS, 'silu');
  if (H % KV !== 0) c.fail(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);
  return { D, L, H, KV, hd, I, V, P, eps, act };
}

/** A stored tensor used as is. */
export function asIs(ck: Checkpoint, name: string, shape: number[]): LazyTensor {
  const t = requireTensor(ck, name, shape);
  return { dims: shape, load: () => readTensorF32(t) };
}

export function optional(ck: Checkpoint, name: string, shape: number[]): LazyTensor | undefined {
  return ck.tensors.has(name) ? asIs(ck, name, shape) : undefined;
}

export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[base + c]!;
  }
  return out;
}

/** nn.Linear weights [out, in] stacked along `out`, then transposed to [in, sum(out)] for MatMul. */
export function linearsToMatmul(parts: { tensor: LazyTensor }[]): LazyTensor {
  const inDim = parts[0]!.tensor.dims[1]!;
  const outDim = parts.reduce((a, p) => a + p.tensor.dims[0]!, 0);
  return {
    dims: [inDim, outDim],
    load: () => {
      const stacked = new Float32Array(inDim * outDim);
      let at = 0;
      for (const p of parts) {
        const w = p.tensor.load();
        stacked.set(w, at);
        at += w.length;
      }
      return transpose(stacked, outDim, inDim);
    },
  };
}

export function concatVectors(parts: LazyTensor[]): LazyTensor {
  const n = parts.reduce((a, p) => a + p.dims[0]!, 0);
  return {
    dims: [n],
    load: () => {
      const out = new Float32Array(n);
      let at = 0;
      for (const p of parts) {
        const v = p.load();
        out.set(v, at);
        at += v.length;
      }
      return out;
    },
  };
}

export function constant(dims: number[], value: number): LazyTensor {
  return { dims, load: () => new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value) };
}
