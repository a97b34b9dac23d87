"""lm-eval's own tasks' data fetched ahead (fetch_harness_data), then evaluated offline (evaluate_harness).

A dataset repository on the local stand-in hub (tests/conftest.py) holds an lm-eval task's data;
the task's YAML names it by repo id, as lm-eval's own tasks name theirs. Each step runs in its own
process, as the rule's job does, since datasets and huggingface_hub read their cache and offline
settings when first imported: the fetch builds the task (datasets downloads and prepares it into
the cache), and the evaluation, with HF_DATASETS_OFFLINE/HF_HUB_OFFLINE set, reads only that cache;
without the fetch the same offline run fails.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_json_schema import make_tiny_model

from trellis.acquire.download import read_manifest, write_manifest
from trellis.evaluate import harness

ROOT = Path(__file__).resolve().parents[2]
REPO = "trellis-test/tiny-topic"
TASK = "trellis_hub_topic"
CONFIG = "subjects"
TOPICS = [{"name": f"topic_{i}", "keywords": [f"alpha{i}", f"beta{i}", f"gamma{i}"]} for i in range(5)]


def parquet(rows: list[dict]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def hub(hf_hub):
    rng = random.Random(3)
    # One named config, as most of lm-eval's tasks use (ARC-Easy, main, winogrande_xl, MMLU's subjects).
    card = f"""---
configs:
- config_name: {CONFIG}
  data_files:
  - split: train
    path: {CONFIG}/train-*.parquet
  - split: test
    path: {CONFIG}/test-*.parquet
