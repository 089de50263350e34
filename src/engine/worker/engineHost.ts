// Host side of the engine process: a typed call() over the call map (calls.ts), superseding of
// older inspections, and containment: the engine runs in a child process, so a native abort, a
// JavaScript heap exhaustion or a kill by the system for lack of memory ends that process only.
// Pending calls then fail with one RUNTIME line that says what happened (with the tokens and the
// estimated memory of the run in progress when memory was the likely cause), and the next call
// starts a new process and re-opens the model.
import { fork, type ChildProcess } from 'node:child_process';
import { EngineError } from '../errors';
import { formatBytes } from '../memoryEstimate';
import type { RunQuery } from '../analysis/kept';
import type { RunRequest } from '../run';
import type { GenerateRequest, GeneratedToken } from '../generate';
import type { AblationRequest } from '../analysis/ablation';
import type { LensRequest } from '../analysis/lens';
import type { PatchRequest } from '../analysis/patching';
import { wallMs, type InspectTrace } from './calls';
import type { AblateReply, CallKind, CallParams, CallResult, CrashHow, FromEngine, GenerateReply, InspectReply, LensReply, ModelInfo, OpenParams, PatchReply, QueryReply, ToEngine, TokenLookup } from './calls';

interface Pending {
  kind: CallKind;
  // Method syntax: a call's typed resolve (CallResult<K>) is stored here and given the reply's value.
  resolve(value: unknown): void;
  reject(e: Error): void;
  onProgress?(message: string, step?: { done: number; total: number }): void;
  onToken?(token: GeneratedToken): void;
  onLoad?(tokens: number, estimatedBytes: number): void;
}

export interface CallHooks {
  /** `step`: for calls that count their steps (ablate) */
  onProgress?: (message: string, step?: { done: number; total: number }) => void;
  onToken?: (token: GeneratedToken) => void;
  /** the call's id, as soon as it is sent (generation uses it to stop) */
  onId?: (id: number) => void;
  /** an inspection's token count and estimated memory, before its forward pass starts */
  onLoad?: (tokens: number, estimatedBytes: number) => void;
}

export interface EngineHostOptions {
  /** path of the bundled dist/engineProcess.js */
  engineScript: string;
  /** V8 heap limit of the engine process in MB (native onnxruntime memory is not counted) */
  maxHeapMb?: number;
  onCrash?: (message: string) => void;
}

const STDERR_TAIL = 16 * 1024;

export class EngineHost {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private openParams: OpenParams | undefined;
  private opened: Promise<ModelInfo> | undefined;
  private latestInspect = 0;
  private inflight: Promise<InspectReply> | undefined;
  /** stops the inspection in flight (see inspect) */
  private stopInspect: (() => void) | undefined;
  private disposed = false;
  /** the run in progress as the engine process described it (for a death by memory) */
  private load: { tokens: number; estimatedBytes: number } | undefined;
  private stderrTail = '';
  private starts = 0;
  /** the calls sent while the inspection in flight is in the engine, by kind (its trace's `during`) */
  private sentDuring: Partial<Record<CallKind, number>> | undefined;
  /** the queries sent and not yet answered (an auto-save waits for them: see saveRun) */
  private readonly queries = new Set<Promise<QueryReply>>();
  crashes = 0;

  constructor(private readonly opts: EngineHostOptions) {}

  private ensureProcess(): ChildProcess {
    if (this.disposed) throw new EngineError('CANCELLED', 'the engine was shut down');
    if (this.child) return this.child;
    const heap = this.opts.maxHeapMb ?? 4096;
    // Run ids stay unique across restarts (a view keyed by run id never meets a new run under an old id).
    const runIdBase = this.starts++ * 1_000_000;
    const child = fork(this.opts.engineScript, [String(runIdBase)], {
      serialization: 'advanced',
      execArgv: [`--max-old-space-size=${heap}`],
      // Inside VS Code desktop the host's executable is Electron's: run it as plain Node.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.stderrTail = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-STDERR_TAIL);
    });
    child.on('message', (msg: FromEngine) => this.onMessage(msg));
    child.on('error', (e) => this.died(child, `could not start (${e.message.split('\n')[0]})`));
    child.on('exit', (code, signal) => this.died(child, this.describeExit(code, signal, heap)));
    this.child = child;
    return child;
  }

