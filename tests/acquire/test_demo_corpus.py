"""trellis.acquire.demo_corpus: deterministic, native-shaped, and varied enough for every later stage."""

from __future__ import annotations

import gzip
import json
import random
import re
import statistics
import time
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from trellis.acquire import demo_corpus as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]
STEM_CORE = {"computer_science", "mathematics", "machine_learning_ai"}

NATIVE_COLUMNS = {
    "fineweb_edu": {
        "text",
        "id",
        "dump",
        "url",
        "file_path",
        "language",
        "language_score",
        "token_count",
        "score",
        "int_score",
    },
    "starcoderdata": {"max_stars_repo_path", "max_stars_repo_name", "max_stars_count", "id", "content"},
    "finemath": {"url", "text", "score", "int_score", "token_count"},
    "pes2o": {"added", "created", "id", "source", "text", "version"},
    "structured_wikipedia": {"name", "identifier", "abstract", "url", "description", "sections", "infoboxes"},
    "wikipedia": {"id", "url", "title", "text"},
    "stackexchange": {"qid", "question", "answers", "date", "metadata"},
    "ultrachat": {"prompt", "prompt_id", "messages"},
    "text_to_sql": {"schema", "question", "query"},
}


def _first_record(path: Path) -> dict:
    if path.name.endswith(".parquet"):
        return pq.read_table(path).slice(0, 1).to_pylist()[0]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.loads(fh.readline())


