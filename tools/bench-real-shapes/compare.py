#!/usr/bin/env python3
"""Compare `attnscope inspect --logits --attention all --json` with hf_compare.py's JSON.

    python compare.py <attnscope.json> <hf.json>

Prints JSON {tokens, idsMatch, maxLogprobDiff, maxAttnDiff, worstHead, worstHeadByLayer} and exits 1
when the ids differ, |Δ log-prob| > 1e-3 or |Δ attention| > 1e-4.
"""
import json
import math
import sys


def log_softmax(xs):
    m = max(xs)
    s = math.fsum(math.exp(x - m) for x in xs)
    return [x - m - math.log(s) for x in xs]


def main():
    a = json.load(open(sys.argv[1]))
    h = json.load(open(sys.argv[2]))
    ids_a = [t["id"] for t in a["tokens"]]
    ids_match = ids_a == h["ids"]
    lp = log_softmax(a["lastLogits"])
    dlp = max(abs(x - y) for x, y in zip(lp, h["logprobs"]))
    worst, worst_key = 0.0, None
    per_layer = {}
    for key, rows in h["attention"].items():
        mine = a["attention"][key]
        d = max(abs(x - y) for r1, r2 in zip(mine, rows) for x, y in zip(r1, r2))
        layer = key.split(".")[0]
        per_layer[layer] = max(per_layer.get(layer, 0.0), d)
        if d > worst:
            worst, worst_key = d, key
    argmax_a = max(range(len(lp)), key=lambda i: lp[i])
    argmax_h = max(range(len(lp)), key=lambda i: h["logprobs"][i])
    res = {"tokens": len(ids_a), "idsMatch": ids_match, "maxLogprobDiff": dlp, "maxAttnDiff": worst, "worstHead": worst_key,
           "argmaxMatch": argmax_a == argmax_h, "maxAttnDiffByLayer": per_layer}
    print(json.dumps(res))
    sys.exit(0 if ids_match and dlp <= 1e-3 and worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
