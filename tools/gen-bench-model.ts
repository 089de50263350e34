// Writes a randomly initialised checkpoint in the real HF layout, for `attnscope bench` and
// tools/bench-kept.ts: GPT-2-shaped by default, or `--preset smollm2-135m` (llama: 30 layers, hidden
// 576, 9 heads, 3 KV heads, intermediate 1536, vocab 49152, 8192 positions, tied embeddings).
// usage: node out/tools/gen-bench-model.js <dir> [--layers 6] [--heads 8] [--width 512] [--vocab 50257] [--positions 2048]
//        node out/tools/gen-bench-model.js <dir> --preset smollm2-135m
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { writeSafetensors, type TensorToWrite } from '../test/fixtures/safetensorsWriter';
import { writeTinyTokenizer } from '../test/fixtures/tinyTokenizer';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { preset: { type: 'string' }, layers: { type: 'string', default: '6' }, heads: { type: 'string', default: '8' }, width: { type: 'string', default: '512' }, vocab: { type: 'string', default: '50257' }, positions: { type: 'string', default: '2048' } },
});
const dir = positionals[0];
if (!dir) {
  process.stderr.write('usage: gen-bench-model <dir> [--layers 6] [--heads 8] [--width 512] [--vocab 50257] [--positions 2048]\n');
  process.exit(2);
}
const L = Number(values.layers), H = Number(values.heads), D = Number(values.width), V = Number(values.vocab), P = Number(values.positions);
let seed = 42;
function gauss(): number {
  // mulberry32 + Box-Muller: deterministic weights
  const u = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  return Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}
const rand = (shape: number[], std: number, mean = 0) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = mean + std * gauss();
  return d;
};
const t = (name: string, shape: number[], std: number, mean = 0): TensorToWrite => ({ name, dtype: 'F32', shape, data: rand(shape, std, mean) });
if (values.preset !== undefined) {
  if (values.preset !== 'smollm2-135m') {
    process.stderr.write(`gen-bench-model: unknown preset ${values.preset} (known: smollm2-135m)\n`);
    process.exit(2);
  }
  writeSmolLM2(dir);
  process.exit(0);
}

/** SmolLM2-135M's shapes (HuggingFaceTB/SmolLM2-135M config.json) with random weights. */
function writeSmolLM2(out: string): void {
  const [Ls, Hs, KVs, Ds, Is, Vs, Ps] = [30, 9, 3, 576, 1536, 49152, 8192];
  const hd = Ds / Hs;
  const ts: TensorToWrite[] = [t('model.embed_tokens.weight', [Vs, Ds], 0.02)];
  for (let l = 0; l < Ls; l++) {
    const p = `model.layers.${l}.`;
    ts.push(
      t(p + 'input_layernorm.weight', [Ds], 0.02, 1),
      t(p + 'self_attn.q_proj.weight', [Hs * hd, Ds], 0.05), t(p + 'self_attn.k_proj.weight', [KVs * hd, Ds], 0.05),
      t(p + 'self_attn.v_proj.weight', [KVs * hd, Ds], 0.02), t(p + 'self_attn.o_proj.weight', [Ds, Hs * hd], 0.02),
      t(p + 'post_attention_layernorm.weight', [Ds], 0.02, 1),
      t(p + 'mlp.gate_proj.weight', [Is, Ds], 0.02), t(p + 'mlp.up_proj.weight', [Is, Ds], 0.02), t(p + 'mlp.down_proj.weight', [Ds, Is], 0.02),
    );
  }
  ts.push(t('model.norm.weight', [Ds], 0.02, 1));
  fs.mkdirSync(out, { recursive: true });
  writeSafetensors(path.join(out, 'model.safetensors'), ts);
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', num_hidden_layers: Ls, num_attention_heads: Hs, num_key_value_heads: KVs, hidden_size: Ds,
    intermediate_size: Is, vocab_size: Vs, max_position_embeddings: Ps, rms_norm_eps: 1e-5, rope_theta: 100000, hidden_act: 'silu', tie_word_embeddings: true,
    attention_bias: false, mlp_bias: false, head_dim: hd, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
  }, null, 2));
  writeTinyTokenizer(out, { bos: true });
  process.stdout.write(`wrote ${out}: llama (SmolLM2-135M shapes), ${Ls} layers, ${Hs} heads (${KVs} KV), width ${Ds}, vocab ${Vs}, ${Ps} positions\n`);
}
const tensors: TensorToWrite[] = [t('transformer.wte.weight', [V, D], 0.02), t('transformer.wpe.weight', [P, D], 0.01)];
for (let l = 0; l < L; l++) {
  const p = `transformer.h.${l}.`;
  tensors.push(
    t(p + 'ln_1.weight', [D], 0.02, 1), t(p + 'ln_1.bias', [D], 0.02),
    t(p + 'attn.c_attn.weight', [D, 3 * D], 0.05), t(p + 'attn.c_attn.bias', [3 * D], 0.02),
    t(p + 'attn.c_proj.weight', [D, D], 0.02), t(p + 'attn.c_proj.bias', [D], 0.02),
    t(p + 'ln_2.weight', [D], 0.02, 1), t(p + 'ln_2.bias', [D], 0.02),
    t(p + 'mlp.c_fc.weight', [D, 4 * D], 0.02), t(p + 'mlp.c_fc.bias', [4 * D], 0.02),
    t(p + 'mlp.c_proj.weight', [4 * D, D], 0.02), t(p + 'mlp.c_proj.bias', [D], 0.02),
  );
}
tensors.push(t('transformer.ln_f.weight', [D], 0.02, 1), t('transformer.ln_f.bias', [D], 0.02));
fs.mkdirSync(dir, { recursive: true });
writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
  architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_layer: L, n_head: H, n_embd: D, n_positions: P, n_ctx: P, n_inner: null,
  vocab_size: V, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', bos_token_id: V - 1, eos_token_id: V - 1,
}, null, 2));
writeTinyTokenizer(dir, { bos: false });
process.stdout.write(`wrote ${dir}: gpt2, ${L} layers, ${H} heads, width ${D}, vocab ${V}, ${P} positions\n`);
