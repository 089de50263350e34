// Builds the inspection graph (and its logits-only twin) from a ModelSpec, with standard ONNX ops
// only, so every head's softmax output is a real tensor we can fetch.
//
// Inputs:  input_ids [1, T] int64; head_scale [L, H]; attn_bias [L, H, T] (added to every query
//          row's pre-softmax scores for that key: PASTA's ln α, sink calibration's ln s).
// Outputs: logits [1, T or 1, V]; inspection graphs add blocks.{l}.attn.pattern [H, T, T] per layer
//          (softmax output incl. bias, before head_scale) and head_metrics [L, H, M] (METRIC_ORDER:
//          entropy, sink, prevToken, selfAttn, induction, duplicateToken; NaN where undefined).
// Variants of the plain graph (own cache files, see graphName in runtime/modelCache.ts): `lens`
// (residual stream at block boundaries) and `patch` (every head's z out, a per-head z replacement in).
// Variant of the inspection graph: `qk` (no patterns out; per layer hook_rot_q [H, T, hd], hook_rot_k
// [KV, T, hd], max_key and log_max_p [H, T], from which graph/attentionScores.ts recomputes any
// probability).
// Internally the batch dimension is dropped: activations are [T, D], attention [H, T, *].
import type { LazyTensor, ModelSpec, RopeSpec } from '../spec';
import { attr, GraphBuilder, softcap, type ExternalRef } from './onnxGraph';
import { blockedAttention, blockPlan, inlineAttention, type LayerAttention, type LayerAttentionOut } from './blockedAttention';

export interface GraphOptions {
  /** add attention pattern and head-metric outputs */
  inspect: boolean;
  /** logits for every position (else only the last) */
  allLogits: boolean;
  /**
   * A KV-cache graph for generation: inputs past_key.{l} / past_value.{l} [KV, P, hd] (P may be 0
   * for the prefill), outputs present_key.{l} / present_value.{l} [KV, P+T, hd]; the new tokens
   * take positions P..P+T−1 and attn_bias covers all P+T keys. Not combined with `inspect`.
   */
  cache?: boolean;
  /** only the LM head: final_hidden [T, D] -> logits [1, T, V] (see the inspection graph's final_hidden) */
  head?: boolean;
  /**
   * With `head`: instead of the logits, each position's `headTop` largest logits top_logits [T, k]
   * and their ids top_ids [T, k] (int64; ties: the lower id) and the log-sum-exp of its logits in
   * float64, lse [T] (max + ln Σ exp(x − max), as src/engine/analysis/compare.ts): what a saved run
   * keeps of every position, without [T, V] logits leaving the graph.
   */
  headTop?: number;
  /**
   * Logit-lens variant of the plain graph: input resid_positions [P] int64; outputs resid_stream
   * [L+1, P, D] (at those positions, the residual stream entering block l = 0..L−1, the embeddings
   * as the model scales them for l = 0, and after the last block for l = L, before the final norm)
   * and resid_normed [L+1, P, D] (each of those through the model's final norm: the head graph's input).
   */
  lens?: boolean;
  /**
   * Activation-patching variant of the plain graph: outputs blocks.{l}.attn.hook_z [T, H, hd] (each
   * head's attention output before head_scale and before any patch) and takes head_patch
   * [L, T, H·hd] and patch_mask [L, H]: z' = mask·patch + (1 − mask)·z, then head_scale and the
   * output projection (mask 0 everywhere: the plain graph's numbers).
   */
  patch?: boolean;
  /**
   * Bounded-memory variant of the inspection graph (needs `inspect`): no pattern outputs; instead,
   * per layer, the queries and keys the scores are made of and each row's log-sum-exp (see
   * keptQkOutputs), from which graph/attentionScores.ts recomputes any probability on demand.
   */
  qk?: boolean;
  /** query rows per attention block instead of the automatic size (blockedAttention.ts; tests) */
  blockRows?: number;
}

