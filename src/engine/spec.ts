// The common model description every architecture file maps a checkpoint to.
// The graph builder reads only this; it never sees HF tensor names.

export type Arch = 'gpt2' | 'llama' | 'gpt_neox' | 'phi3' | 'gemma' | 'olmo2';
export const SUPPORTED_ARCHS: readonly string[] = ['gpt2', 'llama', 'mistral', 'qwen2', 'gpt_neox', 'qwen3', 'phi3', 'gemma', 'gemma2', 'gemma3_text', 'gemma3', 'olmo2', 'smollm3'];

export type Activation = 'gelu_new' | 'gelu' | 'relu' | 'silu';

export interface ModelDims {
  arch: Arch;
  /** config.json model_type as written (llama, mistral, qwen2, qwen3, gpt2, gpt_neox, phi3, ...) */
  modelType: string;
  layers: number;
  heads: number;
  kvHeads: number;
  hiddenSize: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  norm: 'layernorm' | 'rmsnorm';
  normEps: number;
  act: Activation;
  /** gate/up/down MLP (llama) rather than fc_in/fc_out */
  gatedMlp: boolean;
  positions: 'learned' | 'rope';
  /** rotate_half RoPE over the first rotaryDim dims of each head (0 when positions are learned) */
  rotaryDim: number;
  /** present exactly when positions are 'rope' */
  rope?: RopeSpec;
  /**
   * [layers] each layer's RoPE where layers differ (Gemma 3: local and global frequencies; SmolLM3:
   * null in its no-RoPE layers); every entry has rotaryDim / 2 frequencies. Absent: `rope` in every layer.
   */
  layerRope?: (RopeSpec | null)[];
  parallelResidual: boolean;
  tiedEmbeddings: boolean;
  /** [layers] query/key scaling per layer (1/sqrt(headDim); GPT-2 options change it) */
  attnScale: number[];
  /** [layers] keys this many positions back or more are masked in that layer; 0 = full causal attention */
  slidingWindow: number[];
  /** per-head RMSNorm of q and k over headDim before RoPE (Qwen3: q_norm / k_norm) */
  qkNorm: boolean;
  /** RMSNorm of the whole q [heads·headDim] and k [kvHeads·headDim] projections before the head split and RoPE (OLMo 2) */
  qkNormFull?: boolean;
  /** multiplies the token embeddings (Gemma: sqrt(hidden_size) rounded to the embedding dtype) */
  embedScale?: number;
  /** attention scores (after scaling) become tanh(s / c)·c before the mask and the attn_bias (Gemma 2) */
  attnSoftcap?: number;
  /** logits become tanh(z / c)·c (Gemma 2) */
  finalSoftcap?: number;
}

/**
 * Rotary embedding as transformers computes it: cos/sin of position × inv_freq (float32), both
 * multiplied by attentionFactor. Where the frequencies depend on the sequence length (the
 * position of the last token + 1, as HF's dynamic_rope_update reads it), `byLength` says how.
 */
export interface RopeSpec {
  /** transformers' rope_type: default, linear, dynamic, yarn, longrope, llama3 */
  type: string;
  /** [rotaryDim / 2] float32 inv_freq for sequences up to `byLength.originalMax` (or all when absent) */
  invFreq: Float32Array;
  /** multiplies cos and sin (yarn's mscale, longrope's scaling; 1 otherwise) */
  attentionFactor: number;
  byLength?:
    /** dynamic NTK: for seqLen > originalMax, base' = base·((factor·seqLen/originalMax) − (factor−1))^(dim/(dim−2)) */
    | { kind: 'dynamic'; originalMax: number; base: number; factor: number }
    /** longrope: for seqLen > originalMax, these [rotaryDim / 2] frequencies (long_factor) */
    | { kind: 'longrope'; originalMax: number; longInvFreq: Float32Array };
}

/** A weight materialised on demand, in float32, canonical layout. */
export interface LazyTensor {
  dims: number[];
  load(): Float32Array;
}

export interface NormWeights {
  /** [hiddenSize] */
  weight: LazyTensor;
  /** [hiddenSize] (layernorm only) */
  bias?: LazyTensor;
}

export interface LayerWeights {
  /** [hiddenSize] norm before attention; absent where the family has none (OLMo 2: post-sublayer norms only) */
  ln1?: NormWeights;
  /** [hiddenSize] norm before the MLP; absent where the family has none (OLMo 2) */
  ln2?: NormWeights;
  /** [hiddenSize] norm of the attention output before the residual add (Gemma 2/3 post_attention_layernorm) */
  postAttnNorm?: NormWeights;
  /** [hiddenSize] norm of the MLP output before the residual add (Gemma 2/3 post_feedforward_layernorm) */
  postMlpNorm?: NormWeights;
  /** [hiddenSize, (heads + 2*kvHeads) * headDim]: columns are all q heads, then k heads, then v heads */
  qkvWeight: LazyTensor;
  /** [(heads + 2*kvHeads) * headDim] */
  qkvBias?: LazyTensor;
  /** [heads * headDim, hiddenSize] */
  oWeight: LazyTensor;
  /** [hiddenSize] */
  oBias?: LazyTensor;
  /** [hiddenSize, intermediateSize] (fc_in, or up_proj for gated MLPs) */
  upWeight: LazyTensor;
  upBias?: LazyTensor;
  /** [hiddenSize, intermediateSize] gated MLPs only */
  gateWeight?: LazyTensor;
  /** [intermediateSize] gated MLPs with mlp_bias */
  gateBias?: LazyTensor;
  /** [headDim] per-head RMSNorm weight of the queries (qkNorm); [heads * headDim] with qkNormFull */
  qNorm?: LazyTensor;
  /** [headDim] per-head RMSNorm weight of the keys (qkNorm); [kvHeads * headDim] with qkNormFull */
  kNorm?: LazyTensor;
  /** [intermediateSize, hiddenSize] */
  downWeight: LazyTensor;
  downBias?: LazyTensor;
}

export interface ModelSpec {
  dims: ModelDims;
  /** [vocabSize, hiddenSize] */
  embed: LazyTensor;
  /** [maxPositions, hiddenSize], learned positions only */
  posEmbed?: LazyTensor;
  layers: LayerWeights[];
  finalNorm: NormWeights;
  /** [hiddenSize, vocabSize] (already transposed for MatMul; the tied embedding transposed when tied) */
  lmHead: LazyTensor;
  lmHeadBias?: LazyTensor;
  bosTokenId?: number;
}


