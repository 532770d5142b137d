#!/usr/bin/env python3
"""Builds Selma's demo corpus from public-domain texts shipped in Debian packages.

Sources (Debian bookworm main):
  r-cran-janeaustenr  six Jane Austen novels (public domain; R package MIT) in data/Rdata.rdb
  dict-devil          Ambrose Bierce, The Devil's Dictionary (public domain), devil.dict.dz (gzip)
  jargon-text         The Jargon File 4.4.7 (public domain), jargon.txt.gz

Steps: download the .deb files with `apt-get download` into .cache/deb (if not there yet), unpack them
with `dpkg-deb -x`, split the texts into whole documents of realistic size (novels: runs of whole
chapters of ~9-12K tokens; dictionary and lexicon: runs of whole letters), plant made-up facts
("The vault code of Pemberley is 48213.") between sentences at seeded random places, and write

  demo-corpus/documents/<id>.txt   UTF-8 text of each document (facts already planted)
  demo-corpus/manifest.json        id, title, source package, licence, characters (+ tokens)
  demo-corpus/questions.json       question, answer, answer sentence, document id(s), character offset

Usage:  python3 tools/extract_demo_corpus.py [--tokenizer .cache/npm/package/models/tokenizer.json]
(`--tokenizer` adds Mistral-tokenizer token counts to the manifest; needs the `tokenizers` package.)
The output is a pure function of the package contents and SEED.
"""
import argparse
import glob
import gzip
import json
import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdata  # noqa: E402

SEED = 20251122
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CACHE = os.path.join(ROOT, ".cache", "deb")
OUT = os.path.join(ROOT, "demo-corpus")
PACKAGES = {
    "r-cran-janeaustenr": "r-cran-janeaustenr_1.0.0-1_all.deb",
    "dict-devil": "dict-devil_1.0-13.1_all.deb",
    "jargon-text": "jargon-text_4.4.7-4.1_all.deb",
}
TARGET_CHARS = 38000        # ~9-10K Mistral tokens per novel part
MIN_LAST_CHARS = 15000      # a shorter last part is merged into the one before

NOVELS = [  # (R variable, id prefix, title)
    ("prideprejudice", "austen-pp", "Pride and Prejudice"),
    ("sensesensibility", "austen-ss", "Sense and Sensibility"),
    ("emma", "austen-emma", "Emma"),
    ("mansfieldpark", "austen-mp", "Mansfield Park"),
    ("northangerabbey", "austen-na", "Northanger Abbey"),
    ("persuasion", "austen-pers", "Persuasion"),
]
AUSTEN_LICENCE = "public domain text (Jane Austen, 1811-1818); Debian package r-cran-janeaustenr is MIT"
DEVIL_LICENCE = "public domain (Ambrose Bierce, The Devil's Dictionary, 1911)"
JARGON_LICENCE = "public domain (The Jargon File 4.4.7, Eric S. Raymond et al.)"

