"""A run's metrics: LitGPT's per-start CSV logs merged into one metrics.csv with tokens/s and MFU.

Kept apart from the checkpoints: these only read ``logs/csv`` and the device's peak FLOPs
(trellis.train.compute), and trellis.report.plot_pretrain reads the file they write.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def merge_metrics(
    out_dir: str | Path,
    flops_per_token: float | None = None,
    peak_flops: float | None = None,
    world_size: int = 1,
) -> Path:
    """Merge LitGPT's per-start CSV logs into ``out_dir/metrics.csv`` (one row per logged step).

    Columns are LitGPT's (``iter``, ``loss``, ``tokens``, ``total_tokens``, ``learning_rate``,
    ``val_loss``, ...; ``step`` is Fabric's 0-based logging step, iter - 1) plus two of ours:

    - ``tokens_per_sec``: tokens trained (all ranks) per second of wall time since the previous
      logged row of the same process start, from LitGPT's ``time`` and ``total_tokens``. It
      includes the validation and checkpoint pauses in between: the rate the run really made.
      (LitGPT's own ThroughputMonitor averages over 5 logged rows and reports nothing before it
      has them, which leaves short runs without a figure.) The first row after a resume has no
      previous row in its process and stays blank.
    - ``mfu``: ``tokens_per_sec × flops_per_token / (peak_flops × world_size)`` (trellis.train.compute)
      when the device's peak is known (a GPU in trellis.train.compute.PEAK_BF16_FLOPS), else blank.

    A resumed run writes a new ``logs/csv/version_N``; its rows from the resume point on replace
    the earlier start's rows for the same step, so the merged file is the run as if never killed.
    """
    out_dir = Path(out_dir)
    versions = sorted(
        (out_dir / "logs" / "csv").glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[1]),
    )
    if not versions:
        raise FileNotFoundError(f"{out_dir}/logs/csv: LitGPT wrote no metrics.csv")
    rows: dict[int, dict[str, str]] = {}
    columns: list[str] = []
    for k, path in enumerate(versions):
        # A fresh start (version 0; a changed run clears old logs) begins at time 0 with 0 tokens.
        previous = (0.0, 0) if k == 0 else None
        started: dict[int, dict[str, str]] = {}  # this start's rows (a step may log twice: train, val)
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                for c in row:
                    if c not in columns:
                        columns.append(c)
                row = {key: v for key, v in row.items() if v not in ("", None)}
                if "loss" in row:  # a training row (validation rows carry only val_loss)
                    now = (float(row["time"]), int(float(row["total_tokens"])))
                    if previous is not None and now[0] > previous[0]:
                        rate = (now[1] - previous[1]) / (now[0] - previous[0])
                        row["tokens_per_sec"] = f"{rate:.2f}"
                        if flops_per_token and peak_flops:
                            row["mfu"] = f"{rate * flops_per_token / (peak_flops * world_size):.4f}"
                    previous = now
                started.setdefault(int(row["step"]), {}).update(row)
        rows.update(started)  # a later start's rows replace what the killed one logged for those steps
    columns += [c for c in ("tokens_per_sec", "mfu") if c not in columns]
    target = out_dir / "metrics.csv"
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for step in sorted(rows):
            writer.writerow(rows[step])
    os.replace(tmp, target)
    return target


def _device_peak_flops() -> float | None:
    """The dense bf16 peak of the GPU training runs on, if trellis.train.compute knows it."""
    if not torch.cuda.is_available():
        return None
    from trellis.train.compute import peak_flops

    try:
        return peak_flops(torch.cuda.get_device_name())
    except KeyError as err:
        log.warning("no MFU in metrics.csv: %s", err)
        return None