/** The last axis of head_metrics; the same order as METRICS in src/shared/heads.ts (metric names there). */
export const METRIC_ORDER = ['entropy', 'sink', 'prevToken', 'selfAttn', 'induction', 'duplicateToken'] as const;

export function patternOutput(layer: number): string {
  return `blocks.${layer}.attn.pattern`;
}

/** Each head's output before the output projection, [T, H, hd] (TransformerLens' hook_z). */
export function zOutput(layer: number): string {
  return `blocks.${layer}.attn.hook_z`;
}

/** Layer l's queries after q/k norms and RoPE, before the score scale, [H, T, hd] (TransformerLens' hook_rot_q, head-major). */
export function rotQOutput(layer: number): string {
  return `blocks.${layer}.attn.hook_rot_q`;
}

/** Layer l's keys after k norm and RoPE, before GQA's repeat, [KV, T, hd] (hook_rot_k, head-major). */
export function rotKOutput(layer: number): string {
  return `blocks.${layer}.attn.hook_rot_k`;
}

/** Layer l's key with each row's largest final score (the first of ties), [H, T] int64. */
export function maxKeyOutput(layer: number): string {
  return `blocks.${layer}.attn.max_key`;
}

/**
 * Layer l's ln of each row's largest probability, [H, T]: with the score s[q, m] at max_key m,
 * lse[q] = s[q, m] − ln p[q, m], and p[q, k] = exp(s[q, k] − lse[q]).
 */
export function logMaxProbOutput(layer: number): string {
  return `blocks.${layer}.attn.log_max_p`;
}

/** Every weight of the spec under its canonical graph name, in a fixed order. */
export function listWeights(spec: ModelSpec): [string, LazyTensor][] {
  const out: [string, LazyTensor][] = [['embed', spec.embed]];
  if (spec.posEmbed) out.push(['pos_embed', spec.posEmbed]);
  spec.layers.forEach((lw, l) => {
    const p = `layers.${l}.`;
    const add = (n: string, t: LazyTensor | undefined) => t && out.push([p + n, t]);
    add('ln1.weight', lw.ln1?.weight);
    add('ln1.bias', lw.ln1?.bias);
    add('ln2.weight', lw.ln2?.weight);
    add('ln2.bias', lw.ln2?.bias);
    add('post_attn_norm.weight', lw.postAttnNorm?.weight);
    add('post_attn_norm.bias', lw.postAttnNorm?.bias);
    add('post_mlp_norm.weight', lw.postMlpNorm?.weight);
    add('post_mlp_norm.bias', lw.postMlpNorm?.bias);
    add('qkv.weight', lw.qkvWeight);
    add('qkv.bias', lw.qkvBias);
    add('o.weight', lw.oWeight);
    add('o.bias', lw.oBias);
    add('q_norm.weight', lw.qNorm);
    add('k_norm.weight', lw.kNorm);
    add('gate.weight', lw.gateWeight);
    add('gate.bias', lw.gateBias);
    add('up.weight', lw.upWeight);
    add('up.bias', lw.upBias);
    add('down.weight', lw.downWeight);
    add('down.bias', lw.downBias);
  });
  out.push(['final_norm.weight', spec.finalNorm.weight]);
  if (spec.finalNorm.bias) out.push(['final_norm.bias', spec.finalNorm.bias]);
  out.push(['lm_head', spec.lmHead]);
  if (spec.lmHeadBias) out.push(['lm_head.bias', spec.lmHeadBias]);
  return out;
}

