// Config keys that change the computation in some transformers family. A family file that does not
// implement one refuses a config carrying it (with a non-null value) by name rather than ignoring it,
// since it describes a model we would compute wrongly; the families that implement a key pass it
// as honoured (gemma2/gemma3: the soft-capping keys and query_pre_attn_scalar; smollm3: no_rope_layers).
import type { ConfigReader } from './common';

/** key -> what it does, for the error message */
export const FOREIGN_MATH_KEYS: Readonly<Record<string, string>> = {
  attn_logit_softcapping: 'soft-caps attention scores (Gemma 2)',
  final_logit_softcapping: 'soft-caps the logits (Gemma 2)',
  query_pre_attn_scalar: 'sets the query scaling (Gemma 2/3)',
  no_rope_layers: 'turns RoPE off in some layers (SmolLM3)',
  use_qk_norm: 'normalises queries and keys (Llama 4)',
  attention_multiplier: 'scales attention scores (Granite)',
  embedding_multiplier: 'scales the embeddings (Granite)',
  logits_scaling: 'scales the logits (Granite)',
  residual_multiplier: 'scales the residual branches (Granite)',
  sandwich_norm: 'adds post-sublayer norms',
  use_post_attention_norm: 'adds post-attention norms',
  clip_qkv: 'clips q/k/v (OLMo)',
  qk_layernorm: 'normalises queries and keys',
  alibi: 'uses ALiBi position biases',
  embedding_scale: 'scales the embeddings',
};

/** Refuses every foreign key the config sets, except those the calling family implements (`honoured`). */
export function refuseForeignKeys(c: ConfigReader, honoured: readonly string[] = []): void {
  for (const [key, what] of Object.entries(FOREIGN_MATH_KEYS)) {
    if (!honoured.includes(key) && c.has(key)) c.fail(`"${key}" is not supported: it ${what}, which is not implemented for this model_type`);
  }
}
