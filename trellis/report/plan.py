"""The plan of a run, from the config alone: what it trains on, what it costs, what it downloads.

A researcher reads this before spending anything: the token mix per arm, the model's parameter
count and training FLOPs, GPU-hours and cost per arm (``trellis.train.compute``, whose docstring
documents the FLOPs formula), the labeling requests, and every artifact the run fetches from the
Hugging Face hub. Nothing here touches the network or a GPU:

    python -m trellis.report.plan --configfile config/study.yaml

prints it; the workflow's ``plan`` rule writes it as ``plan/plan.md`` and ``plan/plan.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from trellis.core.io import atomic_path, write_json
from trellis.train import compute
from trellis.train.baselines import resolve_revision


def token_mix(config: dict) -> list[dict[str, Any]]:
    """One row per mix component: its source, budget, share of the mix, and what each arm reads."""
    components = config["mix"]["components"]
    total = sum(int(c["tokens"]) for c in components.values())
    rows = []
    for name, c in components.items():
        tokens = int(c["tokens"])
        rows.append(
            {
                "component": name,
                "source": c["source"],
                "tokens": tokens,
                "share": tokens / total if total else 0.0,
                "curated_arm_reads": "curated" if c.get("curated") else "raw",
                "other_arms_read": "raw",
                "upsample": bool(c.get("upsample", False)),
            }
        )
    return rows


def downloads(config: dict) -> list[dict[str, Any]]:
    """Every artifact the run fetches from the hub (none in the demo): what, where, which files."""
    rows = []
    if config["acquire"]["backend"] == "huggingface":
        for source, spec in config["sources"].items():
            hf = spec["hf"]
            rows.append(
                {
                    "what": f"source {source}",
                    "repo": hf["repo"],
                    "revision": hf["revision"],
                    "files": ", ".join(hf["allow_patterns"]),
                }
            )
    if config["tokenizer"]["kind"] == "pretrained":
        rows.append(
            {
                "what": "tokenizer",
                "repo": config["tokenizer"]["pretrained"],
                "revision": "main",
                "files": "tokenizer files",
            }
        )
    if config["classifiers"].get("base_model"):
        rows.append(
            {
                "what": "classifier base model",
                "repo": config["classifiers"]["base_model"],
                "revision": "main",
                "files": "weights, tokenizer",
            }
        )
    for arm, spec in config["arms"].items():
        if spec["kind"] == "baseline":
            revision = resolve_revision(spec["revision"], int(config["pretrain"]["max_tokens"]))
            rows.append(
                {
                    "what": f"baseline arm {arm}",
                    "repo": spec["repo"],
                    "revision": revision,
                    "files": "weights, tokenizer",
                }
            )
    ev = config["evaluate"]
    if ev.get("mbpp"):
        hf = ev["mbpp"]["hf"]
        rows.append(
            {
                "what": "benchmark MBPP",
                "repo": hf["repo"],
                "revision": hf["revision"],
                "files": ", ".join(hf["allow_patterns"]),
            }
        )
    if ev["harness"]["demo_tasks"] is None:
        for task, repo in _harness_datasets(list(ev["harness"]["tasks"])).items():
            rows.append(
                {
                    "what": f"lm-eval task {task}",
                    "repo": repo,
                    "revision": "as pinned by lm-eval",
                    "files": "the task's splits",
                }
            )
    return rows


def _harness_datasets(tasks: list[str]) -> dict[str, str]:
    """lm-eval task -> the hub dataset(s) its YAML loads (read from lm-eval's own task index)."""
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        return {t: "(lm-eval not installed: unknown)" for t in tasks}
    index = TaskManager().task_index

    def datasets(name: str, depth: int = 0) -> set[str]:
        entry = index.get(name)
        if entry is None or depth > 8:
            return set()
        cfg = entry.cfg or {}
        if cfg.get("dataset_path"):
            return {cfg["dataset_path"]}
        # A group lists tasks, groups or tags; a tag's members are in its entry's tags.
        members = cfg.get("task") if isinstance(cfg.get("task"), list) else sorted(entry.tags or ())
        names = [m if isinstance(m, str) else m.get("task", "") for m in members]
        return set().union(set(), *(datasets(n, depth + 1) for n in names))

    return {t: ", ".join(sorted(datasets(t))) or "(unknown to lm-eval)" for t in tasks}


def labeling(config: dict) -> dict[str, Any]:
    """How many documents the label stage asks the labeler about, per domain."""
    labels = config["labels"]
    return {"backend": labels["backend"], "model": labels["model"], "documents": dict(labels["sample"])}


def build_plan(config: dict) -> dict[str, Any]:
    model = config["model"]
    context = int(config["mix"]["context_length"])
    schedule = compute.pretrain_schedule(config["pretrain"], context)
    mix = token_mix(config)
    return {
        "run": config["run"],
        "model": {
            "parameters": compute.parameter_count(model),
            "matmul_parameters": compute.matmul_parameters(model),
            "training_flops_per_token": compute.model_flops_per_token(model, schedule["seq_len"]),
            "flops_formula": "6·N + 12·L·H·Q·T per trained token (trellis.train.compute)",
            "context_length": context,
            "schedule": schedule,
        },
        "mix": {"components": mix, "total_tokens": sum(r["tokens"] for r in mix)},
        "compute": compute.compute_plan(config),
        "accelerator": dict(config["resources"]["accelerator"]),
        "labeling": labeling(config),
        "downloads": downloads(config),
    }


def _table(rows: list[dict], columns: list[str], formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c, "")
            cells.append(format(value, formats[c]) if c in formats and value != "" else str(value))
        lines.append("| " + " | ".join(cells).replace("\n", " ") + " |")
    return "\n".join(lines)


def to_markdown(plan: dict) -> str:
    m = plan["model"]
    s = m["schedule"]
    parts = [
        f"# Plan of run `{plan['run']}`",
        "",
        "## Model",
        "",
        f"- parameters: **{m['parameters']:,}** ({m['matmul_parameters']:,} in matrix multiplications)",
        f"- training FLOPs per token: {m['training_flops_per_token']:.4g}, by {m['flops_formula']}",
        f"- schedule: {s['tokens']:,} tokens = {s['optimizer_steps']:,} optimizer steps of "
        f"{s['tokens_per_step']:,} tokens ({s['iterations']:,} micro-batches, gradient accumulation "
        f"{s['gradient_accumulation']}, {s['world_size']} device(s)), context {m['context_length']:,}",
        "",
        "## Token mix (per pretrained arm)",
        "",
        _table(
            plan["mix"]["components"],
            ["component", "source", "tokens", "share", "curated_arm_reads", "other_arms_read", "upsample"],
            {"tokens": ",", "share": ".1%"},
        ),
        "",
        f"Total: {plan['mix']['total_tokens']:,} tokens.",
        "",
        f"## Compute per arm ({plan['accelerator']['name']}, {float(plan['accelerator']['mfu']):.0%} MFU, "
        f"${float(plan['accelerator']['usd_per_gpu_hour']):.2f} per GPU-hour)",
        "",
        _table(
            plan["compute"],
            [
                "arm",
                "kind",
                "parameters",
                "pretrain_tokens",
                "pretrain_flops",
                "sft_flops",
                "dpo_flops",
                "total_flops",
                "gpu_hours",
                "cost_usd",
            ],
            {
                "parameters": ",",
                "pretrain_tokens": ",",
                "pretrain_flops": ".3g",
                "sft_flops": ".3g",
                "dpo_flops": ".3g",
                "total_flops": ".3g",
                "gpu_hours": ",.1f",
                "cost_usd": ",.0f",
            },
        ),
        "",
        f"Total: {sum(r['gpu_hours'] for r in plan['compute']):,.1f} GPU-hours, "
        f"${sum(r['cost_usd'] for r in plan['compute']):,.0f}.",
        "",
        "## Labeling",
        "",
        f"{plan['labeling']['backend']} ({plan['labeling']['model']}): "
        + ", ".join(f"{n:,} {d} documents" for d, n in plan["labeling"]["documents"].items())
        + " (each labeled for every task of its domain).",
        "",
        "## Downloads",
        "",
        _table(plan["downloads"], ["what", "repo", "revision", "files"])
        if plan["downloads"]
        else "Nothing: every input is generated or ships in an installed package.",
        "",
    ]
    return "\n".join(parts)


def write_plan(config: dict, md_path: str | Path, json_path: str | Path) -> dict:
    plan = build_plan(config)
    write_json(json_path, plan)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(to_markdown(plan))
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trellis.report.plan", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.configfile).read_text())
    print(to_markdown(build_plan(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
