"""The custom JSON Schema compliance benchmark: the locked suite, its subsets, and scoring.

The suite has six categories. Five (flat, nested, arrays_enums, conditional, adversarial) are
drawn from the EVAL pool of ``trellis.structured.pools``, whose schema names are disjoint from the
TRAIN pool that SFT data and few-shot examples come from; the sixth, real_world, holds real
schemas that ship offline inside installed packages (``trellis.evaluate.real_world``). The
benchmark therefore measures generalization to unseen schemas.

Two locked versions exist (``SUITES``; config key ``evaluate.json_schema.suite``): v1, described
here, and v2 (``trellis.evaluate.json_suite_v2``), which builds all six categories from real
schemas of pinned packages and is what the study scores. Both are scored the same way.

The suite is locked before any model is trained: ``build_suite(LOCKED_SIZE, LOCKED_SEED)`` was
written once to ``data/json_schema_suite.jsonl`` beside this module with its sha256 sidecar
(``python -m trellis.evaluate.json_schema lock`` rewrites it; a test fails if the generator no
longer reproduces the committed bytes). The workflow never regenerates it: ``write_subset``
checks the locked file's hash and writes a deterministic, category-stratified subset (all of it
in the study), so every arm and stage is scored on byte-identical examples.

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

from trellis.core.io import atomic_path, read_jsonl, write_jsonl
from trellis.evaluate import real_world
from trellis.structured import pools as structured_pool
from trellis.structured import prompts

# Metric names, in report order; per-example scores carry the same names.
METRICS = ("parse_rate", "schema_valid_rate", "field_accuracy")

# Keys every suite example carries. source: where the schema comes from (generator or package).
EXAMPLE_KEYS = ("id", "name", "category", "instruction", "schema", "content", "instance", "source")

CATEGORIES = tuple(sorted(structured_pool.CATEGORIES + ("real_world",)))

# The locked suite: its size and seed are part of the lock (changing either changes the file).
LOCKED_SUITE = Path(__file__).parent / "data" / "json_schema_suite.jsonl"
LOCKED_SIZE = 500
LOCKED_SEED = 20260212
# The locked suites by version (config key evaluate.json_schema.suite). v1: the suite above; v2:
# real schemas throughout (trellis.evaluate.json_suite_v2, its card beside the data). Both stay
# committed and reproducible; the demo scores v1, the study v2.
SUITES = {
    "v1": LOCKED_SUITE,
    "v2": Path(__file__).parent / "data" / "json_schema_suite_v2.jsonl",
}
DEFAULT_SUITE = "v1"


def locked_path(suite: str = DEFAULT_SUITE) -> Path:
    """The committed file of a locked suite version."""
    if suite not in SUITES:
        raise ValueError(
            f"unknown JSON schema suite {suite!r} (evaluate.json_schema.suite); known: {sorted(SUITES)}"
        )
    return SUITES[suite]


def quotas(n: int, categories: tuple[str, ...] | list[str] = CATEGORIES) -> dict[str, int]:
    """Examples per category for ``n`` in all: as even as possible, the earlier categories first."""
    if n < 1:
        raise ValueError(f"suite size must be >= 1, got {n}")
    k, extra = divmod(n, len(categories))
    return {c: k + (i < extra) for i, c in enumerate(categories)}


def build_suite(n: int, seed: int) -> list[dict]:
    """``n`` examples spread evenly over the six categories, interleaved round robin."""
    quota = quotas(n)
    generated = [c for c in CATEGORIES if c != "real_world"]
    # The pool cycles through its categories, so this many draws give each one its quota.
    pool = structured_pool.schemas(
        "eval", seed, len(structured_pool.CATEGORIES) * max(quota[c] for c in generated)
    )
    by_category: dict[str, list[dict]] = {c: [] for c in CATEGORIES}
    seen: set[str] = set()
    for item in pool:
        # A schema name identifies the example; a repeat would double-count it in every metric.
        if item["name"] in seen or len(by_category[item["category"]]) >= quota[item["category"]]:
            continue
        seen.add(item["name"])
        # The generator is recorded by the module name it had when the v1 suite was locked, so
        # the suite still regenerates byte for byte (the module is now trellis.structured.pools).
        by_category[item["category"]].append(
            {**item, "source": {"generator": "trellis.structured_pool", "pool": "eval"}}
        )
    by_category["real_world"] = real_world.items(quota["real_world"], seed)
    for c in CATEGORIES:
        if len(by_category[c]) < quota[c]:
            raise ValueError(
                f"category {c!r} gave {len(by_category[c])} distinct schemas for seed {seed}; "
                f"{quota[c]} were requested"
            )
    chosen: list[dict] = []
    for depth in range(max(quota.values())):
        chosen.extend(by_category[c][depth] for c in CATEGORIES if depth < quota[c])
    names = [item["name"] for item in chosen]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate example names in the suite")
    return [
        {"id": f"json-{i:04d}", **{k: item[k] for k in EXAMPLE_KEYS if k != "id"}}
        for i, item in enumerate(chosen)
    ]


def select(examples: list[dict], n: int) -> list[dict]:
    """A deterministic category-stratified subset of ``n`` examples, in the suite's order.

    Each category contributes its ``quotas`` share, taken from the front of the suite, so a
    smaller subset is contained in a larger one and ``n`` = the suite size returns the suite.
    """
    if n > len(examples):
        raise ValueError(f"{n} examples requested from a suite of {len(examples)}")
    present = sorted({e["category"] for e in examples})
    quota = quotas(n, present)
    available = {c: sum(e["category"] == c for e in examples) for c in present}
    short = {c: (quota[c], available[c]) for c in present if quota[c] > available[c]}
    if short:
        # Move the shortfall to the categories that still have examples, in category order.
        for c, (want, have) in short.items():
            quota[c] = have
            missing = want - have
            for other in present:
                room = available[other] - quota[other]
                take = min(room, missing)
                quota[other] += take
                missing -= take
    taken = {c: 0 for c in present}
    out = []
    for e in examples:
        if taken[e["category"]] < quota[e["category"]]:
            taken[e["category"]] += 1
            out.append(e)
    return out


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_locked(path: Path, examples: list[dict]) -> str:
    # write_jsonl sorts keys: the bytes (and so the hash) depend only on the content.
    digest = write_jsonl(path, examples)
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")
    return digest


def write_suite(path: str | os.PathLike, n: int, seed: int) -> str:
    """Generate the suite, write it as JSONL and ``<path>.sha256`` (``sha256sum -c`` format)."""
    return _write_locked(Path(path), build_suite(n, seed))


def write_subset(locked: str | os.PathLike, path: str | os.PathLike, n: int) -> tuple[str, int]:
    """Write ``select(locked suite, n)`` and its sidecar to ``path``; (sha256, n written)."""
    examples, _ = load_suite(locked, require_sidecar=True)
    subset = select(examples, n)
    return _write_locked(Path(path), subset), len(subset)


def load_suite(path: str | os.PathLike, require_sidecar: bool = False) -> tuple[list[dict], str]:
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
    elif require_sidecar:
        raise FileNotFoundError(f"{path}: locked suite has no sha256 sidecar {side}")
    return read_jsonl(path, required=EXAMPLE_KEYS), digest


def load_locked(n: int | None = None, suite: str = DEFAULT_SUITE) -> tuple[list[dict], str]:
    """The committed locked suite ``suite`` (hash-checked) or its ``n``-example stratified subset,
    and the locked file's sha256."""
    examples, digest = load_suite(locked_path(suite), require_sidecar=True)
    return (examples if n is None else select(examples, n)), digest


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


if __name__ == "__main__":
    import sys

    # Re-locking is a deliberate act (it changes what every past result was scored on).
    if sys.argv[1:2] != ["lock"] or sys.argv[2:] not in ([], ["v1"], ["v2"]):
        sys.exit("usage: python -m trellis.evaluate.json_schema lock [v1|v2]   # rewrite a locked suite")
    if sys.argv[2:] == ["v2"]:
        from trellis.evaluate import json_suite_v2

        d = json_suite_v2.write()
        print(f"wrote {json_suite_v2.SUITE_PATH} and {json_suite_v2.CARD_PATH}, sha256 {d}")
    else:
        d = write_suite(LOCKED_SUITE, LOCKED_SIZE, LOCKED_SEED)
        print(f"wrote {LOCKED_SUITE} ({LOCKED_SIZE} examples, seed {LOCKED_SEED}), sha256 {d}")
