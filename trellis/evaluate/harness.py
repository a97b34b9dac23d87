"""lm-eval-harness tasks (tier 2): lm-eval's own tasks in the study, local task files in the demo.

The study config names lm-eval's tasks (mmlu, hellaswag, arc_easy, arc_challenge, gsm8k, piqa,
winogrande, lambada_openai, sciq), each with its number of shots; lm-eval loads their data from
the Hugging Face hub when it builds a task. GPU nodes often have no route out, so rule
``fetch_harness_data`` builds the tasks once where the internet is reachable, which loads their
datasets into a cache beside its manifest (``fetch_task_data``), and ``evaluate_harness`` runs on
that cache offline (``use_data_cache``: both set datasets' and the hub client's cache locations,
and the offline switches for evaluation, before either library is imported). The demo has no
network, so ``write_demo_tasks`` writes three task YAMLs
with local JSON Lines data (a multiple-choice, a loglikelihood cloze and a generate-until task,
the three request types the study's tasks use) and they are found through lm-eval's
``include_path``: the same ``run_tasks`` call, the same lm-eval code path.

Base models are evaluated as lm-eval does by default; SFT/DPO models through their chat template
(``apply_chat_template``, few-shot examples as earlier turns), the format they were trained with.

Each task becomes a Trellis result record like the generation benchmarks': every lm-eval metric
that is a mean over documents (acc, acc_norm, exact_match, ...) with a percentile-bootstrap CI
from the per-document scores lm-eval logs, so curated-minus-control deltas pair documents. A
group task (mmlu) pools its subtasks' documents, which is lm-eval's size-weighted group mean.
Metrics aggregated otherwise (perplexity) are kept as lm-eval reports them, without a CI.

The harness is checked against Pythia-410M-deduped's published zero-shot numbers
(``PYTHIA_410M_DEDUPED_ZERO_SHOT``, within ``VALIDATION_TOLERANCE``): in the study by rule
``validate_harness`` (``validate_model`` on the final Pythia-410M-deduped baseline arm, with the
arms' settings and the fetched data, offline), which the headline table waits for; by hand with
``python -m trellis.evaluate.harness validate --model EleutherAI/pythia-410m-deduped`` (network and
a GPU advised; see README).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from trellis.acquire.download import read_manifest, write_manifest
from trellis.core.bootstrap import metric_intervals
from trellis.core.io import atomic_path, read_json, write_jsonl
from trellis.evaluate.results import RESULT_FORMAT, model_info

log = logging.getLogger(__name__)

RESULT_PREFIX = "lm_"  # result files are eval/<arm>/<stage>/lm_<task>.json

# Pythia-410M-deduped, zero-shot, as published (Biderman et al. 2023, evaluation tables; the
# issue that asked for this check lists them). Metric: acc.
PYTHIA_410M_DEDUPED_ZERO_SHOT = {
    "lambada_openai": 0.524,
    "piqa": 0.675,
    "winogrande": 0.534,
    "arc_easy": 0.517,
    "arc_challenge": 0.202,
    "sciq": 0.826,
}


def benchmark_name(task: str) -> str:
    return f"{RESULT_PREFIX}{task}"


# ---- running lm-eval ------------------------------------------------------------------------------


def _task_manager(task_manager_cls, include_path, tasks):
    """lm-eval's TaskManager for ``tasks``: the include_path's tasks alone when they are all there.

    Indexing lm-eval's own ~15k task files takes ~12 s per job on a small CPU; when every task
    asked for is in ``include_path`` (the demo's local tasks) that index is not needed, and a task
    found there would take precedence over a built-in one of the same name anyway.
    """
    if include_path:
        local = task_manager_cls(include_path=str(include_path), include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local
    return task_manager_cls(include_path=str(include_path) if include_path else None)


def _known_tasks(task_manager_cls, include_path, tasks):
    """``_task_manager``, refusing a task it does not know."""
    manager = _task_manager(task_manager_cls, include_path, tasks)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        where = f" or in {include_path}" if include_path else ""
        raise ValueError(
            f"lm-eval knows no task {unknown} (not among its {len(manager.all_tasks)} tasks{where})"
        )
    return manager


def run_tasks(
    model_dir: str | os.PathLike,
    stage: str,
    tasks: dict[str, int],
    include_path: str | os.PathLike | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    device: str | None = None,
    seed: int = 1234,
) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` over ``tasks`` ({task: num_fewshot}), samples logged.

    Tasks are run in groups of equal shot count (lm-eval takes one num_fewshot per call) with
    one loaded model; the returned dict merges the groups' results, samples and configs.
    """
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    if stage not in ("base", "sft", "dpo"):
        raise ValueError(f"unknown stage {stage!r}; expected base, sft or dpo")
    if not tasks:
        raise ValueError("no lm-eval tasks to run")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    manager = _known_tasks(TaskManager, include_path, tasks)
    # bf16 on GPU as the study trains; fp32 on CPU (bf16 matmuls are slow there).
    model = HFLM(
        pretrained=str(model_dir),
        device=device,
        dtype="bfloat16" if device.startswith("cuda") else "float32",
        batch_size=batch_size,
    )
    chat = stage != "base"
    merged: dict[str, Any] = {"results": {}, "samples": {}, "configs": {}, "group_subtasks": {}, "n-shot": {}}
    by_shots: dict[int, list[str]] = {}
    for task, shots in tasks.items():
        by_shots.setdefault(int(shots), []).append(task)
    for shots, names in sorted(by_shots.items()):
        log.info("lm-eval: %s with %d shot(s), %s prompts", names, shots, "chat" if chat else "plain")
        out = _simple_evaluate(
            model=model,
            tasks=names,
            num_fewshot=shots,
            limit=limit,
            log_samples=True,
            task_manager=manager,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat and shots > 0,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            # No lm-eval stderr: CIs come from the per-document scores (to_results), and lm-eval
            # bootstraps perplexity's stderr in a fork()ed multiprocessing pool, which can hang
            # forever in a process that already runs torch's threads (seen here, in a test).
            bootstrap_iters=0,
        )
        for key in merged:
            merged[key].update(out.get(key) or {})
    return {**merged, "lm_eval_version": version("lm_eval")}


def _simple_evaluate(**kwargs) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` without its environment report.

    simple_evaluate ends by adding torch's environment report to its output (collect_env: pip
    list, lscpu and more in subprocesses, about 1.3 CPU-seconds a call on the demo's machine).
    Nothing here keeps it, so it is not collected.
    """
    from unittest import mock

    import lm_eval
    import lm_eval.evaluator

    with mock.patch.object(lm_eval.evaluator, "add_env_info", lambda storage: None):
        return lm_eval.simple_evaluate(**kwargs)


def _leaf_tasks(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    if name not in group_subtasks:
        return [name]
    return [leaf for sub in group_subtasks[name] for leaf in _leaf_tasks(sub, group_subtasks)]


def _mean_metrics(config: dict) -> set[str]:
    listed = config.get("metric_list") or []
    means = {m["metric"] for m in listed if m.get("aggregation", "mean") == "mean"}
    # Tasks without an explicit metric list use the output type's defaults, all means but
    # loglikelihood's perplexity.
    return means or {"acc", "acc_norm", "exact_match"}


def to_results(
    raw: dict[str, Any],
    tasks: Iterable[str],
    arm: str,
    stage: str,
    model: dict,
    bootstrap: dict,
    seed: int,
) -> dict[str, dict]:
    """One Trellis result record per task (keyed by the result's benchmark name)."""
    resamples, confidence = int(bootstrap["resamples"]), float(bootstrap["confidence"])
    results = {}
    for task in tasks:
        leaves = _leaf_tasks(task, raw["group_subtasks"])
        per_doc: dict[str, dict[str, float]] = {}
        mean_metrics: set[str] = set()
        for leaf in leaves:
            if leaf not in raw["samples"]:
                raise KeyError(f"lm-eval returned no samples for task {leaf!r} (of {task!r})")
            metric_names = _mean_metrics(raw["configs"].get(leaf, {}))
            for sample in raw["samples"][leaf]:
                doc = (
                    f"{leaf}/{sample['doc_id']}" if len(leaves) > 1 or leaf != task else str(sample["doc_id"])
                )
                for metric in sample.get("metrics", []):
                    if metric not in metric_names or not isinstance(sample.get(metric), (int, float)):
                        continue
                    name = (
                        metric if sample.get("filter", "none") == "none" else f"{metric}/{sample['filter']}"
                    )
                    mean_metrics.add(name)
                    per_doc.setdefault(doc, {})[name] = float(sample[metric])
        if not per_doc:
            raise ValueError(f"lm-eval task {task!r}: no per-document scores to bootstrap")
        examples = [{"id": doc, "scores": scores} for doc, scores in sorted(per_doc.items())]
        metrics = metric_intervals(examples, sorted(mean_metrics), resamples, confidence, seed)
        reported = {
            k: v
            for k, v in (raw["results"].get(task) or {}).items()
            if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))
        }
        results[benchmark_name(task)] = {
            "format": RESULT_FORMAT,
            "arm": arm,
            "stage": stage,
            "benchmark": benchmark_name(task),
            "model": model,
            "data": {
                "harness": "lm-eval",
                "task": task,
                "subtasks": leaves if leaves != [task] else [],
                "num_fewshot": raw["n-shot"].get(task),
                "lm_eval_version": raw.get("lm_eval_version"),
            },
            "n": len(examples),
            "metrics": metrics,
            # lm-eval's own aggregates (incl. perplexity, which has no CI here), for comparison.
            "harness_results": reported,
            "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed},
            "generation": {"prompt": "chat template" if stage != "base" else "lm-eval task prompt"},
            "examples": examples,
        }
    return results


def evaluate_harness(
    model_dir: str | os.PathLike,
    stage: str,
    arm: str,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    include_path: str | os.PathLike | None = None,
    data_manifest: str | os.PathLike | None = None,
) -> dict[str, dict]:
    """Run the configured tasks on one model; {benchmark name: result record}.

    ``data_manifest``: the tasks' data as ``fetch_task_data`` cached it; the process must run on
    that cache, offline (``use_data_cache``), and each result names its datasets' commits.
    """
    tasks = {str(t): int(s) for t, s in cfg["tasks"].items()}
    fetched = check_task_data(data_manifest, tasks) if data_manifest else None
    t0 = time.monotonic()
    raw = run_tasks(
        model_dir, stage, tasks, include_path, int(cfg.get("batch_size", 8)), cfg.get("limit"), seed=seed
    )
    results = to_results(raw, tasks, arm, stage, model_info(model_dir), bootstrap, seed)
    if fetched:
        for r in results.values():
            leaves = r["data"]["subtasks"] or [r["data"]["task"]]
            r["data"]["datasets"] = {
                leaf: {k: fetched["tasks"][leaf][k] for k in ("dataset_path", "dataset_name", "commit")}
                for leaf in leaves
                if leaf in fetched["tasks"]
            }
    elapsed = time.monotonic() - t0
    docs = sum(r["n"] for r in results.values())
    for r in results.values():
        r["timing"] = {
            "total_s": round(elapsed, 3),
            "docs_all_tasks": docs,
            "examples_per_s": round(docs / elapsed, 3) if elapsed > 0 else None,
        }
    return results


# ---- lm-eval's own tasks' data, fetched ahead (study) -----------------------------------------------

# The caches a fetch fills, under its directory (beside MANIFEST.json): datasets' prepared Arrow
# files, which an offline run reads, and the hub client's downloads they were prepared from.
DATA_CACHE_DIRS = {"HF_DATASETS_CACHE": "datasets", "HF_HUB_CACHE": "hub"}
OFFLINE_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
# Libraries that read those variables once, when they are first imported.
_READ_ENV_AT_IMPORT = ("datasets", "huggingface_hub", "lm_eval", "transformers", "evaluate")


def data_cache_env(data_dir: str | os.PathLike, offline: bool) -> dict[str, str]:
    """The environment that puts a process's datasets and hub caches under ``data_dir``
    (and, ``offline``, keeps it off the network)."""
    root = Path(data_dir).resolve()
    env = {var: str(root / sub) for var, sub in DATA_CACHE_DIRS.items()}
    return env | (OFFLINE_ENV if offline else {})


def use_data_cache(data_dir: str | os.PathLike, offline: bool) -> None:
    """Set ``data_cache_env`` for this process; it must come before datasets and lm-eval are imported."""
    loaded = [m for m in _READ_ENV_AT_IMPORT if m in sys.modules]
    if loaded:
        raise RuntimeError(
            f"{loaded} already imported: they read their cache and offline settings at import, "
            "so the lm-eval data cache must be set first"
        )
    os.environ.update(data_cache_env(data_dir, offline))


def _hub_commit(dataset_path: str | None, builder_dir: Path) -> str | None:
    """The commit a hub dataset was prepared from: datasets names its cache folder after it."""
    if not dataset_path or "/" not in dataset_path or Path(dataset_path).exists():
        return None  # a packaged builder (json, parquet, ...) or a local path
    name = builder_dir.name
    return name if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else None


def fetch_task_data(
    tasks: Iterable[str], out_dir: str | os.PathLike, include_path: str | os.PathLike | None = None
) -> Path:
    """Build ``tasks`` as lm-eval does, which loads their datasets into the cache; write the manifest.

    The process must run with ``data_cache_env(out_dir, offline=False)`` (``use_data_cache``): a
    task whose data did not land in that cache is an error. ``out_dir/MANIFEST.json`` lists every
    leaf task (a group's subtasks) with its dataset path, name, requested revision and the commit
    it resolved to, the rows per split, and the cached files with their sizes (``read_manifest``
    checks them).
    """
    from lm_eval.tasks import TaskManager

    out_dir = Path(out_dir).resolve()
    cache = out_dir / DATA_CACHE_DIRS["HF_DATASETS_CACHE"]
    requested = [str(t) for t in tasks]
    if not requested:
        raise ValueError("no lm-eval tasks to fetch")
    loaded = _known_tasks(TaskManager, include_path, requested).load(requested)
    records: dict[str, dict] = {}
    files: set[str] = set()
    for name, task in sorted(loaded["tasks"].items()):
        cfg = task.config
        dataset = getattr(task, "dataset", None)
        if dataset is None or not isinstance(getattr(dataset, "cache_files", None), dict):
            raise ValueError(
                f"lm-eval task {name!r} has no dataset splits to cache ({type(dataset).__name__})"
            )
        splits, builder_dirs = {}, set()
        for split, entries in sorted(dataset.cache_files.items()):
            paths = [Path(e["filename"]).resolve() for e in entries]
            if not paths or not all(p.is_relative_to(cache) for p in paths):
                raise RuntimeError(
                    f"lm-eval task {name!r}: split {split!r} is not cached under {cache} ({paths}); "
                    "set the cache (use_data_cache) before datasets is imported"
                )
            rel = [str(p.relative_to(out_dir)) for p in paths]
            files.update(rel)
            builder_dirs.update(p.parent for p in paths)
            splits[split] = {"rows": dataset[split].num_rows, "files": rel}
        for folder in builder_dirs:
            if (folder / "dataset_info.json").is_file():
                files.add(str((folder / "dataset_info.json").relative_to(out_dir)))
        commits = {_hub_commit(cfg.dataset_path, d) for d in builder_dirs}
        commit = commits.pop() if len(commits) == 1 else None
        records[name] = {
            "dataset_path": cfg.dataset_path,
            "dataset_name": cfg.dataset_name,
            "revision": (cfg.dataset_kwargs or {}).get("revision"),
            "commit": commit,
            "splits": splits,
        }
        rows = ", ".join(f"{split} {s['rows']}" for split, s in splits.items())
        log.info("%s: %s %s commit %s (rows: %s)", name, cfg.dataset_path, cfg.dataset_name, commit, rows)
    return write_manifest(
        out_dir,
        sorted(files),
        backend="lm-eval",
        lm_eval_version=version("lm_eval"),
        requested=requested,
        groups={str(g): [str(c) for c in children] for g, children in loaded["group_map"].items()},
        tasks=records,
        cache=DATA_CACHE_DIRS,
    )


def check_task_data(manifest: str | os.PathLike, tasks: Iterable[str]) -> dict:
    """The fetch's manifest, once its files are all there and it covers ``tasks``, in this
    process's cache (``use_data_cache``, offline)."""
    read_manifest(manifest)
    fetched = read_json(manifest)
    missing = [t for t in tasks if t not in fetched["requested"]]
    if missing:
        raise ValueError(f"{manifest}: no data fetched for lm-eval task(s) {missing}; fetch it again")
    expected = data_cache_env(Path(manifest).parent, offline=True)
    wrong = {k: os.environ.get(k) for k, v in expected.items() if os.environ.get(k) != v}
    if wrong:
        raise RuntimeError(f"the lm-eval data cache is not this process's (use_data_cache): {wrong}")
    return fetched


# ---- the demo's local tasks -----------------------------------------------------------------------

DEMO_TASKS = ("trellis_demo_topic", "trellis_demo_cloze", "trellis_demo_arith")


def _topic_docs(topics: list[dict], rng: random.Random, n: int) -> list[dict]:
    names = [t["name"] for t in topics]
    docs = []
    for _ in range(n):
        topic = rng.choice(topics)
        a, b, c = rng.sample(topic["keywords"], 3)
        distractors = rng.sample([x for x in names if x != topic["name"]], 3)
        choices = [topic["name"], *distractors]
        rng.shuffle(choices)
        docs.append(
            {
                "passage": f"This passage explains the {a} and the {b}, and how the {c} fits in.",
                "choices": [x.replace("_", " ") for x in choices],
                "gold": choices.index(topic["name"]),
            }
        )
    return docs


def _cloze_docs(topics: list[dict], rng: random.Random, n: int) -> list[dict]:
    docs = []
    for _ in range(n):
        topic = rng.choice(topics)
        word = rng.choice([k for k in topic["keywords"] if " " not in k])
        other = rng.choice(topic["keywords"])
        # The last word repeats one named earlier: predictable from context, as in LAMBADA.
        docs.append(
            {
                "text": f"The lesson was about the {word} and the {other}. At the end, everyone "
                f"remembered the {word}"
            }
        )
    return docs


def _arith_docs(rng: random.Random, n: int) -> list[dict]:
    docs = []
    for _ in range(n):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        docs.append({"question": f"What is {a} plus {b}?", "answer": str(a + b)})
    return docs


def _task_yaml(task: str, files: dict[str, Path]) -> dict:
    common = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {split: str(p) for split, p in files.items()}},
        "test_split": "test",
        "fewshot_split": "train",
        "metadata": {"version": 1.0},
    }
    if task == "trellis_demo_topic":
        return {
            **common,
            "output_type": "multiple_choice",
            "doc_to_text": "{{passage}}\nQuestion: Which subject is this passage about?\nAnswer:",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{gold}}",
            "metric_list": [
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        }
    if task == "trellis_demo_cloze":
        return {
            **common,
            "output_type": "loglikelihood",
            "doc_to_text": "{{text.split(' ')[:-1]|join(' ')}}",
            "doc_to_target": "{{' '+text.split(' ')[-1]}}",
            "metric_list": [
                {"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            ],
        }
    return {
        **common,
        "output_type": "generate_until",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{answer}}",
        "target_delimiter": " ",
        "generation_kwargs": {"until": ["\n", "Question:"], "do_sample": False, "max_gen_toks": 8},
        "filter_list": [
            {
                "name": "number",
                "filter": [{"function": "regex", "regex_pattern": "(-?[0-9]+)"}, {"function": "take_first"}],
            }
        ],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }


def write_demo_tasks(
    out_dir: str | os.PathLike,
    topics: list[dict],
    seed: int,
    docs: int,
    final_dir: str | os.PathLike | None = None,
) -> list[str]:
    """Write the demo's lm-eval task YAMLs and their JSON Lines data (train for shots, test).

    The YAMLs name their data files by absolute path (``datasets`` resolves relative ones against
    the working directory, not the YAML's): under ``final_dir`` when the directory is written
    elsewhere first and moved there (an atomic directory output), else under ``out_dir``.
    """
    if docs < 1:
        raise ValueError(f"docs must be >= 1, got {docs}")
    if len(topics) < 4 or any(len(t.get("keywords", [])) < 3 for t in topics):
        raise ValueError("the demo's lm-eval tasks need >= 4 topics with >= 3 keywords each (labels.topics)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for task in DEMO_TASKS:
        rng = random.Random(f"{seed}/{task}")
        files = {}
        for split, n in (("train", 8), ("test", docs)):
            if task == "trellis_demo_topic":
                rows = _topic_docs(topics, rng, n)
            elif task == "trellis_demo_cloze":
                rows = _cloze_docs(topics, rng, n)
            else:
                rows = _arith_docs(rng, n)
            name = f"{task}.{split}.jsonl"
            write_jsonl(out / name, rows)
            files[split] = Path(final_dir or out).resolve() / name
        with atomic_path(out / f"{task}.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(_task_yaml(task, files), sort_keys=False))
    return list(DEMO_TASKS)


# ---- harness validation against published numbers ---------------------------------------------

# The model whose published numbers the check reproduces, the metric, and the allowed
# |ours - published| per task: about one and a half points of acc, which covers the published
# run's precision, batch size and lm-eval version against ours.
PUBLISHED_MODEL = "EleutherAI/pythia-410m-deduped"
PUBLISHED_METRIC = "acc"
VALIDATION_TOLERANCE = 0.015


def compare_published(ours: dict[str, float], published: dict[str, float], tolerance: float) -> list[dict]:
    """Rows task, ours, published, difference (ours - published), within_tolerance; a task
    missing from ``ours`` is not within tolerance."""
    rows = []
    for task, ref in published.items():
        got = ours.get(task)
        difference = None if got is None else got - ref
        rows.append(
            {
                "task": task,
                "ours": got,
                "published": ref,
                "difference": difference,
                "within_tolerance": difference is not None and abs(difference) <= tolerance,
            }
        )
    return rows


def reported_acc(lm_eval_results: dict[str, dict], tasks: Iterable[str]) -> dict[str, float]:
    """lm-eval's own aggregate of the published metric per task (unfiltered), where it has one."""
    key = f"{PUBLISHED_METRIC},none"
    return {t: float(lm_eval_results[t][key]) for t in tasks if key in (lm_eval_results.get(t) or {})}


def validation_record(rows: list[dict], tolerance: float, **info: Any) -> dict:
    """What ``eval/harness_validation.json`` holds: per task ours, published, difference and
    within_tolerance; the tolerance; overall pass; and ``info`` (model, settings)."""
    return {
        "published_model": PUBLISHED_MODEL,
        "metric": PUBLISHED_METRIC,
        "num_fewshot": 0,
        "tolerance": tolerance,
        "pass": all(r["within_tolerance"] for r in rows),
        "tasks": {r["task"]: {k: v for k, v in r.items() if k != "task"} for r in rows},
        **info,
    }


def validation_failures(record: dict) -> list[str]:
    """One line per task outside tolerance: the task, ours, published and the tolerance."""
    tol = record["tolerance"]
    lines = []
    for task, r in record["tasks"].items():
        if r["within_tolerance"]:
            continue
        if r["ours"] is None:
            ours = "ours missing (lm-eval reported no acc)"
        else:
            ours = f"ours {r['ours']:.4f}"
        diff = "" if r["difference"] is None else f", difference {r['difference']:+.4f}"
        lines.append(f"{task}: {ours}, published {r['published']:.4f}{diff}, tolerance ±{tol:g}")
    return lines


def check_validation(record: dict) -> None:
    """Raise ``ValueError`` naming every task outside tolerance (task, ours, published, tolerance)."""
    failures = validation_failures(record)
    if failures:
        raise ValueError(
            f"lm-eval does not reproduce {record['published_model']}'s published zero-shot "
            f"{record['metric']} on {len(failures)} of {len(record['tasks'])} tasks; the arms' lm-eval "
            "results cannot be trusted until it does:\n  " + "\n  ".join(failures)
        )


def validation_table(record: dict) -> str:
    """The comparison as a Markdown table (log, CLI)."""
    lines = ["| task | ours | published | difference | within tolerance |", "|---|---:|---:|---:|---|"]
    for task, r in record["tasks"].items():
        ours = "-" if r["ours"] is None else f"{r['ours']:.3f}"
        diff = "-" if r["difference"] is None else f"{r['difference']:+.3f}"
        ok = "yes" if r["within_tolerance"] else "NO"
        lines.append(f"| {task} | {ours} | {r['published']:.3f} | {diff} | {ok} |")
    return "\n".join(lines)


def write_validation_csv(record: dict, path: str | os.PathLike) -> None:
    """The comparison as a small CSV (the report's table), written atomically."""
    import csv

    fields = ["task", "ours", "published", "difference", "within_tolerance", "tolerance"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for task, r in record["tasks"].items():
            writer.writerow({"task": task, **r, "tolerance": record["tolerance"]})


def validate_model(
    model_dir: str | os.PathLike,
    cfg: dict,
    seed: int,
    tolerance: float = VALIDATION_TOLERANCE,
    data_manifest: str | os.PathLike | None = None,
) -> dict:
    """The workflow's check (rule ``validate_harness``): the published tasks, zero-shot, on a
    local model directory through ``run_tasks`` with the arms' harness settings (``cfg``: batch
    size and limit; bf16 on a GPU, plain prompts as for base models). ``data_manifest``: the tasks'
    data as ``fetch_task_data`` cached it, read offline (``use_data_cache``). Returns the
    validation record; ``check_validation`` decides.
    """
    tasks = {t: 0 for t in PYTHIA_410M_DEDUPED_ZERO_SHOT}
    if data_manifest:
        check_task_data(data_manifest, tasks)
    raw = run_tasks(
        model_dir, "base", tasks, None, int(cfg.get("batch_size", 8)), cfg.get("limit"), seed=seed
    )
    rows = compare_published(reported_acc(raw["results"], tasks), PYTHIA_410M_DEDUPED_ZERO_SHOT, tolerance)
    return validation_record(
        rows,
        tolerance,
        model=model_info(model_dir),
        n={t: len(raw["samples"].get(t) or []) for t in tasks},
        batch_size=int(cfg.get("batch_size", 8)),
        limit=cfg.get("limit"),
        lm_eval_version=raw.get("lm_eval_version"),
    )


def validate(model: str, revision: str, batch_size: int, device: str | None, tolerance: float) -> dict:
    """Pythia-410M-deduped (or another model with the same published table) from the hub, on
    the six tasks (the CLI); the validation record."""
    out = _simple_evaluate(
        model="hf",
        model_args={
            "pretrained": model,
            "revision": revision,
            "dtype": "float32" if device == "cpu" else "auto",
        },
        tasks=list(PYTHIA_410M_DEDUPED_ZERO_SHOT),
        num_fewshot=0,
        batch_size=batch_size,
        device=device,
        log_samples=False,
    )
    ours = reported_acc(out["results"], PYTHIA_410M_DEDUPED_ZERO_SHOT)
    rows = compare_published(ours, PYTHIA_410M_DEDUPED_ZERO_SHOT, tolerance)
    return validation_record(rows, tolerance, model={"repo": model, "revision": revision})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trellis.evaluate.harness")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "validate", help="compare lm-eval zero-shot acc with Pythia-410M-deduped's published numbers"
    )
    v.add_argument("--model", default=PUBLISHED_MODEL)
    v.add_argument("--revision", default="main")
    v.add_argument("--batch-size", type=int, default=16)
    v.add_argument("--device", default=None, help="cuda, cpu, ... (default: lm-eval's choice)")
    v.add_argument(
        "--tolerance", type=float, default=VALIDATION_TOLERANCE, help="allowed |ours - published| (acc)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    record = validate(args.model, args.revision, args.batch_size, args.device, args.tolerance)
    print(validation_table(record))
    bad = validation_failures(record)
    n = len(record["tasks"])
    print(f"{n - len(bad)}/{n} tasks within ±{args.tolerance:g} of the published numbers")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
