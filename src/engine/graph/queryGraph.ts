// The kept run's probabilities computed by onnxruntime instead of JS loops (the editor overlay's
// row or column for the cursor token, token details, pattern windows): the same transform as
// attentionScores.ts, written as a small ONNX graph (opset 17, standard ops, no weights) over the
// kept per-layer tensors, which are passed as inputs without copying (ort.Tensor wraps the JS
// buffer). One session per graph shape, built in memory.
//
//   rows graph (direction from, query q):   s[l][k, h] = softcap(K_l[kv(h), k] · q'_l[h, q])   k = first_l..q
//   columns graph (direction to, key k):    s[l][q, h] = softcap(Q'_l[h, q] · K_l[kv(h), k])   q = k..last_l
//   tile graph (one head, queries × keys):  s[i, j]    = softcap(Q'[q0 + i] · K[k0 + j])
//   p = exp((s + bias − lse_hi) − lse_lo)
//
// Rows and columns are computed only over the positions the causal and window masks allow (the
// inputs are views of those positions: K_l[kv, first..q], Q'_l[h, k..last]), so every other value
// is exactly 0 and half the work on average is skipped; the outputs are token-major blocks [n, H]
// (HeadBlock). Tiles mask with Where (never exp of a masked score). Scores are float32 MatMuls
// (the model's own graph computes them so); lse, kept in float64, is passed as a float32 pair
// hi + lo (hi = fround(lse), lo = fround(lse − hi)) so it loses nothing that matters.
//
// Exactness: a float32 score is off by up to γ_d·Σ|q_i·k_i| ≤ (d + 1)·u·‖q‖·‖k‖ (u = 2⁻²⁴, any
// summation order), which moves p by p·Δs: several 1e-6 where p is large and |s| ≈ 30. So every
// entry whose bound p·Δs (with the soft-cap's, the bias's, the lse subtraction's and exp's own
// roundings, see boundTerms) can exceed REFINE_TOL is recomputed by the JS path (attentionScore,
// float64), and the rest agree with it within REFINE_TOL. There are few such entries in a row (p
// sums to 1); a column can have many (a sink token's), costing up to the JS path's own time.
// attentionScores.ts stays the reference: test/unit/keptFast.test.ts checks these against it on
// every family.
import { attentionScore, type LayerScores } from './attentionScores';
import type { FastAttention, HeadBlock } from '../analysis/kept';
import { attr, GraphBuilder, softcap } from './onnxGraph';
import { ort } from '../runtime/ortSession';

/** Queries per tile run: bounds the [rows, keys] score block the session holds at once. */
const TILE_ROWS = 256;

/** Entries whose possible float32 error exceeds this are recomputed in float64 (the JS path). */
export const REFINE_TOL = 5e-7;
const U = 2 ** -24;
/** margin over the bound's rounding of its own terms (norms, p_fast ≈ p) */
const SLACK = 1.05;

/**
 * Bound on |a_fast − a| for a = s + bias − lse (s the soft-capped dot product), given N ≥ ‖q‖·‖k‖:
 * MatMul γ_d·N; soft-cap Div and Mul ≈ 2u·N, tanh's (MLAS) error ≤ 16u absolute, times cap; the
 * Add, two Subs one u each of their results, ≤ N + |bias| + |lse|. exp adds ≤ 8u relative (Eigen's
 * is about 1 ulp). As a function: errorBound(N) = c0 + c1·N with c0 per row or column.
 */
function boundTerms(hd: number, cap: number, absBias: number, absLse: number): { c0: number; c1: number } {
  return { c0: SLACK * U * (20 * cap + 4 * absBias + 4 * absLse + 8), c1: SLACK * U * (hd + 8) };
}

interface Shape {
  L: number;
  H: number;
  KV: number;
  hd: number;
  /** per layer: the soft-cap (0 for none) */
  softcaps: number[];
}

function shapeOf(layers: LayerScores[]): Shape {
  const f = layers[0]!;
  for (const s of layers) if (s.H !== f.H || s.KV !== f.KV || s.hd !== f.hd || s.T !== f.T) throw new Error('internal: kept layers differ in shape');
  return { L: layers.length, H: f.H, KV: f.KV, hd: f.hd, softcaps: layers.map((s) => s.softcap) };
}

/** exp((s − hi) − lo) named `out` */
function probabilities(g: GraphBuilder, s: string, hi: string, lo: string, out?: string): string {
  return g.op('Exp', [g.op('Sub', [g.op('Sub', [s, hi]), lo])], {}, undefined, out);
}

