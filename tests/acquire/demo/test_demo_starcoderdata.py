"""trellis.acquire.demo.starcoderdata: every language, compressible boilerplate, mismatched extensions."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import yaml

from trellis.acquire import demo as dc
from trellis.acquire.demo.starcoderdata import LANG_EXT

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def _ratio(text: str) -> float:
    raw = text.encode()
    return len(zlib.compress(raw)) / len(raw)


@pytest.fixture(scope="module")
def starcoder():
    files = dc.generate_rows("starcoderdata", 600, 2, 11, TOPICS)
    return {rel: rows for rel, rows in files.items()}


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
        assert not r["max_stars_repo_path"].endswith(LANG_EXT[lang])
    assert len({r["id"] for _, r in rows}) == len(rows)