/** The head graph: final_hidden [T, D] (normalised) -> logits [1, T, V]. */
function buildHeadGraph(spec: ModelSpec, refs: Map<string, ExternalRef>, externalFile: string, top?: number): Uint8Array {
  const g = new GraphBuilder(externalFile);
  const W = (name: string) => g.weight(name, refs.get(name)!);
  const hidden = g.input('final_hidden', 'float', ['T', spec.dims.hiddenSize]);
  let y = g.op('MatMul', [hidden, W('lm_head')]);
  if (refs.has('lm_head.bias')) y = g.op('Add', [y, W('lm_head.bias')]);
  if (spec.dims.finalSoftcap) y = softcap(g, y, spec.dims.finalSoftcap);
  if (top !== undefined) {
    const [values, ids] = g.opN('TopK', [y, g.i64([top])], 2, { axis: attr.i(1), largest: attr.i(1), sorted: attr.i(1) }, 'top');
    g.rename(values!, 'top_logits');
    g.rename(ids!, 'top_ids');
    g.op('ReduceLogSumExp', [g.op('Cast', [y], { to: attr.i(11) })], { axes: attr.ints([1]), keepdims: attr.i(0) }, 'lse', 'lse');
    g.output('top_logits', 'float', ['T', top]);
    g.output('top_ids', 'int64', ['T', top]);
    g.output('lse', 'double', ['T']);
    return g.encode('attnscope_head_top', `AttnScope head graph (top ${top}) for ${spec.dims.modelType}`);
  }
  g.op('Reshape', [y, g.i64([1, -1, spec.dims.vocabSize])], {}, 'logits', 'logits');
  g.output('logits', 'float', [1, 'T', spec.dims.vocabSize]);
  return g.encode('attnscope_head', `AttnScope head graph for ${spec.dims.modelType}`);
}

