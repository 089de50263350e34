// GPT-NeoX (Pythia). The fused query_key_value weight is nn.Linear [3*hidden, hidden] whose output
// rows are laid out per head as [q | k | v]; rotary covers the first rotary_pct of each head.
import type { Checkpoint } from '../sources/checkpoint';
import type { Activation, LayerWeights, LazyTensor, ModelSpec } from '../spec';
import { asIs, ConfigReader, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';
import { readRope } from './rope';

const ACTS: Record<string, Activation> = { gelu: 'gelu', gelu_new: 'gelu_new', gelu_fast: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu', silu: 'silu' };

/** Reorders per-head [q|k|v] output rows to all-q, all-k, all-v. `rowLen` is 1 for biases. */
function perHeadToBlocks(src: Float32Array, H: number, hd: number, rowLen: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let h = 0; h < H; h++) {
    for (let part = 0; part < 3; part++) {
      const from = ((h * 3 + part) * hd) * rowLen;
      const to = ((part * H + h) * hd) * rowLen;
      out.set(src.subarray(from, from + hd * rowLen), to);
    }
  }
  return out;
}

export function neoxSpec(ck: Checkpoint): ModelSpec {
  const c = new ConfigReader(ck, 'gpt_neox');
  refuseForeignKeys(c);
  const D = c.int('hidden_size');
  const L = c.int('num_hidden_layers');
  const H = c.int('num_attention_heads');
  const I = c.int('intermediate_size', 4 * D);
  const V = c.int('vocab_size');
  const P = c.int('max_position_embeddings', 2048);
  const eps = c.num('layer_norm_eps', 1e-5, { min: 0 });
  // rotary_pct (v4) is partial_rotary_factor (v5); rotary_emb_base (v4) is rope_theta.
  const pct = c.num('rotary_pct', 0.25, { above: 0, max: 1 });
  if (c.has('rotary_pct') && c.has('partial_rotary_factor') && c.num('partial_rotary_factor', pct) !== pct) c.fail('"rotary_pct" and "partial_rotary_factor" disagree; keep one');
  if (c.has('rotary_emb_base') && c.has('rope_theta') && c.num('rope_theta', 0) !== c.num('rotary_emb_base', 0)) c.fail('"rotary_emb_base" and "rope_theta" disagree; keep one');
  const parallel = c.bool('use_parallel_residual', true);
  const act = c.choice('hidden_act', ACTS, 'gelu');
  if (D % H !== 0) c.fail(`hidden_size ${D} is not divisible by num_attention_heads ${H}`);
  const bias = c.bool('attention_bias', true);
  const hd = D / H;
  const { rotaryDim: rot, rope } = readRope(c, { headDim: hd, maxPositions: P, defaultTheta: 10000, defaultPartial: pct, legacyThetaKey: 'rotary_emb_base' });

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `gpt_neox.layers.${l}.`;
    const qkvW = asIs(ck, p + 'attention.query_key_value.weight', [3 * D, D]);
    const qkvB = bias ? asIs(ck, p + 'attention.query_key_value.bias', [3 * D]) : undefined;
    const lin = (name: string, out: number, inn: number): LazyTensor => {
      const w = asIs(ck, p + name, [out, inn]);
      return { dims: [inn, out], load: () => transpose(w.load(), out, inn) };
    };
    layers.push({
      ln1: { weight: asIs(ck, p + 'input_layernorm.weight', [D]), bias: asIs(ck, p + 'input_layernorm.bias', [D]) },
      ln2: { weight: asIs(ck, p + 'post_attention_layernorm.weight', [D]), bias: asIs(ck, p + 'post_attention_layernorm.bias', [D]) },
      qkvWeight: { dims: [D, 3 * D], load: () => transpose(perHeadToBlocks(qkvW.load(), H, hd, D), 3 * D, D) },
      qkvBias: qkvB ? { dims: [3 * D], load: () => perHeadToBlocks(qkvB.load(), H, hd, 1) } : undefined,
      oWeight: lin('attention.dense.weight', D, D),
      oBias: bias ? asIs(ck, p + 'attention.dense.bias', [D]) : undefined,
      upWeight: lin('mlp.dense_h_to_4h.weight', I, D),
      upBias: asIs(ck, p + 'mlp.dense_h_to_4h.bias', [I]),
      downWeight: lin('mlp.dense_4h_to_h.weight', D, I),
      downBias: asIs(ck, p + 'mlp.dense_4h_to_h.bias', [D]),
    });
  }
  const embed = asIs(ck, 'gpt_neox.embed_in.weight', [V, D]);
  const tied = c.bool('tie_word_embeddings', false);
  // Tied: embed_out is embed_in (as transformers ties them), whatever a saved embed_out holds.
  const head = tied ? embed : asIs(ck, 'embed_out.weight', [V, D]);
  return {
    dims: {
      arch: 'gpt_neox', modelType: 'gpt_neox', layers: L, heads: H, kvHeads: H, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'layernorm', normEps: eps, act, gatedMlp: false, positions: 'rope',
      rotaryDim: rot, rope, parallelResidual: parallel, tiedEmbeddings: head === embed, qkNorm: false,
      attnScale: new Array<number>(L).fill(1 / Math.sqrt(hd)), slidingWindow: new Array<number>(L).fill(0),
    },
    embed,
    layers,
    finalNorm: { weight: asIs(ck, 'gpt_neox.final_layer_norm.weight', [D]), bias: asIs(ck, 'gpt_neox.final_layer_norm.bias', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(head.load(), V, D) },
    bosTokenId: typeof ck.config['bos_token_id'] === 'number' ? (ck.config['bos_token_id'] as number) : undefined,
  };
}
