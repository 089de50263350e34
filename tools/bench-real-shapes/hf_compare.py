#!/usr/bin/env python3
"""transformers' own answer for a prompt, to compare with `attnscope inspect`.

    python hf_compare.py <checkpoint dir> <prompt file> <out.json>

Loads the checkpoint with AutoModelForCausalLM in float32 with eager attention, tokenizes the prompt
with the checkpoint's tokenizer.json (the tokenizers package, as AttnScope does) and writes the token
ids, the last position's log-probabilities (float64 log_softmax of the float32 logits) and every head's
attention probabilities (output_attentions=True; row q holds keys 0..q) to JSON.
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    ckpt, prompt_file, out = sys.argv[1:]
    text = open(prompt_file, encoding="utf-8").read()
    ids = Tokenizer.from_file(f"{ckpt}/tokenizer.json").encode(text).ids
    torch.set_grad_enabled(False)
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager")
    model.eval()
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
