"""A slice of the demo through `snakemake --profile profiles/slurm` on a real SLURM cluster.

The cluster (tests/workflow/slurm_cluster.py) is Debian's slurmctld and slurmd on this machine with
a `cpu` and a `gpu` partition and one stand-in GPU; `.ci/run` installs the packages. When it cannot
start, the test fails with the daemons' logs: it is never skipped.

The slice is one model's way from its tokens to an lm-eval result, with the GPU families turned on
(resources.model.gpu and resources.pretrain.gpu = 1): CPU jobs of the cpu family (mix,
build_harness_tasks) and of the pretrain family (convert), GPU jobs of the pretrain family
(pretrain) and of the model family (evaluate_harness). The same target is first run locally
(`--cores 2`, the demo's config): its normalized parts, tokenizer and token parts are copied in
(mtimes kept), so Snakemake plans only the slice on SLURM (the slurm executor waits 5 s before each
submission, and the upstream's 32 small jobs would add minutes and test nothing new), and every
output of the slice must equal the local run's. Where each job ran is read back from SLURM
(scontrol). The local run is this module's own, not the demo's, so the test needs no finished demo
and runs beside it (tests/conftest.py gives the cluster's tests a worker group of their own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_cluster import PARTITIONS, job_records, single_node_cluster
from test_study_placement import profile_without_conda
from test_workflow import copy_repo, snakemake

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
TARGET = "results/demo/eval/uncurated/base/lm_trellis_demo_topic.json"
GPU_RULES = {"pretrain", "evaluate_harness"}
CPU_RULES = {"mix", "convert", "build_harness_tasks"}
UPSTREAM = ["raw", "tokenizer", "tokens/raw"]  # from the local run of the slice
SAME_BYTES = [
    "shards/uncurated/*.tkds",
    "shards/uncurated/mix.csv",
    "models/uncurated/base/model.safetensors",
]


@pytest.fixture(scope="module")
def local_slice(tmp_path_factory) -> Path:
    """TARGET and its upstream run locally with the demo's config, in a fresh copy of the repo."""
    workdir = copy_repo(tmp_path_factory.mktemp("local-slice"))
    snakemake(workdir, TARGET, "--cores", "2")
    return workdir


@pytest.fixture(scope="session")
def slurm_env(tmp_path_factory, claim_once_per_run):
    claim_once_per_run("slurm_env")
    with single_node_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def gpu_config(path: Path) -> Path:
    """The demo's resources with one GPU per job for the model and pretrain families."""
    resources = yaml.safe_load((ROOT / "config/config.yaml").read_text())["resources"]
    resources["model"]["gpu"] = resources["pretrain"]["gpu"] = 1
    path.write_text(yaml.safe_dump({"resources": resources}))
    return path


def rule_of(record: dict[str, str]) -> str:
    """The rule a job ran, from the comment the slurm executor gives it (rule_<name>[_wildcards_…])."""
    return re.match(r"rule_(.+?)(?:_wildcards_.*)?$", record["Comment"]).group(1)


def gpus_allocated(record: dict[str, str]) -> int:
    found = re.findall(r"gpu[:=](\d+)", " ".join(record.get(k, "") for k in ("TresPerJob", "TresPerNode")))
    return sum(int(n) for n in found)


def test_demo_slice_runs_on_slurm_where_its_resources_say(slurm_env, local_slice, tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    for rel in UPSTREAM:
        shutil.copytree(local_slice / "results/demo" / rel, workdir / "results/demo" / rel)
    profile = profile_without_conda("slurm", tmp_path / "profile")
    command = [
        *(sys.executable, "-m", "snakemake", TARGET),
        *("--profile", str(profile), "--jobs", "4"),
        # This cluster keeps no accounting: no account to find, job states from squeue.
        *("--slurm-no-account", "--slurm-status-command", "squeue"),
        *("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2"),
        *("--configfile", "config/config.yaml", str(gpu_config(tmp_path / "gpus.yaml"))),
    ]
    env = {**slurm_env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-8000:])

    records = job_records(slurm_env)
    ran = {}
    for record in records:
        assert record["JobState"] == "COMPLETED", record
        rule = rule_of(record)
        ran.setdefault(rule, []).append(record)
        if rule in GPU_RULES:
            assert record["Partition"] == PARTITIONS["gpu"] and gpus_allocated(record) == 1, record
        else:
            assert record["Partition"] == PARTITIONS["cpu"] and gpus_allocated(record) == 0, record
    assert set(ran) == GPU_RULES | CPU_RULES and all(len(jobs) == 1 for jobs in ran.values()), ran

    # The same files as the local run, byte for byte; the lm-eval result's scores too.
    here, local = workdir / "results/demo", local_slice / "results/demo"
    for pattern in SAME_BYTES:
        files = sorted(p.relative_to(here) for p in here.glob(pattern))
        assert files, pattern
        for rel in files:
            assert (here / rel).read_bytes() == (local / rel).read_bytes(), rel
    result, expected = (
        json.loads((d / TARGET.removeprefix("results/demo/")).read_text()) for d in (here, local)
    )
    assert result["metrics"] == expected["metrics"] and result["n"] == expected["n"]


def test_cluster_reports_its_stand_in_gpu(slurm_env):
    """The fixture's cluster answers on its own config, with the GPU its gres.conf declares."""
    assert Path(slurm_env["SLURM_CONF"]).is_file() and os.environ.get("SLURM_CONF") != slurm_env["SLURM_CONF"]
    out = subprocess.run(["sinfo", "-h", "-o", "%P %G"], capture_output=True, text=True, env=slurm_env)
    assert "gpu:1" in out.stdout, out.stdout + out.stderr
