"""trellis.acquire.demo.text_to_sql: schema/question/query triples."""

from __future__ import annotations

from pathlib import Path

import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def test_rows_pair_a_create_table_schema_with_a_select():
    sql = [r for rows in dc.generate_rows("text_to_sql", 20, 1, 2, TOPICS).values() for r in rows]
    assert all(r["schema"].startswith("CREATE TABLE") and r["query"].startswith("SELECT") for r in sql)
