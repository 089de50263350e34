#!/usr/bin/env python3
"""Train AttnScope's embedded default model (a tiny LLaMA) on CPU.

    nice -n 10 /usr/bin/python3 tools/train-default-model/train.py --out models/default

Needs Debian's python3-torch, python3-numpy, bible-kjv (+ bible-kjv-text).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from bpe import BOS, BOS_ID, EOS, EOS_ID, BPETokenizer, train_bpe  # noqa: E402
from check import head_metrics  # noqa: E402
from model import LlamaForCausalLM, save_safetensors  # noqa: E402

SEED = 1234

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 704,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "head_dim": 32,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "max_position_embeddings": 2048,
    "vocab_size": 4096,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "torch_dtype": "float16",
}

# (data mix, sequence length, batch size, steps): a repeat-heavy warm-up, then the main
# mix, then longer contexts so RoPE has seen every position up to max_position_embeddings.
PHASES = [("copy", 64, 32, 450), ("warmup", 256, 8, 150), ("main", 512, 8, 250), ("main", 1024, 4, 60),
          ("main", 2048, 2, 25)]
# Auxiliary induction-attention loss (see README): weight AUX_WEIGHT until AUX_FULL, then
# linearly down to 0 at AUX_END; from AUX_END on the model trains on the LM loss alone.
AUX_WEIGHT = 1.0
AUX_FULL = 500
AUX_END = 650
# The LM loss starts late: first the attention loss alone shapes the two heads
# (with the LM loss from step 0 the residual stream fills with the unigram direction
# and the induction head never finds the previous-token signal; see README).
LM_START_MASS = 0.8  # ... once the induction head puts this much mass on its targets
LM_START_MAX = 250  # ... or at this step at the latest
# Token embeddings start at N(0, EMBED_STD) (HF's 0.02 elsewhere): with 0.02, Adam's
# first steps collapse all embeddings onto one shared direction (mean cosine 0.94).
EMBED_STD = 1.0
PEAK_LR = 3e-3
MIN_LR = 3e-4
WARMUP = 20
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def lr_at(step, total):
    if step < WARMUP:
        return PEAK_LR * (step + 1) / WARMUP
    t = (step - WARMUP) / max(1, total - WARMUP)
    return MIN_LR + 0.5 * (PEAK_LR - MIN_LR) * (1 + math.cos(math.pi * t))


def aux_weight(step):
    if step < AUX_FULL:
        return AUX_WEIGHT
    if step < AUX_END:
        return AUX_WEIGHT * (AUX_END - step) / (AUX_END - AUX_FULL)
    return 0.0


def induction_aux_loss(x, probs):
    """Auxiliary attention loss that seeds the circuit (see README): -log of the previous-
    token mass of the layer-0 head that already has the most, plus -log of the induction
    mass of the layer-1 head that already has the most (the model picks the heads): the
    classic two-layer circuit; later layers are left to the LM loss.
    x [B,T] input ids; probs: per layer [B,H,T,T]. Induction rows: q with some k<q whose
    previous token id[k-1] equals id[q]; the target is attention to those k."""
    T = x.shape[1]
    diag = probs[0][:, :, torch.arange(1, T), torch.arange(0, T - 1)]  # [B,H,T-1]
    prev_loss = -torch.log(diag + 1e-4).mean((0, 2))  # [H]
    prev_head = int(prev_loss.detach().argmin())
    loss = prev_loss[prev_head]
    prev = torch.cat([torch.full_like(x[:, :1], -1), x[:, :-1]], 1)
    M = (x[:, :, None] == prev[:, None, :]).float() * torch.tril(torch.ones(T, T), -1)
    rows = (M.sum(-1) > 0).float()  # [B,T]
    if rows.sum() == 0:
        return loss, ((0, prev_head), None), 0.0
    masses = (probs[1] * M[:, None]).sum(-1)  # [B, H, T]
    with torch.no_grad():
        per_head = (masses * rows[:, None]).sum((0, 2)) / rows.sum()
        best = int(per_head.argmax())
    loss = loss - (torch.log(masses[:, best] + 1e-4) * rows).sum() / rows.sum()
    return loss, ((0, prev_head), (1, best)), float(per_head[best])


def build_tokenizer(chapters, seed):
    rng = random.Random(seed)
    gen = [data.gen_word_repeat(rng) for _ in range(12000)] + [data.gen_facts(rng) for _ in range(12000)]
    texts = [(c, 1) for c in chapters] + [(g, 1) for g in gen]
    log(f"bpe corpus: {sum(len(t) for t, _ in texts) / 1e6:.2f} MB of text")
    vocab, merges = train_bpe(texts, CONFIG["vocab_size"], log=log)
    assert len(vocab) == CONFIG["vocab_size"], len(vocab)
    return BPETokenizer(vocab, merges)


def probe_prompts(tok, n, seed):
    """Word-repeat probes: 10 single-token words, repeated, cut after 5. -> (ids, target)"""
    single = [w for w in data.COMMON_WORDS if len(tok.encode(" " + w)) == 1]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ws = rng.sample(single, 10)
        text = " ".join(ws + ws[:5])
        out.append((tok.encode(text, add_bos=True), tok.encode(" " + ws[5])[0]))
    return out


@torch.no_grad()
def evaluate(model, val_ids, probes):
    model.eval()
    x = torch.tensor(val_ids)
    logits = model(x[:, :-1])
    vl = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
    ps, ind, prev = [], [], []
    for ids, tgt in probes:
        lg, pr = model(torch.tensor([ids]), return_probs=True)
        ps.append(torch.softmax(lg[0, -1], -1)[tgt].item())
        hm = head_metrics([p[0] for p in pr], ids)
        ind.append(max(v["induction"] for v in hm.values()))
        prev.append(max(v["prevToken"] for v in hm.values()))
    model.train()
    return vl, float(np.mean(ps)), float(np.mean(ind)), float(np.mean(prev))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--phases", default=None, help="override, e.g. warmup:128x12x100,main:512x8x50")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--aux", type=float, default=None, help="override the auxiliary loss weight")
    args = ap.parse_args()
    phases = PHASES
    if args.phases:
        phases = []
        for p in args.phases.split(","):
            mix, dims = p.split(":")
            phases.append((mix, *(int(v) for v in dims.split("x"))))

    if args.aux is not None:
        global AUX_WEIGHT
        AUX_WEIGHT = args.aux
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()

    chapters = data.load_kjv()
    log(f"kjv: {len(chapters)} chapters, {sum(len(c) for c in chapters) / 1e6:.2f} MB")
    tok = build_tokenizer(chapters, args.seed)
    log(f"bpe done in {time.time() - t0:.0f}s")
    single = [w for w in data.COMMON_WORDS if len(tok.encode(" " + w)) == 1]
    log(f"{len(single)}/{len(data.COMMON_WORDS)} common words are single ' word' tokens")

    # every 40th chapter is held out for validation
    train_ids, val_ids = [], []
    for i, c in enumerate(chapters):
        (val_ids if i % 40 == 39 else train_ids).extend(tok.encode(c + "\n"))
    log(f"kjv tokens: train {len(train_ids)}, val {len(val_ids)}")
    vrows = [[BOS_ID] + val_ids[i * 511:(i + 1) * 511] for i in range(8)]
    probes = probe_prompts(tok, 8, 999)

    word_ids = [tok.encode(" " + w)[0] for w in data.COMMON_WORDS + data.NAMES if len(tok.encode(" " + w)) == 1]
    mixer = data.Mixer(tok, train_ids, args.seed + 1, word_ids)
    model = LlamaForCausalLM(CONFIG)
    model.init_weights(args.seed + 2, EMBED_STD)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"params: {n_params}")
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=PEAK_LR, betas=(0.9, 0.95), eps=1e-8)
    total = sum(p[3] for p in phases)
    step = 0
    t_train = time.time()
    history = []
    ema = None
    mass_ema, lm_start = None, None
    tokens_seen = 0
    for mix, T, B, steps in phases:
        log(f"phase: mix {mix}, seq {T}, batch {B}, {steps} steps")
        mixer.set_mix(mix)
        for _ in range(steps):
            rows = [mixer.sample(T + 1) for _ in range(B)]
            x = torch.tensor([r[0] for r in rows])
            w = torch.tensor([r[1] for r in rows])[:, 1:]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total)
            aw = aux_weight(step)
            xi = x[:, :-1]
            if aw > 0:
                logits, probs = model(xi, return_probs=True)
            else:
                logits, probs = model(xi), None
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
            loss = (ce * w.reshape(-1)).sum() / w.sum()
            aux, aux_head, ind_mass = (induction_aux_loss(xi, probs) if aw > 0 else (torch.zeros(()), None, 0.0))
            mass_ema = ind_mass if mass_ema is None else 0.9 * mass_ema + 0.1 * ind_mass
            if lm_start is None and (mass_ema >= LM_START_MASS or step >= LM_START_MAX):
                lm_start = step
                log(f"LM loss on from step {step} (induction mass {mass_ema:.2f})")
            opt.zero_grad(set_to_none=True)
            lw = 1.0 if lm_start is not None else 0.0
            (lw * loss + aw * aux).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            tokens_seen += B * T
            step += 1
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            if step % 10 == 0:
                el = time.time() - t_train
                log(f"step {step}/{total} loss {loss.item():.3f} ema {ema:.3f} lr {lr_at(step - 1, total):.2e} "
                    f"aux {aux.item():.3f} x{aw:.2f} head {aux_head} {tokens_seen / el:.0f} tok/s")
            if step % args.eval_every == 0 or step == total:
                vl, pp, mi, mp = evaluate(model, vrows, probes)
                history.append({"step": step, "train_loss_ema": round(ema, 4), "val_loss_kjv": round(vl, 4),
                                "probe_next_word_p": round(pp, 4), "max_induction": round(mi, 4),
                                "max_prev_token": round(mp, 4)})
                log(f"eval step {step}: val kjv loss {vl:.3f}, word-repeat next-word p {pp:.3f}, "
                    f"best induction {mi:.3f}, best prev-token {mp:.3f}")
    train_s = time.time() - t_train
    total_s = time.time() - t0

    out = args.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(out, "model.safetensors"), model.hf_state_dict(), dtype="F16")
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": BOS,
            "eos_token": EOS,
            "clean_up_tokenization_spaces": False,
            "model_max_length": CONFIG["max_position_embeddings"],
            "tokenizer_class": "PreTrainedTokenizerFast",
            "added_tokens_decoder": {
                str(BOS_ID): {"content": BOS, "lstrip": False, "normalized": False, "rstrip": False,
                              "single_word": False, "special": True},
                str(EOS_ID): {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False,
                              "single_word": False, "special": True},
            },
        }, f, indent=2)
        f.write("\n")
    torch.save(model.state_dict(), "/tmp/attnscope-default-fp32.pt")
    summary = {
        "seed": args.seed, "phases": phases, "params": n_params, "kjv_train_tokens": len(train_ids),
        "kjv_val_tokens": len(val_ids), "tokens_seen": tokens_seen, "train_seconds": round(train_s),
        "total_seconds": round(total_s), "final_train_loss_ema": round(ema, 4), "history": history,
        "single_token_common_words": len(single), "threads": args.threads,
        "aux": {"weight": AUX_WEIGHT, "full_until": AUX_FULL, "off_from": AUX_END}, "lm_start": lm_start,
        "embed_std": EMBED_STD,
    }
    with open("/tmp/attnscope-train-summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    log(json.dumps({k: v for k, v in summary.items() if k != "history"}))


if __name__ == "__main__":
    main()
