"""Rule curation_yield: documents and tokens per source and step, in, out, and dropped per reason.

Each curation step (filter per part, dedup and selection per source) writes its stats in the
shape of ``trellis.core.stats.StepStats`` with tokens as the unit: documents and tokens in and
out, and both per drop reason. Tokens are the run tokenizer's (``tokens/raw/<source>``), so the
yield report speaks in the unit of the mix budgets.

``source_yield`` turns a source's step stats into rows (source, step, reason, documents, tokens)
whose kept and dropped figures add up at every step, ``write_yield_csv`` writes them, and
``funnel_plot`` draws them as a PNG.

``site_yield`` adds StackExchange's normalization (its site and answer-score filter) after the
curated sources' rows: step ``normalize`` for all sites, then ``normalize:<site>`` for each, in
documents only (normalize counts characters and does not measure its drops, so ``tokens`` and
``tokens_share`` are left empty; the funnel plot keeps to the curated sources).

matplotlib is imported inside ``funnel_plot`` only, so importing this module for the yield rows
costs no plotting library.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trellis.core.io import atomic_path, read_json
from trellis.core.stats import StepStats

# --------------------------------------------------------------------------------------------
# The yield report
# --------------------------------------------------------------------------------------------

YIELD_COLUMNS = ("source", "step", "reason", "docs", "tokens", "docs_share", "tokens_share")


def source_yield(
    source: str,
    filter_stats: Sequence[str | os.PathLike],
    dedup_stats: str | os.PathLike,
    select_stats: str | os.PathLike,
) -> list[dict[str, Any]]:
    """Rows of one source's funnel: for each step, what came in, every drop reason, what went out.

    Shares are of the source's raw documents and tokens. Raises when a step's figures do not add
    up or a step's input is not the previous step's output (stats from different runs).
    """
    filtered = StepStats("filter", unit="tokens")
    for path in filter_stats:
        filtered.add(read_json(path))
    steps = [filtered.to_dict(), read_json(dedup_stats), read_json(select_stats)]
    steps[1]["step"], steps[2]["step"] = "dedup", "select"
    raw_docs, raw_tokens = steps[0]["docs_in"], steps[0]["tokens_in"]
    rows = []
    previous = None
    for st in steps:
        name = st["step"]
        if st.get("unaccounted") or st.get("unaccounted_tokens"):
            raise ValueError(
                f"{source} {name}: {st.get('unaccounted')} documents / "
                f"{st.get('unaccounted_tokens')} tokens unaccounted in its stats"
            )
        if previous is not None and (st["docs_in"], st["tokens_in"]) != (
            previous["docs_out"],
            previous["tokens_out"],
        ):
            raise ValueError(
                f"{source} {name}: reads {st['docs_in']} docs / {st['tokens_in']} tokens but "
                f"{previous['step']} wrote {previous['docs_out']} / {previous['tokens_out']}; "
                "stats of different runs?"
            )
        entries = [("in", st["docs_in"], st["tokens_in"])]
        entries += [(f"dropped:{r}", n, st["dropped_tokens"].get(r, 0)) for r, n in st["dropped"].items()]
        entries.append(("out", st["docs_out"], st["tokens_out"]))
        for reason, docs, tokens in entries:
            rows.append(
                {
                    "source": source,
                    "step": name,
                    "reason": reason,
                    "docs": int(docs),
                    "tokens": int(tokens),
                    "docs_share": round(docs / raw_docs, 6) if raw_docs else 0.0,
                    "tokens_share": round(tokens / raw_tokens, 6) if raw_tokens else 0.0,
                }
            )
        previous = st
    return rows


def site_yield(normalize_stats: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Rows of a per-site source's normalization (StackExchange): in, dropped per reason, out, for
    all its sites (step ``normalize``) and for each site (``normalize:<site>``, sorted).

    The stats are its parts' ``raw/<source>/part-K.stats.json``, with ``sites`` (per-site counts).
    Shares are of the source's native documents (all sites). Raises when the parts are of
    different sources, a count is unaccounted, or the sites do not add up to the part.
    """
    total = StepStats("normalize", unit="chars", drop_sizes=False)
    sites: dict[str, StepStats] = {}
    source = None
    for path in normalize_stats:
        st = read_json(path)
        if source is not None and st.get("source") != source:
            raise ValueError(f"{path}: stats of {st.get('source')!r}, expected {source!r}")
        source = st.get("source")
        if "sites" not in st:
            raise ValueError(f"{path}: no per-site counts ('sites'); normalize {source} again")
        per_site = StepStats("sites", unit="chars", drop_sizes=False)
        for name, site in st["sites"].items():
            sites.setdefault(name, StepStats(f"normalize:{name}", unit="chars", drop_sizes=False)).add(site)
            per_site.add(site)
        if (per_site.docs_in, per_site.docs_out, dict(+per_site.dropped)) != (
            st["docs_in"],
            st["docs_out"],
            {r: n for r, n in st["dropped"].items() if n},
        ):
            raise ValueError(f"{path}: the per-site counts do not add up to the part's")
        total.add(st)
    if source is None:
        return []
    raw_docs = total.docs_in
    rows = []
    for st in [total] + [sites[name] for name in sorted(sites)]:
        if st.unaccounted:
            raise ValueError(f"{source} {st.step}: {st.unaccounted} documents unaccounted in its stats")
        entries = [("in", st.docs_in)]
        entries += [(f"dropped:{r}", n) for r, n in sorted(st.dropped.items()) if n]
        entries.append(("out", st.docs_out))
        for reason, docs in entries:
            rows.append(
                {
                    "source": source,
                    "step": st.step,
                    "reason": reason,
                    "docs": int(docs),
                    "tokens": "",
                    "docs_share": round(docs / raw_docs, 6) if raw_docs else 0.0,
                    "tokens_share": "",
                }
            )
    return rows


def write_yield_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=YIELD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------
# The funnel plot
# --------------------------------------------------------------------------------------------


def funnel_plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """One panel per source: tokens remaining after each step, with the drops per reason stacked (PNG)."""
    # Imported here, not at module level: whoever imports this module for the yield rows alone
    # (the stats, the CSV) must not pay for matplotlib.
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
        remaining += [
            next(r["tokens"] for r in src_rows if r["step"] == s and r["reason"] == "out") for s in steps
        ]
        ax.bar(range(len(labels)), remaining, color="#4C72B0", label="kept")
        # Drop reasons in tab10's colors after its first (a blue too close to the kept bars').
        colors = plt.get_cmap("tab10").colors[1:]
        reasons = list(dict.fromkeys(r["reason"] for r in src_rows if r["reason"].startswith("dropped:")))
        for i, step in enumerate(steps, start=1):
            bottom = remaining[i]
            for reason in reasons:
                tokens = sum(r["tokens"] for r in src_rows if r["step"] == step and r["reason"] == reason)
                if tokens:
                    ax.bar(
                        i,
                        tokens,
                        bottom=bottom,
                        color=colors[reasons.index(reason) % len(colors)],
                        label=reason.removeprefix("dropped:"),
                    )
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
