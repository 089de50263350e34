// One layer's attention in the graph, in blocks of query rows, so no graph ever forms a layer's whole
// [H, T, K] scores: an ONNX Loop over blocks of B rows computes each block's scores [H, B, K],
// softmax, p·v and (inspection graphs) the head metrics' partial sums and the qk variant's
// max_key / log_max_p; each block's buffers are freed before the next one. B is chosen at run time:
// at most BLOCK_ROWS rows, and at most BLOCK_ELEMENTS values (16 MB) in one [H, B, K] float32
// buffer: 64 rows up to about 7,000 keys for 9 heads, 58 rows at 8,000 tokens (and B = T below 64).
//
// Rows are independent in attention, so a block's numbers are the rows' numbers: the same products,
// the same masks (causal, sliding window: −1e9 as HF's finfo.min), the same softmax. A block reads
// only the keys its rows can see (up to its last row; from its first row's window start with a
// sliding window): the keys it skips would get exactly 0 (exp(−1e9 − max) underflows in float32),
// so the causal half of the scores is never computed. Grouped-query heads share their KV head's
// MatMul (no repeat_kv copies). Without a soft-cap the steering bias is G more key dimensions (and a
// one-hot on each query), summed by the score MatMul itself. The query rows
// are padded with zero rows up to a whole number of blocks (their outputs are cut off again, and
// they carry zero weight in the metrics). The pattern variant (every probability fetched) runs as one
// inline block, its Softmax writing straight into the pattern output.
import { attr, softcap, type GraphBuilder } from './onnxGraph';

/** The most values of one [H, B, K] buffer in a block (16 MB of float32). */
export const BLOCK_ELEMENTS = 1 << 22;
/**
 * The most rows in a block: smaller blocks skip more of the causal half (a block reads keys up to its
 * last row), larger ones pay the Loop's per-iteration cost less often.
 */
export const BLOCK_ROWS = 64;
/**
 * The graph input that bounds the blocks, int64 [rows, values], fed by every run (onnxruntime-node
 * does not feed an initializer's override, so it has no default in the graph): CPU_BLOCK_LIMITS,
 * measured best on CPU, or GPU_BLOCK_LIMITS on CUDA, where each of a block's ~90 nodes is a kernel
 * launch and the buffers need not fit a CPU cache: blocks of up to 1,024 rows and 2²⁵ values (128 MB
 * of float32 per buffer, a few alive at once), so a Qwen2.5-0.5B-shaped layer (14 heads) at 4,096
 * tokens runs 8 blocks instead of 64. Chosen from launch counts and memory, not measured: no GPU was
 * available.
 */
export const BLOCK_LIMITS_INPUT = 'attention_block_limits';
/**
 * The most int32 values the run-wide match lists may hold (see hoistMatches): 2²² (16 MiB). A
 * prompt with more (many repeats of a token: up to T²/2 pairs) computes its matches in every layer's
 * blocks instead, as a graph without the lists would.
 */
export const MATCH_LIST_VALUES = 1 << 22;
/** ONNX's int32 element type: the match lists' flat positions (a block's [B·Kb] values stay far below 2³¹) */
const INT32 = 6;
/** [rows, values, match-list values] */
export type BlockLimits = readonly [number, number, number];
export const CPU_BLOCK_LIMITS: BlockLimits = [BLOCK_ROWS, BLOCK_ELEMENTS, MATCH_LIST_VALUES];
export const GPU_BLOCK_LIMITS: BlockLimits = [1024, 1 << 25, MATCH_LIST_VALUES];

/** Values the layers share, built once per graph (see blockPlan). */
export interface BlockPlan {
  H: number;
  /** number of query rows T (int64 scalar) */
  T: string;
  /** number of keys K (int64 scalar; P + T with a cache) */
  K: string;
  /** the first query's position (int64 scalar: 0, or P with a cache) */
  start: string;
  /** [K] int64 key positions */
  kpos: string;
  /** rows per block and block count (int64 scalars), and the padded row count nb·B − T as [1] */
  B: string;
  nb: string;
  padRows: string;
  /**
   * inspection graphs: [T] token ids and the metrics' shared values; `counts` [2]: how many rows have
   * an induction match (an earlier key whose previous token is the row's token) and a duplicate
   * (an earlier key with the row's token), over every key: the same for every layer, so counted once
   */
  metrics?: { ids: string; idsPad: string; prevIds: string; tMinus1: string; counts: string; hoisted?: HoistedMatches };
}

