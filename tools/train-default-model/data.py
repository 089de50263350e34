"""Training data: the King James Bible (Debian's bible-kjv-text, read through the
`bible` program of the bible-kjv package) plus generated text full of repeats, so
that previous-token and induction heads form. Everything is seeded."""
import random
import re
import subprocess

# Common English words (concrete nouns, a few adjectives/verbs) the BPE learns as
# whole " word" tokens; the probes draw from the ones that are single tokens.
COMMON_WORDS = """
apple river stone house bread water horse garden table chair window door mountain
forest city king queen bird fish tree flower money paper book letter music song
dog cat cow sheep goat lion bear wolf fox mouse rabbit snake eagle duck chicken
car train boat ship plane road bridge tower castle church school market street
village farm field hill valley lake ocean island beach desert cloud rain snow wind
storm sun moon star sky fire ice gold silver iron copper glass wood salt sugar milk
cheese butter egg rice corn wheat bean potato tomato orange lemon grape cherry peach
pear plum banana carrot onion pepper honey coffee tea wine beer juice soup cake pie
shirt coat hat shoe boot glove ring necklace crown sword shield arrow bow hammer
nail rope chain key lock box bag basket bottle cup plate bowl spoon fork knife pot
lamp candle clock mirror picture camera phone computer radio piano guitar drum
bell flag map ticket coin doctor teacher farmer soldier sailor pilot baker painter
singer writer friend mother father brother sister uncle aunt child baby girl boy
man woman captain prince princess knight dragon ghost giant robot monkey tiger
elephant zebra camel whale shark frog spider bee ant butterfly turtle owl parrot
red blue green yellow black white brown purple pink gray happy sad big small old
young hot cold fast slow
""".split()

NAMES = """
Alice Bob Carol David Emma Frank Grace Henry Irene Jack Kate Leo Mary Nick Olivia
Paul Rose Sam Tom Anna Ben Clara Dan Eva Fred George Helen Ivan John Laura Mark
Nora Peter Ruth Sarah Tim Victor Walter Zoe James Lucy Max Ella Oscar Lily Hugo
""".split()

PLACES = """garden kitchen market river house field school church forest village
castle tower bridge farm hill valley lake beach island city street library station
office cellar attic barn harbor palace temple""".split()

COLORS = "red blue green yellow black white brown purple pink gray".split()
OBJECTS = """apple box cup hat coat ball book key ring bag lamp coin bell shoe
bottle basket candle clock map flag""".split()


