// The Gemma family as transformers defines it (modeling_gemma, modeling_gemma2, modeling_gemma3):
//   all      RMSNorm x·rsqrt(mean(x²) + eps)·(1 + w) in float32 (the 1 + w is folded into the weight
//            here, in float32 as transformers computes it); embeddings × sqrt(hidden_size) in float32
//            (AttnScope computes in float32, as transformers does with the model loaded in float32:
//            its normaliser takes the compute dtype; measured against transformers 5.18, the bf16-
//            rounded 34.0 for width 1152 gave |Δ log-prob| 0.09); GeGLU MLP down(act(gate(x)) · up(x)) with the
//            tanh gelu; explicit head_dim (256 when absent); attention_bias: q/k/v/o biases; tied head.
//   gemma    input_layernorm before attention, post_attention_layernorm before the MLP (Llama layout);
//            scaling head_dim^−0.5. The activation is hidden_activation; transformers 4.39+ ignores
//            hidden_act for Gemma (gelu_pytorch_tanh when hidden_activation is unset).
//   gemma2   input_layernorm → attention → post_attention_layernorm → residual; pre_feedforward_layernorm
//            → MLP → post_feedforward_layernorm → residual; scaling query_pre_attn_scalar^−0.5; scores
//            soft-capped tanh(s / c)·c by attn_logit_softcapping (50 when absent, off when null) before
//            the mask; logits soft-capped by final_logit_softcapping (30 when absent); sliding_window on
//            the layers typed sliding_attention (layer_types, else every even layer: 0, 2, ...).
//   gemma3   as gemma2, plus per-head q_norm/k_norm (RMSNorm (1 + w) over head_dim) before RoPE; no
//            soft-capping unless set; layer i slides unless (i + 1) % sliding_window_pattern == 0 (6), or
//            layer_types; sliding layers use plain RoPE with rope_local_base_freq (10000), full ones
//            rope_theta (1e6) and rope_scaling (v5: rope_parameters per layer type). gemma3 (the
//            multimodal checkpoint) keeps the text model's config under text_config and its weights under
//            language_model.model. (older) or model.language_model. (transformers 4.52+); only the
//            text model is used.
import type { Checkpoint } from '../sources/checkpoint';
import type { Activation, LayerWeights, LazyTensor, ModelSpec, RopeSpec } from '../spec';
import { asIs, concatVectors, ConfigReader, linearsToMatmul, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';
import { defaultRope, readRope } from './rope';

export type GemmaLike = 'gemma' | 'gemma2' | 'gemma3_text' | 'gemma3';

const ACTS: Record<string, Activation> = { gelu_pytorch_tanh: 'gelu_new', gelu_new: 'gelu_new', gelu_fast: 'gelu_new', gelu: 'gelu', silu: 'silu', swish: 'silu', relu: 'relu' };

/** Defaults of the transformers config classes for the keys read here. */
const DEFAULTS: Record<'gemma' | 'gemma2' | 'gemma3', Record<string, number>> = {
  gemma: { vocab_size: 256000, hidden_size: 3072, intermediate_size: 24576, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 16, max_position_embeddings: 8192, rope_theta: 10000 },
  gemma2: { vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 8192, rope_theta: 10000, query_pre_attn_scalar: 256, sliding_window: 4096, attn_logit_softcapping: 50, final_logit_softcapping: 30 },
  gemma3: { vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 131072, rope_theta: 1000000, query_pre_attn_scalar: 256, sliding_window: 4096, sliding_window_pattern: 6, rope_local_base_freq: 10000 },
};

/** A Gemma RMSNorm weight w as the factor (1 + w), computed in float32. */
function plusOne(t: LazyTensor): LazyTensor {
  return { dims: t.dims, load: () => t.load().map((w) => Math.fround(1 + w)) };
}

export function gemmaSpec(ck: Checkpoint, modelType: GemmaLike): ModelSpec {
  // gemma3 (multimodal): the text model's config is text_config, its weights are prefixed.
  let c = new ConfigReader(ck, modelType);
  if (modelType === 'gemma3') {
    const text = c.obj('text_config');
    if (!text) c.fail('a gemma3 config needs "text_config" (the text model\'s settings)');
    c = new ConfigReader(ck, 'gemma3', text, 'text_config.');
  }
  const kind = modelType === 'gemma' ? 'gemma' : modelType === 'gemma2' ? 'gemma2' : 'gemma3';
  const dflt = DEFAULTS[kind];
  const honoured = kind === 'gemma' ? [] : ['attn_logit_softcapping', 'final_logit_softcapping', 'query_pre_attn_scalar'];
  refuseForeignKeys(c, honoured);
  c.refuseUnless('use_bidirectional_attention', [false], 'bidirectional (non-causal) attention is not supported');
  const D = c.int('hidden_size', dflt['hidden_size']);
  const L = c.int('num_hidden_layers', dflt['num_hidden_layers']);
  const H = c.int('num_attention_heads', dflt['num_attention_heads']);
  const KV = c.int('num_key_value_heads', dflt['num_key_value_heads']);
  const hd = c.int('head_dim', 256);
  if (hd < 2) c.fail(`head_dim ${hd} is too small`);
  const I = c.int('intermediate_size', dflt['intermediate_size']);
  const V = c.int('vocab_size', dflt['vocab_size']);
  const P = c.int('max_position_embeddings', dflt['max_position_embeddings']);
  const eps = c.num('rms_norm_eps', 1e-6, { min: 0 });
  if (H % KV !== 0) c.fail(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);

  // Activation: hidden_activation (gemma2/3 read only it; gemma's transformers 4.39+ too).
  let act: Activation;
  if (c.has('hidden_activation')) {
    act = c.choice('hidden_activation', ACTS, 'gelu_pytorch_tanh');
    if (kind !== 'gemma' && c.has('hidden_act') && c.choice('hidden_act', ACTS, 'gelu_pytorch_tanh') !== act) {
      c.fail('"hidden_act" and "hidden_activation" disagree; transformers uses hidden_activation for this family, so make them match');
    }
  } else if (kind === 'gemma' && c.has('hidden_act')) {
    const a = c.str('hidden_act', 'gelu_pytorch_tanh');
    // transformers 4.39+ ignores hidden_act for Gemma and uses gelu_pytorch_tanh; an activation other
    // than a gelu spelling would mean the config intends something else.
    if (!['gelu', 'gelu_pytorch_tanh', 'gelu_new', 'gelu_fast'].includes(a)) c.fail(`"hidden_act" "${a}" is ignored by transformers for Gemma (it uses gelu_pytorch_tanh unless "hidden_activation" is set); set "hidden_activation" to say which activation the model uses`);
    act = 'gelu_new';
  } else {
    act = 'gelu_new';
  }

  // Layer types and windows.
  let types: string[];
  const written = c.strings('layer_types');
  if (written) {
    if (written.length !== L) c.fail(`"layer_types" has ${written.length} entries but num_hidden_layers is ${L}`);
    const bad = written.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
    if (bad !== undefined) c.fail(`layer_types entry "${bad}" is not supported (supported: full_attention, sliding_attention)`);
    if (kind === 'gemma' && written.includes('sliding_attention')) c.fail('"layer_types": gemma has no sliding-window layers');
    types = written;
  } else if (kind === 'gemma2') {
    types = Array.from({ length: L }, (_, l) => (l % 2 === 0 ? 'sliding_attention' : 'full_attention'));
  } else if (kind === 'gemma3') {
    const pattern = c.int('sliding_window_pattern', dflt['sliding_window_pattern']);
    types = Array.from({ length: L }, (_, l) => ((l + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
  } else {
    types = new Array<string>(L).fill('full_attention');
  }
  const window = types.includes('sliding_attention') ? c.int('sliding_window', dflt['sliding_window']) : 0;
  const windows = types.map((t) => (t === 'sliding_attention' ? window : 0));

  // RoPE: one for every layer, except gemma3 (local layers: plain RoPE with rope_local_base_freq).
  const ropeCtx = { headDim: hd, maxPositions: P, defaultTheta: dflt['rope_theta']!, defaultPartial: 1, partialAllowed: false, layerTypes: kind === 'gemma' ? undefined : types };
  let rope: RopeSpec;
  let layerRope: RopeSpec[] | undefined;
  let rotaryDim: number;
  if (kind === 'gemma3') {
    const params = c.obj('rope_parameters');
    const perType = params !== undefined && Object.values(params).length > 0 && Object.values(params).every((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    let local: RopeSpec | undefined;
    let global: RopeSpec | undefined;
    if (perType) {
      const localBase = c.has('rope_local_base_freq') ? c.num('rope_local_base_freq', 10000, { above: 0 }) : undefined;
      if (types.includes('full_attention')) global = readRope(c, { ...ropeCtx, layerType: 'full_attention' }).rope;
      if (types.includes('sliding_attention')) {
        local = readRope(c, { ...ropeCtx, layerType: 'sliding_attention', defaultTheta: localBase ?? dflt['rope_local_base_freq']! }).rope;
        const entry = params!['sliding_attention'] as Record<string, unknown>;
        if (localBase !== undefined && entry['rope_theta'] !== undefined && entry['rope_theta'] !== localBase) c.fail('"rope_local_base_freq" and "rope_parameters.sliding_attention.rope_theta" disagree; keep one');
      }
    } else {
      global = readRope(c, { ...ropeCtx, layerTypes: undefined }).rope;
      local = defaultRope(c.num('rope_local_base_freq', dflt['rope_local_base_freq']!, { above: 0 }), hd);
    }
    rotaryDim = hd;
    rope = (global ?? local)!;
    layerRope = types.map((t) => (t === 'sliding_attention' ? local! : global!));
  } else {
    ({ rotaryDim, rope } = readRope(c, ropeCtx));
  }

  // Scaling and soft-capping (an explicit null turns soft-capping off).
  const scalar = kind === 'gemma' ? hd : c.num('query_pre_attn_scalar', dflt['query_pre_attn_scalar']!, { above: 0 });
  const cap = (key: string): number | undefined => {
    if (kind === 'gemma') return undefined;
    if (c.raw(key) === null) return undefined;
    if (c.raw(key) === undefined) return dflt[key];
    return c.num(key, 0, { above: 0 });
  };
  const attnSoftcap = cap('attn_logit_softcapping');
  const finalSoftcap = cap('final_logit_softcapping');
  const bias = c.bool('attention_bias', false);
  const tied = c.bool('tie_word_embeddings', true);

  // Weights: gemma3 checkpoints prefix the text model.
  let base = 'model.';
  let headName = 'lm_head.weight';
  if (modelType === 'gemma3' && !ck.tensors.has('model.embed_tokens.weight')) {
    if (ck.tensors.has('model.language_model.embed_tokens.weight')) base = 'model.language_model.';
    else if (ck.tensors.has('language_model.model.embed_tokens.weight')) {
      base = 'language_model.model.';
      headName = 'language_model.lm_head.weight';
    } else c.fail('no language_model.model.embed_tokens.weight or model.language_model.embed_tokens.weight in the checkpoint; is it a Gemma 3 checkpoint?');
  }
  const q0 = ck.tensors.get(base + 'layers.0.self_attn.q_proj.weight');
  if (q0 && q0.shape[0] !== H * hd) c.fail(`head_dim ${hd} × ${H} heads = ${H * hd}, but q_proj has ${q0.shape[0]} rows; set "head_dim" and "num_attention_heads" to match the weights`);
  if (bias && !ck.tensors.has(base + 'layers.0.self_attn.q_proj.bias')) c.fail(`"attention_bias" is true but the checkpoint has no ${base}layers.0.self_attn.q_proj.bias`);
  if (!tied && !ck.tensors.has(headName)) c.fail(`"tie_word_embeddings" is false but the checkpoint has no ${headName}`);

  const post = kind !== 'gemma';
  const norm = (name: string, n = D) => ({ weight: plusOne(asIs(ck, name, [n])) });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `${base}layers.${l}.`;
    const w = (n: string, out: number, inn: number) => asIs(ck, p + n, [out, inn]);
    const b = (n: string, len: number) => asIs(ck, p + n, [len]);
    layers.push({
      ln1: norm(p + 'input_layernorm.weight'),
      ln2: norm(p + (post ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight')),
      postAttnNorm: post ? norm(p + 'post_attention_layernorm.weight') : undefined,
      postMlpNorm: post ? norm(p + 'post_feedforward_layernorm.weight') : undefined,
      qkvWeight: linearsToMatmul([{ tensor: w('self_attn.q_proj.weight', H * hd, D) }, { tensor: w('self_attn.k_proj.weight', KV * hd, D) }, { tensor: w('self_attn.v_proj.weight', KV * hd, D) }]),
      qkvBias: bias ? concatVectors([b('self_attn.q_proj.bias', H * hd), b('self_attn.k_proj.bias', KV * hd), b('self_attn.v_proj.bias', KV * hd)]) : undefined,
      oWeight: linearsToMatmul([{ tensor: w('self_attn.o_proj.weight', D, H * hd) }]),
      oBias: bias ? b('self_attn.o_proj.bias', D) : undefined,
      qNorm: kind === 'gemma3' ? plusOne(b('self_attn.q_norm.weight', hd)) : undefined,
      kNorm: kind === 'gemma3' ? plusOne(b('self_attn.k_norm.weight', hd)) : undefined,
      gateWeight: linearsToMatmul([{ tensor: w('mlp.gate_proj.weight', I, D) }]),
      upWeight: linearsToMatmul([{ tensor: w('mlp.up_proj.weight', I, D) }]),
      downWeight: linearsToMatmul([{ tensor: w('mlp.down_proj.weight', D, I) }]),
    });
  }
  const embed = asIs(ck, base + 'embed_tokens.weight', [V, D]);
  const head = tied ? embed : asIs(ck, headName, [V, D]);
  const bos = c.raw('bos_token_id') ?? ck.config['bos_token_id'];
  return {
    dims: {
      arch: 'gemma', modelType, layers: L, heads: H, kvHeads: KV, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'rmsnorm', normEps: eps, act, gatedMlp: true, positions: 'rope',
      rotaryDim, rope, layerRope, parallelResidual: false, tiedEmbeddings: tied,
      attnScale: new Array<number>(L).fill(Math.pow(scalar, -0.5)), slidingWindow: windows, qkNorm: kind === 'gemma3',
      embedScale: Math.fround(Math.sqrt(D)), attnSoftcap, finalSoftcap,
    },
    embed,
    layers,
    finalNorm: norm(base + 'norm.weight'),
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof bos === 'number' ? bos : undefined,
  };
}