def _shingles(text: str, k: int = 5) -> set:
    words = text.lower().split()
    return {tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


def _ratio(text: str) -> float:
    raw = text.encode()
    return len(zlib.compress(raw)) / len(raw)


@pytest.fixture(scope="module")
def fineweb():
    files = dc.generate_rows("fineweb_edu", 700, 2, 11, TOPICS)
    return [row for rows in files.values() for row in rows]


@pytest.fixture(scope="module")
def starcoder():
    files = dc.generate_rows("starcoderdata", 600, 2, 11, TOPICS)
    return {rel: rows for rel, rows in files.items()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for source in dc.SOURCES:
        a = dc.generate_source(source, 40, 2, 5, TOPICS, tmp_path / "a" / source)
        b = dc.generate_source(source, 40, 2, 5, TOPICS, tmp_path / "b" / source)
        dc.generate_source(source, 40, 2, 6, TOPICS, tmp_path / "c" / source)
        assert a == b
        for rel in a:
            bytes_a = (tmp_path / "a" / source / rel).read_bytes()
            assert (
                bytes_a == (tmp_path / "b" / source / rel).read_bytes()
            ), f"{source}/{rel} not deterministic"
        assert any(
            not (tmp_path / "c" / source / rel).exists()
            or (tmp_path / "a" / source / rel).read_bytes() != (tmp_path / "c" / source / rel).read_bytes()
            for rel in a
        ), f"{source}: seed has no effect"


def test_every_source_has_its_native_columns_and_layout(tmp_path):
    for source, expected in NATIVE_COLUMNS.items():
        files = dc.generate_source(source, 60, 2, 3, TOPICS, tmp_path / source)
        assert len(files) >= 2, source
        for rel in files:
            record = _first_record(tmp_path / source / rel)
            assert expected <= set(record), f"{source}/{rel} lacks {expected - set(record)}"
    assert all(f.endswith(".json.gz") for f in dc.generate_source("pes2o", 10, 1, 3, TOPICS, tmp_path / "p"))
    assert all(
        f.endswith(".jsonl")
        for f in dc.generate_source("structured_wikipedia", 10, 1, 3, TOPICS, tmp_path / "s")
    )


def test_nested_shapes_match_the_real_datasets():
    wiki = dc.generate_rows("structured_wikipedia", 12, 1, 2, TOPICS)
    row = next(iter(wiki.values()))[0]
    infobox = row["infoboxes"][0]
    assert infobox["type"] == "infobox"
    section = infobox["has_parts"][0]
    assert section["type"] == "section" and section["has_parts"][0]["type"] == "field"
    assert {"name", "value"} <= set(section["has_parts"][0])
    assert any(p["type"] == "paragraph" for s in row["sections"] for p in s["has_parts"])

    se = [r for rows in dc.generate_rows("stackexchange", 60, 1, 2, TOPICS).values() for r in rows]
    answers = [a for r in se for a in r["answers"]]
    assert {"answer_id", "author", "pm_score", "selected", "text"} <= set(answers[0])
    assert any(a["selected"] for a in answers) and any(
        a["pm_score"] < 2 and not a["selected"] for a in answers
    )

    chats = [r for rows in dc.generate_rows("ultrachat", 20, 1, 2, TOPICS).values() for r in rows]
    assert all([m["role"] for m in c["messages"]][:2] == ["user", "assistant"] for c in chats)

    sql = [r for rows in dc.generate_rows("text_to_sql", 20, 1, 2, TOPICS).values() for r in rows]
    assert all(r["schema"].startswith("CREATE TABLE") and r["query"].startswith("SELECT") for r in sql)


def test_near_duplicates_are_planted_in_a_different_file(fineweb):
    by_n = {row["_n"]: row for row in fineweb}
    near = [r for r in fineweb if r["_planted"] == "near_duplicate"]
    exact = [r for r in fineweb if r["_planted"] == "exact_duplicate"]
    assert len(near) >= 20 and len(exact) >= 3
    for copy in near + exact:
        original = by_n[copy["_of"]]
        assert copy["_file"] != original["_file"]
        assert copy["id"] != original["id"]
    for copy in near:
        original = by_n[copy["_of"]]
        assert copy["text"] != original["text"]
        assert _jaccard(copy["text"], original["text"]) > 0.75
    for copy in exact:
        assert copy["text"] == by_n[copy["_of"]]["text"]

    # Ordinary documents, even on one topic, are far from each other: dedup must not merge them.
    originals = [r for r in fineweb if r["_planted"] == "original"]
    rng = random.Random(0)
    worst = max(_jaccard(a["text"], b["text"]) for a, b in (rng.sample(originals, 2) for _ in range(150)))
    assert worst < 0.3


def test_topics_are_skewed_multi_label_and_span_four_levels(fineweb):
    originals = [r for r in fineweb if r["_planted"] == "original"]
    primary = [r["_topics"][0] for r in originals]
    stem = sum(t in STEM_CORE for t in primary) / len(primary)
    common = sum(t in {"education", "medicine_health", "business_economics"} for t in primary) / len(primary)
    assert 0.02 < stem < 0.15 and common > 0.3
    assert 0.15 < sum(len(r["_topics"]) > 1 for r in originals) / len(originals) < 0.45
    assert len(set(primary)) >= 15

    # Keywords from the config appear in documents of their topic.
    keywords = {t["name"]: t["keywords"] for t in TOPICS}
    for row in originals[:100]:
        assert any(k in row["text"] for k in keywords[row["_topics"][0]])

    def words_per_sentence(text: str) -> float:
        sentences = [s for s in re.split(r"[.!?]\s", text) if s.strip()]
        return statistics.mean(len(s.split()) for s in sentences)

    means = [
        statistics.mean(words_per_sentence(r["text"]) for r in originals if r["_level"] == lvl)
        for lvl in (1, 2, 3, 4)
    ]
    assert means == sorted(means) and means[3] > 2 * means[0]
    lengths = [len(r["text"].split()) for r in originals]
    assert statistics.mean(lengths) > 250 and min(lengths) > 100


def test_starcoder_languages_boilerplate_and_extension_mismatches(starcoder):
    langs = {rel.split("/")[0] for rel in starcoder}
    assert {"python", "javascript", "java", "json", "yaml", "sql"} <= langs
    rows = [(rel.split("/")[0], r) for rel, rs in starcoder.items() for r in rs]
    boiler = [r for _, r in rows if r["_planted"].startswith("boilerplate")]
    code = [r for _, r in rows if r["_planted"].startswith("code")]
    assert len(boiler) >= 10
    assert all(_ratio(r["content"]) < 0.10 for r in boiler)
    assert all(_ratio(r["content"]) > 0.10 for r in code)
    assert {r["_kind"] for r in boiler} >= {"_sql_migration", "_json_generated", "_yaml_generated"}
    kinds = {r["_kind"] for r in code}
    assert {"_py_library", "_py_messy", "_py_test", "_json_schema", "_sql_ddl", "_yaml_ci"} <= kinds

    mismatched = [(lang, r) for lang, r in rows if "ext_mismatch" in r["_planted"]]
    assert mismatched
    for lang, r in mismatched:
        assert not r["max_stars_repo_path"].endswith(dc.LANG_EXT[lang])
    assert len({r["id"] for _, r in rows}) == len(rows)


def test_wikipedia_sources_overlap_on_entities():
    structured = {
        r["name"]
        for rows in dc.generate_rows("structured_wikipedia", 60, 1, 4, TOPICS).values()
        for r in rows
    }
    plain = {r["title"] for rows in dc.generate_rows("wikipedia", 45, 1, 4, TOPICS).values() for r in rows}
    overlap = structured & plain
    assert 0.3 * len(plain) < len(overlap) < len(plain)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="no demo generator"):
        dc.generate_rows("common_crawl", 10, 1, 0, TOPICS)
    with pytest.raises(ValueError, match="files for 3 documents"):
        dc.generate_rows("wikipedia", 3, 5, 0, TOPICS)
    with pytest.raises(ValueError, match="topic list"):
        dc.generate_rows("fineweb_edu", 10, 1, 0, [])


def test_full_demo_corpus_generates_quickly(tmp_path):
    start = time.monotonic()
    for source, spec in CONFIG["sources"].items():
        dc.generate_source(
            source, spec["demo_docs"], spec["parts"], CONFIG["seed"], TOPICS, tmp_path / source
        )
    assert time.monotonic() - start < 15
