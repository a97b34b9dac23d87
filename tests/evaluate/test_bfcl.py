"""BFCL: data from the installed bfcl_eval package, scored by bfcl-eval's own AST checker."""

from __future__ import annotations

import copy
import json

import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model

from trellis.evaluate import bfcl
from trellis.evaluate.dispatch import evaluate


@pytest.fixture(scope="module")
def simple():
    return bfcl.load_category("simple")


def test_data_comes_from_the_package(simple):
    questions, answers = bfcl.data_paths("simple")
    assert "bfcl_eval" in str(questions) and questions.name.endswith("_simple_python.json")
    assert answers.parent.name == "possible_answer" and answers.name == questions.name
    assert len(simple) == sum(1 for line in open(questions) if line.strip())
    assert (
        bfcl.resolve_category("BFCL_v3_simple") == bfcl.resolve_category("simple_python") == "simple_python"
    )
    # Multi-turn runs (trellis.evaluate.bfcl_multi_turn); web search and memory do not.
    assert bfcl.resolve_category("BFCL_v3_multi_turn_base") == "multi_turn_base"
    for category in ("web_search_base", "memory_kv"):
        with pytest.raises(ValueError, match="unsupported BFCL category"):
            bfcl.resolve_category(category)
    # Java/JavaScript answers are language literals: prompt mode only.
    with pytest.raises(ValueError, match="prompt mode only"):
        bfcl.messages(bfcl.load_category("simple_java", 1)[0])
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
    assert unparsable == {
        "parsed": False,
        "correct": False,
        "error_type": "decode_failed",
        "error": unparsable["error"],
    }
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
    assert result["n"] == 24 and result["metrics"]["accuracy"] == {
        "value": 1.0,
        "ci_low": 1.0,
        "ci_high": 1.0,
    }
    assert result["data"]["category"] == "simple_python"

    gen = ScriptedGenerator(tok, perfect)
    result = evaluate("bfcl_simple", model, "base", "curated", None, cfg, boot, 0, generator=gen)
    assert result["metrics"]["accuracy"]["value"] == 1.0
    assert len(result["generation"]["shots"]) == 2 and gen.prompts[0].count("Output:\n") == 3

    # The real tiny model: random text, every example scored (parse failures count as wrong).
    result = evaluate(
        "bfcl_simple", model, "sft", "curated", None, {**cfg, "limit": 8, "max_new_tokens": 8}, boot, 0
    )
    assert result["n"] == 8 and len(result["examples"]) == 8
    assert result["metrics"]["accuracy"]["value"] == 0.0
    assert all(ex["scores"] == {"accuracy": 0.0} for ex in result["examples"])


@pytest.mark.parametrize("category", bfcl.RELEVANCE)
def test_relevance_categories_judge_whether_a_call_is_made(category):
    entries = bfcl.load_category(category)
    assert entries and all(e["possible_answer"] is None for e in entries)
    # (Some live_irrelevance questions come with no functions at all.)

    def a_call(e):
        return json.dumps(
            [{"name": e["functions"][0]["name"] if e["functions"] else "lookup", "arguments": {}}]
        )

    for e in entries:
        assert bfcl.score_example(e, bfcl.reference_answer(e))["correct"], e["id"]
        wrong = "[]" if category == "live_relevance" else a_call(e)
        assert not bfcl.score_example(e, wrong)["correct"], e["id"]
    # Prose (no JSON) is "no call": right for irrelevance, wrong for relevance.
    assert bfcl.score_example(entries[0], "I cannot help with that.")["correct"] == (
        category != "live_relevance"
    )


def _records(category, accuracies):
    return [{"id": f"{category}_{i}", "scores": {"accuracy": float(a)}} for i, a in enumerate(accuracies)]


def test_summary_is_bfcl_evals_aggregate_with_matching_weights():
    per_category = {
        "simple_python": _records("simple_python", [1, 1, 1, 0]),  # 0.75
        "multiple": _records("multiple", [1, 0]),  # 0.5
        "parallel": _records("parallel", [0, 0, 0]),  # 0.0
        "parallel_multiple": _records("parallel_multiple", [1]),  # 1.0
        "live_simple": _records("live_simple", [1, 0, 0]),
        "live_multiple": _records("live_multiple", [1]),
        "irrelevance": _records("irrelevance", [1, 0]),
    }
    out = bfcl.summary(per_category)
    # Live AST lacks live_parallel(_multiple): not computed; live (ir)relevance were not run.
    assert set(out) == {"non_live_ast", "irrelevance"}
    assert out["non_live_ast"]["value"] == pytest.approx((0.75 + 0.5 + 0.0 + 1.0) / 4)
    w = out["non_live_ast"]["weights"]
    scores = {r["id"]: r["scores"]["accuracy"] for rs in per_category.values() for r in rs}
    weighted = sum(scores[i] * w[i] for i in w) / sum(w.values())
    assert weighted == pytest.approx(out["non_live_ast"]["value"])
    per_category.update(
        {
            "live_parallel": _records("live_parallel", [1]),
            "live_parallel_multiple": _records("live_parallel_multiple", [0, 0]),
        }
    )
    # Live AST is weighted by size: 3 right of 7.
    assert bfcl.summary(per_category)["live_ast"]["value"] == pytest.approx(3 / 7)


