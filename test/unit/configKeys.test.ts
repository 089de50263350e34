// Every config key known to change the math is either honoured (a non-default value changes the
// logits) or refused with a one-line MODEL error naming it: never accepted with unchanged output.
// Plus numeric ranges and lookups of string values by own property only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { isEngineError } from '../../src/engine/errors';
import { makeTinyCheckpoint, tinyVariant, type TinyCheckpoint } from '../fixtures/tinyModels';

type Outcome = 'changes' | 'refused' | 'either' | 'inert';

interface KeyCase {
  /** the key under test (the error must name it when refused) */
  key: string;
  /** written over the base config for this case */
  set: Record<string, unknown>;
  /** written on both sides (the default the key is compared against) */
  base?: Record<string, unknown>;
  /** removed from the case's config */
  drop?: string[];
  expect: Outcome;
  /** for 'inert': why the key legitimately does not change float32 numbers */
  why?: string;
  /** prompt length (default 16) */
  T?: number;
}

const FOREIGN: KeyCase[] = [
  { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: 50.0 }, expect: 'refused' },
  { key: 'final_logit_softcapping', set: { final_logit_softcapping: 30.0 }, expect: 'refused' },
  { key: 'query_pre_attn_scalar', set: { query_pre_attn_scalar: 64 }, expect: 'refused' },
  { key: 'no_rope_layers', set: { no_rope_layers: [1, 0] }, expect: 'refused' },
  { key: 'use_qk_norm', set: { use_qk_norm: true }, expect: 'refused' },
  { key: 'attention_multiplier', set: { attention_multiplier: 0.015625 }, expect: 'refused' },
  { key: 'embedding_multiplier', set: { embedding_multiplier: 12.0 }, expect: 'refused' },
  { key: 'logits_scaling', set: { logits_scaling: 8.0 }, expect: 'refused' },
  { key: 'residual_multiplier', set: { residual_multiplier: 0.22 }, expect: 'refused' },
];

const RANGES_LLAMA: KeyCase[] = [
  { key: 'rope_theta', set: { rope_theta: 0 }, expect: 'refused' },
  { key: 'rope_theta', set: { rope_theta: -10000 }, expect: 'refused' },
  { key: 'rms_norm_eps', set: { rms_norm_eps: -1e-6 }, expect: 'refused' },
  { key: 'num_attention_heads', set: { num_attention_heads: 0 }, expect: 'refused' },
  { key: 'num_key_value_heads', set: { num_key_value_heads: 3 }, expect: 'refused' },
  { key: 'hidden_size', set: { hidden_size: -32 }, expect: 'refused' },
  { key: 'intermediate_size', set: { intermediate_size: 0 }, expect: 'refused' },
  { key: 'vocab_size', set: { vocab_size: 2.5 }, expect: 'refused' },
  { key: 'max_position_embeddings', set: { max_position_embeddings: 0 }, expect: 'refused' },
  { key: 'hidden_act', set: { hidden_act: 'toString' }, expect: 'refused' },
  { key: 'hidden_act', set: { hidden_act: '__proto__' }, expect: 'refused' },
  { key: 'hidden_act', set: { hidden_act: 'constructor' }, expect: 'refused' },
  { key: 'factor', set: { rope_scaling: { rope_type: 'linear', factor: 0 } }, expect: 'refused' },
  { key: 'rope_type', set: { rope_scaling: { rope_type: 'toString' } }, expect: 'refused' },
  { key: 'rope_type', set: { rope_parameters: { rope_theta: 10000, rope_type: 'bogus' } }, drop: ['rope_theta'], expect: 'refused' },
  { key: 'rope_theta', set: { rope_parameters: { rope_theta: -1, rope_type: 'default' } }, drop: ['rope_theta'], expect: 'refused' },
  { key: 'beta', set: { rope_scaling: { rope_type: 'linear', factor: 2.0, beta: 3 } }, expect: 'refused' },
  { key: 'short_factor', set: { rope_scaling: { rope_type: 'longrope', short_factor: [1, 1], long_factor: [1, 1, 1, 1] } }, expect: 'refused' },
  { key: 'rope_theta', set: { rope_theta: 10000, rope_parameters: { rope_theta: 500000, rope_type: 'default' } }, expect: 'refused' },
];

