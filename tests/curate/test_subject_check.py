"""The subject filter measured: a sample before the filter, the rule's precision/recall vs topic labels."""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter

import pytest

from trellis.core.stats import StepStats
from trellis.core.tasks import build_tasks
from trellis.curate.subject_check import (
    check_subject_filters,
    choose_files,
    measure,
    sample_before_filter,
    table_rows,
    wilson_interval,
    write_sample,
)
from trellis.labels.label import label_task
from trellis.labels.offline import OfflineLabeler

SUBJECT_FILTER = {
    "min_terms": 2,
    "head_chars": 200,
    "subjects": {
        "computer_science": ["algorithm", "compiler", "database"],
        "mathematics": ["theorem", "proof", "lemma"],
    },
}
TOPICS = ["computer_science", "mathematics", "biology"]


def _pes2o_file(path, texts, first_id=1000):
    """peS2o v2's layout: gzipped JSON lines with id, text and source (plus fields normalize ignores)."""
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(texts):
            row = {"id": str(first_id + i), "text": text, "source": "s2orc/train", "version": "v2"}
            f.write(json.dumps(row) + "\n")
    return path


def test_wilson_interval_matches_its_closed_form():
    lo, hi = wilson_interval(0, 10)
    z2 = 1.959963984540054**2
    assert lo == pytest.approx(0.0) and hi == pytest.approx(
        z2 / (10 + z2)
    )  # the interval's upper end at p = 0
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(10 / (10 + z2))
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(1 - hi) and hi == pytest.approx(0.5 + 1.96 * math.sqrt(0.25 / 100), abs=5e-3)
    assert wilson_interval(0, 0) is None


def test_sample_is_a_seeded_uniform_draw_over_every_file_and_counts_what_it_cannot_use(tmp_path):
    files = [
        _pes2o_file(tmp_path / "train-00000.json.gz", [f"paper {i}" for i in range(60)] + ["   "], 0),
        _pes2o_file(tmp_path / "train-00001.json.gz", [f"paper {i}" for i in range(60, 120)], 60),
    ]
    tally = StepStats("t", unit="chars", drop_sizes=False)
    rows = sample_before_filter("pes2o", files, 30, seed=7, tally=tally)
    assert len(rows) == 30 and len({r["id"] for r in rows}) == 30
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["source"] for r in rows} == {"pes2o"}
    assert tally.docs_in == 121 and tally.docs_out == 120 and tally.dropped == Counter(empty_text=1)
    # Both files contribute, and the same seed draws the same papers.
    numbers = [int(r["text"].split()[1]) for r in rows]
    assert min(numbers) < 60 <= max(numbers)
    assert rows == sample_before_filter("pes2o", files, 30, seed=7)
    assert rows != sample_before_filter("pes2o", files, 30, seed=8)
    # Over many seeds every paper is drawn about equally often (a reservoir, not the first n).
    counts = Counter(r["text"] for s in range(200) for r in sample_before_filter("pes2o", files, 30, seed=s))
    assert len(counts) == 120 and max(counts.values()) < 3 * min(counts.values())
    # Asking for more than there is gives everything.
    assert len(sample_before_filter("pes2o", files, 500, seed=1)) == 120


def test_choose_files_takes_a_seeded_subset_only_when_asked(tmp_path):
    files = [tmp_path / f"train-{i:05d}.json.gz" for i in range(6)]
    assert choose_files(files[::-1], None, 1) == files
    chosen = choose_files(files, 2, 1)
    assert len(chosen) == 2 and set(chosen) <= set(files) and chosen == choose_files(files, 2, 1)
    with pytest.raises(ValueError, match="no data files"):
        choose_files([], 2, 1)


def _doc(i, text):
    return {"id": f"d{i}", "text": text, "source": "pes2o"}