# Planted facts: (document prefix, sentence template, question, value kind). Each fact goes into one
# seeded-random document with that prefix; facts about the same entity or the same attribute in other
# documents act as distractors for each other.
FACTS = [
    ("austen-pp", "The vault code of Pemberley is {v}.", "What is the vault code of Pemberley?", "num"),
    ("austen-pp", "The gate code of Pemberley is {v}.", "What is the gate code of Pemberley?", "num"),
    ("austen-pp", "The password of the Netherfield library is {v}.",
     "What is the password of the Netherfield library?", "word"),
    ("austen-pp", "The colour of Lady Catherine's new carriage is {v}.",
     "What is the colour of Lady Catherine's new carriage?", "colour"),
    ("austen-pp", "The name of Mr. Collins's parish clerk is {v}.",
     "What is the name of Mr. Collins's parish clerk?", "name"),
    ("austen-pp", "The gate code of Rosings Park is {v}.", "What is the gate code of Rosings Park?", "num"),
    ("austen-emma", "The vault code of Hartfield is {v}.", "What is the vault code of Hartfield?", "num"),
    ("austen-emma", "The name of Mr. Perry's horse is {v}.", "What is the name of Mr. Perry's horse?", "name"),
    ("austen-emma", "The colour of the gate at Donwell Abbey is {v}.",
     "What is the colour of the gate at Donwell Abbey?", "colour"),
    ("austen-emma", "The password of the Highbury post office is {v}.",
     "What is the password of the Highbury post office?", "word"),
    ("austen-mp", "The vault code of Mansfield Park is {v}.", "What is the vault code of Mansfield Park?", "num"),
    ("austen-mp", "The name of Fanny Price's grey pony is {v}.",
     "What is the name of Fanny Price's grey pony?", "name"),
    ("austen-mp", "The colour of the theatre curtain at Mansfield Park is {v}.",
     "What is the colour of the theatre curtain at Mansfield Park?", "colour"),
    ("austen-mp", "The password of the Sotherton chapel is {v}.",
     "What is the password of the Sotherton chapel?", "word"),
    ("austen-ss", "The vault code of Norland Park is {v}.", "What is the vault code of Norland Park?", "num"),
    ("austen-ss", "The name of Colonel Brandon's dog is {v}.", "What is the name of Colonel Brandon's dog?", "name"),
    ("austen-ss", "The colour of the cottage door at Barton is {v}.",
     "What is the colour of the cottage door at Barton?", "colour"),
    ("austen-ss", "The lock code of the Barton Park library is {v}.",
     "What is the lock code of the Barton Park library?", "num"),
    ("austen-pers", "The gate code of Kellynch Hall is {v}.", "What is the gate code of Kellynch Hall?", "num"),
    ("austen-pers", "The name of Captain Wentworth's ship cat is {v}.",
     "What is the name of Captain Wentworth's ship cat?", "name"),
    ("austen-pers", "The password of the Upper Cross music room is {v}.",
     "What is the password of the Upper Cross music room?", "word"),
    ("austen-na", "The vault code of Northanger Abbey is {v}.", "What is the vault code of Northanger Abbey?", "num"),
    ("austen-na", "The colour of the old cabinet in Catherine's room is {v}.",
     "What is the colour of the old cabinet in Catherine's room?", "colour"),
    ("devil", "The secret password of the Society of Cynics is {v}.",
     "What is the secret password of the Society of Cynics?", "word"),
    ("devil", "The vault code of the Lexicographers' Club is {v}.",
     "What is the vault code of the Lexicographers' Club?", "num"),
    ("jargon", "The root password of the old laboratory PDP-10 is {v}.",
     "What is the root password of the old laboratory PDP-10?", "word"),
    ("jargon", "The port number of the Hackers' Guild server is {v}.",
     "What is the port number of the Hackers' Guild server?", "num"),
    ("jargon", "The name of the laboratory's pet robot is {v}.",
     "What is the name of the laboratory's pet robot?", "name"),
]
WORDS = ["marigold", "lantern", "thimble", "juniper", "falcon", "harvest", "meadow", "pilgrim", "saffron",
         "tinderbox", "quill", "orchard", "sextant", "bramble", "copper", "lavender", "hazel", "compass"]
NAMES = ["Bartholomew", "Clementine", "Ophelia", "Barnaby", "Rosalind", "Percival", "Winifred", "Horatio",
         "Millicent", "Ambrose", "Theodora", "Jasper", "Araminta", "Cornelius", "Philippa", "Tobias"]
COLOURS = ["crimson", "emerald", "ochre", "violet", "turquoise", "scarlet", "amber", "indigo", "silver",
           "saffron yellow", "pale blue", "dark green"]


def ensure_packages():
    os.makedirs(CACHE, exist_ok=True)
    missing = [p for p, f in PACKAGES.items() if not os.path.exists(os.path.join(CACHE, f))]
    if missing:
        subprocess.run(["apt-get", "download"] + [f"{p}={PACKAGES[p].split('_')[1]}" for p in missing],
                       cwd=CACHE, check=True)
    x = os.path.join(CACHE, "x")
    for f in PACKAGES.values():
        subprocess.run(["dpkg-deb", "-x", os.path.join(CACHE, f), x], check=True)
    return x


def unwrap(lines):
    """Hard-wrapped lines -> paragraphs (joined with one space), paragraphs separated by a blank line."""
    paras, cur = [], []
    for line in lines:
        line = (line or "").strip()
        if line:
            cur.append(line)
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def group(units, target=TARGET_CHARS, min_last=MIN_LAST_CHARS):
    """units: list of (label, text). Greedy runs of whole units of about `target` characters."""
    parts, cur = [], []
    for u in units:
        cur.append(u)
        if sum(len(t) for _, t in cur) >= target:
            parts.append(cur)
            cur = []
    if cur:
        if parts and sum(len(t) for _, t in cur) < min_last:
            parts[-1] += cur
        else:
            parts.append(cur)
    return parts


