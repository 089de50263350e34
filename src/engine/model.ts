// A loaded model: checkpoint + spec + tokenizer + onnxruntime sessions (plain and inspection).
import * as path from 'node:path';
import { specFromCheckpoint } from './arch';
import { EngineError, isEngineError, oneLine } from './errors';
import { logMaxProbOutput, maxKeyOutput, METRIC_ORDER, rotKOutput, rotQOutput, zOutput, type GraphOptions } from './graph/inspectionGraph';
import { BLOCK_LIMITS_INPUT, CPU_BLOCK_LIMITS, GPU_BLOCK_LIMITS, type BlockLimits } from './graph/blockedAttention';
import { contentHash } from './runtime/contentHash';
import { cacheMaxBytes, CONTENT_INDEX_FILE, defaultCacheRoot, openCache, type CacheEntry } from './runtime/modelCache';
import { createSession, ort, type Device, type DeviceRequest } from './runtime/ortSession';
import { inProcessSession, SessionThread, type RunnableSession } from './runtime/sessionThread';
import { openCheckpoint, type Checkpoint } from './sources/checkpoint';
import { loadTokenizer, type PromptTokenizer } from './sources/tokenizer';
import type { ModelDims } from './spec';

export interface OpenOptions {
  device?: DeviceRequest;
  cacheRoot?: string;
  /** size cap of the compiled-model cache in GB (default: ATTNSCOPE_CACHE_MAX_GB, else 20) */
  cacheMaxGB?: number;
  threads?: number;
  /**
   * Query rows per attention block (graph/blockedAttention.ts) instead of the automatic size:
   * for tests, which force several blocks on short prompts (rows are independent, so the numbers
   * do not change).
   */
  blockRows?: number;
  /**
   * [rows, values, match-list values] bounding the attention blocks, fed to every run (graph/blockedAttention.ts,
   * BLOCK_LIMITS_INPUT) instead of the device's (CPU_BLOCK_LIMITS, or GPU_BLOCK_LIMITS on CUDA). The
   * numbers do not depend on it (rows are independent); tests use it to check that.
   */
  blockLimits?: BlockLimits;
  /**
   * The session to create at open (default the plain graph's): 'kept' for a process whose runs are
   * kept inspections (the extension's engine), so it does not also hold the plain session's copy of
   * the weights (each onnxruntime session pre-packs its own).
   */
  warm?: 'plain' | 'kept';
  /**
   * Run forward passes (inspections, lens, patching) on a worker thread started from this script
   * (runtime/sessionThread.ts), so this thread stays free while onnxruntime computes: the engine
   * process answers queries and hears stops during a long run. Cached decoding and the head graph
   * stay on this thread (short runs; generation yields between tokens).
   */
  sessionThread?: string;
}

/**
 * The checkpoint's content key, naming its compiled-model cache entry and Model.hash: sha256 over
 * config.json and every weight file's bytes (a retrained checkpoint with the same shapes gets a new
 * key); unchanged files are not re-read (the index in the cache folder, see runtime/contentHash.ts).
 */
async function checkpointKey(ck: Checkpoint, cacheRoot: string): Promise<string> {
  const files = [...new Set([...ck.tensors.values()].map((t) => t.file))].sort();
  try {
    return (await contentHash(JSON.stringify(ck.config), files, path.join(cacheRoot, CONTENT_INDEX_FILE))).hash.slice(0, 16);
  } catch (e) {
    throw new EngineError('MODEL', `${ck.dir}: cannot read the weights (${oneLine(e)}); check the model folder`);
  }
}

export interface ForwardInputs {
  ids: number[];
  /** [L, H] row-major */
  headScale: Float32Array;
  /** [L, H, T] row-major */
  attnBias: Float32Array;
}

