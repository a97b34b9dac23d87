"""Real-world schemas for the JSON suite's "real_world" category, from sources that ship offline.

Two sources, both read from installed packages (never invented here):

- bfcl-eval (pinned in requirements.txt): the ``parameters`` object of the functions in BFCL's
  ``live_simple`` category, which are real APIs contributed by leaderboard users. The content is
  the user's request and the reference answer is the ground-truth argument object of BFCL's
  possible answers, so the values are the leaderboard's, not ours. Only entries whose every
  argument has exactly one acceptable value are used: with several, field accuracy against one of
  them would punish a correct answer.
- nbformat: the Jupyter notebook format v4.5 JSON Schema (a format specification frozen by its
  version number; its sha256 is checked). Its object definitions (cells, outputs, kernel
  metadata) are inlined into self-contained schemas and filled with values synthesized from the
  schema by ``synthesize`` and checked against it.

Schemas are used as the sources give them, except that local ``$ref``s are inlined (a suite
example must be self-contained) and ``$schema``/``id`` keys are dropped; every result is checked
against the draft 2020-12 meta-schema, and every reference instance validates with format
checking. These schemas and functions never occur in post-training data (tests/structured/test_disjoint.py).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from trellis.evaluate import bfcl
from trellis.structured import pools as sp
from trellis.structured.disjoint import schema_hash

BFCL_CATEGORY = "live_simple"
_LANGUAGE_HINT = re.compile(r"\s*Note that the provided function is in .*$", re.DOTALL)

NBFORMAT_FILE = "v4/nbformat.v4.5.schema.json"
# The notebook format 4.5 schema as shipped by nbformat 5.x. A different file would change the
# locked suite's real_world examples, so it is refused by name rather than silently used.
NBFORMAT_SHA256 = "523e3578ddbfcad52933d2423dc5951114ef73f48df180b6a601498ba5ca071a"
# (JSON pointer into the schema file, what the object is): the object definitions that describe a
# self-contained record. Catch-all definitions ("unrecognized_cell") and bare type aliases are left out.
NBFORMAT_OBJECTS = (
    ("/properties/metadata/properties/kernelspec", "Jupyter notebook kernel specification"),
    ("/properties/metadata/properties/language_info", "Jupyter notebook language information"),
    ("/definitions/raw_cell", "Jupyter notebook raw cell"),
    ("/definitions/markdown_cell", "Jupyter notebook markdown cell"),
    ("/definitions/code_cell", "Jupyter notebook code cell"),
    ("/definitions/execute_result", "Jupyter notebook execute_result output"),
    ("/definitions/display_data", "Jupyter notebook display_data output"),
    ("/definitions/stream", "Jupyter notebook stream output"),
    ("/definitions/error", "Jupyter notebook error output"),
)

# Plausible values by property name, so a synthesized notebook record reads like a real one;
# every value is still checked against the schema.
_NB_VALUES: dict[str, list[Any]] = {
    "name": ["python3", "stdout", "stderr", "ir", "julia-1.10"],
    "display_name": ["Python 3 (ipykernel)", "R", "Julia 1.10"],
    "file_extension": [".py", ".r", ".jl"],
    "mimetype": ["text/x-python", "text/x-r-source", "application/julia"],
    "pygments_lexer": ["ipython3", "r", "julia"],
    "codemirror_mode": ["python", "r", "julia"],
    "id": ["3f2a9c1e", "cell-7", "b41d-02", "intro_1"],
    "ename": ["ValueError", "KeyError", "ZeroDivisionError"],
    "evalue": ["invalid literal for int() with base 10: 'x'", "'missing_column'", "division by zero"],
    "traceback": [["Traceback (most recent call last):", '  File "<cell>", line 2', "ValueError"]],
    "text": [["Epoch 1 finished\n", "loss: 0.412\n"], "Saved results.csv\n", ["42\n"]],
    "source": [
        ["import pandas as pd\n", "df = pd.read_csv('data.csv')"],
        "# Results\nThe model converges.",
        ["print(sum(range(10)))"],
    ],
    "text/plain": ["<Figure size 640x480 with 1 Axes>", "45", "array([1, 2, 3])"],
    "format": ["text/plain", "text/markdown"],
}


def _package_dir(module: str) -> Path:
    return Path(importlib.import_module(module).__file__).parent


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pointer(doc: Any, pointer: str) -> Any:
    node = doc
    for raw in pointer.lstrip("/").split("/"):
        node = node[raw.replace("~1", "/").replace("~0", "~")]
    return node


def inline_refs(node: Any, root: dict, depth: int = 0) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (recursively).

    The top level's ``$schema`` and draft-04 ``id`` are dropped: the suite fixes the dialect.
    """
    if depth > 30:
        raise ValueError("$ref chain too deep (a recursive schema cannot be inlined)")
    if isinstance(node, list):
        return [inline_refs(v, root, depth) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#"):
            raise ValueError(f"non-local $ref {ref!r}")
        target = inline_refs(_pointer(root, ref[1:]), root, depth + 1)
        rest = {k: inline_refs(v, root, depth) for k, v in node.items() if k != "$ref"}
        # Sibling keywords beside $ref (here only "description") are kept next to the target's.
        return {**target, **rest} if isinstance(target, dict) else target
    out = {k: inline_refs(v, root, depth) for k, v in node.items()}
    if depth == 0:
        # Only the extracted object's own identity keys go (a property may well be named "id").
        for key in ("$schema", "id", "$id"):
            if not isinstance(out.get(key), dict):
                out.pop(key, None)
    return out


# --- values synthesized from a schema --------------------------------------------------------


def _string(schema: dict, key: str, rng: random.Random) -> str | None:
    fmt = schema.get("format")
    if fmt == "date":
        return f"{rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        return (
            f"{rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:30:00Z"
        )
    if fmt == "email":
        return "jane.doe@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/notebooks/analysis"
    candidates = [v for v in _NB_VALUES.get(key, []) if isinstance(v, str)]
    rng.shuffle(candidates)
    candidates += [f"{key.replace('_', ' ')} {rng.randint(1, 99)}", f"item{rng.randint(1, 99)}"]
    pattern = schema.get("pattern")
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10**9)
    for c in candidates:
        if lo <= len(c) <= hi and (pattern is None or re.search(pattern, c)):
            return c
    return None


