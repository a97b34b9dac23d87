"""SQL files for the StarCoderData demo's ``sql/`` directory.

Kinds, as found in the real dump: DDL for two related tables with an index, a reporting query,
seed ``INSERT`` statements, and a generated Flyway migration that repeats one ``ALTER TABLE``
hundreds of times (below the compression pre-filter's ratio).
"""

from __future__ import annotations

from trellis.acquire.demo.common import _fields, _word
from trellis.acquire.demo.vocab import ENTITIES


def _sql_ddl(rng, ent):
    fields = _fields(rng)
    cols = ",\n".join(
        f"    {f} {sql}{' PRIMARY KEY' if f == 'id' else ' NOT NULL' if rng.random() < 0.4 else ''}"
        for f, _, sql, _ in fields
    )
    other = rng.choice([e for e in ENTITIES if e != ent])
    text = (
        f"-- Schema for {ent}s and their {other}s.\nCREATE TABLE {ent}s (\n{cols}\n);\n\nCREATE TABLE "
        f"{other}s (\n    id INTEGER PRIMARY KEY,\n    {ent}_id INTEGER NOT NULL REFERENCES {ent}s(id),\n   "
        f" label VARCHAR(80)\n);\n\nCREATE INDEX idx_{other}s_{ent} ON {other}s ({ent}_id);\n"
    )
    return f"db/schema/{ent}s.sql", text


def _sql_query(rng, ent):
    col = rng.choice(["amount", "score", "quantity"])
    text = (
        f"-- Monthly {col} per status, most recent first.\nSELECT date_trunc('month', created_at) AS "
        f"month,\n       status,\n       COUNT(*) AS n,\n       AVG({col}) AS avg_{col}\nFROM {ent}s\nWHERE "
        f"created_at >= DATE '{rng.randint(2015, 2023)}-01-01'\nGROUP BY 1, 2\nHAVING COUNT(*) > "
        f"{rng.randint(1, 50)}\nORDER BY month DESC, n DESC;\n"
    )
    return f"reports/{ent}_{col}_by_month.sql", text


def _sql_inserts(rng, ent):
    rows = ",\n".join(
        f"    ({i + 1}, '{_word(rng)}', {round(rng.uniform(1, 900), 2)}, "
        f"'{rng.choice(['active', 'pending', 'archived'])}')"
        for i in range(rng.randint(5, 15))
    )
    return f"db/seed/{ent}s.sql", f"INSERT INTO {ent}s (id, name, amount, status) VALUES\n{rows};\n"


def _sql_migration(rng, ent):
    n = rng.randint(200, 320)
    body = "".join(
        f"ALTER TABLE {ent}s ADD COLUMN attribute_{i} VARCHAR(255) DEFAULT NULL;\nCOMMENT ON COLUMN "
        f"{ent}s.attribute_{i} IS 'generated attribute column';\n"
        for i in range(n)
    )
    return (
        f"db/migrations/V{rng.randint(100, 999)}__add_{ent}_attributes.sql",
        "-- Flyway migration, generated. Do not edit.\nBEGIN;\n" + body + "COMMIT;\n",
    )
