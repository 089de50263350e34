// The engine's worker thread: owns the model and onnxruntime sessions, so a blocking run or a crash
// never stalls or takes down the host (the extension host or a test).
import { parentPort } from 'node:worker_threads';
import { isEngineError, oneLine } from '../errors';
import { Model } from '../model';
import { runInspection } from '../run';
import type { WorkerReply, WorkerRequest } from './workerProtocol';

let model: Model | undefined;
const port = parentPort;
if (!port) throw new Error('engineWorker must run in a worker thread');

function reply(msg: WorkerReply): void {
  if ('result' in msg) {
    const transfer = [...msg.result.patterns.values()].map((p) => p.buffer as ArrayBuffer);
    port!.postMessage(msg, transfer);
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
        const result = await runInspection(model, req.request, (w) => warnings.push(w));
        reply({ id: req.id, ok: true, kind: 'inspect', result, warnings });
        return;
      }
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
  chain = chain.then(() => handle(req));
});
