// The kept run's probabilities computed by onnxruntime instead of JS loops (the editor overlay's
// row or column for the cursor token, token details, pattern windows): the same transform as
// attentionScores.ts, written as a small ONNX graph (opset 17, standard ops, no weights) over the
// kept per-layer tensors, which are passed as inputs without copying (ort.Tensor wraps the JS
// buffer). One session per graph shape, built in memory.
//
//   rows graph (direction from, query q):   s[l][h, k] = softcap(K_l[kv(h), k] · q'_l[h, q])
//   columns graph (direction to, key k):    s[l][h, q] = softcap(Q'_l[h, q] · K_l[kv(h), k])
//   tile graph (one head, queries × keys):  s[i, j]    = softcap(Q'[q0 + i] · K[k0 + j])
//   p = exp((s + bias − lse_hi) − lse_lo) where the causal and window masks allow it, else exactly 0
//
// Scores are float32 MatMuls (the model's own graph computes them so); lse, kept in float64, is
// passed as a float32 pair hi + lo (hi = fround(lse), lo = fround(lse − hi)) so it loses nothing
// that matters; masked entries come from Where (never exp of a masked score).
//
// Exactness: a float32 score is off by up to γ_d·Σ|q_i·k_i| ≤ (d + 1)·u·‖q‖·‖k‖ (u = 2⁻²⁴, any
// summation order), which moves p by p·Δs: several 1e-6 where p is large and |s| ≈ 30. So every
// entry whose bound p·Δs (with the soft-cap's, the bias's, the lse subtraction's and exp's own
// roundings, see errorBound) can exceed REFINE_TOL is recomputed by the JS path (attentionScore,
// float64), and the rest agree with it within REFINE_TOL. There are few such entries in a row (p
// sums to 1); a column can have many (a sink token's), costing up to the JS path's own time.
// attentionScores.ts stays the reference: test/unit/keptFast.test.ts checks these against it on
// every family.
import { attentionScore, type LayerScores } from './attentionScores';
import { attr, GraphBuilder } from './onnxGraph';
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

function softcap(g: GraphBuilder, t: string, cap: number): string {
  return cap ? g.op('Mul', [g.op('Tanh', [g.op('Div', [t, g.f32([cap], [])])]), g.f32([cap], [])], {}, 'softcap') : t;
}

/** p = Where(mask, exp((s − hi) − lo), 0) for scores s (bias already added). */
function probabilities(g: GraphBuilder, s: string, hi: string, lo: string, mask: string, out: string): void {
  const e = g.op('Exp', [g.op('Sub', [g.op('Sub', [s, hi]), lo])]);
  g.op('Where', [mask, e, g.f32([0], [])], {}, 'masked', out);
}

/** positions pos [T] inside [first_l, last_l] of layer l (both [L] inputs), [T] bool */
function rangeMask(g: GraphBuilder, pos: string, first: string, last: string, l: number): string {
  const at = (t: string) => g.op('Gather', [t, g.i64([l], [])], { axis: attr.i(0) });
  return g.op('And', [g.op('GreaterOrEqual', [pos, at(first)]), g.op('LessOrEqual', [pos, at(last)])]);
}

/**
 * Every head's row q of every layer. Inputs: k_l [KV, T, hd] (kept keys), bias_l [H, T], qv
 * [L, KV, hd, G] (row q's scaled query of head kv·G + g), lse_hi, lse_lo [L, H, 1], first, last [L]
 * (the keys row q may attend to, per layer), pos [T] (0..T−1). Outputs p_l [H, T].
 */
function rowsGraph(sh: Shape): Uint8Array {
  const { L, H, KV, hd } = sh;
  const G = H / KV;
  const g = new GraphBuilder('');
  const qv = g.input('qv', 'float', [L, KV, hd, G]);
  const hi = g.input('lse_hi', 'float', [L, H, 1]);
  const lo = g.input('lse_lo', 'float', [L, H, 1]);
  const first = g.input('first', 'float', [L]);
  const last = g.input('last', 'float', [L]);
  const pos = g.input('pos', 'float', ['T']);
  for (let l = 0; l < L; l++) {
    g.within(`layers.${l}`, () => {
      const k = g.input(`k_${l}`, 'float', [KV, 'T', hd]);
      const bias = g.input(`bias_${l}`, 'float', [H, 'T']);
      const at = (t: string) => g.op('Gather', [t, g.i64([l], [])], { axis: attr.i(0) });
      // [KV, T, hd] × [KV, hd, G] reads the keys once; → [KV, G, T] → [H, T]
      let s = g.op('MatMul', [k, at(qv)]);
      s = g.op('Reshape', [g.op('Transpose', [s], { perm: attr.ints([0, 2, 1]) }), g.i64([H, -1])]);
      s = g.op('Add', [softcap(g, s, sh.softcaps[l]!), bias]);
      probabilities(g, s, at(hi), at(lo), rangeMask(g, pos, first, last, l), `p_${l}`);
      g.output(`p_${l}`, 'float', [H, 'T']);
    });
  }
  return g.encode('attnscope_rows', 'kept-run rows: every head of every layer, one query');
}

