"""Real schemas made into self-contained draft 2020-12 suite schemas, and values synthesized for them.

Real schemas are written for other drafts (04, 06, 07), point into themselves with ``$ref``, carry
editor annotations and are often far larger than a 0.5B model can read. ``prepare`` turns a
sub-schema into what the suite can use: local ``$ref``s inlined (a recursive one is refused),
draft-04/07 keywords rewritten to their 2020-12 forms (``items: [...]`` -> ``prefixItems``,
``dependencies`` -> ``dependentRequired``/``dependentSchemas``, boolean ``exclusiveMinimum``),
annotations other than a short ``description``/``title`` dropped, and whatever cannot be checked
offline with Python's validator dropped too (a ``pattern`` Python's ``re`` cannot compile, a
``format`` the format checker does not know). ``Synth`` then writes a value valid against it,
with plausible content picked from the property names; the caller validates every value.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

# Keywords kept (everything else is an annotation or a vendor extension and is dropped).
SUBSCHEMA_MAP = ("properties", "patternProperties", "dependentSchemas")
SUBSCHEMA_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames")
SUBSCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
PLAIN = (
    "type",
    "required",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "title",
    "description",
)
KEYWORDS = frozenset(SUBSCHEMA_MAP + SUBSCHEMA_ONE + SUBSCHEMA_LIST + PLAIN)
# Formats the format checker enforces with the installed packages and that a model can write.
FORMATS = frozenset({"date", "date-time", "time", "email", "uri", "ipv4", "ipv6", "uuid", "hostname"})
DESCRIPTION_CHARS = 100
_FORMAT_CHECKER = FormatChecker()


class Unusable(ValueError):
    """This sub-schema cannot become a suite schema (remote or recursive $ref, nothing to fill)."""


def pointer_get(doc: Any, pointer: str) -> Any:
    node = doc
    for raw in pointer.lstrip("/").split("/") if pointer not in ("", "/") else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise Unusable(f"$ref target {pointer!r} does not exist")
    return node


def _short(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0].strip()
    return first if len(first) <= DESCRIPTION_CHARS else first[: DESCRIPTION_CHARS - 3].rstrip() + "..."


def _compiles(pattern: Any) -> bool:
    if not isinstance(pattern, str):
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def prepare(node: Any, root: dict, stack: tuple[str, ...] = ()) -> Any:
    """A self-contained 2020-12 version of ``node`` (a schema inside ``root``). Raises Unusable."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise Unusable(f"not a schema: {type(node).__name__}")
    if "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise Unusable(f"non-local $ref {ref!r}")
        if ref in stack or len(stack) > 12:
            raise Unusable(f"recursive $ref {ref!r}")
        target = prepare(pointer_get(root, ref[1:]), root, stack + (ref,))
        rest = prepare({k: v for k, v in node.items() if k != "$ref"}, root, stack)
        if isinstance(target, bool) or not rest:
            return target
        # Siblings beside $ref (a description, a tighter bound) apply together with the target.
        return {
            **target,
            **{k: v for k, v in rest.items() if k not in ("title", "description")},
            **{k: rest[k] for k in ("description",) if k in rest and "description" not in target},
        }
    out: dict[str, Any] = {}
    node = dict(node)
    # draft-04: exclusiveMinimum/Maximum were booleans modifying minimum/maximum.
    for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(excl), bool):
            if node.pop(excl) and bound in node:
                node[excl] = node.pop(bound)
    # draft-07: items as a list was the tuple form; additionalItems the rest.
    if isinstance(node.get("items"), list):
        node["prefixItems"] = node.pop("items")
        if "additionalItems" in node:
            node["items"] = node.pop("additionalItems")
    node.pop("additionalItems", None)
    deps = node.pop("dependencies", None)
    if isinstance(deps, dict):
        for k, v in deps.items():
            if isinstance(v, list):
                node.setdefault("dependentRequired", {})[k] = v
            else:
                node.setdefault("dependentSchemas", {})[k] = v
    for key, value in node.items():
        if key not in KEYWORDS:
            continue
        if key in SUBSCHEMA_MAP:
            if isinstance(value, dict):
                out[key] = {k: prepare(v, root, stack) for k, v in value.items()}
        elif key in SUBSCHEMA_ONE:
            out[key] = prepare(value, root, stack)
        elif key in SUBSCHEMA_LIST:
            if isinstance(value, list) and value:
                out[key] = [prepare(v, root, stack) for v in value]
        elif key == "pattern":
            if _compiles(value):
                out[key] = value
        elif key == "format":
            if value in FORMATS:
                out[key] = value
        elif key in ("title", "description"):
            short = _short(value)
            if short:
                out[key] = short
        elif key == "required":
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                out[key] = list(dict.fromkeys(value))
        else:
            out[key] = value
    if "patternProperties" in out and not all(_compiles(p) for p in out["patternProperties"]):
        out["patternProperties"] = {p: s for p, s in out["patternProperties"].items() if _compiles(p)}
        if not out["patternProperties"]:
            del out["patternProperties"]
    return out


def is_valid_schema(schema: Any) -> bool:
    return (
        next(iter(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema)), None) is None
    )


def validation_error(instance: Any, schema: dict) -> str | None:
    err = next(iter(Draft202012Validator(schema, format_checker=_FORMAT_CHECKER).iter_errors(instance)), None)
    if err is None:
        return None
    return f"/{'/'.join(map(str, err.absolute_path))}: {err.message}"


# --- features (for categories and the card's coverage table) -----------------------------------