/**
 * The metrics' per-block inputs of a layer whose block reads keys 0 … hi−1 (no sliding window), the
 * same in every such layer, so computed once per run (see hoistMatches) instead of in each layer's
 * blocks: [nb, B] row weights, flat own-key and previous-key positions and the previous key's 1/0,
 * and, when `use` (bool scalar) says they fit the run's match-list limit, the induction and
 * duplicate-token flat positions of block i as the first nInd[i] / nDup[i] entries of row i of the
 * [nb, M] int32 `ind` / `dup` (padded with 0).
 */
interface HoistedMatches {
  use: string;
  rowW: string;
  diagIdx: string;
  prevIdx: string;
  prevOk: string;
  ind: string;
  dup: string;
  nInd: string;
  nDup: string;
}

/**
 * The block sizes for T query rows over K keys with H heads: B = clamp(min(values / (H·K), rows), 1, T)
 * with [rows, values] the run's BLOCK_LIMITS_INPUT, or clamp(rows, 1, T) when `rows` is given (tests:
 * a constant, and no limits input).
 */
export function blockPlan(g: GraphBuilder, H: number, T: string, K: string, start: string, kpos: string, ids: string | undefined, rows?: number): BlockPlan {
  if (rows !== undefined && !(Number.isInteger(rows) && rows >= 1)) throw new Error(`internal: block rows ${rows}`);
  return g.within('attention_blocks', () => {
    let wanted: string;
    let listValues: string;
    if (rows !== undefined) {
      wanted = g.i64([rows], []);
      listValues = g.i64([MATCH_LIST_VALUES], []);
    } else {
      const limits = g.input(BLOCK_LIMITS_INPUT, 'int64', [3]);
      const [maxRows, maxValues, maxList] = [0, 1, 2].map((i) => g.op('Gather', [limits, g.i64([i], [])], { axis: attr.i(0) }));
      wanted = g.op('Min', [g.op('Div', [maxValues!, g.op('Mul', [K, g.i64([H], [])])]), maxRows!]);
      listValues = maxList!;
    }
    const B = g.op('Max', [g.op('Min', [T, wanted]), g.i64([1], [])]);
    const nb = g.op('Div', [g.op('Sub', [g.op('Add', [T, B]), g.i64([1], [])]), B]);
    const padRows = g.op('Reshape', [g.op('Sub', [g.op('Mul', [nb, B]), T]), g.i64([1])]);
    let metrics: BlockPlan['metrics'];
    if (ids) {
      // −1 for the first token's "previous" id, −2 for padded rows: neither matches a real id or each other.
      const prevIds = g.op('Concat', [g.i64([-1]), g.op('Slice', [ids, g.i64([0]), g.i64([-1])])], { axis: attr.i(0) });
      const idsPad = g.op('Pad', [ids, g.op('Concat', [g.i64([0]), padRows], { axis: attr.i(0) }), g.i64([-2], [])]);
      const tMinus1 = g.op('Sub', [g.op('Cast', [T], { to: attr.i(1) }), g.f32([1], [])]);
      metrics = hoistMatches(g, { T, K, start, kpos, B, nb }, { ids, idsPad, prevIds, tMinus1 }, listValues);
    }
    return { H, T, K, start, kpos, B, nb, padRows, ...(metrics ? { metrics } : {}) };
  });
}

/**
 * The metrics' values that are the same in every layer, in blocks of B rows (a [B, K] mask at a
 * time), once per run: the match counts (rows with an induction match, an earlier key whose previous
 * token is the row's token, and with a duplicate, an earlier key with the row's token; over every
 * key) and the per-block inputs of the layers without a sliding window (HoistedMatches), which would
 * otherwise be recomputed by every layer's every block (about 30 small nodes, NonZero twice). The
 * match lists take a second pass, run only when they fit `listValues` (int64 scalar: 2·nb·M values
 * for the longest list M); else the layers compute them per block (matchesFor's If).
 */