  private onMessage(msg: FromEngine): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    switch (msg.type) {
      case 'progress':
        p.onProgress?.(msg.message, msg.done !== undefined && msg.total !== undefined ? { done: msg.done, total: msg.total } : undefined);
        return;
      case 'token':
        p.onToken?.(msg.token);
        return;
      case 'load':
        this.load = { tokens: msg.tokens, estimatedBytes: msg.estimatedBytes };
        p.onLoad?.(msg.tokens, msg.estimatedBytes);
        return;
      case 'result':
        this.pending.delete(msg.id);
        if (p.kind === 'inspect') this.load = undefined;
        p.resolve(msg.value);
        return;
      case 'error':
        this.pending.delete(msg.id);
        if (p.kind === 'inspect') this.load = undefined;
        p.reject(new EngineError(msg.code, msg.message));
        return;
    }
  }

  private describeExit(code: number | null, signal: NodeJS.Signals | null, heapMb: number): string {
    return describeEngineExit({ code, signal, heapMb, stderrTail: this.stderrTail, load: this.load });
  }

  private died(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.opened = undefined;
    this.load = undefined;
    if (this.disposed) return;
    this.crashes++;
    const message = `the engine worker stopped: its process ${why}; it will restart on the next run`;
    for (const p of this.pending.values()) p.reject(new EngineError('RUNTIME', message));
    this.pending.clear();
    this.opts.onCrash?.(message);
  }

  /** One typed call to the engine process. */
  call<K extends CallKind>(kind: K, params: CallParams<K>, hooks: CallHooks = {}): Promise<CallResult<K>> {
    let child: ChildProcess;
    try {
      child = this.ensureProcess();
    } catch (e) {
      return Promise.reject(e);
    }
    const id = this.nextId++;
    const done = new Promise<CallResult<K>>((resolve, reject) => {
      this.pending.set(id, { kind, resolve, reject, onProgress: hooks.onProgress, onToken: hooks.onToken, onLoad: hooks.onLoad });
    });
    const msg: ToEngine = { type: 'call', id, kind, params };
    if (this.sentDuring) this.sentDuring[kind] = (this.sentDuring[kind] ?? 0) + 1;
    child.send(msg);
    hooks.onId?.(id);
    return done;
  }

  /**
   * A stop for one call: give `onId` to the call's hooks; `stop()` sends the engine a `stop` for the
   * call (at once, or as soon as it has its id) and `asked()` says whether it was called.
   */
  private stopper(): { stop: () => void; asked: () => boolean; onId: (id: number) => void } {
    let id: number | undefined;
    let asked = false;
    const send = () => {
      if (id !== undefined && this.child?.connected) this.child.send({ type: 'stop', target: id } satisfies ToEngine);
    };
    return {
      stop: () => {
        asked = true;
        send();
      },
      asked: () => asked,
      onId: (i) => {
        id = i;
        if (asked) send();
      },
    };
  }

  /** Opens (or re-opens) a model in the engine process; `signal` cancels a Hub download in progress. */
  open(params: OpenParams, onProgress?: (m: string) => void, signal?: AbortSignal): Promise<ModelInfo> {
    this.openParams = params;
    const stopper = this.stopper();
    const p = this.call('open', params, { onProgress, onId: stopper.onId });
    if (signal?.aborted) stopper.stop();
    else signal?.addEventListener('abort', stopper.stop, { once: true });
    this.opened = p;
    p.catch(() => {
      if (this.opened === p) this.opened = undefined;
    });
    return p;
  }

  /** The model open in the engine process, re-opened after a crash. */
  async model(): Promise<ModelInfo> {
    if (this.opened) return this.opened;
    if (!this.openParams) throw new EngineError('MODEL', 'no model is open; choose one with "AttnScope: Select Model"');
    return this.open(this.openParams);
  }

  /**
   * Runs an inspection. A newer call supersedes older ones: at most one inspection is in the engine
   * at a time, a waiting one that is superseded is never sent, and a superseded in-flight one is
   * stopped (its result dropped in the engine, so its kept run stays the last one returned).
   * Superseded calls reject with CANCELLED; so does one whose `signal` aborts (Cancel) before the
   * engine finished it.
   */
  async inspect(request: RunRequest, keep = false, signal?: AbortSignal, onLoad?: (tokens: number, estimatedBytes: number) => void): Promise<InspectReply> {
    const called = wallMs();
    const ticket = ++this.latestInspect;
    this.stopInspect?.();
    const superseded = () => new EngineError('CANCELLED', 'superseded by a newer run');
    await this.model();
    while (this.inflight) {
      await this.inflight.catch(() => undefined);
      if (ticket !== this.latestInspect) throw superseded();
    }
    if (ticket !== this.latestInspect) throw superseded();
    if (signal?.aborted) throw new EngineError('CANCELLED', 'the run was cancelled');
    const { stop, onId } = this.stopper();
    const sent = wallMs();
    const run = this.call('inspect', { request, keep }, { ...(onLoad ? { onLoad } : {}), onId });
    const during: Partial<Record<CallKind, number>> = {};
    this.sentDuring = during;
    this.inflight = run;
    this.stopInspect = stop;
    signal?.addEventListener('abort', stop, { once: true });
    try {
      const reply = await run;
      const trace: InspectTrace = { ...reply.trace, called, sent, arrived: wallMs(), during };
      if (ticket !== this.latestInspect) throw superseded();
      return { ...reply, trace };
    } finally {
      if (this.sentDuring === during) this.sentDuring = undefined;
      signal?.removeEventListener('abort', stop);
      if (this.inflight === run) {
        this.inflight = undefined;
        this.stopInspect = undefined;
      }
    }
  }

  /** Asks about the last kept run (see inspect's `keep`); answered while a newer run is in flight. */
  query(runId: number, query: RunQuery): Promise<QueryReply> {
    const p = this.call('query', { runId, query });
    this.queries.add(p);
    const done = () => this.queries.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Saves the kept run (made with inspect(…, keep)) to an .attnrun file (with tensors unless
   * `opts.tensors` is false). An auto-save (`autoSaved`) is made in the background: it takes the
   * engine's main thread for a while (the top-K at every position, the file; about 300 ms at 2,048
   * tokens), so it is sent after the queries asked in the same turn (a new run's overlay) and any
   * others in flight are answered, not in front of them.
   */
  async saveRun(runId: number, file: string, opts: { tensors?: boolean; autoSaved?: boolean } = {}): Promise<string> {
    if (opts.autoSaved) await this.queriesAnswered();
    return (await this.call('saveRun', { runId, file, ...opts })).file;
  }

  /** Resolves once the queries sent so far, and those sent in this turn of the event loop, are answered. */
  private async queriesAnswered(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queries.size) await Promise.allSettled([...this.queries]);
  }

  /**
   * Generates text in the engine process; tokens stream to `onToken`. The returned `stop()` ends the
   * generation after the token being decoded.
   */
  generate(request: GenerateRequest, onToken: (t: GeneratedToken) => void): { done: Promise<GenerateReply>; stop: () => void } {
    const { stop, onId } = this.stopper();
    return { done: this.call('generate', { request }, { onToken, onId }), stop };
  }

  /**
   * Ranks heads by ablation in the engine process (one masked run per head, after any run in
   * progress). `onProgress` gets done/total after the baseline (0) and after each head; `stop()`
   * cancels between head runs (the promise then rejects with CANCELLED).
   */
  ablate(request: AblationRequest, onProgress?: (done: number, total: number) => void): { done: Promise<AblateReply>; stop: () => void } {
    return this.stoppableJob('ablate', { request }, onProgress);
  }

  /**
   * A long analysis (one run per head) after the model is open: done/total progress, and a `stop()`
   * that may be called at once (it is sent as soon as the call has its id) and cancels between runs.
   */
  private stoppableJob<K extends 'ablate' | 'patch'>(kind: K, params: CallParams<K>, onProgress?: (done: number, total: number) => void): { done: Promise<CallResult<K>>; stop: () => void } {
    const { stop, asked, onId } = this.stopper();
    const done = (async () => {
      await this.model();
      const r = await this.call(kind, params, {
        onProgress: (_m, step) => {
          if (step) onProgress?.(step.done, step.total);
        },
        onId,
      });
      // Cancel means no result: when the engine had already finished before it heard the stop,
      // the result is dropped all the same.
      if (asked()) {
        const n = r.heads.length;
        throw new EngineError('CANCELLED', `${kind === 'ablate' ? 'head ablation' : 'activation patching'} was cancelled after ${n} of ${n} heads (it had just finished; the result was dropped)`);
      }
      return r;
    })();
    return { done, stop };
  }

  /** Empties the compiled-model cache (the open model's entry is kept). */
  clearCache(root?: string): Promise<CallResult<'clearCache'>> {
    return this.call('clearCache', { root });
  }

  /**
   * The logit lens at one position (one run, after any run in progress). `signal` stops it: before
   * the engine process starts it, it is dropped there (CANCELLED) and costs no forward pass; once
   * started, it finishes and its result comes back.
   */
  async lens(request: LensRequest, signal?: AbortSignal): Promise<LensReply> {
    await this.model();
    if (signal?.aborted) throw new EngineError('CANCELLED', 'the logit lens was for a run that was replaced by a newer one');
    const { stop, onId } = this.stopper();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await this.call('lens', { request }, { onId });
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  /**
   * Activation patching per head in the engine process (clean → corrupt, one run per head, after
   * any run in progress). `onProgress` gets done/total after the corrupt baseline (0) and after each
   * head; `stop()` cancels between runs (the promise then rejects with CANCELLED).
   */
  patch(request: PatchRequest, onProgress?: (done: number, total: number) => void): { done: Promise<PatchReply>; stop: () => void } {
    return this.stoppableJob('patch', { request }, onProgress);
  }

  /** Looks a text (the tokens it encodes to) or an id (its text) up in the open model's vocabulary. */
  async lookupToken(what: { text: string } | { id: number }): Promise<TokenLookup> {
    await this.model();
    return this.call('lookupToken', what);
  }

  /** Test hook: makes the engine process die in the given way. */
  crashForTest(how: CrashHow): Promise<unknown> {
    return this.call('crash', { how });
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const p of this.pending.values()) p.reject(new EngineError('CANCELLED', 'the engine was shut down'));
    this.pending.clear();
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 2000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.disconnect?.();
      child.kill('SIGTERM');
    });
  }
}

