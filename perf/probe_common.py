"""What the throughput probes (probe_throughput, probe_classifier, probe_posttrain) share: the
on/off switch of their command lines, the optional figures of their tables, and the JSON they
rewrite after every row so that a run cut short keeps the rows it finished."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def switch(value: str) -> bool:
    """argparse type of an on/off option."""
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return value == "on"


def optional(value: float | None, spec: str, width: int) -> str:
    """``value`` in ``spec``, or "n/a" right-aligned in ``width`` where it was not measured."""
    return format(value, spec) if value is not None else f"{'n/a':>{width}}"


def save_rows(out: Path | None, rows: list[dict]) -> None:
    """Rewrite ``out`` with every row so far (nothing without ``--out``)."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