function hoistMatches(
  g: GraphBuilder,
  p: { T: string; K: string; start: string; kpos: string; B: string; nb: string },
  m: { ids: string; idsPad: string; prevIds: string; tMinus1: string },
  listValues: string,
): NonNullable<BlockPlan['metrics']> {
  const { B, nb, start, kpos } = p;
  const blockRows = (i: string) => {
    const s0 = g.op('Mul', [i, B]);
    const local = g.op('Range', [s0, g.op('Add', [s0, B]), g.i64([1], [])]);
    const pos = g.op('Add', [local, start]);
    // The keys a block without a window reads: 0 … hi−1 (its last row's position), so hi per row of its flat [B·hi] layout.
    const hi = g.op('Min', [g.op('Add', [start, g.op('Add', [s0, B])]), p.K]);
    return { local, pos, hi, matches: matchMasks(g, m.idsPad, local, pos, kpos) };
  };
  const counted = g.subgraph('match_counts', [['i', 'int64', []], ['cond', 'bool', []]], (i, cond) => {
    const r = blockRows(i!);
    const ind = r.matches(m.prevIds);
    const dup = r.matches(m.ids);
    const rowsWith = (mask: string) => {
      const any = g.op('ReduceMax', [g.op('Cast', [mask], { to: attr.i(1) })], { axes: attr.ints([1]), keepdims: attr.i(0) });
      return g.op('ReduceSum', [any, g.i64([0])], { keepdims: attr.i(1) }); // [1]
    };
    const pairs = (mask: string) => g.op('ReduceSum', [g.op('Cast', [mask], { to: attr.i(7) }), g.i64([0, 1])], { keepdims: attr.i(1) }); // [1]
    // as a layer's block computes them for keys 0 … hi−1
    const k = rowKeys(g, p.T, m.tMinus1, r.local, r.pos, r.hi, g.i64([0], []));
    return [
      [cond!, 'bool'],
      [g.op('Concat', [rowsWith(ind), rowsWith(dup)], { axis: attr.i(0) }), 'float'],
      [g.op('Concat', [pairs(ind), pairs(dup)], { axis: attr.i(0) }), 'int64'],
      [k.rowW, 'float'],
      [k.diagIdx, 'int64'],
      [k.prevIdx, 'int64'],
      [k.prevOk, 'float'],
    ];
  });
  const [perBlock, pairsPer, rowW, diagIdx, prevIdx, prevOk] = g.opN('Loop', [nb, ''], 6, { body: attr.g(counted) }, 'match_counts');
  const counts = g.op('ReduceSum', [perBlock!, g.i64([0])], { keepdims: attr.i(0) }); // [2]
  const [nInd, nDup] = g.opN('Split', [pairsPer!, g.i64([1, 1])], 2, { axis: attr.i(1) }).map((t) => g.op('Squeeze', [t, g.i64([1])])); // [nb] each
  const M = g.op('ReduceMax', [pairsPer!], { keepdims: attr.i(0) }); // scalar
  const use = g.op('LessOrEqual', [g.op('Mul', [g.op('Mul', [M, nb]), g.i64([2], [])]), listValues]);
  // The lists: NonZero of each block's masks over keys 0 … hi−1, as r·hi + k, padded to M (no pass when they do not fit).
  const listed = g.subgraph('match_lists', [['i', 'int64', []], ['cond', 'bool', []]], (i, cond) => {
    const r = blockRows(i!);
    const hi1 = g.op('Reshape', [r.hi, g.i64([1])]);
    const flat = (keyIds: string) => {
      const mask = g.op('Slice', [r.matches(keyIds), g.i64([0]), hi1, g.i64([1])]); // [B, hi]
      const [row, key] = g.opN('Split', [g.op('NonZero', [mask]), g.i64([1, 1])], 2, { axis: attr.i(0) });
      const f = g.op('Reshape', [g.op('Add', [g.op('Mul', [row!, r.hi]), key!]), g.i64([-1])]);
      const pad = g.op('Reshape', [g.op('Sub', [M, g.op('Shape', [f])]), g.i64([1])]);
      return g.op('Cast', [g.op('Pad', [f, g.op('Concat', [g.i64([0]), pad], { axis: attr.i(0) })])], { to: attr.i(INT32) });
    };
    return [[cond!, 'bool'], [flat(m.prevIds), 'int32'], [flat(m.ids), 'int32']];
  });
  const trips = g.op('Where', [use, nb, g.i64([0], [])]);
  const [ind, dup] = g.opN('Loop', [trips, ''], 2, { body: attr.g(listed) }, 'match_lists');
  return { ...m, counts, hoisted: { use, rowW: rowW!, diagIdx: diagIdx!, prevIdx: prevIdx!, prevOk: prevOk!, ind: ind!, dup: dup!, nInd: nInd!, nDup: nDup! } };
}

/**
 * One layer's attention inputs: q [H, T, hd] already times the score scale, k [KV, K, hd], v [KV, K, hd]
 * (head h reads KV head ⌊h / (H / KV)⌋, HF's repeat_kv), bias [H, 1, K].
 */
