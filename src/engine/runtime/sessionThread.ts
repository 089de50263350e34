// onnxruntime sessions on a worker thread. onnxruntime-node's `run` blocks the thread that calls it
// for the whole forward pass (its promise wraps a synchronous native call), so an engine process
// that ran its sessions on its main thread could neither answer a query about the kept run nor hear
// a stop while a long inspection ran. With a SessionThread the main thread stays free: the forward
// runs here, inputs are copied in (structured clone), outputs are allocated here and transferred back
// without a copy.
//
// The thread runs the same bundle as its parent (dist/engineProcess.js): that file calls
// serveSessions() instead of its own main when isSessionThread().
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { EngineError, isEngineError, oneLine, type ErrorCode } from '../errors';
import { createSession, ort, type Device, type DeviceRequest, type SessionResult } from './ortSession';

const ROLE = 'attnscope-onnxruntime-sessions';

type TensorType = 'float32' | 'float64' | 'int64';
type TensorData = Float32Array | Float64Array | BigInt64Array;

/** What Model needs of a session: run with pre-shaped outputs, release. */
export interface RunnableSession {
  /** `fetch` names the outputs with their type and dims; the result holds their data */
  run(feeds: Record<string, ort.Tensor>, fetch: Record<string, ort.Tensor>): Promise<Record<string, { data: TensorData }>>;
  release(): Promise<void>;
}

/** A session on the calling thread (the CLI, tests): outputs are written straight into `fetch`'s buffers. */
export function inProcessSession(s: ort.InferenceSession): RunnableSession {
  return {
    run: async (feeds, fetch) => (await s.run(feeds, fetch)) as Record<string, { data: TensorData }>,
    release: () => s.release(),
  };
}

interface WireTensor {
  type: TensorType;
  data?: TensorData;
  dims: number[];
}


type ToThread =
  | { id: number; op: 'create'; key: string; path: string; device: DeviceRequest; threads?: number }
  | { id: number; op: 'run'; key: string; feeds: Record<string, WireTensor>; fetch: Record<string, WireTensor> }
  | { id: number; op: 'release'; key: string };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

type FromThread = { id: number; ok: true; value: unknown } | { id: number; ok: false; code?: ErrorCode; message: string };

export function isSessionThread(): boolean {
  return !isMainThread && (workerData as { role?: string } | null)?.role === ROLE;
}

/** The worker thread's loop: creates, runs and releases sessions by key, one message at a time. */
export function serveSessions(): void {
  const port = parentPort!;
  const sessions = new Map<string, ort.InferenceSession>();
  let chain = Promise.resolve();
  port.on('message', (m: ToThread) => {
    chain = chain.then(async () => {
      try {
        if (m.op === 'create') {
          const r = await createSession(m.path, m.device, m.threads);
          sessions.set(m.key, r.session);
          port.postMessage({ id: m.id, ok: true, value: { device: r.device, fallback: r.fallback } } satisfies FromThread);
        } else if (m.op === 'run') {
          const s = sessions.get(m.key);
          if (!s) throw new Error(`internal: no session ${m.key}`);
          const feeds: Record<string, ort.Tensor> = {};
          for (const [n, t] of Object.entries(m.feeds)) feeds[n] = new ort.Tensor(t.type, t.data!, t.dims);
          const fetch: Record<string, ort.Tensor> = {};
          const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
          for (const [n, t] of Object.entries(m.fetch)) fetch[n] = new ort.Tensor(t.type, t.type === 'int64' ? new BigInt64Array(size(t.dims)) : t.type === 'float64' ? new Float64Array(size(t.dims)) : new Float32Array(size(t.dims)), t.dims);
          await s.run(feeds, fetch);
          const value: Record<string, TensorData> = {};
          for (const [n, t] of Object.entries(fetch)) value[n] = t.data as TensorData;
          port.postMessage({ id: m.id, ok: true, value } satisfies FromThread, Object.values(value).map((d) => d.buffer as ArrayBuffer));
        } else {
          await sessions.get(m.key)?.release();
          sessions.delete(m.key);
          port.postMessage({ id: m.id, ok: true, value: null } satisfies FromThread);
        }
      } catch (e) {
        port.postMessage({ id: m.id, ok: false, ...(isEngineError(e) ? { code: e.code } : {}), message: isEngineError(e) ? e.message : oneLine(e) } satisfies FromThread);
      }
    });
  });
}

/** The parent's side: sessions created and run on one worker thread (runs are serialised there). */
export class SessionThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 1;
  private dead: Error | undefined;

  /** `script`: the bundle to start the thread from (it must call serveSessions() when isSessionThread()) */
  constructor(script: string) {
    this.worker = new Worker(script, { workerData: { role: ROLE } });
    this.worker.on('message', (m: FromThread) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(m.code ? new EngineError(m.code, m.message) : new Error(m.message));
    });
    const fail = (e: Error) => {
      this.dead = new EngineError('RUNTIME', `onnxruntime's thread stopped (${oneLine(e)})`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  private ask(msg: DistributiveOmit<ToThread, 'id'>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /** A session of the graph at `path` on this thread (device choice as createSession). */
  async create(key: string, path: string, device: DeviceRequest, threads?: number): Promise<Omit<SessionResult, 'session'> & { session: RunnableSession }> {
    const r = (await this.ask({ op: 'create', key, path, device, ...(threads ? { threads } : {}) })) as { device: Device; fallback?: string };
    const session: RunnableSession = {
      run: async (feeds, fetch) => {
        const wire = (ts: Record<string, ort.Tensor>, withData: boolean): Record<string, WireTensor> =>
          Object.fromEntries(Object.entries(ts).map(([n, t]) => [n, { type: t.type as TensorType, dims: [...t.dims], ...(withData ? { data: t.data as TensorData } : {}) }]));
        const out = (await this.ask({ op: 'run', key, feeds: wire(feeds, true), fetch: wire(fetch, false) })) as Record<string, TensorData>;
        return Object.fromEntries(Object.entries(out).map(([n, data]) => [n, { data }]));
      },
      release: async () => {
        await this.ask({ op: 'release', key }).catch(() => undefined);
      },
    };
    return { ...r, session };
  }

  async terminate(): Promise<void> {
    this.dead ??= new EngineError('RUNTIME', "onnxruntime's thread was closed");
    await this.worker.terminate();
  }
}