def austen_docs(x):
    d = os.path.join(x, "usr/lib/R/site-library/janeaustenr/data")
    books = rdata.read_lazyload(os.path.join(d, "Rdata.rdx"), os.path.join(d, "Rdata.rdb"))
    head_re = re.compile(r"^\s*(CHAPTER|Chapter)\s+([0-9]+|[IVXLC]+)\.?\s*$")
    docs = []
    for var, prefix, title in NOVELS:
        lines = books[var]
        starts = [i for i, l in enumerate(lines) if head_re.match(l or "")]
        chapters = []
        for n, s in enumerate(starts):
            e = starts[n + 1] if n + 1 < len(starts) else len(lines)
            # a VOLUME heading just before the next chapter belongs to the next chapter
            body = lines[s:e]
            while body and (not (body[-1] or "").strip() or re.match(r"^\s*VOLUME\s+[IVX]+\s*$", body[-1] or "")):
                body = body[:-1]
            pre = []
            j = s - 1
            while j >= 0 and not (lines[j] or "").strip():
                j -= 1
            if n > 0 and j >= 0 and re.match(r"^\s*VOLUME\s+[IVX]+\s*$", lines[j] or ""):
                pre = [lines[j], ""]
            chapters.append((n + 1, "\n\n".join(unwrap(pre + body))))
        front = "\n\n".join(unwrap(lines[:starts[0]]))
        if chapters:
            chapters[0] = (1, front + "\n\n" + chapters[0][1])
        for k, part in enumerate(group(chapters)):
            a, b = part[0][0], part[-1][0]
            docs.append({
                "id": f"{prefix}-{k + 1:02d}",
                "title": f"{title}, chapter {a}" if a == b else f"{title}, chapters {a}-{b}",
                "source_package": "r-cran-janeaustenr 1.0.0-1 (Debian bookworm)",
                "licence": AUSTEN_LICENCE,
                "text": "\n\n".join(t for _, t in part) + "\n",
            })
    return docs


def devil_docs(x):
    raw = gzip.open(os.path.join(x, "usr/share/dictd/devil.dict.dz"), "rt", encoding="latin-1").read()
    lines = raw.split("\n")
    # drop the dictd header entries (00-database-*) and the final alphabet line
    start = next(i for i, l in enumerate(lines) if "THE DEVIL'S DICTIONARY" in l) - 2
    lines = lines[start:]
    while lines and (not lines[-1].strip() or lines[-1].strip() == "abcdefghijklmnopqrstuvwxyz"):
        lines.pop()
    text = "\n".join(l.rstrip() for l in lines)
    blocks = re.split(r"\n\s*\n", text)
    entry_re = re.compile(r"^([A-Z][A-Z'\- ]*[A-Z])(,| ,|\.)")
    units, cur_letter, cur = [], "front matter", []
    for b in blocks:
        m = entry_re.match(b)
        letter = m.group(1)[0] if m and not b.startswith(" ") else None
        if letter and letter != cur_letter and cur:
            units.append((cur_letter, "\n\n".join(cur)))
            cur = []
        if letter:
            cur_letter = letter
        cur.append(b)
    units.append((cur_letter, "\n\n".join(cur)))
    docs = []
    for k, part in enumerate(group(units, target=TARGET_CHARS, min_last=12000)):
        letters = [l for l, _ in part if len(l) == 1]
        span = f"{letters[0]}-{letters[-1]}" if letters and letters[0] != letters[-1] else (letters[0] if letters else "")
        title = "The Devil's Dictionary" + (f", preface and {span}" if part[0][0] == "front matter" else f", {span}")
        docs.append({
            "id": f"devil-{k + 1:02d}",
            "title": title,
            "source_package": "dict-devil 1.0-13.1 (Debian bookworm)",
            "licence": DEVIL_LICENCE,
            "text": "\n\n".join(t for _, t in part) + "\n",
        })
    return docs