export interface LayerAttention {
  q: string;
  k: string;
  v: string;
  kvHeads: number;
  bias: string;
  /** sliding window (0: none) */
  window: number;
  /** attention soft-cap (0: none) */
  softcap: number;
  hd: number;
  /** head metrics partial sums (inspection graphs) */
  metrics: boolean;
  /** the qk variant's max_key [H, T] int64 and log_max_p [H, T] */
  lse: boolean;
}

export interface LayerAttentionOut {
  /** [H, T, hd] each head's p·v */
  ctx: string;
  /** [H, M] the head metrics (METRIC_ORDER) when asked */
  metrics?: string;
  maxKey?: string;
  logMaxP?: string;
}

/** The rows of one block: positions [B] (absolute), local indices [B] among the T new rows, and the memoised masks. */
interface Rows {
  pos: string;
  local: string;
  masks: Map<number, string>;
  match?: BlockMatches;
  /** the block's index (int64 scalar) in a blocked layer's Loop: reads the run's HoistedMatches */
  block?: string;
}

/**
 * The keys a block reads: positions [Kb] from `lo` (int64 scalar) on, their count `K` (scalar), the
 * layer's kT [KV, hd, Kb], v [KV, Kb, hd] and bias [H, 1, Kb], the token ids at those keys and the ids
 * before them (metrics), and whether key 0 is among them (`lo` = 0: the sink).
 */
interface Keys {
  kpos: string;
  K: string;
  lo: string;
  kT: string;
  v: string;
  /** [H, 1, Kb]; absent when the bias is folded into kT (a last row of kT, with a 1 appended to each query) */
  bias?: string;
  /** the [1] bounds lo, hi the block's keys were sliced with (absent: every key), for the metrics' token ids */
  range?: [string, string];
  /** float scalar 1 when key 0 is the block's first key, else 0 (undefined: always 1) */
  hasSink?: string;
}

/** The metrics' per-block inputs (see headMetricSums). */
interface BlockMatches {
  rowW: string;
  indFlat: string;
  dupFlat: string;
  diagIdx: string;
  prevIdx: string;
  /** [B] float: 1 where the previous key is among the block's keys */
  prevOk: string;
}

function tScalarTo1(g: GraphBuilder, t: string): string {
  return g.op('Reshape', [t, g.i64([1])]);
}

/** The additive causal (and sliding-window) mask [B, K] of these rows: 0 where allowed, −1e9 where blocked. */
function maskFor(g: GraphBuilder, keys: Keys, rows: Rows, window: number): string {
  const have = rows.masks.get(window);
  if (have) return have;
  const made = g.within(window > 0 ? `mask_window_${window}` : 'mask', () => {
    const row = g.op('Unsqueeze', [rows.pos, g.i64([1])]);
    const col = g.op('Unsqueeze', [keys.kpos, g.i64([0])]);
    let blocked = g.op('Greater', [col, row]);
    if (window > 0) blocked = g.op('Or', [blocked, g.op('GreaterOrEqual', [g.op('Sub', [row, col]), g.i64([window], [])])]);
    // A large finite value rather than −∞ (as HF does with finfo.min): softmax still gives exactly
    // 0 there, and p·s stays finite (0 × −1e9 = 0) for the entropy in the head metrics.
    return g.op('Where', [blocked, g.f32([-1e9], []), g.f32([0], [])]);
  });
  rows.masks.set(window, made);
  return made;
}

/**
 * The flat [r·Kb + k] positions of these rows' induction and duplicate-token matches among the
 * block's keys (NonZero of their [B, Kb] masks).
 */
function matchLists(g: GraphBuilder, plan: BlockPlan, keys: Keys, rows: Rows): { indFlat: string; dupFlat: string } {
  const m = plan.metrics!;
  const matches = matchMasks(g, m.idsPad, rows.local, rows.pos, keys.kpos);
  const flatOf = (mask: string): string => {
    const [r, k] = g.opN('Split', [g.op('NonZero', [mask]), g.i64([1, 1])], 2, { axis: attr.i(0) });
    return g.op('Reshape', [g.op('Add', [g.op('Mul', [r!, keys.K]), k!]), g.i64([-1])]); // [M]
  };
  const idsAt = (ids: string) => (keys.range ? g.op('Slice', [ids, ...keys.range, g.i64([0])]) : ids);
  return { indFlat: flatOf(matches(idsAt(m.prevIds))), dupFlat: flatOf(matches(idsAt(m.ids))) };
}

/**
 * The match masks of rows (local indices `local`, positions `pos`) over keys at positions `kpos`:
 * given the keys' ids ([Kb]: the token at each key for duplicate-token matches, the token before it
 * for induction), [B, Kb] true where the key comes before the row and its id is the row's token.
 */
