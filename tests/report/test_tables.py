"""Headline tables are built only from result files: values copied, deltas paired by example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trellis.core.bootstrap import paired_delta_ci
from trellis.core.io import write_json
from trellis.report.tables import COLUMNS, headline_table, write_tables


def fabricate(path, arm, stage, benchmark, per_metric: dict[str, list[float]], seed):
    """A result file whose headline numbers are deliberately NOT the per-example means, so a
    table that re-scored anything instead of copying would be caught."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(per_metric.values())))
    metrics = {
        m: {
            "value": round(float(rng.uniform(0, 1)), 6),
            "ci_low": round(float(rng.uniform(0, 0.1)), 6),
            "ci_high": round(float(rng.uniform(0.9, 1)), 6),
        }
        for m in per_metric
    }
    examples = [
        {"id": f"ex-{i}", "output": "", "scores": {m: v[i] for m, v in per_metric.items()}} for i in range(n)
    ]
    result = {
        "format": "trellis-eval-v1",
        "arm": arm,
        "stage": stage,
        "benchmark": benchmark,
        "n": n,
        "metrics": metrics,
        "examples": examples,
        "bootstrap": {"resamples": 300, "confidence": 0.9, "seed": 5},
    }
    write_json(path, result)
    return result


@pytest.fixture
def results(tmp_path):
    rng = np.random.default_rng(0)
    files, data = [], {}
    for arm in ("curated", "uncurated"):
        for stage in ("base", "sft"):
            for bench, metrics in (
                ("json_schema", ("parse_rate", "field_accuracy")),
                ("bfcl_simple", ("accuracy",)),
            ):
                if arm == "curated" and stage == "base" and bench == "bfcl_simple":
                    continue  # a missing cell: no delta row for it
                per = {m: rng.integers(0, 2, size=30).astype(float).tolist() for m in metrics}
                path = tmp_path / "eval" / arm / stage / f"{bench}.json"
                data[(arm, stage, bench)] = fabricate(path, arm, stage, bench, per, len(files))
                files.append(path)
    return files, data


def test_result_rows_are_copied_from_files(results):
    files, data = results
    df = headline_table(files, control_arm="uncurated")
    assert list(df.columns) == COLUMNS
    rows = df[df["kind"] == "result"]
    assert len(rows) == sum(len(r["metrics"]) for r in data.values()) == 11
    for _, row in rows.iterrows():
        m = data[(row["arm"], row["stage"], row["benchmark"])]["metrics"][row["metric"]]
        assert (row["value"], row["ci_low"], row["ci_high"]) == (m["value"], m["ci_low"], m["ci_high"])
        assert row["n"] == 30
    # Stages appear in pipeline order, not alphabetically.
    stages = rows[(rows["arm"] == "curated") & (rows["metric"] == "parse_rate")]["stage"].tolist()
    assert stages == ["base", "sft"]


def test_delta_rows_pair_examples(results):
    files, data = results
    df = headline_table(files, control_arm="uncurated")
    deltas = df[df["kind"] == "delta"]
    # curated minus uncurated wherever both exist: json_schema at base and sft (2 metrics), bfcl at sft.
    assert sorted(zip(deltas["stage"], deltas["benchmark"], deltas["metric"])) == [
        ("base", "json_schema", "field_accuracy"),
        ("base", "json_schema", "parse_rate"),
        ("sft", "bfcl_simple", "accuracy"),
        ("sft", "json_schema", "field_accuracy"),
        ("sft", "json_schema", "parse_rate"),
    ]
    assert set(deltas["arm"]) == {"curated"} and set(deltas["control"]) == {"uncurated"}
    for _, row in deltas.iterrows():
        cur = data[("curated", row["stage"], row["benchmark"])]
        ctl = data[("uncurated", row["stage"], row["benchmark"])]
        a = [ex["scores"][row["metric"]] for ex in cur["examples"]]
        b = [ex["scores"][row["metric"]] for ex in ctl["examples"]]
        expected = paired_delta_ci(a, b, 300, 0.9, 5)
        assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx(expected)
        assert row["value"] == pytest.approx(np.mean(a) - np.mean(b)) and row["n"] == 30


def test_write_tables_csv_and_markdown(results, tmp_path):
    files, data = results
    csv, md = tmp_path / "t" / "headline.csv", tmp_path / "t" / "headline.md"
    df = write_tables(files, csv, md, control_arm="uncurated")
    back = pd.read_csv(csv)
    assert len(back) == len(df) == 16 and list(back.columns) == COLUMNS
    assert back["value"].tolist() == pytest.approx(df["value"].tolist())
    text = md.read_text()
    assert "## Arm minus control (uncurated)" in text
    v = data[("curated", "sft", "bfcl_simple")]["metrics"]["accuracy"]["value"]
    assert f"| curated | sft | bfcl_simple | accuracy | {v:.3f} |" in text
    # An unknown control arm: results only, and the Markdown says why there are no deltas.
    df = write_tables(files, csv, md, control_arm="pythia")
    assert set(df["kind"]) == {"result"} and "No deltas" in md.read_text()


def test_bad_result_files_are_named(tmp_path, results):
    files, _ = results
    bad = tmp_path / "bad.json"
    write_json(bad, {"arm": "x", "stage": "base", "benchmark": "json_schema", "n": 1, "metrics": {}})
    with pytest.raises(KeyError, match="bad.json.*examples"):
        headline_table(files + [bad])
    with pytest.raises(ValueError, match="both results"):
        headline_table(files + [files[0]])
