// Host side of the engine worker: typed requests with promises, cancellation of superseded
// inspections, and crash containment (the worker is restarted and the model re-opened on the next
// request; pending requests fail with a clear RUNTIME error).
import { Worker } from 'node:worker_threads';
import { EngineError } from '../errors';
import type { RunRequest, RunResult } from '../run';
import type { ModelInfo, OpenParams, RunQuery, TokenDetail, WorkerReply, WorkerRequest } from './calls';
import type { GenerateRequest, GeneratedToken } from '../generate';

type Pending = { resolve: (v: WorkerReply) => void; reject: (e: Error) => void; onProgress?: (m: string) => void; onToken?: (t: GeneratedToken) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface EngineHostOptions {
  /** path of the bundled dist/engineWorker.js */
  workerScript: string;
  /** V8 heap limit of the worker in MB (native onnxruntime memory is not counted) */
  maxHeapMb?: number;
  onCrash?: (message: string) => void;
}

export class EngineHost {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private openParams: OpenParams | undefined;
  private opened: Promise<ModelInfo> | undefined;
  private latestInspect = 0;
  private inflight: Promise<WorkerReply> | undefined;
  private disposed = false;
  crashes = 0;

  constructor(private readonly opts: EngineHostOptions) {}

  private ensureWorker(): Worker {
    if (this.disposed) throw new EngineError('CANCELLED', 'the engine was shut down');
    if (this.worker) return this.worker;
    const w = new Worker(this.opts.workerScript, { resourceLimits: { maxOldGenerationSizeMb: this.opts.maxHeapMb ?? 4096 } });
    w.on('message', (msg: WorkerReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      if ('kind' in msg && msg.kind === 'progress') {
        p.onProgress?.(msg.message);
        return;
      }
      if ('kind' in msg && msg.kind === 'token') {
        p.onToken?.(msg.token);
        return;
      }
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new EngineError(msg.error.code, msg.error.message));
    });
    const died = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.opened = undefined;
      if (this.disposed) return;
      this.crashes++;
      const message = `the engine worker stopped (${why}); it will restart on the next run`;
      for (const p of this.pending.values()) p.reject(new EngineError('RUNTIME', message));
      this.pending.clear();
      this.opts.onCrash?.(message);
    };
    w.on('error', (e) => died(e.message.split('\n')[0] ?? 'error'));
    w.on('exit', (code) => died(`exit code ${code}`));
    this.worker = w;
    return w;
  }

  private send(req: DistributiveOmit<WorkerRequest, 'id'>, onProgress?: (m: string) => void): { id: number; done: Promise<WorkerReply> } {
    const w = this.ensureWorker();
    const id = this.nextId++;
    const done = new Promise<WorkerReply>((resolve, reject) => this.pending.set(id, { resolve, reject, onProgress }));
    w.postMessage({ ...req, id } as WorkerRequest);
    return { id, done };
  }

  /** Opens (or re-opens) a model in the worker. */
  open(params: OpenParams, onProgress?: (m: string) => void): Promise<ModelInfo> {
    this.openParams = params;
    const p = this.send({ kind: 'open', params }, onProgress).done.then((r) => (r as Extract<WorkerReply, { kind: 'open'; ok: true }>).info);
    this.opened = p;
    p.catch(() => {
      if (this.opened === p) this.opened = undefined;
    });
    return p;
  }

  /** The model open in the worker, re-opened after a crash. */
  async model(): Promise<ModelInfo> {
    if (this.opened) return this.opened;
    if (!this.openParams) throw new EngineError('MODEL', 'no model is open; choose one with "AttnScope: Select Model"');
    return this.open(this.openParams);
  }

  /**
   * Runs an inspection. A newer call supersedes older ones: at most one inspection is in the worker
   * at a time, a waiting one that is superseded is never sent, and a superseded in-flight one has
   * its result dropped. Superseded calls reject with CANCELLED.
   */
  async inspect(request: RunRequest, keep = false): Promise<{ result: RunResult; warnings: string[]; runId: number }> {
    const ticket = ++this.latestInspect;
    const superseded = () => new EngineError('CANCELLED', 'superseded by a newer run');
    await this.model();
    while (this.inflight) {
      await this.inflight.catch(() => undefined);
      if (ticket !== this.latestInspect) throw superseded();
    }
    if (ticket !== this.latestInspect) throw superseded();
    const run = this.send({ kind: 'inspect', request, keep }).done;
    this.inflight = run;
    try {
      const reply = await run;
      if (ticket !== this.latestInspect) throw superseded();
      const r = reply as Extract<WorkerReply, { kind: 'inspect'; ok: true }>;
      return { result: r.result, warnings: r.warnings, runId: r.runId };
    } finally {
      if (this.inflight === run) this.inflight = undefined;
    }
  }

  /** Asks about the last kept run (see inspect's `keep`). */
  async query(runId: number, query: RunQuery): Promise<{ matrix?: Float32Array; detail?: TokenDetail }> {
    const r = (await this.send({ kind: 'query', runId, query }).done) as Extract<WorkerReply, { kind: 'query'; ok: true }>;
    return { matrix: r.matrix, detail: r.detail };
  }

  /** Saves the kept run (made with inspect(…, keep)) to an .attnrun file (with tensors unless `opts.tensors` is false). */
  async saveRun(runId: number, file: string, opts: { tensors?: boolean; autoSaved?: boolean } = {}): Promise<string> {
    const r = (await this.send({ kind: 'saveRun', runId, file, ...opts }).done) as Extract<WorkerReply, { kind: 'saveRun'; ok: true }>;
    return r.file;
  }

  /**
   * Generates text in the worker; tokens stream to `onToken`. The returned `stop()` ends the
   * generation after the token being decoded.
   */
  generate(request: GenerateRequest, onToken: (t: GeneratedToken) => void): { done: Promise<Extract<WorkerReply, { kind: 'generate'; ok: true }>['result']>; stop: () => void } {
    const id = this.nextId;
    const { done } = this.send({ kind: 'generate', request });
    this.pending.get(id)!.onToken = onToken;
    return {
      done: done.then((r) => (r as Extract<WorkerReply, { kind: 'generate'; ok: true }>).result),
      stop: () => this.worker?.postMessage({ kind: 'stop', id: 0, target: id } as WorkerRequest),
    };
  }

  /** Test hook: makes the worker crash in the given way. */
  crashForTest(how: 'throw' | 'exit' | 'oom'): Promise<unknown> {
    return this.send({ kind: 'crash', how }).done;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const p of this.pending.values()) p.reject(new EngineError('CANCELLED', 'the engine was shut down'));
    this.pending.clear();
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