export interface ForwardOutputs {
  /** [T or 1, V] */
  logits: Float32Array;
  /** per fetched layer: [H, T, T] */
  patterns: Map<number, Float32Array>;
  /** [L, H, M] in METRIC_ORDER (inspection runs only) */
  metrics?: Float32Array;
  /** [T, D] final normalised hidden states (inspection runs without allLogits) */
  hidden?: Float32Array;
  /** [L+1, P, D] the residual stream at the requested positions entering each block and after the last (lens runs) */
  resid?: Float32Array;
  /** [L+1, P, D] `resid` through the final norm: headLogits' input (lens runs) */
  residNormed?: Float32Array;
  /** [L, T, H·hd] every head's output z before head_scale and before any patch (runs with `z`) */
  z?: Float32Array;
  /**
   * qk inspection runs, per layer: the queries [H, T, hd] and keys [KV, T, hd] after norms and
   * RoPE, each row's key with the largest score [H, T] and ln of its probability [H, T]
   */
  qk?: { q: Float32Array[]; k: Float32Array[]; maxKey: BigInt64Array[]; logMaxP: Float32Array[] };
}

/** Activation patching: z' = mask·z_patch + (1 − mask)·z for every layer, position and head. */
export interface HeadPatch {
  /** [L, T, H·hd] the replacement z (e.g. ForwardOutputs.z of another run of the same length) */
  z: Float32Array;
  /** [L, H] 1: the head's z is the patch's, 0: its own */
  mask: Float32Array;
}

/** What a plain (not inspection) run can also do; each picks a variant graph of the plain graph. */
export interface ForwardExtras {
  /** logit lens: the residual stream at these positions (lens graph) */
  resid?: number[];
  /** fetch every head's z (patch graph) */
  z?: boolean;
  /** replace heads' z (patch graph) */
  patch?: HeadPatch;
}

/**
 * The most logits one head-graph run forms in headTop (2²³: 32 MB of float32, and their float64 copy
 * for the log-sum-exp), so a saved run's every-position top-K costs bounded memory at any length.
 */
const HEAD_CHUNK_VALUES = 1 << 23;

/**
 * The attention block limits a run feeds (BLOCK_LIMITS_INPUT): `override` (OpenOptions.blockLimits)
 * first, else the device's.
 */
export function blockLimitsFor(device: Device, override: BlockLimits | undefined): BlockLimits {
  if (override) {
    if (!override.every((n) => Number.isSafeInteger(n) && n >= 1)) throw new Error(`internal: block limits ${override.join(', ')}`);
    return override;
  }
  return device === 'cuda' ? GPU_BLOCK_LIMITS : CPU_BLOCK_LIMITS;
}

/** Keys (after RoPE) and values of the positions seen so far: per layer [kvHeads, length, headDim]. */
export interface KvCache {
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
}

function fetchedQk(out: Record<string, { data: unknown }>, L: number): NonNullable<ForwardOutputs['qk']> {
  const get = (name: string) => out[name]!.data as Float32Array;
  const layers = Array.from({ length: L }, (_, l) => l);
  return {
    q: layers.map((l) => get(rotQOutput(l))),
    k: layers.map((l) => get(rotKOutput(l))),
    maxKey: layers.map((l) => out[maxKeyOutput(l)]!.data as BigInt64Array),
    logMaxP: layers.map((l) => get(logMaxProbOutput(l))),
  };
}

export class Model {
  private readonly sessions = new Map<string, Promise<RunnableSession>>();
  private thread: SessionThread | undefined;
  device: Device = 'cpu';
  /** config.json's eos_token_id (the first, when it lists several) */
  eosTokenId: number | undefined;
  /** time to open: checkpoint, tokenizer, cache (conversion on a cold open) and the first session */
  loadMs = 0;
  /** true when the converted weights came from the cache (a warm open) */
  get fromCache(): boolean {
    return !this.cache.built;
  }
  get cacheDir(): string {
    return this.cache.dir;
  }
  deviceNote?: string;

