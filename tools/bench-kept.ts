// Measures kept (bounded-memory) inspections as the extension makes them, through the engine
// process: per token count, a fresh engine process opens the model, runs one keep inspection, then
// answers the cursor's overlay row and column, token details both ways and one head's pattern.
// Reports the engine process's peak RSS (VmHWM), its RSS after the run, the inspection's time, the
// first query's time (it waits for the kept run's query sessions, graph/queryGraph.ts), the
// queries' median times over `--queries` cursor positions spread over the run, and the estimate
// of memoryEstimate.ts.
// usage: node out/tools/bench-kept.js <modelDir> <engineProcess.js> <tokens>... [--queries 9]
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { EngineHost } from '../src/engine/worker/engineHost';
import { residentBytes } from '../src/cli/bench';
import { loadTokenizer, type PromptTokenizer } from '../src/engine/sources/tokenizer';
import { aggregationWeights } from '../src/shared/overlay';
import { estimateInspection, formatBytes } from '../src/engine/memoryEstimate';
import { openCheckpoint } from '../src/engine/sources/checkpoint';
import { specFromCheckpoint } from '../src/engine/arch';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { queries: { type: 'string', default: '9' } } });
const [modelDir, engineScript, ...counts] = positionals;
if (!modelDir || !engineScript || counts.length === 0) {
  process.stderr.write('usage: bench-kept <modelDir> <engineProcess.js> <tokens>... [--queries 9]\n');
  process.exit(2);
}
const Q = Number(values.queries);

const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'then', 'it', 'saw', 'river', 'stone', 'light', 'house', 'green', 'bird', 'over', 'when', 'music', 'paper'];

/** A deterministic prompt of at least `tokens` tokens (cut by maxTokens to exactly that many). */
async function promptOfTokens(tok: PromptTokenizer, tokens: number): Promise<string> {
  let words = tokens;
  for (;;) {
    const text = Array.from({ length: words }, (_, i) => WORDS[(i * 7 + (i >> 3)) % WORDS.length]).join(' ');
    if ((await tok.encode(text)).length >= tokens) return text;
    words = Math.ceil(words * 1.3);
  }
}

/** The engine process: the child of this process running engineScript. */
function enginePid(): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(engineScript!)) return Number(d);
    } catch {
      // a process that ended while listing
    }
  }
  throw new Error('engine process not found');
}

function status(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const b = residentBytes(key, pid);
  if (b === null) throw new Error(`no ${key} for process ${pid} (this benchmark reads /proc)`);
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const tok = await loadTokenizer(modelDir!);
  const dims = specFromCheckpoint(openCheckpoint(modelDir!)).dims;
  const gb = (n: number) => (n / 2 ** 30).toFixed(2);
  process.stdout.write(`# ${modelDir}: ${dims.modelType}, ${dims.layers} layers × ${dims.heads} heads (${dims.kvHeads} KV), d ${dims.headDim}; ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
  process.stdout.write('tokens\tinspectMs\tpeakRssGiB\trssAfterGiB\tloadedRssGiB\testimateGiB\tkeptGiB\tfirstQueryMs\toverlayFromMs\toverlayToMs\ttokenDetailFromMs\ttokenDetailToMs\tpatternMs\tload\n');
  for (const c of counts) {
    const T = Number(c);
    const host = new EngineHost({ engineScript: engineScript!, maxHeapMb: 8192 });
    try {
      const info = await host.open({ modelDir: modelDir!, device: 'cpu' });
      const pid = enginePid();
      const loaded = status(pid, 'VmRSS');
      const prompt = await promptOfTokens(tok, T);
      const t0 = performance.now();
      const { result, runId, warnings } = await host.inspect({ prompt, maxTokens: T }, true);
      const inspectMs = performance.now() - t0;
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const peak = status(pid, 'VmHWM');
      const after = status(pid, 'VmRSS');
      const n = result.tokens.length;
      const weights = aggregationWeights(info.layers, info.heads, new Map(), 'mean', null);
      const s0 = performance.now();
      await host.query(runId, { what: 'overlay', q: n - 1, direction: 'from', weights });
      const first = performance.now() - s0;
      const time = async (f: (q: number) => Promise<unknown>) => {
        const ts: number[] = [];
        for (let i = 0; i < Q; i++) {
          const q = Math.floor(((i * 7919) % Q) / Q * n);
          const s = performance.now();
          await f(q);
          ts.push(performance.now() - s);
        }
        return median(ts);
      };
      const from = await time((q) => host.query(runId, { what: 'overlay', q, direction: 'from', weights }));
      const to = await time((q) => host.query(runId, { what: 'overlay', q, direction: 'to', weights }));
      const detail = await time((q) => host.query(runId, { what: 'tokenDetail', q, direction: 'from', weights, top: 5 }));
      const detailTo = await time((q) => host.query(runId, { what: 'tokenDetail', q, direction: 'to', weights, top: 5 }));
      let patternMs = NaN;
      try {
        const s = performance.now();
        await host.query(runId, { what: 'pattern', layer: 0, head: 0 });
        patternMs = performance.now() - s;
      } catch (e) {
        process.stderr.write(`pattern: ${(e as Error).message}\n`);
      }
      const est = estimateInspection(dims, n);
      process.stdout.write(
        [n, inspectMs.toFixed(0), gb(peak), gb(after), gb(loaded), gb(est.total), gb(est.kept), first.toFixed(0), from.toFixed(1), to.toFixed(1), detail.toFixed(1), detailTo.toFixed(1), patternMs.toFixed(0), os.loadavg()[0]!.toFixed(1)].join('\t') + '\n',
      );
      process.stderr.write(`estimate for ${n}: ${formatBytes(est.total)} (weights ${formatBytes(est.weights)}, kept ${formatBytes(est.kept)}, transient ${formatBytes(est.transient)}, activations ${formatBytes(est.activations)})\n`);
    } catch (e) {
      process.stdout.write(`${T}\trefused or failed: ${(e as Error).message}\n`);
    } finally {
      await host.dispose();
    }
  }
}

void main();
