"""Byte-level BPE (GPT-2 style) trained in plain Python, written as a Hugging Face
`tokenizers` tokenizer.json.

Layout of the vocabulary: 0 = <s> (bos), 1 = </s> (eos), then the 256 GPT-2
byte characters in GPT-2 vocabulary order, then one token per merge.
"""
import json
from collections import Counter, defaultdict

try:  # Debian python3-regex: \p{L} / \p{N} exactly as the Rust tokenizers crate
    import regex as _re
    GPT2_SPLIT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
except ImportError:  # close approximation with the stdlib
    import re as _re
    GPT2_SPLIT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+""")

BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 0, 1


def gpt2_byte_chars():
    """[(byte, char)] in GPT-2's vocabulary order (printable bytes first)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out = [(b, chr(b)) for b in printable]
    seen = set(printable)
    n = 0
    for b in range(256):
        if b not in seen:
            out.append((b, chr(256 + n)))
            n += 1
    return out


BYTE_CHAR = [""] * 256
for _b, _c in gpt2_byte_chars():
    BYTE_CHAR[_b] = _c


def pretokenize(text):
    """GPT-2 split, then each piece mapped byte -> unicode char."""
    return ["".join(BYTE_CHAR[b] for b in m.encode("utf-8")) for m in GPT2_SPLIT.findall(text)]


def train_bpe(texts, vocab_size, min_frequency=2, log=print):
    """texts: iterable of (text, weight). Returns (vocab dict, merges list[(a,b)])."""
    word_counts = Counter()
    for text, weight in texts:
        for w in pretokenize(text):
            word_counts[w] += weight
    vocab = {BOS: BOS_ID, EOS: EOS_ID}
    for _, ch in gpt2_byte_chars():
        vocab[ch] = len(vocab)
    words = sorted(word_counts.items())  # deterministic order
    syms = [list(w) for w, _ in words]
    freqs = [c for _, c in words]
    pair_count = defaultdict(int)
    pair_where = defaultdict(set)
    for wi, s in enumerate(syms):
        for a, b in zip(s, s[1:]):
            pair_count[(a, b)] += freqs[wi]
            pair_where[(a, b)].add(wi)
    merges = []
    n_merges = vocab_size - len(vocab)
    while len(merges) < n_merges and pair_count:
        # highest count; ties broken by the lexicographically smallest pair
        best = min(pair_count.items(), key=lambda kv: (-kv[1], kv[0]))
        (a, b), cnt = best
        if cnt < min_frequency:
            break
        merges.append((a, b))
        new = a + b
        if new not in vocab:
            vocab[new] = len(vocab)
        for wi in sorted(pair_where.pop((a, b), ())):
            s = syms[wi]
            f = freqs[wi]
            for x, y in zip(s, s[1:]):
                pair_count[(x, y)] -= f
            out = []
            i = 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            syms[wi] = out
            for x, y in zip(out, out[1:]):
                pair_count[(x, y)] += f
                pair_where[(x, y)].add(wi)
        for k in [k for k, v in pair_count.items() if v <= 0]:
            del pair_count[k]
            pair_where.pop(k, None)
        if len(merges) % 500 == 0:
            log(f"  bpe: {len(merges)}/{n_merges} merges")
    return vocab, merges


class BPETokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.id_to_token = {i: t for t, i in vocab.items()}
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.merges = [tuple(m) for m in merges]
        self.cache = {}
        self.byte_of_char = {c: b for b, c in gpt2_byte_chars()}

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
        return cls(j["model"]["vocab"], merges)

    def _bpe_word(self, w):
        r = self.cache.get(w)
        if r is not None:
            return r
        s = list(w)
        while len(s) > 1:
            best, best_rank = None, None
            for i in range(len(s) - 1):
                rk = self.ranks.get((s[i], s[i + 1]))
                if rk is not None and (best_rank is None or rk < best_rank):
                    best, best_rank = i, rk
            if best is None:
                break
            a, b = s[best], s[best + 1]
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            s = out
        r = [self.vocab[t] for t in s]
        self.cache[w] = r
        return r

    def encode(self, text, add_bos=False):
        ids = [BOS_ID] if add_bos else []
        for w in pretokenize(text):
            ids.extend(self._bpe_word(w))
        return ids

    def token(self, i):
        return self.id_to_token[i]

    def decode(self, ids):
        bs = bytearray()
        out = []
        for i in ids:
            t = self.id_to_token[i]
            if t in (BOS, EOS):
                continue
            bs.extend(self.byte_of_char[c] for c in t)
        return bytes(bs).decode("utf-8", errors="replace")

    def to_json(self):
        added = [
            {"id": BOS_ID, "content": BOS, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True},
            {"id": EOS_ID, "content": EOS, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True},
        ]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        byte_level_post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
        template = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": BOS, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {BOS: {"id": BOS, "ids": [BOS_ID], "tokens": [BOS]}},
        }
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": {"type": "Sequence", "processors": [byte_level_post, template]},
            "decoder": byte_level,
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": self.vocab,
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
