"""The check of BFCL's prompt mode against the leaderboard's published Qwen3-0.6B (Prompt) numbers:
its comparison logic, the whole path on a scripted model, and its place in the study's DAG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model

from trellis.evaluate import bfcl
from trellis.evaluate import bfcl_validation as v

ROOT = Path(__file__).resolve().parents[2]


def test_published_sections_follow_from_the_published_categories():
    """The section columns of data_overall.csv are bfcl-eval's aggregates of the per-category
    columns of data_non_live.csv and data_live.csv (at the leaderboard's category sizes)."""
    cat = v.PUBLISHED_CATEGORIES
    sizes = {"live_simple": 258, "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24}
    simple = (cat["simple_python"] + cat["simple_java"] + cat["simple_javascript"]) / 3
    non_live = (simple + cat["multiple"] + cat["parallel"] + cat["parallel_multiple"]) / 4
    live = sum(cat[c] * n for c, n in sizes.items()) / sum(sizes.values())
    published = v.published_sections()
    assert published["non_live_ast"] == pytest.approx(non_live, abs=5e-5)
    assert published["live_ast"] == pytest.approx(live, abs=5e-4)  # the CSV rounds each column
    assert published["irrelevance_detection"] == pytest.approx(
        (cat["irrelevance"] + cat["live_irrelevance"]) / 2, abs=5e-5
    )
    assert published["overall_offline"] == pytest.approx((0.70 + 0.4937 + 0.825) / 3)
    # The live sizes are the installed package's: the data is the checkpoint's.
    for c, n in sizes.items():
        assert len(bfcl.load_category(c, mode="prompt")) == n
    assert set(v.VALIDATION_CATEGORIES) == set(cat) and set(v.GATED) == set(published)


def _ours(shift: float, drop: str | None = None) -> dict:
    sections = {k: x + shift for k, x in v.published_sections().items() if k != drop}
    return {"sections": sections, "categories": dict(v.PUBLISHED_CATEGORIES)}


def test_comparison_passes_within_tolerance_and_fails_outside():
    record = v.validation_record(v.compare_published(_ours(0.049), 0.05), 0.05)
    assert record["pass"] and v.validation_failures(record) == []
    v.check_validation(record)

    record = v.validation_record(v.compare_published(_ours(-0.06), 0.05), 0.05)
    assert not record["pass"]
    lines = v.validation_failures(record)
    assert len(lines) == len(v.GATED) and lines[0].startswith("non_live_ast: ours 0.6400, published 0.7000")
    with pytest.raises(ValueError, match="does not reproduce the leaderboard's Qwen3-0.6B \\(Prompt\\)"):
        v.check_validation(record)

    # A gated section we did not compute fails; a category far off is reported, not gated.
    missing = v.validation_record(v.compare_published(_ours(0.0, drop="live_ast"), 0.05), 0.05)
    assert v.validation_failures(missing) == [
        "live_ast: ours missing (not computed), published 0.4937, tolerance ±0.05"
    ]
    ours = _ours(0.0)
    ours["categories"]["live_relevance"] = 0.0
    record = v.validation_record(v.compare_published(ours, 0.05), 0.05)
    assert record["pass"]
    row = next(r for r in record["rows"] if r["name"] == "live_relevance")
    assert row["gated"] is False and row["within_tolerance"] is False
    assert "| category live_relevance | 0.000 | 0.750 | -0.750 | no | no |" in v.validation_table(record)
    with pytest.raises(ValueError, match="tolerance"):
        v.compare_published(ours, -0.1)


def test_validate_model_runs_prompt_mode_and_writes_the_record(tmp_path):
    """The whole path on a scripted model that answers every entry right: ours are 1.0 (far
    above Qwen3-0.6B), so the check fails, naming the sections; the CSV lists every row."""
    from transformers import AutoTokenizer

    from trellis.structured import prompts

    model = make_tiny_model(tmp_path / "model", chat=True)
    tok = AutoTokenizer.from_pretrained(model)
    answers = {}
    java = {
        "simple_java": "[GeometryPresentation.createPresentation("
        + 'controller="mapController", parent="mapArea")]'
    }
    for c in v.VALIDATION_CATEGORIES:
        for e in bfcl.load_category(c, 1, mode="prompt"):
            if c == "simple_javascript":
                answer = '[validateUserInput(inputField="userInputField", isComplete=true)]'
            else:
                answer = java.get(c) or bfcl.reference_answer(e)
            # The reference model thinks first: the reasoning is dropped before decoding.
            answers[prompts.build_prompt("sft", tok, bfcl.messages(e), [])] = (
                "<think>\nok\n</think>\n\n" + answer
            )
    record = v.validate_model(
        model,
        {"max_new_tokens": 8, "batch_size": 4},
        {"resamples": 50, "confidence": 0.95},
        0,
        tolerance=0.05,
        generator=ScriptedGenerator(tok, answers.get),
        limit=1,
    )
    sections = {r["name"]: r for r in record["rows"] if r["kind"] == "section"}
    assert {name: r["ours"] for name, r in sections.items()} == {name: 1.0 for name in v.GATED}
    assert record["n"] == {c: 1 for c in v.VALIDATION_CATEGORIES} and record["limit"] == 1
    assert not record["pass"] and len(v.validation_failures(record)) == len(v.GATED)
    v.write_validation_csv(record, tmp_path / "validation.csv")
    lines = (tmp_path / "validation.csv").read_text().splitlines()
    assert lines[0] == "kind,name,ours,published,difference,gated,within_tolerance,tolerance"
    assert len(lines) == 1 + len(v.GATED) + len(v.PUBLISHED_CATEGORIES)


@pytest.mark.workflow
def test_bfcl_validation_gates_the_tables_in_the_study_only(tmp_path):
    """The study fetches the reference model in a job that needs the internet, scores it in one
    GPU job that reads the download offline, and the headline table waits for the check; the demo
    has neither."""
    sys.path.insert(0, str(ROOT / "tests" / "workflow"))
    from test_study_placement import planned_job_files, planned_job_resources, profile_without_conda
    from test_workflow import copy_repo, snakemake

    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("slurm", tmp_path / "profile")
    out = snakemake(workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml").stdout
    resources = planned_job_resources(out)
    inputs, outputs = planned_job_files(out, "input"), dict(planned_job_files(out, "output"))
    (fetch,) = [r for rule, r in resources if rule == "fetch_bfcl_reference"]
    assert fetch["internet"] == "1" and "gpu" not in fetch and "slurm_partition" not in fetch
    (validate,) = [r for rule, r in resources if rule == "validate_bfcl"]
    assert int(validate["gpu"]) == 1 and "internet" not in validate
    reference = "results/study/downloads/models/bfcl_reference"
    assert outputs["fetch_bfcl_reference"] == [reference]
    validation = "results/study/eval/bfcl_validation.json"
    assert outputs["validate_bfcl"] == [validation, "results/study/eval/bfcl_validation.csv"]
    (validate_inputs,) = [files for rule, files in inputs if rule == "validate_bfcl"]
    assert validate_inputs == [reference]
    (tables_inputs,) = [files for rule, files in inputs if rule == "tables"]
    assert validation in tables_inputs
    # The study's arms are scored in prompt mode (primary) and in the JSON variant.
    assert "results/study/eval/curated/sft/bfcl_prompt_summary.json" in tables_inputs
    assert "results/study/eval/curated/sft/bfcl_prompt_simple_java.json" in tables_inputs
    assert "results/study/eval/curated/sft/bfcl_summary.json" in tables_inputs

    demo = snakemake(copy_repo(tmp_path / "demo"), "-n", "--cores", "2").stdout
    assert "validate_bfcl" not in demo and "fetch_bfcl_reference" not in demo
    # The demo scores both modes too, with nothing to compare against.
    assert (
        "eval/curated/sft/bfcl_prompt_summary.json" in demo and "eval/curated/sft/bfcl_summary.json" in demo
    )
