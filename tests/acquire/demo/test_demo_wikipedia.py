"""trellis.acquire.demo.structured_wikipedia and .wikipedia: real nesting, overlapping entities."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def test_structured_wikipedia_nests_infoboxes_and_sections_as_the_dataset_does():
    wiki = dc.generate_rows("structured_wikipedia", 12, 1, 2, TOPICS)
    row = next(iter(wiki.values()))[0]
    # The Parquet release stores both trees as JSON strings.
    assert isinstance(row["infoboxes"], str) and isinstance(row["sections"], str)
    row = dict(row, infoboxes=json.loads(row["infoboxes"]), sections=json.loads(row["sections"]))
    infobox = row["infoboxes"][0]
    assert infobox["type"] == "infobox"
    section = infobox["has_parts"][0]
    assert section["type"] == "section" and section["has_parts"][0]["type"] == "field"
    assert {"name", "value"} <= set(section["has_parts"][0])
    assert any(p["type"] == "paragraph" for s in row["sections"] for p in s["has_parts"])


def test_wikipedia_sources_overlap_on_entities():
    structured = {
        r["name"]
        for rows in dc.generate_rows("structured_wikipedia", 60, 1, 4, TOPICS).values()
        for r in rows
    }
    plain = {r["title"] for rows in dc.generate_rows("wikipedia", 45, 1, 4, TOPICS).values() for r in rows}
    overlap = structured & plain
    assert 0.3 * len(plain) < len(overlap) < len(plain)
