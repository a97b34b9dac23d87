"""Yield accounting of the curation steps: documents and tokens in, out, and dropped per reason.

Each curation step (filter per part, dedup and selection per source) counts with ``StepCounts``,
which knows tokens as well as documents (``trellis.core.stats.Tally`` counts documents and characters
for the other stages). Tokens are the run tokenizer's (``tokens/raw/<source>``), so the yield
report speaks in the unit of the mix budgets.

``yield_table`` turns a source's step stats into rows (source, step, reason, documents, tokens)
whose kept and dropped figures add up at every step; ``trellis.curate.yield_plot.funnel_plot`` draws
them (a module of its own, so the steps that count need no plotting library).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from typing import Any, Mapping, Sequence

from trellis.core.io import atomic_path, read_json


class StepCounts:
    """Documents and tokens a step read, kept and dropped (per reason)."""

    def __init__(self, step: str, reasons: Sequence[str] = ()):
        self.step = step
        self.docs_in = self.docs_out = self.tokens_in = self.tokens_out = 0
        self.dropped: Counter[str] = Counter({r: 0 for r in reasons})
        self.dropped_tokens: Counter[str] = Counter({r: 0 for r in reasons})

    def seen(self, tokens: int) -> None:
        self.docs_in += 1
        self.tokens_in += int(tokens)

    def kept(self, tokens: int) -> None:
        self.docs_out += 1
        self.tokens_out += int(tokens)

    def drop(self, reason: str, tokens: int) -> None:
        self.dropped[reason] += 1
        self.dropped_tokens[reason] += int(tokens)

    def add(self, other: Mapping[str, Any]) -> None:
        """Add another step's stats dict (e.g. one part's) into this one."""
        self.docs_in += other["docs_in"]
        self.docs_out += other["docs_out"]
        self.tokens_in += other["tokens_in"]
        self.tokens_out += other["tokens_out"]
        self.dropped.update(other["dropped"])
        self.dropped_tokens.update(other["dropped_tokens"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_tokens": dict(sorted(self.dropped_tokens.items())),
            # Both zero unless a document left the step uncounted (a bug the tests look for).
            "unaccounted": self.docs_in - self.docs_out - sum(self.dropped.values()),
            "unaccounted_tokens": self.tokens_in - self.tokens_out - sum(self.dropped_tokens.values()),
        }

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()) if v) or "none"
        return (f"{self.step}: {self.docs_in} docs / {self.tokens_in} tokens in, {self.docs_out} docs / "
                f"{self.tokens_out} tokens out; dropped {drops}")


# --------------------------------------------------------------------------------------------
# The yield report
# --------------------------------------------------------------------------------------------

YIELD_COLUMNS = ("source", "step", "reason", "docs", "tokens", "docs_share", "tokens_share")


def source_yield(source: str, filter_stats: Sequence[str | os.PathLike], dedup_stats: str | os.PathLike,
                 select_stats: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of one source's funnel: for each step, what came in, every drop reason, what went out.

    Shares are of the source's raw documents and tokens. Raises when a step's figures do not add
    up or a step's input is not the previous step's output (stats from different runs).
    """
    filtered = StepCounts("filter")
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
            raise ValueError(f"{source} {name}: {st.get('unaccounted')} documents / "
                             f"{st.get('unaccounted_tokens')} tokens unaccounted in its stats")
        if previous is not None and (st["docs_in"], st["tokens_in"]) != (previous["docs_out"], previous["tokens_out"]):
            raise ValueError(f"{source} {name}: reads {st['docs_in']} docs / {st['tokens_in']} tokens but "
                             f"{previous['step']} wrote {previous['docs_out']} / {previous['tokens_out']}; "
                             "stats of different runs?")
        entries = [("in", st["docs_in"], st["tokens_in"])]
        entries += [(f"dropped:{r}", n, st["dropped_tokens"].get(r, 0)) for r, n in st["dropped"].items()]
        entries.append(("out", st["docs_out"], st["tokens_out"]))
        for reason, docs, tokens in entries:
            rows.append({
                "source": source, "step": name, "reason": reason, "docs": int(docs), "tokens": int(tokens),
                "docs_share": round(docs / raw_docs, 6) if raw_docs else 0.0,
                "tokens_share": round(tokens / raw_tokens, 6) if raw_tokens else 0.0,
            })
        previous = st
    return rows


def write_yield_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=YIELD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
