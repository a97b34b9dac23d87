"""The Stage 0 gate in the DAG: scoring waits for it, recalibrating it never rescores (dry runs)."""

from __future__ import annotations

import re

import pytest
from test_workflow import copy_repo, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

# What reads the scores' inputs but must never rerun for a threshold or a Stage 0 setting.
NEVER = {"acquire", "normalize", "label_sample", "label", "train_classifier", "score", "signatures"}


def _edges(dot: str) -> set[tuple[str, str]]:
    names = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    return {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}


def test_study_scoring_waits_for_its_stage0_gate(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    dot = snakemake(workdir, "--rulegraph", "--configfile", "config/study.yaml").stdout
    edges = _edges(dot)
    assert ("stage0", "score") in edges, sorted(edges)
    assert ("stage0", "filter") in edges


def _dry_run_with(demo_run, pattern: str, replacement: str) -> tuple[dict[str, int], str]:
    config_path = demo_run / "config/config.yaml"
    original = config_path.read_text()
    changed = re.sub(pattern, replacement, original, count=1)
    assert changed != original, pattern
    try:
        config_path.write_text(changed)
        out = snakemake(demo_run, "-n", "--cores", "2").stdout
    finally:
        config_path.write_text(original)
    return planned_jobs(out), out


def test_topic_threshold_change_reruns_stage0_and_curation_never_scoring(demo_run):
    jobs, out = _dry_run_with(demo_run, r"topic_threshold: [0-9.]+", "topic_threshold: 0.61")
    assert jobs.get("stage0") == 1, jobs  # fineweb_edu's sample only
    assert "stage0/fineweb_edu/report.json" in out and "stage0/starcoderdata/report.json" not in out
    assert jobs.get("filter") == 2, jobs  # fineweb_edu's two parts
    assert "dedup_fineweb_edu" in jobs and "select_fineweb_edu" in jobs
    assert "dedup_starcoderdata" not in jobs and "select_starcoderdata" not in jobs
    for downstream in ("curation_yield", "mix", "pretrain", "tables"):
        assert downstream in jobs, (downstream, jobs)
    assert not NEVER & set(jobs), jobs


def test_stage0_setting_change_recalibrates_without_rescoring(demo_run):
    jobs, out = _dry_run_with(demo_run, r"sample_docs: [0-9]+", "sample_docs: 500")
    assert jobs.get("stage0") == 2, jobs  # both curated sources' samples
    assert "filter" in jobs  # the filter reads the report (its thresholds)
    assert not NEVER & set(jobs), jobs
