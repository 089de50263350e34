// `attnscope bench`: plain logits-only forward vs full inspection on the same synthetic input.
import { EngineError } from '../engine/errors';
import { Model } from '../engine/model';
import type { DeviceRequest } from '../engine/runtime/ortSession';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Deterministic token ids (mulberry32), so every run and machine times the same input. */
export function syntheticIds(n: number, vocab: number, seed = 1234): number[] {
  let a = seed >>> 0;
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    ids.push(((t ^ (t >>> 14)) >>> 0) % vocab);
  }
  return ids;
}

export interface BenchResult {
  tokens: number;
  device: string;
  plainMs: number;
  inspectMs: number;
  runs: number;
  loadMs: number;
  ratio: number;
}

export async function bench(modelDir: string, tokens: number, runs: number, device: DeviceRequest): Promise<BenchResult> {
  const model = await Model.open(modelDir, { device });
  try {
    const { layers: L, heads: H, maxPositions, vocabSize } = model.dims;
    if (tokens > maxPositions) throw new EngineError('BAD_ARGUMENT', `--tokens ${tokens} is more than the model's ${maxPositions} positions`);
    const ids = syntheticIds(tokens, Math.min(vocabSize, model.tokenizer.vocabSize));
    const inputs = { ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * tokens) };
    const all = Array.from({ length: L }, (_, l) => l);
    const plain = () => model.forward(inputs, { inspect: false });
    const inspect = () => model.forward(inputs, { inspect: true, layers: all });
    await plain();
    await inspect();
    const tp: number[] = [];
    const ti: number[] = [];
    for (let r = 0; r < runs; r++) {
      // Interleaved, so drift in machine load affects both alike.
      let t = performance.now();
      await plain();
      tp.push(performance.now() - t);
      t = performance.now();
      await inspect();
      ti.push(performance.now() - t);
    }
    const plainMs = median(tp);
    const inspectMs = median(ti);
    const r2 = (v: number) => Math.round(v * 100) / 100;
    return { tokens, device: model.device, plainMs: r2(plainMs), inspectMs: r2(inspectMs), runs, loadMs: r2(model.loadMs), ratio: r2(inspectMs / plainMs) };
  } finally {
    await model.release();
  }
}