/** Why the engine process ended, in one line (after "its process …"). */
export function describeEngineExit(x: {
  code: number | null;
  signal: NodeJS.Signals | null;
  heapMb: number;
  /** the end of what the process wrote to stderr */
  stderrTail: string;
  /** the run in progress, as the engine described it */
  load?: { tokens: number; estimatedBytes: number };
}): string {
  const { code, signal, heapMb, load } = x;
  const tail = x.stderrTail;
  const run = load ? `; the run had ${load.tokens.toLocaleString('en-US')} tokens and needed about ${formatBytes(load.estimatedBytes)}` : '';
  if (/heap out of memory|Reached heap limit/i.test(tail)) return `ran out of JavaScript memory (heap limit ${heapMb} MB)${run}`;
  if (signal === 'SIGKILL') return `was killed (SIGKILL), most likely by the system for lack of memory${run}; try a shorter prompt or a lower attnscope.maxTokens`;
  const panic = /panicked at [^\n]*\n([^\n]+)/.exec(tail) ?? /(terminate called[^\n]*)/.exec(tail);
  const lib = /tokenizers/.test(tail) ? ' in the tokenizers library (check the model\'s tokenizer.json)' : /onnxruntime/i.test(tail) ? ' in onnxruntime' : '';
  if (signal === 'SIGABRT' || code === 134) return `aborted in native code${lib}${panic ? ` (${panic[1]!.trim().slice(0, 200)})` : ''}`;
  if (signal) return `ended by ${signal}`;
  const last = tail.split('\n').map((l) => l.trim()).filter((l) => l && !/^at\s/.test(l) && !/^Node\.js v/.test(l)).pop();
  return `exited with code ${code}${last && code !== 0 ? ` (${last.slice(0, 200)})` : ''}`;
}

