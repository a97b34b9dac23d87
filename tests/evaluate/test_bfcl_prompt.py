"""BFCL's prompt mode: bfcl-eval's system prompt, its prompting decoder and its per-entry evaluation,
and BFCL's aggregates as its leaderboard computes them."""

from __future__ import annotations

import inspect
import json

import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model

from trellis.evaluate import bfcl


@pytest.fixture(scope="module")
def simple():
    return bfcl.load_category("simple", mode="prompt")


@pytest.mark.parametrize("category", ["simple", "multiple", "parallel", "parallel_multiple"])
def test_reference_answers_score_100_and_wrong_ones_0(category):
    """A right answer in bfcl-eval's format ("[f(a=1)]") passes its checker on every entry; the
    same answer with a wrong value, a wrong function or no call passes on none."""
    entries = bfcl.load_category(category, mode="prompt")
    for e in entries:
        answer = bfcl.reference_answer(e)
        assert answer.startswith("[") and answer.endswith("]") and "{" not in answer.split("(")[0]
        score = bfcl.score_example(e, answer)
        assert score["correct"] and score["parsed"], (e["id"], answer, score)
        calls = bfcl.reference_calls(e)
        wrong_name = [{c["name"] + "_v2": c["arguments"]} for c in calls]
        assert not bfcl.score_example(e, bfcl.python_calls(wrong_name))["correct"], e["id"]
        assert not bfcl.score_example(e, "[]")["correct"], e["id"]
    accuracy = sum(bfcl.score_example(e, bfcl.reference_answer(e))["correct"] for e in entries) / len(entries)
    assert accuracy == 1.0


def test_prompt_is_bfcl_evals_system_prompt_with_its_docs(simple):
    e = simple[0]
    messages = bfcl.messages(e)
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    # bfcl-eval's default (plaintext, classic style, Python call format, docs as JSON).
    assert system.startswith("You are an expert in composing functions.")
    assert (
        "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]"
        in system
    )
    assert json.dumps(e["prompt_docs"], indent=4) in system
    assert "Note that the provided function is in Python 3 syntax." in system
    assert messages[1]["content"] == bfcl.question_text(e)
    # The entry is not mutated (bfcl-eval's helper edits its arguments in place).
    assert bfcl.messages(e) == messages and e["question"][0]["role"] == "user"
    # The checker sees the docs without the hint, as bfcl-eval's eval runner loads them.
    assert "Python 3 syntax" not in e["functions"][0]["description"]


def test_decoding_typical_outputs(simple):
    e = next(x for x in simple if x["id"] == "simple_python_0")  # calculate_triangle_area(base=10, height=5)
    right = "[calculate_triangle_area(base=10, height=5)]"

    def score(text):
        s = bfcl.score_example(e, text)
        return s["parsed"], s["correct"], s["error_type"]

    assert score(right) == (True, True, None)
    # No brackets, backticks, a trailing newline: bfcl-eval's decoder adds/strips them.
    assert score("calculate_triangle_area(base=10, height=5)") == (True, True, None)
    assert score("```\n" + right + "\n```") == (True, True, None)
    # Reasoning before </think> is dropped, as bfcl-eval's reasoning handlers do.
    assert score("<think>\nbase 10, height 5\n</think>\n\n" + right) == (True, True, None)
    # Prose around the call is not removed by the leaderboard's decoder: a decode failure.
    assert score("Sure! " + right) == (False, False, "ast_decoder:decoder_failed")
    assert score(right + " Hope this helps.") == (False, False, "ast_decoder:decoder_failed")
    # Malformed, and the JSON mode's format, which prompt mode does not accept.
    assert score("[calculate_triangle_area(base=10, height=5") == (False, False, "ast_decoder:decoder_failed")
    assert score('[{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}]')[1] is False
    # Decoded, but wrong: a value, a missing required argument, an extra call.
    assert score("[calculate_triangle_area(base=10, height=6)]")[:2] == (True, False)
    assert score("[calculate_triangle_area(base=10)]")[:2] == (True, False)
    assert score(right[:-1] + ", calculate_triangle_area(base=1, height=1)]")[:2] == (True, False)