const CASES: Record<string, KeyCase[]> = {
  'llama-gqa': [
    { key: 'rope_theta', set: { rope_theta: 500 }, expect: 'changes' },
    { key: 'rope_parameters', set: { rope_parameters: { rope_theta: 500.0, rope_type: 'default' } }, drop: ['rope_theta', 'rope_scaling'], expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'linear', factor: 4.0 } }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { type: 'yarn', factor: 4.0, original_max_position_embeddings: 16 } }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8 } }, expect: 'changes' },
    { key: 'rope_scaling', base: { max_position_embeddings: 8 }, set: { rope_scaling: { rope_type: 'dynamic', factor: 2.0 } }, expect: 'changes' },
    { key: 'rope_parameters', set: { rope_parameters: { rope_theta: 10000.0, rope_type: 'linear', factor: 3.0 } }, drop: ['rope_theta', 'rope_scaling'], expect: 'changes' },
    { key: 'rope_parameters', set: { rope_parameters: { full_attention: { rope_theta: 10000.0, rope_type: 'default' } } }, drop: ['rope_theta'], expect: 'refused' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.5 }, expect: 'refused' },
    { key: 'head_dim', set: { head_dim: 16 }, expect: 'refused' },
    { key: 'attention_bias', set: { attention_bias: true }, expect: 'refused' },
    { key: 'mlp_bias', set: { mlp_bias: true }, expect: 'refused' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: true }, expect: 'changes' },
    { key: 'hidden_act', set: { hidden_act: 'gelu' }, expect: 'changes' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'sliding_attention'] }, expect: 'refused' },
    { key: 'use_sliding_window', set: { use_sliding_window: true }, expect: 'refused' },
    ...FOREIGN,
    ...RANGES_LLAMA,
  ],
  'mistral-gqa-f16': [
    { key: 'sliding_window', set: { sliding_window: 4 }, expect: 'changes' },
    { key: 'rope_theta', set: { rope_theta: 1000 }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'sliding_attention'] }, expect: 'refused' },
  ],
  'qwen2-untied': [
    { key: 'use_sliding_window', base: { sliding_window: 4, max_window_layers: 1 }, set: { use_sliding_window: true }, expect: 'changes' },
    { key: 'sliding_window', base: { use_sliding_window: true, max_window_layers: 1, sliding_window: 64 }, set: { sliding_window: 3 }, expect: 'changes' },
    { key: 'max_window_layers', base: { use_sliding_window: true, sliding_window: 4, max_window_layers: 3 }, set: { max_window_layers: 0 }, expect: 'changes' },
    { key: 'layer_types', base: { use_sliding_window: true, sliding_window: 4, max_window_layers: 3 }, set: { layer_types: ['full_attention', 'sliding_attention', 'full_attention'] }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'chunked_attention', 'full_attention'] }, expect: 'refused' },
    { key: 'sliding_window', set: { use_sliding_window: true, max_window_layers: 0, sliding_window: null }, expect: 'refused' },
    { key: 'rope_parameters', set: { rope_parameters: { rope_theta: 500.0, rope_type: 'default' } }, drop: ['rope_theta'], expect: 'changes' },
    {
      key: 'rope_parameters',
      base: { use_sliding_window: true, sliding_window: 64, max_window_layers: 1 },
      set: { rope_parameters: { full_attention: { rope_theta: 500.0, rope_type: 'default' }, sliding_attention: { rope_theta: 5000.0, rope_type: 'default' } } },
      drop: ['rope_theta'],
      expect: 'refused',
    },
    { key: 'rope_scaling', set: { rope_scaling: { type: 'yarn', factor: 2.0 } }, expect: 'changes' },
    ...FOREIGN.slice(0, 3),
  ],
  'qwen3-untied': [
    { key: 'attention_bias', set: { attention_bias: true }, expect: 'refused' },
    { key: 'head_dim', set: {}, drop: ['head_dim'], expect: 'refused' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 16 } }, expect: 'changes' },
    { key: 'max_window_layers', base: { use_sliding_window: true, sliding_window: 4, max_window_layers: 2 }, set: { max_window_layers: 1 }, expect: 'changes' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: true }, expect: 'changes' },
    ...FOREIGN.slice(3, 6),
  ],
  'phi3-mini-window': [
    { key: 'sliding_window', set: { sliding_window: 3 }, expect: 'changes' },
    { key: 'sliding_window', set: { sliding_window: null }, expect: 'changes' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.5 }, expect: 'changes' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.1 }, expect: 'refused' },
    { key: 'head_dim', set: { head_dim: 16 }, expect: 'refused' },
    { key: 'rope_theta', set: { rope_theta: 500 }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { type: 'su', short_factor: [1.0, 1.5, 2.0, 4.0], long_factor: [1.0, 2.0, 4.0, 8.0] } }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'longrope', short_factor: [1.0, 1.5, 2.0, 4.0], long_factor: [1.0, 2.0, 4.0, 8.0] } }, expect: 'changes' },
    { key: 'original_max_position_embeddings', base: { rope_scaling: { rope_type: 'longrope', short_factor: [1.0, 1.5, 2.0, 4.0], long_factor: [1.0, 2.0, 4.0, 8.0] } }, set: { original_max_position_embeddings: 8 }, expect: 'changes' },
    { key: 'factor', set: { rope_scaling: { rope_type: 'longrope', factor: 3.0, short_factor: [1.0, 1.5, 2.0, 4.0], long_factor: [1.0, 2.0, 4.0, 8.0] } }, expect: 'refused' },
    { key: 'rope_type', set: { rope_scaling: { rope_type: 'linear', factor: 2.0 } }, expect: 'refused' },
    { key: 'hidden_act', set: { hidden_act: 'gelu' }, expect: 'changes' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: true }, expect: 'changes' },
    { key: 'resid_pdrop', set: { resid_pdrop: 0.5 }, expect: 'inert', why: 'dropout, off at inference' },
    { key: 'embd_pdrop', set: { embd_pdrop: 0.5 }, expect: 'inert', why: 'dropout, off at inference' },
    { key: 'attention_dropout', set: { attention_dropout: 0.5 }, expect: 'inert', why: 'dropout, off at inference' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'full_attention'] }, expect: 'refused' },
    { key: 'num_key_value_heads', set: { num_key_value_heads: 2 }, expect: 'refused' },
    ...FOREIGN.slice(0, 4),
  ],
  'gemma2-softcap-window': [
    { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: 2.0 }, expect: 'changes' },
    { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: null }, expect: 'changes' },
    { key: 'attn_logit_softcapping', set: {}, drop: ['attn_logit_softcapping'], expect: 'changes' },
    { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: -1 }, expect: 'refused' },
    { key: 'final_logit_softcapping', set: { final_logit_softcapping: 1.5 }, expect: 'changes' },
    { key: 'final_logit_softcapping', set: { final_logit_softcapping: null }, expect: 'changes' },
    { key: 'query_pre_attn_scalar', set: { query_pre_attn_scalar: 4 }, expect: 'changes' },
    { key: 'sliding_window', set: { sliding_window: 2 }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'full_attention', 'full_attention'] }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'chunked_attention', 'full_attention'] }, expect: 'refused' },
    { key: 'hidden_activation', set: { hidden_activation: 'silu', hidden_act: 'silu' }, expect: 'changes' },
    { key: 'hidden_activation', set: { hidden_activation: 'toString' }, expect: 'refused' },
    { key: 'hidden_act', set: { hidden_act: 'silu' }, expect: 'refused' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'rope_theta', set: { rope_theta: 100 }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'linear', factor: 4.0 } }, expect: 'changes' },
    { key: 'head_dim', set: { head_dim: 8 }, expect: 'refused' },
    { key: 'attention_bias', set: { attention_bias: true }, expect: 'refused' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: false }, expect: 'refused' },
    { key: 'use_bidirectional_attention', set: { use_bidirectional_attention: true }, expect: 'refused' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.5 }, expect: 'refused' },
    { key: 'attention_dropout', set: { attention_dropout: 0.5 }, expect: 'inert', why: 'dropout, off at inference' },
    ...FOREIGN.slice(3),
  ],
  'gemma3-text-v4': [
    { key: 'rope_local_base_freq', set: { rope_local_base_freq: 100.0 }, expect: 'changes' },
    { key: 'sliding_window_pattern', set: { sliding_window_pattern: 2 }, expect: 'changes' },
    { key: 'sliding_window', set: { sliding_window: 2 }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: null }, expect: 'changes' },
    { key: 'rope_theta', set: { rope_theta: 1000.0 }, expect: 'changes' },
    { key: 'query_pre_attn_scalar', set: { query_pre_attn_scalar: 4 }, expect: 'changes' },
    { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: 2.0 }, expect: 'changes' },
    { key: 'final_logit_softcapping', set: { final_logit_softcapping: 1.0 }, expect: 'changes' },
    { key: 'layer_types', set: { layer_types: ['full_attention', 'full_attention', 'full_attention', 'full_attention'] }, expect: 'changes' },
    {
      key: 'rope_parameters',
      set: { rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1000000.0 }, sliding_attention: { rope_type: 'default', rope_theta: 10000.0 } } },
      drop: ['rope_theta', 'rope_scaling', 'rope_local_base_freq'],
      expect: 'changes',
    },
    {
      key: 'rope_local_base_freq',
      set: { rope_local_base_freq: 500.0, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1000000.0 }, sliding_attention: { rope_type: 'default', rope_theta: 10000.0 } } },
      drop: ['rope_theta', 'rope_scaling'],
      expect: 'refused',
    },
    { key: 'rope_parameters', set: { rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 1000000.0 } } }, drop: ['rope_theta', 'rope_scaling'], expect: 'refused' },
    { key: 'use_bidirectional_attention', set: { use_bidirectional_attention: true }, expect: 'refused' },
    { key: 'hidden_act', set: { hidden_act: 'silu' }, expect: 'refused' },
    { key: 'head_dim', set: { head_dim: 16 }, expect: 'refused' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    ...FOREIGN.slice(3),
  ],
  'gemma3-multimodal-legacy-bf16': [{ key: 'text_config', set: { text_config: null }, expect: 'refused' }],
  'gemma-hidden-act-gelu': [
    { key: 'hidden_act', set: { hidden_act: 'relu' }, expect: 'refused' },
    { key: 'hidden_activation', set: { hidden_activation: 'silu' }, expect: 'changes' },
    { key: 'query_pre_attn_scalar', set: { query_pre_attn_scalar: 4 }, expect: 'refused' },
    { key: 'attn_logit_softcapping', set: { attn_logit_softcapping: 2.0 }, expect: 'refused' },
    { key: 'final_logit_softcapping', set: { final_logit_softcapping: 2.0 }, expect: 'refused' },
    { key: 'layer_types', set: { layer_types: ['sliding_attention', 'full_attention'] }, expect: 'refused' },
    { key: 'head_dim', set: { head_dim: 8 }, expect: 'refused' },
    { key: 'rope_theta', set: { rope_theta: 100.0 }, expect: 'changes' },
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: false }, expect: 'refused' },
    { key: 'use_bidirectional_attention', set: { use_bidirectional_attention: true }, expect: 'refused' },
  ],
  'olmo2-untied': [
    { key: 'rms_norm_eps', set: { rms_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'rope_theta', set: { rope_theta: 100 }, expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'linear', factor: 4.0 } }, expect: 'changes' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: true }, expect: 'changes' },
    { key: 'hidden_act', set: { hidden_act: 'gelu' }, expect: 'changes' },
    { key: 'attention_bias', set: { attention_bias: true }, expect: 'refused' },
    { key: 'head_dim', set: { head_dim: 16 }, expect: 'refused' },
    { key: 'sliding_window', set: { sliding_window: 4 }, expect: 'refused' },
    { key: 'layer_types', set: { layer_types: ['sliding_attention', 'full_attention'] }, expect: 'refused' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.5 }, expect: 'refused' },
    { key: 'clip_qkv', set: { clip_qkv: 8.0 }, expect: 'refused' },
    { key: 'attention_dropout', set: { attention_dropout: 0.5 }, expect: 'inert', why: 'dropout, off at inference' },
    ...FOREIGN,
  ],
  'smollm3-nope-list': [
    { key: 'no_rope_layers', set: { no_rope_layers: [1, 1, 1, 1] }, expect: 'changes' },
    { key: 'no_rope_layers', set: { no_rope_layers: [1, 2, 1, 1] }, expect: 'refused' },
    { key: 'no_rope_layers', set: { no_rope_layers: [1, 0] }, expect: 'refused' },
    { key: 'no_rope_layer_interval', set: { no_rope_layer_interval: 2 }, drop: ['no_rope_layers'], expect: 'changes' },
    { key: 'use_sliding_window', base: { sliding_window: 3 }, set: { use_sliding_window: true }, expect: 'changes' },
    { key: 'sliding_window', base: { use_sliding_window: true, sliding_window: 64 }, set: { sliding_window: 3 }, expect: 'changes' },
    { key: 'layer_types', base: { use_sliding_window: true, sliding_window: 3 }, set: { layer_types: ['sliding_attention', 'full_attention', 'full_attention', 'full_attention'] }, expect: 'changes' },
    { key: 'rope_theta', set: { rope_theta: 100.0 }, expect: 'changes' },
    { key: 'rope_theta', set: {}, drop: ['rope_theta'], expect: 'inert', why: 'the fixture writes the smollm3 default, 2e6' },
    { key: 'attention_bias', set: { attention_bias: true }, expect: 'refused' },
    { key: 'mlp_bias', set: { mlp_bias: true }, expect: 'refused' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: false }, expect: 'refused' },
    { key: 'max_window_layers', set: { max_window_layers: 0 }, expect: 'inert', why: 'transformers\' SmolLM3 does not read it (windows follow no_rope_layers and layer_types)' },
    ...FOREIGN.filter((f) => f.key !== 'no_rope_layers'),
  ],
  gpt2: [
    { key: 'scale_attn_weights', set: { scale_attn_weights: false }, expect: 'changes' },
    { key: 'scale_attn_by_inverse_layer_idx', set: { scale_attn_by_inverse_layer_idx: true }, expect: 'changes' },
    { key: 'reorder_and_upcast_attn', set: { reorder_and_upcast_attn: true }, expect: 'inert', why: 'it only upcasts the attention softmax to float32, which this engine always computes in' },
    { key: 'activation_function', set: { activation_function: 'relu' }, expect: 'changes' },
    { key: 'activation_function', set: { activation_function: 'constructor' }, expect: 'refused' },
    { key: 'layer_norm_epsilon', set: { layer_norm_epsilon: 0.5 }, expect: 'changes' },
    { key: 'layer_norm_epsilon', set: { layer_norm_epsilon: -1 }, expect: 'refused' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: false }, expect: 'refused' },
    { key: 'n_head', set: { n_head: 5 }, expect: 'refused' },
    ...FOREIGN.slice(6),
  ],
  'neox-parallel-rot25': [
    { key: 'rotary_pct', set: { rotary_pct: 0.5 }, expect: 'changes' },
    { key: 'partial_rotary_factor', set: { partial_rotary_factor: 0.5 }, drop: ['rotary_pct'], expect: 'changes' },
    { key: 'rotary_pct', set: { rotary_pct: 1.5 }, expect: 'refused' },
    // (rotary_pct 0.25 of head_dim 8 leaves one frequency, 1 for every base: compare at rotary_pct 1)
    { key: 'rotary_emb_base', base: { rotary_pct: 1.0 }, set: { rotary_emb_base: 100 }, expect: 'changes' },
    { key: 'rope_theta', base: { rotary_pct: 1.0 }, set: { rope_theta: 100 }, drop: ['rotary_emb_base'], expect: 'changes' },
    { key: 'rope_parameters', base: { rotary_pct: 1.0 }, set: { rope_parameters: { rope_theta: 100.0, rope_type: 'default' } }, drop: ['rotary_emb_base'], expect: 'changes' },
    { key: 'rope_scaling', set: { rope_scaling: { rope_type: 'linear', factor: 4.0 } }, expect: 'changes' },
    { key: 'use_parallel_residual', set: { use_parallel_residual: false }, expect: 'changes' },
    { key: 'attention_bias', set: { attention_bias: false }, expect: 'changes' },
    { key: 'hidden_act', set: { hidden_act: 'relu' }, expect: 'changes' },
    { key: 'hidden_act', set: { hidden_act: 'hasOwnProperty' }, expect: 'refused' },
    { key: 'layer_norm_eps', set: { layer_norm_eps: 0.5 }, expect: 'changes' },
    { key: 'tie_word_embeddings', set: { tie_word_embeddings: true }, expect: 'changes' },
    { key: 'rotary_emb_base', set: { rotary_emb_base: 0 }, expect: 'refused' },
  ],
};

