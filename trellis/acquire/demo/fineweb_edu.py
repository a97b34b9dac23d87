"""FineWeb-Edu demo: educational web pages in ``data/<dump>/train-XXXXX-of-YYYYY.parquet``.

Imitates HuggingFaceFW/fineweb-edu: one directory per Common Crawl dump, rows with ``text``,
``id`` (``<urn:uuid:...>``), ``dump``, ``url``, ``file_path`` (the WARC it came from),
``language``, ``language_score``, ``token_count`` and the educational ``score``/``int_score``.

Documents span the configured topics with the skewed shares of the real crawl (education,
health and business common; CS, math and ML rare), about 30% mix two or three related topics, and
each is written at one of four complexity levels, so the topic and level classifiers have a
realistic task. About 5% are near-duplicates and 1% exact duplicates of another document, always
in another file, so dedup has to work across parts.
"""

from __future__ import annotations

import random

from trellis.acquire.demo.common import (
    _distribute,
    _file_names,
    _plant_copies,
    _sentence,
    _split_counts,
    _topic_terms,
    _uuid,
    _word,
)
from trellis.acquire.demo.vocab import DUMPS, LEVELS, TLDS

# Shares of documents per topic, shaped like the study's classified FineWeb-Edu sample: the
# STEM-core topics (CS, math, ML) are rare (~7%) and education/health/business dominate. Topics
# the config adds beyond these get DEFAULT_TOPIC_SHARE.
TOPIC_SHARES = {
    "education": 0.16,
    "medicine_health": 0.14,
    "business_economics": 0.12,
    "history": 0.08,
    "social_sciences": 0.07,
    "practical_skills": 0.07,
    "biology": 0.06,
    "earth_environment": 0.05,
    "arts_literature": 0.05,
    "law_government": 0.04,
    "philosophy_religion": 0.03,
    "physics": 0.03,
    "chemistry": 0.03,
    "engineering": 0.03,
    "computer_science": 0.03,
    "mathematics": 0.025,
    "machine_learning_ai": 0.02,
}
DEFAULT_TOPIC_SHARE = 0.04

# Topics that co-occur in real documents; a multi-topic document prefers a related second topic.
RELATED_TOPICS = {
    "machine_learning_ai": ["computer_science", "mathematics"],
    "computer_science": ["machine_learning_ai", "mathematics", "engineering"],
    "mathematics": ["physics", "computer_science", "education"],
    "physics": ["mathematics", "engineering", "chemistry"],
    "chemistry": ["biology", "physics", "medicine_health"],
    "biology": ["medicine_health", "chemistry", "earth_environment"],
    "medicine_health": ["biology", "social_sciences", "practical_skills"],
    "earth_environment": ["biology", "business_economics", "law_government"],
    "engineering": ["physics", "computer_science", "business_economics"],
    "business_economics": ["law_government", "social_sciences", "computer_science"],
    "education": ["social_sciences", "mathematics", "arts_literature"],
    "history": ["law_government", "philosophy_religion", "arts_literature"],
    "social_sciences": ["education", "business_economics", "history"],
    "philosophy_religion": ["history", "arts_literature", "social_sciences"],
    "arts_literature": ["history", "education", "philosophy_religion"],
    "law_government": ["history", "business_economics", "social_sciences"],
    "practical_skills": ["medicine_health", "business_economics", "earth_environment"],
}

# Real FineWeb-Edu sits mostly at levels 2-3.
LEVEL_WEIGHTS = (0.2, 0.35, 0.3, 0.15)


