// Phi-3 / Phi-3.5 / Phi-4-mini (model_type phi3), as transformers' modeling_phi3 defines it: the
// Mistral layout with a fused qkv_proj [(H + 2·KV)·head_dim, hidden] (rows: all q heads, then k, then v)
// and a fused gate_up_proj [2·intermediate, hidden] (rows: gate, then up; up · act(gate)), RMSNorm,
// partial rotary (partial_rotary_factor: the first head_dim·factor dims of each head, rotate_half),
// RoPE default or longrope ("su" and "yarn" are old names of longrope there; the top-level
// original_max_position_embeddings, 4096 when absent, sets the long/short switch and the factor),
// sliding_window on every layer when set, no biases. resid_pdrop / embd_pdrop / attention_dropout are
// dropout (inert at inference).
import type { Checkpoint } from '../sources/checkpoint';
import type { LayerWeights, LazyTensor, ModelSpec } from '../spec';
import { asIs, ConfigReader, readDecoderDims, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';
import { readRope } from './rope';

/** Rows [from, from + count) of an nn.Linear weight [rows, cols], transposed to [cols, count] for MatMul. */
export function linearRows(w: LazyTensor, from: number, count: number): LazyTensor {
  const cols = w.dims[1]!;
  return { dims: [cols, count], load: () => transpose(w.load().subarray(from * cols, (from + count) * cols), count, cols) };
}

export function phi3Spec(ck: Checkpoint): ModelSpec {
  const c = new ConfigReader(ck, 'phi3');
  refuseForeignKeys(c);
  const { D, L, H, KV, hd, I, V, P, eps, act } = readDecoderDims(c, { positions: 4096, eps: 1e-5 });
  const w = c.has('sliding_window') ? c.int('sliding_window') : 0;
  c.refuseUnless('use_sliding_window', [false], 'phi3 has no per-layer sliding windows');
  const want = w > 0 ? 'sliding_attention' : 'full_attention';
  const types = c.strings('layer_types');
  if (types && (types.length !== L || types.some((t) => t !== want))) c.fail(`"layer_types" must be ${L} × "${want}" for phi3; per-layer attention types are not supported for this family`);
  const { rotaryDim, rope } = readRope(c, {
    headDim: hd, maxPositions: P, defaultTheta: 10000, defaultPartial: 1,
    types: ['default', 'longrope'], typeAliases: { su: 'longrope', yarn: 'longrope' }, longropeOriginalDefault: 4096,
  });
  const tied = c.bool('tie_word_embeddings', false);
  const qkv0 = ck.tensors.get('model.layers.0.self_attn.qkv_proj.weight');
  if (qkv0 && qkv0.shape[0] !== (H + 2 * KV) * hd) {
    c.fail(`(num_attention_heads ${H} + 2 × num_key_value_heads ${KV}) × head_dim ${hd} = ${(H + 2 * KV) * hd}, but qkv_proj has ${qkv0.shape[0]} rows; check "head_dim" and the head counts`);
  }
  if (!tied && !ck.tensors.has('lm_head.weight')) c.fail('"tie_word_embeddings" is false (or absent) but the checkpoint has no lm_head.weight; set it to true if the embeddings are tied');

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const qkv = asIs(ck, p + 'self_attn.qkv_proj.weight', [(H + 2 * KV) * hd, D]);
    const o = asIs(ck, p + 'self_attn.o_proj.weight', [D, H * hd]);
    const gateUp = asIs(ck, p + 'mlp.gate_up_proj.weight', [2 * I, D]);
    const down = asIs(ck, p + 'mlp.down_proj.weight', [D, I]);
    layers.push({
      ln1: { weight: asIs(ck, p + 'input_layernorm.weight', [D]) },
      ln2: { weight: asIs(ck, p + 'post_attention_layernorm.weight', [D]) },
      qkvWeight: linearRows(qkv, 0, (H + 2 * KV) * hd),
      oWeight: linearRows(o, 0, D),
      gateWeight: linearRows(gateUp, 0, I),
      upWeight: linearRows(gateUp, I, I),
      downWeight: linearRows(down, 0, D),
    });
  }
  const embed = asIs(ck, 'model.embed_tokens.weight', [V, D]);
  const head = tied ? embed : asIs(ck, 'lm_head.weight', [V, D]);
  return {
    dims: {
      arch: 'phi3', modelType: 'phi3', layers: L, heads: H, kvHeads: KV, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'rmsnorm', normEps: eps, act, gatedMlp: true, positions: 'rope',
      rotaryDim, rope, parallelResidual: false, tiedEmbeddings: tied, attnScale: new Array<number>(L).fill(1 / Math.sqrt(hd)),
      slidingWindow: new Array<number>(L).fill(w), qkNorm: false,
    },
    embed,
    layers,
    finalNorm: { weight: asIs(ck, 'model.norm.weight', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof ck.config['bos_token_id'] === 'number' ? (ck.config['bos_token_id'] as number) : undefined,
  };
}
