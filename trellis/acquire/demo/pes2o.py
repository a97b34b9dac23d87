"""peS2o demo: academic papers as gzipped JSON lines in ``data/v2/train-XXXXX-of-YYYYY.json.gz``.

Imitates allenai/peS2o v2 (file names as its loading script lists them for v1,
``data/v1/train-00000-of-00020.json.gz``): rows with ``added``, ``created``, ``id``, ``source``
(``s2orc`` for full text, ``s2ag`` for title and abstract, the two collections its card names; half
each), ``text`` and ``version``. Like
the real rows they carry no field of study, so the study's CS/math/ML subset has to be found from
the text (``sources.pes2o.subject_filter``): papers are written on seven topics, three of them the
subset's, in the densest (level 3-4) prose.
"""

from __future__ import annotations

import random

from trellis.acquire.demo.common import _distribute, _sentence, _topic_terms

PAPER_TOPICS = (
    "computer_science",
    "mathematics",
    "machine_learning_ai",
    "physics",
    "biology",
    "medicine_health",
    "chemistry",
)


def gen_pes2o(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    by_name = {t["name"]: t for t in topics}
    pool = [by_name.get(name, {"name": name, "keywords": []}) for name in PAPER_TOPICS]
    docs = []
    for _ in range(n_docs):
        topic = rng.choice(pool)
        terms = _topic_terms(topic)
        title = (
            f"{rng.choice(['On', 'Towards', 'Revisiting', 'Learning', 'A Study of'])} "
            f"{rng.choice(terms).title()} and {rng.choice(terms).title()}"
        )
        abstract = " ".join(_sentence(rng, 4, terms) for _ in range(rng.randint(3, 5)))
        full = rng.random() < 0.5
        body = [title, abstract]
        if full:
            for section in ("1 Introduction", "2 Related Work", "3 Method", "4 Results"):
                body.append(
                    section
                    + "\n"
                    + " ".join(_sentence(rng, rng.choice((3, 4)), terms) for _ in range(rng.randint(3, 5)))
                )
        year = rng.randint(1995, 2023)
        docs.append(
            {
                "added": f"{rng.randint(2022, 2023)}-{rng.randint(1, 12):02d}"
                f"-{rng.randint(1, 28):02d}T00:00:00.000Z",
                "created": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z",
                "id": str(rng.randint(10_000_000, 260_000_000)),
                "source": "s2orc" if full else "s2ag",
                "text": "\n\n".join(body),
                "version": "v2",
            }
        )
    return dict(
        zip(
            [f"data/v2/train-{i:05d}-of-{n_files:05d}.json.gz" for i in range(n_files)],
            _distribute(rng, docs, n_files),
        )
    )
