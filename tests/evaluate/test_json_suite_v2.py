"""JSON Schema suite v2: the lock, its sources and split, sub-schema preparation, values and content."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from trellis.evaluate import json_schema as js
from trellis.evaluate import json_suite_v2 as v2
from trellis.evaluate import schema_prep as prep
from trellis.evaluate import schema_values as sv
from trellis.structured import schema_sources as ss

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def locked():
    examples, _ = js.load_locked(suite="v2")
    return examples


def test_v2_is_reproduced_byte_for_byte(tmp_path):
    # The committed suite and card are what the generator writes today from the pinned packages;
    # if this fails, the generator or a source file changed after the lock: fix that, do not re-lock lightly.
    digest = v2.write(tmp_path / "v2.jsonl", tmp_path / "v2.md")
    assert (tmp_path / "v2.jsonl").read_bytes() == v2.SUITE_PATH.read_bytes()
    assert (tmp_path / "v2.md").read_text() == v2.CARD_PATH.read_text()
    assert js.sidecar_path(v2.SUITE_PATH).read_text() == f"{digest}  {v2.SUITE_PATH.name}\n"
    assert digest in v2.CARD_PATH.read_text()


def test_v2_shape_and_references(locked):
    assert js.locked_path("v2") == v2.SUITE_PATH
    assert len(locked) == 500
    assert Counter(e["category"] for e in locked) == v2.quotas(500)
    assert [e["id"] for e in locked] == [f"json2-{i:04d}" for i in range(500)]
    assert len({e["name"] for e in locked}) == 500
    hashes = {ss.canonical_hash(e["schema"]) for e in locked}
    assert len(hashes) >= 300
    for e in locked:
        assert set(e) == set(js.EXAMPLE_KEYS), e["id"]
        Draft202012Validator.check_schema(e["schema"])
        errors = list(
            Draft202012Validator(e["schema"], format_checker=FormatChecker()).iter_errors(e["instance"])
        )
        assert not errors, (e["id"], errors[0].message)
        # The reference scores full marks under the suite's own scoring.
        score = js.score_example(e, js.reference_answer(e))
        assert score["valid"] and score["field_accuracy"] == 1.0, e["id"]
        # The prompt fits a small model: schema and answer stay short.
        assert len(json.dumps(e["schema"], separators=(",", ":"))) <= v2.MAX_SCHEMA_CHARS + 200
        assert len(json.dumps(e["instance"])) <= max(v2.MAX_INSTANCE_CHARS, 2000)


def test_v2_sources_are_pinned_eval_files(locked):
    sha_of: dict[tuple[str, str], str] = {}
    for e in locked:
        s = e["source"]
        assert s["split"] == "eval"
        if s["source"] == "bfcl":
            assert s["package"] == "bfcl-eval"
            continue
        assert s["source"] in v2.FILE_SOURCES
        assert s["version"] == ss.SOURCES[s["source"]].version
        assert ss.split_of(s["source"], s["file"]) == "eval"
        assert not ss.mirrors_other_source(s["source"], s["file"])
        assert ss.family(s["source"], s["file"]) == s["family"]
        key = (s["source"], s["file"])
        if key not in sha_of:
            sha_of[key] = ss.file_sha256(*key)
        assert sha_of[key] == s["file_sha256"], key
    assert {e["source"]["source"] for e in locked} == {"bfcl", "cloudformation", "schemastore"}
    # Every file the suite used is listed in its card.
    card = v2.CARD_PATH.read_text()
    for source, file in v2.used_files(locked):
        if source != "bfcl":
            assert f"`{file}`" in card


def test_v2_covers_conditionals_and_adversarial_traps(locked):
    cond = [e for e in locked if e["category"] == "conditional"]
    used = Counter(k for e in cond for k in prep.keywords_used(e["schema"]))
    for keyword in ("if", "then", "else", "oneOf", "anyOf", "dependentRequired"):
        assert used[keyword] >= 5, keyword
    # Real conditionals (as the source wrote them) and rules added to real schemas, both.
    kinds = Counter((e["source"].get("transform") or {}).get("kind", "as_is") for e in cond)
    assert kinds["as_is"] >= 20 and set(v2.CONDITIONAL_RULES) <= set(kinds)
    adv = Counter(e["source"]["transform"]["kind"] for e in locked if e["category"] == "adversarial")
    assert set(adv) == set(v2.ADVERSARIAL_KINDS) and min(adv.values()) >= 10
    for e in locked:
        t = e["source"].get("transform") or {}
        if t.get("kind") == "lookalike_keys":
            assert e["schema"]["properties"][t["decoy"]] is False and t["key"] in e["instance"]
        elif t.get("kind") == "numbers_as_strings":
            assert re.fullmatch(r"[0-9]+", e["instance"][t["key"]])
        elif t.get("kind") == "deep_nesting":
            assert prep.depth(e["schema"]) >= 5
        elif t.get("kind") == "additional_properties_extras":
            assert e["schema"]["additionalProperties"] is False
    assert sum(prep.depth(e["schema"]) >= 2 for e in locked if e["category"] == "nested") == 83
    assert all(prep.depth(e["schema"]) == 1 for e in locked if e["category"] == "flat")


def test_v2_content_states_values_in_varied_words(locked):
    openers = Counter()
    for e in locked:
        if e["source"]["source"] == "bfcl":
            continue  # the user's own request
        content = e["content"]
        openers[content.split(" ")[0]] += 1
        # Not v1's recitation: the content never names a key verbatim in "The <key> is" form for all keys.
        keys = list(e["instance"])
        assert not all(f"The {k} is" in content for k in keys), e["id"]
        # Every enum, pattern-bound or free string value is stated exactly (dates may be reworded).
        for ptr, value in js.leaf_fields(e["instance"]).items():
            if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d\d-\d\d(T.*)?", value):
                assert value in content, (e["id"], ptr, value)
    assert len(openers) >= 8


def test_v2_subset_is_stratified(tmp_path):
    path = tmp_path / "suite.jsonl"
    _, n = js.write_subset(js.locked_path("v2"), path, 24)
    subset, _ = js.load_suite(path)
    assert n == 24 and Counter(e["category"] for e in subset) == Counter(dict.fromkeys(v2.CATEGORIES, 4))
    with pytest.raises(ValueError, match="unknown JSON schema suite 'v3'"):
        js.locked_path("v3")


def test_config_selects_v1_for_the_demo_and_v2_for_the_study():
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    study = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
    assert demo["evaluate"]["json_schema"]["suite"] == "v1"
    assert study["evaluate"]["json_schema"]["suite"] == "v2"
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    spec = schema["properties"]["evaluate"]["properties"]["json_schema"]["properties"]["suite"]
    assert set(spec["enum"]) == set(js.SUITES)
    smk = (ROOT / "rules" / "evaluate.smk").read_text()
    for version, path in js.SUITES.items():
        assert f'"{version}": "{path.relative_to(ROOT).as_posix()}"' in smk


# --- sources and the split --------------------------------------------------------------------


def test_split_is_deterministic_by_family_and_keeps_copies_together():
    for source in ("schemastore", "cloudformation"):
        files = ss.split_files(source, "eval") + ss.split_files(source, "train")
        by_family: dict[str, set[str]] = {}
        for f in files:
            by_family.setdefault(ss.family(source, f), set()).add(ss.split_of(source, f))
        # One family, one side; roughly EVAL_PERCENT of families on the eval side.
        assert all(len(sides) == 1 for sides in by_family.values())
        share = sum(sides == {"eval"} for sides in by_family.values()) / len(by_family)
        assert 0.15 < share < 0.45, (source, share)
        assert not set(ss.split_files(source, "eval")) & set(ss.split_files(source, "train"))
    # check-jsonschema's vendored copies sit where SchemaStore's originals do.
    schemastore_split = {
        ss.family("schemastore", f): ss.split_of("schemastore", f)
        for f in ss.split_files("schemastore", "eval")
    } | {ss.family("schemastore", f): "train" for f in ss.split_files("schemastore", "train")}
    shared = 0
    for f in ss.files("check-jsonschema"):
        fam = ss.family("check-jsonschema", f)
        if fam in schemastore_split:
            shared += 1
            assert ss.split_of("check-jsonschema", f) == schemastore_split[fam], f
    assert shared >= 10
    assert ss.split_of("bfcl", "anything") == "eval"


def test_family_of_url_drops_versions_and_generic_names():
    assert ss.family_of_url("https://json.schemastore.org/agripparc-1.4.json") == "agripparc"
    assert ss.family_of_url("https://json.schemastore.org/agripparc-1.2.json") == "agripparc"
    assert ss.family_of_url("https://json.schemastore.org/sarif-2.1.0-rtm.4.json") == "sarif"
    assert ss.family_of_url("https://raw.githubusercontent.com/acme/tool/main/schema.json") == (
        "raw.githubusercontent.com/acme/tool"
    )


def test_cloudformation_mirrors_are_held_out_of_both_sides():
    mirrors = [f for f in ss.files("schemastore") if _loads(f) and ss.mirrors_other_source("schemastore", f)]
    assert mirrors  # SchemaStore's cloudformation and sam schemas
    for f in mirrors:
        assert ss.split_of("schemastore", f) == "eval" and f not in ss.suite_files("schemastore")


def _loads(f: str) -> bool:
    try:
        ss.load("schemastore", f)
    except ss.SourceError:
        return False
    return True


def test_a_source_at_another_version_is_refused(monkeypatch):
    monkeypatch.setattr(ss.importlib.metadata, "version", lambda dist: "0.0.1")
    with pytest.raises(ss.SourceError, match=r"pinned to cfn-lint==1\.58\.0, but 0\.0\.1 is installed"):
        ss.check_version("cloudformation")
    with pytest.raises(KeyError, match="unknown schema source 'nope'"):
        ss.source("nope")


# --- preparing sub-schemas --------------------------------------------------------------------


def test_prepare_inlines_refs_and_rewrites_older_drafts():
    root = {
        "definitions": {
            "port": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "default": 80},
            "node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/node"}}},
        },
        "type": "object",
        "properties": {
            "port": {"$ref": "#/definitions/port", "description": "The port. More text here."},
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            "when": {"type": "string", "format": "x-custom"},
            "code": {"type": "string", "pattern": "(?<name>x)\\p{L}"},
        },
        "dependencies": {"port": ["pair"]},
        "markdownDescription": "dropped",
    }
    out = prep.prepare(root, root)
    assert out["properties"]["port"] == {"type": "integer", "exclusiveMinimum": 0, "description": "The port."}
    assert out["properties"]["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
    }
    assert out["properties"]["when"] == {"type": "string"}  # a format nobody checks offline
    assert out["properties"]["code"] == {"type": "string"}  # a pattern Python's re cannot compile
    assert out["dependentRequired"] == {"port": ["pair"]} and "markdownDescription" not in out
    assert prep.is_valid_schema(out)
    with pytest.raises(prep.Unusable, match="recursive"):
        prep.prepare(root["definitions"]["node"], root)
    with pytest.raises(prep.Unusable, match="non-local"):
        prep.prepare({"$ref": "https://example.com/x.json"}, root)


@pytest.mark.parametrize(
    "pattern",
    [
        "^arn:aws[-a-z]*:iam::[0-9]{12}:role/[a-zA-Z_0-9+=,.@-]+$",
        "^sg-[a-f0-9]{8}$",
        "^(\\d{1,3}\\.){3}\\d{1,3}$",
    ],
)
def test_strings_are_generated_from_patterns(pattern):
    rng = random.Random(0)
    for _ in range(5):
        s = prep.string_for_pattern(pattern, rng)
        assert s is not None and re.search(pattern, s)


def test_depth_counts_object_levels_through_arrays():
    leaf = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert prep.depth(leaf) == 1
    assert prep.depth({"type": "object", "properties": {"x": {"type": "array", "items": leaf}}}) == 2
    assert prep.depth({"type": "object", "properties": {"b": {"type": "string"}}, "oneOf": [leaf]}) == 1


# --- values and content -----------------------------------------------------------------------


def test_synthesized_values_validate_and_honour_conditionals():
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["fast", "safe"]},
            "retries": {"type": "integer", "minimum": 3, "maximum": 5},
            "host": {"type": "string", "format": "hostname"},
            "id": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        },
        "required": ["mode", "id"],
        "if": {"properties": {"mode": {"const": "safe"}}},
        "then": {"required": ["retries"]},
        "dependentRequired": {"host": ["retries"]},
    }
    for seed in range(20):
        value = sv.Synth(random.Random(seed)).value(schema)
        assert prep.validation_error(value, schema) is None, value


def test_content_converts_units_and_dates_exactly():
    rng = random.Random(3)
    names = set()
    for _ in range(30):
        name, phrase = sv.say_number(300, "TimeoutInSeconds", rng)
        names.add((name, phrase))
    assert ("timeout", "5 minutes") in names and ("timeout in seconds", "300") in names
    assert sv.say_number(2048, "MemorySizeMb", random.Random(0))[1] in ("2 GiB", "2048")
    dates = {sv.say_string("2024-03-05", {"format": "date"}, random.Random(s)) for s in range(20)}
    assert {"March 5, 2024", "5 March 2024"} <= dates
    assert sv.humanize("DBInstanceIdentifier") == "DB instance identifier"
    text = sv.render({"Name": "a b", "Enabled": True, "Tags": ["x", "y"]}, {}, random.Random(1))
    assert '"a b"' in text and "x" in text and "enabled" in text.lower()