function matchMasks(g: GraphBuilder, idsPad: string, local: string, pos: string, kpos: string): (keyIds: string) => string {
  const rowIds = g.op('Unsqueeze', [g.op('Gather', [idsPad, local], { axis: attr.i(0) }), g.i64([1])]); // [B, 1]
  const before = g.op('Less', [g.op('Unsqueeze', [kpos, g.i64([0])]), g.op('Unsqueeze', [pos, g.i64([1])])]); // [B, Kb]
  return (keyIds) => g.op('And', [g.op('Equal', [rowIds, g.op('Unsqueeze', [keyIds, g.i64([0])])]), before]);
}

/**
 * Row weights 1/(T−1) on rows 1..T−1 (0 on row 0 and on padded rows), and each row's own key and
 * previous key in a block's flat [B·Kb] layout of keys lo … lo+Kb−1 (padded rows clamped inside
 * the block's keys, they carry no weight). A previous key before `lo` (a window of one key) is
 * outside the window: prevOk is then 0.
 */
function rowKeys(g: GraphBuilder, T: string, tMinus1: string, local: string, pos: string, Kb: string, lo: string): Omit<BlockMatches, 'indFlat' | 'dupFlat'> {
  const counted = g.op('And', [g.op('Less', [local, T]), g.op('Greater', [pos, g.i64([0], [])])]);
  const rowW = g.op('Div', [g.op('Cast', [counted], { to: attr.i(1) }), tMinus1]);
  const rowBase = g.op('Mul', [g.op('Sub', [local, g.op('Gather', [local, g.i64([0], [])], { axis: attr.i(0) })]), Kb]);
  const self = g.op('Min', [g.op('Sub', [pos, lo]), g.op('Sub', [Kb, g.i64([1], [])])]);
  const prev = g.op('Sub', [self, g.i64([1], [])]);
  return {
    rowW,
    diagIdx: g.op('Add', [rowBase, self]),
    prevIdx: g.op('Add', [rowBase, g.op('Max', [prev, g.i64([0], [])])]),
    prevOk: g.op('Cast', [g.op('GreaterOrEqual', [prev, g.i64([0], [])])], { to: attr.i(1) }),
  };
}

/**
 * The metrics' inputs for these rows (no cache: positions are local indices): row weights
 * 1/(T−1) on rows 1..T−1 (0 on row 0 and on padded rows), the flat [r·K + k] positions that count
 * for induction (k < q, ids[k−1] == ids[q]) and duplicate-token attention (k < q, ids[k] == ids[q])
 * among the block's keys, and each row's own and previous key.
 */
function matchesFor(g: GraphBuilder, plan: BlockPlan, keys: Keys, rows: Rows, window: number): BlockMatches {
  if (rows.match) return rows.match;
  const m = plan.metrics!;
  const h = m.hoisted;
  if (h && rows.block !== undefined && window === 0) {
    // Keys 0 … hi−1, as the run-wide values were computed for (hoistMatches).
    const i = rows.block;
    rows.match = g.within('metric_rows', () => {
      const at = (t: string) => g.op('Gather', [t, i], { axis: attr.i(0) });
      const hoisted = g.subgraph('hoisted', [], () => {
        const list = (t: string, n: string) => g.op('Slice', [at(t), g.i64([0]), g.op('Reshape', [at(n), g.i64([1])]), g.i64([0])]);
        return [[list(h.ind, h.nInd), 'int32'], [list(h.dup, h.nDup), 'int32']];
      });
      const computed = g.subgraph('per_block', [], () => {
        const { indFlat, dupFlat } = matchLists(g, plan, keys, rows);
        return [[g.op('Cast', [indFlat], { to: attr.i(INT32) }), 'int32'], [g.op('Cast', [dupFlat], { to: attr.i(INT32) }), 'int32']];
      });
      const [indFlat, dupFlat] = g.opN('If', [h.use], 2, { then_branch: attr.g(hoisted), else_branch: attr.g(computed) }, 'match_lists');
      return { rowW: at(h.rowW), indFlat: indFlat!, dupFlat: dupFlat!, diagIdx: at(h.diagIdx), prevIdx: at(h.prevIdx), prevOk: at(h.prevOk) };
    });
    return rows.match;
  }
  rows.match = g.within('metric_rows', () => ({ ...rowKeys(g, plan.T, m.tMinus1, rows.local, rows.pos, keys.K, keys.lo), ...matchLists(g, plan, keys, rows) }));
  return rows.match;
}

