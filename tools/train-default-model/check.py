#!/usr/bin/env python3
"""Find and validate the default model's heads with the torch reference model.

    /usr/bin/python3 tools/train-default-model/check.py [--model models/default] [--write-probe]

Metrics per head (probabilities p of one prompt, rows q = 1..T-1, token ids incl. BOS):
  prevToken = mean_q p[q, q-1]
  sink      = mean_q p[q, 0]
  induction = mean over rows q having some j <= q-2 with id[j] == id[q] of
              sum over such j of p[q, j+1]            (None if no row qualifies)
Prompts: 10 common words (each a single ' word' BPE token), then the first 5 again; the
model should predict the 6th word. "Masking" a head multiplies its attention output by 0
before o_proj.
"""
import argparse
import json
import math
import os
import random
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
from bpe import BOS_ID, BPETokenizer  # noqa: E402
from model import load_model  # noqa: E402

CANONICAL_WORDS = "apple river stone horse garden table window mountain candle bridge".split()
N_SEEDED = 20
STEERING_PROMPT = ("Mary went to the garden. John went to the kitchen. Where did John go? John went to the")
STEERING_SPAN = "garden"
STEERING_ALPHA = 0.01


def words_prompt(words, n_repeat=5):
    return " ".join(words + words[:n_repeat]), " " + words[n_repeat]


def head_metrics(probs, ids):
    """probs: list over layers of [H,T,T] -> dict (l,h) -> {prevToken, sink, induction}"""
    T = len(ids)
    rows = range(1, T)
    ind_rows = [q for q in rows if any(ids[j] == ids[q] for j in range(0, q - 1))]
    out = {}
    for l, p in enumerate(probs):
        for h in range(p.shape[0]):
            ph = p[h]
            prev = sum(ph[q, q - 1].item() for q in rows) / (T - 1)
            sink = sum(ph[q, 0].item() for q in rows) / (T - 1)
            if ind_rows:
                ind = sum(sum(ph[q, j + 1].item() for j in range(0, q - 1) if ids[j] == ids[q])
                          for q in ind_rows) / len(ind_rows)
            else:
                ind = None
            out[(l, h)] = {"prevToken": prev, "sink": sink, "induction": ind}
    return out


def hid(lh):
    return f"L{lh[0]}H{lh[1]}"


