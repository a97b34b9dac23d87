"""Training and evaluation data stay disjoint: the rule, and the identities it compares.

The study asks whether a model generalizes to *unseen* schemas and function signatures, so
nothing a model is post-trained on or shown as a few-shot example may be something it is
evaluated on. Two items are the same when they share an identity: a name (schema or item
name, function name) or a schema hash (``schema_hash``; a renamed copy of a schema, or of a
function's parameter schema, is still the same schema).

Where the rule is enforced:

- generated data, by construction: the train and eval pools of ``trellis.structured.pools`` are
  built from disjoint entities (checked when that module is imported);
- real schemas and public post-training sets: ``trellis.train.real_schemas`` and
  ``trellis.train.posttrain_data`` pass over every candidate or example that shows an evaluation
  item by the near-duplicate rule below (``EvalIndex`` over ``trellis.evaluate.identities``'s
  ``evaluation_items``: the evaluation side knows its sets), and drop any
  written row that still does, counting each drop in posttrain/manifest.json;
- few-shot examples: ``trellis.evaluate.dispatch`` checks that no shot (drawn from the train
  pool) is an evaluated example (``check_disjoint``);
- end to end, on the files post-training reads: ``check_posttrain_files``, run by the
  build_posttrain_data job on the files it wrote (a leak fails the job) and by
  ``tests/structured/test_disjoint.py`` on the demo's files, with and without a planted leak.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def schema_hash(schema: dict) -> str:
    """Identity of a schema: sha256 of its canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def shows_identity(function: dict, names: set[str], hashes: set[str]) -> bool:
    """Whether a function definition has one of these identities: its name or its parameter schema's hash."""
    return function["name"] in names or schema_hash(function["parameters"]) in hashes


def check_disjoint(train_names: set, eval_names: set) -> None:
    """Raise ValueError naming the overlap if any train identity (name or hash) is an eval one."""
    overlap = set(train_names) & set(eval_names)
    if overlap:
        shown = sorted(overlap)
        raise ValueError(f"train and eval pools overlap in {len(shown)} item(s): {shown[:20]}")


# --- near-duplicates: the rule for real schemas and functions ----------------------------------
#
# Real schemas reach training data in many shapes (a copy with another title, keys re-cased, one
# key renamed, the schema nested inside a bigger one), so equality of ``schema_hash`` is not
# enough. A training schema *shows* an evaluation item when any of these holds:
#
# 1. same normal form: ``normal_hash`` of the evaluation schema equals that of the training schema
#    or of any object nested in it. The normal form drops annotations (ANNOTATIONS: titles,
#    descriptions, examples, defaults, $comment/$id/$schema), which tell a model nothing about the
#    shape it must write, lower-cases property names and strips their separators (NAME_FORM:
#    ``userName``, ``user_name`` and ``user-name`` are one name), and sorts ``required`` and
#    ``type`` lists (their order means nothing).
# 2. similar property names: Jaccard >= JACCARD_MIN between the normalised *top-level* property
#    names of the evaluation schema and those of the training schema or of any object nested in
#    it. Top-level, per object, rather than all names of a schema at once: a schema's nested
#    objects are shared building blocks (an address, a Tag) that would make unrelated schemas
#    look alike, while comparing every training object separately still catches an evaluation
#    schema embedded anywhere in a training one. Sets smaller than MIN_NAMES are skipped: two
#    two-key objects that share one key have Jaccard 1/3, share both and they are 1.0, neither
#    says anything (rule 1 still catches exact copies of small schemas).
# 3. the same function name (BFCL's, the JSON suites' real_world functions, the eval pool's).
# 4. the same source file, or the same schema family (``schema_sources.family``): an example built
#    from a file the suite reads, or from a family it reads, is not "unseen" whatever its shape.
#
# Rule 2 is a set-similarity join of tens of thousands of training objects against thousands of
# evaluation schemas. It is exact and sub-quadratic with an inverted index and prefix filtering
# (Bayardo et al., "Scaling up all pairs similarity search", 2007): with every set's names in
# one global order (rarest first), two sets with Jaccard >= t share a name among the first
# n - ceil(t * n) + 1 names of each, so only the evaluation sets indexed under those few names
# are candidates, and only they are compared. No false negatives (unlike MinHash/LSH), and
# common names ("name", "type") fall late in the order, outside most prefixes.

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "markdownDescription",
        "examples",
        "default",
        "$comment",
        "$id",
        "id",
        "$schema",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