/**
 * Per-head sums over these rows [H, 6] (rows weighted by rowW: entropy, sink, previous-token, self;
 * then the induction and duplicate-token totals). Summed over blocks, the first four are the
 * metrics' means and the last two divided by the rows with a match (BlockPlan.metrics.counts) are the
 * induction and duplicate-token scores; see METRIC_ORDER and test/reference/metrics.ts.
 * Cheap passes over the block's values, no log over them: with s the (finite) masked scores and lse
 * the row's log-sum-exp, −Σ p ln p = lse − Σ p·s and lse = max s − ln(max p) (both maxima at the
 * same key; max p ≥ 1/K keeps the log well conditioned). `smax` and `logPmax` [H, B] are the row's
 * largest score and ln of its largest probability.
 */
function headMetricSums(g: GraphBuilder, H: number, probs: string, masked: string, smax: string, logPmax: string, x: BlockMatches, hasSink: string | undefined): string {
  return g.within('metrics', () => {
    const ps = g.op('ReduceSum', [g.op('Mul', [probs, masked]), g.i64([2])], { keepdims: attr.i(0) });
    const entRow = g.op('Sub', [g.op('Sub', [smax, logPmax]), ps]);
    const flat = g.op('Reshape', [probs, g.i64([H, -1])]);
    let sinkRow = g.op('Gather', [probs, g.i64([0], [])], { axis: attr.i(2) }); // [H, B]
    // Key 0 outside the block's keys (a window that starts later): every row's sink attention is exactly 0.
    if (hasSink) sinkRow = g.op('Mul', [sinkRow, hasSink]);
    const selfRow = g.op('Gather', [flat, x.diagIdx], { axis: attr.i(1) });
    const prevRow = g.op('Mul', [g.op('Gather', [flat, x.prevIdx], { axis: attr.i(1) }), x.prevOk]);
    const rows = g.op('Concat', [entRow, sinkRow, prevRow, selfRow].map((r) => g.op('Unsqueeze', [r, g.i64([1])])), { axis: attr.i(1) }); // [H, 4, B]
    const means = g.op('Reshape', [g.op('MatMul', [rows, g.op('Unsqueeze', [x.rowW, g.i64([1])])]), g.i64([H, 4])]);
    const indSum = g.op('ReduceSum', [g.op('Gather', [flat, x.indFlat], { axis: attr.i(1) }), g.i64([1])], { keepdims: attr.i(1) }); // [H, 1]
    const dupSum = g.op('ReduceSum', [g.op('Gather', [flat, x.dupFlat], { axis: attr.i(1) }), g.i64([1])], { keepdims: attr.i(1) });
    return g.op('Concat', [means, indSum, dupSum], { axis: attr.i(1) });
  });
}

/** The metrics [H, 6] from their sums over every row [H, 6] and the match counts [2] (NaN where no row qualifies). */
function finishMetrics(g: GraphBuilder, sums: string, counts: string): string {
  return g.within('metrics', () => {
    const [means, matched] = g.opN('Split', [sums, g.i64([4, 2])], 2, { axis: attr.i(1) });
    return g.op('Concat', [means!, g.op('Div', [matched!, g.op('Unsqueeze', [counts, g.i64([0])])])], { axis: attr.i(1) });
  });
}

interface BlockOut {
  ctx: string;
  probs: string;
  sums?: string;
  maxKey?: string;
  logMaxP?: string;
}

/**
 * One block of rows: scores, soft-cap, bias, mask, softmax, p·v, and what the inspection asks of them.
 * Grouped-query attention without repeat_kv: the G = H / KV query heads that read one KV head are
 * one MatMul's rows ([KV, G·B, hd] against that head's [KV, hd, Kb] keys, then its values), and
 * [KV, G·B, ·] and [H, B, ·] are the same values in the same order (head h = kv·G + g), so the
 * reshapes between them move nothing. The keys and values are sliced per block once per KV head.
 */
