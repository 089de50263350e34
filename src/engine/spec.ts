// The common model description every architecture file maps a checkpoint to.
// The graph builder reads only this; it never sees HF tensor names.

export type Arch = 'gpt2' | 'llama' | 'gpt_neox';
export const SUPPORTED_ARCHS: readonly string[] = ['gpt2', 'llama', 'mistral', 'qwen2', 'gpt_neox'];

export type Activation = 'gelu_new' | 'gelu' | 'relu' | 'silu';

export interface ModelDims {
  arch: Arch;
  /** config.json model_type as written (llama, mistral, qwen2, gpt2, gpt_neox) */
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
  ropeTheta: number;
  parallelResidual: boolean;
  tiedEmbeddings: boolean;
  /** query/key scaling; 1/sqrt(headDim) for all supported families */
  attnScale: number;
  /** keys more than this many positions back are masked (Mistral); 0 = none */
  slidingWindow: number;
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
  ln1: NormWeights;
  /** absent only where the family has no second norm (none of the supported ones) */
  ln2: NormWeights;
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