JACCARD_MIN = 0.8
MIN_NAMES = 3
_NAME_FORM = re.compile(r"[^0-9a-z]+")
# Keywords whose values are schemas, by how they hold them (draft 4 to 2020-12 spellings).
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "definitions", "$defs")
_SCHEMA_ONE = ("additionalProperties", "items", "additionalItems", "not", "if", "then", "else")
_SCHEMA_ONE += ("contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def normal_name(key: str) -> str:
    """A property name as the rule compares it: lower case, no separators (``user_Name`` -> ``username``)."""
    return _NAME_FORM.sub("", str(key).lower()) or str(key)


def normal_form(schema: Any) -> Any:
    """The schema as the rule compares it (rule 1 above): annotations dropped, property names in
    ``normal_name`` form, ``required``/``type`` lists sorted. Values that are data, not schemas
    (enum, const), are kept as written; a property *named* "title" is kept."""
    if isinstance(schema, list):  # draft-04 tuple items
        return [normal_form(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS and not (key == "id" and not isinstance(value, str)):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            names = normal_name if key == "properties" else str
            out[key] = {names(k): normal_form(v) for k, v in value.items()}
        elif key in _SCHEMA_ONE or key in _SCHEMA_LISTS:
            out[key] = normal_form(value)
        elif key == "required" and isinstance(value, list):
            out[key] = sorted({normal_name(v) for v in value})
        elif key == "dependentRequired" and isinstance(value, dict):
            out[key] = {normal_name(k): sorted(normal_name(v) for v in vs) for k, vs in value.items()}
        elif key == "type" and isinstance(value, list):
            out[key] = sorted(value)
        else:
            out[key] = value
    return out


def normal_hash(schema: Any) -> str:
    """``schema_hash`` of the normal form: equal for copies that differ in annotations, key case and
    separators, or the order of ``required``."""
    return schema_hash(normal_form(schema))


def object_nodes(schema: Any) -> Iterator[dict]:
    """The schema and every object schema inside it that has properties (root first)."""
    if isinstance(schema, list):
        for s in schema:
            yield from object_nodes(s)
        return
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("properties"), dict):
        yield schema
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for sub in value.values():
                yield from object_nodes(sub)
        elif key in _SCHEMA_ONE or key in _SCHEMA_LISTS:
            yield from object_nodes(value)


def name_set(schema: Any) -> frozenset[str]:
    """The normalised top-level property names of a schema (empty for a schema without properties)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return frozenset(normal_name(k) for k in props) if isinstance(props, dict) else frozenset()


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _prefix_length(n: int, threshold: float) -> int:
    # Sets with Jaccard >= t have |A & B| >= t * |A|: at most n - ceil(t * n) of A's names can be
    # missing from B, so one of A's first n - ceil(t * n) + 1 names (in the global order) is shared.
    return n - math.ceil(threshold * n - 1e-9) + 1


@dataclass(frozen=True)
class EvalItem:
    """One thing an evaluation shows a model. ``label`` names it in errors (suite, id, origin)."""

    label: str
    schema: dict | None = None
    function: str | None = None
    source: str | None = None  # schema_sources name (or the package, for v1's real_world)
    file: str | None = None
    family: str | None = None


@dataclass(frozen=True)
class Leak:
    """Why a training schema or function shows an evaluation item (rule: ``kind``)."""

    kind: str  # same_normal_form, similar_names, function_name, same_file, same_family
    eval_label: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} as {self.eval_label}" + (f" ({self.detail})" if self.detail else "")


def family_group(source: str) -> str:
    # check-jsonschema vendors SchemaStore's schemas: the two share families (schema_sources.split_of).
    return "schemastore" if source == "check-jsonschema" else source


class EvalIndex:
    """The evaluation side of the rule, indexed for lookups: normal hashes, names, files, families,
    and the property-name sets under their prefix names (see the comment above ``ANNOTATIONS``)."""

    def __init__(self, items: Iterable[EvalItem], threshold: float = JACCARD_MIN, min_names: int = MIN_NAMES):
        self.threshold, self.min_names = threshold, min_names
        self.items = list(items)
        self.by_hash: dict[str, str] = {}
        self.by_function: dict[str, str] = {}
        self.by_file: dict[tuple[str, str], str] = {}
        self.by_family: dict[tuple[str, str], str] = {}
        sets: dict[frozenset, str] = {}
        for item in self.items:
            if item.schema is not None:
                self.by_hash.setdefault(normal_hash(item.schema), item.label)
                names = name_set(item.schema)
                if len(names) >= min_names:
                    sets.setdefault(names, item.label)
            if item.function:
                self.by_function.setdefault(item.function, item.label)
            if item.source and item.file:
                self.by_file.setdefault((item.source, item.file), item.label)
            if item.source and item.family:
                self.by_family.setdefault((family_group(item.source), item.family), item.label)
        # Global order: names that few evaluation sets use first (those absent from all come
        # before every indexed one, which keeps the order total and the prefixes short).
        df: Counter = Counter(n for s in sets for n in s)
        self._rank = {n: (c, n) for n, c in df.items()}
        self._sets = list(sets.items())
        self._postings: dict[str, list[int]] = {}
        for i, (names, _) in enumerate(self._sets):
            for n in self._prefix(names):
                self._postings.setdefault(n, []).append(i)

    def _prefix(self, names: frozenset) -> list[str]:
        ordered = sorted(names, key=lambda n: self._rank.get(n, (0, n)))
        return ordered[: _prefix_length(len(ordered), self.threshold)]

    def similar(self, names: frozenset) -> tuple[str, float] | None:
        """The first evaluation schema (label, Jaccard) whose names are >= threshold alike, or None."""
        if len(names) < self.min_names:
            return None
        seen: set[int] = set()
        best = None
        for n in self._prefix(names):
            for i in self._postings.get(n, ()):
                if i in seen:
                    continue
                seen.add(i)
                other, label = self._sets[i]
                j = jaccard(names, other)
                if j >= self.threshold - 1e-12 and (best is None or j > best[1]):
                    best = (label, j)
        return best

    def schema_leak(self, schema: Any) -> Leak | None:
        """How a schema shown in training shows an evaluation schema (rules 1 and 2), or None."""
        label = self.by_hash.get(normal_hash(schema))
        if label:
            return Leak("same_normal_form", label)
        for node in object_nodes(schema):
            nested = node is not schema
            label = self.by_hash.get(normal_hash(node)) if nested else None
            if label:
                return Leak("same_normal_form", label, "nested")
            hit = self.similar(name_set(node))
            if hit:
                return Leak("similar_names", hit[0], f"Jaccard {hit[1]:.2f}" + (", nested" if nested else ""))
        return None

    def function_leak(self, function: dict) -> Leak | None:
        """A function definition shows an evaluation item by its name or its parameters."""
        label = self.by_function.get(function.get("name"))
        if label:
            return Leak("function_name", label, function["name"])
        return self.schema_leak(function.get("parameters"))

    def origin_leak(self, origin: dict | None) -> Leak | None:
        """A training example's source file or family is one the evaluation reads (rule 4)."""
        if not origin:
            return None
        source, file, fam = origin.get("source"), origin.get("file"), origin.get("family")
        label = self.by_file.get((source, file))
        if label:
            return Leak("same_file", label, f"{source}:{file}")
        label = self.by_family.get((family_group(source or ""), fam))
        if label:
            return Leak("same_family", label, f"{source} family {fam}")
        return None

    def row_leak(self, row: dict) -> Leak | None:
        """The first leak of a post-training row (SFT or DPO): what its prompt shows, and its origin."""
        schemas, functions = shown_in(row["prompt"])
        for f in functions:
            leak = self.function_leak(f)
            if leak:
                return leak
        for s in schemas:
            leak = self.schema_leak(s)
            if leak:
                return leak
        return self.origin_leak(row.get("origin"))


# --- what a post-training row shows -----------------------------------------------------------


def shown_in(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(schemas, functions) a prompt shows, parsed back out of the text the model reads (the
    formats of ``trellis.structured.prompts``: a JSON Schema task's "JSON Schema:" block, a
    function-calling system message's one definition per line). Raises ValueError if neither."""
    # Imported here: prompts is light, but this module is imported by modules prompts' users import.
    from trellis.structured import prompts

    head, _, tail = prompts.FUNCTION_SYSTEM.partition("{functions}")
    tail = tail.replace("{{", "{").replace("}}", "}")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    user = "\n\n".join(m["content"] for m in messages if m["role"] == "user")
    if system.startswith(head) and tail in system:
        body = system[len(head) : system.rindex(tail)]
        return [], [json.loads(line) for line in body.splitlines() if line.strip()]
    marker = "JSON Schema:\n"
    if marker in user:
        return [json.JSONDecoder().raw_decode(user.split(marker, 1)[1])[0]], []
    raise ValueError("the prompt shows neither a JSON Schema nor function definitions")


# --- the evaluation side, and the check on written post-training files -------------------------


class LeakError(ValueError):
    """Post-training data shows an evaluation item (the message names each row and item)."""


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for k, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield k, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {k}: not JSON ({err.msg})") from err


def manifest_origins(manifest: dict) -> Iterator[dict]:
    """The real-schema files a post-training manifest says were used ({source, file, family})."""
    train = (manifest.get("real_schemas") or {}).get("splits", {}).get("train", {})
    for source, used in sorted(train.items()):
        for file, fam in sorted(used["files"].items()):
            yield {"source": source, "file": file, "family": fam}


def check_posttrain_files(sft_path, dpo_path, manifest_path, index: EvalIndex) -> dict:
    """The disjointness check on written post-training data: no row of the SFT or DPO file shows an
    evaluation item (``EvalIndex.row_leak``: what its prompt shows, parsed from the text, and its
    recorded origin), and no real-schema file the manifest lists is one the evaluation reads or is
    on the evaluation side of ``schema_sources.split_of``. Raises LeakError naming every leak
    (file, line, item, the rule and the evaluation item); returns counts of what was checked."""
    from trellis.structured import schema_sources as ss  # imports this module: imported here

    leaks: list[str] = []
    rows = 0
    for path in (Path(sft_path), Path(dpo_path)):
        for k, row in _rows(path):
            rows += 1
            try:
                leak = index.row_leak(row)
            except (KeyError, ValueError) as err:
                raise ValueError(f"{path}, line {k} (item {row.get('item')!r}): {err}") from err
            if leak:
                leaks.append(f"{path.name}, line {k}, item {row.get('item')!r}: {leak}")
    manifest = json.loads(Path(manifest_path).read_text())
    files = 0
    for origin in manifest_origins(manifest):
        files += 1
        where = f"{Path(manifest_path).name}: real-schema file {origin['source']}:{origin['file']}"
        leak = index.origin_leak(origin)
        if leak:
            leaks.append(f"{where}: {leak}")
        elif ss.split_of(origin["source"], origin["file"]) != "train":
            leaks.append(f"{where} is on the eval side of schema_sources.split_of")
    if leaks:
        raise LeakError(
            f"post-training data shows {len(leaks)} evaluation item(s) (rule: trellis.structured.disjoint):\n"
            + "\n".join(leaks[:50])
            + (f"\n... and {len(leaks) - 50} more" if len(leaks) > 50 else "")
        )
    return {"rows": rows, "real_schema_files": files, "eval_items": len(index.items)}