/**
 * Where one inspection's time went, in ms, from EngineHost.inspect being called to its reply
 * arriving (the stages add up to that span): waiting in the host (for the model, an earlier
 * inspection), the call's way to the engine process, waiting there behind earlier model calls,
 * tokenizing, preparing the inputs, the forward pass, the work after it (of which the kept state),
 * the rest of the run, setting up the kept run's queries, and the reply's way back (serializing,
 * the pipe, the host's event loop). Then the queries the engine answered meanwhile and the calls
 * the host sent meanwhile.
 */
export function formatInspectTrace(trace: InspectTrace, timings: { tokenizeMs: number; runMs: number; prepMs?: number; finishMs?: number; keptMs?: number }): string {
  const t = trace;
  const ms = (x: number) => Math.max(0, x).toFixed(0);
  const prep = timings.prepMs ?? 0;
  const finish = timings.finishMs ?? 0;
  const engineRun = t.ran - t.started;
  const parts = [
    `host wait ${ms((t.sent ?? t.received) - (t.called ?? t.sent ?? t.received))}`,
    `to engine ${ms(t.received - (t.sent ?? t.received))}`,
    `queued ${ms(t.started - t.received)}`,
    `tokenize ${ms(timings.tokenizeMs)}`,
    `prep ${ms(prep)}`,
    `forward ${ms(timings.runMs)}`,
    `after forward ${ms(finish)}${timings.keptMs !== undefined ? ` (kept state ${ms(timings.keptMs)})` : ''}`,
    `other ${ms(engineRun - timings.tokenizeMs - prep - timings.runMs - finish)}`,
    `query setup ${ms(t.replied - t.ran)}`,
    `reply ${ms((t.arrived ?? t.replied) - t.replied)}`,
  ];
  const during = Object.entries(t.during ?? {}).map(([k, n]) => `${k}×${n}`);
  return `${parts.join(', ')}; the engine answered ${t.queries} ${t.queries === 1 ? 'query' : 'queries'} meanwhile (${ms(t.queryMs)} ms)${during.length ? `; sent meanwhile: ${during.join(', ')}` : ''}`;
}
