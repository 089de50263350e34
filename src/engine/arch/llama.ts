// The Llama family: llama, mistral, qwen2 and SmolLM-style configs. RMSNorm, rotate_half RoPE over
// the whole head, grouped-query attention, SwiGLU MLP; qwen2 adds q/k/v biases.
import type { Checkpoint } from '../sources/checkpoint';
import type { Activation, LayerWeights, ModelSpec } from '../spec';
import { asIs, concatVectors, ConfigReader, linearsToMatmul, optional, transpose } from './common';

const ACTS: Record<string, Activation> = { silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu' };

export function llamaSpec(ck: Checkpoint, modelType: 'llama' | 'mistral' | 'qwen2'): ModelSpec {
  const c = new ConfigReader(ck, modelType);
  const D = c.int('hidden_size');
  const L = c.int('num_hidden_layers');
  const H = c.int('num_attention_heads');
  const KV = c.int('num_key_value_heads', H);
  const hd = c.int('head_dim', Math.floor(D / H));
  const I = c.int('intermediate_size');
  const V = c.int('vocab_size');
  const P = c.int('max_position_embeddings', 2048);
  const eps = c.num('rms_norm_eps', 1e-6);
  const theta = c.num('rope_theta', 10000);
  const actName = c.str('hidden_act', 'silu');
  const act = ACTS[actName] ?? c.fail(`hidden_act "${actName}" is not supported (supported: ${Object.keys(ACTS).join(', ')})`);
  if (H % KV !== 0) c.fail(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);
  const scaling = c.raw('rope_scaling') as { rope_type?: string; type?: string } | null | undefined;
  if (scaling) {
    const kind = scaling.rope_type ?? scaling.type ?? JSON.stringify(scaling);
    if (kind !== 'default') c.fail(`rope_scaling "${kind}" is not supported yet (only plain RoPE); remove it or use a model without RoPE scaling`);
  }
  if (c.has('partial_rotary_factor') && c.num('partial_rotary_factor', 1) !== 1) c.fail('partial_rotary_factor is not supported for this family');
  let slidingWindow = 0;
  if (modelType === 'mistral' && c.has('sliding_window')) slidingWindow = c.int('sliding_window');
  if (modelType === 'qwen2' && c.bool('use_sliding_window', false)) c.fail('use_sliding_window true is not supported');
  const qkvBias = modelType === 'qwen2' || c.bool('attention_bias', false);
  const oBias = modelType !== 'qwen2' && c.bool('attention_bias', false);
  if (c.bool('mlp_bias', false)) c.fail('mlp_bias true is not supported yet');
  const tied = c.bool('tie_word_embeddings', false);

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
      gateWeight: linearsToMatmul([{ tensor: gate }]),
      upWeight: linearsToMatmul([{ tensor: up }]),
      downWeight: linearsToMatmul([{ tensor: down }]),
    });
  }
  const embed = asIs(ck, 'model.embed_tokens.weight', [V, D]);
  const head = tied ? (optional(ck, 'lm_head.weight', [V, D]) ?? embed) : asIs(ck, 'lm_head.weight', [V, D]);
  return {
    dims: {
      arch: 'llama', modelType, layers: L, heads: H, kvHeads: KV, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'rmsnorm', normEps: eps, act, gatedMlp: true, positions: 'rope',
      rotaryDim: hd, ropeTheta: theta, parallelResidual: false, tiedEmbeddings: tied, attnScale: 1 / Math.sqrt(hd), slidingWindow,
    },
    embed,
    layers,
    finalNorm: { weight: asIs(ck, 'model.norm.weight', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof ck.config['bos_token_id'] === 'number' ? (ck.config['bos_token_id'] as number) : undefined,
  };
}