function attendBlock(g: GraphBuilder, plan: BlockPlan, keys: Keys, rows: Rows, qb: string, a: LayerAttention, probsName: string | undefined): BlockOut {
  const grouped = a.kvHeads !== plan.H;
  const toGroups = (t: string) => (grouped ? g.op('Reshape', [t, g.i64([a.kvHeads, -1, 0])]) : t);
  const toHeads = (t: string) => (grouped ? g.op('Reshape', [t, g.i64([plan.H, -1, 0])]) : t);
  // The model's own score transform comes first; AttnScope's bias and the mask are added after it.
  const qk = softcap(g, toHeads(g.op('MatMul', [toGroups(qb), keys.kT], {}, 'qk')), a.softcap);
  const raw = keys.bias ? g.op('Add', [qk, keys.bias], {}, 'steer_bias') : qk;
  const masked = g.op('Add', [raw, maskFor(g, keys, rows, a.window)], {}, 'causal_mask');
  const probs = g.op('Softmax', [masked], { axis: attr.i(-1) }, 'probs', probsName);
  const out: BlockOut = { ctx: toHeads(g.op('MatMul', [toGroups(probs), keys.v], {}, 'pv')), probs };
  if (!a.lse && !a.metrics) return out;
  // Each row's largest score and the log of its largest probability (kept, and used by the
  // entropy): the kept run needs the key of that score, so one TopK gives key and score (ties: the
  // lower index, as ArgMax's first) and the probability is read there (softmax keeps the order);
  // else two reductions.
  let smax: string;
  let logPmax: string;
  if (a.lse) {
    const [top, arg] = g.opN('TopK', [masked, g.i64([1])], 2, { axis: attr.i(2), largest: attr.i(1), sorted: attr.i(1) }); // [H, B, 1]
    smax = g.op('Squeeze', [top!, g.i64([2])]);
    logPmax = g.op('Log', [g.op('Squeeze', [g.op('GatherElements', [probs, arg!], { axis: attr.i(2) }), g.i64([2])])], {}, 'log_max_p');
    g.within('kept_lse', () => {
      // the key's position: its index among the block's keys plus the first one's
      out.maxKey = g.op('Add', [g.op('Squeeze', [arg!, g.i64([2])]), keys.lo], {}, 'max_key');
      out.logMaxP = logPmax;
    });
  } else {
    logPmax = g.op('Log', [g.op('ReduceMax', [probs], { axes: attr.ints([2]), keepdims: attr.i(0) })], {}, 'log_max_p');
    smax = g.op('ReduceMax', [masked], { axes: attr.ints([2]), keepdims: attr.i(0) });
  }
  if (a.metrics) out.sums = headMetricSums(g, plan.H, probs, masked, smax, logPmax, matchesFor(g, plan, keys, rows, a.window), keys.hasSink);
  return out;
}

/**
 * The pattern variant's layer: all T rows as one inline block (rows shared by every layer, so the
 * masks and the metrics' match positions are built once), probs written to `patternName`.
 */
export function inlineAttention(g: GraphBuilder, plan: BlockPlan, rows: { pos: string; shared: Rows | undefined }, a: LayerAttention, patternName: string): LayerAttentionOut & { probs: string; shared: Rows } {
  const shared = rows.shared ?? { pos: rows.pos, local: rows.pos, masks: new Map() };
  const keys: Keys = { kpos: plan.kpos, K: plan.K, lo: g.i64([0], []), kT: g.op('Transpose', [a.k], { perm: attr.ints([0, 2, 1]) }), v: a.v, bias: a.bias }; // kT [KV, hd, K]
  const b = attendBlock(g, plan, keys, shared, a.q, a, patternName);
  return { ctx: b.ctx, probs: b.probs, shared, ...(a.metrics ? { metrics: finishMetrics(g, b.sums!, plan.metrics!.counts) } : {}) };
}

/** [nb, H, B(, hd)] stacked block outputs → [H, T(, hd)]. */
function unstack(g: GraphBuilder, plan: BlockPlan, stacked: string, H: number, hd: number | undefined): string {
  const perm = hd === undefined ? [1, 0, 2] : [1, 0, 2, 3];
  const flat = g.op('Reshape', [g.op('Transpose', [stacked], { perm: attr.ints(perm) }), g.i64(hd === undefined ? [H, -1] : [H, -1, hd])]);
  return g.op('Slice', [flat, g.i64([0]), tScalarTo1(g, plan.T), g.i64([1])]);
}

/**
 * The keys the rows s0..e0−1 (local indices) can see: up to the last row's position (causal), and
 * with a sliding window from the first row's window start; positions are `start` + local index.
 */