export function buildGraph(spec: ModelSpec, refs: Map<string, ExternalRef>, externalFile: string, opts: GraphOptions): Uint8Array {
  if (opts.head) return buildHeadGraph(spec, refs, externalFile, opts.headTop);
  const d = spec.dims;
  const g = new GraphBuilder(externalFile);
  const W = (name: string): string => {
    const ref = refs.get(name);
    if (!ref) throw new Error(`internal: weight ${name} was not written`);
    return g.weight(name, ref);
  };
  const has = (name: string) => refs.has(name);
  const L = d.layers;
  const H = d.heads;
  const KV = d.kvHeads;
  const hd = d.headDim;

  if (opts.cache && opts.inspect) throw new Error('internal: a cache graph is not an inspection graph');
  if (opts.qk && !opts.inspect) throw new Error('internal: the qk graph is a variant of the inspection graph');
  if ((opts.lens || opts.patch) && (opts.inspect || opts.cache || opts.allLogits || (opts.lens && opts.patch))) {
    throw new Error('internal: the lens and patch graphs are variants of the plain graph only');
  }
  const inputIds = g.input('input_ids', 'int64', [1, 'T']);
  const headScale = g.input('head_scale', 'float', [L, H]);
  const attnBias = g.input('attn_bias', 'float', [L, H, opts.cache ? 'K' : 'T']);
  const past: { k: string; v: string }[] = [];
  if (opts.cache) {
    for (let l = 0; l < L; l++) past.push({ k: g.input(`past_key.${l}`, 'float', [KV, 'P', hd]), v: g.input(`past_value.${l}`, 'float', [KV, 'P', hd]) });
  }
  const lensPositions = opts.lens ? g.input('resid_positions', 'int64', ['P']) : '';
  const patchIn = opts.patch ? { patch: g.input('head_patch', 'float', [L, 'T', H * hd]), mask: g.input('patch_mask', 'float', [L, H]) } : undefined;
  /** lens: the residual stream [T, D] at every block boundary (L + 1 of them) */
  const boundaries: string[] = [];

  const ids = g.op('Reshape', [inputIds, g.i64([-1])]);
  const shape = g.op('Shape', [ids]);
  const tScalar = g.op('Gather', [shape, g.i64([0], [])], { axis: attr.i(0) });
  // Positions of the new tokens (queries) and of every key: the same without a cache.
  const start = opts.cache ? g.op('Gather', [g.op('Shape', [past[0]!.k]), g.i64([1], [])], { axis: attr.i(0) }) : g.i64([0], []);
  const end = opts.cache ? g.op('Add', [start, tScalar]) : tScalar;
  const pos = g.op('Range', [start, end, g.i64([1], [])], {}, 'positions');
  const kpos = opts.cache ? g.op('Range', [g.i64([0], []), end, g.i64([1], [])], {}, 'key_positions') : pos;
  const posF = g.op('Cast', [pos], { to: attr.i(1) });

  let x = g.op('Gather', [W('embed'), ids], { axis: attr.i(0) }, 'embed_tokens');
  if (d.embedScale !== undefined) x = g.op('Mul', [x, g.f32([d.embedScale], [])], {}, 'embed_scale');
  if (spec.posEmbed) x = g.op('Add', [x, g.op('Gather', [W('pos_embed'), pos], { axis: attr.i(0) }, 'embed_positions')]);

  // Attention runs in blocks of query rows (blockedAttention.ts); these values are shared by every layer.
  const keyCount = opts.cache ? end : tScalar;
  const plan = blockPlan(g, H, tScalar, keyCount, start, kpos, opts.inspect ? ids : undefined, opts.blockRows);
  /** the pattern variant's rows (all T, one inline block), shared by its layers */
  let inlineRows: Parameters<typeof inlineAttention>[2]['shared'];

  // RoPE tables [T, rotaryDim]: float32 positions × float32 inv_freq, as transformers computes them,
  // times the rope's attention factor. inv_freq is a constant (computed in the family file the way
  // ROPE_INIT_FUNCTIONS do) except where it depends on the sequence length, which transformers
  // measures as the last position + 1 (here `end`): the graph picks or computes it from `end`, so
  // one graph serves every length (and a KV-cache step uses the length so far, as HF does).
  // One table per distinct RopeSpec (Gemma 3's local and global layers differ), shared by its layers.
  const rot = d.rotaryDim;
  const tables = new Map<RopeSpec, [string, string]>();
  const tableFor = (rs: RopeSpec | undefined): [string, string] => {
    if (!rs || rs.invFreq.length !== rot / 2) throw new Error('internal: rope positions without a matching RopeSpec');
    const have = tables.get(rs);
    if (have) return have;
    const n = tables.size;
    const cname = (base: string) => (n === 0 ? base : `${base}_${n}`);
    const made = g.within(n === 0 ? 'rotary_emb' : `rotary_emb_${n}`, (): [string, string] => {
      let inv = g.inlineF32(cname('/model/constants/inv_freq'), rs.invFreq, [1, rot / 2]);
      const by = rs.byLength;
      if (by) {
        const longer = g.op('Greater', [end, g.i64([by.originalMax], [])]);
        let other: string;
        if (by.kind === 'longrope') {
          other = g.inlineF32(cname('/model/constants/inv_freq_long'), by.longInvFreq, [1, rot / 2]);
        } else {
          // base·((factor·seqLen/originalMax) − (factor − 1))^(dim/(dim−2)), then 1/base^(2i/dim), in float32.
          const seq = g.op('Cast', [end], { to: attr.i(1) });
          const ratio = g.op('Sub', [g.op('Div', [g.op('Mul', [seq, g.f32([by.factor], [])]), g.f32([by.originalMax], [])]), g.f32([by.factor - 1], [])]);
          const base = g.op('Mul', [g.f32([by.base], []), g.op('Pow', [ratio, g.f32([rot / (rot - 2)], [])])]);
          const expo = new Float32Array(rot / 2).map((_, i) => Math.fround((2 * i) / rot));
          other = g.op('Reciprocal', [g.op('Pow', [base, g.inlineF32(cname('/model/constants/inv_freq_exponents'), expo, [1, rot / 2])])]);
        }
        inv = g.op('Where', [longer, other, inv]);
      }
      const freqs = g.op('Mul', [g.op('Unsqueeze', [posF, g.i64([1])]), inv]);
      const emb = g.op('Concat', [freqs, freqs], { axis: attr.i(1) });
      let c = g.op('Cos', [emb]);
      let s = g.op('Sin', [emb]);
      if (rs.attentionFactor !== 1) {
        c = g.op('Mul', [c, g.f32([rs.attentionFactor], [])]);
        s = g.op('Mul', [s, g.f32([rs.attentionFactor], [])]);
      }
      return [c, s];
    });
    tables.set(rs, made);
    return made;
  };
  const rope = (t: string, [cos, sin]: [string, string]): string => {
    // t: [heads, T, hd]; rotate_half over the first `rot` dims.
    const [rotPart, pass] = rot < hd ? g.opN('Split', [t, g.i64([rot, hd - rot])], 2, { axis: attr.i(2) }) : [t, ''];
    const [x1, x2] = g.opN('Split', [rotPart!, g.i64([rot / 2, rot / 2])], 2, { axis: attr.i(2) });
    const rotated = g.op('Concat', [g.op('Neg', [x2!]), x1!], { axis: attr.i(2) });
    const out = g.op('Add', [g.op('Mul', [rotPart!, cos]), g.op('Mul', [rotated, sin])]);
    return pass ? g.op('Concat', [out, pass], { axis: attr.i(2) }) : out;
  };

  const norm = (input: string, prefix: string): string => {
    // LayerNorm or RMSNorm over the last axis (also the per-head q/k norms over headDim).
    if (d.norm === 'layernorm') {
      return g.op('LayerNormalization', [input, W(prefix + '.weight'), W(prefix + '.bias')], { axis: attr.i(-1), epsilon: attr.f(d.normEps) }, 'layernorm');
    }
    const ms = g.op('ReduceMean', [g.op('Mul', [input, input])], { axes: attr.ints([-1]), keepdims: attr.i(1) });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.f32([d.normEps], [])])])]);
    return g.op('Mul', [g.op('Mul', [input, inv]), W(prefix + '.weight')], {}, 'rmsnorm');
  };

  const linear = (input: string, w: string, b: string | undefined): string => {
    const y = g.op('MatMul', [input, W(w)]);
    return b && has(b) ? g.op('Add', [y, W(b)]) : y;
  };

  const act = (t: string): string => {
    switch (d.act) {
      case 'relu':
        return g.op('Relu', [t]);
      case 'silu':
        return g.op('Mul', [t, g.op('Sigmoid', [t])]);
      case 'gelu': {
        const e = g.op('Erf', [g.op('Mul', [t, g.f32([Math.SQRT1_2], [])])]);
        return g.op('Mul', [g.op('Mul', [t, g.f32([0.5], [])]), g.op('Add', [e, g.f32([1], [])])]);
      }
      case 'gelu_new': {
        const cube = g.op('Mul', [g.op('Mul', [t, t]), t]);
        const inner = g.op('Mul', [g.op('Add', [t, g.op('Mul', [cube, g.f32([0.044715], [])])]), g.f32([Math.sqrt(2 / Math.PI)], [])]);
        return g.op('Mul', [g.op('Mul', [t, g.f32([0.5], [])]), g.op('Add', [g.op('Tanh', [inner]), g.f32([1], [])])]);
      }
    }
  };

  const layerMetrics: string[] = [];

  for (let l = 0; l < L; l++) {
    if (opts.lens) boundaries.push(x);
    g.within(`layers.${l}`, () => {
      const p = `layers.${l}.`;
      const h1 = has(p + 'ln1.weight') ? g.within('input_layernorm', () => norm(x, p + 'ln1')) : x;
      const attnOut = g.within('attn', () => {
        const qkv = linear(h1, p + 'qkv.weight', p + 'qkv.bias');
        let [q0, k0, v0] = g.opN('Split', [qkv, g.i64([H * hd, KV * hd, KV * hd])], 3, { axis: attr.i(1) });
        if (d.qkNormFull) {
          // OLMo 2: RMSNorm over the whole q and k projections, before the head split and RoPE.
          q0 = g.within('q_norm', () => norm(q0!, p + 'q_norm'));
          k0 = g.within('k_norm', () => norm(k0!, p + 'k_norm'));
        }
        const heads = (t: string, n: number) => g.op('Transpose', [g.op('Reshape', [t, g.i64([-1, n, hd])])], { perm: attr.ints([1, 0, 2]) });
        let q = heads(q0!, H);
        let k = heads(k0!, KV);
        let v = heads(v0!, KV);
        if (d.qkNorm) {
          // Qwen3: RMSNorm of each head's q and k over headDim, before RoPE.
          q = g.within('q_norm', () => norm(q, p + 'q_norm'));
          k = g.within('k_norm', () => norm(k, p + 'k_norm'));
        }
        const layerRope = d.layerRope ? d.layerRope[l] : d.rope;
        if (d.positions === 'rope' && layerRope !== null) {
          const table = tableFor(layerRope);
          q = rope(q, table);
          k = rope(k, table);
        }
        if (opts.cache) {
          // Keys are cached after RoPE, as HF does; present = past ++ new.
          k = g.op('Concat', [past[l]!.k, k], { axis: attr.i(1) }, 'present_key', `present_key.${l}`);
          v = g.op('Concat', [past[l]!.v, v], { axis: attr.i(1) }, 'present_value', `present_value.${l}`);
          g.output(`present_key.${l}`, 'float', [KV, 'K', hd]);
          g.output(`present_value.${l}`, 'float', [KV, 'K', hd]);
        }
        if (opts.qk) [q, k] = keptQkOutputs(g, l, q, k, H, KV, hd);
        q = g.op('Mul', [q, g.f32([d.attnScale[l]!], [])]);
        const bias = g.op('Unsqueeze', [g.op('Gather', [attnBias, g.i64([l], [])], { axis: attr.i(0) }), g.i64([1])]);
        const a: LayerAttention = { q, k, v, kvHeads: KV, bias, window: d.slidingWindow[l]!, softcap: d.attnSoftcap ?? 0, hd, metrics: opts.inspect, lse: opts.qk === true };
        let att: LayerAttentionOut;
        if (opts.inspect && !opts.qk) {
          // Every probability is an output: one inline block, the Softmax writing the pattern output.
          const r = inlineAttention(g, plan, { pos, shared: inlineRows }, a, patternOutput(l));
          inlineRows = r.shared;
          g.output(patternOutput(l), 'float', [H, 'T', 'T']);
          att = r;
        } else {
          att = blockedAttention(g, plan, a);
          if (opts.qk) {
            g.op('Identity', [att.maxKey!], {}, 'max_key', maxKeyOutput(l));
            g.op('Identity', [att.logMaxP!], {}, 'log_max_p', logMaxProbOutput(l));
            g.output(maxKeyOutput(l), 'int64', [H, 'T']);
            g.output(logMaxProbOutput(l), 'float', [H, 'T']);
          }
        }
        if (opts.inspect) layerMetrics.push(att.metrics!);
        let ctx = att.ctx;
        if (patchIn) ctx = patchHeadOutput(g, ctx, l, patchIn, H, hd);
        const scale = g.op('Reshape', [g.op('Gather', [headScale, g.i64([l], [])], { axis: attr.i(0) }), g.i64([H, 1, 1])]);
        ctx = g.op('Mul', [ctx, scale], {}, 'head_scale');
        ctx = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([1, 0, 2]) }), g.i64([-1, H * hd])]);
        let out = linear(ctx, p + 'o.weight', p + 'o.bias');
        // The inline (pattern) block's [H, T, T] scores would otherwise live until the end (see afterMetrics);
        // a Loop's blocks free theirs inside the Loop.
        if (opts.inspect && !opts.qk) out = afterMetrics(g, out, layerMetrics[layerMetrics.length - 1]!);
        return has(p + 'post_attn_norm.weight') ? g.within('post_attention_layernorm', () => norm(out, p + 'post_attn_norm')) : out;
      });
      const mlp = (input: string) => {
        const out = g.within('mlp', () => {
          if (d.gatedMlp) {
            const gate = act(linear(input, p + 'gate.weight', p + 'gate.bias'));
            return linear(g.op('Mul', [gate, linear(input, p + 'up.weight', p + 'up.bias')]), p + 'down.weight', p + 'down.bias');
          }
          return linear(act(linear(input, p + 'up.weight', p + 'up.bias')), p + 'down.weight', p + 'down.bias');
        });
        return has(p + 'post_mlp_norm.weight') ? g.within('post_feedforward_layernorm', () => norm(out, p + 'post_mlp_norm')) : out;
      };
      if (d.parallelResidual) {
        const h2 = has(p + 'ln2.weight') ? g.within('post_attention_layernorm', () => norm(x, p + 'ln2')) : x;
        x = g.op('Add', [g.op('Add', [x, attnOut]), mlp(h2)]);
      } else {
        x = g.op('Add', [x, attnOut]);
        const h2 = has(p + 'ln2.weight') ? g.within('post_attention_layernorm', () => norm(x, p + 'ln2')) : x;
        x = g.op('Add', [x, mlp(h2)]);
      }
    });
  }

  if (opts.lens) {
    boundaries.push(x);
    lensOutputs(g, boundaries, lensPositions, (t) => g.within('final_norm', () => norm(t, 'final_norm')), d.hiddenSize);
  }

  let normed: string;
  if (opts.inspect && !opts.allLogits) {
    // Every position's final hidden state [T, D] is an output, so every position's logits can be
    // computed later by the small head graph (saving a run) without a T×V product on each run.
    const all = g.within('final_norm', () => norm(x, 'final_norm'));
    g.op('Identity', [all], {}, 'final_hidden', 'final_hidden');
    g.output('final_hidden', 'float', ['T', d.hiddenSize]);
    normed = g.op('Gather', [all, g.op('Sub', [tScalar, g.i64([1], [])])], { axis: attr.i(0) });
  } else {
    const last = opts.allLogits ? x : g.op('Gather', [x, g.op('Sub', [tScalar, g.i64([1], [])])], { axis: attr.i(0) });
    normed = g.within('final_norm', () => norm(last, 'final_norm'));
  }
  let logits = linear(normed, 'lm_head', 'lm_head.bias');
  if (d.finalSoftcap) logits = softcap(g, logits, d.finalSoftcap);
  g.op('Reshape', [logits, g.i64([1, -1, d.vocabSize])], {}, 'logits', 'logits');
  g.output('logits', 'float', [1, opts.allLogits ? 'T' : 1, d.vocabSize]);
  if (opts.inspect) {
    const all = g.op('Concat', layerMetrics, { axis: attr.i(0) });
    g.op('Reshape', [all, g.i64([L, H, METRIC_ORDER.length])], {}, 'head_metrics', 'head_metrics');
    g.output('head_metrics', 'float', [L, H, METRIC_ORDER.length]);
  }
  const kind = opts.qk ? 'inspect_qk' : opts.inspect ? 'inspect' : opts.cache ? 'cached' : opts.lens ? 'lens' : opts.patch ? 'patch' : 'plain';
  return g.encode(`attnscope_${kind}`, `AttnScope ${kind} graph for ${d.modelType}`);
}

