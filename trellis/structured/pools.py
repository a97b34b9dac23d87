"""Deterministic pools of JSON Schemas and function definitions for post-training and evaluation.

The study's question is whether a model generalizes to *unseen* schemas and function signatures,
so the schemas the models are fine-tuned on (pool "train") and the ones they are evaluated on
(pool "eval") come from disjoint building blocks: different domains with different entity names.
Every schema carries its entity's title and every function name contains its entity's name, so
no train schema or function can equal an eval one; ``trellis.structured.disjoint`` holds the rule
and the check, which runs on the entity names when this module is imported.

Schemas are assembled from domains × entities × field kinds (strings with date/email/uri
formats and patterns, bounded integers, numbers, booleans, enums, arrays, nested objects,
required lists, oneOf/anyOf) in five categories. The sixth category of the study's benchmark
design, "real_world", is not generated: trellis.evaluate.real_world takes real schemas that ship
inside installed packages (bfcl-eval's function definitions, nbformat's notebook schema), which
no train item comes from.

Schemas are JSON Schema draft 2020-12 and are validated with `Draft202012Validator`; they carry
no "$schema" key because every prompt spends tokens on the schema text and the dialect is fixed
by the validator the benchmark uses. Every generated instance is validated (with the format
checker) before it is returned, so a generator bug fails loudly instead of teaching or scoring
against an invalid answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from trellis.structured.disjoint import check_disjoint, schema_hash

POOLS = ("train", "eval")
CATEGORIES = ("flat", "nested", "arrays_enums", "conditional", "adversarial")

# --- building blocks -------------------------------------------------------------------------
#
# A domain is a dict of entities; an entity is a list of "key:kind" field specs. Kinds:
#   person, text, city, code, date, datetime, email, uri, bool, int(a,b), num(a,b),
#   enum(a|b|c), tags. Nested blocks (address, contact, ...) are shared by both pools; what makes
#   a schema unseen is its entity and field combination, not the block shapes.

_DOMAINS: dict[str, dict[str, dict[str, Any]]] = {
    "train": {
        "library": {
            "words": ["silent", "river", "garden", "atlas", "winter", "history", "lantern", "harbor"],
            "entities": {
                "book": "title:text isbn:code published_on:date pages:int(1,3000) price:num(0,500) "
                "available:bool genre:enum(fiction|history|science|poetry) keywords:tags",
                "member": "full_name:person email:email joined_on:date borrowed_count:int(0,200) "
                "membership:enum(basic|student|premium) active:bool home_city:city",
                "loan": "loan_code:code borrowed_on:date due_on:date renewals:int(0,5) "
                "late_fee:num(0,50) returned:bool borrower_email:email",
            },
        },
        "restaurant": {
            "words": ["spicy", "garlic", "lemon", "roasted", "tomato", "basil", "smoky", "noodle"],
            "entities": {
                "dish": "dish_name:text calories:int(50,2500) price:num(1,120) vegetarian:bool "
                "course:enum(starter|main|dessert|side) allergens:tags chef:person",
                "reservation": "guest_name:person party_size:int(1,20) reserved_for:datetime "
                "phone_confirmed:bool table_area:enum(indoor|terrace|bar) contact_email:email",
                "supplier": "company:text contact_person:person website:uri rating:num(0,5) "
                "delivers_weekends:bool category:enum(produce|dairy|meat|bakery) city:city",
            },
        },
        "fitness": {
            "words": ["morning", "power", "core", "steady", "interval", "mountain", "flex", "sprint"],
            "entities": {
                "workout": "workout_name:text duration_minutes:int(5,240) calories_burned:int(10,3000) "
                "intensity:enum(low|moderate|high) outdoor:bool performed_on:date equipment:tags",
                "athlete": "athlete_name:person age:int(10,90) weight_kg:num(30,200) email:email "
                "level:enum(beginner|intermediate|advanced) home_gym:city verified:bool",
                "gym_class": "class_name:text instructor:person capacity:int(1,60) starts_at:datetime "
                "style:enum(yoga|spin|boxing|pilates) drop_in_allowed:bool",
            },
        },
        "real_estate": {
            "words": ["sunny", "corner", "loft", "maple", "harbor", "quiet", "modern", "cottage"],
            "entities": {
                "listing": "listing_code:code headline:text bedrooms:int(0,12) area_sqm:num(10,2000) "
                "asking_price:num(1000,5000000) furnished:bool listed_on:date "
                "property_type:enum(apartment|house|studio|townhouse)",
                "agent": "agent_name:person agency:text email:email license_number:code "
                "years_experience:int(0,50) city:city accepts_rentals:bool",
                "viewing": "viewer_name:person scheduled_at:datetime confirmed:bool "
                "interest:enum(low|medium|high) notes:text",
            },
        },
        "software_project": {
            "words": ["async", "cache", "parser", "cluster", "token", "gateway", "schema", "kernel"],
            "entities": {
                "repository": "repo_name:text homepage:uri stars:int(0,500000) private:bool "
                "language:enum(python|rust|go|typescript) created_on:date topics:tags",
                "issue": "issue_title:text issue_number:int(1,99999) opened_on:date reporter_email:email "
                "severity:enum(minor|major|critical) reproducible:bool labels:tags",
                "release": "version_tag:code released_on:date downloads:int(0,10000000) "
                "prerelease:bool changelog_url:uri maintainer:person",
            },
        },
        "music": {
            "words": ["velvet", "echo", "midnight", "golden", "electric", "blue", "wild", "neon"],
            "entities": {
                "album": "album_title:text artist:person release_date:date track_count:int(1,40) "
                "length_minutes:num(5,200) explicit:bool format:enum(vinyl|cd|digital|cassette)",
                "concert": "tour_name:text venue_city:city starts_at:datetime ticket_price:num(5,900) "
                "sold_out:bool tickets_url:uri headliner:person",
                "playlist": "playlist_name:text curator_email:email song_count:int(0,1000) "
                "public:bool mood:enum(calm|upbeat|focus|party) genres:tags",
            },
        },
        "travel": {
            "words": ["coastal", "alpine", "island", "desert", "lagoon", "valley", "canyon", "harbor"],
            "entities": {
                "flight": "flight_code:code departs_at:datetime seats_left:int(0,400) fare:num(20,8000) "
                "cabin:enum(economy|premium|business|first) refundable:bool destination:city",
                # Not "hotel": BFCL's live_simple category has a real search_hotels function, and
                # a train function must never share a name with an evaluation one.
                "lodge": "lodge_name:text stars:int(1,5) nightly_rate:num(20,3000) city:city "
                "website:uri pets_allowed:bool check_in_date:date amenities:tags",
                "traveler": "traveler_name:person passport_number:code birth_date:date email:email "
                "frequent_flyer:bool seat_preference:enum(window|aisle|middle)",
            },
        },
        "logistics": {
            "words": ["express", "bulk", "fragile", "cold", "pallet", "regional", "overnight", "cargo"],
            "entities": {
                "shipment": "tracking_code:code weight_kg:num(0,30000) shipped_on:date insured:bool "
                "carrier:enum(road|rail|air|sea) origin_city:city destination_city:city",
                "warehouse": "warehouse_name:text capacity_pallets:int(10,100000) city:city "
                "manager:person temperature_controlled:bool opened_on:date",
                "courier": "courier_name:person vehicle:enum(bike|van|truck) deliveries_today:int(0,300) "
                "rating:num(0,5) on_duty:bool dispatch_email:email",
            },
        },
    },
    "eval": {
        "observatory": {
            "words": ["crimson", "distant", "spiral", "faint", "polar", "binary", "dwarf", "nebular"],
            "entities": {
                "telescope": "telescope_name:text aperture_mm:int(50,40000) focal_ratio:num(1,30) "
                "site_city:city operational:bool commissioned_on:date "
                "mount:enum(equatorial|altazimuth|fixed)",
                "observation": "target_name:text observed_at:datetime exposure_seconds:int(1,36000) "
                "magnitude:num(-30,30) filter_band:enum(u|g|r|i|z) cloudy:bool observer:person",
                "astronomer": "astronomer_name:person institute:text email:email "
                "publications:int(0,2000) profile_url:uri specialty:enum(planets|stars|galaxies)",
            },
        },
        "veterinary": {
            "words": ["gentle", "tabby", "senior", "rescue", "playful", "shy", "spotted", "fluffy"],
            "entities": {
                "pet_patient": "pet_name:text species:enum(dog|cat|rabbit|parrot) birth_date:date "
                "weight_kg:num(0,120) neutered:bool owner:person microchip_id:code",
                "vaccination": "vaccine_name:text administered_on:date dose_ml:num(0,10) "
                "booster_due:date lot_number:code adverse_reaction:bool vet_email:email",
                "clinic_visit": "visit_reason:text visited_at:datetime fee:num(0,5000) "
                "urgency:enum(routine|urgent|emergency) follow_up:bool attending_vet:person",
            },
        },
        "winery": {
            "words": ["oaky", "crisp", "amber", "velvety", "dry", "sparkling", "aged", "fruity"],
            "entities": {
                "wine_bottle": "label_name:text vintage_year:int(1900,2030) alcohol_percent:num(5,20) "
                "grape:enum(merlot|riesling|syrah|chardonnay) organic:bool cellar_city:city",
                "tasting_note": "taster:person tasted_on:date score:int(50,100) "
                "finish:enum(short|medium|long) decanted:bool aromas:tags",
                "vineyard": "estate_name:text hectares:num(0,5000) founded_year:int(1500,2030) "
                "region_city:city estate_url:uri certified:bool",
            },
        },
        "film_festival": {
            "words": ["silver", "quiet", "burning", "paper", "northern", "hidden", "last", "broken"],
            "entities": {
                "screening": "film_title:text screens_at:datetime runtime_minutes:int(1,400) "
                "subtitled:bool section:enum(competition|shorts|documentary|retrospective) hall:text",
                "juror": "juror_name:person nationality_city:city jury_role:enum(president|member) "
                "press_email:email films_judged:int(0,100) returning:bool",
                "award": "award_name:text prize_money:num(0,1000000) awarded_on:date "
                "laureate:person shared:bool announcement_url:uri",
            },
        },
        "marine_lab": {
            "words": ["coral", "tidal", "abyssal", "kelp", "reef", "brackish", "pelagic", "saline"],
            "entities": {
                "dive": "dive_site:text max_depth_m:num(0,400) dived_on:date bottom_minutes:int(1,300) "
                "night_dive:bool visibility:enum(poor|fair|good|excellent) lead_diver:person",
                "specimen": "specimen_code:code species_name:text collected_on:date length_cm:num(0,3000) "
                "preserved:bool habitat:enum(reef|open_water|seabed|estuary) tags:tags",
                "research_vessel": "vessel_name:text crew_size:int(1,200) home_port:city "
                "launched_year:int(1950,2030) captain:person ice_class:bool",
            },
        },
    },
}

_FIRST = ["Ana", "Tom", "Mei", "Omar", "Lena", "Ravi", "Sofia", "Jonas", "Aiko", "Diego", "Nora", "Kwame"]
_LAST = ["Ruiz", "Lee", "Novak", "Haddad", "Berg", "Iyer", "Costa", "Weber", "Sato", "Mensah", "Quinn"]
_CITIES = ["Lisbon", "Osaka", "Denver", "Nairobi", "Oslo", "Lima", "Porto", "Austin", "Hanoi", "Graz"]
_TAGS = ["new", "featured", "archived", "local", "seasonal", "popular", "limited", "classic", "draft"]
_DOMAINS_EMAIL = ["example.com", "mail.example.org", "example.net"]

# Nested blocks: field specs like an entity's, shared by both pools.
_BLOCKS = {
    "address": "street:text city:city postal_code:code country:enum(PT|JP|US|KE|NO|PE|AT)",
    "contact": "name:person email:email phone_verified:bool",
    "period": "start_date:date end_date:date",
    "dimensions": "width_cm:num(0,500) height_cm:num(0,500) depth_cm:num(0,500)",
    "geo": "latitude:num(-90,90) longitude:num(-180,180)",
    "audit": "created_by:person created_on:date revision:int(1,99)",
}

# Discriminated variants for oneOf: each variant fixes its discriminator with "const", so exactly
# one branch can match an instance (oneOf would otherwise reject an instance matching two).
_VARIANTS = {
    "payment": (
        "method",
        {
            "card": "last4:code4 holder:person",
            "transfer": "iban:text bank:text",
            "cash": "currency:enum(EUR|USD|JPY)",
        },
    ),
    "location": (
        "kind",
        {
            "street_address": "street:text city:city",
            "coordinates": "latitude:num(-90,90) longitude:num(-180,180)",
            "online": "url:uri",
        },
    ),
    "schedule": (
        "frequency",
        {
            "once": "on:date",
            "weekly": "weekday:enum(mon|tue|wed|thu|fri) weeks:int(1,52)",
            "monthly": "day_of_month:int(1,28)",
        },
    ),
}

_SPEC = re.compile(r"^(\w+):(\w+)(?:\((.*)\))?$")

VALIDATOR = Draft202012Validator


@dataclass(frozen=True)
class Field:
    key: str
    kind: str
    arg: str | None

    @property
    def scalar(self) -> bool:
        return self.kind not in ("tags",)


def _parse(spec: str) -> list[Field]:
    fields = []
    for item in spec.split():
        m = _SPEC.match(item)
        if not m:
            raise ValueError(f"bad field spec {item!r}")
        fields.append(Field(m.group(1), m.group(2), m.group(3)))
    return fields


def _entities(pool: str) -> list[tuple[str, str, list[Field], list[str]]]:
    """(domain, entity, fields, words) for every entity of a pool, in a fixed order."""
    if pool not in _DOMAINS:
        raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS}")
    out = []
    for domain, d in _DOMAINS[pool].items():
        for entity, spec in d["entities"].items():
            out.append((domain, entity, _parse(spec), d["words"]))
    return out


# --- leaf schemas and values -----------------------------------------------------------------


def _leaf_schema(f: Field, entity: str) -> dict:
    k, a = f.kind, f.arg
    if k in ("person", "text", "city"):
        # No minLength: every schema token counts against a small model's context.
        return {"type": "string"}
    if k == "code":
        return {"type": "string", "pattern": f"^{_prefix(entity)}-[0-9]{{4}}$"}
    if k == "code4":
        return {"type": "string", "pattern": "^[0-9]{4}$"}
    if k in ("date", "email", "uri"):
        return {"type": "string", "format": k}
    if k == "datetime":
        return {"type": "string", "format": "date-time"}
    if k == "bool":
        return {"type": "boolean"}
    if k == "int":
        lo, hi = (int(x) for x in a.split(","))
        return {"type": "integer", "minimum": lo, "maximum": hi}
    if k == "num":
        lo, hi = (float(x) for x in a.split(","))
        return {"type": "number", "minimum": _num(lo), "maximum": _num(hi)}
    if k == "enum":
        return {"type": "string", "enum": a.split("|")}
    if k == "tags":
        return {"type": "array", "items": {"type": "string"}, "minItems": 1}
    raise ValueError(f"unknown field kind {k!r}")


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _prefix(entity: str) -> str:
    return "".join(w[0] for w in entity.split("_")).upper().ljust(2, "X")[:3]


def _leaf_value(f: Field, entity: str, words: list[str], rng: random.Random) -> Any:
    k, a = f.kind, f.arg
    if k == "person":
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if k == "text":
        return f"{rng.choice(words).capitalize()} {rng.choice(words)}"
    if k == "city":
        return rng.choice(_CITIES)
    if k == "code":
        return f"{_prefix(entity)}-{rng.randrange(10000):04d}"
    if k == "code4":
        return f"{rng.randrange(10000):04d}"
    if k == "date":
        return f"{rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if k == "datetime":
        return (
            f"{rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}:00Z"
        )
    if k == "email":
        return f"{rng.choice(_FIRST).lower()}.{rng.choice(_LAST).lower()}@{rng.choice(_DOMAINS_EMAIL)}"
    if k == "uri":
        return f"https://{rng.choice(words)}.example.com/{rng.choice(words)}"
    if k == "bool":
        return rng.random() < 0.5
    if k == "int":
        lo, hi = (int(x) for x in a.split(","))
        return rng.randint(lo, min(hi, lo + max(10, (hi - lo) // 20)))
    if k == "num":
        lo, hi = (float(x) for x in a.split(","))
        return round(rng.uniform(lo, min(hi, lo + max(10.0, (hi - lo) / 20))), 2)
    if k == "enum":
        return rng.choice(a.split("|"))
    if k == "tags":
        return rng.sample(_TAGS, rng.randint(1, 3))
    raise ValueError(f"unknown field kind {k!r}")


# --- object builders -------------------------------------------------------------------------


def _object(props: dict[str, tuple[dict, Any]], required: list[str], closed: bool, title: str | None = None):
    """(schema, instance) for an object from {key: (schema, value)}; value None = omitted."""
    schema: dict[str, Any] = {"type": "object"}
    if title:
        schema["title"] = title
    schema["properties"] = {k: s for k, (s, _) in props.items()}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    instance = {k: v for k, (_, v) in props.items() if v is not _OMIT}
    return schema, instance


_OMIT = object()


def _fields_object(
    fields: list[Field],
    entity: str,
    words: list[str],
    rng: random.Random,
    title: str | None = None,
    all_required: bool = False,
):
    props: dict[str, tuple[dict, Any]] = {}
    required = []
    for f in fields:
        req = all_required or rng.random() < 0.6
        value = _leaf_value(f, entity, words, rng)
        if not req and rng.random() < 0.35:
            value = _OMIT  # optional fields are sometimes absent: the model must not invent them
        props[f.key] = (_leaf_schema(f, entity), value)
        if req:
            required.append(f.key)
    if not required:
        required.append(fields[0].key)
        if props[fields[0].key][1] is _OMIT:
            props[fields[0].key] = (props[fields[0].key][0], _leaf_value(fields[0], entity, words, rng))
    return _object(props, required, closed=rng.random() < 0.5, title=title)


def _block(name: str, entity: str, words: list[str], rng: random.Random):
    return _fields_object(_parse(_BLOCKS[name]), entity, words, rng)


def _plural(word: str) -> str:
    if word.endswith(("s", "sh", "ch", "x")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def _title(entity: str) -> str:
    return entity.replace("_", " ").title()


def _build_flat(entity, fields, words, rng):
    scalars = [f for f in fields if f.scalar and f.kind != "enum"]
    chosen = rng.sample(scalars, min(len(scalars), rng.randint(3, 5)))
    return _fields_object(chosen, entity, words, rng, title=_title(entity))


def _build_nested(entity, fields, words, rng):
    scalars = [f for f in fields if f.scalar]
    schema, inst = _fields_object(
        rng.sample(scalars, min(len(scalars), rng.randint(2, 3))), entity, words, rng, title=_title(entity)
    )
    for name in rng.sample(sorted(_BLOCKS), rng.choice([1, 1, 1, 2])):
        bs, bi = _block(name, entity, words, rng)
        if rng.random() < 0.3:  # a second level: a block inside a block
            inner = rng.choice([b for b in sorted(_BLOCKS) if b != name])
            s2, i2 = _block(inner, entity, words, rng)
            bs["properties"][inner] = s2
            bi[inner] = i2
        schema["properties"][name] = bs
        inst[name] = bi
        schema.setdefault("required", []).append(name)
    return schema, inst


def _build_arrays_enums(entity, fields, words, rng):
    enums = [f for f in fields if f.kind == "enum"]
    others = [f for f in fields if f.scalar and f.kind != "enum"]
    chosen = enums + rng.sample(others, min(len(others), rng.randint(1, 3)))
    schema, inst = _fields_object(chosen, entity, words, rng, title=_title(entity))
    props, req = schema["properties"], schema["required"]
    # An array of strings (tags), an array of enum values, and an array of small objects.
    props["tags"] = _leaf_schema(Field("tags", "tags", None), entity)
    inst["tags"] = _leaf_value(Field("tags", "tags", None), entity, words, rng)
    req.append("tags")
    if enums:
        e = enums[0]
        values = e.arg.split("|")
        props[f"also_{e.key}"] = {
            "type": "array",
            "items": {"enum": values},
            "uniqueItems": True,
            "maxItems": len(values),
        }
        inst[f"also_{e.key}"] = rng.sample(values, rng.randint(0, min(2, len(values))))
    if rng.random() < 0.5:
        return schema, inst
    item_fields = [Field("label", "text", None), Field("quantity", "int", "1,100")]
    items = []
    for _ in range(rng.randint(1, 3)):
        s, i = _object(
            {f.key: (_leaf_schema(f, entity), _leaf_value(f, entity, words, rng)) for f in item_fields},
            ["label", "quantity"],
            closed=True,
        )
        items.append(i)
    props["items"] = {"type": "array", "items": s, "minItems": 1}
    inst["items"] = items
    req.append("items")
    return schema, inst


def _build_conditional(entity, fields, words, rng):
    scalars = [f for f in fields if f.scalar]
    schema, inst = _fields_object(
        rng.sample(scalars, min(len(scalars), rng.randint(1, 2))), entity, words, rng, title=_title(entity)
    )
    props, req = schema["properties"], schema["required"]
    # oneOf with a const discriminator: exactly one branch matches.
    name = rng.choice(sorted(_VARIANTS))
    disc, variants = _VARIANTS[name]
    branches = []
    # Two of the three variants: enough for a real choice, short enough for a 384-token demo.
    names = sorted(rng.sample(sorted(variants), 2))
    pick = rng.choice(names)
    for vname in names:
        vfields = _parse(variants[vname])
        bprops = {disc: ({"const": vname}, vname)}
        for f in vfields:
            bprops[f.key] = (_leaf_schema(f, entity), _leaf_value(f, entity, words, rng))
        s, i = _object(bprops, [disc] + [f.key for f in vfields], closed=True)
        branches.append(s)
        if vname == pick:
            inst[name] = i
    props[name] = {"oneOf": branches}
    req.append(name)
    # anyOf over types: an identifier that is either a pattern string or a positive integer.
    props["reference"] = {
        "anyOf": [
            {"type": "string", "pattern": f"^{_prefix(entity)}-[0-9]{{4}}$"},
            {"type": "integer", "minimum": 1},
        ]
    }
    inst["reference"] = (
        _leaf_value(Field("r", "code", None), entity, words, rng)
        if rng.random() < 0.5
        else rng.randint(1, 9999)
    )
    req.append("reference")
    # A nullable field: null is a legal, distinct answer from "absent".
    props["comment"] = {"type": ["string", "null"]}
    inst["comment"] = None if rng.random() < 0.5 else f"{rng.choice(words).capitalize()} {rng.choice(words)}"
    req.append("comment")
    return schema, inst


_ADV_STRINGS = [
    'He said "ready" twice',
    "C:\\data\\exports",
    "50% off, then 10%",
    "line one; line two",
    "Café Ünïcode",
    "{not: json}",
    "tab\tseparated",
]


def _build_adversarial(entity, fields, words, rng):
    scalars = [f for f in fields if f.scalar]
    chosen = rng.sample(scalars, min(len(scalars), rng.randint(2, 4)))
    props: dict[str, tuple[dict, Any]] = {}
    tricks = rng.sample(["keys", "escapes", "const", "boundary", "empty_array", "exclusive", "deep"], 3)
    for f in chosen:
        key = f.key
        if "keys" in tricks and rng.random() < 0.6:
            # Keys that are not identifiers: spaces, hyphens, capitals.
            words_ = key.split("_")
            key = rng.choice(
                [
                    " ".join(words_).title(),
                    "-".join(words_),
                    words_[0] + "".join(w.title() for w in words_[1:]),
                ]
            )
        schema = _leaf_schema(f, entity)
        value = _leaf_value(f, entity, words, rng)
        if "boundary" in tricks and f.kind == "int":
            value = schema[rng.choice(["minimum", "maximum"])]  # exactly at the bound: legal
        props[key] = (schema, value)
    if "escapes" in tricks:
        props["remark"] = ({"type": "string"}, rng.choice(_ADV_STRINGS))
    if "const" in tricks:
        version = f"{rng.randint(1, 3)}.{rng.randint(0, 9)}"
        props["schema_version"] = ({"const": version}, version)
    if "empty_array" in tricks:
        props["attachments"] = (
            {"type": "array", "items": {"type": "string", "format": "uri"}, "maxItems": 3},
            [],
        )
    if "exclusive" in tricks:
        v = rng.randint(1, 50)
        props["priority_score"] = ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100}, v)
    schema, inst = _object(props, list(props), closed=True, title=_title(entity))
    if "deep" in tricks:
        # Three levels: the answer must close every brace in the right place.
        leaf = rng.choice(scalars)
        ls, lv = _leaf_schema(leaf, entity), _leaf_value(leaf, entity, words, rng)
        inner, ii = _object({leaf.key: (ls, lv)}, [leaf.key], closed=True)
        mid, mi = _object({"detail": (inner, ii)}, ["detail"], closed=True)
        schema["properties"]["meta"] = mid
        schema["required"].append("meta")
        inst["meta"] = mi
    return schema, inst


_BUILDERS = {
    "flat": _build_flat,
    "nested": _build_nested,
    "arrays_enums": _build_arrays_enums,
    "conditional": _build_conditional,
    "adversarial": _build_adversarial,
}


# --- natural-language descriptions -----------------------------------------------------------


def _label(key: str) -> str:
    return re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key)).strip().lower()


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "null (explicitly unknown)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def describe(instance: dict, path: tuple[str, ...] = ()) -> list[str]:
    """One sentence per leaf value: the facts a model needs to fill the schema, in plain words."""
    sentences = []
    for key, value in instance.items():
        p = path + (_label(key),)
        name = " ".join(p)
        if isinstance(value, dict):
            sentences.extend(describe(value, p))
        elif isinstance(value, list):
            if not value:
                sentences.append(f"The {name} list is empty.")
            elif all(isinstance(v, dict) for v in value):
                for n, item in enumerate(value, 1):
                    sentences.extend(describe(item, p + (f"entry {n}",)))
            else:
                sentences.append(f"The {name} are {', '.join(_render(v) for v in value)}.")
        else:
            sentences.append(f"The {name} is {_render(value)}.")
    return sentences


def record_notes(instance: dict, rng: random.Random) -> str:
    """The facts of ``instance`` as extraction text: its sentences in scrambled order, so facts
    must be mapped to fields by meaning, not by position (the extraction task's content)."""
    sentences = describe(instance)
    rng.shuffle(sentences)
    return "Record notes: " + " ".join(sentences)


_INSTRUCTIONS = [
    "Create a JSON object describing this {t}.",
    "Fill in the {t} record from the details below.",
    "Convert the following facts about a {t} into JSON.",
    "Produce the {t} entry as a JSON object.",
]


# --- public API -------------------------------------------------------------------------------


def validation_error(instance: Any, schema: dict) -> str | None:
    """The first validation error of ``instance`` against ``schema`` (with formats), or None."""
    err = next(iter(VALIDATOR(schema, format_checker=VALIDATOR.FORMAT_CHECKER).iter_errors(instance)), None)
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "<root>"
    return f"{where}: {err.message}"


def _seed_for(pool: str, seed: int, what: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{pool}|{seed}|{what}".encode()).digest()[:8], "big")


def schemas(pool: str, seed: int, n: int) -> list[dict]:
    """``n`` distinct schemas of ``pool``, categories round-robin, deterministic in (pool, seed).

    A longer list for the same (pool, seed) extends a shorter one (same prefix).
    """
    ents = _entities(pool)
    rng = random.Random(_seed_for(pool, seed, "schemas"))
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 100:
            raise ValueError(f"pool {pool!r}: could not generate {n} distinct schemas (got {len(out)})")
        category = CATEGORIES[len(out) % len(CATEGORIES)]
        domain, entity, fields, words = rng.choice(ents)
        schema, instance = _BUILDERS[category](entity, fields, words, rng)
        h = schema_hash(schema)
        if h in seen:
            continue
        err = validation_error(instance, schema)
        if err:  # a generator bug, never data: fail loudly
            raise AssertionError(f"generated instance for {entity}/{category} is invalid: {err}")
        seen.add(h)
        out.append(
            {
                "name": f"{entity}_{category}_{h[:8]}",
                "category": category,
                "domain": domain,
                "schema": schema,
                "instance": instance,
                "content": " ".join(describe(instance)),
                "instruction": rng.choice(_INSTRUCTIONS).format(t=_label(entity)),
            }
        )
    return out


# --- functions --------------------------------------------------------------------------------


def _param(f: Field, entity: str) -> dict:
    s = _leaf_schema(f, entity)
    s["description"] = f"{_label(f.key).capitalize()}."
    return s


def _function_specs(pool: str) -> list[tuple[str, str, list[Field], list[str], str, Field | None]]:
    """(domain, entity, fields, words, verb, field) for every function of a pool, fixed order."""
    specs = []
    for domain, entity, fields, words in _entities(pool):
        for verb in ("get", "search", "create", "delete", "count", "export"):
            specs.append((domain, entity, fields, words, verb, None))
        for f in fields:
            if f.scalar and f.kind not in ("code",):
                specs.append((domain, entity, fields, words, "update", f))
    return specs


def _make_function(domain, entity, fields, words, verb, field, rng) -> dict:
    t, ts = _label(entity), _label(_plural(entity))
    id_key = f"{entity}_id"
    id_schema = {
        "type": "string",
        "pattern": f"^{_prefix(entity)}-[0-9]{{4}}$",
        "description": f"{t.capitalize()} id.",
    }
    id_val = _leaf_value(Field(id_key, "code", None), entity, words, rng)
    enums = [f for f in fields if f.kind == "enum"]
    if verb == "get":
        name, desc = f"get_{entity}", f"Fetch one {t} by its identifier."
        params, required, args = {id_key: id_schema}, [id_key], {id_key: id_val}
        question = f"Show me the {t} with id {id_val}."
    elif verb == "search":
        name, desc = f"search_{_plural(entity)}", f"Search {ts} by free text, optionally filtered."
        params = {
            "query": {"type": "string", "description": "Free-text search terms."},
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": 50,
                "description": "How many results to return.",
            },
        }
        q = f"{rng.choice(words)} {rng.choice(words)}"
        args = {"query": q}
        parts = [f'Find {ts} matching "{q}"']
        if enums:
            e = enums[0]
            params[e.key] = _param(e, entity)
            if rng.random() < 0.6:
                args[e.key] = _leaf_value(e, entity, words, rng)
                parts.append(f"with {_label(e.key)} {args[e.key]}")
        if rng.random() < 0.6:
            args["max_results"] = rng.randint(1, 20)
            parts.append(f"and give me at most {args['max_results']} results")
        required, question = ["query"], " ".join(parts) + "."
    elif verb == "create":
        name, desc = f"create_{entity}", f"Create a new {t} record."
        chosen = [f for f in fields if f.scalar][:5]
        params = {f.key: _param(f, entity) for f in chosen}
        required = [f.key for f in chosen[:3]]
        args = {}
        for f in chosen:
            if f.key in required or rng.random() < 0.5:
                args[f.key] = _leaf_value(f, entity, words, rng)
        question = (
            f"Please add a new {t}: " + "; ".join(f"{_label(k)} {_render(v)}" for k, v in args.items()) + "."
        )
    elif verb == "delete":
        name, desc = f"delete_{entity}", f"Delete {_article(t)} {t} permanently."
        params = {
            id_key: id_schema,
            "reason": {
                "type": "string",
                "enum": ["duplicate", "obsolete", "requested"],
                "description": "Why it is deleted.",
            },
        }
        args = {id_key: id_val, "reason": rng.choice(["duplicate", "obsolete", "requested"])}
        required = [id_key, "reason"]
        question = f"Remove {t} {id_val}; the reason is that it is {args['reason']}."
    elif verb == "count":
        name, desc = f"count_{_plural(entity)}", f"Count {ts} created in a date range."
        params = {
            "start_date": {"type": "string", "format": "date", "description": "First day, inclusive."},
            "end_date": {"type": "string", "format": "date", "description": "Last day, inclusive."},
        }
        y = rng.randint(2018, 2025)
        args = {
            "start_date": f"{y}-{rng.randint(1, 6):02d}-01",
            "end_date": f"{y}-{rng.randint(7, 12):02d}-28",
        }
        required = ["start_date", "end_date"]
        question = f"How many {ts} were created between {args['start_date']} and {args['end_date']}?"
    elif verb == "export":
        name, desc = f"export_{_plural(entity)}", f"Export all {ts} to a file."
        params = {
            "file_format": {
                "type": "string",
                "enum": ["csv", "json", "xlsx"],
                "description": "Output format.",
            },
            "include_archived": {"type": "boolean", "description": "Also export archived records."},
        }
        args = {"file_format": rng.choice(["csv", "json", "xlsx"])}
        if rng.random() < 0.5:
            args["include_archived"] = rng.random() < 0.5
        required = ["file_format"]
        question = (
            f"Export the {ts} as {args['file_format']}"
            + (
                ""
                if "include_archived" not in args
                else (", including archived ones" if args["include_archived"] else ", without archived ones")
            )
            + "."
        )
    else:  # update one field
        name, desc = f"update_{entity}_{field.key}", f"Change the {_label(field.key)} of {_article(t)} {t}."
        params = {id_key: id_schema, field.key: _param(field, entity)}
        v = _leaf_value(field, entity, words, rng)
        args, required = {id_key: id_val, field.key: v}, [id_key, field.key]
        question = f"Set the {_label(field.key)} of {t} {id_val} to {_render(v)}."
    parameters = {"type": "object", "properties": params, "required": required}
    err = validation_error(args, parameters)
    if err:
        raise AssertionError(f"generated arguments for {name} are invalid: {err}")
    return {
        "function": {"name": name, "description": desc, "parameters": parameters},
        "question": question,
        "call": {"name": name, "arguments": args},
        "domain": domain,
    }


def functions(pool: str, seed: int, n: int) -> list[dict]:
    """``n`` function-calling items of ``pool`` (shuffled, deterministic in (pool, seed)).

    Each function name appears once per pass over the pool; when ``n`` exceeds the number of
    distinct functions, later passes reuse names with freshly drawn arguments and questions.
    """
    specs = _function_specs(pool)
    rng = random.Random(_seed_for(pool, seed, "functions"))
    out: list[dict] = []
    while len(out) < n:
        order = list(range(len(specs)))
        rng.shuffle(order)
        for i in order[: n - len(out)]:
            out.append(_make_function(*specs[i], rng))
    return out


def all_function_names(pool: str) -> list[str]:
    """Every function name a pool can produce (for disjointness checks independent of n)."""
    rng = random.Random(0)
    return sorted({_make_function(*s, rng)["function"]["name"] for s in _function_specs(pool)})


def entity_labels(pool: str) -> list[str]:
    """Every entity of a pool in words ("pet patient"): what texts about that pool may name."""
    return sorted({entity.replace("_", " ") for _, entity, _, _ in _entities(pool)})


def _entity_names_disjoint() -> None:
    # By construction: no entity (hence no schema title or function name stem) is in both pools.
    tr = {e for d in _DOMAINS["train"].values() for e in d["entities"]}
    ev = {e for d in _DOMAINS["eval"].values() for e in d["entities"]}
    check_disjoint(tr, ev)


_entity_names_disjoint()
