"""Plain Wikipedia demo: article text in ``20231101.en/train-XXXXX-of-YYYYY.parquet``.

Imitates wikimedia/wikipedia: rows with ``id``, ``url``, ``title`` and ``text`` (the abstract, then
each section's heading and paragraphs; no infobox). The articles are an overlapping range of
structured Wikipedia's entities (plus a few it lacks), as in the study's corpus, where many
articles come in both representations.
"""

from __future__ import annotations

import random

from trellis.acquire.demo.common import _distribute, _file_names
from trellis.acquire.demo.wiki_entities import _entity, _slug


def gen_wikipedia(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    # Start partway into the entity list: with structured Wikipedia at least as large (as in the
    # config), most plain articles are also structured ones (the study's dual-representation
    # overlap) and the last few are not.
    offset = max(1, n_docs // 2)
    docs = []
    for i in range(offset, offset + n_docs):
        e = _entity(seed, i)
        body = [e["abstract"]]
        for heading, paras in e["sections"].items():
            body.append(heading + "\n\n" + " ".join(paras))
        docs.append(
            {
                "id": str(e["identifier"]),
                "url": f"https://en.wikipedia.org/wiki/{_slug(e['name'])}",
                "title": e["name"],
                "text": "\n\n".join(body),
            }
        )
    return dict(zip(_file_names("20231101.en/", n_files, ".parquet"), _distribute(rng, docs, n_files)))