/**
 * `out` + 0, where the 0 is computed from this layer's head metrics [H, M]: an exact no-op (x + 0 = x)
 * that makes the rest of the model wait for them. Without it onnxruntime may order every layer's
 * nodes that feed only graph outputs (the metrics, the final head_metrics) after the last layer, and
 * the pattern variant's [H, T, T] scores stay alive until then: measured on a 30-layer × 9-head
 * model, +2.7 GB at 1,024 tokens and +9.4 GB at 2,048 (all layers' buffers) instead of one layer's.
 * (Blocked layers need none: their blocks' buffers die inside the Loop.)
 * ReduceMax(IsNaN(m)) is 0 or 1 and finite (metrics may be NaN), times 0 is exactly 0.
 */
function afterMetrics(g: GraphBuilder, out: string, metrics: string): string {
  return g.within('metrics_order', () => {
    const any = g.op('ReduceMax', [g.op('Cast', [g.op('IsNaN', [metrics])], { to: attr.i(1) })], { keepdims: attr.i(0) });
    return g.op('Add', [out, g.op('Mul', [any, g.f32([0], [])])], {}, 'after_metrics');
  });
}

/**
 * The qk variant's per-layer outputs: q [H, T, hd] and k [KV, T, hd] as the scores' MatMul reads
 * them (after norms and RoPE; q before the score scale, k before GQA's repeat), written by the nodes
 * that compute them (renamed; no Identity node). Returns the values' new names. onnxruntime still
 * holds these outputs until the run ends while copying them to the caller (measured: the peak is the
 * same with an Identity), which memoryEstimate.ts counts.
 */
