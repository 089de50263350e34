// OLMo 2 (model_type olmo2), as transformers' modeling_olmo2 defines it: the Llama MLP and RoPE with
// post-sublayer norms only (x + post_attention_layernorm(attn(x)), then x + post_feedforward_layernorm(mlp(x));
// no input norms), and RMSNorm of the whole q projection [heads·head_dim] and k projection
// [kv_heads·head_dim] (q_norm / k_norm, not per head) before the head split and RoPE.
// attention_bias: q/k/v/o biases. No sliding windows.
import type { Checkpoint } from '../sources/checkpoint';
import type { LayerWeights, ModelSpec } from '../spec';
import { asIs, concatVectors, ConfigReader, readDecoderDims, linearsToMatmul, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';
import { readRope } from './rope';

export function olmo2Spec(ck: Checkpoint): ModelSpec {
  const c = new ConfigReader(ck, 'olmo2');
  refuseForeignKeys(c);
  const { D, L, H, KV, hd, I, V, P, eps, act } = readDecoderDims(c, { positions: 2048, eps: 1e-5 });
  c.refuseUnless('use_sliding_window', [false], 'olmo2 has no sliding windows');
  c.refuseUnless('sliding_window', [], 'olmo2 has no sliding windows');
  const types = c.strings('layer_types');
  if (types && (types.length !== L || types.some((t) => t !== 'full_attention'))) c.fail(`"layer_types" must be ${L} × "full_attention" for olmo2`);
  const { rotaryDim, rope } = readRope(c, { headDim: hd, maxPositions: P, defaultTheta: 10000, defaultPartial: 1, partialAllowed: false });
  const bias = c.bool('attention_bias', false);
  const tied = c.bool('tie_word_embeddings', false);
  const q0 = ck.tensors.get('model.layers.0.self_attn.q_proj.weight');
  if (q0 && q0.shape[0] !== H * hd) c.fail(`head_dim ${hd} × ${H} heads = ${H * hd}, but q_proj has ${q0.shape[0]} rows; set "head_dim" to match the weights`);
  if (bias && !ck.tensors.has('model.layers.0.self_attn.q_proj.bias')) c.fail('"attention_bias" is true but the checkpoint has no model.layers.0.self_attn.q_proj.bias');
  if (!tied && !ck.tensors.has('lm_head.weight')) c.fail('"tie_word_embeddings" is false (or absent) but the checkpoint has no lm_head.weight; set it to true if the embeddings are tied');

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const w = (n: string, out: number, inn: number) => ({ tensor: asIs(ck, p + n, [out, inn]) });
    const b = (n: string, len: number) => asIs(ck, p + n, [len]);
    layers.push({
      postAttnNorm: { weight: b('post_attention_layernorm.weight', D) },
      postMlpNorm: { weight: b('post_feedforward_layernorm.weight', D) },
      qkvWeight: linearsToMatmul([w('self_attn.q_proj.weight', H * hd, D), w('self_attn.k_proj.weight', KV * hd, D), w('self_attn.v_proj.weight', KV * hd, D)]),
      qkvBias: bias ? concatVectors([b('self_attn.q_proj.bias', H * hd), b('self_attn.k_proj.bias', KV * hd), b('self_attn.v_proj.bias', KV * hd)]) : undefined,
      oWeight: linearsToMatmul([w('self_attn.o_proj.weight', D, H * hd)]),
      oBias: bias ? b('self_attn.o_proj.bias', D) : undefined,
      qNorm: b('self_attn.q_norm.weight', H * hd),
      kNorm: b('self_attn.k_norm.weight', KV * hd),
      gateWeight: linearsToMatmul([w('mlp.gate_proj.weight', I, D)]),
      upWeight: linearsToMatmul([w('mlp.up_proj.weight', I, D)]),
      downWeight: linearsToMatmul([w('mlp.down_proj.weight', D, I)]),
    });
  }
  const embed = asIs(ck, 'model.embed_tokens.weight', [V, D]);
  const head = tied ? embed : asIs(ck, 'lm_head.weight', [V, D]);
  return {
    dims: {
      arch: 'olmo2', modelType: 'olmo2', layers: L, heads: H, kvHeads: KV, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'rmsnorm', normEps: eps, act, gatedMlp: true, positions: 'rope',
      rotaryDim, rope, parallelResidual: false, tiedEmbeddings: tied, attnScale: new Array<number>(L).fill(1 / Math.sqrt(hd)),
      slidingWindow: new Array<number>(L).fill(0), qkNorm: false, qkNormFull: true,
    },
    embed,
    layers,
    finalNorm: { weight: asIs(ck, 'model.norm.weight', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof ck.config['bos_token_id'] === 'number' ? (ck.config['bos_token_id'] as number) : undefined,
  };
}