def _web_document(rng: random.Random, level: int, doc_topics: list[dict]) -> str:
    spec = LEVELS[level]
    primary = _topic_terms(doc_topics[0])
    title_term = rng.choice(primary)
    title = rng.choice(
        [
            "Understanding {t}",
            "A Guide to {t}",
            "What You Should Know About {t}",
            "{t}: An Overview",
            "Notes on {t}",
            "How {t} Works",
        ]
    )
    paragraphs = [title.format(t=title_term.title())]
    n_par = rng.randint(*spec["paragraphs"])
    for p in range(n_par):
        # The primary topic owns most paragraphs; secondary topics get their own paragraphs so a
        # multi-topic document genuinely discusses each topic.
        topic = (
            doc_topics[0]
            if p == 0 or len(doc_topics) == 1 or rng.random() < 0.55
            else rng.choice(doc_topics[1:])
        )
        terms = _topic_terms(topic)
        sentences = [_sentence(rng, level, terms) for _ in range(rng.randint(*spec["sentences"]))]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def _pick_topics(rng: random.Random, topics: list[dict]) -> list[dict]:
    by_name = {t["name"]: t for t in topics}
    weights = [TOPIC_SHARES.get(t["name"], DEFAULT_TOPIC_SHARE) for t in topics]
    chosen = [rng.choices(topics, weights=weights)[0]]
    r = rng.random()
    n_extra = 2 if r < 0.06 else 1 if r < 0.3 else 0
    for _ in range(n_extra):
        related = [by_name[n] for n in RELATED_TOPICS.get(chosen[-1]["name"], []) if n in by_name]
        pool = [t for t in (related if related and rng.random() < 0.8 else topics) if t not in chosen]
        if pool:
            chosen.append(rng.choice(pool))
    return chosen


def _fineweb_retag(rng: random.Random, doc: dict) -> dict:
    doc["id"] = f"<urn:uuid:{_uuid(rng)}>"
    doc["url"] = doc["url"] + rng.choice(["?ref=feed", "?page=1", "#main", "?amp=1"])
    return doc


def gen_fineweb_edu(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    if not topics:
        raise ValueError("fineweb_edu demo needs the topic list (config labels.topics)")
    files = _file_layout_dumps(n_files)
    docs = []
    n_near, n_exact = int(n_docs * 0.05), int(n_docs * 0.01)
    n_orig = n_docs - n_near - n_exact
    for _ in range(max(n_orig, 1)):
        level = rng.choices((1, 2, 3, 4), weights=LEVEL_WEIGHTS)[0]
        doc_topics = _pick_topics(rng, topics)
        text = _web_document(rng, level, doc_topics)
        score = min(5.0, max(2.5, 2.3 + 0.45 * level + rng.gauss(0, 0.35)))
        domain = f"{_word(rng)}{rng.choice(['learning', 'health', 'news', 'guide', 'hub', 'academy', ''])}"
        docs.append(
            {
                "text": text,
                "id": f"<urn:uuid:{_uuid(rng)}>",
                "url": f"https://www.{domain}.{rng.choice(TLDS)}/{'-'.join(text.split(chr(10))[0].lower().split()[:6])}",
                "language": "en",
                "language_score": round(rng.uniform(0.86, 0.99), 6),
                "token_count": int(len(text.split()) * 1.3),
                "score": round(score, 6),
                "int_score": int(round(score)),
                "_planted": "original",
                "_level": level,
                "_topics": [t["name"] for t in doc_topics],
            }
        )
    _plant_copies(rng, docs, n_files, n_near, n_exact, "text", _fineweb_retag)
    out = {}
    for rel, rows in zip(files, _distribute(rng, docs, n_files)):
        dump = rel.split("/")[1]
        for row in rows:
            row["dump"] = dump
            row["file_path"] = (
                f"s3://commoncrawl/crawl-data/{dump}/segments/"
                f"{rng.randint(1700000000000, 1709999999999)}.{rng.randint(10, 99)}"
                f"/warc/{dump}-{rng.randint(20231101000000, 20240430235959)}"
                f"-{rng.randint(0, 899):05d}.warc.gz"
            )
        out[rel] = rows
    return out


def _file_layout_dumps(n_files: int) -> list[str]:
    # As on the hub: data/<dump>/train-XXXXX-of-YYYYY.parquet; dumps sort in file order, so the
    # k-th file in this list is also the k-th file in sorted order.
    n_dumps = min(n_files, len(DUMPS))
    names = []
    for d, count in enumerate(_split_counts(n_files, n_dumps)):
        names += _file_names(f"data/{DUMPS[d]}/", count, ".parquet")
    return names
