// GPT-2 (GPT2LMHeadModel / GPT2Model keys). Conv1D weights are stored [in, out], so they are
// already in MatMul layout; c_attn's columns are q | k | v, heads contiguous inside each.
import type { Checkpoint } from '../sources/checkpoint';
import type { Activation, LayerWeights, ModelSpec } from '../spec';
import { asIs, ConfigReader, transpose } from './common';
import { refuseForeignKeys } from './foreignKeys';

const ACTS: Record<string, Activation> = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu' };

export function gpt2Spec(ck: Checkpoint): ModelSpec {
  const c = new ConfigReader(ck, 'gpt2');
  refuseForeignKeys(c);
  const D = c.int('n_embd');
  const L = c.int('n_layer');
  const H = c.int('n_head');
  const V = c.int('vocab_size');
  const P = c.int('n_positions', c.int('n_ctx', 1024));
  const I = c.int('n_inner', 4 * D);
  const eps = c.num('layer_norm_epsilon', 1e-5, { min: 0 });
  const act = c.choice('activation_function', ACTS, 'gelu_new');
  if (D % H !== 0) c.fail(`n_embd ${D} is not divisible by n_head ${H}`);
  // Scores are q·k, divided by sqrt(head_dim) (scale_attn_weights) and by layer + 1
  // (scale_attn_by_inverse_layer_idx). reorder_and_upcast_attn only upcasts to float32, which
  // this graph always computes in, so it leaves the numbers as they are.
  const byDim = c.bool('scale_attn_weights', true);
  const byLayer = c.bool('scale_attn_by_inverse_layer_idx', false);
  c.bool('reorder_and_upcast_attn', false);
  const tied = c.bool('tie_word_embeddings', true);
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
  // Tied (the default): lm_head is wte, whatever a saved lm_head.weight holds.
  if (!tied && !ck.tensors.has('lm_head.weight')) c.fail('"tie_word_embeddings" is false but the checkpoint has no lm_head.weight');
  const lmHead = tied ? embed : asIs(ck, 'lm_head.weight', [V, D]);
  return {
    dims: {
      arch: 'gpt2', modelType: 'gpt2', layers: L, heads: H, kvHeads: H, hiddenSize: D, headDim: hd, intermediateSize: I,
      vocabSize: V, maxPositions: P, norm: 'layernorm', normEps: eps, act, gatedMlp: false, positions: 'learned',
      rotaryDim: 0, parallelResidual: false, tiedEmbeddings: tied, qkNorm: false,
      attnScale: Array.from({ length: L }, (_, l) => (byDim ? 1 / Math.sqrt(hd) : 1) / (byLayer ? l + 1 : 1)),
      slidingWindow: new Array<number>(L).fill(0),
    },
    embed,
    posEmbed: t('wpe.weight', [P, D]),
    layers,
    finalNorm: { weight: t('ln_f.weight', [D]), bias: t('ln_f.bias', [D]) },
    lmHead: { dims: [D, V], load: () => transpose(lmHead.load(), V, D) },
  };
}
