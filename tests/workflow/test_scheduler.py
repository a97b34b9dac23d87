"""rules/scheduler.smk: Snakemake's scheduler wakes once per pending timer, not once per chain.

A scratch workflow of quick jobs and then more waiting jobs than cores, the case where every
finished job used to add a one-second chain of scheduler passes (snakemake/snakemake#3744).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_workflow import ROOT, snakemake

pytestmark = pytest.mark.workflow

QUICK_JOBS = 30
WAITING_JOBS = 3  # one more than the two cores: one waits while the others sleep


def scratch_workflow(workdir: Path, include: bool, wait_s: int = 2) -> Path:
    workdir.mkdir()
    head = f'include: "{ROOT / "rules" / "scheduler.smk"}"\n' if include else ""
    (workdir / "Snakefile").write_text(
        head
        + f"""
rule all:
    input: expand("waited{{j}}.txt", j=range({WAITING_JOBS}))

rule quick:
    output: "quick/{{i}}.txt"
    shell: "touch {{output}}"

rule wait:
    input: expand("quick/{{i}}.txt", i=range({QUICK_JOBS}))
    output: "waited{{j}}.txt"
    shell: "sleep {wait_s}; touch {{output}}"
"""
    )
    return workdir


def scheduler_passes(log: str) -> int:
    # Snakemake logs this (--verbose) at each pass that selects among ready jobs.
    return log.count("Resources before job selection")


def test_scheduler_passes_do_not_grow_with_finished_jobs(tmp_path):
    fixed = snakemake(scratch_workflow(tmp_path / "fixed", include=True), "--cores", "2", "--verbose")
    unfixed = snakemake(scratch_workflow(tmp_path / "unfixed", include=False), "--cores", "2", "--verbose")
    jobs = QUICK_JOBS + WAITING_JOBS
    # One pass per finished job, and about one a second while the third job waits two seconds.
    assert jobs <= scheduler_passes(fixed.stderr) <= jobs + 10
    # Without it, each quick job's chain passes about once a second for those two seconds (about
    # 90 passes here). When a Snakemake release stops doing that, rules/scheduler.smk can go.
    assert scheduler_passes(unfixed.stderr) > jobs + QUICK_JOBS, "Snakemake no longer chains wake-ups"


def test_rate_limited_submissions_still_resume(tmp_path):
    """The wake-up's purpose: jobs held back by --max-jobs-per-timespan are submitted later."""
    workdir = scratch_workflow(tmp_path / "limited", include=True, wait_s=0)
    run = snakemake(workdir, "--cores", "2", "--max-jobs-per-timespan", "10/1s")
    assert "Job rate limit reached" in run.stderr
    assert len(list((workdir / "quick").iterdir())) == QUICK_JOBS
    assert all((workdir / f"waited{j}.txt").exists() for j in range(WAITING_JOBS))
