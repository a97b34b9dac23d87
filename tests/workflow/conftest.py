"""The demo end to end, once per session, for every workflow test that inspects a finished run."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_workflow import copy_repo, snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, claim_once_per_run) -> Path:
    claim_once_per_run("demo_run")
    workdir = copy_repo(tmp_path_factory.mktemp("demo"))
    snakemake(workdir, "--cores", "2")
    return workdir