@pytest.mark.parametrize(
    "category,right,wrong",
    [
        (
            "simple_java",
            '[GeometryPresentation.createPresentation(controller="mapController", parent="mapArea")]',
            '[GeometryPresentation.createPresentation(controller="mapController", parent="otherArea")]',
        ),
        (
            "simple_javascript",
            '[validateUserInput(inputField="userInputField", isComplete=true)]',
            '[validateUserInput(inputField="userInputField", isComplete=false)]',
        ),
    ],
)
def test_java_and_javascript_are_decoded_and_checked_in_their_language(category, right, wrong):
    (e, *_) = bfcl.load_category(category, 1, mode="prompt")
    # The prompt types every parameter as a string (bfcl-eval's language hint); the checker
    # keeps the language's own types.
    assert {p["type"] for p in e["prompt_docs"][0]["parameters"]["properties"].values()} == {"string"}
    assert "string" not in {p["type"] for p in e["functions"][0]["parameters"]["properties"].values()}
    assert bfcl.score_example(e, right)["correct"]
    assert not bfcl.score_example(e, wrong)["correct"]


@pytest.mark.parametrize("category", bfcl.RELEVANCE)
def test_relevance_in_prompt_mode(category):
    entries = bfcl.load_category(category, 20, mode="prompt")
    call = "[" + (entries[0]["functions"][0]["name"] if entries[0]["functions"] else "lookup") + "(x=1)]"
    expects_call = category == "live_relevance"
    for e in entries:
        assert bfcl.score_example(e, bfcl.reference_answer(e))["correct"], e["id"]
    # Prose and an empty list are "no call"; a decodable call is a call.
    assert bfcl.score_example(entries[0], "None of the functions can be used.")["correct"] is not expects_call
    assert bfcl.score_example(entries[0], "[]")["correct"] is not expects_call
    assert bfcl.score_example(entries[0], call)["correct"] is expects_call


def test_modes_name_their_results_and_keep_json_as_it_was():
    cfg = {"categories": ["simple", "simple_java", "irrelevance"], "modes": ["prompt", "json"]}
    assert bfcl.mode_categories(cfg) == {
        "prompt": ["simple", "simple_java", "irrelevance"],
        "json": ["simple", "irrelevance"],  # Java runs in prompt mode only
    }
    assert bfcl.result_names(cfg) == [
        "bfcl_prompt_simple",
        "bfcl_prompt_simple_java",
        "bfcl_prompt_irrelevance",
        "bfcl_prompt_summary",
        "bfcl_simple",
        "bfcl_irrelevance",
        "bfcl_summary",
    ]
    assert bfcl.split_benchmark("prompt_live_simple") == ("prompt", "live_simple")
    assert bfcl.split_benchmark("live_simple") == ("json", "live_simple")
    # Without modes: the JSON mode, as before modes existed.
    assert bfcl.result_names({"categories": ["simple"]}) == ["bfcl_simple"]
    with pytest.raises(ValueError, match="prompt mode only"):
        bfcl.result_names({"categories": ["simple_java"], "modes": ["json"]})
    with pytest.raises(ValueError, match="unknown BFCL mode"):
        bfcl.result_names({"categories": ["simple"], "modes": ["python"]})


def _records(category, accuracies):
    return [{"id": f"{category}_{i}", "scores": {"accuracy": float(a)}} for i, a in enumerate(accuracies)]


def _weighted(out, per_category):
    scores = {r["id"]: r["scores"]["accuracy"] for rs in per_category.values() for r in rs}
    w = out["weights"]
    return sum(scores[i] * w[i] for i in w) / sum(w.values())


def test_aggregate_as_the_leaderboard_computes_it():
    per_category = {
        "simple_python": _records("simple_python", [1, 1, 1, 0]),  # 0.75
        "simple_java": _records("simple_java", [1, 0]),  # 0.5
        "simple_javascript": _records("simple_javascript", [0, 0, 0, 0, 1]),  # 0.2
        "multiple": _records("multiple", [1, 0]),  # 0.5
        "parallel": _records("parallel", [0, 0, 0]),  # 0.0
        "parallel_multiple": _records("parallel_multiple", [1]),  # 1.0
        "live_simple": _records("live_simple", [1, 0, 0]),
        "live_multiple": _records("live_multiple", [1]),
        "live_parallel": _records("live_parallel", [1]),
        "live_parallel_multiple": _records("live_parallel_multiple", [0, 0]),
        "irrelevance": _records("irrelevance", [1, 0]),  # 0.5
        "live_irrelevance": _records("live_irrelevance", [1, 1, 1, 0]),  # 0.75
    }
    out = bfcl.summary(per_category, "prompt")
    simple = (0.75 + 0.5 + 0.2) / 3
    non_live = (simple + 0.5 + 0.0 + 1.0) / 4
    live = 3 / 7  # weighted by size
    irrelevance = (0.5 + 0.75) / 2
    expected = {
        "non_live_ast": non_live,
        "non_live_ast_python": (0.75 + 0.5 + 0.0 + 1.0) / 4,
        "live_ast": live,
        "irrelevance": 0.5,
        "live_irrelevance": 0.75,
        "irrelevance_detection": irrelevance,
        # The leaderboard's weights 10/10/10 on the three single-turn sections.
        "overall_offline": (non_live + live + irrelevance) / 3,
    }
    assert set(out) == set(expected)  # live_relevance was not run
    for name, value in expected.items():
        assert out[name]["value"] == pytest.approx(value), name
        # The examples' weighted mean is the aggregate (what bootstrap CIs and deltas resample).
        assert _weighted(out[name], per_category) == pytest.approx(value), name
    # Without Java and JavaScript: only the Python part of Non-Live AST, and no overall.
    python_only = {k: v for k, v in per_category.items() if k not in ("simple_java", "simple_javascript")}
    assert set(bfcl.summary(python_only, "prompt")) == set(expected) - {"non_live_ast", "overall_offline"}
    # The JSON mode keeps the sections it always had.
    assert set(bfcl.summary(per_category, "json")) == {
        "non_live_ast",
        "live_ast",
        "irrelevance",
        "live_irrelevance",
    }
    assert bfcl.summary(per_category, "json")["non_live_ast"]["value"] == pytest.approx(
        expected["non_live_ast_python"]
    )


