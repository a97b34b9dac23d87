"""Values for real schemas (``Synth``) and natural-language content that states them (``render``).

``Synth`` fills a prepared schema (``trellis.evaluate.schema_prep.prepare``) with plausible values:
a property's name picks the kind of value (a name, a URL, a port, a timeout, a region...), the
schema's own constraints (enum, const, pattern, format, bounds, lengths) decide, and every
result is validated by the caller. Optional properties are included at random, so the content
decides which appear.

``render`` writes the content a model reads: the instance's facts in shuffled order, each in one
of several phrasings, numbers sometimes in other units (a timeout in seconds said in minutes, a
size in MiB said in GiB), dates written as people write them, booleans as "turned on"/"without",
nested objects as clauses about their parent, lists as lists, in one of a few registers (a
request, a note, plain prose). The reference follows from it: every value is stated, exactly or by
an exact conversion.
"""

from __future__ import annotations

import calendar
import copy
import re
from typing import Any

from trellis.evaluate.schema_prep import Unusable, string_for_pattern, validation_error

# --- property names -> words --------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(key: str) -> list[str]:
    parts = [p for chunk in re.split(r"[_\-\s.$@/:]+", key) for p in _CAMEL.split(chunk) if p]
    # Acronyms stay as written (DB, ARN, VPC); other words are lower-cased.
    return [p if p.isupper() and len(p) > 1 else p.lower() for p in parts]


def humanize(key: str) -> str:
    return " ".join(words(key)) or key


# --- plausible values by property name -----------------------------------------------------------

_NAMES = ["orion", "billing", "harbor", "atlas", "nightly", "ledger", "quartz", "beacon", "sierra", "delta"]
_SUFFIX = ["api", "reports", "worker", "backup", "gateway", "metrics", "archive", "ingest", "web", "jobs"]
_PEOPLE = ["Ana Lopez", "Kenji Sato", "Mariam Haddad", "Tomasz Nowak", "Grace Okafor", "Liam Byrne"]
_SENTENCES = [
    "Handles nightly exports for the finance team",
    "Temporary setup for the spring load test",
    "Owned by the data platform group",
    "Replaces the legacy ingestion job",
    "Used by the mobile checkout flow",
]
_REGIONS = ["eu-west-1", "us-east-2", "ap-southeast-1", "eu-central-1"]


def _name(rng) -> str:
    return f"{rng.choice(_NAMES)}-{rng.choice(_SUFFIX)}"