  private constructor(
    readonly dir: string,
    readonly hash: string,
    readonly dims: ModelDims,
    readonly tokenizer: PromptTokenizer,
    private readonly cache: CacheEntry,
    private readonly opts: OpenOptions,
    readonly bosTokenId: number | undefined,
  ) {}

  static async open(dir: string, opts: OpenOptions = {}): Promise<Model> {
    const t0 = performance.now();
    const ck = openCheckpoint(dir);
    const spec = specFromCheckpoint(ck);
    const tokenizer = await loadTokenizer(ck.dir);
    if (tokenizer.vocabSize > spec.dims.vocabSize) {
      throw new EngineError('TOKENIZER', `${tokenizer.file}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${spec.dims.vocabSize}; they belong to different models`);
    }
    const cacheRoot = path.resolve(opts.cacheRoot ?? defaultCacheRoot());
    const maxBytes = cacheMaxBytes(opts.cacheMaxGB);
    const key = await checkpointKey(ck, cacheRoot);
    const cache = openCache(spec, key, { root: cacheRoot, maxBytes, source: ck.tensors.values() });
    const m = new Model(ck.dir, key, spec.dims, tokenizer, cache, opts, spec.bosTokenId);
    const eos = ck.config['eos_token_id'];
    const eosId = Array.isArray(eos) ? eos[0] : eos;
    if (typeof eosId === 'number' && Number.isInteger(eosId) && eosId >= 0 && eosId < spec.dims.vocabSize) m.eosTokenId = eosId;
    // Open the first session now so load time includes onnxruntime's own initialisation and the device is known.
    try {
      await m.session(opts.warm === 'kept' ? { inspect: true, allLogits: false, qk: true } : { inspect: false, allLogits: false });
    } catch (e) {
      cache.release();
      throw e;
    }
    m.loadMs = performance.now() - t0;
    return m;
  }

  /** The block limits input for a run of any graph but the head's (none with test-forced block rows). */
  private blockLimitsFeed(): Record<string, ort.Tensor> {
    if (this.opts.blockRows !== undefined) return {};
    const limits = blockLimitsFor(this.device, this.opts.blockLimits);
    return { [BLOCK_LIMITS_INPUT]: new ort.Tensor('int64', BigInt64Array.from(limits, (n) => BigInt(n)), [limits.length]) };
  }

  private static sessionKey(g: GraphOptions): string {
    return `${g.inspect}-${g.allLogits}-${g.cache ?? false}-${g.head ?? false}-${g.headTop ?? 0}-${g.lens ?? false}-${g.patch ?? false}-${g.qk ?? false}`;
  }

  /** Releases graph `g`'s session if one is open (the next use opens it again). */
  private async releaseSession(g: GraphOptions): Promise<void> {
    const key = Model.sessionKey(g);
    const s = this.sessions.get(key);
    this.sessions.delete(key);
    await (await s?.catch(() => undefined))?.release();
  }

