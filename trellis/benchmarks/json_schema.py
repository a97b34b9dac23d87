"""The custom JSON Schema compliance benchmark: suite generation and scoring.

The suite is drawn from the EVAL pool of ``trellis.structured_pool`` only, whose schema names
are disjoint from the TRAIN pool that SFT data and few-shot examples come from: the benchmark
measures generalization to unseen schemas. A suite file is written once and locked by its sha256
sidecar, so every arm and stage is scored on byte-identical examples.

Scoring an output:
- parsed: ``prompts.extract_json`` found a JSON value in the generation;
- valid: that value validates against the example's schema (JSON Schema 2020-12, with format
  checking, so ``"format": "date"`` and the like are enforced, not just annotations);
- field_accuracy: the share of the reference instance's leaf fields (JSON-pointer paths to
  scalars and empty containers) that the output reproduces exactly at the same path.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from trellis import prompts, structured_pool
from trellis.io import atomic_path, read_jsonl, write_jsonl

# Metric names, in report order; per-example scores carry the same names.
METRICS = ("parse_rate", "schema_valid_rate", "field_accuracy")

# Keys every suite example carries.
EXAMPLE_KEYS = ("id", "name", "category", "instruction", "schema", "content", "instance")

# How many pool schemas to draw per requested example, so that every category can contribute its
# even share even when the pool's category mix is uneven.
_OVERDRAW = 4


def build_suite(n: int, seed: int) -> list[dict]:
    """``n`` examples from the eval pool, spread evenly (round robin) over the categories present."""
    if n < 1:
        raise ValueError(f"suite size must be >= 1, got {n}")
    pool = structured_pool.schemas("eval", seed, n * _OVERDRAW)
    by_category: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for item in pool:
        # A schema name identifies the example; a repeat would double-count it in every metric.
        if item["name"] in seen:
            continue
        seen.add(item["name"])
        by_category.setdefault(item["category"], []).append(item)
    if sum(len(v) for v in by_category.values()) < n:
        raise ValueError(
            f"the eval pool gave only {len(seen)} distinct schemas for seed {seed}; {n} were requested"
        )
    categories = sorted(by_category)
    chosen: list[dict] = []
    depth = 0
    while len(chosen) < n:
        for cat in categories:
            if depth < len(by_category[cat]) and len(chosen) < n:
                chosen.append(by_category[cat][depth])
        depth += 1
    suite = []
    for i, item in enumerate(chosen):
        suite.append(
            {
                "id": f"json-{i:04d}",
                "name": item["name"],
                "category": item["category"],
                "instruction": item["instruction"],
                "schema": item["schema"],
                "content": item["content"],
                "instance": item["instance"],
            }
        )
    return suite


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_suite(path: str | os.PathLike, n: int, seed: int) -> str:
    """Write the suite as JSONL and ``<path>.sha256`` (``sha256sum -c`` format); return the hash."""
    suite = build_suite(n, seed)
    path = Path(path)
    # write_jsonl sorts keys: the bytes (and so the hash) depend only on the content.
    digest = write_jsonl(path, suite)
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")
    return digest


def load_suite(path: str | os.PathLike) -> tuple[list[dict], str]:
    """(examples, sha256). Refuses a suite whose bytes no longer match its sidecar hash."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSON schema suite not found: {path}")
    digest = _sha256(path)
    side = sidecar_path(path)
    if side.is_file():
        fields = side.read_text().split()
        recorded = fields[0] if fields else "<empty>"
        if recorded != digest:
            raise ValueError(f"{path}: sha256 {digest} does not match its locked hash {recorded} in {side}")
    return read_jsonl(path, required=EXAMPLE_KEYS), digest


def _escape(token: str) -> str:
    # RFC 6901: "~" and "/" inside a key are escaped as ~0 and ~1.
    return token.replace("~", "~0").replace("/", "~1")


def leaf_fields(value: Any, prefix: str = "") -> dict[str, Any]:
    """JSON pointer -> value for every leaf (scalar or empty container) of a JSON value."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(leaf_fields(v, f"{prefix}/{_escape(str(k))}"))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(leaf_fields(v, f"{prefix}/{i}"))
        return out
    return {prefix: value}


_MISSING = object()


def _resolve(doc: Any, pointer: str) -> Any:
    if pointer == "":
        return doc
    node = doc
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _same(a: Any, b: Any) -> bool:
    # JSON equality, not Python's: True must not equal 1, but 2 and 2.0 are the same JSON number.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def score_example(example: dict, generation_text: str) -> dict:
    """{parsed, valid, field_accuracy, error} for one generation against one suite example."""
    value, error = prompts.extract_json(generation_text)
    parsed = error is None
    valid = False
    accuracy = 0.0
    if parsed:
        validator = Draft202012Validator(example["schema"], format_checker=FormatChecker())
        first = next(iter(validator.iter_errors(value)), None)
        valid = first is None
        if first is not None:
            path = "/" + "/".join(_escape(str(p)) for p in first.absolute_path)
            error = f"schema violation at {path}: {first.message}"
        reference = leaf_fields(example["instance"])
        hits = sum(_same(_resolve(value, ptr), ref) for ptr, ref in reference.items())
        accuracy = hits / len(reference)
    return {"parsed": parsed, "valid": valid, "field_accuracy": accuracy, "error": error}


def example_scores(score: dict) -> dict[str, float]:
    """A scored example's contribution to each metric (the metric is the mean of these)."""
    return {
        "parse_rate": float(score["parsed"]),
        "schema_valid_rate": float(score["valid"]),
        "field_accuracy": float(score["field_accuracy"]),
    }


def metrics(scores: list[dict]) -> dict[str, float]:
    """parse_rate, schema_valid_rate, field_accuracy: means over the scored examples."""
    if not scores:
        raise ValueError("no scored examples")
    per = [example_scores(s) for s in scores]
    return {m: sum(p[m] for p in per) / len(per) for m in METRICS}


def messages(example: dict) -> list[dict]:
    return prompts.json_schema_messages(example["instruction"], example["schema"], example["content"])


def reference_answer(item: dict) -> str:
    """The target text for a suite example or pool item (used for few-shot answers)."""
    return json.dumps(item["instance"], ensure_ascii=False)
