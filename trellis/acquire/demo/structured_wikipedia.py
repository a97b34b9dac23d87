"""Structured Wikipedia demo: Parquet files ``enwiki/data/enwiki_namespace_0_N.parquet``.

Imitates wikimedia/structured-wikipedia as the hub ships it now (the Parquet release; the older
``20240916.en/`` folder holds a single 17.9 GB zip): rows with ``name``, ``identifier`` (int64),
``abstract``, ``date_modified``, ``version``, ``url``, ``main_entity``, ``in_language``,
``description``, and ``sections`` and ``infoboxes`` as JSON-encoded strings, each holding the
recursive node tree (a section holds paragraphs and subsections; an infobox holds sections, then
name/value fields). Parquet cannot hold that recursion as a nested type, which is why the release
stores those two columns as JSON text, and why the demo does too: normalizing has to decode them
before turning the infoboxes into JSON inside the article text (the study's text-to-structure
signal).
"""

from __future__ import annotations

import json
import random

from trellis.acquire.demo.common import _distribute
from trellis.acquire.demo.wiki_entities import _entity, _slug


def gen_structured_wikipedia(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    docs = []
    for i in range(n_docs):
        e = _entity(seed, i)
        sections = [
            {
                "type": "section",
                "name": "Abstract",
                "has_parts": [{"type": "paragraph", "value": e["abstract"]}],
            }
        ]
        for heading, paras in e["sections"].items():
            parts: list[dict] = [{"type": "paragraph", "value": p} for p in paras]
            if rng.random() < 0.3:
                parts.append(
                    {
                        "type": "section",
                        "name": f"{heading} details",
                        "has_parts": [
                            {
                                "type": "paragraph",
                                "value": f"Further details on the {heading.lower()} of {e['name']} are "
                                "disputed.",
                            }
                        ],
                    }
                )
            sections.append({"type": "section", "name": heading, "has_parts": parts})
        sections.append({"type": "section", "name": "References", "has_parts": []})
        infoboxes = [
            {
                "name": f"Infobox {e['kind'].replace('_', ' ')}",
                "type": "infobox",
                "has_parts": [
                    {
                        "type": "section",
                        **({"name": sec} if j else {}),
                        "has_parts": [{"type": "field", "name": k, "value": v} for k, v in flds.items()],
                    }
                    for j, (sec, flds) in enumerate(e["fields"].items())
                ],
            }
        ]
        docs.append(
            {
                "name": e["name"],
                "identifier": e["identifier"],
                "abstract": e["abstract"],
                "date_modified": f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T12:00:00Z",
                "version": {"identifier": rng.randint(10**9, 2 * 10**9)},
                "url": f"https://en.wikipedia.org/wiki/{_slug(e['name'])}",
                "main_entity": {"identifier": e["qid"], "url": f"https://www.wikidata.org/entity/{e['qid']}"},
                "in_language": {"identifier": "en"},
                "description": e["kind"].replace("_", " "),
                # As the release stores them: one JSON string per row and column.
                "sections": json.dumps(sections, ensure_ascii=False),
                "infoboxes": json.dumps(infoboxes, ensure_ascii=False),
            }
        )
    return dict(
        zip(
            [f"enwiki/data/enwiki_namespace_0_{i}.parquet" for i in range(n_files)],
            _distribute(rng, docs, n_files),
        )
    )
