"""The result record of a benchmark run, and the names it is keyed by.

Every benchmark run (one arm at one stage) is written to ``eval/<arm>/<stage>/<benchmark>.json``
as one record in the ``RESULT_FORMAT`` format: which model was evaluated (``model_info``), metric
values with bootstrap confidence intervals, and every example's scores and raw output, so that
tables (and paired curated-minus-control deltas) can be computed from the result files alone.
Generation benchmarks write it from ``trellis.evaluate.dispatch``, lm-eval-harness tasks from
``trellis.evaluate.harness``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

RESULT_FORMAT = "trellis-eval-v1"
STAGES = ("base", "sft", "dpo")

# Benchmarks whose name is the benchmark (BFCL's are "bfcl_<category>").
SIMPLE = ("json_schema", "extraction", "classification", "humaneval", "mbpp")


def parse_benchmark(benchmark: str) -> tuple[str, str | None]:
    """'json_schema' -> ('json_schema', None); 'bfcl_simple' -> ('bfcl', 'simple')."""
    if benchmark in SIMPLE:
        return benchmark, None
    if benchmark.startswith("bfcl_") and len(benchmark) > len("bfcl_"):
        return "bfcl", benchmark[len("bfcl_") :]
    raise ValueError(
        f"unknown benchmark {benchmark!r}; expected one of {', '.join(SIMPLE)} or 'bfcl_<category>'"
    )


def _sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\x00")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_info(model_dir: str | os.PathLike) -> dict:
    """Which model was evaluated: its directory, and hashes of its config and weights."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    return {
        "dir": str(model_dir),
        "config_sha256": _sha256_files([config]),
        # The config is the same for every arm; the weights tell the arms (and reruns) apart.
        "weights_sha256": _sha256_files(weights) if weights else None,
    }
