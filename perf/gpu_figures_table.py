"""The table perf/gpu_figures.sh prints: every probe row of one run, the card, and the goals.

Reads ``<out>/<part>.json`` (the rows perf/probe_throughput.py, probe_classifier.py and
probe_posttrain.py write) for each ``--part NAME STATUS SECONDS`` given, prints one line per row
(a part with no rows gets one line with its status) and the best pretraining and scoring figures
against issue 16's goals, and writes everything, with the card's name and the library versions,
to ``<out>/gpu_figures.json``.

  python perf/gpu_figures_table.py perf-out --config config/study.yaml \\
      --part pretrain_eager ok 74 --part classifier "timed out after 120s" 120
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

PRETRAIN_MFU_GOAL = 0.45  # and about 117k tokens/s for the 506M model on an H100 SXM
PRETRAIN_TOKENS_GOAL = 117_000
SCORING_TOKENS_GOAL = 1_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the directory the probes wrote their JSON into")
    parser.add_argument("--config", default="config/study.yaml", help="the config the probes ran on")
    parser.add_argument(
        "--part",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "STATUS", "SECONDS"),
        help="a part of the run: its name (<out>/NAME.json), how it ended, how long it took",
    )
    return parser.parse_args(argv)


def device() -> tuple[str, str, dict]:
    """The card as torch and nvidia-smi name it, and the versions of the libraries timed."""
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        smi = ""
    versions: dict[str, str | None] = {}
    try:
        import torch

        card = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    except ImportError:
        card = "torch missing"
    for name in ("torch", "transformers", "trl", "litgpt", "lightning"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing or broken library is reported as None
            versions[name] = None
    return card, smi, versions


def _num(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else "n/a"


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def describe(row: dict) -> tuple[str, str]:
    """(setting, note) of one probe row."""
    if row["probe"] == "pretrain":
        setting = (
            f"micro {row['micro_batch_size']}, compile {_onoff(row['compile'])}, "
            f"ckpt {_onoff(row['gradient_checkpointing'])}"
        )
        note = f"{row['precision']}, {row['steps']} steps"
    elif row["probe"] == "classifier":
        setting = f"batch {row['batch_size']}, compile {_onoff(row['compile'])}"
        note = (
            f"max_length {row['max_length']}, {row.get('attn_implementation', 'n/a')}, "
            f"padding {_num(row.get('padding_share'), '.0%')}"
        )
    else:
        setting = f"{row['stage']}, batch {row['batch_size']}, ckpt {_onoff(row['gradient_checkpointing'])}"
        note = (
            f"{row['precision']}, mean {_num(row.get('mean_tokens'), '.0f')} tokens, "
            f"padding {_num(row.get('padding_share'), '.0%')}"
        )
    if row.get("error"):
        note = row["error"]
    return setting, note


def table(parts: dict[str, dict], card: str, smi: str, config: str) -> list[str]:
    lines = [
        f"GPU figures: {card} (nvidia-smi: {smi or 'n/a'}); config {config}",
        f"{'part':<18} {'setting':<34} {'tokens/s':>12} {'MFU':>6} {'mem GiB':>8}  note",
    ]
    best: dict[str, dict] = {}
    for name, part in parts.items():
        if not part["rows"]:
            lines.append(f"{name:<18} {'-':<34} {'':>12} {'':>6} {'':>8}  {part['status']}")
        for row in part["rows"]:
            setting, note = describe(row)
            if part["status"] != "ok":
                note += f"; part {part['status']}"
            lines.append(
                f"{name:<18} {setting:<34} {_num(row.get('tokens_per_sec'), ',.0f'):>12} "
                f"{_num(row.get('mfu'), '.1%'):>6} {_num(row.get('peak_memory_gib'), '.1f'):>8}  {note}"
            )
            rate = row.get("tokens_per_sec")
            if rate and (row["probe"] not in best or rate > best[row["probe"]]["tokens_per_sec"]):
                best[row["probe"]] = row
    if "pretrain" in best:
        row = best["pretrain"]
        lines.append(
            f"pretraining goal (>= {PRETRAIN_MFU_GOAL:.0%} MFU, ~{PRETRAIN_TOKENS_GOAL // 1000}k tokens/s "
            f"on an H100): best {row['tokens_per_sec']:,.0f} tokens/s, MFU {_num(row.get('mfu'), '.1%')} "
            f"({describe(row)[0]})"
        )
    if "classifier" in best:
        row = best["classifier"]
        lines.append(
            f"scoring goal (>= {SCORING_TOKENS_GOAL / 1e6:g}M tokens/s): best {row['tokens_per_sec']:,.0f} "
            f"tokens/s ({describe(row)[0]})"
        )
    return lines


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    parts = {}
    for name, status, seconds in args.part:
        path = args.out / f"{name}.json"
        try:
            rows = json.loads(path.read_text()) if path.is_file() else []
        except json.JSONDecodeError as err:
            rows, status = [], f"{status}; unreadable JSON ({err})"
        parts[name] = {"status": status, "seconds": int(float(seconds)), "rows": rows}
    card, smi, versions = device()
    print("\n".join(table(parts, card, smi, args.config)))
    summary = {"card": card, "nvidia_smi": smi, "config": args.config, "versions": versions, "parts": parts}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_figures.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