function keptQkOutputs(g: GraphBuilder, l: number, q: string, k: string, H: number, KV: number, hd: number): [string, string] {
  const rq = g.rename(q, rotQOutput(l));
  g.output(rotQOutput(l), 'float', [H, 'T', hd]);
  const rk = g.rename(k, rotKOutput(l));
  g.output(rotKOutput(l), 'float', [KV, 'T', hd]);
  return [rq, rk];
}

/**
 * Logit lens: the residual stream at `positions` [P] at every block boundary, resid_stream [L+1, P, D],
 * and the same through the final norm, resid_normed [L+1, P, D] (the head graph turns rows into logits).
 */
function lensOutputs(g: GraphBuilder, boundaries: string[], positions: string, finalNorm: (t: string) => string, D: number): void {
  g.within('lens', () => {
    const at = boundaries.map((x) => g.op('Unsqueeze', [g.op('Gather', [x, positions], { axis: attr.i(0) }), g.i64([0])]));
    const stream = g.op('Concat', at, { axis: attr.i(0) }, 'resid_stream', 'resid_stream');
    g.output('resid_stream', 'float', [boundaries.length, 'P', D]);
    g.op('Identity', [finalNorm(stream)], {}, 'resid_normed', 'resid_normed');
    g.output('resid_normed', 'float', [boundaries.length, 'P', D]);
  });
}

/**
 * Activation patching of layer `l`: outputs z [H, T, hd] as hook_z [T, H, hd] and returns
 * z' = mask·patch + (1 − mask)·z per head (mask 1: exactly the patch; 0: exactly z).
 */
function patchHeadOutput(g: GraphBuilder, z: string, l: number, inp: { patch: string; mask: string }, H: number, hd: number): string {
  return g.within('patch', () => {
    g.op('Transpose', [z], { perm: attr.ints([1, 0, 2]) }, 'hook_z', zOutput(l));
    g.output(zOutput(l), 'float', ['T', H, hd]);
    const rows = g.op('Reshape', [g.op('Gather', [inp.patch, g.i64([l], [])], { axis: attr.i(0) }), g.i64([-1, H, hd])]); // [T, H, hd]
    const patch = g.op('Transpose', [rows], { perm: attr.ints([1, 0, 2]) }); // [H, T, hd]
    const m = g.op('Reshape', [g.op('Gather', [inp.mask, g.i64([l], [])], { axis: attr.i(0) }), g.i64([H, 1, 1])]);
    return g.op('Add', [g.op('Mul', [m, patch]), g.op('Mul', [g.op('Sub', [g.f32([1], []), m]), z])], {}, 'patched_z');
  });
}
