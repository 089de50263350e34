// The engine process: owns the model and onnxruntime sessions in a child process of the host (the
// extension host, `attnscope bench --views`, tests), so a blocking run, a native abort (the
// tokenizers binding, onnxruntime) or a death by memory never takes the host down. Started by
// EngineHost with an IPC channel and structured-clone serialization; one handler per call kind.
import { isEngineError, oneLine, EngineError } from '../errors';
import { Model } from '../model';
import { runInspection, type RunResult, type RunRequest } from '../run';
import { answerFast, patternInto, qkSource, type KeptRun } from '../analysis/kept';
import { QueryGraph } from '../graph/queryGraph';
import { generate } from '../generate';
import { ablateHeads } from '../analysis/ablation';
import { logitLens } from '../analysis/lens';
import { patchHeads } from '../analysis/patching';
import { MAX_SAVED_VALUES, RUN_TOP_K, savedRunFrom, writeRunFile } from '../runs/runFile';
import { noInterventions } from '../../shared/interventions';
import { estimateInspectionBytes } from '../memoryEstimate';
import { clearCache } from '../runtime/modelCache';
import { formatProgress, resolveModelSource } from '../sources/hub';
import { isSessionThread, serveSessions } from '../runtime/sessionThread';
import { wallMs, type CallKind, type CallParams, type CallResult, type FromEngine, type ToEngine } from './calls';

let model: Model | undefined;
/** the open model's thread setting (the kept run's query sessions use it too) */
let threads: number | undefined;
let kept: (KeptRun & { result: RunResult; request: RunRequest }) | undefined;
const stopped = new Set<number>();
/** the open call downloading a model, by call id (a `stop` message aborts it) */
const aborts = new Map<number, AbortController>();
/** run ids start where the host says, so they stay unique across restarts of this process */
let runCounter = Number(process.argv[2]) || 0;
/** when each call in this process arrived (wallMs), for the inspection's trace */
const arrivedAt = new Map<number, number>();
/** the queries answered so far and their ms (an inspection's trace counts those answered while it was here) */
const queryLog = { n: 0, ms: 0 };

function send(msg: FromEngine): void {
  process.send?.(msg);
}

function requireModel(): Model {
  if (!model) throw new EngineError('MODEL', 'no model is open; open one first');
  return model;
}

function keptRun(runId: number): NonNullable<typeof kept> {
  if (!kept || kept.runId !== runId) throw new EngineError('CANCELLED', 'that run is no longer kept; a newer run replaced it');
  return kept;
}

/** A query about the kept run, its arguments checked against the run. */
function answerQuery(p: CallParams<'query'>): Promise<CallResult<'query'>> {
  const k = keptRun(p.runId);
  const q = p.query;
  if ((q.what === 'pattern' || q.what === 'patternTile') && !(q.layer >= 0 && q.layer < k.L && q.head >= 0 && q.head < k.H)) throw new EngineError('BAD_ARGUMENT', `head ${q.layer}.${q.head} does not exist`);
  if ((q.what === 'tokenDetail' || q.what === 'rollout' || q.what === 'overlay') && !(Number.isInteger(q.q) && q.q >= 0 && q.q < k.T)) throw new EngineError('BAD_ARGUMENT', `token ${q.q} is outside the run`);
  if (q.what === 'overlay' && q.direction !== 'from' && q.direction !== 'to') throw new EngineError('BAD_ARGUMENT', `direction ${String(q.direction)} is neither from nor to`);
  if ((q.what === 'aggregate' || q.what === 'tokenDetail' || q.what === 'rollout' || q.what === 'overlay') && q.weights.length !== k.L * k.H) throw new EngineError('BAD_ARGUMENT', 'weights must have one value per head');
  return answerFast(k, q);
}

type Handlers = { [K in CallKind]: (params: CallParams<K>, id: number) => Promise<CallResult<K>> };