const gather = (g: GraphBuilder, t: string, i: number) => g.op('Gather', [t, g.i64([i], [])], { axis: attr.i(0) });
const concat = (g: GraphBuilder, parts: string[]) => (parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: attr.i(1) }));

/**
 * Row q of every head of every layer. Inputs: k_l_kv [n_l, hd] (keys first_l..q of KV head kv),
 * qv [L·KV, hd, G] (row q's scaled queries of heads kv·G..kv·G + G − 1), bias_l [n_l, H] (the
 * keys' biases, token-major), lse_hi, lse_lo [L, H] (row q's). Outputs p_l [n_l, H].
 */
function rowsGraph(sh: Shape): Uint8Array {
  const { L, H, KV, hd } = sh;
  const G = H / KV;
  const g = new GraphBuilder('');
  const qv = g.input('qv', 'float', [L * KV, hd, G]);
  const hi = g.input('lse_hi', 'float', [L, H]);
  const lo = g.input('lse_lo', 'float', [L, H]);
  for (let l = 0; l < L; l++) {
    g.within(`layers.${l}`, () => {
      const n = `n_${l}`;
      const parts = Array.from({ length: KV }, (_, kv) => g.op('MatMul', [g.input(`k_${l}_${kv}`, 'float', [n, hd]), gather(g, qv, l * KV + kv)]));
      const s = g.op('Add', [softcap(g, concat(g, parts), sh.softcaps[l]!), g.input(`bias_${l}`, 'float', [n, H])]);
      probabilities(g, s, gather(g, hi, l), gather(g, lo, l), `p_${l}`);
      g.output(`p_${l}`, 'float', [n, H]);
    });
  }
  return g.encode('attnscope_rows', 'kept-run rows: every head of every layer, one query');
}

/**
 * Column k of every head of every layer. Inputs: q_l_h [n_l, hd] (queries k..last_l of head h,
 * scaled), kv [L·KV, hd, 1] (key k), bias [L, H] (bias[h, k]), lse_hi_l, lse_lo_l [n_l, H] (the
 * queries' lse, token-major). Outputs p_l [n_l, H].
 */
function columnsGraph(sh: Shape): Uint8Array {
  const { L, H, KV, hd } = sh;
  const G = H / KV;
  const g = new GraphBuilder('');
  const kv = g.input('kv', 'float', [L * KV, hd, 1]);
  const bias = g.input('bias', 'float', [L, H]);
  for (let l = 0; l < L; l++) {
    g.within(`layers.${l}`, () => {
      const n = `n_${l}`;
      const keys = Array.from({ length: KV }, (_, j) => gather(g, kv, l * KV + j));
      const parts = Array.from({ length: H }, (_, h) => g.op('MatMul', [g.input(`q_${l}_${h}`, 'float', [n, hd]), keys[Math.floor(h / G)]!]));
      const s = g.op('Add', [softcap(g, concat(g, parts), sh.softcaps[l]!), gather(g, bias, l)]);
      probabilities(g, s, g.input(`lse_hi_${l}`, 'float', [n, H]), g.input(`lse_lo_${l}`, 'float', [n, H]), `p_${l}`);
      g.output(`p_${l}`, 'float', [n, H]);
    });
  }
  return g.encode('attnscope_columns', 'kept-run columns: every head of every layer, one key');
}

/**
 * One head's block of queries × keys. Inputs: q [R, hd], k [N, hd], bias [N], lse_hi, lse_lo
 * [R, 1], qpos [R, 1], kpos [N], window [] (keys qpos − window < kpos ≤ qpos; a window > T for
 * none). Output p [R, N], exactly 0 where masked. The soft-cap is the graph's (one session per value).
 */
function tileGraph(hd: number, cap: number): Uint8Array {
  const g = new GraphBuilder('');
  const q = g.input('q', 'float', ['R', hd]);
  const k = g.input('k', 'float', ['N', hd]);
  const bias = g.input('bias', 'float', ['N']);
  const qpos = g.input('qpos', 'float', ['R', 1]);
  const kpos = g.input('kpos', 'float', ['N']);
  const window = g.input('window', 'float', []);
  let s = g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([1, 0]) })]);
  s = g.op('Add', [softcap(g, s, cap), bias]);
  const p = probabilities(g, s, g.input('lse_hi', 'float', ['R', 1]), g.input('lse_lo', 'float', ['R', 1]));
  const mask = g.op('And', [g.op('LessOrEqual', [kpos, qpos]), g.op('Greater', [kpos, g.op('Sub', [qpos, window])])]);
  g.op('Where', [mask, p, g.f32([0], [])], {}, 'masked', 'p');
  g.output('p', 'float', ['R', 'N']);
  return g.encode('attnscope_tile', 'kept-run pattern tile: one head, queries × keys');
}

