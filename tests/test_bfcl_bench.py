"""BFCL: data from the installed bfcl_eval package, scored by bfcl-eval's own AST checker."""

from __future__ import annotations

import copy
import json

import pytest

from trellis.benchmarks import bfcl, evaluate

from test_json_schema_bench import ScriptedGenerator, make_tiny_model  # noqa: E402 (tests dir on sys.path)


@pytest.fixture(scope="module")
def simple():
    return bfcl.load_category("simple")


def test_data_comes_from_the_package(simple):
    questions, answers = bfcl.data_paths("simple")
    assert "bfcl_eval" in str(questions) and questions.name.endswith("_simple_python.json")
    assert answers.parent.name == "possible_answer" and answers.name == questions.name
    assert len(simple) == sum(1 for line in open(questions) if line.strip())
    assert bfcl.resolve_category("BFCL_v3_simple") == bfcl.resolve_category("simple_python") == "simple_python"
    with pytest.raises(ValueError, match="unsupported BFCL category"):
        bfcl.resolve_category("simple_java")
    first = bfcl.load_category("simple", limit=5)
    assert [e["id"] for e in first] == [e["id"] for e in simple[:5]]
    sampled = bfcl.load_category("simple", limit=5, seed=1)
    assert sampled == bfcl.load_category("simple", limit=5, seed=1) and sampled != first


@pytest.mark.parametrize("category", ["simple", "multiple", "parallel", "parallel_multiple"])
def test_possible_answers_pass_the_checker(category):
    entries = bfcl.load_category(category)
    assert entries
    for e in entries:
        score = bfcl.score_example(e, bfcl.reference_answer(e))
        assert score["correct"], (e["id"], score)


def test_wrong_answers_fail(simple):
    for e in simple[:50]:
        calls = bfcl.reference_calls(e)
        wrong_name = copy.deepcopy(calls)
        wrong_name[0]["name"] = wrong_name[0]["name"] + "_v2"
        score = bfcl.score_example(e, json.dumps(wrong_name))
        assert score["parsed"] and not score["correct"] and "wrong_func_name" in score["error_type"]

        (arg, value), *_ = calls[0]["arguments"].items()
        wrong_value = copy.deepcopy(calls)
        if isinstance(value, bool):
            wrong_value[0]["arguments"][arg] = not value
        elif isinstance(value, (int, float)):
            wrong_value[0]["arguments"][arg] = value + 7919
        elif isinstance(value, str):
            wrong_value[0]["arguments"][arg] = value + " elsewhere"
        else:
            wrong_value[0]["arguments"][arg] = ["definitely", "wrong"]
        score = bfcl.score_example(e, json.dumps(wrong_value))
        assert not score["correct"], (e["id"], wrong_value)

    e = simple[0]
    unparsable = bfcl.score_example(e, "calculate_triangle_area(base=10, height=5)")
    assert unparsable == {"parsed": False, "correct": False, "error_type": "decode_failed", "error": unparsable["error"]}
    assert bfcl.score_example(e, '[{"name": "calculate_triangle_area"}, 3]')["parsed"] is False
    # One call without the list brackets is still read as that call.
    assert bfcl.score_example(e, json.dumps(bfcl.reference_calls(e)[0]))["correct"]


def test_prompt_uses_json_schema_types_and_keeps_names(simple):
    e = next(x for x in simple if "." in x["functions"][0]["name"])
    funcs = bfcl.prompt_functions(e)
    assert funcs[0]["name"] == e["functions"][0]["name"]
    assert funcs[0]["parameters"]["type"] == "object"
    assert e["functions"][0]["parameters"]["type"] == "dict"  # the checker's copy is untouched
    text = json.dumps(bfcl.messages(e))
    assert e["functions"][0]["name"] in text and bfcl.question_text(e) in bfcl.messages(e)[-1]["content"]


def test_evaluate_bfcl(tmp_path):
    from transformers import AutoTokenizer

    model = make_tiny_model(tmp_path / "model", chat=True)
    tok = AutoTokenizer.from_pretrained(model)
    entries = {bfcl.question_text(e): e for e in bfcl.load_category("simple", limit=24)}

    def perfect(prompt):
        # The query is the last question in the prompt.
        question = max(entries, key=lambda q: prompt.rfind(q))
        return bfcl.reference_answer(entries[question])

    cfg = {"limit": 24, "max_new_tokens": 32, "category": "simple"}
    boot = {"resamples": 200, "confidence": 0.95}
    gen = ScriptedGenerator(tok, perfect)
    result = evaluate("bfcl_simple", model, "sft", "curated", None, cfg, boot, 0, generator=gen)
    assert result["n"] == 24 and result["metrics"]["accuracy"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert result["data"]["category"] == "simple_python"

    gen = ScriptedGenerator(tok, perfect)
    result = evaluate("bfcl_simple", model, "base", "curated", None, cfg, boot, 0, generator=gen)
    assert result["metrics"]["accuracy"]["value"] == 1.0
    assert len(result["generation"]["shots"]) == 2 and gen.prompts[0].count("Output:\n") == 3

    # The real tiny model: random text, every example scored (parse failures count as wrong).
    result = evaluate("bfcl_simple", model, "sft", "curated", None, {**cfg, "limit": 8, "max_new_tokens": 8}, boot, 0)
    assert result["n"] == 8 and len(result["examples"]) == 8
    assert result["metrics"]["accuracy"]["value"] == 0.0
    assert all(ex["scores"] == {"accuracy": 0.0} for ex in result["examples"])
