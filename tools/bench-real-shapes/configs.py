"""The published configs of four real models, in the transformers v4 spelling they were published in.

Only the values matter here (shapes, RoPE settings, norms, vocab, special-token ids); the weights are
random (make_checkpoint.py). Where each came from:

- Llama-3.2-1B: meta-llama/Llama-3.2-1B config.json (transformers 4.45.0.dev0), as copied verbatim in
  public code (e.g. Anthony-Lionetti/PyTorch-nn-Tinkering llama_play/configs.py and
  kevinstephano/thunder_model_blocks hf_llama/llama_config.py, which agree field by field).
- Qwen3-0.6B: Qwen/Qwen3-0.6B config.json (transformers 4.51.0), as quoted in public code with its
  address (https://huggingface.co/Qwen/Qwen3-0.6B/raw/main/config.json).
- Gemma-3-1B: google/gemma-3-1b-pt/-it config.json (model_type gemma3_text, transformers 4.52.4), as
  quoted in Liwink/gemma-jax models/README.md.
- Phi-4-mini: microsoft/Phi-4-mini-instruct config.json (transformers 4.46.1), as copied in public test
  code (a TensorRT-LLM Phi-4-multimodal test that reuses the text config, with num_hidden_layers
  restored to the original 32 it notes) and the onnx-community/Phi-4-mini-instruct-ONNX config.json;
  the 48 long_factor values agree across four independent copies.
"""

LLAMA_3_2_1B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 8192,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 16,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "use_cache": True,
    "vocab_size": 128256,
}

QWEN3_0_6B = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

GEMMA_3_1B = {
    "architectures": ["Gemma3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_logit_softcapping": None,
    "bos_token_id": 2,
    "cache_implementation": "hybrid",
    "eos_token_id": [1, 106],
    "final_logit_softcapping": None,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 1152,
    "initializer_range": 0.02,
    "intermediate_size": 6912,
    "max_position_embeddings": 32768,
    "model_type": "gemma3_text",
    "num_attention_heads": 4,
    "num_hidden_layers": 26,
    "num_key_value_heads": 1,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": 512,
    "sliding_window_pattern": 6,
    "use_cache": True,
    "vocab_size": 262144,
}

PHI4_LONG_FACTOR = [
    1, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897, 1.956131817, 2.187582649,
    2.446418898, 2.735880826, 3.059592084, 3.421605075, 3.826451687, 4.279200023, 4.785517845,
    5.351743533, 5.984965424, 6.693110555, 7.485043894, 8.370679318, 9.36110372, 10.4687158,
    11.70738129, 13.09260651, 14.64173252, 16.37415215, 18.31155283, 20.47818807, 22.90118105,
    25.61086418, 28.64115884, 32.03, 32.1, 32.13, 32.23, 32.6, 32.61, 32.64, 32.66, 32.7, 32.71,
    32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77,
]

PHI_4_MINI = {
    "architectures": ["Phi3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 199999,
    "embd_pdrop": 0.0,
    "eos_token_id": 199999,
    "full_attn_mod": 1,
    "hidden_act": "silu",
    "hidden_size": 3072,
    "initializer_range": 0.02,
    "intermediate_size": 8192,
    "interpolate_factor": 1,
    "lm_head_bias": False,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "phi3",
    "num_attention_heads": 24,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "original_max_position_embeddings": 4096,
    "pad_token_id": 199999,
    "partial_rotary_factor": 0.75,
    "resid_pdrop": 0.0,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "long_factor": PHI4_LONG_FACTOR,
        "short_factor": [1.0] * 48,
        "type": "longrope",
    },
    "rope_theta": 10000.0,
    "sliding_window": 262144,
    "tie_word_embeddings": True,
    "use_cache": True,
    "vocab_size": 200064,
}

# Special tokens at their real ids: (id, content). The first listed BOS is prepended by the
# post-processor where the real tokenizer does so (Llama 3, Gemma 3); Qwen3 and Phi-4-mini add none.
SPECIALS = {
    "llama-3.2-1b": {
        "tokens": [(128000, "<|begin_of_text|>"), (128001, "<|end_of_text|>"), (128006, "<|start_header_id|>"),
                   (128007, "<|end_header_id|>"), (128009, "<|eot_id|>")],
        "bos": "<|begin_of_text|>",
    },
    "qwen3-0.6b": {
        "tokens": [(151643, "<|endoftext|>"), (151644, "<|im_start|>"), (151645, "<|im_end|>")],
        "bos": None,
    },
    "gemma-3-1b": {
        "tokens": [(0, "<pad>"), (1, "<eos>"), (2, "<bos>"), (3, "<unk>"), (105, "<start_of_turn>"), (106, "<end_of_turn>")],
        "bos": "<bos>",
    },
    "phi-4-mini": {
        "tokens": [(199999, "<|endoftext|>"), (200018, "<|endofprompt|>"), (200019, "<|assistant|>"),
                   (200020, "<|end|>"), (200021, "<|user|>"), (200022, "<|system|>")],
        "bos": None,
    },
}

MODELS = {
    "llama-3.2-1b": LLAMA_3_2_1B,
    "qwen3-0.6b": QWEN3_0_6B,
    "gemma-3-1b": GEMMA_3_1B,
    "phi-4-mini": PHI_4_MINI,
}