def synthesize(schema: dict, key: str, rng: random.Random, depth: int = 0) -> Any:
    """A value valid against an inlined ``schema`` (checked by the caller), or raise ValueError."""
    if depth > 6:
        raise ValueError("schema too deep to synthesize")
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema:
            branches = list(schema[keyword])
            rng.shuffle(branches)
            for branch in branches:
                try:
                    value = synthesize(
                        {
                            **branch,
                            **{k: v for k, v in schema.items() if k != keyword and k != "description"},
                        },
                        key,
                        rng,
                        depth + 1,
                    )
                except ValueError:
                    continue
                if Draft202012Validator(schema).is_valid(value):
                    return value
            raise ValueError(f"no {keyword} branch of {key!r} could be synthesized")
    if key in _NB_VALUES and not isinstance(_NB_VALUES[key][0], str):
        for v in _NB_VALUES[key]:
            if Draft202012Validator(schema).is_valid(v):
                return copy.deepcopy(v)
    types = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(types, list):
        types = next((t for t in types if t != "null"), "null")
    if types == "object":
        out = {}
        required = set(schema.get("required", []))
        for k, sub in schema.get("properties", {}).items():
            # Every required property, and some optional ones (never deep optional objects, which
            # would make the record long without testing anything new).
            optional_ok = sub.get("type") != "object" and rng.random() < 0.4
            if k in required or optional_ok:
                out[k] = synthesize(sub, k, rng, depth + 1)
        if not out and schema.get("additionalProperties") is not False and "patternProperties" not in schema:
            out["note"] = "none"
        return out
    if types == "array":
        items = schema.get("items", {"type": "string"})
        n = max(schema.get("minItems", 1), 1)
        return [synthesize(items, key, rng, depth + 1) for _ in range(n)]
    if types == "string":
        value = _string(schema, key, rng)
        if value is None:
            raise ValueError(f"no string for {key!r} matches {schema.get('pattern')!r}")
        return value
    if types == "integer":
        lo = schema.get("minimum", 0)
        return rng.randint(int(lo), int(lo) + 40)
    if types == "number":
        lo = schema.get("minimum", 0)
        return round(lo + rng.uniform(0, 40), 2)
    if types == "boolean":
        return rng.random() < 0.5
    if types == "null":
        return None
    raise ValueError(f"cannot synthesize a value for {key!r} (type {types!r})")