def test_evaluate_bfcl_runs_categories_on_one_model_and_summarizes(tmp_path):
    from transformers import AutoTokenizer

    from trellis.core.io import write_json
    from trellis.evaluate.dispatch import evaluate_bfcl
    from trellis.report.tables import headline_table
    from trellis.structured import prompts

    model = make_tiny_model(tmp_path / "model", chat=True)
    tok = AutoTokenizer.from_pretrained(model)
    categories = ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]
    answers = {}
    for c in categories:
        for e in bfcl.load_category(c, 4):
            answers[prompts.build_prompt("sft", tok, bfcl.messages(e), [])] = (c, bfcl.reference_answer(e))
    cfg = {"categories": categories, "limit": 4, "max_new_tokens": 16}
    boot = {"resamples": 200, "confidence": 0.95}
    perfect = evaluate_bfcl(
        model, "sft", "curated", cfg, boot, 0, generator=ScriptedGenerator(tok, lambda p: answers[p][1])
    )
    assert set(perfect) == {f"bfcl_{c}" for c in categories} | {"bfcl_summary"}
    assert perfect["bfcl_summary"]["metrics"]["non_live_ast"]["value"] == 1.0
    # A control arm that always calls: "parallel" and "irrelevance" fail, the rest pass.
    control = evaluate_bfcl(
        model,
        "sft",
        "uncurated",
        cfg,
        boot,
        0,
        generator=ScriptedGenerator(
            tok,
            lambda p: (
                "[]"
                if answers[p][0] == "parallel"
                else ('[{"name": "f", "arguments": {}}]' if answers[p][0] == "irrelevance" else answers[p][1])
            ),
        ),
    )
    summary = control["bfcl_summary"]
    assert summary["metrics"]["non_live_ast"]["value"] == pytest.approx(0.75)
    assert summary["metrics"]["irrelevance"]["value"] == 0.0
    assert summary["n"] == 20
    # The paired delta of the summary uses the weights: curated - control = 0.25 on non-live AST.
    paths = []
    for arm, results in (("curated", perfect), ("uncurated", control)):
        path = tmp_path / arm / "bfcl_summary.json"
        write_json(path, results["bfcl_summary"])
        paths.append(path)
    table = headline_table(paths, "uncurated")
    delta = table[(table["kind"] == "delta") & (table["metric"] == "non_live_ast")].iloc[0]
    assert delta["value"] == pytest.approx(0.25) and delta["n"] == 16


def test_evaluate_model_runs_every_benchmark_on_one_generator(tmp_path):
    from transformers import AutoTokenizer

    from trellis.evaluate.dispatch import evaluate_model

    model = make_tiny_model(tmp_path / "model", chat=True)
    tok = AutoTokenizer.from_pretrained(model)
    calls = []

    class Counting(ScriptedGenerator):
        def generate(self, prompts_, max_new_tokens, batch_size=8, stop=()):
            calls.append(len(prompts_))
            return super().generate(prompts_, max_new_tokens, batch_size, stop)

    gen = Counting(tok, lambda p: "[]")
    benchmarks = {
        "classification": {"examples": 6, "max_new_tokens": 8},
        "humaneval": {"limit": 2, "max_new_tokens": 8, "timeout_s": 5},
        "bfcl": {"categories": ["simple", "irrelevance"], "limit": 3, "max_new_tokens": 8},
    }
    results = evaluate_model(
        model, "sft", "curated", benchmarks, {"resamples": 100, "confidence": 0.95}, 0, generator=gen
    )
    assert set(results) == {"classification", "humaneval", "bfcl_simple", "bfcl_irrelevance", "bfcl_summary"}
    # One generator, every benchmark's prompts; BFCL's categories in one call (3 + 3 prompts).
    assert calls == [6, 2, 6]
    # "[]" is no call: right on irrelevance, wrong on simple.
    assert results["bfcl_summary"]["metrics"]["irrelevance"]["value"] == 1.0
    assert results["bfcl_simple"]["metrics"]["accuracy"]["value"] == 0.0
