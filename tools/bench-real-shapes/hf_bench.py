#!/usr/bin/env python3
"""Time transformers' eager forward with output_attentions=True (the nearest thing to an AttnScope
inspection) at N tokens, float32 on CPU, for a ratio against `attnscope bench` in the same session.

    /usr/bin/time -v python hf_bench.py <checkpoint dir> <tokens> [runs]

Ids are seeded random (timing does not depend on them); one warm-up forward, then the median of
`runs` forwards. logits_to_keep=1: only the last position's logits, as an AttnScope inspection computes
(without it transformers multiplies every position by the vocab matrix, which for a 200k vocab costs
more than the layers). Prints JSON {tokens, runs, loadMs, inspectMs, threads}; the peak RSS comes from
/usr/bin/time -v around it.
"""
import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    ckpt, tokens = sys.argv[1], int(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    load_ms = (time.perf_counter() - t0) * 1000
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, model.config.vocab_size, (1, tokens), generator=g)
    fwd = lambda: model(ids, output_attentions=True, use_cache=False, logits_to_keep=1)  # noqa: E731
    fwd()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fwd()
        times.append((time.perf_counter() - t) * 1000)
        del out
    print(json.dumps({"tokens": tokens, "runs": runs, "loadMs": round(load_ms), "inspectMs": round(statistics.median(times), 1),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