/**
 * Every head's column k of every layer. Inputs: q_l [H, T, hd] (kept scaled queries), lse_hi_l,
 * lse_lo_l [H, T], kv [L, H, hd, 1] (key k of head h's KV group), bias [L, H, 1] (bias[h, k]),
 * first, last [L] (the queries that may attend to k, per layer), pos [T]. Outputs p_l [H, T].
 */
function columnsGraph(sh: Shape): Uint8Array {
  const { L, H, hd } = sh;
  const g = new GraphBuilder('');
  const kv = g.input('kv', 'float', [L, H, hd, 1]);
  const bias = g.input('bias', 'float', [L, H, 1]);
  const first = g.input('first', 'float', [L]);
  const last = g.input('last', 'float', [L]);
  const pos = g.input('pos', 'float', ['T']);
  for (let l = 0; l < L; l++) {
    g.within(`layers.${l}`, () => {
      const q = g.input(`q_${l}`, 'float', [H, 'T', hd]);
      const hi = g.input(`lse_hi_${l}`, 'float', [H, 'T']);
      const lo = g.input(`lse_lo_${l}`, 'float', [H, 'T']);
      const at = (t: string) => g.op('Gather', [t, g.i64([l], [])], { axis: attr.i(0) });
      let s = g.op('Reshape', [g.op('MatMul', [q, at(kv)]), g.i64([H, -1])]);
      s = g.op('Add', [softcap(g, s, sh.softcaps[l]!), at(bias)]);
      probabilities(g, s, hi, lo, rangeMask(g, pos, first, last, l), `p_${l}`);
      g.output(`p_${l}`, 'float', [H, 'T']);
    });
  }
  return g.encode('attnscope_columns', 'kept-run columns: every head of every layer, one key');
}

/**
 * One head's block of queries × keys. Inputs: q [R, hd], k [N, hd], bias [N], lse_hi, lse_lo
 * [R, 1], qpos [R, 1], kpos [N], window [] (keys qpos − window < kpos ≤ qpos; a window ≥ T for
 * none). Output p [R, N]. The soft-cap is the graph's (one session per cap value).
 */
function tileGraph(hd: number, cap: number): Uint8Array {
  const g = new GraphBuilder('');
  const q = g.input('q', 'float', ['R', hd]);
  const k = g.input('k', 'float', ['N', hd]);
  const bias = g.input('bias', 'float', ['N']);
  const hi = g.input('lse_hi', 'float', ['R', 1]);
  const lo = g.input('lse_lo', 'float', ['R', 1]);
  const qpos = g.input('qpos', 'float', ['R', 1]);
  const kpos = g.input('kpos', 'float', ['N']);
  const window = g.input('window', 'float', []);
  let s = g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([1, 0]) })]);
  s = g.op('Add', [softcap(g, s, cap), bias]);
  const mask = g.op('And', [g.op('LessOrEqual', [kpos, qpos]), g.op('Greater', [kpos, g.op('Sub', [qpos, window])])]);
  probabilities(g, s, hi, lo, mask, 'p');
  g.output('p', 'float', ['R', 'N']);
  return g.encode('attnscope_tile', 'kept-run pattern tile: one head, queries × keys');
}

const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

/** lse as a float32 pair: hi = fround(lse), lo = fround(lse − hi). */
function splitLse(lse: Float64Array): { hi: Float32Array; lo: Float32Array } {
  const hi = Float32Array.from(lse);
  const lo = new Float32Array(lse.length);
  for (let i = 0; i < lse.length; i++) lo[i] = lse[i]! - hi[i]!;
  return { hi, lo };
}

/** Sessions are cached by graph shape (and thread count): a new kept run of the same model reuses them. */
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
    });
    s.catch(() => sessions.delete(full));
    sessions.set(full, s);
  }
  return s;
}

/** A kept run's rows, columns and pattern tiles through onnxruntime (see the file comment). */
export class QueryGraph {
  private readonly shape: Shape;
  private readonly T: number;
  /** [T] 0..T−1 */
  private readonly pos: Float32Array;
  /** per layer: lse as hi/lo [H, T] (the columns graph's inputs; rows and tiles gather from them) */
  private readonly lse: { hi: Float32Array; lo: Float32Array }[];
  /** per layer, computed on first use: ‖k‖ [KV, T] and ‖q'‖ [H, T] (float64), and max |bias| per head [H] */
  private norms: { k: Float64Array; q: Float64Array; bias: Float64Array }[] | undefined;
  /** entries recomputed by the JS path so far (see the file comment) */
  refined = 0;

