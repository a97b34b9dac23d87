"""SFT rows and DPO pairs generated from the train pools, and the answer checks they pass."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from trellis.structured import pools as sp
from trellis.structured.examples import build_dpo, build_sft, check_call_answer, check_json_answer


@pytest.fixture(scope="module")
def sft():
    return build_sft(120, 4)


@pytest.fixture(scope="module")
def dpo():
    return build_dpo(80, 4)


def test_sft_rows_are_prompt_completion_conversations(sft):
    assert len(sft) == 120
    assert Counter(r["task"] for r in sft) == {
        "json_schema": 48,
        "function_call": 36,
        "extraction": 18,
        "classification": 18,
    }
    for r in sft:
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert [m["role"] for m in r["completion"]] == ["assistant"]
        json.loads(r["completion"][0]["content"])
    assert build_sft(120, 4) == sft


def test_sft_uses_only_train_pool(sft):
    eval_names = set(sp.all_function_names("eval"))
    eval_titles = {s["schema"]["title"] for s in sp.schemas("eval", 4, 200)}
    train_titles = {s["schema"]["title"] for s in sp.schemas("train", 4, 200)}
    for r in sft:
        if r["task"] == "function_call":
            shown = {json.loads(line)["name"] for line in r["prompt"][0]["content"].splitlines()[1:-1]}
            assert shown and not shown & eval_names
        elif r["task"] != "classification":
            schema = json.loads(
                r["prompt"][1]["content"].split("JSON Schema:\n", 1)[1].split("\n\nContent:", 1)[0]
            )
            assert schema["title"] in train_titles and schema["title"] not in eval_titles


def _check(row):
    user = row["prompt"][1]["content"]
    if row["task"] == "function_call":
        fns = [json.loads(line) for line in row["prompt"][0]["content"].splitlines()[1:-1]]
        expected = json.loads(row["chosen"][0]["content"])
        return lambda text: check_call_answer(text, fns, expected)
    schema = json.loads(user.split("JSON Schema:\n", 1)[1].split("\n\nContent:\n", 1)[0])
    return lambda text: check_json_answer(text, schema)


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
    assert check_json_answer('{"a": 1}', schema) is None
    assert "not pure JSON" in check_json_answer('Here: {"a": 1}', schema)
    assert check_json_answer('{"a": "1"}', schema) is not None
    fns = [{"name": "f", "parameters": schema}]
    assert (
        check_call_answer(
            '[{"name": "f", "arguments": {"a": 1}}]', fns, [{"name": "f", "arguments": {"a": 1}}]
        )
        is None
    )
    assert "unknown function" in check_call_answer('[{"name": "g", "arguments": {"a": 1}}]', fns, [])
