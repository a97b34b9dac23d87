"""The mix stage in the DAG: what a mix setting invalidates, and the optional upload's gate.

Dry runs only: the shard sets and everything upstream are created empty and recorded as up to
date with ``snakemake --touch`` (which stores each job's params as a real run would), then the
config is changed and ``snakemake -n`` says what it would rerun.
"""

from __future__ import annotations

import re

import pytest
from test_workflow import copy_repo, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

TARGETS = ["results/demo/shards/curated/manifest.json", "results/demo/shards/uncurated/manifest.json"]


@pytest.fixture(scope="module")
def touched(tmp_path_factory):
    workdir = copy_repo(tmp_path_factory.mktemp("mixflow"))
    summary = snakemake(workdir, "-n", "--cores", "1", "--summary", *TARGETS).stdout
    files = [line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line]
    assert any(f.endswith("shards/curated/mix.csv") for f in files), summary[-2000:]
    for rel in files:
        path = workdir / rel
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:  # directory outputs: the tokenizer, the classifiers' models
            path.mkdir(parents=True, exist_ok=True)
    snakemake(workdir, "--touch", "--cores", "1", *TARGETS)
    return workdir


def _planned_after(workdir, pattern, replacement, *targets):
    config = workdir / "config/config.yaml"
    original = config.read_text()
    changed = re.sub(pattern, replacement, original, count=1)
    assert changed != original, pattern
    try:
        config.write_text(changed)
        return planned_jobs(snakemake(workdir, "-n", "--cores", "1", *(targets or TARGETS)).stdout)
    finally:
        config.write_text(original)


def test_mix_settings_rerun_the_mix_and_nothing_upstream(touched):
    assert planned_jobs(snakemake(touched, "-n", "--cores", "1", *TARGETS).stdout) == {}
    # a budget, the shuffle buffer, a component's upsample flag: both arms' mix, never tokenize
    assert _planned_after(
        touched, r"ultrachat, curated: false, tokens: 5600", "ultrachat, curated: false, tokens: 5700"
    ) == {"mix": 2}
    assert _planned_after(touched, r"shuffle_buffer_mb: [0-9.]+", "shuffle_buffer_mb: 0.5") == {"mix": 2}
    assert _planned_after(
        touched,
        r"wikipedia, curated: false, tokens: 7000\}",
        "wikipedia, curated: false, tokens: 7000, upsample: true}",
    ) == {"mix": 2}
    # the upload settings are no input of the mix
    assert (
        _planned_after(
            touched, r"upload: \{enabled: false, repo: null", "upload: {enabled: false, repo: someone/else"
        )
        == {}
    )


def test_upload_runs_only_when_enabled(touched):
    out = snakemake(touched, "-n", "--cores", "1", "upload", check=False)
    assert out.returncode != 0 and "mix.upload.enabled is false" in out.stdout + out.stderr
    jobs = _planned_after(
        touched,
        r"upload: \{enabled: false, repo: null",
        "upload: {enabled: true, repo: trellis/demo-shards",
        "upload",
    )
    assert jobs.get("upload_shards") == 2 and "mix" not in jobs, jobs
