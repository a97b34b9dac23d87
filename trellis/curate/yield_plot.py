"""The curation yield funnel as a PNG: tokens kept after each step, drops stacked by reason."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from trellis.core.io import atomic_path


def funnel_plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """One panel per source: tokens remaining after each step, with the drops per reason stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(r["source"] for r in rows))
    fig, axes = plt.subplots(1, len(sources), figsize=(6.5 * len(sources), 4.2), squeeze=False)
    for ax, source in zip(axes[0], sources):
        src_rows = [r for r in rows if r["source"] == source]
        steps = list(dict.fromkeys(r["step"] for r in src_rows))
        labels = ["raw"] + steps
        remaining = [next(r["tokens"] for r in src_rows if r["step"] == steps[0] and r["reason"] == "in")]
        remaining += [next(r["tokens"] for r in src_rows if r["step"] == s and r["reason"] == "out") for s in steps]
        ax.bar(range(len(labels)), remaining, color="#4C72B0", label="kept")
        # Drop reasons in tab10's colors after its first (a blue too close to the kept bars').
        colors = plt.get_cmap("tab10").colors[1:]
        reasons = list(dict.fromkeys(r["reason"] for r in src_rows if r["reason"].startswith("dropped:")))
        for i, step in enumerate(steps, start=1):
            bottom = remaining[i]
            for reason in reasons:
                tokens = sum(r["tokens"] for r in src_rows if r["step"] == step and r["reason"] == reason)
                if tokens:
                    ax.bar(i, tokens, bottom=bottom, color=colors[reasons.index(reason) % len(colors)],
                           label=reason.removeprefix("dropped:"))
                    bottom += tokens
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper right")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel("tokens")
        ax.set_title(f"{source}: tokens kept per step (stacked: dropped, by reason)", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
