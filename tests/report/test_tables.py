"""Headline tables are built only from result files: values copied, deltas paired by example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trellis.core.bootstrap import paired_delta_ci
from trellis.core.io import read_json, write_json
from trellis.report.tables import COLUMNS, IncomparableResults, headline_table, write_tables


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


# No silent partial tables: every reason a delta would be missing or unpaired is one error.


def edit(path, change):
    """Rewrite a result file through ``change(result)``."""
    result = read_json(path)
    change(result)
    write_json(path, result)


def path_of(files, arm, stage, bench):
    return next(p for p in files if p.parts[-3:] == (arm, stage, f"{bench}.json"))


def problems_of(files, **kwargs) -> list[str]:
    with pytest.raises(IncomparableResults) as info:
        headline_table(files, control_arm="uncurated", **kwargs)
    message = str(info.value)
    assert all(p in message for p in info.value.problems)
    return info.value.problems


def test_missing_control_result_is_an_error(results, tmp_path):
    files, _ = results
    missing = path_of(files, "uncurated", "sft", "json_schema")
    kept = [p for p in files if p != missing]
    [problem] = problems_of(kept)
    assert "stage 'sft', benchmark 'json_schema'" in problem
    assert "metric(s) 'field_accuracy', 'parse_rate'" in problem
    assert "control arm 'uncurated' has no result (eval/uncurated/sft/json_schema.json)" in problem
    assert f"arm 'curated' ({path_of(files, 'curated', 'sft', 'json_schema')})" in problem
    # Nothing is written when the table cannot be built.
    csv, md = tmp_path / "t" / "headline.csv", tmp_path / "t" / "headline.md"
    with pytest.raises(IncomparableResults):
        write_tables(kept, csv, md, control_arm="uncurated")
    assert not csv.exists() and not md.exists()


def test_other_arms_may_lack_a_result(results, tmp_path):
    """A non-control arm without a (stage, benchmark) has no row there (a baseline evaluated at
    base only): not an error, and the other deltas are unchanged."""
    files, _ = results
    baseline = tmp_path / "eval" / "pythia" / "base" / "json_schema.json"
    control = read_json(path_of(files, "uncurated", "base", "json_schema"))
    per = {m: [ex["scores"][m] for ex in control["examples"]] for m in control["metrics"]}
    fabricate(baseline, "pythia", "base", "json_schema", per, 99)
    before = headline_table(files, control_arm="uncurated")
    after = headline_table(files + [baseline], control_arm="uncurated")
    deltas = after[after["kind"] == "delta"]
    pythia = deltas[deltas["arm"] == "pythia"]
    assert sorted(zip(pythia["stage"], pythia["benchmark"])) == [("base", "json_schema")] * 2
    assert pythia["value"].tolist() == [0.0, 0.0]
    pd.testing.assert_frame_equal(
        deltas[deltas["arm"] == "curated"].reset_index(drop=True),
        before[before["kind"] == "delta"].reset_index(drop=True),
    )


def test_control_arm_without_any_result(results):
    files, _ = results
    # As a library call: results only (the Markdown says there are no deltas); the workflow
    # requires the control arm.
    assert set(headline_table(files, control_arm="pythia")["kind"]) == {"result"}
    with pytest.raises(IncomparableResults, match="control arm 'pythia' has no result at all") as info:
        headline_table(files, control_arm="pythia", require_control=True)
    assert "'curated', 'uncurated'" in str(info.value)


def test_same_n_different_example_ids_is_an_error(results):
    files, _ = results
    path = path_of(files, "curated", "base", "json_schema")

    def rename(r):
        r["examples"][29]["id"] = "other-29"
        r["examples"][3]["id"] = "other-3"

    edit(path, rename)
    [problem] = problems_of(files)
    assert "stage 'base', benchmark 'json_schema', metric(s) 'field_accuracy', 'parse_rate'" in problem
    assert f"arm 'curated' ({path})" in problem and "control arm 'uncurated'" in problem
    assert (
        "different example sets (n 30 vs 30; 2 example id(s) only in 'curated': 'other-3', 'other-29'"
        in problem
    )
    assert "2 only in 'uncurated': 'ex-3', 'ex-29')" in problem


def test_different_n_is_an_error(results):
    files, _ = results

    def drop_last(r):
        r["examples"].pop()
        r["n"] = len(r["examples"])

    edit(path_of(files, "uncurated", "sft", "bfcl_simple"), drop_last)
    # Same ids, but a different n recorded.
    edit(path_of(files, "uncurated", "base", "json_schema"), lambda r: r.update(n=31))
    first, second = problems_of(files)
    assert "stage 'base', benchmark 'json_schema', metric(s) 'field_accuracy', 'parse_rate'" in first
    assert "(n 30 vs 31; the same example ids)" in first
    assert "stage 'sft', benchmark 'bfcl_simple', metric(s) 'accuracy'" in second
    assert "(n 30 vs 29; 1 example id(s) only in 'curated': 'ex-29')" in second


def test_metric_on_one_side_only_is_an_error(results):
    files, _ = results

    def drop(metric):
        def change(r):
            del r["metrics"][metric]
            for ex in r["examples"]:
                del ex["scores"][metric]

        return change

    control = path_of(files, "uncurated", "sft", "json_schema")
    curated = path_of(files, "curated", "base", "json_schema")
    edit(control, drop("parse_rate"))
    edit(curated, drop("field_accuracy"))
    first, second = problems_of(files)
    assert first == (
        f"stage 'base', benchmark 'json_schema', metric 'field_accuracy': in the control arm 'uncurated' "
        f"({path_of(files, 'uncurated', 'base', 'json_schema')}) but not in arm 'curated' ({curated})"
    )
    assert second == (
        f"stage 'sft', benchmark 'json_schema', metric 'parse_rate': in arm 'curated' "
        f"({path_of(files, 'curated', 'sft', 'json_schema')}) but not in the control arm 'uncurated' "
        f"({control})"
    )


def test_metric_scored_on_different_examples_is_an_error(results):
    """A metric over part of the examples (BFCL's summary sections) must cover the same ones."""
    files, _ = results

    def unscore(r):
        for ex in r["examples"][:2]:
            del ex["scores"]["accuracy"]

    edit(path_of(files, "uncurated", "sft", "bfcl_simple"), unscore)
    [problem] = problems_of(files)
    assert problem.startswith(
        "stage 'sft', benchmark 'bfcl_simple', metric 'accuracy': scored per example on 30"
    )
    assert "but 28 of the control arm 'uncurated'" in problem and "they differ on 'ex-0', 'ex-1'" in problem


def test_every_problem_is_listed_at_once(results):
    files, _ = results
    missing = path_of(files, "uncurated", "sft", "bfcl_simple")
    edit(path_of(files, "curated", "base", "json_schema"), lambda r: r["examples"][0].update(id="other"))
    edit(path_of(files, "curated", "sft", "json_schema"), lambda r: r["metrics"].pop("parse_rate"))
    problems = problems_of([p for p in files if p != missing])
    assert len(problems) == 3
    assert any(
        "stage 'base', benchmark 'json_schema'" in p and "different example sets" in p for p in problems
    )
    assert any("stage 'sft', benchmark 'json_schema', metric 'parse_rate'" in p for p in problems)
    assert any(
        "stage 'sft', benchmark 'bfcl_simple', metric(s) 'accuracy': "
        "the control arm 'uncurated' has no result" in p
        for p in problems
    )


def test_repeated_example_id_is_an_error(results):
    files, _ = results
    path = path_of(files, "curated", "base", "json_schema")
    edit(path, lambda r: r["examples"][5].update(id="ex-4"))
    with pytest.raises(ValueError, match=r"json_schema.json: examples\[5\] repeats the example id 'ex-4'"):
        headline_table(files)
