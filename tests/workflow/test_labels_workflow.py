"""Switching the labeling backend in config reruns labeling (and so all that is trained on it).

Dry runs only: the labels and their upstream files are created empty and recorded as up to date
with ``snakemake --touch`` (which stores each job's params as a real run would), then the config
is changed and ``snakemake -n`` says what it would rerun, and why.
"""

from __future__ import annotations

import re

import pytest
from test_workflow import copy_repo, planned_jobs, snakemake

from trellis.core.tasks import TASK_NAMES

pytestmark = pytest.mark.workflow

TARGETS = [f"results/demo/labels/{task}.parquet" for task in TASK_NAMES]


def test_switching_backend_reruns_labeling_only_that(tmp_path):
    workdir = copy_repo(tmp_path)
    summary = snakemake(workdir, "-n", "--cores", "1", "--summary", *TARGETS).stdout
    files = [line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line]
    assert any(f.endswith("labels/topic.parquet") for f in files), summary[-2000:]
    for rel in files:
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).touch()
    snakemake(workdir, "--touch", "--cores", "1", *TARGETS)

    config = workdir / "config/config.yaml"
    original = config.read_text()
    # Up to date after --touch, and the OpenAI backends' operational knobs are no rerun trigger.
    config.write_text(re.sub(r"poll_seconds: \d+", "poll_seconds: 5", original, count=1))
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "1", *TARGETS).stdout) == {}

    config.write_text(re.sub(r"(?m)^  backend: offline$", "  backend: openai-chat", original, count=1))
    out = snakemake(workdir, "-n", "--cores", "1", *TARGETS).stdout
    assert planned_jobs(out) == {"label": len(TASK_NAMES)}, out[-3000:]
    assert "Params have changed" in out and "'backend': 'openai-chat'" in out
