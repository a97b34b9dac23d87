"""trellis.acquire.demo.fineweb_edu: cross-file duplicates, skewed multi-label topics, four levels."""

from __future__ import annotations

import random
import re
import statistics
from pathlib import Path

import pytest
import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]
STEM_CORE = {"computer_science", "mathematics", "machine_learning_ai"}


def _shingles(text: str, k: int = 5) -> set:
    words = text.lower().split()
    return {tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def fineweb():
    files = dc.generate_rows("fineweb_edu", 700, 2, 11, TOPICS)
    return [row for rows in files.values() for row in rows]


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
