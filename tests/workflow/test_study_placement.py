"""The study's run as a cluster sees it: its own config only, and every job placed by its resources.

Dry runs and one tiny real job (the config snapshot) under the study config; no daemons (the real
SLURM run is tests/workflow/test_slurm.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from test_workflow import copy_repo, snakemake

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
GPU_RULES = {
    "train_classifier",
    "score",
    "stage0",
    "pretrain",
    "sft",
    "dpo",
    "evaluate",
    "evaluate_harness",
    "validate_bfcl",
}
STUDY_INTERNET_RULES = {
    "acquire",
    "label",
    "label_subjects",
    "train_tokenizer",
    "fetch_baseline",
    "fetch_posttrain_data",
    "fetch_eval_data",
    "fetch_classifier_base",
    "fetch_harness_data",
    "fetch_bfcl_reference",
    "judge_extraction",
}


def profile_without_conda(name: str, dest: Path) -> Path:
    """profiles/<name> as shipped, less its software deployment (no conda on this machine)."""
    settings = yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())
    settings.pop("software-deployment-method")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(settings))
    return dest


def planned_job_resources(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", dry_run_output):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        resources = re.search(r"^    resources: (.*)$", block, re.MULTILINE)
        if rule and resources:
            pairs = (item.split("=", 1) for item in resources.group(1).split(", "))
            if rule.group(1) != "all":  # the default target runs nothing
                jobs.append((rule.group(1), {k: v for k, v in pairs}))
    return jobs


def schema_default(schema: dict, path: tuple[str, ...]):
    """The schema's default for a config key path (KeyError when it has none)."""
    node = schema
    for key in path:
        node = node["properties"][key] if key in node.get("properties", {}) else node["additionalProperties"]
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]] | node if "$ref" in node else node
    return node["default"]


def leaves(tree, path=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, tree


def test_study_run_sees_exactly_study_yaml_and_schema_defaults(tmp_path):
    workdir = copy_repo(tmp_path)
    # The target first: --configfile takes every name after it.
    snakemake(workdir, "results/study/config.yaml", "--cores", "1", "--configfile", "config/study.yaml")
    effective = yaml.safe_load((workdir / "results/study/config.yaml").read_text())
    study = yaml.safe_load((ROOT / "config/study.yaml").read_text())
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())

    study_leaves = dict(leaves(study))
    for path, value in leaves(effective):
        if path in study_leaves:
            assert value == study_leaves[path], path
        else:  # not in study.yaml: it must be the schema's default, never a demo value
            assert value == schema_default(schema, path), path
    effective_leaves = dict(leaves(effective))
    assert set(study_leaves) <= set(effective_leaves)

    # The two leaks the deep merge used to cause.
    assert "trellis_demo_topic" not in effective["evaluate"]["harness"]["tasks"]
    assert not (effective["curation"]["stage0"].get("accept") or {}).get("starcoderdata")


def test_study_dry_run_has_no_demo_task(tmp_path):
    workdir = copy_repo(tmp_path)
    out = snakemake(workdir, "-n", "--cores", "8", "--configfile", "config/study.yaml").stdout
    assert "trellis_demo" not in out and "suites/lm_eval" not in out