def jargon_docs(x):
    raw = gzip.open(os.path.join(x, "usr/share/doc/jargon-text/jargon.txt.gz"), "rt", encoding="utf-8").read().replace("\u00a0", " ")
    lines = [l.rstrip() for l in raw.split("\n")]
    ch1 = next(i for i, l in enumerate(lines) if l.startswith("Chapter 1."))
    gl = next(i for i, l in enumerate(lines) if l == "Glossary")
    appa = next(i for i, l in enumerate(lines) if l.startswith("Appendix A."))

    def dedent(ls):
        return "\n".join(l[3:] if l.startswith("   ") else l for l in ls).strip("\n")

    units = []
    # front chapters 1-12
    heads = [i for i in range(ch1, gl) if re.match(r"^Chapter \d+\.", lines[i])] + [gl]
    for a, b in zip(heads, heads[1:]):
        units.append((lines[a], dedent(lines[a:b])))
    front = group(units, target=TARGET_CHARS, min_last=10000)
    # lexicon: letter sections "  A" ... each with a headword list, then entries starting "   :word:"
    letter_re = re.compile(r"^  ([0-9A-Z])$")
    marks = [i for i in range(gl, appa) if letter_re.match(lines[i])] + [appa]
    lex = []
    first = gl
    for a, b in zip(marks, marks[1:]):
        sec = lines[a + 1:b]
        k = next((i for i, l in enumerate(sec) if l.startswith("   :")), None)
        if k is None:
            continue
        lex.append((letter_re.match(lines[a]).group(1), dedent(sec[k:])))
    # the entries before the first letter mark (0-9 and symbols) belong to "0"
    pre = lines[first + 1:marks[0]]
    k = next((i for i, l in enumerate(pre) if l.startswith("   :")), None)
    if k is not None:
        lex.insert(0, ("0", dedent(pre[k:])))
    # split long letter sections at entry boundaries (entries start with ":headword:")
    split = []
    for letter, text in lex:
        entries = re.split(r"\n\n(?=:)", text)
        chunks, cur = [], []
        for e in entries:
            cur.append(e)
            if sum(len(c) for c in cur) >= TARGET_CHARS:
                chunks.append(cur)
                cur = []
        if cur:
            if chunks and sum(len(c) for c in cur) < MIN_LAST_CHARS:
                chunks[-1] += cur
            else:
                chunks.append(cur)
        for i, c in enumerate(chunks):
            split.append((letter if len(chunks) == 1 else f"{letter} (part {i + 1} of {len(chunks)})",
                          "\n\n".join(c)))
    lex = split
    lexicon = group(lex, target=TARGET_CHARS, min_last=12000)
    # appendices + bibliography
    app_heads = [i for i in range(appa, len(lines)) if re.match(r"^(Appendix [A-C]\.|Bibliography$)", lines[i])]
    apps = [(lines[a], dedent(lines[a:b])) for a, b in zip(app_heads, app_heads[1:] + [len(lines)])]
    appendix = group(apps, target=TARGET_CHARS, min_last=10000)

    docs = []
    for part in front:
        docs.append(("The Jargon File, " + ("; ".join(h for h, _ in part) if len(part) <= 2
                                            else f"{part[0][0]} to {part[-1][0]}"), part))
    for part in lexicon:
        a, b = part[0][0], part[-1][0]
        docs.append((f"The Jargon File, lexicon {a}" + (f" to {b}" if a != b else ""), part))
    for part in appendix:
        docs.append(("The Jargon File, " + "; ".join(h for h, _ in part), part))
    out = []
    for k, (title, part) in enumerate(docs):
        out.append({
            "id": f"jargon-{k + 1:02d}",
            "title": title,
            "source_package": "jargon-text 4.4.7-4.1 (Debian bookworm)",
            "licence": JARGON_LICENCE,
            "text": "\n\n".join(t for _, t in part) + "\n",
        })
    return out


SENT_BOUNDARY = re.compile(r"(?<=[a-z]{2}[.!?])  ?(?=[A-Z][a-z])")
ABBREV = {"Mr.", "Mrs.", "Dr.", "St.", "Messrs.", "Esq.", "Col.", "Capt.", "Rev.", "etc.", "viz.", "Jr.", "Sr.",
          "vs.", "Co.", "Ltd.", "Ph.D.", "e.g.", "i.e.", "adj.", "adv.", "prep.", "conj.", "interj.", "pron.",
          "pl.", "obs."}


def good_boundary(text, pos):
    """Between two sentences of running prose: not after an abbreviation, not inside a quotation."""
    word = text[max(0, text.rfind(" ", 0, pos) + 1):pos]
    if word in ABBREV or not word[:-1].isalpha():
        return False
    para_start = max(text.rfind("\n\n", 0, pos), 0)
    return text.count('"', para_start, pos) % 2 == 0