  /** The session of graph `g`; on the session thread when there is one, unless `here`. */
  private session(g: GraphOptions, here = false): Promise<RunnableSession> {
    const key = Model.sessionKey(g);
    let s = this.sessions.get(key);
    if (!s) {
      if (this.opts.blockRows !== undefined) g = { ...g, blockRows: this.opts.blockRows };
      const file = this.cache.graphPath(g);
      const device = this.opts.device ?? 'auto';
      if (this.opts.sessionThread && !here) this.thread ??= new SessionThread(this.opts.sessionThread);
      const made = this.thread && !here ? this.thread.create(key, file, device, this.opts.threads) : createSession(file, device, this.opts.threads).then((r) => ({ ...r, session: inProcessSession(r.session) }));
      s = made.then((r) => {
        this.device = r.device;
        this.deviceNote = r.fallback;
        return r.session;
      });
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * Runs the model. `layers` lists the layers whose attention patterns to fetch; `qk` (inspection
   * only, no patterns) fetches every layer's queries, keys and row log-sum-exps instead (the qk graph).
   */
  async forward(inp: ForwardInputs, opts: { inspect: boolean; allLogits?: boolean; layers?: number[]; qk?: boolean } & ForwardExtras): Promise<ForwardOutputs> {
    const { layers: L, heads: H } = this.dims;
    const T = inp.ids.length;
    if (T === 0) throw new EngineError('PROMPT', 'the prompt has no tokens');
    if (inp.headScale.length !== L * H) throw new Error('internal: head_scale size');
    if (inp.attnBias.length !== L * H * T) throw new Error('internal: attn_bias size');
    const lens = opts.resid !== undefined;
    const patch = opts.z === true || opts.patch !== undefined;
    if ((lens || patch) && (opts.inspect || opts.allLogits || (lens && patch))) throw new Error('internal: lens and patch runs are plain runs, one at a time');
    const qk = opts.qk === true;
    if (qk && (!opts.inspect || (opts.layers ?? []).length > 0)) throw new Error('internal: a qk run is an inspection without patterns');
    const session = await this.session({ inspect: opts.inspect, allLogits: opts.allLogits ?? false, ...(lens ? { lens } : {}), ...(patch ? { patch } : {}), ...(qk ? { qk } : {}) });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(inp.ids, (v) => BigInt(v)), [1, T]),
      head_scale: new ort.Tensor('float32', inp.headScale, [L, H]),
      attn_bias: new ort.Tensor('float32', inp.attnBias, [L, H, T]),
      ...this.blockLimitsFeed(),
    };
    // Outputs are pre-allocated (onnxruntime copies its own into them at the end of the run).
    const V = this.dims.vocabSize;
    const logitsRows = opts.allLogits ? T : 1;
    const fetch: Record<string, ort.Tensor> = { logits: new ort.Tensor('float32', new Float32Array(logitsRows * V), [1, logitsRows, V]) };
    if (opts.inspect) {
      const M = METRIC_ORDER.length;
      fetch['head_metrics'] = new ort.Tensor('float32', new Float32Array(L * H * M), [L, H, M]);
      if (!opts.allLogits) fetch['final_hidden'] = new ort.Tensor('float32', new Float32Array(T * this.dims.hiddenSize), [T, this.dims.hiddenSize]);
      for (const l of opts.layers ?? []) fetch[`blocks.${l}.attn.pattern`] = new ort.Tensor('float32', new Float32Array(H * T * T), [H, T, T]);
    }
    const D = this.dims.hiddenSize;
    const hd = this.dims.headDim;
    if (qk) {
      const KV = this.dims.kvHeads;
      for (let l = 0; l < L; l++) {
        fetch[rotQOutput(l)] = new ort.Tensor('float32', new Float32Array(H * T * hd), [H, T, hd]);
        fetch[rotKOutput(l)] = new ort.Tensor('float32', new Float32Array(KV * T * hd), [KV, T, hd]);
        fetch[maxKeyOutput(l)] = new ort.Tensor('int64', new BigInt64Array(H * T), [H, T]);
        fetch[logMaxProbOutput(l)] = new ort.Tensor('float32', new Float32Array(H * T), [H, T]);
      }
    }
    if (lens) {
      const P = opts.resid!.length;
      if (P === 0 || opts.resid!.some((q) => !Number.isInteger(q) || q < 0 || q >= T)) throw new Error('internal: lens positions');
      feeds['resid_positions'] = new ort.Tensor('int64', BigInt64Array.from(opts.resid!, (v) => BigInt(v)), [P]);
      fetch['resid_stream'] = new ort.Tensor('float32', new Float32Array((L + 1) * P * D), [L + 1, P, D]);
      fetch['resid_normed'] = new ort.Tensor('float32', new Float32Array((L + 1) * P * D), [L + 1, P, D]);
    }
    if (patch) {
      const p = opts.patch;
      if (p && (p.z.length !== L * T * H * hd || p.mask.length !== L * H)) throw new Error('internal: head patch size');
      feeds['head_patch'] = new ort.Tensor('float32', p?.z ?? new Float32Array(L * T * H * hd), [L, T, H * hd]);
      feeds['patch_mask'] = new ort.Tensor('float32', p?.mask ?? new Float32Array(L * H), [L, H]);
      if (opts.z) for (let l = 0; l < L; l++) fetch[zOutput(l)] = new ort.Tensor('float32', new Float32Array(T * H * hd), [T, H, hd]);
    }
    let out: Record<string, { data: unknown }>;
    try {
      out = await session.run(feeds, fetch);
    } catch (e) {
      if (isEngineError(e)) throw e;
      throw new EngineError('RUNTIME', `onnxruntime failed while running ${this.dir} on ${T} tokens (${(e as Error).message.split('\n')[0]})`);
    }
    let z: Float32Array | undefined;
    if (opts.z) {
      z = new Float32Array(L * T * H * hd);
      for (let l = 0; l < L; l++) z.set(out[zOutput(l)]!.data as Float32Array, l * T * H * hd);
    }
    const patterns = new Map<number, Float32Array>();
    for (const l of opts.inspect ? (opts.layers ?? []) : []) patterns.set(l, out[`blocks.${l}.attn.pattern`]!.data as Float32Array);
    return {
      logits: out['logits']!.data as Float32Array,
      patterns,
      metrics: opts.inspect ? (out['head_metrics']!.data as Float32Array) : undefined,
      hidden: opts.inspect && !opts.allLogits ? (out['final_hidden']!.data as Float32Array) : undefined,
      ...(lens ? { resid: out['resid_stream']!.data as Float32Array, residNormed: out['resid_normed']!.data as Float32Array } : {}),
      ...(z ? { z } : {}),
      ...(qk ? { qk: fetchedQk(out, L) } : {}),
    };
  }

