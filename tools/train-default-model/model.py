"""A LLaMA causal LM written out exactly as Hugging Face's LlamaForCausalLM computes
it (RMSNorm in float32, rotate_half RoPE, GQA with repeat_kv, SwiGLU MLP, pre-norm
residuals), plus a minimal safetensors reader/writer. Parameter names are the HF ones.
"""
import json
import math
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(head_dim, theta, positions):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.h = cfg["num_attention_heads"]
        self.kvh = cfg["num_key_value_heads"]
        self.hd = cfg["hidden_size"] // self.h
        d = cfg["hidden_size"]
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kvh * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kvh * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask, head_scale=None, return_probs=False, bias=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kvh  # repeat_kv: query head h reads kv head h // rep
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.hd ** -0.5
        scores = scores + mask
        if bias is not None:  # [H, T] added to every row's score for key k (PASTA ln alpha)
            scores = scores + bias.view(1, self.h, 1, T)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v)  # [B, H, T, hd]
        if head_scale is not None:  # [H] multiplier per head, applied before o_proj
            out = out * head_scale.view(1, -1, 1, 1)
        out = out.transpose(1, 2).reshape(B, T, self.h * self.hd)
        return self.o_proj(out), (probs if return_probs else None)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, head_scale=None, return_probs=False, bias=None):
        a, p = self.self_attn(self.input_layernorm(x), cos, sin, mask, head_scale, return_probs, bias)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, p


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings"):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.hd = cfg["hidden_size"] // cfg["num_attention_heads"]

    def init_weights(self, seed, embed_std=0.02):
        g = torch.Generator().manual_seed(seed)
        std = 0.02
        n_layers = self.cfg["num_hidden_layers"]
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                nn.init.ones_(p)
            else:
                s = std / math.sqrt(2 * n_layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                if name == "model.embed_tokens.weight":
                    s = embed_std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * s)

    def forward(self, ids, head_scales=None, return_probs=False, attn_bias=None):
        """ids [B,T] -> logits [B,T,V]. head_scales: {layer: tensor[H]} multiplies each
        head's attention output before o_proj. attn_bias: {layer: tensor[H, T]} added to the
        pre-softmax score of key k in every row. return_probs adds per-layer [B,H,T,T]."""
        B, T = ids.shape
        cos, sin = rope_cos_sin(self.hd, self.cfg["rope_theta"], torch.arange(T))
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.model.embed_tokens(ids)
        probs = []
        for li, layer in enumerate(self.model.layers):
            hs = head_scales.get(li) if head_scales else None
            ab = attn_bias.get(li) if attn_bias else None
            x, p = layer(x, cos, sin, mask, hs, return_probs, ab)
            probs.append(p)
        h = self.model.norm(x)
        logits = self.lm_head(h)
        if return_probs:
            return logits, probs
        return logits

    def hf_state_dict(self):
        sd = OrderedDict()
        for k, v in self.state_dict().items():
            if k == "lm_head.weight" and self.cfg.get("tie_word_embeddings"):
                continue
            sd[k] = v
        return sd


# ---------------------------------------------------------------- safetensors

_ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2)}


def _to_bytes(t, dtype):
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.float().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.half().float().numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return t.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()
    raise ValueError(dtype)


def save_safetensors(path, tensors, dtype="F16", metadata=None):
    header = OrderedDict()
    blobs = []
    off = 0
    for name in sorted(tensors):
        b = _to_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    meta = {"format": "pt"}
    if metadata:
        meta.update(metadata)
    hdr = OrderedDict([("__metadata__", meta)])
    hdr.update(header)
    hb = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """-> {name: float32 tensor}"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {dt}")
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def load_model(model_dir):
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    m = LlamaForCausalLM(cfg)
    sd = load_safetensors(f"{model_dir}/model.safetensors")
    if cfg.get("tie_word_embeddings"):
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert not [k for k in missing if k != "lm_head.weight"], missing
    m.eval()
    return m, cfg
