"""The thesis at a glance: curated-minus-control deltas with their CIs, per stage, as one PNG.

Read from the headline table (``tables/headline.csv``, itself built only from the result files):
one panel per stage (base, sft, dpo), one row per benchmark and metric, a point at the paired
delta and a bar over its bootstrap interval. A row whose interval excludes zero is drawn solid;
one that straddles zero hollow, so the eye goes to what the data supports.
"""

from __future__ import annotations

import os

import pandas as pd

from trellis.core.io import atomic_path

_STAGES = ("base", "sft", "dpo")


def plot_deltas(headline_csv: str | os.PathLike, out_png: str | os.PathLike, arm: str | None = None) -> int:
    """Plot the delta rows of ``headline_csv`` (for ``arm``, default: every non-control arm).

    Returns the number of deltas drawn. A table without delta rows is an error: the plot would
    claim a comparison that was never made.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.read_csv(headline_csv)
    missing = {"kind", "arm", "control", "stage", "benchmark", "metric", "value", "ci_low", "ci_high"} - set(
        table
    )
    if missing:
        raise KeyError(f"{headline_csv}: not a headline table (lacks columns {sorted(missing)})")
    deltas = table[table["kind"] == "delta"]
    if arm is not None:
        deltas = deltas[deltas["arm"] == arm]
    if deltas.empty:
        raise ValueError(f"{headline_csv}: no delta rows{f' for arm {arm!r}' if arm else ''} to plot")
    stages = [s for s in _STAGES if s in set(deltas["stage"])] + sorted(set(deltas["stage"]) - set(_STAGES))
    labels = sorted({(a, b, m) for a, b, m in zip(deltas["arm"], deltas["benchmark"], deltas["metric"])})
    multi_arm = len({a for a, _, _ in labels}) > 1
    names = [f"{b} · {m}" + (f" ({a})" if multi_arm else "") for a, b, m in labels]
    position = {key: i for i, key in enumerate(labels)}

    height = max(3.0, 0.28 * len(labels) + 1.2)
    fig, axes = plt.subplots(
        1, len(stages), figsize=(4.2 * len(stages) + 3.0, height), sharex=True, sharey=True, squeeze=False
    )
    for ax, stage in zip(axes[0], stages):
        rows = deltas[deltas["stage"] == stage]
        for _, r in rows.iterrows():
            y = position[(r["arm"], r["benchmark"], r["metric"])]
            significant = r["ci_low"] > 0 or r["ci_high"] < 0
            color = "tab:green" if r["ci_low"] > 0 else ("tab:red" if r["ci_high"] < 0 else "tab:gray")
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=color, linewidth=2)
            ax.plot(
                [r["value"]], [y], marker="o", color=color, markerfacecolor=color if significant else "white"
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(stage)
        ax.set_xlabel(
            f"{', '.join(sorted(set(rows['arm'])))} − {rows['control'].iloc[0] if len(rows) else ''}"
        )
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(labels)))
    axes[0][0].set_yticklabels(names, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle("Curated minus control: paired delta and 95% bootstrap CI (filled: CI excludes 0)")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return len(deltas)