---
# a tiny multiple-choice set
"""
    files = {
        "README.md": card.encode(),
        f"{CONFIG}/train-00000-of-00001.parquet": parquet(harness._topic_docs(TOPICS, rng, 4)),
        f"{CONFIG}/test-00000-of-00001.parquet": parquet(harness._topic_docs(TOPICS, rng, 10)),
    }
    return hf_hub({("dataset", REPO): files})


@pytest.fixture
def task_dir(tmp_path):
    """The demo's multiple-choice task, its data on the hub instead of in local files."""
    spec = harness._task_yaml("trellis_demo_topic", {})
    spec.pop("dataset_kwargs")
    spec |= {"task": TASK, "dataset_path": REPO, "dataset_name": CONFIG}
    out = tmp_path / "tasks"
    out.mkdir()
    (out / f"{TASK}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    """A fresh Python process (nothing imported yet), as a rule's job starts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in (*harness.DATA_CACHE_DIRS, *harness.OFFLINE_ENV):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


FETCH = """
    import sys
    from trellis.evaluate.harness import fetch_task_data, use_data_cache
    use_data_cache(sys.argv[1], offline=False)
    print(fetch_task_data(sys.argv[3:], sys.argv[1], include_path=sys.argv[2]))
"""

EVALUATE = """
    import json, sys
    from trellis.evaluate.harness import evaluate_harness, use_data_cache
    data_dir, tasks_dir, model, out = sys.argv[1:5]
    use_data_cache(data_dir, offline=True)
    cfg = {"tasks": {sys.argv[5]: 0}, "batch_size": 4, "limit": None}
    boot = {"resamples": 100, "confidence": 0.95}
    manifest = f"{data_dir}/MANIFEST.json"
    results = evaluate_harness(model, "base", "curated", cfg, boot, 0, tasks_dir, data_manifest=manifest)
    open(out, "w").write(json.dumps(results))
"""

BUILD_OFFLINE = """
    import sys
    from trellis.evaluate.harness import use_data_cache
    use_data_cache(sys.argv[1], offline=True)
    from lm_eval.tasks import TaskManager
    TaskManager(include_path=sys.argv[2], include_defaults=False).load([sys.argv[3]])
"""


def test_fetched_data_is_evaluated_offline(hub, task_dir, tiny_model, tmp_path):
    data_dir = tmp_path / "downloads" / "lm_eval"
    fetch = run(FETCH, data_dir, task_dir, TASK)
    assert fetch.returncode == 0, fetch.stderr[-4000:]
    manifest_path = data_dir / "MANIFEST.json"
    assert fetch.stdout.strip() == str(manifest_path)
    assert hub.file_gets()  # the data came from the hub

    manifest = json.loads(manifest_path.read_text())
    assert manifest["backend"] == "lm-eval" and manifest["requested"] == [TASK]
    record = manifest["tasks"][TASK]
    assert record["dataset_path"] == REPO and record["dataset_name"] == CONFIG
    assert record["revision"] is None and record["commit"] == hub.commit
    assert {s: v["rows"] for s, v in record["splits"].items()} == {"train": 4, "test": 10}
    cached = read_manifest(manifest_path)
    assert cached and all(p.is_relative_to(data_dir.resolve() / "datasets") for p in cached)

    # Offline, from the cache alone: the hub is still up, and is not asked for anything.
    seen = len(hub.requests)
    out = tmp_path / "results.json"
    evaluate = run(EVALUATE, data_dir, task_dir, tiny_model, out, TASK)
    assert evaluate.returncode == 0, evaluate.stderr[-4000:]
    assert len(hub.requests) == seen, hub.requests[seen:]
    result = json.loads(out.read_text())[f"lm_{TASK}"]
    assert result["n"] == 10 and set(result["metrics"]) == {"acc", "acc_norm"}
    assert result["data"]["datasets"] == {
        TASK: {"dataset_path": REPO, "dataset_name": CONFIG, "commit": hub.commit}
    }

    # The same offline build with no fetched cache cannot load the task's data.
    empty = tmp_path / "no-fetch"
    offline = run(BUILD_OFFLINE, empty, task_dir, TASK)
    assert offline.returncode != 0
    assert f"Couldn't reach '{REPO}' on the Hub" in offline.stderr, offline.stderr[-4000:]
    assert len(hub.requests) == seen


def test_cache_must_be_set_before_the_libraries_are_imported(tmp_path):
    import datasets  # noqa: F401  (as any earlier import of it would)

    with pytest.raises(RuntimeError, match="datasets"):
        harness.use_data_cache(tmp_path, offline=True)
    env = harness.data_cache_env(tmp_path, offline=True)
    assert env["HF_DATASETS_CACHE"] == str(tmp_path.resolve() / "datasets")
    assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in harness.data_cache_env(tmp_path, offline=False)


def test_fetch_refuses_data_cached_elsewhere(tmp_path):
    """In a process whose datasets cache is not the fetch's (datasets imported first), the data would
    not be where the evaluation looks: an error, not a manifest."""
    tasks = tmp_path / "tasks"
    topics = yaml.safe_load((ROOT / "config/config.yaml").read_text())["labels"]["topics"]
    harness.write_demo_tasks(tasks, topics, seed=1, docs=3)
    with pytest.raises(RuntimeError, match="not cached under"):
        harness.fetch_task_data(["trellis_demo_topic"], tmp_path / "data", include_path=tasks)
    assert not (tmp_path / "data" / "MANIFEST.json").exists()


def test_evaluation_checks_the_manifest_and_its_cache(tmp_path, monkeypatch):
    data = tmp_path / "lm_eval"
    (data / "datasets").mkdir(parents=True)
    (data / "datasets" / "x.arrow").write_bytes(b"arrow")
    write_manifest(data, ["datasets/x.arrow"], requested=["arc_easy"], tasks={})
    manifest = data / "MANIFEST.json"
    with pytest.raises(ValueError, match=r"no data fetched for lm-eval task\(s\) \['sciq'\]"):
        harness.check_task_data(manifest, ["arc_easy", "sciq"])
    for var in (*harness.DATA_CACHE_DIRS, *harness.OFFLINE_ENV):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="HF_DATASETS_CACHE"):
        harness.check_task_data(manifest, ["arc_easy"])
    for var, value in harness.data_cache_env(data, offline=True).items():
        monkeypatch.setenv(var, value)
    assert harness.check_task_data(manifest, ["arc_easy"])["requested"] == ["arc_easy"]
    (data / "datasets" / "x.arrow").unlink()
    with pytest.raises(FileNotFoundError, match="x.arrow"):
        harness.check_task_data(manifest, ["arc_easy"])