const handlers: Handlers = {
  async open(p, id) {
    // modelDir is a folder or a Hub id: resolved (found in the Hugging Face cache or downloaded,
    // with progress; a `stop` message cancels) before the open model is released.
    if (stopped.delete(id)) throw new EngineError('CANCELLED', `opening ${p.modelDir} was cancelled`);
    const abort = new AbortController();
    aborts.set(id, abort);
    let dir: string;
    try {
      dir = (await resolveModelSource(p.modelDir, { signal: abort.signal, onProgress: (pr) => send({ type: 'progress', id, message: formatProgress(pr) }) })).dir;
    } finally {
      aborts.delete(id);
      stopped.delete(id);
    }
    await model?.release();
    model = undefined;
    kept = undefined;
    send({ type: 'progress', id, message: `Loading ${p.modelDir}` });
    const m = await Model.open(dir, { device: p.device, cacheRoot: p.cacheRoot, threads: p.threads, warm: 'kept', sessionThread: __filename });
    model = m;
    threads = p.threads;
    const d = m.dims;
    return { dir: m.dir, hash: m.hash, arch: d.arch, modelType: d.modelType, layers: d.layers, heads: d.heads, kvHeads: d.kvHeads, hiddenSize: d.hiddenSize, vocabSize: d.vocabSize, maxPositions: d.maxPositions, device: m.device, deviceNote: m.deviceNote, loadMs: m.loadMs };
  },

  async inspect(p, id) {
    const started = wallMs();
    const received = arrivedAt.get(id) ?? started;
    const queriesBefore = { ...queryLog };
    const m = requireModel();
    if (stopped.delete(id)) throw new EngineError('CANCELLED', 'the run was stopped before it started');
    const warnings: string[] = [];
    // A kept run fetches no patterns: every layer's queries, keys and row lse stay here (bounded,
    // O(L·(H + KV)·T·d)) and later queries compute the probabilities they need from them.
    const request = p.keep ? { ...p.request, attention: 'none' as const } : p.request;
    const patternLayers = request.attention === 'all' ? m.dims.layers : !request.attention || request.attention === 'none' ? 0 : new Set(request.attention.map((h) => h.layer)).size;
    const result = await runInspection(
      m,
      request,
      (w) => warnings.push(w),
      (tokens) => send({ type: 'load', id, tokens, estimatedBytes: estimateInspectionBytes(m.dims, tokens, !!request.allLogits, p.keep ? { kind: 'qk' } : { kind: 'patterns', layers: patternLayers }) }),
      { qk: p.keep === true },
    );
    // A stop (Cancel, or a newer run superseding this one) cannot interrupt onnxruntime's forward
    // pass; it arrives while it runs, and the result is dropped here so the kept run stays the one
    // the host shows.
    const ran = wallMs();
    if (stopped.delete(id)) throw new EngineError('CANCELLED', 'the run was stopped; the previous run is kept');
    const runId = ++runCounter;
    if (p.keep) {
      // The host gets the summaries only.
      // Queries compute their probabilities with onnxruntime (QueryGraph; the JS path is its reference).
      kept = { runId, T: result.tokens.length, L: m.dims.layers, H: m.dims.heads, attention: qkSource(result.qk!), fast: new QueryGraph(result.qk!, threads), result: { ...result }, request: p.request };
      result.qk = undefined;
      result.patterns = new Map();
      result.attentionHeads = [];
      result.allLogits = undefined; // these stay here for saveRun
      result.hidden = undefined;
    }
    // Queries answered during the run took this thread (and onnxruntime's threads) from it.
    const trace = { received, started, ran, replied: wallMs(), queries: queryLog.n - queriesBefore.n, queryMs: queryLog.ms - queriesBefore.ms };
    return { result, warnings, runId, trace };
  },

  async query(p, id) {
    const t0 = performance.now();
    const receivedAt = arrivedAt.get(id);
    try {
      return { ...(await answerQuery(p)), engineMs: performance.now() - t0, receivedAt };
    } finally {
      queryLog.n++;
      queryLog.ms += performance.now() - t0;
    }
  },

  async saveRun(p) {
    const k = keptRun(p.runId);
    const m = requireModel();
    const tensors = p.tensors !== false;
    // The top-K at every position is always saved, the [T, V] logits only with tensors and under the
    // file's size cap: those are kept from the run or computed from its final hidden states; else the
    // head graph's top-k variant gives the top-K in chunks of positions (no [T, V] tensor: 1.6 GB
    // and seconds of JS at 8,000 tokens with a 49k vocabulary) and the last position's logits come
    // from the run or its last hidden state.
    const { hiddenSize: D, vocabSize: V } = m.dims;
    const T = k.result.tokens.length;
    const hidden = k.result.hidden!;
    const allLogits = k.result.allLogits ?? (tensors && T * V <= MAX_SAVED_VALUES ? await m.headLogits(hidden) : undefined);
    const top = allLogits ? undefined : await m.headTop(hidden, Math.min(RUN_TOP_K, V));
    const lastLogits = allLogits ? undefined : (k.result.lastLogits ?? (await m.headLogits(hidden.slice((T - 1) * D, T * D))));
    const opts = { tensors, autoSaved: p.autoSaved === true, decode: (id: number) => m.tokenizer.decodeToken(id) };
    // Patterns are computed head by head from the kept queries and keys (under the file's size cap).
    const patternOf = (layer: number, head: number, out: Float32Array) => patternInto(k, layer, head, out);
    writeRunFile(
      p.file,
      savedRunFrom({ ...k.result, qk: undefined, allLogits, lastLogits, patterns: new Map() }, k.request.prompt, k.request.interventions ?? noInterventions(), { ...opts, patternInto: patternOf }, top),
    );
    return { file: p.file };
  },

  async generate(p, id) {
    const r = await generate(requireModel(), p.request, (token) => send({ type: 'token', id, token }), () => stopped.has(id));
    stopped.delete(id);
    return { ...r, promptTokens: r.promptTokens.length };
  },

  async ablate(p, id) {
    try {
      const r = await ablateHeads(requireModel(), p.request, {
        onProgress: (done, total) => send({ type: 'progress', id, message: done === 0 ? 'baseline done' : `${done} of ${total} heads`, done, total }),
        isCancelled: () => stopped.has(id),
      });
      const { tokens, ...rest } = r;
      return { ...rest, tokenCount: tokens.length };
    } finally {
      stopped.delete(id);
    }
  },

  async clearCache(p) {
    // Here, not in the host: this process knows which entries its open model uses, and keeps them.
    const r = clearCache(p.root);
    return { removed: r.removed, bytes: r.bytes, keptInUse: r.keptInUse };
  },

  async lens(p, id) {
    try {
      // Stopped before its turn (the host's run it was for was replaced): no forward pass for it.
      if (stopped.has(id)) throw new EngineError('CANCELLED', 'the logit lens was for a run that was replaced by a newer one');
      const { tokens, logits, ...rest } = await logitLens(requireModel(), p.request);
      void logits;
      return { ...rest, tokenCount: tokens.length };
    } finally {
      stopped.delete(id);
    }
  },

  async patch(p, id) {
    try {
      const r = await patchHeads(requireModel(), p.request, {
        onProgress: (done, total) => send({ type: 'progress', id, message: done === 0 ? 'clean and corrupt runs done' : `${done} of ${total} heads`, done, total }),
        isCancelled: () => stopped.has(id),
      });
      const { cleanTokens, corruptTokens, ...rest } = r;
      void corruptTokens;
      return { ...rest, tokenCount: cleanTokens.length };
    } finally {
      stopped.delete(id);
    }
  },

  async lookupToken(p) {
    const m = requireModel();
    const V = m.dims.vocabSize;
    if ('id' in p) {
      if (!Number.isInteger(p.id) || p.id < 0 || p.id >= V) throw new EngineError('BAD_ARGUMENT', `token id ${p.id} is not in the vocabulary (0..${V - 1})`);
      return { pieces: [{ id: p.id, text: m.tokenizer.decodeToken(p.id) }], spaced: null };
    }
    if (typeof p.text !== 'string' || p.text.length === 0) throw new EngineError('BAD_ARGUMENT', 'the token text is empty; type the token to watch');
    const pieces = async (text: string) => (await m.tokenizer.encode(text)).filter((t) => !t.special || t.end > t.start).map((t) => ({ id: t.id, text: m.tokenizer.decodeToken(t.id) }));
    return { pieces: await pieces(p.text), spaced: /^\s/.test(p.text) ? null : await pieces(` ${p.text}`) };
  },

  async crash(p) {
    switch (p.how) {
      case 'exit':
        process.exit(3);
      // falls through (never reached)
      case 'abort':
        process.abort();
      // falls through
      case 'kill':
        process.kill(process.pid, 'SIGKILL');
        break;
      case 'oom': {
        const hog: number[][] = [];
        for (;;) hog.push(new Array(1e6).fill(1.5));
      }
      case 'throw':
        setImmediate(() => {
          throw new Error('deliberate crash');
        });
    }
    return new Promise<never>(() => undefined);
  },
};

