"""trellis.acquire.demo.generate: every source deterministic, in its native columns and layout, fast."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]

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


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for source in dc.SOURCES:
        a = dc.generate_source(source, 40, 2, 5, TOPICS, tmp_path / "a" / source)
        b = dc.generate_source(source, 40, 2, 5, TOPICS, tmp_path / "b" / source)
        dc.generate_source(source, 40, 2, 6, TOPICS, tmp_path / "c" / source)
        assert a == b
        for rel in a:
            bytes_a = (tmp_path / "a" / source / rel).read_bytes()
            assert bytes_a == (tmp_path / "b" / source / rel).read_bytes(), (
                f"{source}/{rel} not deterministic"
            )
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


STUDY = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "study.yaml").read_text())


def test_demo_files_sit_where_the_study_downloads_them_from(tmp_path):
    """Every demo file matches its source's hf.allow_patterns in the study config: the demo writes
    the hub's real layout (a generator writing a layout the hub does not have fails here)."""
    from huggingface_hub.utils import filter_repo_objects

    for source, spec in STUDY["sources"].items():
        files = dc.generate_source(source, 60, 2, 3, TOPICS, tmp_path / source)
        if source == "stackexchange":
            # Only the listed sites are downloaded; the demo's meta and cooking threads exist to
            # be dropped by normalize and are not in the study's patterns on purpose.
            files = [f for f in files if f.split("/")[1] in spec["sites"]]
        matched = set(filter_repo_objects(files, allow_patterns=spec["hf"]["allow_patterns"]))
        assert matched == set(files), f"{source}: {sorted(set(files) - matched)} not in {spec['hf']}"


def test_structured_wikipedia_is_parquet_with_json_string_trees(tmp_path):
    files = dc.generate_source("structured_wikipedia", 10, 1, 3, TOPICS, tmp_path)
    assert files == ["enwiki/data/enwiki_namespace_0_0.parquet"]
    schema = pq.read_schema(tmp_path / files[0])
    assert str(schema.field("infoboxes").type) == "string" and str(schema.field("sections").type) == "string"
    assert str(schema.field("identifier").type) == "int64"


def test_every_config_source_has_a_generator():
    # A source added to config/config.yaml without a generator would fail only when the demo runs.
    assert set(CONFIG["sources"]) == set(dc.SOURCES) == set(dc.GENERATORS)


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
