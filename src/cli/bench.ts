// `attnscope bench`: plain logits-only forward vs full inspection on the same synthetic input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { EngineError } from '../engine/errors';
import { keptLayers } from '../engine/run';
import { inspectionFits, systemMemoryBudget } from '../engine/memoryEstimate';
import { Model } from '../engine/model';
import type { DeviceRequest } from '../engine/runtime/ortSession';
import { EngineHost } from '../engine/worker/engineHost';
import { mulberry32 } from '../shared/random';
import { loadTokenizer, type PromptTokenizer } from '../engine/sources/tokenizer';
import { aggregationWeights, quantize, tokenAtOffset } from '../shared/overlay';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Deterministic token ids (mulberry32), so every run and machine times the same input. */
export function syntheticIds(n: number, vocab: number, seed = 1234): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

export interface BenchResult {
  tokens: number;
  device: string;
  /** logits-only forward (the plain graph) */
  plainMs: number;
  /**
   * a kept inspection, the extension's: every head's metrics in the graph, every layer's queries,
   * keys and row log-sum-exps fetched and made into the kept state from which any pattern, row or
   * column is exact on demand (the qk graph: attention in blocks, bounded memory)
   */
  keptMs: number;
  /** keptMs / plainMs */
  ratio: number;
  /** an inspection fetching every head's whole pattern ([L, H, T, T]: the CLI's --attention all); null when it would not fit in memory */
  inspectMs: number | null;
  inspectRatio: number | null;
  runs: number;
  loadMs: number;
  /** this process's peak resident memory (VmHWM, Linux; null elsewhere), GiB */
  peakRssGiB: number | null;
  /** the one-minute load average when the runs ended */
  load: number;
}

/** A process's peak (VmHWM) or current (VmRSS) resident memory in bytes from /proc (Linux), else null. */
export function residentBytes(key: 'VmHWM' | 'VmRSS', pid: number | 'self' = 'self'): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** VmHWM of this process in GiB (Linux), else null. */
export function peakRssGiB(): number | null {
  const b = residentBytes('VmHWM');
  return b === null ? null : Math.round((b / 2 ** 30) * 100) / 100;
}

/** `patterns` false skips the pattern inspection (it holds L·H·T² floats; slow and large at thousands of tokens). */
export async function bench(modelDir: string, tokens: number, runs: number, device: DeviceRequest, opts: { patterns?: boolean } = {}): Promise<BenchResult> {
  const model = await Model.open(modelDir, { device });
  try {
    const { layers: L, heads: H, maxPositions, vocabSize } = model.dims;
    if (tokens > maxPositions) throw new EngineError('BAD_ARGUMENT', `--tokens ${tokens} is more than the model's ${maxPositions} positions`);
    const ids = syntheticIds(tokens, Math.min(vocabSize, model.tokenizer.vocabSize));
    const inputs = { ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * tokens) };
    const all = Array.from({ length: L }, (_, l) => l);
    const plain = () => model.forward(inputs, { inspect: false });
    const kept = async () => {
      const out = await model.forward(inputs, { inspect: true, qk: true });
      keptLayers(model.dims, tokens, out.qk!, inputs.attnBias);
    };
    const withPatterns = opts.patterns !== false && inspectionFits(model.dims, tokens, systemMemoryBudget(), false, { kind: 'patterns', layers: L });
    const inspect = () => model.forward(inputs, { inspect: true, layers: all });
    await plain();
    await kept();
    if (withPatterns) await inspect();
    const tp: number[] = [];
    const tk: number[] = [];
    const ti: number[] = [];
    const time = async (f: () => Promise<unknown>, into: number[]) => {
      const t = performance.now();
      await f();
      into.push(performance.now() - t);
    };
    for (let r = 0; r < runs; r++) {
      // Interleaved, so drift in machine load affects all alike.
      await time(plain, tp);
      await time(kept, tk);
      if (withPatterns) await time(inspect, ti);
    }
    const r2 = (v: number) => Math.round(v * 100) / 100;
    const plainMs = median(tp);
    const keptMs = median(tk);
    const inspectMs = withPatterns ? median(ti) : null;
    return {
      tokens,
      device: model.device,
      plainMs: r2(plainMs),
      keptMs: r2(keptMs),
      ratio: r2(keptMs / plainMs),
      inspectMs: inspectMs === null ? null : r2(inspectMs),
      inspectRatio: inspectMs === null ? null : r2(inspectMs / plainMs),
      runs,
      loadMs: r2(model.loadMs),
      peakRssGiB: peakRssGiB(),
      load: r2(os.loadavg()[0]!),
    };
  } finally {
    await model.release();
  }
}