def load_kjv():
    """Whole KJV as text: 'Book N' heading per chapter, one verse per line."""
    raw = subprocess.run(["bible", "gen1:1-rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    chapters = []
    cur_head, verses = None, []
    for line in raw.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            verses.append(m.group(2).strip())
        elif line.startswith(" ") or (verses and not re.match(r"^[1-3]?\s?[A-Z][A-Za-z ]+ \d+$", line)):
            verses[-1] += " " + line.strip()
        else:
            if cur_head is not None:
                chapters.append(cur_head + "\n" + "\n".join(verses) + "\n")
            cur_head, verses = line.strip(), []
    chapters.append(cur_head + "\n" + "\n".join(verses) + "\n")
    return chapters


# ------------------------------------------------------------------ generators


def gen_word_repeat(rng):
    r = rng.random()
    pool = COMMON_WORDS if r < 0.7 else NAMES if r < 0.85 else COMMON_WORDS + NAMES
    k = rng.randint(3, 30)
    words = rng.sample(pool, k)
    sep = rng.choice([" ", " ", " ", " ", ", ", ", ", "\n", "; ", " - "])
    header = rng.choice(["", "", "", "Words:", "List:", "Names:", "Remember:", "Again:",
                         "Here is a list:", "Items:", "The words are"])
    body = sep.join(words)
    reps = 2 if rng.random() < 0.8 else 3
    join = rng.choice([" ", " ", " ", "\n", ". ", "\n\n", sep, ", and again: "])
    copies = [body] * reps
    if rng.random() < 0.5:  # cut the last copy short
        cut = rng.randint(1, k)
        copies[-1] = sep.join(words[:cut])
    text = join.join(copies)
    if header:
        text = header + " " + text
    return text


def gen_facts(rng):
    """Key-value recall: facts, then some of them asked/restated."""
    kind = rng.randrange(3)
    n = rng.randint(2, 6)
    subjects = rng.sample(NAMES, n)
    if kind == 0:
        vals = rng.sample(PLACES, n)
        fact = lambda s, v: f"{s} is in the {v}."
        ask = lambda s, v: rng.choice([f"Where is {s}? {s} is in the {v}.", f"{s} is in the {v}."])
    elif kind == 1:
        vals = rng.sample(PLACES, n)
        fact = lambda s, v: f"{s} went to the {v}."
        ask = lambda s, v: rng.choice([f"Where did {s} go? {s} went to the {v}.", f"Then {s} went back to the {v}.",
                                       f"{s} went to the {v}."])
    else:
        vals = [f"{c} {o}" for c, o in zip(rng.sample(COLORS, n), rng.sample(OBJECTS, n))]
        fact = lambda s, v: f"{s} has a {v}."
        ask = lambda s, v: rng.choice([f"What does {s} have? {s} has a {v}.", f"{s} has a {v}."])
    facts = " ".join(fact(s, v) for s, v in zip(subjects, vals))
    q = rng.randint(1, n)
    order = rng.sample(range(n), q)
    asks = " ".join(ask(subjects[i], vals[i]) for i in order)
    return facts + rng.choice([" ", "\n"]) + asks


class Mixer:
    """Builds training sequences: <s> then segments separated by a blank line, until
    the sequence is full. Returns (ids, weights) where weights[t] is the loss weight
    for predicting ids[t] (0 for unpredictable random tokens)."""

    def __init__(self, tok, kjv_ids, seed, word_ids):
        self.tok = tok
        self.kjv = kjv_ids
        self.rng = random.Random(seed)
        self.sep = tok.encode("\n\n")
        self.full_pool = list(range(2, len(tok.vocab)))
        self.word_pool = sorted(set(word_ids))
        self.set_mix("main")

    # segment kinds: KJV, word-list repeats, fact recall, repeated random tokens;
    # rand_words: share of the random-token segments drawn from the common-word tokens
    MIXES = {
        # repeat-heavy warm-up (some KJV so previous-token heads have a reason to form)
        "warmup": {"p": [0.15, 0.40, 0.15, 0.30], "rand_words": 0.6, "rep_weight": 4.0},
        "main": {"p": [0.25, 0.33, 0.17, 0.25], "rand_words": 0.4, "rep_weight": 2.0},
        # the circuit-forming phase: one row = <s>, a random word sequence, the same again,
        # then random words (see copy_row)
        "copy": {"p": None, "rand_words": 1.0, "rep_weight": 1.0},
    }

    def set_mix(self, name):
        self.p = self.MIXES[name]["p"]
        self.rand_words = self.MIXES[name]["rand_words"]
        self.rep_weight = self.MIXES[name]["rep_weight"]

    def _rep_weights(self, ids, w):
        """Up-weight the loss on tokens an induction head can predict: token t whose
        bigram (ids[t-1], ids[t]) already occurred earlier in the segment."""
        seen = set()
        out = list(w)
        for t in range(1, len(ids)):
            bg = (ids[t - 1], ids[t])
            if bg in seen and out[t] > 0:
                out[t] = self.rep_weight
            seen.add(bg)
        return out

    def segment(self):
        rng = self.rng
        kind = rng.choices(range(4), weights=self.p)[0]
        if kind == 0:
            n = rng.randint(32, 384)
            start = rng.randrange(0, len(self.kjv) - n)
            ids = self.kjv[start:start + n]
            return ids, [1.0] * len(ids)
        if kind == 1:
            ids = self.tok.encode(gen_word_repeat(rng))
            return ids, self._rep_weights(ids, [1.0] * len(ids))
        if kind == 2:
            ids = self.tok.encode(gen_facts(rng))
            return ids, self._rep_weights(ids, [1.0] * len(ids))
        n = rng.randint(4, 48)
        pool = self.word_pool if rng.random() < self.rand_words else self.full_pool
        seq = [rng.choice(pool) for _ in range(n)]
        reps = 2 if rng.random() < 0.85 else 3
        ids = seq * reps
        w = [0.0] * (n + 1) + [1.0] * (len(ids) - n - 1)
        return ids, self._rep_weights(ids, w)

    def copy_row(self, length):
        """<s> + S + S + filler: S is 8..30 random common-word tokens; only the second copy
        of S is scored (the filler is random, so nothing there can be predicted)."""
        rng = self.rng
        n = rng.randint(8, 30)
        seq = [rng.choice(self.word_pool) for _ in range(n)]
        ids = [0] + seq + seq
        ids += [rng.choice(self.word_pool) for _ in range(max(0, length - len(ids)))]
        w = [0.0] * (n + 1) + [1.0] * n
        w += [0.0] * (length - len(w))
        return ids[:length], w[:length]

    def sample(self, length):
        if self.p is None:
            return self.copy_row(length)
        ids, w = [0], [0.0]  # BOS
        while len(ids) < length:
            s_ids, s_w = self.segment()
            if len(ids) > 1:
                ids += self.sep
                w += [1.0] * len(self.sep)
            ids += s_ids
            w += s_w
        return ids[:length], w[:length]
