// GPT-2 (GPT2LMHeadModel / GPT2Model keys). Conv1D weights are stored [in, out], so they are
// already in MatMul layout; c_attn's columns are q | k | v, heads contiguous inside each.
import type { Checkpoint } from '../sources/checkpoint';
import type { Activation, LayerWeights, ModelSpec } from '../spec';
import { asIs, ConfigReader, optional, transpose } from './common';

const ACTS: Record<string, Activation> = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu' };

export function gpt2Spec(ck: Checkpoint): ModelSpec {
  const c = new ConfigReader(ck, 'gpt2');
  const D = c.int('n_embd');
  const L = c.int('n_layer');
  const H = c.int('n_head');
  const V = c.int('vocab_size');
  const P = c.int('n_positions', c.int('n_ctx', 1024));
  const I = c.int('n_inner', 4 * D);
  const eps = c.num('layer_norm_epsilon', 1e-5);
  const actName = c.str('activation_function', 'gelu_new');
  const act = ACTS[actName] ?? c.fail(`activation_function "${actName}" is not supported (supported: ${Object.keys(ACTS).join(', ')})`);
  if (D % H !== 0) c.fail(`n_embd ${D} is not divisible by n_head ${H}`);
  if (c.bool('scale_attn_by_inverse_layer_idx', false)) c.fail('scale_attn_by_inverse_layer_idx is not supported');
  if (!c.bool('scale_attn_weights', true)) c.fail('scale_attn_weights false is not supported');
  const pre = ck.tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const t = (name: string, shape: number[]) => asIs(ck, pre + name, shape);
  const hd = D / H;

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `h.${l}.`;
    layers.push({
      ln1: { weight: t(p + 'ln_1.weight', [D]), bias: t(p + 'ln_1.bias', [D]) },
      ln2: { weight: t(p + 'ln_2.weight', [D]), bias: t(p + 'ln_2.bias', [D]) },
      qkvWeight: t(p + 'attn.c_attn.weight', [D, 3 * D]),
      qkvBias: t(p + 'attn.c_attn.bias', [3 * D]),
      oWeight: t(p + 'attn.c_proj.weight', [D, D]),
      oBias: t(p + 'attn.c_proj.bias', [D]),
      upWeight: t(p + 'mlp.c_fc.weight', [D, I]),
      upBias: t(p + 'mlp.c_fc.bias', [I]),
      downWeight: t(p + 'mlp.c_proj.weight', [I, D]),
      downBias: t(p + 'mlp.c_proj.bias', [D]),
    });
  }
  const embed = t('wte.weight', [V, D]);
  // GPT-2 always ties lm_head to wte; a separate lm_head.weight, when saved, holds the same values.
  const lmHead = optional(ck, 'lm_head.weight', [V, D]) ?? embed;
  return {
    dims: {
      arch: 'gpt2', modelType: 'gpt2', layers: L, heads: H, kvHeads: H, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'layernorm', normEps: eps, act, gatedMlp: false, positions: 'learned',
      rotaryDim: 0, ropeTheta: 0, parallelResidual: false, tiedEmbeddings: lmHead === embed, attnScale: 1 / Math.sqrt(hd), slidingWindow: 0,
    },
    embed,
    posEmbed: t('wpe.weight', [P, D]),
    layers,
    finalNorm: { weight: t('ln_f.weight', [D]), bias: t('ln_f.bias', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(lmHead.load(), V, D) },
  };
}