COVERAGE_KEYWORDS = (
    "type",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "maxProperties",
    "propertyNames",
)


def keywords_used(schema: Any, acc: set[str] | None = None) -> set[str]:
    acc = set() if acc is None else acc
    if isinstance(schema, list):
        for v in schema:
            keywords_used(v, acc)
    elif isinstance(schema, dict):
        for k, v in schema.items():
            acc.add(k)
            if k in SUBSCHEMA_MAP and isinstance(v, dict):
                for sub in v.values():
                    keywords_used(sub, acc)
            elif k in SUBSCHEMA_ONE or k in SUBSCHEMA_LIST:
                keywords_used(v, acc)
    return acc


_CHILDREN = ("properties", "patternProperties", "additionalProperties", "items", "prefixItems", "contains")
_SAME_LEVEL = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")


def _subs(schema: dict, keys: tuple[str, ...]) -> list:
    out: list = []
    for k in keys:
        v = schema.get(k)
        if isinstance(v, dict) and k in SUBSCHEMA_MAP:
            out.extend(v.values())
        elif isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def depth(schema: Any) -> int:
    """Object nesting depth: 1 for an object of scalars, +1 per object level below (through
    arrays); combinators and conditionals describe the same level."""
    if not isinstance(schema, dict):
        return 0
    below = max((depth(s) for s in _subs(schema, _CHILDREN)), default=0)
    own = k_props(schema) > 0
    d = below + 1 if own else below
    return max([d] + [depth(s) for s in _subs(schema, _SAME_LEVEL)])


def k_props(schema: dict) -> int:
    return len(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else 0


def max_enum(schema: Any) -> int:
    if isinstance(schema, list):
        return max((max_enum(v) for v in schema), default=0)
    if not isinstance(schema, dict):
        return 0
    here = len(schema["enum"]) if isinstance(schema.get("enum"), list) else 0
    return max([here] + [max_enum(v) for k, v in schema.items() if k not in ("enum", "const", "required")])


# --- values: strings from patterns ------------------------------------------------------------

_DIGITS, _LOWER = "0123456789", "abcdefghijklmnopqrstuvwxyz"
_WORD = _LOWER + _LOWER.upper() + _DIGITS + "_"


def _class_chars(items: list, rng) -> str | None:
    negate = False
    choices: list[str] = []
    for op, av in items:
        if op == sre_c.NEGATE:
            negate = True
        elif op == sre_c.LITERAL:
            choices.append(chr(av))
        elif op == sre_c.RANGE:
            lo, hi = av
            choices.extend(chr(c) for c in range(lo, min(hi, lo + 60) + 1))
        elif op == sre_c.CATEGORY:
            choices.extend(
                {
                    sre_c.CATEGORY_DIGIT: _DIGITS,
                    sre_c.CATEGORY_WORD: _WORD,
                    sre_c.CATEGORY_SPACE: " ",
                    sre_c.CATEGORY_NOT_DIGIT: _LOWER,
                    sre_c.CATEGORY_NOT_SPACE: _LOWER + _DIGITS,
                    sre_c.CATEGORY_NOT_WORD: "-.",
                }.get(av, "")
            )
    if negate:
        pool = [c for c in _LOWER + _DIGITS + "-_." if c not in choices]
        return rng.choice(pool) if pool else None
    # Prefer letters and digits: a real ID rarely leads with punctuation.
    plain = [c for c in choices if c.isalnum()]
    pick = plain if plain and rng.random() < 0.85 else choices
    return rng.choice(pick) if pick else None


def _from_parsed(parsed, rng, groups: dict) -> str:
    out = []
    for op, av in parsed:
        if op == sre_c.LITERAL:
            out.append(chr(av))
        elif op == sre_c.NOT_LITERAL:
            out.append("a" if chr(av) != "a" else "b")
        elif op == sre_c.ANY:
            out.append(rng.choice(_LOWER))
        elif op == sre_c.IN:
            c = _class_chars(av, rng)
            if c is None:
                raise Unusable("empty character class")
            out.append(c)
        elif op == sre_c.BRANCH:
            out.append(_from_parsed(rng.choice(av[1]), rng, groups))
        elif op == sre_c.SUBPATTERN:
            group, _, _, sub = av
            text = _from_parsed(sub, rng, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            hi = lo + 3 if hi == sre_c.MAXREPEAT else hi
            n = rng.randint(lo, max(lo, min(hi, lo + 3, 12 if lo <= 12 else lo)))
            out.extend(_from_parsed(sub, rng, groups) for _ in range(n))
        elif op == sre_c.CATEGORY:
            out.append(
                {sre_c.CATEGORY_DIGIT: "7", sre_c.CATEGORY_WORD: "k", sre_c.CATEGORY_SPACE: " "}.get(av, "x")
            )
        elif op == sre_c.GROUPREF:
            out.append(groups.get(av, ""))
        elif op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
            continue
        elif op == getattr(sre_c, "ATOMIC_GROUP", None):
            out.append(_from_parsed(av, rng, groups))
        else:
            raise Unusable(f"regex construct {op} not generated")
    return "".join(out)


def string_for_pattern(pattern: str, rng, lo: int = 0, hi: int = 10**9) -> str | None:
    """A string ``re.search(pattern)`` accepts, within [lo, hi] characters, or None."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    for _ in range(8):
        try:
            s = _from_parsed(parsed, rng, {})
        except (Unusable, IndexError, ValueError):
            return None
        if lo <= len(s) <= hi and re.search(pattern, s):
            return s
    return None