def test_slurm_profile_places_every_job_by_its_resources(tmp_path):
    """Every job of the study that asks for a GPU lands in the GPU partition, every other in the
    CPU one, and jobs that need the internet run on the submitting host (no partition)."""
    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("slurm", tmp_path / "profile")
    out = snakemake(workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml").stdout
    jobs = planned_job_resources(out)
    assert {rule for rule, _ in jobs} >= GPU_RULES | STUDY_INTERNET_RULES | {"normalize", "mix", "tables"}
    study = yaml.safe_load((ROOT / "config/study.yaml").read_text())["slurm"]["partitions"]
    for rule, resources in jobs:
        gpus = int(resources.get("gpu", 0))
        if rule in GPU_RULES:
            assert gpus >= 1, (rule, resources)
        if gpus:
            assert resources["slurm_partition"] == study["gpu"], (rule, resources)
        elif rule in STUDY_INTERNET_RULES:
            assert resources["internet"] == "1" and "slurm_partition" not in resources, (rule, resources)
        else:
            assert resources["slurm_partition"] == study["cpu"], (rule, resources)
            assert "internet" not in resources, (rule, resources)


def planned_job_files(dry_run_output: str, kind: str) -> list[tuple[str, list[str]]]:
    """(rule, its input or output files) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", dry_run_output):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        files = re.search(rf"^    {kind}: (.*)$", block, re.MULTILINE)
        if rule:
            jobs.append((rule.group(1), files.group(1).split(", ") if files else []))
    return jobs


def test_gpu_jobs_read_their_hub_data_from_internet_jobs(tmp_path):
    """The classifiers' base model and lm-eval's task data come from the hub: each is downloaded by
    a job of its own that needs the internet (run on the submitting host), and the GPU jobs read
    the download as an input and ask for no internet."""
    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("slurm", tmp_path / "profile")
    out = snakemake(workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml").stdout
    resources = planned_job_resources(out)
    inputs = planned_job_files(out, "input")
    outputs = dict(planned_job_files(out, "output"))
    downloads = {
        "fetch_classifier_base": "results/study/downloads/models/classifier_base",
        "fetch_harness_data": "results/study/downloads/lm_eval/MANIFEST.json",
    }
    for fetch, output in downloads.items():
        placed = [r for rule, r in resources if rule == fetch]
        assert len(placed) == 1, (fetch, placed)
        assert placed[0]["internet"] == "1" and "slurm_partition" not in placed[0], placed
        assert "gpu" not in placed[0], placed
        assert outputs[fetch] == [output], outputs[fetch]
    for gpu_rule, fetch in (
        ("train_classifier", "fetch_classifier_base"),
        ("evaluate_harness", "fetch_harness_data"),
    ):
        jobs = [files for rule, files in inputs if rule == gpu_rule]
        assert jobs and all(downloads[fetch] in files for files in jobs), (gpu_rule, jobs)
        for rule, r in resources:
            if rule == gpu_rule:
                assert "internet" not in r and int(r["gpu"]) == 1, (rule, r)

    # The demo fetches nothing: it trains its classifiers from scratch and has local lm-eval tasks.
    demo = snakemake(copy_repo(tmp_path / "demo"), "-n", "--cores", "2").stdout
    assert "fetch_classifier_base" not in demo and "fetch_harness_data" not in demo
    assert "downloads/models" not in demo and "downloads/lm_eval" not in demo


def test_slurm_section_sets_partitions_account_and_qos_in_one_place(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("slurm", tmp_path / "profile")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        yaml.safe_dump(
            {
                "slurm": {
                    "partitions": {"cpu": "short", "gpu": "a100", "internet": "transfer"},
                    "account": "proj42",
                    "qos": "normal",
                }
            }
        )
    )
    out = snakemake(
        workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml", str(cluster)
    ).stdout
    placed = {}
    for rule, resources in planned_job_resources(out):
        assert resources["slurm_account"] == "proj42" and resources["qos"] == "normal", rule
        placed.setdefault(rule, set()).add(resources["slurm_partition"])
    assert placed["pretrain"] == placed["stage0"] == placed["evaluate_harness"] == {"a100"}
    assert placed["acquire"] == placed["label"] == {"transfer"}
    assert placed["normalize"] == placed["tables"] == {"short"}


def test_label_job_outlives_every_batch_window(tmp_path):
    """With the Batch API each round may take the full 24 h window, so the label job's time limit
    covers max_rounds of them."""
    workdir = copy_repo(tmp_path)
    out = snakemake(workdir, "-n", "--cores", "8", "--configfile", "config/study.yaml").stdout
    batch = yaml.safe_load((ROOT / "config/study.yaml").read_text())["labels"]["batch"]
    window_minutes = 60 * int(batch["completion_window"].rstrip("h"))
    runtimes = {int(r["runtime"]) for rule, r in planned_job_resources(out) if rule == "label"}
    assert runtimes and min(runtimes) > window_minutes * batch["max_rounds"], runtimes


def test_local_profile_caps_gpu_jobs_by_devices(tmp_path):
    """profiles/local gives the scheduler a gpu budget (the machine's GPUs) and every GPU job asks
    for its GPUs, so the jobs running at once never ask for more GPUs than the machine has."""
    settings = yaml.safe_load((ROOT / "profiles/local/config.yaml").read_text())
    assert settings["resources"]["gpu"] >= 1
    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("local", tmp_path / "profile")
    out = snakemake(workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml").stdout
    jobs = planned_job_resources(out)
    for rule, resources in jobs:
        if rule in GPU_RULES:
            assert int(resources["gpu"]) == 1, (rule, resources)


def test_harness_validation_gates_the_tables_in_the_study_only(tmp_path):
    """The study checks lm-eval against Pythia-410M-deduped's published numbers in one GPU job on
    its final Pythia-410M-deduped baseline and the fetched task data, and the headline table waits
    for it; the demo (local lm-eval tasks, no Pythia) has no such job."""
    workdir = copy_repo(tmp_path / "repo")
    profile = profile_without_conda("slurm", tmp_path / "profile")
    out = snakemake(workdir, "-n", "--profile", str(profile), "--configfile", "config/study.yaml").stdout
    placed = [r for rule, r in planned_job_resources(out) if rule == "validate_harness"]
    partitions = yaml.safe_load((ROOT / "config/study.yaml").read_text())["slurm"]["partitions"]
    assert len(placed) == 1, placed
    assert int(placed[0]["gpu"]) == 1 and placed[0]["slurm_partition"] == partitions["gpu"], placed
    assert "internet" not in placed[0], placed
    inputs, outputs = planned_job_files(out, "input"), dict(planned_job_files(out, "output"))
    validation = "results/study/eval/harness_validation.json"
    assert outputs["validate_harness"] == [validation, "results/study/eval/harness_validation.csv"]
    (validate_inputs,) = [files for rule, files in inputs if rule == "validate_harness"]
    assert set(validate_inputs) == {
        "results/study/models/pythia-410m-final/base",
        "results/study/downloads/lm_eval/MANIFEST.json",
    }
    (tables_inputs,) = [files for rule, files in inputs if rule == "tables"]
    assert validation in tables_inputs

    demo = snakemake(copy_repo(tmp_path / "demo"), "-n", "--cores", "2").stdout
    assert "rule validate_harness" not in demo and "eval/harness_validation" not in demo
