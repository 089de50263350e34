#!/usr/bin/env python3
"""transformers' own answer for a prompt, to compare with `attnscope inspect`.

    python hf_compare.py <checkpoint dir> <prompt file> <out.json> [--embed-scale-in-checkpoint-dtype]

Loads the checkpoint with AutoModelForCausalLM in float32 with eager attention, tokenizes the prompt
with the checkpoint's tokenizer.json (the tokenizers package, as AttnScope does) and writes the token
ids, the last position's log-probabilities (float64 log_softmax of the float32 logits) and every head's
attention probabilities (output_attentions=True; row q holds keys 0..q) to JSON.

--embed-scale-in-checkpoint-dtype (Gemma): transformers multiplies the embeddings by sqrt(hidden_size)
cast to the weights' dtype at run time, so a bfloat16 checkpoint loaded in float32 is scaled by
33.9411 where the same checkpoint run in bfloat16 is scaled by 34.0; this rounds the scale to the
checkpoint's stored dtype (what AttnScope does) and leaves every other step in float32.
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    if len(args) != 3 or any(f != "--embed-scale-in-checkpoint-dtype" for f in flags):
        raise SystemExit(__doc__)
    ckpt, prompt_file, out = args
    text = open(prompt_file, encoding="utf-8").read()
    ids = Tokenizer.from_file(f"{ckpt}/tokenizer.json").encode(text).ids
    torch.set_grad_enabled(False)
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    if flags:
        emb = model.get_input_embeddings()
        written = json.load(open(f"{ckpt}/config.json"))
        stored = getattr(torch, written.get("dtype") or written.get("torch_dtype") or "float32")
        emb.embed_scale.copy_(emb.embed_scale.to(stored).float())
    res = model(torch.tensor([ids]), output_attentions=True, use_cache=False)
    logprobs = torch.log_softmax(res.logits[0, -1].double(), dim=-1)
    T = len(ids)
    attention = {}
    for l, a in enumerate(res.attentions):
        for h in range(a.shape[1]):
            attention[f"{l}.{h}"] = [a[0, h, q, : q + 1].tolist() for q in range(T)]
    json.dump({"ids": ids, "logprobs": logprobs.tolist(), "attention": attention}, open(out, "w"))


if __name__ == "__main__":
    main()
