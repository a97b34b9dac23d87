"""Structured pools: deterministic, prefix-stable, valid, and the train and eval pools disjoint."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from trellis.structured import pools as sp
from trellis.structured.disjoint import check_disjoint, schema_hash


@pytest.fixture(scope="module")
def pools():
    return {p: sp.schemas(p, 11, 300) for p in sp.POOLS}


def test_schemas_are_deterministic_and_prefix_stable(pools):
    again = sp.schemas("train", 11, 300)
    assert json.dumps(again, sort_keys=True) == json.dumps(pools["train"], sort_keys=True)
    assert sp.schemas("train", 11, 40) == pools["train"][:40]
    assert sp.schemas("train", 12, 40) != pools["train"][:40]


def test_schemas_shape_categories_and_distinctness(pools):
    for items in pools.values():
        assert len({schema_hash(s["schema"]) for s in items}) == len(items)  # hundreds of distinct schemas
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
            Draft202012Validator(s["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
                s["instance"]
            )


def test_schema_building_blocks_are_used(pools):
    text = json.dumps([s["schema"] for s in pools["train"]])
    for needle in (
        '"format": "date"',
        '"format": "email"',
        '"format": "uri"',
        '"minimum"',
        '"enum"',
        '"oneOf"',
        '"anyOf"',
        '"type": "array"',
        '"required"',
        '"const"',
        '"pattern"',
        '"exclusiveMinimum"',
    ):
        assert needle in text, needle


def test_pools_are_disjoint(pools):
    names = {p: {s["name"] for s in pools[p]} for p in sp.POOLS}
    hashes = {p: {schema_hash(s["schema"]) for s in pools[p]} for p in sp.POOLS}
    check_disjoint(names["train"], names["eval"])
    check_disjoint(hashes["train"], hashes["eval"])
    check_disjoint(set(sp.all_function_names("train")), set(sp.all_function_names("eval")))
    # Entities (schema titles) differ too, so no eval schema is a renamed train one.
    titles = {p: {s["schema"]["title"] for s in pools[p]} for p in sp.POOLS}
    assert not titles["train"] & titles["eval"]


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
