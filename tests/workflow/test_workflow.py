"""Workflow tests: Snakemake itself on the real rules.

The demo runs end to end once per session in a scratch copy of the repository (the slow part of
the suite, a few minutes on 2 cores); the other tests inspect that run or dry-run the DAG.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trellis.evaluate import bfcl

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
STAGES_UPSTREAM_OF_FILTER = {
    "acquire",
    "normalize",
    "label_sample",
    "label",
    "train_classifier",
    "score",
    "stage0",
    "signatures",
    "train_tokenizer",
    "build_posttrain_data",
    "build_json_suite",
    "build_harness_tasks",
}

pytestmark = pytest.mark.workflow


def copy_repo(dest: Path) -> Path:
    """The tracked and untracked-not-ignored files of the repo, as a fresh checkout would have."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(SNAKEMAKE + list(args), cwd=workdir, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-8000:]}"
        )
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    counts: dict[str, int] = {}
    table = output.split("Job stats:", 1)
    if len(table) < 2:
        return counts
    for line in table[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_demo_headline_table_comes_from_result_files(demo_run):
    config = yaml.safe_load((demo_run / "config/config.yaml").read_text())
    results = demo_run / "results" / config["run"]
    rows = list(csv.DictReader(open(results / "tables/headline.csv")))
    assert rows, "empty headline table"

    arms, stages = list(config["arms"]), config["evaluate"]["stages"]
    ev = config["evaluate"]
    # Every tier: structured output (tier 1), lm-eval tasks (tier 2), code (tier 3).
    benchmarks = (
        ["json_schema", "extraction", "classification"]
        + bfcl.result_names(ev["bfcl"])
        + [f"lm_{t}" for t in ev["harness"]["tasks"]]
        + [b for b in ("humaneval", "mbpp") if ev[b] is not None]
    )
    assert "humaneval" in benchmarks and any(b.startswith("lm_") for b in benchmarks)
    # BFCL in both modes: as the leaderboard prompts and scores, and as JSON calls.
    assert {"bfcl_prompt_simple", "bfcl_prompt_summary", "bfcl_simple", "bfcl_summary"} <= set(benchmarks)
    result_files = {
        (arm, stage, bench): results / "eval" / arm / stage / f"{bench}.json"
        for arm in arms
        for stage in stages
        for bench in benchmarks
    }
    assert all(p.exists() for p in result_files.values())

    # Every (arm, stage, benchmark, metric) in the result files is a row, with the same numbers.
    expected = {}
    for (arm, stage, bench), path in result_files.items():
        result = json.loads(path.read_text())
        for metric, value in result["metrics"].items():
            expected[(arm, stage, bench, metric)] = (value, result["n"])
    table = {(r["arm"], r["stage"], r["benchmark"], r["metric"]): r for r in rows if r["kind"] == "result"}
    assert set(expected) == set(table), set(expected) ^ set(table)
    for key, (value, n) in expected.items():
        row = table[key]
        assert float(row["value"]) == pytest.approx(value["value"], abs=1e-9), key
        assert float(row["ci_low"]) == pytest.approx(value["ci_low"], abs=1e-9), key
        assert float(row["ci_high"]) == pytest.approx(value["ci_high"], abs=1e-9), key
        assert int(row["n"]) == n, key
    # The curated-minus-control delta for every stage, benchmark and metric, with its CI.
    deltas = {
        (r["stage"], r["benchmark"], r["metric"]): r
        for r in rows
        if r["kind"] == "delta" and r["arm"] == "curated"
    }
    assert set(deltas) == {(s, b, m) for (a, s, b, m) in expected if a == "curated"}
    for (stage, bench, metric), row in deltas.items():
        assert row["control"] == config["evaluate"]["control_arm"]
        difference = (
            expected[("curated", stage, bench, metric)][0]["value"]
            - expected[("uncurated", stage, bench, metric)][0]["value"]
        )
        assert float(row["value"]) == pytest.approx(difference, abs=1e-9)
        assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
    md = (results / "tables/headline.md").read_text()
    assert "json_schema" in md and "bfcl_simple" in md and "humaneval" in md and "lm_trellis_demo_topic" in md
    # The summary's delta is over the section's examples only, with their weights.
    summary = [
        r
        for r in rows
        if r["benchmark"] == "bfcl_summary" and r["metric"] == "non_live_ast" and r["kind"] == "delta"
    ]
    assert summary and all(int(r["n"]) == 4 * ev["bfcl"]["limit"] for r in summary)


def test_demo_run_produced_every_stage(demo_run):
    results = demo_run / "results/demo"
    for path in [
        "raw/fineweb_edu/part-0.parquet",
        "labels/topic.parquet",
        "classifiers/topic/metrics.json",
        "classifiers/content_type/metrics.json",
        "scores/starcoderdata/part-1.parquet",
        "minhash/fineweb_edu/part-0.npy",
        "stage0/fineweb_edu/stage0.png",
        "stage0/starcoderdata/report.json",
        "dedup/starcoderdata/stats.json",
        "curated/fineweb_edu/part-1.parquet",
        "curated/starcoderdata/select.stats.json",
        "shards/curated/manifest.json",
        "shards/uncurated/manifest.json",
        "checkpoints/curated/final/lit_model.pth",
        "models/uncurated/base/config.json",
        "models/curated/dpo/config.json",
    ]:
        assert (results / path).exists(), path
    for arm in ("curated", "uncurated"):
        manifest = json.loads((results / f"shards/{arm}/manifest.json").read_text())
        assert manifest["shards"], arm
        # every component meets its budget exactly; the set validates against its manifest
        for name, comp in manifest["components"].items():
            assert comp["realized_tokens"] == comp["budget"] and comp["shortfall"] == 0, (arm, name)
        with open(results / f"shards/{arm}/mix.csv") as f:
            # one row per component, in the config's mix order (the manifest's keys are sorted)
            rows = [r["component"] for r in csv.DictReader(f)]
        assert sorted(rows) == sorted(manifest["components"]) and len(rows) == len(set(rows)), arm
        inspect = subprocess.run(
            [sys.executable, "-m", "trellis.tokens.tkds", "inspect", str(results / f"shards/{arm}")],
            cwd=demo_run,
            capture_output=True,
            text=True,
            check=False,
        )
        assert inspect.returncode == 0 and json.loads(inspect.stdout)["sha256_matches"], inspect.stderr
        assert not (results / f"shards/{arm}/.mix-work").exists()  # work state removed once complete
    benchmarks = sorted((results / "benchmarks").rglob("*.tsv"))
    assert any("pretrain" in str(p) for p in benchmarks)


@pytest.mark.parametrize(
    "setting, value, source, other",
    [
        ("topic_threshold", "0.61", "fineweb_edu", "starcoderdata"),
        ("min_structured_relevance", "0.8", "starcoderdata", "fineweb_edu"),
    ],
)
def test_threshold_change_reruns_only_filter_and_downstream(demo_run, setting, value, source, other):
    config_path = demo_run / "config/config.yaml"
    original = config_path.read_text()
    try:
        config_path.write_text(re.sub(rf"{setting}: [0-9.]+", f"{setting}: {value}", original, count=1))
        out = snakemake(demo_run, "-n", "--cores", "2").stdout
    finally:
        config_path.write_text(original)
    jobs = planned_jobs(out)
    assert jobs.get("filter") == 2, out[-3000:]  # the source's two parts, not the other source's
    assert f"dedup_{source}" in jobs and f"dedup_{other}" not in jobs
    assert f"select_{source}" in jobs and f"select_{other}" not in jobs
    assert jobs.get("mix") == 1  # only the curated arm reads curated parts
    for downstream in (
        "tokenize",
        "pretrain",
        "convert",
        "sft",
        "dpo",
        "evaluate",
        "evaluate_harness",
        "tables",
    ):
        assert downstream in jobs, (downstream, jobs)
    # A pinned topic threshold is checked by Stage 0 on its sample (a cheap job), never by rescoring.
    rechecked = {"stage0"} if setting == "topic_threshold" else set()
    assert jobs.get("stage0") == (1 if rechecked else None), jobs
    assert not (STAGES_UPSTREAM_OF_FILTER - rechecked) & set(jobs), jobs


def test_curation_yield_and_the_stage0_gate(demo_run, tmp_path):
    """The yield report adds up per source and step; a planted degenerate classifier stops the DAG."""
    import pyarrow.parquet as pq
    from transformers import AutoModelForSequenceClassification

    workdir = tmp_path / "demo"
    shutil.copytree(demo_run, workdir, symlinks=True)
    results = workdir / "results/demo"
    snakemake(workdir, "--cores", "2", "results/demo/curation/yield.csv")
    rows = list(csv.DictReader(open(results / "curation/yield.csv")))
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    for source in ("fineweb_edu", "starcoderdata"):
        steps = [r for r in rows if r["source"] == source]
        assert [r["step"] for r in steps if r["reason"] == "in"] == ["filter", "dedup", "select"]
        for step in ("filter", "dedup", "select"):
            mine = [r for r in steps if r["step"] == step]
            tokens_in = next(int(r["tokens"]) for r in mine if r["reason"] == "in")
            tokens_out = next(int(r["tokens"]) for r in mine if r["reason"] == "out")
            dropped = sum(int(r["tokens"]) for r in mine if r["reason"].startswith("dropped:"))
            assert tokens_in == tokens_out + dropped, (source, step)
        # Selection reaches the curated mix budget and passes it by at most one document per group.
        budget = sum(
            c["tokens"]
            for c in config["mix"]["components"].values()
            if c["source"] == source and c["curated"]
        )
        selected = next(int(r["tokens"]) for r in steps if r["step"] == "select" and r["reason"] == "out")
        groups = json.loads((results / f"curated/{source}/select.stats.json").read_text())["groups"]
        longest = max(
            max(pq.read_table(p, columns=["n_tokens"]).column("n_tokens").to_pylist(), default=0)
            for p in (results / f"curated/{source}").glob("part-*.parquet")
        )
        assert budget <= selected <= budget + len(groups) * longest, (source, selected, budget)
    code = {
        r["reason"]: int(r["docs"]) for r in rows if r["source"] == "starcoderdata" and r["step"] == "filter"
    }
    assert code["dropped:compression_ratio"] > 0  # the demo's planted boilerplate
    assert (results / "curation/yield_funnel.png").read_bytes()[:4] == b"\x89PNG"

    # Plant a degenerate topic classifier: one topic's output bias so large it is on everywhere.
    model_dir = results / "classifiers/topic/model"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    model.classifier.bias.data[2] = 40.0
    model.save_pretrained(model_dir)
    # Snakemake dates a directory output by the marker file it keeps inside; the plant is newer.
    (model_dir / ".snakemake_timestamp").touch()
    topic = config["labels"]["topics"][2]["name"]
    filtered = results / "filtered/fineweb_edu/part-0.parquet"
    before = filtered.stat().st_mtime_ns
    proc = snakemake(workdir, "--cores", "2", "results/demo/filtered/fineweb_edu/part-0.parquet", check=False)
    assert proc.returncode != 0
    log = (results / "logs/stage0/fineweb_edu.log").read_text()
    for text in (proc.stdout + proc.stderr, log):
        assert "Stage 0 gate stopped curation of fineweb_edu" in text
        assert f"topic:always_on:{topic}" in text
    assert not (results / "stage0/fineweb_edu/report.json").exists()
    failed = json.loads((results / "stage0/fineweb_edu/report.failed.json").read_text())
    assert f"topic:always_on:{topic}" in failed["failed"]
    # The DAG stopped before filtering: the filter job never ran after the classifier changed.
    assert filtered.stat().st_mtime_ns == before


def test_completed_demo_has_nothing_to_do(demo_run):
    out = snakemake(demo_run, "-n", "--cores", "2").stdout
    assert "Nothing to be done" in out or not planned_jobs(out), out[-2000:]


def test_operational_settings_rerun_nothing(demo_run, tmp_path):
    """Checkpoint retention and the cluster's partitions change where things run and what stays on
    disk, never a result: a finished run stays finished, and pruning kept the newest checkpoints."""
    keep = yaml.safe_load((demo_run / "config/config.yaml").read_text())["pretrain"]["keep_checkpoints"]
    for arm in ("curated", "uncurated"):
        steps = sorted((demo_run / f"results/demo/checkpoints/{arm}").glob("step-*"))
        assert 1 <= len(steps) <= keep, (arm, steps)
    changed = tmp_path / "operational.yaml"
    changed.write_text(
        yaml.safe_dump({"pretrain": {"keep_checkpoints": keep + 3}, "slurm": {"partitions": {"gpu": "a100"}}})
    )
    out = snakemake(demo_run, "-n", "--cores", "2", "--configfile", "config/config.yaml", str(changed)).stdout
    # Only the records of the config itself: its snapshot, and the plan, which prices the disk
    # the retained checkpoints take.
    assert set(planned_jobs(out)) <= {"config_snapshot", "plan", "all"}, out[-2000:]


def test_study_config_dry_runs_offline(tmp_path):
    workdir = copy_repo(tmp_path)
    out = snakemake(workdir, "-n", "--cores", "8", "--configfile", "config/study.yaml").stdout
    jobs = planned_jobs(out)
    for rule in [
        "acquire",
        "normalize",
        "label_sample",
        "label",
        "train_classifier",
        "score",
        "signatures",
        "filter",
        "dedup_fineweb_edu",
        "dedup_starcoderdata",
        "train_tokenizer",
        "tokenize",
        "mix",
        "pretrain",
        "convert",
        "fetch_baseline",
        "fetch_posttrain_data",
        "build_posttrain_data",
        "sft",
        "dpo",
        "build_json_suite",
        "evaluate",
        "evaluate_harness",
        "fetch_eval_data",
        "tables",
    ]:
        assert rule in jobs, (rule, jobs)
    assert "build_harness_tasks" not in jobs  # the study runs lm-eval's own tasks
    assert jobs["fetch_baseline"] == 4 and jobs["pretrain"] == 2
    assert jobs["fetch_posttrain_data"] == 1  # xLAM, beside the generated post-training data
    study = yaml.safe_load((workdir / "config/study.yaml").read_text())
    for arm in study["arms"]:  # every arm, Pythia's compute-matched and final revisions too, to DPO
        assert f"results/study/models/{arm}/dpo" in out, arm
    assert not (workdir / "results").exists()  # a dry run writes nothing


def test_bad_config_value_names_the_key(tmp_path):
    workdir = copy_repo(tmp_path)
    config_path = workdir / "config/config.yaml"
    config_path.write_text(config_path.read_text().replace("min_complexity: 1.8", "min_complexity: 9"))
    proc = snakemake(workdir, "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "min_complexity" in message and "maximum" in message


def test_lint_is_clean():
    proc = snakemake(ROOT, "--lint", check=False)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )[-3000:]


def declared_report_items() -> tuple[set[str], dict[str, str]]:
    """Categories of every output the rules declare with report(), and each caption file's rule."""
    text = "".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    categories = set(re.findall(r'category="([^"]+)"', text))
    captions = {}
    for block in re.split(r"\n(?=rule \w+:)", text):
        rule = re.match(r"rule (\w+):", block)
        for caption in re.findall(r'caption="\.\./(report/[^"]+)"', block):
            captions[caption] = rule.group(1) if rule else ""
    return categories, captions


def test_report_has_every_declared_section_and_renders(demo_run, tmp_path):
    report = demo_run / "results/demo/report.html"
    snakemake(demo_run, "--report", str(report))
    html = report.read_text()
    categories, captions = declared_report_items()
    assert {"1. Plan", "2. Classifiers", "3. Curation", "4. Pretraining", "5. Benchmarks"} <= categories, (
        categories
    )
    for category in categories:
        assert category in html, f"report lacks section {category!r}"
    ran = {p.name.split(".")[0] for p in (demo_run / "results/demo/logs").iterdir()}
    for caption, rule in sorted(captions.items()):
        if rule and rule not in ran:  # a study-only rule (validate_harness): not in the demo's report
            continue
        # A caption's first line of prose (templated captions render their placeholders).
        first = next(line for line in (ROOT / caption).read_text().splitlines() if line.strip())
        words = first.split("{{")[0].split()[:6]
        assert " ".join(words) in html, f"report lacks the caption of {caption}"

    # The main page in a headless browser: a screenshot with real content, not a blank page.
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (.ci/run installs Debian's chromium)"
    png = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            f"--screenshot={png}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    image = Image.open(png).convert("L")
    assert image.size == (1400, 1000)
    histogram = image.histogram()
    # A rendered page: dark text on light panels and a dark sidebar, many grey levels.
    assert sum(1 for count in histogram if count) > 50