def test_overall_weights_are_bfcl_evals():
    """The overall's weights are written in bfcl-eval's generate_leaderboard_csv: fail if they change."""
    from bfcl_eval.eval_checker.eval_runner_helper import generate_leaderboard_csv

    source = inspect.getsource(generate_leaderboard_csv)
    weights = bfcl.LEADERBOARD_OVERALL_WEIGHTS
    listed = ", ".join(str(weights[k]) for k in ("non_live", "live", "irrelevance", "multi_turn", "agentic"))
    assert f"[{listed}]" in source
    # ... in the order of the sections they weigh.
    order = [
        "overall_accuracy_non_live,",
        "overall_accuracy_live,",
        "total_irrelevance,",
        "overall_accuracy_multi_turn,",
    ]
    call = source[source.index("calculate_percentage_weighted_accuracy(") :]
    assert [call.index(name) for name in order] == sorted(call.index(name) for name in order)


def test_evaluate_bfcl_prompt_and_json_modes_on_one_model(tmp_path):
    from transformers import AutoTokenizer

    from trellis.evaluate.dispatch import evaluate_bfcl
    from trellis.structured import prompts

    model = make_tiny_model(tmp_path / "model", chat=True)
    tok = AutoTokenizer.from_pretrained(model)
    categories = ["simple", "multiple", "parallel", "parallel_multiple", "irrelevance"]
    answers = {}
    for mode in ("prompt", "json"):
        for c in categories:
            for e in bfcl.load_category(c, 3, mode=mode):
                answers[prompts.build_prompt("sft", tok, bfcl.messages(e), [])] = bfcl.reference_answer(e)
    cfg = {"categories": categories, "modes": ["prompt", "json"], "limit": 3, "max_new_tokens": 16}
    boot = {"resamples": 100, "confidence": 0.95}
    results = evaluate_bfcl(
        model, "sft", "curated", cfg, boot, 0, generator=ScriptedGenerator(tok, answers.get)
    )
    assert set(results) == set(bfcl.result_names(cfg))
    # Without Java and JavaScript, prompt mode's Non-Live AST says it is the Python part.
    assert results["bfcl_prompt_summary"]["metrics"]["non_live_ast_python"]["value"] == 1.0
    assert results["bfcl_summary"]["metrics"]["non_live_ast"]["value"] == 1.0
    assert results["bfcl_prompt_simple"]["data"]["mode"] == "prompt"
    assert results["bfcl_simple"]["data"]["output_format"] == "json_calls"
    # Each mode's prompt is its own: the prompt mode asks for Python calls.
    assert results["bfcl_prompt_simple"]["examples"][0]["output"].startswith("[calculate_triangle_area(")

    # A base model gets few-shot examples whose answers are in its mode's format.
    base_prompts = []

    def record(p):
        base_prompts.append(p)
        return "[]"

    evaluate_bfcl(
        model,
        "base",
        "curated",
        {**cfg, "categories": ["simple"], "modes": ["prompt"]},
        boot,
        0,
        generator=ScriptedGenerator(tok, record),
    )
    # Two shots (TRAIN pool), each answered as "[name(arg=value)]", never as JSON calls.
    assert base_prompts[0].count("Output:\n[") == 2 and '"arguments"' not in base_prompts[0]
