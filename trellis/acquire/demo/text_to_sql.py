"""Text-to-SQL demo: schema/question/query triples in ``data/train-XXXXX-of-YYYYY.parquet``.

Imitates trl-lab/SQaLe-text-to-SQL-dataset: rows with ``schema`` (``CREATE TABLE`` statements),
``question`` (natural language) and ``query`` (the SQL that answers it: a filtered count, a
grouped average, a join over a second table, or a top-k by id), each query consistent with its
schema.
"""

from __future__ import annotations

import random

from trellis.acquire.demo.common import _distribute, _fields, _file_names
from trellis.acquire.demo.vocab import ENTITIES


def gen_text_to_sql(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    docs = []
    for _ in range(n_docs):
        ent = rng.choice(ENTITIES)
        other = rng.choice([e for e in ENTITIES if e != ent])
        fields = _fields(rng, 4, 7)
        cols = ", ".join(f"{f} {sql}{' PRIMARY KEY' if f == 'id' else ''}" for f, _, sql, _ in fields)
        schema = f"CREATE TABLE {ent}s ({cols});"
        numeric = [f for f, t, _, _ in fields if t in ("int", "float") and f != "id"]
        texty = [f for f, t, _, _ in fields if t == "str"]
        kind = rng.randrange(4)
        if kind == 0 and numeric:
            col, v = rng.choice(numeric), rng.randint(1, 500)
            question, query = (
                f"How many {ent}s have a {col.replace('_', ' ')} greater than {v}?",
                f"SELECT COUNT(*) FROM {ent}s WHERE {col} > {v};",
            )
        elif kind == 1 and numeric and texty:
            col, grp = rng.choice(numeric), rng.choice(texty)
            question, query = (
                f"What is the average {col.replace('_', ' ')} of {ent}s for each {grp.replace('_', ' ')}?",
                f"SELECT {grp}, AVG({col}) FROM {ent}s GROUP BY {grp};",
            )
        elif kind == 2:
            schema += (
                f"\nCREATE TABLE {other}s (id INTEGER PRIMARY KEY, {ent}_id INTEGER REFERENCES "
                f"{ent}s(id), label VARCHAR(80));"
            )
            question, query = (
                f"List each {ent} id with the number of {other}s it has.",
                f"SELECT e.id, COUNT(o.id) AS n_{other}s FROM {ent}s e LEFT JOIN {other}s o ON o.{ent}_id = "
                "e.id GROUP BY e.id;",
            )
        else:
            col = rng.choice([f for f, *_ in fields])
            k = rng.randint(1, 10)
            question, query = (
                f"Show the {k} most recent {ent}s by id, with their {col.replace('_', ' ')}.",
                f"SELECT id, {col} FROM {ent}s ORDER BY id DESC LIMIT {k};",
            )
        docs.append({"schema": schema, "question": question, "query": query})
    return dict(zip(_file_names("data/", n_files, ".parquet"), _distribute(rng, docs, n_files)))
