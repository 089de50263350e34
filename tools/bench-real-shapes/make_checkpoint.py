#!/usr/bin/env python3
"""Make a randomly initialised Hugging Face checkpoint with a real model's exact config.

    python make_checkpoint.py <name> <outdir> [--seed S] [--set key=json ...] [--init sharp|hf]

<name>: llama-3.2-1b, qwen3-0.6b, gemma-3-1b, phi-4-mini (configs.py says where each config came
from). The model is built by transformers itself (AutoModelForCausalLM.from_config, bfloat16) and
written with save_pretrained, so config.json is in the spelling the installed transformers writes.
A byte-level BPE tokenizer.json sized to the vocab is written beside it, with the real special tokens
at their real ids.

--set key=json overrides a config value (e.g. --set num_hidden_layers=2 --set sliding_window=6), for
narrowing a parity failure down on a smaller model of the same family.

--v4-config writes the published config (transformers v4 spelling: rope_theta / rope_scaling) as
config.json instead of the one transformers wrote, to check that both spellings give the same numbers.

--init sharp (default) draws weights so that attention is far from uniform and the norms' weights are
far from their defaults: with transformers' own init (std 0.02, norms at their identity) every head
attends almost uniformly, which would hide a wrong RoPE, scale or mask from a parity check. Linear
weights ~ N(0, 1/fan_in) (q and k projections 1.5x that), embeddings ~ N(0, 3²/hidden), RMSNorm
weights ~ U(0.5, 1.5) (Gemma's 1 + w: w ~ U(-0.5, 0.5)). --init hf keeps transformers' init.
"""
import argparse
import json
import math
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from configs import MODELS, SPECIALS  # noqa: E402
from tokenizer_gen import special_ids, write_tokenizer  # noqa: E402


def sharp_init(model, model_type, seed):
    g = torch.Generator().manual_seed(seed)
    gemma = model_type.startswith("gemma")
    hidden = model.config.hidden_size
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                u = torch.rand(p.shape, generator=g, dtype=torch.float32)
                p.copy_((u - 0.5) if gemma else (u + 0.5))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * (3.0 / math.sqrt(hidden)))
            elif p.dim() == 2:
                std = 1.0 / math.sqrt(p.shape[1])
                if any(k in name for k in ("q_proj", "k_proj", "qkv_proj")):
                    std *= 1.5
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * std)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.1)
            else:
                raise SystemExit(f"make_checkpoint: no init rule for parameter {name} {tuple(p.shape)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(MODELS))
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    ap.add_argument("--init", choices=["sharp", "hf"], default="sharp")
    ap.add_argument("--v4-config", action="store_true",
                    help="replace the config.json transformers wrote by the published (v4-spelled) config, with the --set overrides")
    a = ap.parse_args()

    cfg_dict = json.loads(json.dumps(MODELS[a.name]))
    for kv in a.set:
        k, _, v = kv.partition("=")
        cfg_dict[k] = json.loads(v)
    # A shrunk vocab (--set vocab_size=...): bos/eos/pad ids past it move where the tokenizer puts them.
    remap = special_ids(SPECIALS[a.name], cfg_dict["vocab_size"])
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        v = cfg_dict.get(key)
        if isinstance(v, int):
            cfg_dict[key] = remap.get(v, v)
        elif isinstance(v, list):
            cfg_dict[key] = [remap.get(x, x) for x in v]
    model_type = cfg_dict.pop("model_type")
    # (a copy: transformers v5 rewrites the rope_scaling dict it is given in place)
    cfg = AutoConfig.for_model(model_type, **json.loads(json.dumps(cfg_dict)))

    torch.manual_seed(a.seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    if a.init == "sharp":
        sharp_init(model, model_type, a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    model.save_pretrained(a.outdir, safe_serialization=True)
    n_params = sum(p.numel() for p in model.parameters())

    if a.v4_config:
        with open(os.path.join(a.outdir, "config.json"), "w") as f:
            json.dump({**cfg_dict, "model_type": model_type, "torch_dtype": "bfloat16"}, f, indent=2)
    written = json.load(open(os.path.join(a.outdir, "config.json")))
    spelling = "v5 rope_parameters" if "rope_parameters" in written else "v4 rope_theta/rope_scaling"
    write_tokenizer(os.path.join(a.outdir, "tokenizer.json"), cfg.vocab_size, SPECIALS[a.name])
    info = {
        "name": a.name, "params": n_params, "dtype": "bfloat16", "seed": a.seed, "init": a.init,
        "overrides": a.set, "transformers": transformers.__version__, "torch": torch.__version__,
        "config_spelling": spelling,
    }
    with open(os.path.join(a.outdir, "bench-real-shapes.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