/**
 * What the queries need besides the kept tensors, per layer. Inputs q_l [H, T, hd], k_l [KV, T, hd],
 * bias_l, lse_hi_l, lse_lo_l [H, T]. Outputs: the norms ‖q'‖ qn_l [H, T] and ‖k‖ kn_l [KV, T] (float32
 * sums of squares: within (d + 2)·u of the true ones, which the bound's SLACK covers) with their
 * maxima over positions qnmax_l [H], knmax_l [KV]; max |bias| biasmax_l and max |lse_hi| lsemax_l [H];
 * bias, lse_hi, lse_lo token-major [T, H] (biasT_l, hiT_l, loT_l).
 */
function prepareGraph(sh: Shape): Uint8Array {
  const { L, H, KV, hd } = sh;
  const g = new GraphBuilder('');
  const out = (name: string, t: string, dims: (number | string)[]) => {
    g.op('Identity', [t], {}, undefined, name);
    g.output(name, 'float', dims);
  };
  const max = (t: string) => g.op('ReduceMax', [t], { axes: attr.ints([1]), keepdims: attr.i(0) });
  const transpose = (t: string) => g.op('Transpose', [t], { perm: attr.ints([1, 0]) });
  for (let l = 0; l < L; l++) {
    for (const [x, n] of [['q', H], ['k', KV]] as const) {
      const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [g.input(`${x}_${l}`, 'float', [n, 'T', hd])], { axes: attr.ints([2]), keepdims: attr.i(0) })]);
      out(`${x}n_${l}`, norm, [n, 'T']);
      out(`${x}nmax_${l}`, max(norm), [n]);
    }
    const bias = g.input(`bias_${l}`, 'float', [H, 'T']);
    const hi = g.input(`lse_hi_${l}`, 'float', [H, 'T']);
    out(`biasmax_${l}`, max(g.op('Abs', [bias])), [H]);
    out(`lsemax_${l}`, max(g.op('Abs', [hi])), [H]);
    out(`biasT_${l}`, transpose(bias), ['T', H]);
    out(`hiT_${l}`, transpose(hi), ['T', H]);
    out(`loT_${l}`, transpose(g.input(`lse_lo_${l}`, 'float', [H, 'T'])), ['T', H]);
  }
  return g.encode('attnscope_prepare', 'kept-run query preparation: norms, maxima, token-major bias and lse');
}

const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

