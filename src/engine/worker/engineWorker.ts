// The engine's worker thread: owns the model and onnxruntime sessions, so a blocking run or a crash
// never stalls or takes down the host (the extension host or a test).
import { parentPort } from 'node:worker_threads';
import { isEngineError, oneLine } from '../errors';
import { Model } from '../model';
import { runInspection } from '../run';
import { answer, type KeptRun } from '../analysis/kept';
import { generate } from '../generate';
import { savedRunFrom, writeRunFile } from '../runs/runFile';
import { noInterventions } from '../../shared/interventions';
import type { RunResult, RunRequest } from '../run';
import { EngineError } from '../errors';
import type { WorkerReply, WorkerRequest } from './calls';

let model: Model | undefined;
let kept: (KeptRun & { result: RunResult; request: RunRequest }) | undefined;
const stopped = new Set<number>();
let runCounter = 0;
const port = parentPort;
if (!port) throw new Error('engineWorker must run in a worker thread');

function reply(msg: WorkerReply): void {
  if ('result' in msg && 'patterns' in msg.result) {
    const transfer = [...msg.result.patterns.values()].map((p) => p.buffer as ArrayBuffer);
    port!.postMessage(msg, transfer);
  } else if ('matrix' in msg && msg.matrix) {
    port!.postMessage(msg, [msg.matrix.buffer as ArrayBuffer]);
  } else port!.postMessage(msg);
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    switch (req.kind) {
      case 'open': {
        await model?.release();
        model = undefined;
        reply({ id: req.id, kind: 'progress', message: `Loading ${req.params.modelDir}` });
        const m = await Model.open(req.params.modelDir, { device: req.params.device, cacheRoot: req.params.cacheRoot, threads: req.params.threads });
        model = m;
        const d = m.dims;
        reply({
          id: req.id, ok: true, kind: 'open',
          info: { dir: m.dir, hash: m.hash, arch: d.arch, modelType: d.modelType, layers: d.layers, heads: d.heads, kvHeads: d.kvHeads, hiddenSize: d.hiddenSize, vocabSize: d.vocabSize, maxPositions: d.maxPositions, device: m.device, deviceNote: m.deviceNote, loadMs: m.loadMs },
        });
        return;
      }
      case 'inspect': {
        if (!model) throw Object.assign(new Error('no model is open; open one first'), { engineCode: 'MODEL' });
        const warnings: string[] = [];
        kept = undefined;
        const request = req.keep ? { ...req.request, attention: 'all' as const } : req.request;
        const result = await runInspection(model, request, (w) => warnings.push(w));
        const runId = ++runCounter;
        if (req.keep) {
          // The patterns stay here for later queries; the host gets the summaries only.
          kept = { runId, T: result.tokens.length, L: model.dims.layers, H: model.dims.heads, patterns: result.patterns, result: { ...result }, request: req.request };
          result.patterns = new Map();
          result.attentionHeads = [];
          result.allLogits = undefined; // these stay here for saveRun
          result.hidden = undefined;
        }
        reply({ id: req.id, ok: true, kind: 'inspect', result, warnings, runId });
        return;
      }
      case 'query': {
        if (!kept || kept.runId !== req.runId) throw new EngineError('CANCELLED', 'that run is no longer kept; a newer run replaced it');
        const q = req.query;
        if (q.what === 'pattern' && (q.layer < 0 || q.layer >= kept.L || q.head < 0 || q.head >= kept.H)) throw new EngineError('BAD_ARGUMENT', `head ${q.layer}.${q.head} does not exist`);
        if (q.what === 'tokenDetail' && !(q.q >= 0 && q.q < kept.T)) throw new EngineError('BAD_ARGUMENT', `token ${q.q} is outside the run`);
        if ((q.what === 'aggregate' || q.what === 'tokenDetail') && q.weights.length !== kept.L * kept.H) throw new EngineError('BAD_ARGUMENT', 'weights must have one value per head');
        reply({ id: req.id, ok: true, kind: 'query', ...answer(kept, q) });
        return;
      }
      case 'saveRun': {
        if (!kept || kept.runId !== req.runId) throw new EngineError('CANCELLED', 'that run is no longer kept; a newer run replaced it');
        // Every position's logits: kept from the run, or computed now from its final hidden states.
        const allLogits = kept.result.allLogits ?? (await model!.headLogits(kept.result.hidden!));
        const opts = { tensors: req.tensors !== false, autoSaved: req.autoSaved === true, decode: (id: number) => model!.tokenizer.decodeToken(id) };
        writeRunFile(req.file, savedRunFrom({ ...kept.result, allLogits, patterns: kept.patterns }, kept.request.prompt, kept.request.interventions ?? noInterventions(), opts));
        reply({ id: req.id, ok: true, kind: 'saveRun', file: req.file });
        return;
      }
      case 'generate': {
        if (!model) throw Object.assign(new Error('no model is open; open one first'), { engineCode: 'MODEL' });
        const r = await generate(model, req.request, (token) => reply({ id: req.id, kind: 'token', token }), () => stopped.has(req.id));
        stopped.delete(req.id);
        reply({ id: req.id, ok: true, kind: 'generate', result: { ...r, promptTokens: r.promptTokens.length } });
        return;
      }
      case 'stop':
        return;
      case 'crash':
        if (req.how === 'exit') process.exit(3);
        if (req.how === 'oom') {
          const hog: number[][] = [];
          for (;;) hog.push(new Array(1e6).fill(1.5));
        }
        setImmediate(() => {
          throw new Error('deliberate crash');
        });
        return;
    }
  } catch (e) {
    const code = isEngineError(e) ? e.code : ((e as { engineCode?: 'MODEL' }).engineCode ?? 'RUNTIME');
    reply({ id: req.id, ok: false, error: { code, message: oneLine(e) } });
  }
}

// One request at a time, in order: onnxruntime sessions are not re-entrant here.
let chain: Promise<void> = Promise.resolve();
port.on('message', (req: WorkerRequest) => {
  // A stop is noted at once (between decoding steps), not queued behind the generation it stops.
  if (req.kind === 'stop') {
    stopped.add(req.target);
    return;
  }
  chain = chain.then(() => handle(req));
});
