"""Helpers every demo generator shares: seeded randomness, made-up names, file layout, prose.

- ``source_rng`` is where every random choice comes from: a string seed, hashed with SHA-512 by
  ``random.seed``, so a source's stream is the same on every machine and run.
- ``_distribute`` and ``_plant_copies`` decide which native file a row goes to. A planted near- or
  exact duplicate always lands in a different file than its original, because the study's dedup
  has to find duplicates across parts, not only within one.
- ``_sentence`` writes one sentence at one of four complexity levels from a topic's terms: the
  1-4 complexity the study's classifier scores and selection thresholds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from trellis.acquire.demo.vocab import FIELD_TYPES, GENERIC_NOUNS, LEVELS, SYLLABLES, TOPIC_VOCAB

# ---- seeding and names -----------------------------------------------------------------------


def source_rng(seed: int, source: str, salt: str = "") -> random.Random:
    # A string seed goes through SHA-512 in random.seed (version 2): stable across machines.
    return random.Random(f"trellis-demo:{seed}:{source}:{salt}")


def _word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))


def _name(rng: random.Random) -> str:
    return f"{_word(rng).capitalize()} {_word(rng).capitalize()}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _camel(s: str) -> str:
    return "".join(p.capitalize() for p in s.split("_"))


def _fields(rng: random.Random, lo: int = 3, hi: int = 7) -> list[tuple[str, str, str, str]]:
    rest = rng.sample(FIELD_TYPES[1:], k=rng.randint(lo, hi) - 1)
    return [FIELD_TYPES[0]] + rest


# ---- file layout and planted duplicates ------------------------------------------------------


def _split_counts(total: int, buckets: int) -> list[int]:
    base, extra = divmod(total, buckets)
    return [base + (1 if i < extra else 0) for i in range(buckets)]


def _file_names(prefix: str, n: int, ext: str) -> list[str]:
    return [f"{prefix}train-{i:05d}-of-{n:05d}{ext}" for i in range(n)]


def _distribute(rng: random.Random, docs: list[dict], n_files: int) -> list[list[dict]]:
    """Contiguous split of docs over files, then a per-file shuffle (originals and copies mix)."""
    files = [[] for _ in range(n_files)]
    n_orig = sum(1 for doc in docs if "_file" not in doc)
    for i, doc in enumerate(docs):
        doc["_n"] = i
        if "_file" not in doc:
            doc["_file"] = i * n_files // n_orig
        files[doc["_file"]].append(doc)
    for rows in files:
        rng.shuffle(rows)
    return files


def _plant_copies(
    rng: random.Random,
    docs: list[dict],
    n_files: int,
    n_near: int,
    n_exact: int,
    text_key: str,
    retag: Callable[[random.Random, dict], dict],
) -> None:
    """Append near- and exact duplicates of existing docs, each pinned to a different file.

    A copy goes to the file after its original's (mod n_files), so with as many files as parts
    the pair always straddles two parts and only a cross-part dedup can find it.
    """
    n = len(docs)
    originals = rng.sample(range(n), k=min(n, n_near + n_exact))
    for j, i in enumerate(originals):
        orig = docs[i]
        copy = retag(rng, dict(orig))
        if j < n_near:
            copy[text_key] = _near_edit(rng, orig[text_key])
            copy["_planted"] = "near_duplicate"
        else:
            copy["_planted"] = "exact_duplicate"
        copy["_of"] = i  # the original's position in docs, which _distribute records as _n
        copy["_file"] = (i * n_files // n + 1) % n_files
        docs.append(copy)


def _near_edit(rng: random.Random, text: str) -> str:
    """A light edit (a few word substitutions, maybe a sentence added) that keeps 5-shingle
    Jaccard similarity with the original well above 0.7."""
    words = text.split(" ")
    for _ in range(max(1, len(words) // 120)):
        k = rng.randrange(len(words))
        words[k] = rng.choice(["very", "really", "also", "often", "still", "quite"])
    out = " ".join(words)
    if rng.random() < 0.5:
        out += rng.choice(
            [
                "\n\nShare this page with a friend.",
                "\n\nUpdated last month.",
                "\n\nSee also our other guides.",
            ]
        )
    return out


# ---- prose -----------------------------------------------------------------------------------


def _topic_terms(topic: dict) -> list[str]:
    extra = [t.strip() for t in TOPIC_VOCAB.get(topic["name"], "").split(",") if t.strip()]
    if not extra:
        # A topic the code has no vocabulary for still gets its description's content words.
        extra = [w.strip(".,").lower() for w in topic.get("description", "").split() if len(w) > 4]
    return list(topic.get("keywords", [])) + extra


def _noun_phrase(rng: random.Random, spec: dict, terms: list[str]) -> str:
    if rng.random() < spec["generic"]:
        return rng.choice(GENERIC_NOUNS)
    det = rng.choice(["the", "a", "this", "each", "every", "such a", "one"])
    adj = rng.choice(spec["adjectives"]) + " " if rng.random() < 0.6 else ""
    return f"{det} {adj}{rng.choice(terms)}"


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        year=rng.randint(1850, 2023),
        decade=rng.randrange(1900, 2020, 10),
        pct=rng.randint(3, 60),
        n=rng.randint(12, 4000),
        f=f"{rng.uniform(0.05, 2.5):.2f}",
        p=rng.choice(["1%", "5%", "0.1%"]),
    )


def _sentence(rng: random.Random, level: int, terms: list[str]) -> str:
    spec = LEVELS[level]
    clauses = []
    for _ in range(rng.choice(spec["clauses"])):
        clause = (
            f"{_noun_phrase(rng, spec, terms)} {rng.choice(spec['verbs'])} {_noun_phrase(rng, spec, terms)}"
        )
        clauses.append(clause + _fill(rng, rng.choice(spec["tails"])))
    text = clauses[0]
    for clause in clauses[1:]:
        text += rng.choice(spec["joiners"]) + clause
    opener = rng.choice(spec["openers"])
    text = opener + text if opener else text
    return text[0].upper() + text[1:] + "."