/**
 * Sessions are cached by graph shape and thread count: a new kept run of the same model reuses
 * them. Threads: the model's setting (onnxruntime's default when unset); they sleep instead of
 * spinning between ops, since queries run while the model may be running in the same process.
 */
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(key: string, threads: number | undefined, build: () => Uint8Array): Promise<ort.InferenceSession> {
  const full = `${key}|${threads ?? 0}`;
  let s = sessions.get(full);
  if (!s) {
    s = ort.InferenceSession.create(build(), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(threads ? { intraOpNumThreads: threads } : {}),
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    s.catch(() => sessions.delete(full));
    sessions.set(full, s);
  }
  return s;
}

interface LayerExtras {
  /** [T, H] lse as hi = fround(lse), lo = fround(lse − hi), token-major */
  lseHi: Float32Array;
  lseLo: Float32Array;
  /** [T, H] the bias, token-major */
  bias: Float32Array;
  /** [H, T] ‖q'‖ and [KV, T] ‖k‖ (within float32 rounding; the bound's SLACK covers it) */
  qNorm: Float32Array;
  kNorm: Float32Array;
  /** [KV] max over t of kNorm; [H] max over t of qNorm, |bias|, |lse_hi| (|lse| within u·|lse|, in SLACK) */
  kNormMax: Float64Array;
  qNormMax: Float64Array;
  biasMax: Float64Array;
  lseMax: Float64Array;
}

/** A kept run's rows, columns and pattern tiles through onnxruntime (see the file comment). */
export class QueryGraph implements FastAttention {
  private readonly shape: Shape;
  private readonly T: number;
  /** [T] 0..T−1 (tile positions) */
  private readonly pos: Float32Array;
  private extras: LayerExtras[] = [];
  /** the sessions and the per-layer extras: started at construction, awaited by every query */
  private readonly ready: Promise<void>;
  /** entries recomputed by the JS path so far (see the file comment) */
  refined = 0;
  private readonly allHeads: number[];
  /** the call in progress (serial) */
  private turn: Promise<unknown> = Promise.resolve();
  /** the last rows or columns call: onnxruntime's time and the refinement's (ms) */
  lastTiming = { runMs: 0, refineMs: 0 };

  constructor(
    private readonly layers: LayerScores[],
    private readonly threads?: number,
  ) {
    this.shape = shapeOf(layers);
    this.T = layers[0]!.T;
    this.pos = Float32Array.from({ length: this.T }, (_, i) => i);
    this.allHeads = Array.from({ length: this.shape.H }, (_, h) => h);
    this.ready = this.warmUp();
    this.ready.catch(() => undefined); // reported by the first query that awaits it
  }

  private async warmUp(): Promise<void> {
    const { H, KV, hd } = this.shape;
    const T = this.T;
    const sess = await session(this.key('prepare'), this.threads, () => prepareGraph(this.shape));
    const feeds: Record<string, ort.Tensor> = {};
    this.layers.forEach((s, l) => {
      // lse as hi = fround(lse), lo = fround(lse − hi)
      const hi = new Float32Array(s.lse);
      const lo = new Float32Array(H * T);
      for (let i = 0; i < lo.length; i++) lo[i] = s.lse[i]! - hi[i]!;
      Object.assign(feeds, {
        [`q_${l}`]: f32(s.q, [H, T, hd]),
        [`k_${l}`]: f32(s.k, [KV, T, hd]),
        [`bias_${l}`]: f32(s.bias, [H, T]),
        [`lse_hi_${l}`]: f32(hi, [H, T]),
        [`lse_lo_${l}`]: f32(lo, [H, T]),
      });
    });
    const out = await sess.run(feeds);
    const get = (name: string) => out[name]!.data as Float32Array;
    const f64 = (name: string) => Float64Array.from(get(name));
    this.extras = this.layers.map((_, l) => ({
      lseHi: get(`hiT_${l}`),
      lseLo: get(`loT_${l}`),
      bias: get(`biasT_${l}`),
      qNorm: get(`qn_${l}`),
      kNorm: get(`kn_${l}`),
      kNormMax: f64(`knmax_${l}`),
      qNormMax: f64(`qnmax_${l}`),
      biasMax: f64(`biasmax_${l}`),
      lseMax: f64(`lsemax_${l}`),
    }));
    await Promise.all([session(this.key('rows'), this.threads, () => rowsGraph(this.shape)), session(this.key('columns'), this.threads, () => columnsGraph(this.shape))]);
  }

  private key(kind: string): string {
    const { L, H, KV, hd, softcaps } = this.shape;
    return `${kind}:${L}:${H}:${KV}:${hd}:${softcaps.join(',')}`;
  }

  /** One call at a time, in the order asked (as the JS path answered), each at full speed. */
  private serial<R>(f: () => Promise<R>): Promise<R> {
    const r = this.turn.then(f, f);
    this.turn = r.catch(() => undefined);
    return r;
  }

  /** Every head's row q (from: the keys q attends to), per layer: keys first_l..q, [n, H]. */
  rows(q: number): Promise<HeadBlock[]> {
    return this.serial(() => this.rowsNow(q));
  }

  /** Every head's column k (to: how much each query attends to k), per layer: queries k..last_l, [n, H]. */
  columns(k: number): Promise<HeadBlock[]> {
    return this.serial(() => this.columnsNow(k));
  }

  /**
   * Head (layer, h)'s probabilities for queries q0..q1−1 × keys k0..k1−1, row by row: `each(q, p)`
   * gets row q's values p[k − k0] for keys k0..min(k1 − 1, q) at least (zeros where masked; valid
   * until the next call); rows with no key in range are skipped.
   */
  tile(layer: number, h: number, q0: number, q1: number, k0: number, k1: number, each: (q: number, p: Float32Array) => void): Promise<void> {
    return this.serial(() => this.tileNow(layer, h, q0, q1, k0, k1, each));
  }

  private async rowsNow(q: number): Promise<HeadBlock[]> {
    await this.ready;
    const { L, H, KV, hd } = this.shape;
    const G = H / KV;
    const T = this.T;
    const sess = await session(this.key('rows'), this.threads, () => rowsGraph(this.shape));
    const qv = new Float32Array(L * KV * hd * G);
    const hi = new Float32Array(L * H);
    const lo = new Float32Array(L * H);
    const feeds: Record<string, ort.Tensor> = {};
    const starts = this.layers.map((s, l) => {
      for (let h = 0; h < H; h++) {
        const src = (h * T + q) * hd;
        const kv = Math.floor(h / G);
        for (let d = 0; d < hd; d++) qv[((l * KV + kv) * hd + d) * G + (h % G)] = s.q[src + d]!;
        hi[l * H + h] = this.extras[l]!.lseHi[q * H + h]!;
        lo[l * H + h] = this.extras[l]!.lseLo[q * H + h]!;
      }
      const first = s.window > 0 ? Math.max(0, q - s.window + 1) : 0;
      const n = q + 1 - first;
      for (let kv = 0; kv < KV; kv++) feeds[`k_${l}_${kv}`] = f32(s.k.subarray((kv * T + first) * hd, (kv * T + q + 1) * hd), [n, hd]);
      feeds[`bias_${l}`] = f32(this.extras[l]!.bias.subarray(first * H, (q + 1) * H), [n, H]);
      return first;
    });
    Object.assign(feeds, { qv: f32(qv, [L * KV, hd, G]), lse_hi: f32(hi, [L, H]), lse_lo: f32(lo, [L, H]) });
    const t0 = performance.now();
    const out = await sess.run(feeds);
    const t1 = performance.now();
    const blocks = starts.map((start, l) => {
      const values = out[`p_${l}`]!.data as Float32Array;
      this.refineRows(l, q, start, values, this.allHeads);
      return { start, values };
    });
    this.lastTiming = { runMs: t1 - t0, refineMs: performance.now() - t1 };
    return blocks;
  }

  private async columnsNow(k: number): Promise<HeadBlock[]> {
    await this.ready;
    const { L, H, KV, hd } = this.shape;
    const T = this.T;
    const sess = await session(this.key('columns'), this.threads, () => columnsGraph(this.shape));
    const kv = new Float32Array(L * KV * hd);
    const bias = new Float32Array(L * H);
    const feeds: Record<string, ort.Tensor> = {};
    this.layers.forEach((s, l) => {
      for (let j = 0; j < KV; j++) kv.set(s.k.subarray((j * T + k) * hd, (j * T + k + 1) * hd), (l * KV + j) * hd);
      for (let h = 0; h < H; h++) bias[l * H + h] = s.bias[h * T + k]!;
      const last = s.window > 0 ? Math.min(T - 1, k + s.window - 1) : T - 1;
      const n = last + 1 - k;
      for (let h = 0; h < H; h++) feeds[`q_${l}_${h}`] = f32(s.q.subarray((h * T + k) * hd, (h * T + last + 1) * hd), [n, hd]);
      feeds[`lse_hi_${l}`] = f32(this.extras[l]!.lseHi.subarray(k * H, (last + 1) * H), [n, H]);
      feeds[`lse_lo_${l}`] = f32(this.extras[l]!.lseLo.subarray(k * H, (last + 1) * H), [n, H]);
    });
    Object.assign(feeds, { kv: f32(kv, [L * KV, hd, 1]), bias: f32(bias, [L, H]) });
    const t0 = performance.now();
    const out = await sess.run(feeds);
    const t1 = performance.now();
    const blocks = this.layers.map((_, l) => {
      const values = out[`p_${l}`]!.data as Float32Array;
      this.refineColumns(l, k, values);
      return { start: k, values };
    });
    this.lastTiming = { runMs: t1 - t0, refineMs: performance.now() - t1 };
    return blocks;
  }

  private async tileNow(layer: number, h: number, q0: number, q1: number, k0: number, k1: number, each: (q: number, p: Float32Array) => void): Promise<void> {
    await this.ready;
    const s = this.layers[layer]!;
    const x = this.extras[layer]!;
    const { T, hd, H } = s;
    const sess = await session(`tile:${hd}:${s.softcap}`, this.threads, () => tileGraph(hd, s.softcap));
    const kv = Math.floor(h / (H / s.KV));
    const window = f32(new Float32Array([s.window > 0 ? s.window : T + 1]), []);
    for (let a = q0; a < q1; a += TILE_ROWS) {
      const b = Math.min(q1, a + TILE_ROWS);
      const R = b - a;
      // keys k0..min(k1, b) − 1: those after the chunk's last query are masked for all of it
      const N = Math.min(k1, b) - k0;
      if (N <= 0) continue;
      const hi = new Float32Array(R);
      const lo = new Float32Array(R);
      for (let r = 0; r < R; r++) {
        hi[r] = x.lseHi[(a + r) * H + h]!;
        lo[r] = x.lseLo[(a + r) * H + h]!;
      }
      // views into the kept buffers (no copy) but the lse pairs
      const out = await sess.run({
        q: f32(s.q.subarray((h * T + a) * hd, (h * T + b) * hd), [R, hd]),
        k: f32(s.k.subarray((kv * T + k0) * hd, (kv * T + k0 + N) * hd), [N, hd]),
        bias: f32(s.bias.subarray(h * T + k0, h * T + k0 + N), [N]),
        lse_hi: f32(hi, [R, 1]),
        lse_lo: f32(lo, [R, 1]),
        qpos: f32(this.pos.subarray(a, b), [R, 1]),
        kpos: f32(this.pos.subarray(k0, k0 + N), [N]),
        window,
      });
      const p = out['p']!.data as Float32Array;
      for (let r = 0; r < R; r++) {
        const row = p.subarray(r * N, (r + 1) * N);
        this.refineRows(layer, a + r, k0, row, [h]);
        each(a + r, row);
      }
    }
  }

  /**
   * Recomputes by the JS path the entries of row q whose float32 error could exceed REFINE_TOL:
   * values [n, hs.length] holds keys start..start + n − 1 (only those ≤ q are read) of heads hs.
   */
  private refineRows(l: number, q: number, start: number, values: Float32Array, hs: number[]): void {
    const s = this.layers[l]!;
    const x = this.extras[l]!;
    const { T } = s;
    const W = hs.length;
    const G = s.H / s.KV;
    const c0 = new Float64Array(W);
    const c1q = new Float64Array(W);
    const pMin = new Float64Array(W);
    hs.forEach((h, j) => {
      const t = boundTerms(s.hd, s.softcap, x.biasMax[h]!, Math.abs(s.lse[h * T + q]!));
      c0[j] = t.c0;
      c1q[j] = t.c1 * x.qNorm[h * T + q]!;
      // p at most pMin cannot need it (the row's largest bound), else the entry's own bound decides
      pMin[j] = REFINE_TOL / (t.c0 + c1q[j]! * x.kNormMax[Math.floor(h / G)]!);
    });
    const n = Math.min(values.length / W, q + 1 - start);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < W; j++) {
        const v = values[i * W + j]!;
        if (v > pMin[j]!) {
          const h = hs[j]!;
          if (v * (c0[j]! + c1q[j]! * x.kNorm[Math.floor(h / G) * T + start + i]!) > REFINE_TOL) {
            values[i * W + j] = Math.exp(attentionScore(s, h, q, start + i) - s.lse[h * T + q]!);
            this.refined++;
          }
        }
      }
    }
  }

  /** The same for column k of every head: values [n, H] holds queries k..k + n − 1. */
  private refineColumns(l: number, k: number, values: Float32Array): void {
    const s = this.layers[l]!;
    const x = this.extras[l]!;
    const { T, H } = s;
    const G = H / s.KV;
    // boundTerms per query, unrolled: c0 = a0 + aL·|lse[q]|, c1·‖q‖·‖k‖
    const aL = SLACK * U * 4;
    const a0 = new Float64Array(H);
    const c1k = new Float64Array(H);
    const pMin = new Float64Array(H);
    for (let h = 0; h < H; h++) {
      const t = boundTerms(s.hd, s.softcap, x.biasMax[h]!, 0);
      a0[h] = t.c0;
      c1k[h] = t.c1 * x.kNorm[Math.floor(h / G) * T + k]!;
      pMin[h] = REFINE_TOL / (t.c0 + aL * x.lseMax[h]! + c1k[h]! * x.qNormMax[h]!);
    }
    const n = values.length / H;
    for (let i = 0; i < n; i++) {
      for (let h = 0; h < H; h++) {
        const v = values[i * H + h]!;
        if (v > pMin[h]!) {
          const q = k + i;
          const lse = s.lse[h * T + q]!;
          if (v * (a0[h]! + aL * Math.abs(lse) + c1k[h]! * x.qNorm[h * T + q]!) > REFINE_TOL) {
            values[i * H + h] = Math.exp(attentionScore(s, h, q, k) - lse);
            this.refined++;
          }
        }
      }
    }
  }
}
