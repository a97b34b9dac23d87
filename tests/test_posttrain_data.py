"""Structured pools (deterministic, disjoint, valid) and the SFT/DPO data built from them."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from trellis import io
from trellis import posttrain_data as pd
from trellis import structured_pool as sp


@pytest.fixture(scope="module")
def pools():
    return {p: sp.schemas(p, 11, 300) for p in sp.POOLS}


def test_schemas_are_deterministic_and_prefix_stable(pools):
    again = sp.schemas("train", 11, 300)
    assert json.dumps(again, sort_keys=True) == json.dumps(pools["train"], sort_keys=True)
    assert sp.schemas("train", 11, 40) == pools["train"][:40]
    assert sp.schemas("train", 12, 40) != pools["train"][:40]


def test_schemas_shape_categories_and_distinctness(pools):
    for pool, items in pools.items():
        assert len({sp.schema_hash(s["schema"]) for s in items}) == len(items)  # hundreds of distinct schemas
        assert len({s["name"] for s in items}) == len(items)
        assert set(Counter(s["category"] for s in items)) == set(sp.CATEGORIES)
        for s in items:
            assert set(s) >= {"name", "category", "schema", "instance", "content", "instruction"}
            assert s["content"] and s["instruction"] and s["schema"]["type"] == "object"


def test_every_instance_validates_with_formats(pools):
    from jsonschema import Draft202012Validator

    for items in pools.values():
        for s in items:
            Draft202012Validator.check_schema(s["schema"])
            Draft202012Validator(s["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER).validate(s["instance"])


def test_schema_building_blocks_are_used(pools):
    text = json.dumps([s["schema"] for s in pools["train"]])
    for needle in ('"format": "date"', '"format": "email"', '"format": "uri"', '"minimum"', '"enum"', '"oneOf"',
                   '"anyOf"', '"type": "array"', '"required"', '"const"', '"pattern"', '"exclusiveMinimum"'):
        assert needle in text, needle


def test_pools_are_disjoint(pools):
    names = {p: {s["name"] for s in pools[p]} for p in sp.POOLS}
    hashes = {p: {sp.schema_hash(s["schema"]) for s in pools[p]} for p in sp.POOLS}
    sp.check_disjoint(names["train"], names["eval"])
    sp.check_disjoint(hashes["train"], hashes["eval"])
    sp.check_disjoint(set(sp.all_function_names("train")), set(sp.all_function_names("eval")))
    # Entities (schema titles) differ too, so no eval schema is a renamed train one.
    titles = {p: {s["schema"]["title"] for s in pools[p]} for p in sp.POOLS}
    assert not titles["train"] & titles["eval"]


def test_check_disjoint_names_the_overlap():
    with pytest.raises(ValueError, match="get_book"):
        sp.check_disjoint({"get_book", "a"}, {"get_book", "b"})


def test_functions_deterministic_valid_and_bfcl_shaped():
    items = sp.functions("eval", 5, 50)
    assert items == sp.functions("eval", 5, 50)
    assert len({i["function"]["name"] for i in items}) == 50  # one pass: distinct names
    for i in items:
        f = i["function"]
        assert set(f) == {"name", "description", "parameters"} and f["parameters"]["type"] == "object"
        assert i["call"]["name"] == f["name"] and i["question"]
        assert sp.validation_error(i["call"]["arguments"], f["parameters"]) is None
        assert set(f["parameters"]["required"]) <= set(i["call"]["arguments"])
    # More than a pass: names repeat, arguments are drawn afresh.
    many = sp.functions("eval", 5, len(sp.all_function_names("eval")) + 10)
    assert len(many) == len(sp.all_function_names("eval")) + 10


def test_unknown_pool_is_an_error():
    with pytest.raises(ValueError, match="pool"):
        sp.schemas("test", 1, 3)


@pytest.fixture(scope="module")
def sft():
    return pd.build_sft(120, 4)


@pytest.fixture(scope="module")
def dpo():
    return pd.build_dpo(80, 4)


def test_sft_rows_are_prompt_completion_conversations(sft):
    assert len(sft) == 120
    assert Counter(r["task"] for r in sft) == {"json_schema": 48, "function_call": 36, "extraction": 18,
                                               "classification": 18}
    for r in sft:
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert [m["role"] for m in r["completion"]] == ["assistant"]
        json.loads(r["completion"][0]["content"])
    assert pd.build_sft(120, 4) == sft


def test_sft_uses_only_train_pool(sft):
    eval_names = set(sp.all_function_names("eval"))
    eval_titles = {s["schema"]["title"] for s in sp.schemas("eval", 4, 200)}
    train_titles = {s["schema"]["title"] for s in sp.schemas("train", 4, 200)}
    for r in sft:
        if r["task"] == "function_call":
            shown = {json.loads(line)["name"] for line in r["prompt"][0]["content"].splitlines()[1:-1]}
            assert shown and not shown & eval_names
        elif r["task"] != "classification":
            schema = json.loads(r["prompt"][1]["content"].split("JSON Schema:\n", 1)[1].split("\n\nContent:", 1)[0])
            assert schema["title"] in train_titles and schema["title"] not in eval_titles


def _check(row):
    user = row["prompt"][1]["content"]
    if row["task"] == "function_call":
        fns = [json.loads(line) for line in row["prompt"][0]["content"].splitlines()[1:-1]]
        expected = json.loads(row["chosen"][0]["content"])
        return lambda text: pd.check_call_answer(text, fns, expected)
    schema = json.loads(user.split("JSON Schema:\n", 1)[1].split("\n\nContent:\n", 1)[0])
    return lambda text: pd.check_json_answer(text, schema)


def test_dpo_chosen_pass_and_rejected_fail(dpo):
    assert len(dpo) == 80
    kinds = Counter(r["rejection"] for r in dpo)
    assert {"extra_text", "wrong_type", "missing_required"} <= set(kinds)
    assert {"wrong_function", "missing_argument", "wrong_argument_type"} & set(kinds)
    for r in dpo:
        check = _check(r)
        assert check(r["chosen"][0]["content"]) is None
        assert check(r["rejected"][0]["content"]) is not None, r
        assert r["chosen"] != r["rejected"]


def test_answer_checks():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert pd.check_json_answer('{"a": 1}', schema) is None
    assert "not pure JSON" in pd.check_json_answer('Here: {"a": 1}', schema)
    assert pd.check_json_answer('{"a": "1"}', schema) is not None
    fns = [{"name": "f", "parameters": schema}]
    assert pd.check_call_answer('[{"name": "f", "arguments": {"a": 1}}]', fns, [{"name": "f", "arguments": {"a": 1}}]) is None
    assert "unknown function" in pd.check_call_answer('[{"name": "g", "arguments": {"a": 1}}]', fns, [])


def test_write_posttrain_data(tmp_path):
    m = pd.write_posttrain_data(tmp_path / "sft.jsonl", tmp_path / "dpo.jsonl", 40, 20, seed=2,
                                manifest_path=tmp_path / "manifest.json")
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["sft"]["rows"] == 40 and on_disk["dpo"]["rows"] == 20
    for key in ("sft", "dpo"):
        data = (tmp_path / f"{key}.jsonl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == m[key]["sha256"] == on_disk[key]["sha256"]
    rows = io.read_jsonl(tmp_path / "sft.jsonl", required=("prompt", "completion"))
    assert rows == pd.build_sft(40, 2)
    pool = on_disk["train_pool"]
    assert pool["schema_names"] and pool["function_names"] and len(pool["schema_hashes"]) <= len(pool["schema_names"])
    eval_hashes = {sp.schema_hash(s["schema"]) for s in sp.schemas("eval", 2, 100)}
    sp.check_disjoint(set(pool["schema_hashes"]), eval_hashes)
    sp.check_disjoint(set(pool["function_names"]), set(sp.all_function_names("eval")))
    assert not list(tmp_path.glob(".*tmp*"))


def test_read_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": []}\n{"x": 1}\n')
    with pytest.raises(KeyError, match=r"bad.jsonl, line 2"):
        io.read_jsonl(p, required=("prompt",))
