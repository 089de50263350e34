// The Llama family: llama, mistral, qwen2, qwen3 and SmolLM-style configs. RMSNorm, rotate_half
// RoPE (every transformers rope_type, v4 and v5 spellings; see rope.ts), grouped-query attention,
// SwiGLU MLP. Per family, as transformers defines it:
//   llama    attention_bias: q/k/v/o biases; mlp_bias: gate/up/down biases; head_dim
//   mistral  sliding_window on every layer; no biases
//   qwen2    q/k/v biases (never o); use_sliding_window + max_window_layers or layer_types
//   qwen3    attention_bias: q/k/v/o biases; per-head RMSNorm q_norm/k_norm [head_dim] before RoPE;
//            head_dim (128 when absent); sliding windows as qwen2
//   smollm3  llama with no_rope_layers (per layer: 1 = RoPE, 0 = no RoPE; default every
//            no_rope_layer_interval-th layer (4) has none), attention_bias / mlp_bias as llama, rope_theta
//            2e6 when absent, tied by default; a sliding window only on no-RoPE layers typed
//            sliding_attention with use_sliding_window
import type { Checkpoint } from '../sources/checkpoint';
import type { LayerWeights, ModelSpec } from '../spec';
import { asIs, concatVectors, ConfigReader, readDecoderDims, linearsToMatmul, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';
import { readRope } from './rope';

export type LlamaLike = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'smollm3';

/** Per layer: the sliding window (0 = full attention) and the layer type names used for v5 rope_parameters. */
/** SmolLM3's per-layer RoPE flags: no_rope_layers (1 = RoPE) or every no_rope_layer_interval-th layer without. */
function readRopeFlags(c: ConfigReader, L: number): boolean[] {
  const v = c.raw('no_rope_layers');
  if (v === undefined || v === null) {
    const every = c.int('no_rope_layer_interval', 4);
    return Array.from({ length: L }, (_, l) => (l + 1) % every !== 0);
  }
  if (!Array.isArray(v) || v.length < L || !v.every((x) => x === 0 || x === 1)) c.fail(`"no_rope_layers" must be a list of at least ${L} entries, each 1 (RoPE) or 0 (no RoPE)`);
  return (v as number[]).slice(0, L).map((x) => x === 1);
}

function readWindows(c: ConfigReader, modelType: LlamaLike, L: number, hasRope?: boolean[]): { windows: number[]; layerTypes?: string[] } {
  if (modelType === 'llama' || modelType === 'mistral') {
    // llama: full attention everywhere; mistral: sliding_window (if any) on every layer. A layer_types
    // list is accepted only where it says just that.
    const w = modelType === 'mistral' && c.has('sliding_window') ? c.int('sliding_window') : 0;
    c.refuseUnless('use_sliding_window', [false], `${modelType} has no per-layer sliding windows`);
    const want = w > 0 ? 'sliding_attention' : 'full_attention';
    const types = c.strings('layer_types');
    if (types && (types.length !== L || types.some((t) => t !== want))) c.fail(`"layer_types" must be ${L} × "${want}" for ${modelType}; per-layer attention types are not supported for this family`);
    return { windows: new Array<number>(L).fill(w) };
  }
  if (modelType === 'smollm3') {
    // transformers: sliding_attention on no-RoPE layers when use_sliding_window and sliding_window are set.
    const use = c.bool('use_sliding_window', false);
    const has = c.has('sliding_window');
    let types = c.strings('layer_types');
    if (types) {
      if (types.length !== L) c.fail(`"layer_types" has ${types.length} entries but num_hidden_layers is ${L}`);
      const bad = types.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
      if (bad !== undefined) c.fail(`layer_types entry "${bad}" is not supported (supported: full_attention, sliding_attention)`);
    } else {
      types = hasRope!.map((r) => (use && has && !r ? 'sliding_attention' : 'full_attention'));
    }
    const sliding = use && types.includes('sliding_attention');
    const w = sliding ? c.int('sliding_window') : 0;
    return { windows: types.map((t) => (use && t === 'sliding_attention' ? w : 0)), layerTypes: types };
  }
  // qwen2 / qwen3: transformers derives layer_types from use_sliding_window and max_window_layers
  // (sliding from layer max_window_layers on) unless written; a window only applies with use_sliding_window.
  const use = c.bool('use_sliding_window', false);
  const mwl = c.int('max_window_layers', 28, 0);
  let types = c.strings('layer_types');
  if (types) {
    if (types.length !== L) c.fail(`"layer_types" has ${types.length} entries but num_hidden_layers is ${L}`);
    const bad = types.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
    if (bad !== undefined) c.fail(`layer_types entry "${bad}" is not supported (supported: full_attention, sliding_attention)`);
  } else {
    types = Array.from({ length: L }, (_, l) => (use && l >= mwl ? 'sliding_attention' : 'full_attention'));
  }
  const anySliding = use && types.includes('sliding_attention');
  const w = anySliding ? c.int('sliding_window') : 0;
  return { windows: types.map((t) => (use && t === 'sliding_attention' ? w : 0)), layerTypes: types };
}

export function llamaSpec(ck: Checkpoint, modelType: LlamaLike): ModelSpec {
  const c = new ConfigReader(ck, modelType);
  refuseForeignKeys(c, modelType === 'smollm3' ? ['no_rope_layers'] : []);
  const { D, L, H, KV, hd, I, V, P, eps, act } = readDecoderDims(c, { headDim: modelType === 'qwen3' ? 128 : undefined, positions: 2048, eps: 1e-6 });
  const hasRope = modelType === 'smollm3' ? readRopeFlags(c, L) : undefined;
  const { windows, layerTypes } = readWindows(c, modelType, L, hasRope);
  const { rotaryDim, rope } = readRope(c, { headDim: hd, maxPositions: P, defaultTheta: modelType === 'smollm3' ? 2000000 : 10000, defaultPartial: 1, layerTypes, partialAllowed: false });
  const layerRope = hasRope?.map((r) => (r ? rope : null));
  // Biases, as each family's attention and MLP modules declare them.
  let qkvBias = false;
  let oBias = false;
  let mlpBias = false;
  if (modelType === 'llama' || modelType === 'qwen3' || modelType === 'smollm3') qkvBias = oBias = c.bool('attention_bias', false);
  if (modelType === 'llama' || modelType === 'smollm3') mlpBias = c.bool('mlp_bias', false);
  if (modelType === 'qwen2') qkvBias = true;
  // (mistral and qwen2 fix their biases in the architecture; transformers reads neither key for them.)
  const qkNorm = modelType === 'qwen3';
  const tied = c.bool('tie_word_embeddings', modelType === 'smollm3');
  // Name the config key when it and the weights disagree (rather than only the tensor).
  const q0 = ck.tensors.get('model.layers.0.self_attn.q_proj.weight');
  if (q0 && q0.shape[0] !== H * hd) {
    c.fail(`head_dim ${hd} (${c.has('head_dim') ? '"head_dim"' : modelType === 'qwen3' ? 'the qwen3 default of "head_dim"' : 'hidden_size / num_attention_heads, no "head_dim"'}) × ${H} heads = ${H * hd}, but q_proj has ${q0.shape[0]} rows; set "head_dim" to match the weights`);
  }
  const needs = (key: string, tensor: string) => {
    if (!ck.tensors.has(tensor)) c.fail(`"${key}" is true but the checkpoint has no ${tensor}`);
  };
  if (qkvBias && modelType !== 'qwen2') needs('attention_bias', 'model.layers.0.self_attn.q_proj.bias');
  if (mlpBias) needs('mlp_bias', 'model.layers.0.mlp.gate_proj.bias');
  if (!tied && !ck.tensors.has('lm_head.weight')) c.fail('"tie_word_embeddings" is false (or absent) but the checkpoint has no lm_head.weight; set it to true if the embeddings are tied');

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const q = asIs(ck, p + 'self_attn.q_proj.weight', [H * hd, D]);
    const k = asIs(ck, p + 'self_attn.k_proj.weight', [KV * hd, D]);
    const v = asIs(ck, p + 'self_attn.v_proj.weight', [KV * hd, D]);
    const o = asIs(ck, p + 'self_attn.o_proj.weight', [D, H * hd]);
    const gate = asIs(ck, p + 'mlp.gate_proj.weight', [I, D]);
    const up = asIs(ck, p + 'mlp.up_proj.weight', [I, D]);
    const down = asIs(ck, p + 'mlp.down_proj.weight', [D, I]);
    layers.push({
      ln1: { weight: asIs(ck, p + 'input_layernorm.weight', [D]) },
      ln2: { weight: asIs(ck, p + 'post_attention_layernorm.weight', [D]) },
      qkvWeight: linearsToMatmul([{ tensor: q }, { tensor: k }, { tensor: v }]),
      qkvBias: qkvBias
        ? concatVectors([asIs(ck, p + 'self_attn.q_proj.bias', [H * hd]), asIs(ck, p + 'self_attn.k_proj.bias', [KV * hd]), asIs(ck, p + 'self_attn.v_proj.bias', [KV * hd])])
        : undefined,
      oWeight: linearsToMatmul([{ tensor: o }]),
      oBias: oBias ? asIs(ck, p + 'self_attn.o_proj.bias', [D]) : undefined,
      qNorm: qkNorm ? asIs(ck, p + 'self_attn.q_norm.weight', [hd]) : undefined,
      kNorm: qkNorm ? asIs(ck, p + 'self_attn.k_norm.weight', [hd]) : undefined,
      gateWeight: linearsToMatmul([{ tensor: gate }]),
      gateBias: mlpBias ? asIs(ck, p + 'mlp.gate_proj.bias', [I]) : undefined,
      upWeight: linearsToMatmul([{ tensor: up }]),
      upBias: mlpBias ? asIs(ck, p + 'mlp.up_proj.bias', [I]) : undefined,
      downWeight: linearsToMatmul([{ tensor: down }]),
      downBias: mlpBias ? asIs(ck, p + 'mlp.down_proj.bias', [D]) : undefined,
    });
  }
  const embed = asIs(ck, 'model.embed_tokens.weight', [V, D]);
  // Tied: lm_head is embed_tokens (transformers ties them after loading), whatever a saved lm_head.weight holds.
  const head = tied ? embed : asIs(ck, 'lm_head.weight', [V, D]);
  return {
    dims: {
      arch: 'llama', modelType, layers: L, heads: H, kvHeads: KV, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'rmsnorm', normEps: eps, act, gatedMlp: true, positions: 'rope',
      rotaryDim, rope, layerRope, parallelResidual: false, tiedEmbeddings: tied, attnScale: new Array<number>(L).fill(1 / Math.sqrt(hd)),
      slidingWindow: windows, qkNorm,
    },
    embed,
    layers,
    finalNorm: { weight: asIs(ck, 'model.norm.weight', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof ck.config['bos_token_id'] === 'number' ? (ck.config['bos_token_id'] as number) : undefined,
  };
}
