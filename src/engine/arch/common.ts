// Helpers shared by the family files: typed config reading and weight re-layout.
import { EngineError } from '../errors';
import { requireTensor, readTensorF32, type Checkpoint } from '../sources/checkpoint';
import type { LazyTensor } from '../spec';

export class ConfigReader {
  constructor(
    private readonly ck: Checkpoint,
    private readonly arch: string,
  ) {}
  private get file() {
    return `${this.ck.dir}/config.json`;
  }
  raw(key: string): unknown {
    return this.ck.config[key];
  }
  has(key: string): boolean {
    return this.ck.config[key] !== undefined && this.ck.config[key] !== null;
  }
  int(key: string, fallback?: number, min = 1): number {
    const v = this.ck.config[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new EngineError('MODEL', `${this.file}: missing "${key}", which a ${this.arch} config needs`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new EngineError('MODEL', `${this.file}: "${key}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }
  num(key: string, fallback: number): number {
    const v = this.ck.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new EngineError('MODEL', `${this.file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.ck.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new EngineError('MODEL', `${this.file}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, fallback: string): string {
    const v = this.ck.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new EngineError('MODEL', `${this.file}: "${key}" must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  fail(what: string): never {
    throw new EngineError('MODEL', `${this.file}: ${what}`);
  }
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
