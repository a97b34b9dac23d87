"""BFCL's prompt mode checked against the leaderboard's published prompt-mode numbers.

Before the arms' BFCL numbers are trusted, the study scores a small public model that the
leaderboard lists as a prompting model, through exactly the arms' path (``evaluate_bfcl`` in
prompt mode, every published category in full, chat template, greedy), and compares its
aggregates with the published ones (rule ``validate_bfcl``; the headline table waits for it).

The model: Qwen/Qwen3-0.6B, row "Qwen3-0.6B (Prompt)" of the BFCL V4 leaderboard update of
2025-12-16 (checkpoint f7cf735), as published in the leaderboard's data files on the gh-pages
branch of github.com/ShishirPatil/gorilla, commit ea03bc8dd716546f4d4c6dd462368a9ab18cc2e0
("[BFCL] Leaderboard Update - 2025/12/16 (Checkpoint f7cf735) (#1268)"): ``data_non_live.csv``
(Python/Java/JavaScript simple, multiple, parallel, parallel multiple, irrelevance),
``data_live.csv`` (live simple, multiple, parallel, parallel multiple, irrelevance, relevance) and
``data_overall.csv`` (Non-Live AST Acc, Live Acc, Irrelevance Detection). The installed bfcl-eval
(2026.3.23) ships the same single-turn data, possible answers, checker and prompting utilities as
that checkpoint (main commit f7cf7359; later commits touch multi-turn only), so the numbers are
comparable file for file. Qwen3 thinks before it answers; bfcl-eval's QwenHandler keeps the text
after ``</think>`` (``trellis.evaluate.bfcl.prompt_response`` does the same) and lets it generate
up to 4096 new tokens, hence ``evaluate.bfcl.validation.max_new_tokens``.

What is gated: the sections (Non-Live AST, Live AST, Irrelevance Detection and the single-turn
overall), each over hundreds to thousands of examples; per category the numbers are reported
but not gated (live_parallel and live_relevance have 16 examples each: a gate there would fail on
noise). The tolerance (``evaluate.bfcl.validation.tolerance``, 0.05 in the study) allows for the
serving difference: the leaderboard ran vLLM at temperature 0.001, we run transformers greedy in
bf16, and a thinking model's long generations then differ token by token; the sections' binomial
standard errors are about 1.5 points, so a 5-point miss is a protocol difference (prompt, chat
template, decoder, a cut-off thought), not noise.
"""

from __future__ import annotations

import csv
import logging
import os
from typing import Any

from trellis.core.io import atomic_path
from trellis.evaluate import bfcl

log = logging.getLogger(__name__)

PUBLISHED_MODEL = "Qwen/Qwen3-0.6B"
PUBLISHED_ROW = "Qwen3-0.6B (Prompt)"
PUBLISHED_SOURCE = (
    "BFCL V4 leaderboard, update 2025-12-16 (checkpoint f7cf735): data_non_live.csv, data_live.csv, "
    "data_overall.csv on the gh-pages branch of github.com/ShishirPatil/gorilla at commit "
    "ea03bc8dd716546f4d4c6dd462368a9ab18cc2e0"
)
DEFAULT_TOLERANCE = 0.05

# Per category, as published (percent / 100). data_non_live.csv: "Python Simple AST" 83.00%,
# "Java Simple AST" 49.00%, "JavaScript Simple AST" 60.00%, "Multiple AST" 78.00%, "Parallel AST"
# 75.00%, "Parallel Multiple AST" 63.00%, "Irrelevance Detection" 83.33%. data_live.csv: "Python
# Simple AST" 57.75%, "Python Multiple AST" 47.77%, "Python Parallel AST" 37.50%, "Python Parallel
# Multiple AST" 37.50%, "Irrelevance Detection" 81.67%, "Relevance Detection" 75.00%.
PUBLISHED_CATEGORIES = {
    "simple_python": 0.8300,
    "simple_java": 0.4900,
    "simple_javascript": 0.6000,
    "multiple": 0.7800,
    "parallel": 0.7500,
    "parallel_multiple": 0.6300,
    "irrelevance": 0.8333,
    "live_simple": 0.5775,
    "live_multiple": 0.4777,
    "live_parallel": 0.3750,
    "live_parallel_multiple": 0.3750,
    "live_irrelevance": 0.8167,
    "live_relevance": 0.7500,
}

