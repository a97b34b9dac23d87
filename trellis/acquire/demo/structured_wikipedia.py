"""Structured Wikipedia demo: articles as JSON lines in ``20240916.en/enwiki_namespace_0_N.jsonl``.

Imitates wikimedia/structured-wikipedia: rows with ``name``, ``identifier``, ``abstract``,
``date_modified``, ``version``, ``url``, ``main_entity``, ``in_language``, ``description``, nested
``sections`` (a section holds paragraphs and subsections) and ``infoboxes`` (infobox, then
sections, then name/value fields). Normalizing turns the infoboxes into JSON inside the article
text (the study's text-to-structure signal), so the demo reproduces the real nesting rather than a
simplified shape.
"""

from __future__ import annotations

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
                "sections": sections,
                "infoboxes": infoboxes,
            }
        )
    return dict(
        zip(
            [f"20240916.en/enwiki_namespace_0_{i}.jsonl" for i in range(n_files)],
            _distribute(rng, docs, n_files),
        )
    )