def _string_candidates(key: str, rng) -> list[str]:
    w = {x.lower() for x in words(key)}
    last = words(key)[-1].lower() if words(key) else ""
    out: list[str] = []
    if "arn" in w:
        out.append(f"arn:aws:iam::{rng.randint(10**11, 10**12 - 1)}:role/{_name(rng)}")
    if w & {"url", "uri", "endpoint", "homepage", "link", "href", "website"}:
        out.append(f"https://{rng.choice(_NAMES)}.example.com/{rng.choice(_SUFFIX)}")
    if "email" in w or "mail" in w:
        out.append(f"{rng.choice(_NAMES)}.{rng.choice(_SUFFIX)}@example.org")
    if "region" in w:
        out.append(rng.choice(_REGIONS))
    if w & {"path", "file", "dir", "directory", "folder"}:
        out.append(f"/srv/{rng.choice(_NAMES)}/{rng.choice(_SUFFIX)}.log")
    if "version" in w:
        out.append(f"{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}")
    if w & {"host", "hostname", "domain"}:
        out.append(f"{rng.choice(_SUFFIX)}.{rng.choice(_NAMES)}.example.net")
    if w & {"description", "comment", "note", "notes", "message", "summary", "reason"}:
        out.append(rng.choice(_SENTENCES))
    if w & {"owner", "author", "user", "username", "person", "contact"}:
        out.append(rng.choice(_PEOPLE))
    if last in ("id", "identifier", "key", "token", "code"):
        out.append(f"{rng.choice(_NAMES)[:3]}-{rng.randint(1000, 99999)}")
    if w & {"cidr"}:
        out.append(f"10.{rng.randint(0, 255)}.0.0/16")
    if w & {"ip", "address"} and "email" not in w:
        out.append(f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    if w & {"name", "title", "label", "alias", "tag"}:
        out.append(_name(rng))
    if w & {"value"}:
        out.append(rng.choice(["production", "enabled", "team-blue", "42", "eu"]))
    out.append(_name(rng))
    out.append(rng.choice(_SUFFIX))
    return out


def _iso_date(rng) -> str:
    return f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _format_value(fmt: str, key: str, rng) -> str | None:
    if fmt == "date":
        return _iso_date(rng)
    if fmt == "date-time":
        return f"{_iso_date(rng)}T{rng.randint(0, 23):02d}:{rng.choice([0, 15, 30, 45]):02d}:00Z"
    if fmt == "time":
        return f"{rng.randint(0, 23):02d}:{rng.choice([0, 15, 30, 45]):02d}:00Z"
    if fmt == "email":
        return f"{rng.choice(_NAMES)}.{rng.choice(_SUFFIX)}@example.org"
    if fmt == "uri":
        return f"https://{rng.choice(_NAMES)}.example.com/{rng.choice(_SUFFIX)}"
    if fmt == "ipv4":
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if fmt == "ipv6":
        return f"2001:db8::{rng.randint(1, 9999):x}"
    if fmt == "uuid":
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
    if fmt == "hostname":
        return f"{rng.choice(_SUFFIX)}.{rng.choice(_NAMES)}.example.net"
    return None


def _number(schema: dict, key: str, rng, integer: bool) -> int | float:
    w = {x.lower() for x in words(key)}
    lo = schema.get("minimum", schema.get("exclusiveMinimum", None))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", None))
    if w & {"port"}:
        guess: float = rng.choice([443, 8080, 5432, 6379, 9090])
    elif w & {"seconds", "timeout", "interval", "ttl", "duration", "period", "delay"}:
        guess = rng.choice([30, 60, 300, 900, 3600, 7200])
    elif w & {"minutes"}:
        guess = rng.choice([15, 30, 60, 120, 180])
    elif w & {"ms", "millis", "milliseconds"}:
        guess = rng.choice([250, 500, 1000, 2000, 5000])
    elif w & {"mb", "mi", "mib", "memory", "size", "storage", "gb"}:
        guess = rng.choice([128, 256, 512, 1024, 2048])
    elif w & {"percent", "percentage", "ratio"}:
        guess = rng.choice([10, 25, 50, 75, 90])
    elif w & {"year"}:
        guess = rng.randint(2015, 2026)
    elif w & {"count", "max", "min", "number", "retries", "attempts", "capacity", "limit", "size"}:
        guess = rng.randint(1, 12)
    else:
        guess = rng.choice([1, 2, 3, 5, 8, 10, 20, 50, 100])
    lo_v = float(lo) if isinstance(lo, (int, float)) and not isinstance(lo, bool) else None
    hi_v = float(hi) if isinstance(hi, (int, float)) and not isinstance(hi, bool) else None
    if (lo_v is not None and guess < lo_v) or (hi_v is not None and guess > hi_v):
        a = lo_v if lo_v is not None else (hi_v - 100 if hi_v is not None else 0)
        b = hi_v if hi_v is not None else a + 100
        guess = rng.uniform(a, b) if not integer else rng.randint(int(-(-a // 1)), int(b // 1))
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        guess = round(guess / step) * step
        if lo_v is not None and guess < lo_v:
            guess += step
    if integer:
        return int(round(guess))
    return round(float(guess), 2) if float(guess) != int(guess) else int(guess)


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra``'s constraints added (properties and required united)."""
    out = {k: v for k, v in base.items()}
    for k, v in extra.items():
        if k == "properties" and isinstance(v, dict):
            props = dict(out.get("properties", {}))
            for pk, pv in v.items():
                if pk in props and isinstance(props[pk], dict) and isinstance(pv, dict):
                    props[pk] = merge(props[pk], pv)
                else:
                    props[pk] = pv
            out["properties"] = props
        elif k == "required":
            out["required"] = list(dict.fromkeys(list(out.get("required", [])) + list(v)))
        else:
            out[k] = v
    return out


class Synth:
    """Writes values valid against prepared schemas; ``rng`` is the caller's seeded Random."""

    def __init__(self, rng, optional_share: float = 0.6, max_keys: int = 9):
        self.rng = rng
        self.optional_share = optional_share
        self.max_keys = max_keys

    def value(self, schema: Any, key: str = "value", level: int = 0) -> Any:
        rng = self.rng
        if level > 9:
            raise Unusable("too deep to fill")
        if schema is True or schema == {}:
            return rng.choice(_string_candidates(key, rng))
        if schema is False:
            raise Unusable(f"{key!r} admits no value")
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            choices = [v for v in schema["enum"] if v is not None] or schema["enum"]
            return copy.deepcopy(rng.choice(choices))
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, dict):
                    merged = merge(merged, part)
            return self.value(merged, key, level + 1)
        for keyword in ("oneOf", "anyOf"):
            if keyword in schema:
                return self._branch(schema, keyword, key, level)
        types = schema.get("type")
        if types is None:
            types = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if isinstance(types, list):
            real = [t for t in types if t != "null"]
            types = rng.choice(real) if real else "null"
        if types == "object":
            return self._object(schema, level)
        if types == "array":
            return self._array(schema, key, level)
        if types == "string":
            return self._string(schema, key)
        if types in ("integer", "number"):
            return _number(schema, key, rng, types == "integer")
        if types == "boolean":
            return rng.random() < 0.6
        if types == "null":
            return None
        raise Unusable(f"type {types!r} of {key!r}")

    def _branch(self, schema: dict, keyword: str, key: str, level: int) -> Any:
        branches = [b for b in schema[keyword] if isinstance(b, dict)]
        order = list(range(len(branches)))
        self.rng.shuffle(order)
        rest = {k: v for k, v in schema.items() if k != keyword}
        for i in order:
            try:
                value = self.value(merge(rest, branches[i]), key, level + 1)
            except Unusable:
                continue
            if validation_error(value, schema) is None:
                return value
        raise Unusable(f"no {keyword} branch of {key!r} could be filled")

    def _object(self, schema: dict, level: int) -> dict:
        rng = self.rng
        props = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
        required = [k for k in schema.get("required", []) if k in props or not props]
        chosen = list(required)
        optional = [k for k in props if k not in chosen and props[k] is not False]
        rng.shuffle(optional)
        room = max(self.max_keys - len(chosen), 0) if level == 0 else max(4 - len(chosen), 0)
        for k in optional:
            if len(chosen) - len(required) >= room:
                break
            nested = isinstance(props[k], dict) and props[k].get("type") in ("object", "array")
            if rng.random() < (self.optional_share * (0.6 if nested else 1.0)):
                chosen.append(k)
        if not chosen and optional:
            # An object that is there says something: never an empty one where properties exist.
            chosen.append(optional[0])
        dependent = schema.get("dependentRequired", {})
        for k in list(chosen):
            for dep in dependent.get(k, []):
                if dep not in chosen:
                    chosen.append(dep)
        out: dict[str, Any] = {}
        for k in sorted(chosen, key=lambda x: list(props).index(x) if x in props else len(props)):
            sub = props.get(k, schema.get("additionalProperties", True))
            if sub is False:
                raise Unusable(f"required {k!r} is forbidden")
            out[k] = self.value(sub if isinstance(sub, dict) else True, k, level + 1)
        if not out and not props:
            extra = schema.get("additionalProperties", True)
            if extra is not False and "patternProperties" not in schema:
                for k in rng.sample(["env", "team", "owner"], 2):
                    out[k] = self.value(
                        extra if isinstance(extra, dict) else {"type": "string"}, k, level + 1
                    )
        # Conditionals at this level: fill what `then`/`else` adds once the `if` is decided.
        if isinstance(schema.get("if"), dict):
            branch = "then" if validation_error(out, schema["if"]) is None else "else"
            extra = schema.get(branch)
            if isinstance(extra, dict):
                for k in extra.get("required", []):
                    if k not in out:
                        sub = merge(props.get(k, {}) or {}, extra.get("properties", {}).get(k, {}) or {})
                        out[k] = self.value(sub, k, level + 1)
                for k, sub in extra.get("properties", {}).items():
                    if k in out and isinstance(sub, dict) and validation_error(out[k], sub):
                        out[k] = self.value(merge(props.get(k, {}) or {}, sub), k, level + 1)
        min_props = schema.get("minProperties", 0)
        if len(out) < min_props:
            for k in props:
                if k not in out and len(out) < min_props and props[k] is not False:
                    out[k] = self.value(props[k], k, level + 1)
        return out

    def _array(self, schema: dict, key: str, level: int) -> list:
        rng = self.rng
        lo = int(schema.get("minItems", 1) or 1)
        hi = int(schema.get("maxItems", 3))
        if lo > 6:
            raise Unusable(f"{key!r} needs {lo} items")
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", {"type": "string"})
        n = max(lo, min(hi, rng.choice([1, 2, 2, 3]), 3))
        # An array of objects stays short: each element is a clause of the content.
        if isinstance(items, dict) and items.get("type") == "object":
            n = max(lo, min(n, 2))
        singular = key[:-1] if key.endswith("s") and len(key) > 3 else key
        out: list[Any] = []
        for i in range(max(n, len(prefix))):
            sub = prefix[i] if i < len(prefix) else items
            for _ in range(6):
                v = self.value(sub if sub is not True else {"type": "string"}, singular, level + 1)
                if not schema.get("uniqueItems") or v not in out:
                    break
            out.append(v)
        if schema.get("uniqueItems") and len({repr(v) for v in out}) != len(out):
            out = [v for i, v in enumerate(out) if v not in out[:i]]
            if len(out) < lo:
                raise Unusable(f"no {lo} distinct items for {key!r}")
        return out

    def _string(self, schema: dict, key: str) -> str:
        rng = self.rng
        lo, hi = int(schema.get("minLength", 0)), int(schema.get("maxLength", 10**6))
        pattern = schema.get("pattern")
        fmt = schema.get("format")
        cands = [_format_value(fmt, key, rng)] if fmt else []
        cands += _string_candidates(key, rng)
        for c in cands:
            if c is None:
                continue
            if lo <= len(c) <= hi and (pattern is None or re.search(pattern, c)):
                if fmt is None or validation_error(c, {"format": fmt}) is None:
                    return c
        if pattern is not None:
            s = string_for_pattern(pattern, rng, lo, hi)
            if s is not None and (fmt is None or validation_error(s, {"format": fmt}) is None):
                return s
            raise Unusable(f"no value for {key!r} matching {pattern!r}")
        base = cands[-1] if cands and cands[-1] else "value"
        if len(base) > hi:
            return base[:hi] if hi > 0 else ""
        while len(base) < lo:
            base += "-x"
        return base


# --- content -----------------------------------------------------------------------------------

_UNIT_WORDS = {
    "seconds",
    "second",
    "secs",
    "sec",
    "minutes",
    "mins",
    "ms",
    "millis",
    "milliseconds",
    "mb",
    "mib",
    "in",
}


def _unit_of(key: str) -> str | None:
    w = [x.lower() for x in words(key)]
    if not w:
        return None
    tail = w[-1]
    if tail in ("seconds", "second", "secs", "sec") or (tail in ("timeout", "ttl") and "minutes" not in w):
        return "s"
    if tail in ("minutes", "mins"):
        return "min"
    if tail in ("ms", "millis", "milliseconds"):
        return "ms"
    if tail in ("mb", "mib"):
        return "MiB"
    return None


def _name_without_unit(key: str) -> str:
    w = words(key)
    while len(w) > 1 and w[-1].lower() in _UNIT_WORDS:
        w = w[:-1]
    return " ".join(w)


def _plural(n: float, unit: str) -> str:
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def say_number(value: int | float, key: str, rng) -> tuple[str, str]:
    """(name, phrase of the value): the value in the property's unit, or an exact conversion."""
    unit = _unit_of(key)
    name = humanize(key)
    if isinstance(value, int) and unit and value > 0 and rng.random() < 0.7:
        plain = _name_without_unit(key)
        if unit == "s" and value % 3600 == 0:
            return plain, _plural(value // 3600, "hour")
        if unit == "s" and value % 60 == 0 and value >= 120:
            return plain, _plural(value // 60, "minute")
        if unit == "s":
            return plain, _plural(value, "second")
        if unit == "min" and value % 60 == 0:
            return plain, _plural(value // 60, "hour")
        if unit == "min":
            return plain, _plural(value, "minute")
        if unit == "ms" and value % 1000 == 0:
            return plain, _plural(value // 1000, "second")
        if unit == "ms":
            return plain, f"{value} milliseconds"
        if unit == "MiB" and value % 1024 == 0:
            return plain, f"{value // 1024} GiB"
        if unit == "MiB":
            return plain, f"{value} MiB"
    if isinstance(value, int) and abs(value) >= 10000 and rng.random() < 0.6:
        return name, f"{value:,}"
    return name, f"{value}"


def say_string(value: str, schema: dict, rng) -> str:
    fmt = schema.get("format") if isinstance(schema, dict) else None
    if fmt == "date" and rng.random() < 0.6:
        y, m, d = (int(x) for x in value.split("-"))
        return rng.choice([f"{calendar.month_name[m]} {d}, {y}", f"{d} {calendar.month_name[m]} {y}"])
    if fmt == "date-time" and rng.random() < 0.6 and value.endswith(":00Z"):
        date, time = value[:-1].split("T")
        return f"{date} at {time[:5]} UTC"
    if any(c in value for c in '\n\t\\"') or value != value.strip():
        return value  # said verbatim, with a framing clause added by the caller
    if " " in value or "," in value or rng.random() < 0.35:
        return f'"{value}"'
    return value


_STRING_FORMS = [
    "the {n} is {v}",
    "{n}: {v}",
    "use {v} as the {n}",
    "its {n} should be {v}",
    "set the {n} to {v}",
]
_NUMBER_FORMS = ["a {n} of {v}", "{n}: {v}", "the {n} is {v}", "{n} set to {v}"]
_TRUE_FORMS = ["{n} turned on", "{n}: yes", "with {n} enabled", "{n} should be true"]
_FALSE_FORMS = ["{n} turned off", "{n}: no", "with {n} disabled", "{n} should be false"]
_NULL_FORMS = ["no {n} (null)", "the {n} explicitly null"]
_ESCAPED_FORMS = [
    "the {n}, exactly as written between the markers, is >>>{v}<<<",
    "{n} (copy it verbatim between the markers): >>>{v}<<<",
]


def _bool_name(key: str) -> str:
    # The whole name, prefix and all: "useData" said as "data" would collide with a "data" sibling.
    return humanize(key)


def _leaf(key: str, value: Any, schema: Any, rng) -> str:
    schema = schema if isinstance(schema, dict) else {}
    if value is None:
        return rng.choice(_NULL_FORMS).format(n=humanize(key))
    if isinstance(value, bool):
        forms = _TRUE_FORMS if value else _FALSE_FORMS
        return rng.choice(forms).format(n=_bool_name(key))
    if isinstance(value, (int, float)):
        n, v = say_number(value, key, rng)
        return rng.choice(_NUMBER_FORMS).format(n=n, v=v)
    text = str(value)
    if any(c in text for c in '\n\t\\"') or text != text.strip():
        return rng.choice(_ESCAPED_FORMS).format(n=humanize(key), v=text)
    return rng.choice(_STRING_FORMS).format(n=humanize(key), v=say_string(text, schema, rng))


def _join(parts: list[str], rng) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + rng.choice([" and ", ", and "]) + parts[-1]


def _sub_schema(schema: Any, key: str) -> Any:
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties", {})
    if isinstance(props, dict) and key in props:
        return props[key]
    for kw in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(kw, []) or []:
            if isinstance(branch, dict) and key in branch.get("properties", {}):
                return branch["properties"][key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _items_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return {}
    items = schema.get("items")
    return items if isinstance(items, dict) else {}


def facts(obj: dict, schema: Any, rng) -> list[str]:
    """One phrase per property of ``obj``, shuffled; nested objects and lists become clauses."""
    out = []
    for key, value in obj.items():
        sub = _sub_schema(schema, key)
        name = humanize(key)
        if isinstance(value, dict) and value:
            inner = _join(facts(value, sub, rng), rng)
            out.append(
                rng.choice(
                    ["for the {n}: {x}", "its {n} has {x}", "under {n}, {x}", "the {n} part: {x}"]
                ).format(n=name, x=inner)
            )
        elif isinstance(value, dict):
            out.append(f"an empty {name} object")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            items = _items_schema(sub)
            ordinals = ["first", "second", "third", "fourth", "fifth", "sixth"]
            described = [
                f"the {ordinals[i] if i < 6 else f'#{i + 1}'} with {_join(facts(v, items, rng), rng)}"
                if v
                else f"the {ordinals[i] if i < 6 else f'#{i + 1}'} empty"
                for i, v in enumerate(value)
            ]
            count = {1: "one entry", 2: "two entries", 3: "three entries"}.get(
                len(value), f"{len(value)} entries"
            )
            out.append(f"{name} has {count} ({'; '.join(described)})")
        elif isinstance(value, list) and value:
            items = _items_schema(sub)
            shown = [
                _leaf("item", v, items, rng).split(" ", 3)[-1]
                if isinstance(v, bool) or v is None
                else say_string(v, items, rng)
                if isinstance(v, str)
                else str(v)
                if not isinstance(v, list)
                else str(v).replace("'", '"')
                for v in value
            ]
            if any(isinstance(v, str) and ("," in v or any(c in v for c in '\n\t\\"')) for v in value):
                shown = [f">>>{v}<<<" if isinstance(v, str) else s for v, s in zip(value, shown)]
            out.append(
                rng.choice(
                    ["{n}: {x}", "the {n} are {x}", "{n} listed as {x}", "{n} (in this order) {x}"]
                ).format(n=name, x=_join(shown, rng))
            )
        elif isinstance(value, list):
            out.append(f"an empty list of {name}")
        else:
            out.append(_leaf(key, value, sub, rng))
    rng.shuffle(out)
    return out


_OPENERS = {
    "request": ["Please set this up with ", "Could you fill this in: ", "We need one with "],
    "note": ["Notes from the ticket: ", "From the handover notes: ", "Summary of what was agreed: "],
    "prose": ["", "Here is what we know. ", "The details are as follows. "],
}


def render(instance: Any, schema: Any, rng, extras: list[str] = ()) -> str:
    """The content for ``instance``: its facts in one of three registers (plus any ``extras``,
    sentences that state things the schema has no place for)."""
    if not isinstance(instance, dict):
        raise Unusable("the suite's instances are objects")
    parts = facts(instance, schema, rng) + list(extras)
    rng.shuffle(parts)
    style = rng.choice(sorted(_OPENERS))
    opener = rng.choice(_OPENERS[style])
    if style == "request":
        return opener + _join(parts, rng) + "."
    if style == "note":
        return opener + "; ".join(parts) + "."
    sentences, i = [], 0
    while i < len(parts):
        k = rng.choice([1, 2])
        chunk = parts[i : i + k]
        s = _join(chunk, rng)
        sentences.append(s[:1].upper() + s[1:] + ".")
        i += k
    return opener + " ".join(sentences)


def check_instance(instance: Any, schema: dict, where: str) -> None:
    err = validation_error(instance, schema)
    if err is not None:
        raise Unusable(f"{where}: synthesized instance is invalid: {err}")
