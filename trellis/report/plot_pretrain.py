"""Pretraining curves: every pretrained arm's loss and throughput, read from its metrics.csv.

trellis.train.pretrain.merge_metrics writes one metrics.csv per arm (LitGPT's columns plus
``tokens_per_sec`` and ``mfu``); this module draws them side by side, so the arms of the
controlled comparison can be seen to have trained alike, and summarizes each run for the report.
Kept apart from trellis.train.pretrain so plotting needs matplotlib, not torch or LitGPT.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from trellis.core.io import atomic_path


def read_curve(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """(total tokens, value) series from one arm's metrics.csv: loss, val_loss, tokens_per_sec, mfu.

    Validation rows carry no token count of their own; they are placed at the last token count
    logged before them (LitGPT validates right after logging that step).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.csv (expected the pretrain rule's output)")
    series: dict[str, list[tuple[int, float]]] = {"loss": [], "val_loss": [], "tokens_per_sec": [], "mfu": []}
    tokens = 0
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"step", "loss", "total_tokens", "val_loss", "tokens_per_sec"} - set(
            reader.fieldnames or ()
        )
        if missing:
            raise ValueError(f"{path}: metrics.csv lacks column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                if row["total_tokens"]:
                    tokens = int(float(row["total_tokens"]))
                for key, points in series.items():
                    if row.get(key):
                        points.append((tokens, float(row[key])))
            except ValueError as err:
                raise ValueError(f"{path}, line {line}: {err}") from err
    if not series["loss"]:
        raise ValueError(f"{path}: no training loss logged")
    return series


def summarize(series: dict[str, list[tuple[int, float]]]) -> dict[str, float | int | None]:
    """The figures a report quotes: final train/val loss, tokens, median throughput and MFU."""

    def median(key: str) -> float | None:
        values = [v for _, v in series[key]]
        return statistics.median(values) if values else None

    return {
        "tokens": series["loss"][-1][0],
        "final_loss": series["loss"][-1][1],
        "final_val_loss": series["val_loss"][-1][1] if series["val_loss"] else None,
        "median_tokens_per_sec": median("tokens_per_sec"),
        "median_mfu": median("mfu"),
    }


def plot_pretraining(metrics: dict[str, str | Path], out_png: str | Path) -> dict[str, dict]:
    """Loss (train line, validation dots) and tokens/s against tokens, one colour per arm.

    Writes ``out_png`` atomically; returns ``summarize`` per arm.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    if not metrics:
        raise ValueError("no pretrained arm to plot")
    curves = {arm: read_curve(path) for arm, path in metrics.items()}
    fig, (loss_ax, rate_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for (arm, series), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 8):
        loss_ax.plot(*zip(*series["loss"]), color=colour, label=f"{arm} train")
        if series["val_loss"]:
            loss_ax.plot(*zip(*series["val_loss"]), "o", color=colour, label=f"{arm} validation")
        if series["tokens_per_sec"]:
            rate_ax.plot(*zip(*series["tokens_per_sec"]), color=colour, label=arm)
    loss_ax.set(xlabel="tokens", ylabel="cross-entropy (nats)", title="Pretraining loss")
    rate_ax.set(xlabel="tokens", ylabel="tokens / s", title="Throughput (wall time between logged steps)")
    loss_ax.legend(fontsize="small")
    rate_ax.legend(fontsize="small")
    fig.tight_layout()
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return {arm: summarize(series) for arm, series in curves.items()}