function blockKeys(g: GraphBuilder, plan: BlockPlan, a: LayerAttention, s0: string, e0: string, folded: boolean): Keys {
  return g.within('keys', () => {
    const hi = g.op('Min', [g.op('Add', [plan.start, e0]), plan.K]);
    const lo = a.window > 0 ? g.op('Max', [g.op('Sub', [g.op('Add', [plan.start, s0]), g.i64([a.window - 1], [])]), g.i64([0], [])]) : g.i64([0], []);
    const lo1 = tScalarTo1(g, lo);
    const hi1 = tScalarTo1(g, hi);
    const slice = (t: string, axis: number) => g.op('Slice', [t, lo1, hi1, g.i64([axis])]);
    const kb = slice(a.k, 1);
    const keys: Keys = {
      kpos: slice(plan.kpos, 0),
      K: g.op('Sub', [hi, lo]),
      lo,
      kT: g.op('Transpose', [kb], { perm: attr.ints([0, 2, 1]) }),
      v: slice(a.v, 1),
      ...(folded ? {} : { bias: slice(a.bias, 2) }),
    };
    if (plan.metrics) keys.range = [lo1, hi1];
    if (a.window > 0) keys.hasSink = g.op('Cast', [g.op('Equal', [lo, g.i64([0], [])])], { to: attr.i(1) });
    return keys;
  });
}

/** One layer's attention as a Loop over blocks of query rows (see the file's header). */
export function blockedAttention(g: GraphBuilder, plan: BlockPlan, a0: LayerAttention): LayerAttentionOut {
  const H = plan.H;
  // Without a soft-cap the bias rides in the score MatMul, so a whole [H, B, K] addition per block
  // goes away (the same sum, accumulated in the product).
  // With G = H / KV query heads per KV head, each key gets its G heads' biases as G more dimensions
  // and each query a one-hot over them (its own head's 1): q·k + 1·bias[h] + 0·(the others', all
  // finite: ln of positive factors), the same products plus exact zeros.
  const fold = !a0.softcap;
  const KV = a0.kvHeads;
  const G = H / KV;
  const oneHot = () => g.f32(Array.from({ length: H * G }, (_, i) => (i % G === Math.floor(i / G) % G ? 1 : 0)), [H, 1, G]);
  const a: LayerAttention = fold
    ? {
        ...a0,
        q: g.op('Concat', [a0.q, g.op('Expand', [oneHot(), g.op('Concat', [g.op('Slice', [g.op('Shape', [a0.q]), g.i64([0]), g.i64([2])]), g.i64([G])], { axis: attr.i(0) })])], { axis: attr.i(2) }),
        k: g.op('Concat', [a0.k, g.op('Transpose', [g.op('Reshape', [a0.bias, g.i64([KV, G, -1])])], { perm: attr.ints([0, 2, 1]) })], { axis: attr.i(2) }),
      }
    : a0;
  const qPad = g.op('Pad', [a.q, g.op('Concat', [g.i64([0, 0, 0, 0]), plan.padRows, g.i64([0])], { axis: attr.i(0) })]); // [H, nb·B, hd (+G)]
  const body = g.subgraph(
    'block',
    [
      ['i', 'int64', []],
      ['cond', 'bool', []],
    ],
    (i, cond) => {
      const s0 = g.op('Mul', [i!, plan.B]);
      const e0 = g.op('Add', [s0, plan.B]);
      const local = g.op('Range', [s0, e0, g.i64([1], [])]);
      const rows: Rows = { pos: g.op('Add', [local, plan.start]), local, masks: new Map(), block: i! };
      const qb = g.op('Slice', [qPad, tScalarTo1(g, s0), tScalarTo1(g, e0), g.i64([1])]);
      const b = attendBlock(g, plan, blockKeys(g, plan, a, s0, e0, fold), rows, qb, a, undefined);
      const outs: [string, 'float' | 'int64' | 'bool'][] = [
        [cond!, 'bool'],
        [b.ctx, 'float'],
      ];
      if (a.metrics) outs.push([b.sums!, 'float']);
      if (a.lse) outs.push([b.maxKey!, 'int64'], [b.logMaxP!, 'float']);
      return outs;
    },
  );
  const nOut = 1 + (a.metrics ? 1 : 0) + (a.lse ? 2 : 0);
  const outs = g.opN('Loop', [plan.nb, ''], nOut, { body: attr.g(body) }, 'blocks');
  const res: LayerAttentionOut = { ctx: unstack(g, plan, outs[0]!, H, a.hd) };
  let at = 1;
  if (a.metrics) {
    const sums = g.op('ReduceSum', [outs[at++]!, g.i64([0])], { keepdims: attr.i(0) });
    res.metrics = finishMetrics(g, sums, plan.metrics!.counts);
  }
  if (a.lse) {
    res.maxKey = unstack(g, plan, outs[at++]!, H, undefined);
    res.logMaxP = unstack(g, plan, outs[at++]!, H, undefined);
  }
  return res;
}