async function handle<K extends CallKind>(id: number, kind: K, params: CallParams<K>): Promise<void> {
  try {
    const handler: (params: CallParams<K>, id: number) => Promise<CallResult<K>> = handlers[kind];
    const value = await handler(params, id);
    send({ type: 'result', id, value });
  } catch (e) {
    send({ type: 'error', id, code: isEngineError(e) ? e.code : 'RUNTIME', message: oneLine(e) });
  } finally {
    arrivedAt.delete(id);
  }
}

/** The engine process's loop: calls from the host, one model call at a time, queries and stops at once. */
function main(): void {
  if (!process.send) {
    process.stderr.write('attnscope: engineProcess must be started by the engine host (with an IPC channel)\n');
    process.exit(2);
  }

  // Model calls run one at a time, in order: onnxruntime sessions are not re-entrant here. Queries
  // about the kept run do not wait behind them: they read the kept state, which a run replaces only
  // when it is done, and forward passes run on the session thread, so the overlay follows the
  // cursor while a re-run is in flight.
  const CONCURRENT: ReadonlySet<CallKind> = new Set<CallKind>(['query', 'crash']);
  let chain: Promise<void> = Promise.resolve();
  process.on('message', (msg: ToEngine) => {
    if (msg.type === 'stop') {
      // Noted at once (between decoding steps or head runs), not queued behind the call it stops.
      stopped.add(msg.target);
      aborts.get(msg.target)?.abort(); // a model download in progress
      return;
    }
    const { id, kind, params } = msg;
    if (kind === 'inspect' || kind === 'query') arrivedAt.set(id, wallMs());
    if (CONCURRENT.has(kind)) void handle(id, kind, params);
    else chain = chain.then(() => handle(id, kind, params));
  });
  // The host went away (closed, crashed): nothing is left to answer.
  process.on('disconnect', () => process.exit(0));
}

// The same bundle also runs onnxruntime's sessions on a worker thread (runtime/sessionThread.ts):
// forward passes block the thread that runs them, and this process's main thread must stay free
// to answer queries about the kept run and to hear stops while an inspection runs.
if (isSessionThread()) serveSessions();
else main();