  constructor(
    private readonly layers: LayerScores[],
    private readonly threads?: number,
  ) {
    this.shape = shapeOf(layers);
    this.T = layers[0]!.T;
    this.pos = Float32Array.from({ length: this.T }, (_, i) => i);
    this.lse = layers.map((s) => splitLse(s.lse));
  }

  private normsOf(l: number): { k: Float64Array; q: Float64Array; bias: Float64Array } {
    this.norms ??= this.layers.map((s) => {
      const rowNorms = (x: Float32Array, n: number) => {
        const out = new Float64Array(n);
        for (let r = 0; r < n; r++) {
          let a = 0;
          for (let d = r * s.hd; d < (r + 1) * s.hd; d++) a += x[d]! * x[d]!;
          out[r] = Math.sqrt(a);
        }
        return out;
      };
      const bias = new Float64Array(s.H);
      for (let h = 0; h < s.H; h++) for (let k = 0; k < s.T; k++) bias[h] = Math.max(bias[h]!, Math.abs(s.bias[h * s.T + k]!));
      return { k: rowNorms(s.k, s.KV * s.T), q: rowNorms(s.q, s.H * s.T), bias };
    });
    return this.norms[l]!;
  }

  /**
   * Recomputes by the JS path the entries of head h's row q (keys k0..k1−1, p[k − k0]) whose float32
   * error could exceed REFINE_TOL.
   */
  private refineRow(l: number, h: number, q: number, k0: number, k1: number, p: Float32Array): void {
    const s = this.layers[l]!;
    const { T } = s;
    const n = this.normsOf(l);
    const kv = Math.floor(h / (s.H / s.KV));
    const lse = s.lse[h * T + q]!;
    const { c0, c1 } = boundTerms(s.hd, s.softcap, n.bias[h]!, Math.abs(lse));
    const qn = n.q[h * T + q]!;
    const kn = n.k;
    const ko = kv * T;
    // p below pMin cannot need it (the row's largest bound), else the entry's own bound decides
    let knMax = 0;
    for (let k = k0; k < k1; k++) if (p[k - k0]! > 0 && kn[ko + k]! > knMax) knMax = kn[ko + k]!;
    const pMin = REFINE_TOL / (c0 + c1 * qn * knMax);
    for (let k = k0; k < k1; k++) {
      const v = p[k - k0]!;
      if (v > pMin && v * (c0 + c1 * qn * kn[ko + k]!) > REFINE_TOL) {
        p[k - k0] = Math.exp(attentionScore(s, h, q, k) - lse);
        this.refined++;
      }
    }
  }

  /** The same for head h's column k (queries 0..T−1, p[q]). */
  private refineColumn(l: number, h: number, k: number, p: Float32Array): void {
    const s = this.layers[l]!;
    const { T } = s;
    const n = this.normsOf(l);
    const kn = n.k[Math.floor(h / (s.H / s.KV)) * T + k]!;
    // boundTerms per query, unrolled: c0 = a0 + aL·|lse[q]|
    const { c0: a0, c1 } = boundTerms(s.hd, s.softcap, n.bias[h]!, 0);
    const aL = SLACK * U * 4;
    const c1k = c1 * kn;
    for (let q = 0; q < T; q++) {
      const v = p[q]!;
      if (!(v > 0)) continue;
      const lse = s.lse[h * T + q]!;
      if (v * (a0 + aL * Math.abs(lse) + c1k * n.q[h * T + q]!) > REFINE_TOL) {
        p[q] = Math.exp(attentionScore(s, h, q, k) - lse);
        this.refined++;
      }
    }
  }

  private key(kind: string): string {
    const { L, H, KV, hd, softcaps } = this.shape;
    return `${kind}:${L}:${H}:${KV}:${hd}:${softcaps.join(',')}`;
  }

