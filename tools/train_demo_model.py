#!/usr/bin/env python3
"""Trains Selma's demo model: a small Llama-architecture model, from scratch, for long-document fact
retrieval (passkey + document QA in Selma's chat format), with CRD NTK position augmentation.
Writes the GGUF (tools/gguf_writer.py), evaluation JSON and reference logits for the Java engine.

Run on the GPU machine (torch, tokenizers, jinja2, numpy, safetensors, transformers):
    python3 tools/train_demo_model.py --tokenizer .carry/tokenizer.json --out $OUT --train-seconds 400
Local CPU smoke test of the whole pipeline (tiny model, seconds):
    python3 tools/train_demo_model.py --tokenizer .cache/npm/package/models/tokenizer.json --out /tmp/smoke --smoke

Positions (CRD NTK, after the CASM paper's recipe, adapted to training from scratch):
  * cyclic: RoPE position of token t = (t + offset) mod PERIOD, PERIOD = 8192 (2x the 4096 training length)
  * random truncation/offset: with probability 0.7 a sample gets offset ~ U[0, PERIOD), else 0; the sample
    length is random (256 .. 4096 tokens), so each sample is a random window of the cyclic position axis
  * dynamically growing NTK: base = 10000 * s^(d/(d-2)) (d = head_dim = 32), with s doubling 1 -> 2 -> 4 -> 8
    -> 16 during training (s = 1 for the first 30 % of the time, then doubling every 12 %); the final base
    is written as llama.rope.freq_base, and the recipe as selma.* metadata.
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import random
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% if loop.index0 == 1 and messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}{% endif %}"
    "{{ message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}")
SYSTEM = "Answer the question from the documents. Quote the sentence that answers it."
PASSKEY_TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
                "I will quiz you about the important information there.")
PASSKEY_GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
PASSKEY_QUESTION = "What is the pass key? The pass key is"

BASE_THETA = 10000.0
PERIOD = 8192
TRAIN_LEN = 4096
P_OFFSET = 0.7
NTK_SCHEDULE = [(0.0, 1.0), (0.30, 2.0), (0.42, 4.0), (0.54, 8.0), (0.66, 16.0)]   # (progress, scale)

# ------------------------------------------------------------------------------------------------ data


def render_prompt(env_template, docs, question):
    user = "Documents:\n\n"
    for n, (doc_id, title, text) in enumerate(docs):
        user += f"[doc {n + 1}] id: {doc_id} | title: {title}\n{text}\n\n"
    user += f"Question: {question}"
    return env_template.render(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                               bos_token="<s>", eos_token="</s>")


NUM_ATTRS = ["vault code", "gate code", "lock code", "safe code", "door code", "room number", "port number",
             "locker number", "account number", "ticket number", "secret number", "telephone number",
             "cellar code", "cabinet code"]
WORD_ATTRS = ["password", "secret password", "code word", "secret word", "watchword", "motto", "favourite word",
              "signal word"]
COLOUR_ATTRS = ["colour", "favourite colour", "colour of the door", "colour of the roof"]
NAME_THINGS = ["horse", "dog", "cat", "pony", "parrot", "gardener", "cook", "parish clerk", "coachman", "ship",
               "ship cat", "goat", "butler", "maid", "hound", "canary", "boat", "mare", "tutor", "steward"]
PLACE_SUFFIX = ["Hall", "Park", "Abbey", "Lodge", "Manor", "House", "Cottage", "Court", "Grange", "Place", "Farm",
                "Castle", "Mill", "Priory", "Rectory"]
PLACE_THINGS = ["library", "chapel", "post office", "music room", "stables", "cellar", "old tower", "boathouse",
                "gatehouse", "study", "observatory", "greenhouse", "theatre", "inn", "school"]
TITLES = ["Mr.", "Mrs.", "Miss", "Captain", "Colonel", "Lady", "Sir", "Dr.", "Admiral", "Lord"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "crimson", "emerald", "ochre", "violet",
           "turquoise", "scarlet", "amber", "indigo", "silver", "golden", "grey", "white", "black", "brown",
           "pink", "saffron yellow", "pale blue", "dark green", "deep red", "navy blue", "olive", "maroon",
           "lilac", "teal", "cream", "copper"]
FUNCTION_WORDS = {"the", "of", "at", "in", "near", "behind", "mr.", "mrs.", "miss", "dr.", "sir", "lady", "lord"}
# attributes whose plural is the attribute + "s" (multi-value questions: "What are all the vault codes of X?")
MULTI_ATTRS = [a for a in NUM_ATTRS + WORD_ATTRS if not a.endswith("s")]
BOUNDARY = re.compile(r"(?<=[a-z]{2}[.!?])  ?(?=[A-Z][a-z])")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")
SYLLABLES = ["ka", "lo", "mi", "ra", "then", "vor", "el", "an", "is", "tor", "bel", "dra", "quin", "zu", "pha",
             "ia", "ost", "rin", "gal", "mer", "ith", "ul", "sa", "ven", "cor", "dax", "ny", "bo", "tes", "ire",
             "wyn", "ob", "fen", "lu", "cha", "gre", "om", "pi", "sk", "ae"]


def find_subsequence(seq, sub):
    """The first index at which sub occurs in seq, or -1."""
    first = sub[0]
    for i in range(len(seq) - len(sub) + 1):
        if seq[i] == first and seq[i:i + len(sub)] == sub:
            return i
    return -1


class CachedSPTokenizer:
    """Exact, faster equivalent of encoding with the Mistral tokenizer.json (add_special_tokens=False).

    The tokenizer prepends '▁' to every text segment between special tokens and replaces ' ' by '▁'; its
    vocabulary has no token with '▁' after a non-'▁' character, so BPE never merges across the start of a
    '▁'-run and each chunk '▁+[^▁]*' can be encoded on its own (and cached). Checked against the
    original tokenizer at start-up."""
    SPECIAL = re.compile(r"(<unk>|<s>|</s>)")
    CHUNK = re.compile("\u2581+[^\u2581]*|[^\u2581]+")

    def __init__(self, path):
        from tokenizers import Tokenizer
        j = json.load(open(path, encoding="utf-8"))
        self.reference = Tokenizer.from_file(path)
        j["normalizer"] = None
        j["pre_tokenizer"] = None
        j["post_processor"] = None
        j["added_tokens"] = []
        self.tok = Tokenizer.from_str(json.dumps(j))
        self.special = {"<unk>": 0, "<s>": 1, "</s>": 2}
        self.cache = {}

    def encode(self, s):
        out = []
        cache = self.cache
        for piece in self.SPECIAL.split(s):
            if not piece:
                continue
            if piece in self.special:
                out.append(self.special[piece])
                continue
            for w in self.CHUNK.findall("\u2581" + piece.replace(" ", "\u2581")):
                ids = cache.get(w)
                if ids is None:
                    ids = self.tok.encode(w, add_special_tokens=False).ids
                    if len(cache) < 1000000:
                        cache[w] = ids
                out += ids
        return out

    def check(self, texts):
        for t in texts:
            a = self.reference.encode(t, add_special_tokens=False).ids
            if a != self.encode(t):
                raise AssertionError(f"fast tokenizer differs from tokenizer.json on {t[:60]!r}")

    def decode(self, ids, skip_special_tokens=False):
        return self.reference.decode(ids, skip_special_tokens=skip_special_tokens)


class DataGen:
    """Builds training/eval samples as token ids. Pure CPU; one per worker process."""

    def __init__(self, tokenizer_path, corpus_dir, seed):
        import jinja2
        self.tok = CachedSPTokenizer(tokenizer_path)
        self.tmpl = jinja2.Environment().from_string(CHAT_TEMPLATE)
        self.rng = random.Random(seed)
        man = json.load(open(os.path.join(corpus_dir, "manifest.json")))
        qs = json.load(open(os.path.join(corpus_dir, "questions.json")))["questions"]
        planted = [q["answer_sentence"] for q in qs]
        self.docs = []
        for d in man["documents"]:
            text = open(os.path.join(corpus_dir, d["file"]), encoding="utf-8").read()
            for s in planted:                       # haystacks must not contain the demo's planted facts
                text = text.replace(" " + s, "")
            ratio = d["characters"] / d["tokens_mistral"] if d.get("tokens_mistral") else 3.8
            self.docs.append((d["id"], d["title"], text, ratio))
        self.demo_questions = qs
        words, caps = set(), set()
        for _, _, text, _ in self.docs[::3]:
            for m in re.finditer(r"(?<=[a-z,;] )([A-Z][a-z]{3,11})\b", text):
                caps.add(m.group(1))
            for m in re.finditer(r"\b([a-z]{5,10})\b", text):
                words.add(m.group(1))
        self.words = sorted(words)
        self.caps = sorted(caps)
        rs = random.Random(seed)
        probe = []
        for _ in range(6):
            t = rs.choice(self.docs)[2]
            a = rs.randrange(len(t))
            probe.append("<s>[INST] " + t[a:a + 3000] + " [/INST] The x of y is 5.</s>")
        self.tok.check(probe)

    def enc(self, s):
        return self.tok.encode(s)

    # ---- values, entities, facts
    def synthetic_name(self, capital=True):
        r = self.rng
        w = "".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 4)))
        return w.capitalize() if capital else w

    def value(self, kind):
        r = self.rng
        if kind == "num":
            n = r.choice([5, 5, 5, 4, 6, 3, 7])
            return str(r.randint(10 ** (n - 1), 10 ** n - 1))
        if kind == "word":
            return r.choice(self.words) if r.random() < 0.6 else self.synthetic_name(capital=False)
        if kind == "colour":
            return r.choice(COLOURS)
        return r.choice(self.caps) if r.random() < 0.5 else self.synthetic_name()

    def place(self):
        r = self.rng
        p = r.choice(self.caps) if r.random() < 0.7 else self.synthetic_name()
        return p + " " + r.choice(PLACE_SUFFIX) if r.random() < 0.5 else p

    def person(self):
        r = self.rng
        name = r.choice(self.caps) if r.random() < 0.7 else self.synthetic_name()
        return f"{r.choice(TITLES)} {name}" if r.random() < 0.7 else f"{r.choice(self.caps)} {name}"

    def span(self):
        """A random run of 1-5 words from the corpus (punctuation dropped): forces copying, not templates."""
        r = self.rng
        text = r.choice(self.docs)[2]
        a = r.randrange(max(1, len(text) - 300))
        words = WORD.findall(text, a, a + 300)[1:]
        n = r.randint(1, 5)
        if len(words) < n:
            return self.place()
        return " ".join(words[:n])

    def possessive(self, who):
        return who + "'" if who.endswith("s") else who + "'s"

    def fact(self, entity=None, attr=None, kind=None):
        """Returns (attribute, entity, kind); unspecified parts random but consistent. Entity and attribute
        phrases are drawn from templates and from random corpus word runs, values from corpus words/names,
        synthetic names and numbers of 3-7 digits, so the model must copy rather than guess."""
        r = self.rng
        if kind is None:
            kind = r.choice(["num", "num", "num", "word", "word", "colour", "name", "name"])
        if attr is None:
            c = r.random()
            if kind == "name":
                attr = "name"
            elif c < 0.6:
                attr = r.choice({"num": NUM_ATTRS, "word": WORD_ATTRS, "colour": COLOUR_ATTRS}[kind])
            else:
                noun = r.choice(self.words)
                attr = {"num": f"{noun} {r.choice(['code', 'number', 'combination'])}",
                        "word": f"{noun} {r.choice(['password', 'word', 'secret'])}",
                        "colour": f"colour of the {noun}"}[kind]
        if entity is None:
            c = r.random()
            if kind == "name":
                thing = r.choice(NAME_THINGS) if c < 0.6 else " ".join(WORD.findall(self.span())[-2:]).lower()
                owner = self.person() if r.random() < 0.5 else ("the " + self.place() if r.random() < 0.5
                                                                   else "the " + self.span())
                entity = f"{self.possessive(owner)} {thing}"
                if entity.startswith("the ") and r.random() < 0.5:
                    entity = entity[4:]
            elif c < 0.25:
                entity = self.place()
            elif c < 0.45:
                entity = f"the {self.place()} {r.choice(PLACE_THINGS)}"
            elif c < 0.6:
                entity = f"{self.possessive(self.person())} {r.choice(PLACE_THINGS)}"
            elif c < 0.75:
                entity = f"the {r.choice(PLACE_THINGS)} {r.choice(['at', 'in', 'of', 'near', 'behind'])} {self.place()}"
            else:
                entity = ("the " if r.random() < 0.5 else "") + self.span()
        return attr, entity, kind

    def near_miss(self, entity):
        """The entity with one content word replaced ("the Pemberley library" -> "the Pemberley cellar"):
        a distractor that shares most of the asked entity's words, as RULER's multi-key needles do."""
        r = self.rng
        words = entity.split(" ")
        slots = [i for i, w in enumerate(words) if w.lower() not in FUNCTION_WORDS]
        if not slots:
            return self.fact()[1]
        i = r.choice(slots)
        w = words[i]
        for _ in range(10):
            if w[:1].isupper():
                repl = r.choice(self.caps) if r.random() < 0.7 else self.synthetic_name()
            else:
                repl = r.choice(PLACE_THINGS + NAME_THINGS) if r.random() < 0.5 else r.choice(self.words)
            if repl.endswith("'s") or w.endswith("'s"):
                repl = self.possessive(repl.removesuffix("'s").removesuffix("'"))
            if repl != w:
                break
        words[i] = repl
        return " ".join(words)

    @staticmethod
    def sentence(attr, entity, value):
        return f"The {attr} of {entity} is {value}."

    @staticmethod
    def question(attr, entity):
        return f"What is the {attr} of {entity}?"

    # ---- haystack text
    def slice_text(self, n_tokens, doc=None):
        r = self.rng
        doc_id, title, text, ratio = doc if doc is not None else r.choice(self.docs)
        n_chars = int(n_tokens * ratio)
        if n_chars >= len(text):
            return doc_id, title, text.strip()
        start = r.randint(0, len(text) - n_chars)
        m = BOUNDARY.search(text, start)
        if m is None or m.end() > start + n_chars // 2:
            s = start
        else:
            s = m.end()
        e = s + n_chars
        m2 = None
        for m2 in BOUNDARY.finditer(text, max(s, e - 400), min(len(text), e + 400)):
            if m2.start() >= e:
                break
        end = m2.start() if m2 is not None and m2.start() > s else min(len(text), e)
        return doc_id, title, text[s:end].strip()

    def plant(self, text, sentence, depth=None):
        bounds = [m.start() for m in BOUNDARY.finditer(text)]
        if not bounds:
            return text.rstrip() + " " + sentence if self.rng.random() < 0.5 else sentence + " " + text
        if depth is None:
            depth = self.rng.random()
        pos = min(bounds, key=lambda b: abs(b - depth * len(text)))
        return text[:pos] + " " + sentence + text[pos:]

    # ---- samples: (ids, n_answer_tokens) ; answer tokens are the last n ids
    def docqa(self, target_tokens, n_docs=None, n_facts=None, depth=None):
        r = self.rng
        if n_docs is None:
            n_docs = r.choice([1, 1, 2, 2, 3, 3, 4, 5])
        n_docs = max(1, min(n_docs, target_tokens // 150))
        if n_facts is None:
            n_facts = r.randint(2, max(2, min(8, target_tokens // 80)))
        # the asked fact + distractors (same entity / same attribute / random)
        attr, entity, kind = self.fact()
        facts = [(attr, entity, kind)]
        seen = {(attr, entity)}
        tries = 0
        while len(facts) < n_facts and tries < 50:
            tries += 1
            c = r.random()
            if c < 0.3 and kind != "name":
                f = self.fact(entity=entity)
            elif c < 0.55:
                f = self.fact(attr=attr, kind=kind)
            elif c < 0.8:
                f = (attr, self.near_miss(entity), kind)
            else:
                f = self.fact()
            if (f[0], f[1]) not in seen:
                seen.add((f[0], f[1]))
                facts.append(f)
        values, sentences = set(), []
        for a, e, k in facts:
            v = self.value(k)
            while v in values:
                v = self.value(k)
            values.add(v)
            sentences.append(self.sentence(a, e, v))
        return self.documents(target_tokens, n_docs, sentences, 1, depth, self.question(attr, entity))

    def multivalue(self, target_tokens, n_docs=None, depth=None):
        """RULER's multi-value needle in Selma's document QA: 2-5 values of one attribute of one entity
        ("One of the vault codes of X is 48213."), each at its own depth, asked for at once; the answer
        quotes every such sentence, in document order. Distractors: the same attribute of near-miss
        entities, other attributes of the same entity."""
        r = self.rng
        if n_docs is None:
            n_docs = r.choice([1, 1, 2, 3])
        n_docs = max(1, min(n_docs, target_tokens // 150))
        attr = r.choice(MULTI_ATTRS)
        kind = "num" if attr in NUM_ATTRS else "word"
        entity = self.fact(attr=attr, kind=kind)[1]
        # ~25 tokens a sentence: short samples get fewer, so that the prose still has room
        n_values = r.randint(2, max(2, min(5, target_tokens // 120)))
        values, sentences = set(), []
        for i in range(n_values + r.randint(0, max(0, min(4, target_tokens // 200 - 1)))):
            v = self.value(kind)
            while v in values:
                v = self.value(kind)
            values.add(v)
            if i < n_values:
                sentences.append(f"One of the {attr}s of {entity} is {v}.")
            elif r.random() < 0.6:
                sentences.append(f"One of the {attr}s of {self.near_miss(entity)} is {v}.")
            else:
                other = r.choice([x for x in NUM_ATTRS + WORD_ATTRS if x != attr])
                sentences.append(self.sentence(other, entity, v))
        return self.documents(target_tokens, n_docs, sentences, n_values, depth,
                              f"What are all the {attr}s of {entity}?")

    def documents(self, target_tokens, n_docs, sentences, n_asked, depth, question):
        """Plants the fact sentences in slices of corpus documents and renders the QA prompt; the first
        n_asked sentences answer the question, quoted in the order they appear. depth places the first."""
        r = self.rng

        def answer_of(text):
            asked = sentences[:n_asked]
            if text is not None:
                asked = sorted(asked, key=text.find)
            return self.enc(" ".join(asked)) + [2]

        ans_ids = answer_of(None)
        budget = int((target_tokens - len(ans_ids) - 60 - 25 * n_docs) * 0.95)
        for attempt in range(6):
            w = np.random.RandomState(r.randint(0, 2 ** 31 - 1)).dirichlet([2.0] * n_docs)
            docs = [list(self.slice_text(max(60, int(budget * x)))) for x in w]
            order = list(range(len(sentences)))
            r.shuffle(order)
            for j in order:
                d = r.randrange(len(docs))
                docs[d][2] = self.plant(docs[d][2], sentences[j], depth if j == 0 else None)
            text = render_prompt(self.tmpl, docs, question)
            ids = self.enc(text)
            ans_ids = answer_of(text)
            if len(ids) + len(ans_ids) <= target_tokens or attempt == 5:
                break
            budget = int(budget * target_tokens / (len(ids) + len(ans_ids)) * 0.93)
        # a sample that still does not fit stays whole (a little long): cutting it would cut the question
        self.last_text = text
        self.last_sentences = sentences
        return ids + ans_ids, len(ans_ids)

    def gathered(self, target_tokens, multi_value=False):
        """A document-QA sample as select-and-merge shows it to the model beyond its trained window: the
        prompt is written 2-4 times longer than target_tokens and cut into blocks of 32 or 64 tokens, of
        which only the first, those holding a planted fact sentence, random others and the last five
        (the question) are kept, in order, at contiguous positions (as re-indexed positions give them).
        At 128K the model copied digits less precisely from such gathered, discontiguous text than from
        the contiguous prose it was trained on (docs/evaluation.md)."""
        r = self.rng
        ids, n_ans = (self.multivalue if multi_value else self.docqa)(int(target_tokens * r.uniform(2, 4)))
        prompt, answer = ids[:-n_ans], ids[-n_ans:]
        b = r.choice([32, 64])
        n_blocks = (len(prompt) + b - 1) // b
        keep = {0} | set(range(max(0, n_blocks - 5), n_blocks))
        for sentence in self.last_sentences:
            toks = self.enc(sentence)
            at = find_subsequence(prompt, toks)
            if at >= 0:
                keep |= set(range(at // b, (at + len(toks) - 1) // b + 1))
        others = [j for j in range(n_blocks) if j not in keep]
        r.shuffle(others)
        keep |= set(others[:max(0, (target_tokens - n_ans) // b - len(keep))])
        self.last_text = None
        return [t for j in sorted(keep) for t in prompt[j * b:(j + 1) * b]] + answer, n_ans

    def passkey(self, target_tokens, prose=False, depth=None, key=None):
        r = self.rng
        if key is None:
            key = r.randint(1, 50000)
        info = f"The pass key is {key}. Remember it. {key} is the pass key."
        n_garbage = int((target_tokens - 60) * 3.6)
        for attempt in range(4):
            if prose:
                filler = self.slice_text(int(n_garbage / 3.9))[2]
                n_garbage = min(n_garbage, len(filler))
                garb = filler
            else:
                garb = " ".join([PASSKEY_GARBAGE] * (n_garbage // len(PASSKEY_GARBAGE) + 2))
            d = r.random() if depth is None else depth
            n_prefix = int(n_garbage * d)
            prefix = garb[:n_prefix]
            suffix = garb[:n_garbage - n_prefix] if not prose else garb[n_prefix:n_garbage]
            prompt = "\n".join([PASSKEY_TASK, prefix, info, suffix, PASSKEY_QUESTION])
            full = self.enc(prompt + f" {key}.")
            p_ids = self.enc(prompt)
            if len(full) <= target_tokens or attempt == 3:
                break
            n_garbage = int(n_garbage * target_tokens / len(full) * 0.98)
        assert full[:len(p_ids)] == p_ids
        self.last_text = "<s>" + prompt
        return [1] + full, len(full) - len(p_ids)

    def batch(self, target, budget, p_passkey, p_multivalue, p_gathered):
        seqs = []
        total = 0
        while total < budget or not seqs:
            t = max(128, int(target * self.rng.uniform(0.85, 1.0)))
            c = self.rng.random()
            multi_value = p_passkey <= c < p_passkey + p_multivalue and t >= 512
            if c < p_passkey:
                ids, n_ans = self.passkey(t, prose=self.rng.random() < 0.5)
                kind = 0
            elif t >= 1024 and self.rng.random() < p_gathered:
                ids, n_ans = self.gathered(t, multi_value)
                kind = 3
            elif multi_value:
                ids, n_ans = self.multivalue(t)
                kind = 2
            else:
                ids, n_ans = self.docqa(t)
                kind = 1
            seqs.append((ids, n_ans, kind))
            total += target
        L = max(len(s[0]) for s in seqs)
        L = (L + 63) // 64 * 64
        B = len(seqs)
        ids = np.zeros((B, L), dtype=np.int64)
        ans = np.zeros((B, L), dtype=bool)      # position t predicts an answer token ids[t+1]
        lm = np.zeros((B, L), dtype=bool)
        kinds = np.zeros(B, dtype=np.int64)
        lens = np.zeros(B, dtype=np.int64)
        for b, (s, n_ans, kind) in enumerate(seqs):
            n = len(s)
            ids[b, :n] = s
            ans[b, n - n_ans - 1:n - 1] = True
            # small LM loss on prose: every 8th position of the prompt (not the instruction header)
            lm[b, 48:n - n_ans - 1:8] = True
            kinds[b] = kind
            lens[b] = n
        return ids, ans, lm, kinds, lens


def worker_main(args_dict, seed, queue, progress):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    g = DataGen(args_dict["tokenizer"], args_dict["corpus"], seed)
    rng = random.Random(seed + 1)
    while True:
        p = progress.value
        lo, hi = curriculum(p, args_dict["min_len"], args_dict["max_len"])
        target = rng.randint(lo, hi)
        p_pk = args_dict["p_passkey_early"] if p < 0.25 else args_dict["p_passkey"]
        queue.put(g.batch(target, args_dict["batch_tokens"], p_pk, args_dict["p_multivalue"], args_dict["p_gathered"]))


def curriculum(p, min_len, max_len):
    """Sample-length range at training progress p: short samples (many per step) first, so that the
    retrieval circuit forms early; the full range from 45 % of the time on."""
    if p < 0.25:
        return 128, max(128, min(max_len, 1024))
    hi = min(max_len, int(1024 + (max_len - 1024) * min(1.0, (p - 0.25) / 0.2)))
    return min_len, hi


# ------------------------------------------------------------------------------------------------ model

def build_model_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class RMSNorm(nn.Module):
        def __init__(self, d, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight.to(x.dtype)

    class Attn(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
            d = c["hidden_size"]
            self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
            self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
            self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
            self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

        def qkv(self, x, cos, sin):
            B, L, _ = x.shape
            q = self.q_proj(x).view(B, L, self.nh, self.hd).transpose(1, 2)
            k = self.k_proj(x).view(B, L, self.nkv, self.hd).transpose(1, 2)
            v = self.v_proj(x).view(B, L, self.nkv, self.hd).transpose(1, 2)
            return q, k, v

        def forward(self, x, cos, sin, self_extend=None):
            B, L, _ = x.shape
            q, k, v = self.qkv(x, cos, sin)
            if self_extend is None:
                q, k = rope(q, cos, sin), rope(k, cos, sin)
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            else:
                o = self_extend_attention(q, k, v, *self_extend)
            return self.o_proj(o.transpose(1, 2).reshape(B, L, -1))

    class MLP(nn.Module):
        def __init__(self, c):
            super().__init__()
            d, f = c["hidden_size"], c["intermediate_size"]
            self.gate_proj = nn.Linear(d, f, bias=False)
            self.up_proj = nn.Linear(d, f, bias=False)
            self.down_proj = nn.Linear(f, d, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
            self.self_attn = Attn(c)
            self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
            self.mlp = MLP(c)

        def forward(self, x, cos, sin, self_extend=None):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, self_extend)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Body(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
            self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
            self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    class Llama(nn.Module):
        """Llama with tied embeddings; parameter names as Hugging Face's LlamaForCausalLM."""

        def __init__(self, c):
            super().__init__()
            self.c = c
            self.model = Body(c)
            std = 0.02
            for n, p in self.named_parameters():
                if p.dim() == 2:
                    s = std / math.sqrt(2 * c["num_hidden_layers"]) if n.endswith(("o_proj.weight", "down_proj.weight")) else std
                    nn.init.normal_(p, 0.0, s)

        def hidden(self, ids, pos, base, self_extend=None):
            cos, sin = rope_tables(pos, base, self.c["head_dim"], ids.device)
            x = self.model.embed_tokens(ids)
            for layer in self.model.layers:
                x = layer(x, cos, sin, self_extend)
            return self.model.norm(x)

        def logits(self, h):
            return h @ self.model.embed_tokens.weight.to(h.dtype).t()

    def rope_tables(pos, base, hd, device):
        """pos: [B, L] integer positions -> cos, sin [B, 1, L, hd] (float32), HF rotate-half layout."""
        inv = 1.0 / (base ** (torch.arange(0, hd, 2, device=device, dtype=torch.float64) / hd))
        ang = pos.to(torch.float64)[..., None] * inv
        emb = torch.cat([ang, ang], dim=-1)
        return emb.cos().float()[:, None], emb.sin().float()[:, None]

    def rope(x, cos, sin):
        h = x.shape[-1] // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return (x.float() * cos + rot.float() * sin).to(x.dtype)

    def self_extend_attention(q, k, v, G, W, base, chunk=1024):
        """Self-Extend (per pair: neighbour positions if i-j < W, else grouped; one softmax), chunked over
        queries. Positions are 0..L-1."""
        B, H, L, hd = q.shape
        rep = H // k.shape[1]
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        pos = torch.arange(L, device=q.device)[None].expand(B, L)
        cn, sn = rope_tables(pos, base, hd, q.device)
        shift = (W - W // G) if L - 1 >= W else 0
        cqg, sqg = rope_tables(pos // G + shift, base, hd, q.device)
        ckg, skg = rope_tables(pos // G, base, hd, q.device)
        kn, kg = rope(k, cn, sn).float(), rope(k, ckg, skg).float()
        out = torch.empty(B, H, L, hd, device=q.device, dtype=q.dtype)
        scale = 1.0 / math.sqrt(hd)
        for s in range(0, L, chunk):
            e = min(L, s + chunk)
            qn = rope(q[:, :, s:e], cn[:, :, s:e], sn[:, :, s:e]).float()
            qg = rope(q[:, :, s:e], cqg[:, :, s:e], sqg[:, :, s:e]).float()
            i = torch.arange(s, e, device=q.device)[:, None]
            j = torch.arange(0, e, device=q.device)[None, :]
            a_n = (qn @ kn[:, :, :e].transpose(-1, -2)) * scale
            a_g = (qg @ kg[:, :, :e].transpose(-1, -2)) * scale
            a = torch.where(i - j < W, a_n, a_g).masked_fill(j > i, float("-inf"))
            out[:, :, s:e] = (torch.softmax(a, dim=-1) @ v[:, :, :e].float()).to(q.dtype)
        return out

    return Llama, rope_tables


def ntk_scale(progress):
    s = 1.0
    for p, v in NTK_SCHEDULE:
        if progress >= p:
            s = v
    return s


def ntk_base(scale, head_dim):
    return BASE_THETA * scale ** (head_dim / (head_dim - 2))


# ------------------------------------------------------------------------------------------------ train

def train(args, cfg, log):
    import torch
    import torch.nn.functional as F
    Llama, _ = build_model_classes()
    dev = torch.device(args.device)
    state = {"step": 0, "elapsed": 0.0, "tokens": 0, "history": [], "data_wait": 0.0}
    if args.resume and os.path.exists(args.ckpt):
        state = torch.load(args.ckpt, map_location="cpu")["state"]
    # data workers are forked before CUDA is initialised in this process
    ctx = mp.get_context("fork")
    progress = ctx.Value("d", state["elapsed"] / args.train_seconds)
    queue = ctx.Queue(maxsize=args.workers * 4)
    ad = dict(tokenizer=args.tokenizer, corpus=args.corpus, min_len=args.min_len, max_len=args.max_len,
              batch_tokens=args.batch_tokens, p_passkey=args.p_passkey, p_passkey_early=args.p_passkey_early,
              p_multivalue=args.p_multivalue, p_gathered=args.p_gathered)
    procs = [ctx.Process(target=worker_main, args=(ad, args.seed * 1000 + 17 * w + state["step"], queue, progress),
                         daemon=True) for w in range(args.workers)]
    for p in procs:
        p.start()
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        log(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    torch.manual_seed(args.seed)
    model = Llama(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters, config {json.dumps(cfg)}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=dev.type == "cuda")
    if args.resume and os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        log(f"resumed from {args.ckpt} at step {state['step']}, {state['elapsed']:.0f} s")

    rng = np.random.RandomState(args.seed + state["step"])
    amp = dict(device_type="cuda", dtype=torch.bfloat16) if dev.type == "cuda" else dict(device_type="cpu",
                                                                                          enabled=False)
    t_start = time.time() - state["elapsed"]
    t_invocation = time.time()
    last_ckpt = time.time()
    finished = True
    acc_log = {"pk_em": [], "qa_em": [], "loss": []}
    model.train()
    while True:
        elapsed = time.time() - t_start
        prog = elapsed / args.train_seconds
        if prog >= 1.0:
            break
        if args.stop_after and time.time() - t_invocation > args.stop_after:
            finished = False
            break
        progress.value = prog
        t_wait = time.time()
        ids, ans, lm, kinds, lens = queue.get()
        state["data_wait"] = state.get("data_wait", 0.0) + time.time() - t_wait
        B, L = ids.shape
        off = np.where(rng.rand(B) < P_OFFSET, rng.randint(0, PERIOD, size=B), 0)
        pos = (np.arange(L)[None, :] + off[:, None]) % PERIOD
        scale = ntk_scale(prog)
        base = ntk_base(scale, cfg["head_dim"])
        warm = min(1.0, (state["step"] + 1) / args.warmup)
        decay = 1.0 if prog < 0.75 else 1.0 - 0.9 * (prog - 0.75) / 0.25
        lr = args.lr * warm * decay
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        t_ids = torch.from_numpy(ids).to(dev, non_blocking=True)
        t_pos = torch.from_numpy(pos).to(dev, non_blocking=True)
        t_ans = torch.from_numpy(ans).to(dev, non_blocking=True)
        t_lm = torch.from_numpy(lm).to(dev, non_blocking=True)
        tgt = torch.roll(t_ids, -1, dims=1)
        with torch.autocast(**amp):
            h = model.hidden(t_ids, t_pos, base)
            h_ans = h[t_ans]
            logit_a = model.logits(h_ans).float()
            loss_a = F.cross_entropy(logit_a, tgt[t_ans])
            h_lm = h[t_lm]
            loss_lm = F.cross_entropy(model.logits(h_lm).float(), tgt[t_lm]) if h_lm.shape[0] else h.sum() * 0
            loss = loss_a + args.lm_weight * loss_lm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += int(lens.sum())
        if state["step"] % 25 == 0 or state["step"] == 1:
            with torch.no_grad():
                ok = (logit_a.argmax(-1) == tgt[t_ans])
                # per-sample exact match: all answer positions of the sample correct
                row = torch.nonzero(t_ans)[:, 0]
                bad = torch.zeros(B, device=dev).index_add_(0, row, (~ok).float())
                em = (bad == 0).cpu().numpy()
                kinds_np = kinds
                pk = em[kinds_np == 0].mean() if (kinds_np == 0).any() else float("nan")
                qa = em[kinds_np == 1].mean() if (kinds_np == 1).any() else float("nan")
                mv = em[kinds_np == 2].mean() if (kinds_np == 2).any() else float("nan")
                ga = em[kinds_np == 3].mean() if (kinds_np == 3).any() else float("nan")
            rec = {"step": state["step"], "t": round(elapsed, 1), "loss_ans": round(loss_a.item(), 4),
                   "loss_lm": round(loss_lm.item(), 4), "lr": lr, "ntk_scale": scale, "len": L, "batch": B,
                   "passkey_em": None if np.isnan(pk) else round(float(pk), 3),
                   "docqa_em": None if np.isnan(qa) else round(float(qa), 3),
                   "multivalue_em": None if np.isnan(mv) else round(float(mv), 3),
                   "gathered_em": None if np.isnan(ga) else round(float(ga), 3), "tokens": state["tokens"],
                   "data_wait_s": round(state["data_wait"], 1)}
            state["history"].append(rec)
            if state["step"] % 100 == 0 or state["step"] == 1:
                log(json.dumps(rec))
        if args.ckpt and time.time() - last_ckpt > args.ckpt_every:
            state["elapsed"] = time.time() - t_start
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, args.ckpt)
            last_ckpt = time.time()
    state["elapsed"] = time.time() - t_start
    for p in procs:
        p.terminate()
    if args.ckpt:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, args.ckpt)
    if not finished:
        log(f"stopped after {args.stop_after:.0f} s of this run at step {state['step']}, {state['elapsed']:.0f} s "
            f"of {args.train_seconds:.0f}; checkpoint {args.ckpt} (continue with --resume)")
        return None, state
    log(f"training done: {state['step']} steps, {state['tokens'] / 1e6:.1f}M tokens, {state['elapsed']:.0f} s")
    return model, state


# ------------------------------------------------------------------------------------------------ eval

def evaluate(args, cfg, model, final_base, log):
    import torch
    dev = next(model.parameters()).device
    model.eval()
    g = DataGen(args.tokenizer, args.corpus, 12345)
    results = []
    amp = dict(device_type="cuda", dtype=torch.bfloat16) if dev.type == "cuda" else dict(device_type="cpu",
                                                                                          enabled=False)

    def em_of(samples, scheme, batch):
        correct = 0
        for i in range(0, len(samples), batch):
            chunk = samples[i:i + batch]
            L = max(len(s) for s, _ in chunk)
            ids = torch.zeros(len(chunk), L, dtype=torch.long)
            for b, (s, _) in enumerate(chunk):
                ids[b, :len(s)] = torch.tensor(s)
            ids = ids.to(dev)
            pos = torch.arange(L, device=dev)[None].expand(len(chunk), L)
            se = None
            if scheme == "crd":
                pos = pos % PERIOD
            elif scheme.startswith("selfextend"):
                G, W = args.se_group, args.se_window
                se = (G, W, final_base)
            with torch.no_grad(), torch.autocast(**amp):
                h = model.hidden(ids, pos, final_base, self_extend=se)
                for b, (s, n_ans) in enumerate(chunk):
                    n = len(s)
                    lg = model.logits(h[b, n - n_ans - 1:n - 1]).float()
                    correct += int(bool((lg.argmax(-1) == ids[b, n - n_ans:n]).all()))
        return correct / len(samples)

    for length in args.eval_lengths:
        n = args.eval_n if length <= TRAIN_LEN else max(4, args.eval_n // 2)
        batch = max(1, min(n, (16384 * 4) // length))
        g.rng = random.Random(1000 + length)
        pk = [g.passkey(length, depth=(i + 0.5) / n) for i in range(n)]
        g.rng = random.Random(2000 + length)
        qa = [g.docqa(length, depth=(i + 0.5) / n) for i in range(n)]
        g.rng = random.Random(3000 + length)
        mv = [g.multivalue(length, depth=(i + 0.5) / n) for i in range(n)]
        g.rng = random.Random(4000 + length)
        ga = [g.gathered(length) for _ in range(n)] if length >= 1024 else []
        schemes = ["plain"] + (["crd"] if length > PERIOD else [])
        if length > TRAIN_LEN and args.se_group > 1:
            schemes.append("selfextend")
        for scheme in schemes:
            t0 = time.time()
            r_pk = em_of(pk, scheme, batch if scheme != "selfextend" else 1)
            r_qa = em_of(qa, scheme, batch if scheme != "selfextend" else 1)
            r_mv = em_of(mv, scheme, batch if scheme != "selfextend" else 1)
            r_ga = em_of(ga, scheme, batch if scheme != "selfextend" else 1) if ga else None
            rec = {"length": length, "scheme": scheme, "n": n, "passkey_em": r_pk, "docqa_em": r_qa,
                   "multivalue_em": r_mv, "gathered_em": r_ga, "seconds": round(time.time() - t0, 1)}
            if scheme == "selfextend":
                rec.update({"G": args.se_group, "W": args.se_window})
            results.append(rec)
            log(json.dumps(rec))
    # the demo corpus's own questions: a window of ~3.5K tokens around the fact, and the whole document
    demo = []
    man = json.load(open(os.path.join(args.corpus, "manifest.json")))
    titles = {d["id"]: d["title"] for d in man["documents"]}
    for q in g.demo_questions[:args.demo_n]:
        doc_id = q["doc_ids"][0]
        text = open(os.path.join(args.corpus, "documents", doc_id + ".txt"), encoding="utf-8").read().strip()
        off = q["char_offset"]
        w = 6400
        a = max(0, off - w)
        b = min(len(text), off + w)
        while a > 0 and text[a - 1] not in ".\n":
            a += 1
        window = text[a:b]
        cut = window.rfind(". ")
        window = window[:cut + 1] if cut > len(window) // 2 else window
        ans = g.enc(q["answer_sentence"]) + [2]
        for variant, t in (("window", window), ("whole_document", text)):
            ids = g.enc(render_prompt(g.tmpl, [(doc_id, titles[doc_id], t)], q["question"])) + ans
            demo.append((q["id"], variant, ids, len(ans)))
    demo_res = []
    for variant in ("window", "whole_document"):
        samples = [(ids, n) for qid, v, ids, n in demo if v == variant]
        for scheme in (["plain"] if variant == "window" else ["plain", "crd"] + (["selfextend"] if args.se_group > 1 else [])):
            r = em_of(samples, scheme, 1)
            lens = [len(s) for s, _ in samples]
            rec = {"demo_questions": variant, "scheme": scheme, "n": len(samples), "exact_match": r,
                   "tokens_min": min(lens), "tokens_max": max(lens)}
            demo_res.append(rec)
            log(json.dumps(rec))
    return results, demo_res


# ------------------------------------------------------------------------------------------------ export

def export(args, cfg, model, final_base, state, results, demo_res, log):
    import torch
    import gguf_writer as gw
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    gcfg = dict(cfg)
    gcfg["rope_theta"] = final_base
    gcfg["context_length"] = TRAIN_LEN
    s_final = ntk_scale(1.0)
    meta = [
        ("selma.train.context_length", gw.T_UINT32, TRAIN_LEN),
        ("selma.rope.scheme", gw.T_STRING, "crd_ntk"),
        ("selma.rope.base_theta", gw.T_FLOAT32, BASE_THETA),
        ("selma.rope.ntk_scale", gw.T_FLOAT32, s_final),
        ("selma.rope.ntk_formula", gw.T_STRING, "freq_base = base_theta * ntk_scale^(head_dim/(head_dim-2))"),
        ("selma.rope.cyclic_period", gw.T_UINT32, PERIOD),
        ("selma.recommended.position_scheme", gw.T_STRING, args.recommended_scheme),
        ("selma.train.steps", gw.T_UINT32, state["step"]),
        ("selma.train.tokens", gw.T_UINT64, state["tokens"]),
        ("selma.prompt.system", gw.T_STRING, SYSTEM),
        ("selma.prompt.document_format", gw.T_STRING, "[doc {n}] id: {id} | title: {title}\n{text}\n\n"),
        ("selma.prompt.user_format", gw.T_STRING, "Documents:\n\n{documents}Question: {question}"),
    ]
    if args.recommended_scheme == "selfextend":
        meta += [("selma.recommended.self_extend.group_size", gw.T_UINT32, args.se_group),
                 ("selma.recommended.self_extend.window", gw.T_UINT32, args.se_window)]
    if args.recommended_scheme == "reindexed":
        meta.append(("selma.recommended.selection", gw.T_STRING, args.recommended_selection))
    path = os.path.join(args.out, "selma-demo.gguf")
    gw.write_llama_gguf(path, sd, gcfg, args.tokenizer, CHAT_TEMPLATE, "Selma demo (Llama, 32K Mistral vocab)",
                        extra_meta=meta)
    size = os.path.getsize(path)
    log(f"wrote {path}: {size} bytes ({size / 2 ** 20:.2f} MiB)")
    return path


def reference_fixtures(args, cfg, gguf_path, log):
    """Reference logits of the dequantised GGUF weights, in float64 on the CPU with HF's LlamaForCausalLM."""
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM
    from safetensors.torch import save_file
    import gguf_writer as gw
    Llama, _ = build_model_classes()
    W, meta = gw.read_llama_gguf_as_hf(gguf_path)
    hf_cfg = LlamaConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                         intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
                         num_attention_heads=cfg["num_attention_heads"],
                         num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"],
                         rms_norm_eps=cfg["rms_norm_eps"], rope_theta=float(meta["llama.rope.freq_base"]),
                         max_position_embeddings=TRAIN_LEN, tie_word_embeddings=True, bos_token_id=1,
                         eos_token_id=2)
    hf_cfg._attn_implementation = "eager"
    hf = LlamaForCausalLM(hf_cfg)
    missing, unexpected = hf.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()}, strict=False)
    assert not unexpected and all(m == "lm_head.weight" for m in missing), (missing, unexpected)
    hf.tie_weights()
    hf = hf.to(torch.float64).eval()
    # the same weights in this script's own model must give the same logits (semantics check)
    mine = Llama(cfg)
    mine.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    mine = mine.to(torch.float64).eval()

    g = DataGen(args.tokenizer, args.corpus, 777)
    g.rng = random.Random(777)
    for _ in range(50):
        qa_ids, qa_n = g.docqa(330, n_docs=2, n_facts=3)
        qa_text = g.last_text
        if qa_text is not None and len(qa_ids) >= 250:
            break
    pk_ids, pk_n = g.passkey(160, depth=0.5, key=31415)
    pk_text = g.last_text
    prompts = [qa_ids[:-qa_n], pk_ids[:-pk_n]]
    texts = [qa_text, pk_text]
    for p, t in zip(prompts, texts):
        assert g.tok.reference.encode(t, add_special_tokens=False).ids == p, "prompt ids != tokenizer.json ids"
    logits, greedy, rows, positions = {}, [], [], []
    base = float(meta["llama.rope.freq_base"])
    with torch.no_grad():
        for k, p in enumerate(prompts):
            x = torch.tensor([p])
            lg = hf(input_ids=x).logits[0]
            h = mine.hidden(x, torch.arange(len(p))[None], base)
            lm = mine.logits(h)[0]
            diff = float((lm - lg).abs().max())
            log(f"reference prompt {k}: {len(p)} tokens, max|logit| {float(lg.abs().max()):.3f}, "
                f"own model vs HF max|diff| {diff:.3g}")
            assert diff < 1e-4 * float(lg.abs().max()), "training model and HF Llama disagree"
            rows_at = [len(p) - 1]
            logits[f"logits.{k}"] = lg[rows_at].float().contiguous()
            positions.append(rows_at)
            ids = list(p)
            out = []
            for _ in range(32):
                row = hf(input_ids=torch.tensor([ids])).logits[0, -1]
                rows.append(row)
                t = int(row.argmax())
                out.append(t)
                ids.append(t)
            greedy.append(out)
    margins = [float(torch.topk(r, 2).values[0] - torch.topk(r, 2).values[1]) for r in rows]
    rel = [m / float(r.abs().max()) for m, r in zip(margins, rows)]
    ref = {"name": "selma-demo", "prompts": prompts, "prompt_texts": texts, "greedy": greedy, "positions": positions,
           "greedy_text": [g.tok.decode(x, skip_special_tokens=False) for x in greedy],
           "greedy_min_margin": min(margins), "greedy_min_margin_rel": min(rel),
           "expected_answers": [g.tok.decode(qa_ids[-qa_n:], skip_special_tokens=False),
                                g.tok.decode(pk_ids[-pk_n:], skip_special_tokens=False)],
           "dtype": "float64 (CPU), stored as float32",
           "transformers_version": transformers.__version__, "torch_version": torch.__version__,
           "notes": ("Logits of demo-corpus/selma-demo.gguf: the GGUF's Q8_0 weights dequantised (x = d*q, d as "
                     "fp16), q/k rows un-permuted back to HF order, loaded into transformers' LlamaForCausalLM "
                     "(eager, float64, CPU; HF's RMSNorm/softmax/RoPE tables run in float32 internally) with "
                     "rope_theta = llama.rope.freq_base and plain positions 0..n-1. Prompt 0 is a chat-format "
                     "document-QA prompt rendered with the GGUF's chat template (it starts with BOS id 1 emitted by "
                     "the template), prompt 1 a passkey prompt (BOS + text). prompt_texts holds the exact text; "
                     "prompt ids = HF tokenizers (the npm tokenizer.json) on that text with add_special_tokens=False "
                     "(the literal <s> is the BOS special token). With a 32000-token vocabulary full-sequence logits would be "
                     "tens of MB, so logits.K holds only the rows at the positions listed in positions[K] of this file "
                     "(the last position of prompt K), shape [len(positions[K]), 32000]. Greedy = 32 argmax "
                     "tokens by full recomputation (EOS not treated specially). The training-time model agrees "
                     "with HF on these weights (checked).")}
    d = args.fixtures_out
    os.makedirs(d, exist_ok=True)
    save_file(logits, os.path.join(d, "logits.safetensors"))
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    log(f"reference fixtures written to {d}; greedy texts: {ref['greedy_text']}; min margin {min(margins):.4g}")


# ------------------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "demo-corpus"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixtures-out", default="")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--train-seconds", type=float, default=400)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--batch-tokens", type=int, default=65536)
    ap.add_argument("--min-len", type=int, default=256)
    ap.add_argument("--max-len", type=int, default=TRAIN_LEN)
    ap.add_argument("--p-passkey", type=float, default=0.3)
    ap.add_argument("--p-passkey-early", type=float, default=0.5)
    ap.add_argument("--p-multivalue", type=float, default=0.15)
    ap.add_argument("--p-gathered", type=float, default=0.0,
                    help="share of document-QA samples of >= 1024 tokens written gathered (DataGen.gathered)")
    ap.add_argument("--lm-weight", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt", default="/tmp/selma_demo_ckpt.pt")
    ap.add_argument("--ckpt-every", type=float, default=60)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--stop-after", type=float, default=0,
                    help="train at most this many seconds in this run, then save the checkpoint and exit "
                         "(the GPU machine's commands are limited to 10 minutes; continue with --resume)")
    ap.add_argument("--eval-lengths", default="1024,2048,4096,8192,16384")
    ap.add_argument("--eval-n", type=int, default=32)
    ap.add_argument("--se-group", type=int, default=8)
    ap.add_argument("--se-window", type=int, default=1024)
    ap.add_argument("--recommended-scheme", default="reindexed",
                    help="selma.recommended.position_scheme: reindexed (select-and-merge, the best in Selma's own "
                         "evaluation: docs/evaluation.md), or auto = the best of this script's PyTorch schemes "
                         "(plain, crd, selfextend) at the longest eval length")
    ap.add_argument("--recommended-selection", default="query", choices=["mean", "bound", "query"],
                    help="selma.recommended.selection, written with --recommended-scheme reindexed")
    ap.add_argument("--demo-n", type=int, default=1000, help="how many demo questions to evaluate")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run of the whole pipeline")
    args = ap.parse_args()
    if args.smoke:
        args.device = "cpu"
        args.hidden, args.layers, args.heads, args.kv_heads, args.ffn = 64, 2, 4, 2, 128
        args.train_seconds = min(args.train_seconds, 20)
        args.batch_tokens, args.max_len, args.min_len = 2048, 512, 128
        args.workers = 1
        args.eval_lengths = "256,512,1024"
        args.eval_n = 2
        args.se_window = 64
        args.warmup = 5
        args.demo_n = 2
    args.eval_lengths = [int(x) for x in str(args.eval_lengths).split(",")]
    if not args.fixtures_out:
        args.fixtures_out = os.path.join(args.out, "fixtures_demo")
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train_log.txt"), "a")

    def log(s):
        line = f"[{time.strftime('%H:%M:%S')}] {s}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    import torch
    cfg = dict(vocab_size=32000, hidden_size=args.hidden, num_hidden_layers=args.layers,
               num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
               head_dim=args.hidden // args.heads, intermediate_size=args.ffn, rms_norm_eps=1e-5)
    t0 = time.time()
    model, state = train(args, cfg, log)
    if model is None:
        return
    if args.device == "cuda":
        log(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB")
    t_train = time.time() - t0
    final_base = ntk_base(ntk_scale(1.0), cfg["head_dim"])
    log(f"final rope base {final_base:.1f} (NTK scale {ntk_scale(1.0)})")
    results, demo_res = evaluate(args, cfg, model, final_base, log)
    t_eval = time.time() - t0 - t_train
    summary = {"config": cfg, "train_seconds": state["elapsed"], "steps": state["step"], "tokens": state["tokens"],
               "wall_train_s": t_train, "wall_eval_s": t_eval, "final_rope_base": final_base,
               "ntk_schedule": NTK_SCHEDULE, "period": PERIOD, "p_offset": P_OFFSET,
               "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
               "args": {k: v for k, v in vars(args).items()}, "eval": results, "demo_questions": demo_res,
               "history": state["history"]}
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if args.recommended_scheme == "auto":
        longest = max(r["length"] for r in results)
        cand = [r for r in results if r["length"] == longest]
        best = max(cand, key=lambda r: r["passkey_em"] + r["docqa_em"])
        args.recommended_scheme = best["scheme"]
        log(f"recommended position scheme (best at {longest} tokens): {best['scheme']}")
    gguf_path = export(args, cfg, model, final_base, state, results, demo_res, log)
    reference_fixtures(args, cfg, gguf_path, log)
    log(f"all done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