@torch.no_grad()
def run(model, ids, mask_heads=(), attn_bias=None):
    H = model.cfg["num_attention_heads"]
    scales = {}
    for l, h in mask_heads:
        scales.setdefault(l, torch.ones(H))[h] = 0.0
    logits, probs = model(torch.tensor([ids]), head_scales=scales or None, return_probs=True, attn_bias=attn_bias)
    return torch.softmax(logits[0, -1].double(), -1), [p[0] for p in probs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "models", "default"))
    ap.add_argument("--write-probe", action="store_true", help="write probe.json next to this script")
    ap.add_argument("--long", action="store_true", help="also probe near the end of the context window")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, cfg = load_model(args.model)
    tok = BPETokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    L, H = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    single = [w for w in data.COMMON_WORDS if len(tok.encode(" " + w)) == 1]
    assert all(w in single for w in CANONICAL_WORDS), [w for w in CANONICAL_WORDS if w not in single]
    print(f"{len(single)}/{len(data.COMMON_WORDS)} common words are single ' word' tokens")

    rng = random.Random(2024)
    prompts = [words_prompt(CANONICAL_WORDS)] + [words_prompt(rng.sample(single, 10)) for _ in range(N_SEEDED)]
    results = []
    for text, nxt in prompts:
        ids = tok.encode(text, add_bos=True)
        tgt = tok.encode(nxt)[0]
        pn, probs = run(model, ids)
        results.append({"text": text, "next": nxt, "ids": ids, "target": tgt, "p": pn[tgt].item(),
                        "top": tok.token(int(pn.argmax())), "metrics": head_metrics(probs, ids)})

    def avg(key, rs):
        return {lh: sum(r["metrics"][lh][key] for r in rs) / len(rs) for lh in results[0]["metrics"]}

    seeded = results[1:]
    canon = results[0]
    ind_avg, prev_avg, sink_avg = avg("induction", seeded), avg("prevToken", seeded), avg("sink", seeded)
    ranked = sorted(ind_avg, key=lambda lh: -ind_avg[lh])
    top2 = ranked[:2]
    best_prev = max(prev_avg, key=lambda lh: prev_avg[lh])
    best_prev_c = max(canon["metrics"], key=lambda lh: canon["metrics"][lh]["prevToken"])
    best_ind_c = max(canon["metrics"], key=lambda lh: canon["metrics"][lh]["induction"])

    print("\nper-head averages over", len(seeded), "seeded prompts (induction / prevToken / sink):")
    for l in range(L):
        print("  " + "  ".join(f"{hid((l, h))} {ind_avg[(l, h)]:.2f}/{prev_avg[(l, h)]:.2f}/{sink_avg[(l, h)]:.2f}"
                               for h in range(H)))

    def masked_p(rs, heads):
        ps = []
        for r in rs:
            pn, _ = run(model, r["ids"], heads)
            ps.append(pn[r["target"]].item())
        return ps

    p_seeded = [r["p"] for r in seeded]
    pm_seeded = masked_p(seeded, top2)
    pm_canon = masked_p([canon], top2)[0]
    # control: two random non-induction heads
    rng2 = random.Random(7)
    others = [lh for lh in ranked[8:]]
    ctrl = rng2.sample(others, 2)
    pc_seeded = masked_p(seeded, ctrl)
    # per-head single ablation on the canonical prompt
    single_abl = {hid(lh): masked_p([canon], [lh])[0] for lh in ranked[:6]}

    mean = lambda xs: sum(xs) / len(xs)
    report = {
        "canonical": {
            "prompt": canon["text"], "next": canon["next"], "p_next": canon["p"], "top1": canon["top"],
            "best_induction_head": hid(best_ind_c), "best_induction": canon["metrics"][best_ind_c]["induction"],
            "best_prevToken_head": hid(best_prev_c), "best_prevToken": canon["metrics"][best_prev_c]["prevToken"],
            "top2_induction_heads": [hid(lh) for lh in top2],
            "top2_scores": [canon["metrics"][lh]["induction"] for lh in top2],
            "p_next_masked_top2": pm_canon,
            "p_next_masked_single": single_abl,
        },
        "seeded": {
            "n_prompts": len(seeded),
            "best_induction_head": hid(ranked[0]), "best_induction": ind_avg[ranked[0]],
            "second_induction_head": hid(ranked[1]), "second_induction": ind_avg[ranked[1]],
            "best_prevToken_head": hid(best_prev), "best_prevToken": prev_avg[best_prev],
            "p_next": mean(p_seeded), "top1_accuracy": mean([r["top"] == tok.token(r["target"]) for r in seeded]),
            "p_next_masked_top2": mean(pm_seeded),
            "control_heads": [hid(lh) for lh in ctrl], "p_next_masked_control": mean(pc_seeded),
            "induction_ranking": [[hid(lh), round(ind_avg[lh], 4)] for lh in ranked[:8]],
            "prevToken_ranking": [[hid(lh), round(prev_avg[lh], 4)]
                                  for lh in sorted(prev_avg, key=lambda x: -prev_avg[x])[:6]],
            "sink_ranking": [[hid(lh), round(sink_avg[lh], 4)]
                             for lh in sorted(sink_avg, key=lambda x: -sink_avg[x])[:8]],
        },
    }

    # PASTA-style steering, as AttnScope's --emphasize does it: ln(alpha) added to every
    # key outside the span, in every head of every layer.
    s_ids = tok.encode(STEERING_PROMPT, add_bos=True)
    start = STEERING_PROMPT.index(STEERING_SPAN)
    end = start + len(STEERING_SPAN)
    inside, pos = [False], 0
    for t in s_ids[1:]:
        piece = tok.decode([t])
        inside.append(pos < end and pos + len(piece) > start)
        pos += len(piece)
    T = len(s_ids)
    bias_row = torch.tensor([0.0 if i else math.log(STEERING_ALPHA) for i in inside])
    bias = {l: bias_row.repeat(H, 1) for l in range(L)}
    cands = {w: tok.encode(" " + w)[0] for w in ("kitchen", "garden")}
    p0, _ = run(model, s_ids)
    p1, _ = run(model, s_ids, attn_bias=bias)
    report["steering"] = {
        "prompt": STEERING_PROMPT, "span": STEERING_SPAN, "alpha": STEERING_ALPHA, "heads": "all",
        "before": {w: p0[i].item() for w, i in cands.items()}, "before_top1": tok.token(int(p0.argmax())),
        "after": {w: p1[i].item() for w, i in cands.items()}, "after_top1": tok.token(int(p1.argmax())),
    }

    if args.long:
        chapters = data.load_kjv()
        filler = []
        for i, c in enumerate(chapters):
            if i % 40 == 39:
                filler += tok.encode(c + "\n")
        max_pos = cfg["max_position_embeddings"]
        lp = []
        for r in seeded[:8]:
            body = r["ids"][1:]
            ids = [BOS_ID] + filler[: max_pos - 1 - len(body)] + body
            pn, _ = run(model, ids)
            lp.append(pn[r["target"]].item())
        report["long_context"] = {"positions": max_pos, "p_next": mean(lp), "n_prompts": len(lp)}

    print(json.dumps(report, indent=2))
    ok = {
        "best induction >= 0.3 (seeded avg)": ind_avg[ranked[0]] >= 0.3,
        "best induction >= 0.3 (canonical)": canon["metrics"][best_ind_c]["induction"] >= 0.3,
        "p_next >= 0.2 (seeded avg)": mean(p_seeded) >= 0.2,
        "p_next >= 0.2 (canonical)": canon["p"] >= 0.2,
        "masking top-2 at least halves p (seeded avg)": mean(pm_seeded) <= 0.5 * mean(p_seeded),
        "masking top-2 at least halves p (canonical)": pm_canon <= 0.5 * canon["p"],
    }
    for k, v in ok.items():
        print(("PASS " if v else "FAIL ") + k)

    if args.write_probe:
        probe = {
            "model": "models/default",
            "note": "Measured by tools/train-default-model/check.py with the torch reference model "
                    "(float32 compute on the stored float16 weights). Head ids are L{layer}H{head}, 0-based. "
                    "Metrics: rows q=1..T-1; induction over rows with an earlier j<=q-2 having id[j]==id[q]. "
                    "Masking multiplies the head's attention output by 0 before o_proj.",
            "prompt": canon["text"],
            "expected_next": canon["next"],
            "token_ids": canon["ids"],
            "expected_next_id": canon["target"],
            "p_next": canon["p"],
            "best_induction_head": hid(best_ind_c),
            "best_induction": canon["metrics"][best_ind_c]["induction"],
            "best_prevToken_head": hid(best_prev_c),
            "best_prevToken": canon["metrics"][best_prev_c]["prevToken"],
            "mask_heads": [hid(lh) for lh in top2],
            "p_next_masked": pm_canon,
            "heads": {hid(lh): {k: v for k, v in m.items()} for lh, m in canon["metrics"].items()},
            "steering": report["steering"],
            "seeded": {
                "note": "20 more prompts of 10 random single-token common words (random.Random(2024)), "
                        "repeated once and cut after 5; heads ranked by their mean induction score",
                "prompts": [{"prompt": r["text"], "expected_next": r["next"], "expected_next_id": r["target"]}
                            for r in seeded],
                "mean_p_next": mean(p_seeded),
                "top2_induction_heads": [hid(lh) for lh in top2],
                "mean_induction_top2": [ind_avg[lh] for lh in top2],
                "mean_p_next_masked_top2": mean(pm_seeded),
                "control_heads": [hid(lh) for lh in ctrl],
                "mean_p_next_masked_control": mean(pc_seeded),
            },
        }
        with open(os.path.join(HERE, "probe.json"), "w") as f:
            json.dump(probe, f, indent=2)
            f.write("\n")
        print("wrote", os.path.join(HERE, "probe.json"))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