const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'then', 'it', 'saw', 'river', 'stone', 'light', 'house', 'green', 'bird', 'over', 'when', 'music', 'paper'];

/** A deterministic prompt of about `tokens` tokens for this tokenizer. */
async function promptOfTokens(tok: PromptTokenizer, tokens: number): Promise<string> {
  let words = tokens;
  for (;;) {
    const text = Array.from({ length: words }, (_, i) => WORDS[(i * 7 + (i >> 3)) % WORDS.length]).join(' ');
    const n = (await tok.encode(text)).length;
    if (n >= tokens) {
      // trim words until just at or above the target
      let w = words;
      while (w > 1 && (await tok.encode(text.split(' ').slice(0, w - 1).join(' '))).length >= tokens) w--;
      return text.split(' ').slice(0, w).join(' ');
    }
    words = Math.ceil(words * 1.3);
  }
}

export interface ViewBenchResult {
  tokens: number;
  device: string;
  /** cursor move to new overlay levels (no re-run): token lookup, the engine's overlay row (recomputed from the kept queries and keys), quantisation */
  cursorMs: number;
  cursorP95Ms: number;
  /** mask toggle to new overlay: re-run in the worker (as the extension asks for it), overlay row, quantisation */
  maskToggleMs: number;
  runs: number;
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!;
}

/** The extension's interactive paths, headless: what happens between an event and setDecorations. */
export async function benchViews(modelDir: string, tokens: number, runs: number, device: DeviceRequest, engineScript: string): Promise<ViewBenchResult> {
  const host = new EngineHost({ engineScript });
  try {
    const info = await host.open({ modelDir, device });
    const tok = await loadTokenizer(modelDir);
    const prompt = await promptOfTokens(tok, Math.min(tokens, info.maxPositions));
    const L = info.layers;
    const H = info.heads;
    const scales = new Map<string, number>();
    const first = await host.inspect({ prompt, maxTokens: tokens }, true);
    const T = first.result.tokens.length;
    const view = first.result.tokens.map((t) => ({ ...t }));
    const weights = () => aggregationWeights(L, H, scales, 'mean', null);
    // Cursor moves: 400 positions across the prompt; each asks the engine for the overlay row (from
    // the kept queries and keys), as the session does, then quantises it.
    const cursor: number[] = [];
    for (let i = 0; i < 400; i++) {
      const offset = Math.floor(((i * 7919) % 400) / 400 * prompt.length);
      const t0 = performance.now();
      const q = tokenAtOffset(view, offset)!;
      const { row } = await host.query(first.runId, { what: 'overlay', q, direction: 'from', weights: weights() });
      quantize(row!, view, 'sqrt', true);
      cursor.push(performance.now() - t0);
    }
    // Mask toggles: alternate masking and unmasking one head; each time re-run, overlay row.
    const toggles: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const masked = r % 2 === 0;
      if (masked) scales.set('0.0', 0);
      else scales.delete('0.0');
      const t0 = performance.now();
      const { runId } = await host.inspect({ prompt, maxTokens: tokens, interventions: { scales: masked ? [{ layer: 0, head: 0, value: 0 }] : [], emphasis: null, sink: null } }, true);
      const { row } = await host.query(runId, { what: 'overlay', q: T - 1, direction: 'from', weights: weights() });
      quantize(row!, view, 'sqrt', true);
      if (r > 0) toggles.push(performance.now() - t0); // the first is a warm-up
    }
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    return { tokens: T, device: info.device, cursorMs: r3(median(cursor)), cursorP95Ms: r3(p95(cursor)), maskToggleMs: Math.round(median(toggles) * 100) / 100, runs };
  } finally {
    await host.dispose();
  }
}