def test_precision_and_recall_count_what_the_rule_and_the_labels_say():
    sample = [
        _doc(1, "an algorithm and a compiler"),  # kept (2 CS terms); labeled CS: true positive
        _doc(2, "a theorem with its proof"),  # kept (math); labeled math: true positive
        _doc(3, "a database and a lemma"),  # kept (CS + math terms); labeled biology: false positive
        _doc(4, "cells divide"),  # dropped; labeled CS: false negative
        _doc(5, "an algorithm in a forest"),  # dropped (1 term); labeled biology: true negative
        _doc(6, "an unlabeled theorem proof"),  # no valid label: left out, counted
    ]
    labels = {
        "d1": ["computer_science"],
        "d2": ["mathematics"],
        "d3": ["biology"],
        "d4": ["computer_science"],
    }
    labels["d5"] = ["biology"]
    report = measure("pes2o", sample, labels, SUBJECT_FILTER, {"backend": "offline", "model": "m"})
    overall = report["overall"]
    assert (overall["kept"], overall["on_subject"], overall["kept_on_subject"]) == (3, 3, 2)
    assert overall["precision"]["value"] == pytest.approx(2 / 3)
    assert overall["recall"]["value"] == pytest.approx(2 / 3)
    assert overall["precision"]["ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    assert report["labeled_docs"] == 5 and report["unlabeled_docs"] == 1
    assert report["unlabeled_examples"] == ["d6"]
    assert report["kept_off_subject_examples"] == ["d3"] and report["dropped_on_subject_examples"] == ["d4"]
    cs, math_ = report["subjects"]["computer_science"], report["subjects"]["mathematics"]
    # CS: the rule says CS for d1 and d3 (kept with a CS term); labels say CS for d1 and d4.
    assert (cs["kept"], cs["on_subject"], cs["kept_on_subject"]) == (2, 2, 1)
    # Math: the rule says math for d2 and d3; the labels for d2 only.
    assert (math_["kept"], math_["on_subject"], math_["kept_on_subject"]) == (2, 1, 1)
    assert math_["recall"]["value"] == 1.0 and math_["precision"]["value"] == 0.5
    table = table_rows(report)
    assert [r["scope"] for r in table] == ["all subjects", "computer_science", "mathematics"]
    assert (
        table[2]["precision"] == 0.5 and table[2]["recall"] == 1.0 and table[2]["f1"] == pytest.approx(0.6667)
    )

    # A stricter rule is measured against the same labels, no relabeling: it keeps only d1 and d2.
    stricter = dict(
        SUBJECT_FILTER,
        subjects={"computer_science": ["algorithm", "compiler"], "mathematics": ["theorem", "proof"]},
    )
    again = measure("pes2o", sample, labels, stricter, {})["overall"]
    assert again["precision"]["value"] == 1.0 and again["recall"]["value"] == pytest.approx(2 / 3)


def test_a_sample_without_any_label_is_an_error_not_an_empty_report():
    with pytest.raises(ValueError, match="none of the 1 subject-check sample documents"):
        measure("pes2o", [_doc(1, "x")], {}, SUBJECT_FILTER, {"invalid_reasons": {"no_response": 1}})


def test_a_subject_the_labeler_has_no_topic_for_is_named():
    check_subject_filters({"pes2o": {"subject_filter": SUBJECT_FILTER}, "wikipedia": {}}, TOPICS)
    bad = dict(SUBJECT_FILTER, subjects={"computing": ["algorithm"]})
    with pytest.raises(ValueError, match=r"sources\.pes2o\.subject_filter\.subjects: \['computing'\]"):
        check_subject_filters({"pes2o": {"subject_filter": bad}}, TOPICS)


def test_the_topic_task_labels_another_sources_sample_only_when_told(tmp_path):
    labels_config = {
        "backend": "offline",
        "model": "keyword-heuristic-v1",
        "topics": [
            {"name": "computer_science", "keywords": ["algorithm", "compiler", "database"]},
            {"name": "mathematics", "keywords": ["theorem", "proof", "lemma"]},
            {"name": "biology", "keywords": ["cell", "gene", "protein"]},
        ],
        "content_types": [{"name": "library"}],
    }
    task = build_tasks({"labels": labels_config})["topic"]
    sample = tmp_path / "subject_sample-pes2o.parquet"
    write_sample(
        [_doc(1, "An algorithm for a compiler. The algorithm runs."), _doc(2, "A gene in a cell.")], sample
    )
    labeler = OfflineLabeler(labels_config)
    with pytest.raises(ValueError, match="column 'source' is 'pes2o'.*'fineweb_edu'"):
        label_task(task, sample, tmp_path / "wrong.parquet", labeler)
    report = label_task(task, sample, tmp_path / "topics.parquet", labeler, source="pes2o")
    assert report["n_labeled"] == 2