  /**
   * One step of cached decoding: runs `ids` (the whole prompt for the prefill, then one token at a
   * time) against the keys/values of the earlier positions and returns the last position's logits
   * and the extended cache. `attnBias` is [L, H, past + ids.length].
   */
  async decode(ids: number[], past: KvCache | undefined, headScale: Float32Array, attnBias: Float32Array): Promise<{ logits: Float32Array; present: KvCache }> {
    const { layers: L, heads: H, kvHeads: KV, headDim: hd, vocabSize: V } = this.dims;
    const P = past?.length ?? 0;
    const T = ids.length;
    const K = P + T;
    if (attnBias.length !== L * H * K) throw new Error('internal: attn_bias size');
    const session = await this.session({ inspect: false, allLogits: false, cache: true }, true);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, T]),
      head_scale: new ort.Tensor('float32', headScale, [L, H]),
      attn_bias: new ort.Tensor('float32', attnBias, [L, H, K]),
      ...this.blockLimitsFeed(),
    };
    const fetch: Record<string, ort.Tensor> = { logits: new ort.Tensor('float32', new Float32Array(V), [1, 1, V]) };
    for (let l = 0; l < L; l++) {
      feeds[`past_key.${l}`] = new ort.Tensor('float32', past?.keys[l] ?? new Float32Array(0), [KV, P, hd]);
      feeds[`past_value.${l}`] = new ort.Tensor('float32', past?.values[l] ?? new Float32Array(0), [KV, P, hd]);
      fetch[`present_key.${l}`] = new ort.Tensor('float32', new Float32Array(KV * K * hd), [KV, K, hd]);
      fetch[`present_value.${l}`] = new ort.Tensor('float32', new Float32Array(KV * K * hd), [KV, K, hd]);
    }
    let out: Record<string, { data: unknown }>;
    try {
      out = await session.run(feeds, fetch);
    } catch (e) {
      throw new EngineError('RUNTIME', `onnxruntime failed while decoding at position ${P} (${(e as Error).message.split('\n')[0]})`);
    }
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      keys.push(out[`present_key.${l}`]!.data as Float32Array);
      values.push(out[`present_value.${l}`]!.data as Float32Array);
    }
    return { logits: out['logits']!.data as Float32Array, present: { length: K, keys, values } };
  }

  /** Every position's logits [T, V] from the final hidden states of an inspection run. */
  async headLogits(hidden: Float32Array): Promise<Float32Array> {
    const D = this.dims.hiddenSize;
    const T = hidden.length / D;
    const session = await this.session({ inspect: false, allLogits: true, head: true }, true);
    const out = await session.run(
      { final_hidden: new ort.Tensor('float32', hidden, [T, D]) },
      { logits: new ort.Tensor('float32', new Float32Array(T * this.dims.vocabSize), [1, T, this.dims.vocabSize]) },
    );
    return out['logits']!.data as Float32Array;
  }

  /**
   * Each position's k largest logits with their ids (ties: the lower id) and the log-sum-exp of its
   * logits in float64, from the final hidden states [T, D], through the head graph's top-k variant:
   * in chunks of positions whose [rows, V] logits stay under `chunkValues` (HEAD_CHUNK_VALUES; tests
   * force smaller), so no [T, V] tensor is formed (at 8,000 tokens and V = 49,152: 1.6 GB).
   */
  async headTop(hidden: Float32Array, k: number, chunkValues = HEAD_CHUNK_VALUES): Promise<{ logits: Float32Array; ids: BigInt64Array; lse: Float64Array }> {
    const { hiddenSize: D, vocabSize: V } = this.dims;
    const T = hidden.length / D;
    if (!Number.isInteger(T) || !(Number.isInteger(k) && k >= 1 && k <= V)) throw new Error('internal: headTop sizes');
    // On the session thread when there is one, one message per chunk: the engine's main thread stays
    // free for queries, and a forward pass asked meanwhile goes between two chunks. The session (its
    // own copy of the LM head, prepacked: 0.22 GiB for a 49k × 576 head) is released afterwards, so
    // the next run's peak does not carry it.
    const g: GraphOptions = { inspect: false, allLogits: true, head: true, headTop: k };
    this.headTopUsers++;
    try {
      return await this.headTopIn(await this.session(g), hidden, k, chunkValues);
    } finally {
      // the last of concurrent saves releases it
      if (--this.headTopUsers === 0) await this.releaseSession(g);
    }
  }

  private headTopUsers = 0;

  private async headTopIn(session: RunnableSession, hidden: Float32Array, k: number, chunkValues: number): Promise<{ logits: Float32Array; ids: BigInt64Array; lse: Float64Array }> {
    const { hiddenSize: D, vocabSize: V } = this.dims;
    const T = hidden.length / D;
    const logits = new Float32Array(T * k);
    const ids = new BigInt64Array(T * k);
    const lse = new Float64Array(T);
    const rows = Math.max(1, Math.floor(chunkValues / V));
    for (let t0 = 0; t0 < T; t0 += rows) {
      const n = Math.min(rows, T - t0);
      const out = await session.run(
        { final_hidden: new ort.Tensor('float32', hidden.slice(t0 * D, (t0 + n) * D), [n, D]) },
        {
          top_logits: new ort.Tensor('float32', new Float32Array(n * k), [n, k]),
          top_ids: new ort.Tensor('int64', new BigInt64Array(n * k), [n, k]),
          lse: new ort.Tensor('float64', new Float64Array(n), [n]),
        },
      );
      logits.set(out['top_logits']!.data as Float32Array, t0 * k);
      ids.set(out['top_ids']!.data as BigInt64Array, t0 * k);
      lse.set(out['lse']!.data as Float64Array, t0);
    }
    return { logits, ids, lse };
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s.catch(() => undefined))?.release();
    this.sessions.clear();
    await this.thread?.terminate();
    this.thread = undefined;
    this.cache.release();
  }
}