  /** Every head's row q (from: keys q attends to), per layer [H, T] (zeros where masked). */
  async rows(q: number): Promise<Float32Array[]> {
    const { L, H, KV, hd } = this.shape;
    const G = H / KV;
    const T = this.T;
    const sess = await session(this.key('rows'), this.threads, () => rowsGraph(this.shape));
    const qv = new Float32Array(L * KV * hd * G);
    const hi = new Float32Array(L * H);
    const lo = new Float32Array(L * H);
    const first = new Float32Array(L);
    const last = new Float32Array(L).fill(q);
    const feeds: Record<string, ort.Tensor> = {};
    this.layers.forEach((s, l) => {
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / G);
        const gi = h % G;
        const src = (h * T + q) * hd;
        for (let d = 0; d < hd; d++) qv[((l * KV + kv) * hd + d) * G + gi] = s.q[src + d]!;
        hi[l * H + h] = this.lse[l]!.hi[h * T + q]!;
        lo[l * H + h] = this.lse[l]!.lo[h * T + q]!;
      }
      first[l] = s.window > 0 ? Math.max(0, q - s.window + 1) : 0;
      feeds[`k_${l}`] = f32(s.k, [KV, T, hd]);
      feeds[`bias_${l}`] = f32(s.bias, [H, T]);
    });
    Object.assign(feeds, { qv: f32(qv, [L, KV, hd, G]), lse_hi: f32(hi, [L, H, 1]), lse_lo: f32(lo, [L, H, 1]), first: f32(first, [L]), last: f32(last, [L]), pos: f32(this.pos, [T]) });
    const out = await this.fetch(sess, feeds);
    out.forEach((p, l) => {
      for (let h = 0; h < H; h++) this.refineRow(l, h, q, first[l]!, q + 1, p.subarray(h * T + first[l]!, h * T + q + 1));
    });
    return out;
  }

  /** Every head's column k (to: how much each query attends to k), per layer [H, T] (zeros where masked). */
  async columns(k: number): Promise<Float32Array[]> {
    const { L, H, KV, hd } = this.shape;
    const G = H / KV;
    const T = this.T;
    const sess = await session(this.key('columns'), this.threads, () => columnsGraph(this.shape));
    const kv = new Float32Array(L * H * hd);
    const bias = new Float32Array(L * H);
    const first = new Float32Array(L).fill(k);
    const last = new Float32Array(L);
    const feeds: Record<string, ort.Tensor> = {};
    this.layers.forEach((s, l) => {
      for (let h = 0; h < H; h++) {
        const src = (Math.floor(h / G) * T + k) * hd;
        kv.set(s.k.subarray(src, src + hd), (l * H + h) * hd);
        bias[l * H + h] = s.bias[h * T + k]!;
      }
      last[l] = s.window > 0 ? Math.min(T - 1, k + s.window - 1) : T - 1;
      feeds[`q_${l}`] = f32(s.q, [H, T, hd]);
      feeds[`lse_hi_${l}`] = f32(this.lse[l]!.hi, [H, T]);
      feeds[`lse_lo_${l}`] = f32(this.lse[l]!.lo, [H, T]);
    });
    Object.assign(feeds, { kv: f32(kv, [L, H, hd, 1]), bias: f32(bias, [L, H, 1]), first: f32(first, [L]), last: f32(last, [L]), pos: f32(this.pos, [T]) });
    const out = await this.fetch(sess, feeds);
    out.forEach((p, l) => {
      for (let h = 0; h < H; h++) this.refineColumn(l, h, k, p.subarray(h * T, (h + 1) * T));
    });
    return out;
  }

  private async fetch(sess: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
    const out = await sess.run(feeds);
    return this.layers.map((_, l) => out[`p_${l}`]!.data as Float32Array);
  }

  /**
   * Head (layer, h)'s probabilities for queries q0..q1−1 × keys k0..k1−1, row by row: `each(q, p)`
   * gets row q's values for keys k0..k1−1 (zeros where masked; valid until the next call).
   */
  async tile(layer: number, h: number, q0: number, q1: number, k0: number, k1: number, each: (q: number, p: Float32Array) => void): Promise<void> {
    const s = this.layers[layer]!;
    const { T, hd } = s;
    const sess = await session(`tile:${hd}:${s.softcap}`, this.threads, () => tileGraph(hd, s.softcap));
    const kv = Math.floor(h / (s.H / s.KV));
    const N = k1 - k0;
    // Views into the kept buffers (no copy): keys k0..k1 of the head's KV group and their biases.
    const k = f32(s.k.subarray((kv * T + k0) * hd, (kv * T + k1) * hd), [N, hd]);
    const bias = f32(s.bias.subarray(h * T + k0, h * T + k1), [N]);
    const kpos = f32(this.pos.subarray(k0, k1), [N]);
    const window = f32(new Float32Array([s.window > 0 ? s.window : T + 1]), []);
    const { hi, lo } = this.lse[layer]!;
    for (let a = q0; a < q1; a += TILE_ROWS) {
      const b = Math.min(q1, a + TILE_ROWS);
      const R = b - a;
      const out = await sess.run({
        q: f32(s.q.subarray((h * T + a) * hd, (h * T + b) * hd), [R, hd]),
        k,
        bias,
        lse_hi: f32(hi.subarray(h * T + a, h * T + b), [R, 1]),
        lse_lo: f32(lo.subarray(h * T + a, h * T + b), [R, 1]),
        qpos: f32(this.pos.subarray(a, b), [R, 1]),
        kpos,
        window,
      });
      const p = out['p']!.data as Float32Array;
      for (let r = 0; r < R; r++) {
        const row = p.subarray(r * N, (r + 1) * N);
        this.refineRow(layer, h, a + r, k0, k1, row);
        each(a + r, row);
      }
    }
  }
}