def plant(docs, rng):
    """Plants FACTS; returns the question records."""
    by_prefix = {}
    for d in docs:
        by_prefix.setdefault(d["id"].rsplit("-", 1)[0], []).append(d)
    used_values = set()
    chosen_docs = {}
    records = []
    for prefix, tmpl, question, kind in FACTS:
        cands = by_prefix[prefix]
        # keep facts of one book in few documents (several facts per document): reuse a chosen one 60% of the time
        prev = chosen_docs.get(prefix, [])
        if prev and rng.random() < 0.6:
            doc = rng.choice(prev)
        else:
            doc = rng.choice([c for c in cands if c not in prev] or cands)
            chosen_docs.setdefault(prefix, []).append(doc)
        while True:
            if kind == "num":
                v = str(rng.randint(10000, 99999))
            elif kind == "word":
                v = rng.choice(WORDS)
            elif kind == "name":
                v = rng.choice(NAMES)
            else:
                v = rng.choice(COLOURS)
            if (kind, v) not in used_values:
                used_values.add((kind, v))
                break
        sentence = tmpl.format(v=v)
        text = doc["text"]
        bounds = [m.start() for m in SENT_BOUNDARY.finditer(text) if good_boundary(text, m.start())]
        depth = rng.uniform(0.05, 0.95)
        pos = min(bounds, key=lambda b: abs(b - depth * len(text)))
        doc["text"] = text[:pos] + " " + sentence + text[pos:]
        records.append({"question": question, "answer": v, "answer_sentence": sentence, "kind": kind,
                        "doc_ids": [doc["id"]], "depth": round(pos / len(text), 4)})
    # offsets after all insertions
    index = {d["id"]: d for d in docs}
    for r in records:
        t = index[r["doc_ids"][0]]["text"]
        off = t.find(r["answer_sentence"])
        assert off >= 0 and t.count(r["answer_sentence"]) == 1
        r["char_offset"] = off
    return records


KEEP_PARTS = {"jargon": 3, "devil": 1}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default="", help="tokenizer.json to count tokens with (optional)")
    args = ap.parse_args()
    x = ensure_packages()
    docs = austen_docs(x) + devil_docs(x) + jargon_docs(x)
    rng = random.Random(SEED)
    questions = plant(docs, rng)
    # The repository keeps its tracked files under 30 MB: of the Jargon File and the Devil's Dictionary
    # only the parts that hold a planted fact and the first few are kept (after planting, so the facts
    # do not change).
    asked = {i for q in questions for i in q["doc_ids"]}
    docs = [d for d in docs if d["id"].startswith("austen-") or d["id"] in asked
            or int(d["id"].split("-")[1]) <= KEEP_PARTS[d["id"].split("-")[0]]]
    tok = None
    if args.tokenizer:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(args.tokenizer)
    ddir = os.path.join(OUT, "documents")
    os.makedirs(ddir, exist_ok=True)
    for f in glob.glob(os.path.join(ddir, "*.txt")):
        os.remove(f)
    manifest = []
    total = 0
    for d in docs:
        path = os.path.join(ddir, d["id"] + ".txt")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(d["text"])
        entry = {"id": d["id"], "title": d["title"], "file": f"documents/{d['id']}.txt",
                 "source_package": d["source_package"], "licence": d["licence"], "characters": len(d["text"]),
                 "bytes": len(d["text"].encode("utf-8"))}
        if tok is not None:
            entry["tokens_mistral"] = len(tok.encode(d["text"], add_special_tokens=False).ids)
        manifest.append(entry)
        total += entry["bytes"]
    meta = {"seed": SEED, "generator": "tools/extract_demo_corpus.py", "documents": len(docs), "bytes": total,
            "facts_per_document": "see questions.json (doc_ids, char_offset = character offset of the answer "
                                  "sentence in the UTF-8 text as a Python str index, i.e. in Unicode code points)"}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"meta": meta, "documents": manifest}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for i, q in enumerate(questions):
        q["id"] = f"q{i + 1:02d}"
    with open(os.path.join(OUT, "questions.json"), "w") as f:
        json.dump({"seed": SEED,
                   "system": "Answer the question from the documents. Quote the sentence that answers it.",
                   "scoring": "correct iff the answer value appears in the generated text (case-insensitive); "
                              "exact when the generated text equals answer_sentence",
                   "questions": [{k: q[k] for k in ("id", "question", "answer", "answer_sentence", "doc_ids",
                                                    "char_offset", "depth", "kind")} for q in questions]},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(docs)} documents, {total / 1e6:.2f} MB, {len(questions)} questions")


if __name__ == "__main__":
    main()
