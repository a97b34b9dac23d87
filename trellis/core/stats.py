"""Counted stats for a processing step: what it read, kept, and dropped, and why.

Every step that can drop a document records the reason here, so a yield report can say where
each document went; nothing leaves a step uncounted.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any


class Tally:
    def __init__(self, step: str):
        self.step = step
        self.docs_in = 0
        self.docs_out = 0
        self.chars_in = 0
        self.chars_out = 0
        self.dropped: Counter[str] = Counter()
        self.extra: dict[str, Any] = {}
        self._start = time.monotonic()

    def seen(self, text: str | None = None) -> None:
        self.docs_in += 1
        self.chars_in += len(text or "")

    def kept(self, text: str | None = None) -> None:
        self.docs_out += 1
        self.chars_out += len(text or "")

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        unaccounted = self.docs_in - self.docs_out - sum(self.dropped.values())
        return {
            "step": self.step,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "dropped": dict(sorted(self.dropped.items())),
            "unaccounted": unaccounted,
            "seconds": round(time.monotonic() - self._start, 3),
            **self.extra,
        }

    def summary(self) -> str:
        d = self.to_dict()
        drops = ", ".join(f"{k}={v}" for k, v in d["dropped"].items()) or "none"
        return (
            f"{self.step}: {d['docs_in']} in, {d['docs_out']} out, dropped: {drops} "
            f"({d['seconds']:.1f}s)"
        )