# The sections, as published in data_overall.csv: "Non-Live AST Acc" 70.00%, "Live Acc" 49.37%,
# "Irrelevance Detection" 82.50%. The single-turn overall is not a published column: it is
# bfcl-eval's overall weighting applied to these three (``published_sections``).
_PUBLISHED_SECTION_COLUMNS = {"non_live_ast": 0.7000, "live_ast": 0.4937, "irrelevance_detection": 0.8250}
GATED = ("non_live_ast", "live_ast", "irrelevance_detection", "overall_offline")

# Every published category, in prompt mode: what validate_model runs.
VALIDATION_CATEGORIES = tuple(PUBLISHED_CATEGORIES)


def published_sections() -> dict[str, float]:
    """The gated sections' published values; the single-turn overall computed from the published
    sections with bfcl-eval's own helper and the leaderboard's weights."""
    weights = bfcl.LEADERBOARD_OVERALL_WEIGHTS
    sections = [_PUBLISHED_SECTION_COLUMNS[s] for s in ("non_live_ast", "live_ast", "irrelevance_detection")]
    overall = bfcl._bfcl()["percentage"](
        [{"accuracy": v, "total_count": 1, "display_accuracy": v} for v in sections],
        [weights["non_live"], weights["live"], weights["irrelevance"]],
    )["accuracy"]
    return {**_PUBLISHED_SECTION_COLUMNS, "overall_offline": overall}


