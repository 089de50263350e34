"""A byte-level BPE tokenizer.json with exactly `vocab_size` ids and the given special tokens at their ids.

The merges are learned (tokenizers' BpeTrainer, deterministic) from this repository's README.md; the
ids not taken by a learned token or a special token hold unreachable filler tokens ("<|fill_N|>", no
merge produces them), so the vocab has the model's size without a huge training corpus.
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LEARNED = 4000
HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "README.md")


def special_ids(specials, vocab_size):
    """{real id: id used}: a shrunk test model (make_checkpoint --set vocab_size=...) may be smaller
    than a special's real id; such specials take the top ids instead, in order."""
    used = {}
    spare = vocab_size - 1
    for i, _ in specials["tokens"]:
        if i >= vocab_size:
            i_new, spare = spare, spare - 1
            used[i] = i_new
        else:
            used[i] = i
    return used


def write_tokenizer(path, vocab_size, specials):
    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=LEARNED, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    base.train([CORPUS], trainer)
    learned = json.loads(base.to_str())["model"]
    order = sorted(learned["vocab"].items(), key=lambda kv: kv[1])

    remap = special_ids(specials, vocab_size)
    special_ids_ = {remap[i]: t for i, t in specials["tokens"]}
    vocab = {}
    next_id = 0
    for tok, _ in order:
        while next_id in special_ids_:
            next_id += 1
        vocab[tok] = next_id
        next_id += 1
    for i, tok in special_ids_.items():
        vocab[tok] = i
    taken = set(vocab.values())
    for i in range(vocab_size):
        if i not in taken:
            vocab[f"<|fill_{i}|>"] = i
    assert len(vocab) == vocab_size and max(vocab.values()) == vocab_size - 1

    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([t for _, t in sorted(special_ids_.items())])
    bos = specials["bos"]
    if bos is not None:
        bos_id = vocab[bos]
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(path)
    assert Tokenizer.from_file(path).get_vocab_size(True) == vocab_size