# --- the two sources ------------------------------------------------------------------------


def _check(schema: dict, instance: Any, where: str) -> None:
    Draft202012Validator.check_schema(schema)
    err = sp.validation_error(instance, schema)
    if err:
        raise AssertionError(f"{where}: reference instance is invalid: {err}")


def nbformat_items(seed: int) -> list[dict]:
    """One item per NBFORMAT_OBJECTS entry: inlined schema, synthesized instance, its description."""
    path = _package_dir("nbformat") / NBFORMAT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"nbformat does not ship {NBFORMAT_FILE} (looked at {path})")
    raw = path.read_bytes()
    if _sha256_bytes(raw) != NBFORMAT_SHA256:
        raise ValueError(
            f"{path}: sha256 {_sha256_bytes(raw)} is not the notebook-format 4.5 schema the suite "
            f"was locked with ({NBFORMAT_SHA256})"
        )
    root = json.loads(raw)
    items = []
    for pointer, what in NBFORMAT_OBJECTS:
        schema = inline_refs(_pointer(root, pointer), root)
        rng = random.Random(f"{seed}|nbformat|{pointer}")
        instance = synthesize(schema, pointer.rsplit("/", 1)[-1], rng)
        _check(schema, instance, f"nbformat {pointer}")
        items.append(
            {
                "name": f"nbformat_v4_5_{pointer.rsplit('/', 1)[-1]}",
                "schema": schema,
                "instance": instance,
                "content": " ".join(sp.describe(instance)),
                "instruction": f"Write the {what} described below as a JSON object.",
                "source": {"package": "nbformat", "file": NBFORMAT_FILE, "pointer": pointer},
            }
        )
    return items


def _is_2020_12_schema(schema: dict) -> bool:
    return (
        next(iter(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema)), None) is None
    )


def bfcl_items() -> list[dict]:
    """BFCL live_simple entries with an unambiguous ground truth, one per distinct parameter schema."""
    return copy.deepcopy(_bfcl_items())


@lru_cache(maxsize=1)
def _bfcl_items() -> list[dict]:
    # Cached: reading and converting the category takes seconds; callers get deep copies.
    items, seen = [], set()
    for entry in bfcl.load_category(BFCL_CATEGORY):
        if len(entry["possible_answer"]) != 1:
            continue
        ((name, possible),) = entry["possible_answer"][0].items()
        if any(len([o for o in opts if o != ""]) != 1 for opts in possible.values()):
            continue
        (call,) = bfcl.reference_calls(entry)
        function = next(f for f in bfcl.prompt_functions(entry) if f["name"] == name)
        schema, instance = function["parameters"], call["arguments"]
        h = schema_hash(schema)
        if not instance or h in seen:
            continue
        if not _is_2020_12_schema(schema):
            continue  # a converted doc that is not a valid 2020-12 schema is skipped, not scored
        if sp.validation_error(instance, schema):
            continue  # BFCL accepts some answers its own doc's types reject (e.g. "1" for an integer)
        seen.add(h)
        # bfcl-eval's loader appends a language hint to every description; it is not the API's.
        description = _LANGUAGE_HINT.sub("", function.get("description") or "").strip().split("\n")[0][:300]
        items.append(
            {
                "name": f"bfcl_{entry['id']}",
                "schema": schema,
                "instance": instance,
                "content": bfcl.question_text(entry),
                "instruction": f"Fill in the arguments of the API function {name}"
                + (f" ({description.rstrip('.')})" if description else "")
                + " for the request below, as a JSON object.",
                "source": {
                    "package": "bfcl-eval",
                    "category": BFCL_CATEGORY,
                    "id": entry["id"],
                    "function": name,
                },
            }
        )
    return items


def items(n: int, seed: int) -> list[dict]:
    """``n`` real-world items: every nbformat object, then a seeded sample of BFCL functions."""
    nb = nbformat_items(seed)
    fns = bfcl_items()
    if n > len(nb) + len(fns):
        raise ValueError(f"only {len(nb) + len(fns)} real-world schemas are available; {n} were requested")
    chosen = nb[:n] + random.Random(f"{seed}|bfcl").sample(fns, max(0, n - len(nb)))
    # Interleave the sources, so that a small stratified subset of the suite has both.
    random.Random(f"{seed}|real_world-order").shuffle(chosen)
    for item in chosen:
        item["category"] = "real_world"
    return chosen