let root = '';
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-keys-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A copy of the checkpoint folder with its config edited. */
function withConfig(ck: TinyCheckpoint, dir: string, edit: (cfg: Record<string, unknown>) => void): string {
  fs.cpSync(ck.dir, dir, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  edit(cfg);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  return dir;
}

async function logitsOf(dir: string, ids: number[]): Promise<Float32Array> {
  const model = await Model.open(dir, { device: 'cpu', cacheRoot: path.join(root, 'cache') });
  try {
    const { layers: L, heads: H } = model.dims;
    const out = await model.forward({ ids, headScale: new Float32Array(L * H).fill(1), attnBias: new Float32Array(L * H * ids.length) }, { inspect: false, allLogits: true });
    return out.logits;
  } finally {
    await model.release();
  }
}

let n = 0;
for (const [variantName, cases] of Object.entries(CASES)) {
  test(`config keys: ${variantName}`, async () => {
    const ck = makeTinyCheckpoint(path.join(root, variantName), tinyVariant(variantName));
    const baseCache = new Map<string, Float32Array>();
    for (const c of cases) {
      const label = `${variantName}: ${c.key} = ${JSON.stringify(c.set).slice(0, 120)}`;
      const T = c.T ?? 16;
      const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 37) % (ck.tokenizerVocabSize - 4)));
      const caseDir = withConfig(ck, path.join(root, `case-${n++}`), (cfg) => {
        Object.assign(cfg, c.base ?? {}, c.set);
        for (const k of c.drop ?? []) delete cfg[k];
      });
      let got: Float32Array | undefined;
      let err: unknown;
      try {
        got = await logitsOf(caseDir, ids);
      } catch (e) {
        err = e;
      }
      if (err !== undefined) {
        assert.ok(isEngineError(err) && err.code === 'MODEL', `${label}: refused, but not with a MODEL error: ${String(err)}`);
        assert.ok(!err.message.includes('\n') && err.message.includes(c.key), `${label}: the error does not name "${c.key}": ${err.message}`);
        assert.ok(!/internal|undefined|\[object/i.test(err.message), `${label}: ${err.message}`);
        assert.ok(c.expect === 'refused' || c.expect === 'either', `${label}: expected to be honoured, refused: ${err.message}`);
        continue;
      }
      assert.ok(c.expect !== 'refused', `${label}: expected a refusal naming the key, but it was accepted`);
      const baseKey = JSON.stringify(c.base ?? {});
      let base = baseCache.get(baseKey);
      if (!base) {
        const baseDir = withConfig(ck, path.join(root, `base-${n++}`), (cfg) => Object.assign(cfg, c.base ?? {}));
        base = await logitsOf(baseDir, ids);
        baseCache.set(baseKey, base);
      }
      let diff = 0;
      assert.equal(got!.length, base.length, `${label}: logits size`);
      for (let i = 0; i < base.length; i++) diff = Math.max(diff, Math.abs(base[i]! - got![i]!));
      if (c.expect === 'inert') {
        assert.ok(c.why && diff < 1e-5, `${label}: documented as inert (${c.why}) but changed the logits by ${diff}`);
      } else {
        assert.ok(diff > 1e-3, `${label}: accepted, but the logits changed by only ${diff}: the key was ignored`);
      }
    }
  });
}