def ours_from_results(results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """{"sections": {name: value}, "categories": {category: accuracy}} from ``evaluate_bfcl``'s
    prompt-mode results."""
    summary = results.get(bfcl.summary_name("prompt"))
    if summary is None:
        raise ValueError(f"no {bfcl.summary_name('prompt')} among the results: {sorted(results)}")
    categories = {}
    for category in VALIDATION_CATEGORIES:
        name = bfcl.benchmark_name("prompt", category)
        if name in results:
            categories[category] = float(results[name]["metrics"]["accuracy"]["value"])
    sections = {s: float(m["value"]) for s, m in summary["metrics"].items()}
    return {"sections": sections, "categories": categories}


def compare_published(ours: dict[str, dict[str, float]], tolerance: float) -> list[dict]:
    """One row per gated section and per published category: ours, published, difference,
    whether it is gated and within tolerance (a gated section we lack is out of tolerance)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    rows = []
    for kind, published, gated in (
        ("section", published_sections(), True),
        ("category", PUBLISHED_CATEGORIES, False),
    ):
        have = ours["sections" if kind == "section" else "categories"]
        for name, ref in published.items():
            got = have.get(name)
            difference = None if got is None else got - ref
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "ours": got,
                    "published": ref,
                    "difference": difference,
                    "gated": gated,
                    # A small epsilon: published values are rounded to 0.01 points.
                    "within_tolerance": difference is not None and abs(difference) <= tolerance + 1e-9,
                }
            )
    return rows


def validation_record(rows: list[dict], tolerance: float, **info: Any) -> dict:
    """What ``eval/bfcl_validation.json`` holds: the published model and source, the tolerance,
    overall pass (every gated section within it), the rows, and ``info`` (model, settings)."""
    return {
        "published_model": PUBLISHED_MODEL,
        "published_row": PUBLISHED_ROW,
        "source": PUBLISHED_SOURCE,
        "mode": "prompt",
        "tolerance": tolerance,
        "pass": all(r["within_tolerance"] for r in rows if r["gated"]),
        "rows": rows,
        **info,
    }


def validation_failures(record: dict) -> list[str]:
    """One line per gated section outside tolerance: the section, ours, published, tolerance."""
    lines = []
    for r in record["rows"]:
        if not r["gated"] or r["within_tolerance"]:
            continue
        ours = "ours missing (not computed)" if r["ours"] is None else f"ours {r['ours']:.4f}"
        diff = "" if r["difference"] is None else f", difference {r['difference']:+.4f}"
        lines.append(
            f"{r['name']}: {ours}, published {r['published']:.4f}{diff}, tolerance ±{record['tolerance']:g}"
        )
    return lines


def check_validation(record: dict) -> None:
    """Raise ``ValueError`` naming every gated section outside tolerance."""
    failures = validation_failures(record)
    if failures:
        gated = sum(1 for r in record["rows"] if r["gated"])
        raise ValueError(
            f"BFCL prompt mode does not reproduce the leaderboard's {record['published_row']} on "
            f"{len(failures)} of {gated} sections ({record['source']}); the arms' BFCL results cannot "
            "be trusted until it does:\n  " + "\n  ".join(failures)
        )


def validation_table(record: dict) -> str:
    """The comparison as a Markdown table (log)."""
    lines = [
        "| | ours | published | difference | gated | within tolerance |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in record["rows"]:
        ours = "-" if r["ours"] is None else f"{r['ours']:.3f}"
        diff = "-" if r["difference"] is None else f"{r['difference']:+.3f}"
        ok = "yes" if r["within_tolerance"] else ("NO" if r["gated"] else "no")
        lines.append(
            f"| {r['kind']} {r['name']} | {ours} | {r['published']:.3f} | {diff} | "
            f"{'yes' if r['gated'] else 'no'} | {ok} |"
        )
    return "\n".join(lines)


def write_validation_csv(record: dict, path: str | os.PathLike) -> None:
    """The comparison as a small CSV (the report's table), written atomically."""
    fields = ["kind", "name", "ours", "published", "difference", "gated", "within_tolerance", "tolerance"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in record["rows"]:
            writer.writerow({k: r[k] for k in fields[:-1]} | {"tolerance": record["tolerance"]})


def validate_model(
    model_dir: str | os.PathLike,
    cfg: dict,
    bootstrap: dict,
    seed: int,
    tolerance: float = DEFAULT_TOLERANCE,
    generator=None,
    limit: int | None = None,
) -> dict:
    """The workflow's check (rule ``validate_bfcl``): every published category in prompt mode on
    the model in ``model_dir``, through ``evaluate_bfcl`` as the arms are (chat template, greedy,
    no shots). ``cfg``: {max_new_tokens, batch_size}. ``limit`` (tests only): the first N of each
    category, which no longer measures what was published. Returns the validation record;
    ``check_validation`` decides.
    """
    from trellis.evaluate.dispatch import evaluate_bfcl

    if limit is not None:
        log.warning("BFCL validation on the first %d examples of each category only: not comparable", limit)
    run_cfg = {
        "categories": list(VALIDATION_CATEGORIES),
        "modes": ["prompt"],
        "limit": limit,
        "max_new_tokens": int(cfg["max_new_tokens"]),
        "batch_size": int(cfg.get("batch_size", 8)),
    }
    # "sft" selects the chat template with no shots: how an instruct model is prompted.
    results = evaluate_bfcl(model_dir, "sft", "bfcl_reference", run_cfg, bootstrap, seed, generator=generator)
    rows = compare_published(ours_from_results(results), tolerance)
    summary = results[bfcl.summary_name("prompt")]
    return validation_record(
        rows,
        tolerance,
        model=summary["model"],
        n={c: results[bfcl.benchmark_name("prompt", c)]["n"] for c in VALIDATION_CATEGORIES},
        max_new_tokens=run_cfg["max_new_tokens"],
        batch_size=run_cfg["batch_size"],
        limit=limit,
        bfcl_eval_version=summary["data"]["bfcl_eval_version"],
    )
