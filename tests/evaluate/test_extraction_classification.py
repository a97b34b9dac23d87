"""Structured extraction and classification benchmarks: eval-pool data, scoring, evaluate()."""

from __future__ import annotations

import json

import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model  # the tests dir is on sys.path

from trellis.evaluate import classification as cl
from trellis.evaluate import extraction as ex
from trellis.evaluate.dispatch import evaluate
from trellis.structured import pools as structured_pool
from trellis.structured.disjoint import check_disjoint
from trellis.structured.examples import build_sft

BOOT = {"resamples": 200, "confidence": 0.95}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat=True)


def test_examples_are_deterministic_nested_and_unseen():
    a = ex.build(30, 7)
    assert a == ex.build(30, 7) and a[:10] == ex.build(10, 7) and a != ex.build(30, 8)
    assert len({e["name"] for e in a}) == 30
    assert all(e["content"].startswith("Record notes: ") for e in a)
    train = structured_pool.schemas("train", 7, 300)
    check_disjoint({s["name"] for s in train}, {e["name"] for e in a})
    c = cl.build(40, 7)
    assert c == cl.build(40, 7) and c[:11] == cl.build(11, 7)
    # Tasks and labels are balanced (round robin over every task's labels).
    pairs = [(e["task"], e["label"]) for e in c]
    assert len(set(pairs)) == sum(len(t["cues"]) for t in cl.TASKS.values()) == 11
    assert max(pairs.count(p) for p in set(pairs)) - min(pairs.count(p) for p in set(pairs)) <= 1
    for e in c:
        assert any(cue in e["content"] for cue in cl.TASKS[e["task"]]["cues"][e["label"]])
        assert e["label"] in e["schema"]["properties"]["label"]["enum"]


def test_reference_answers_score_perfectly():
    for e in ex.build(60, 3):
        assert ex.example_scores(ex.score_example(e, ex.reference_answer(e))) == {
            "field_accuracy": 1.0,
            "schema_valid_rate": 1.0,
        }
    assert ex.metrics([ex.score_example(e, ex.reference_answer(e)) for e in ex.build(60, 3)]) == {
        "field_accuracy": 1.0,
        "schema_valid_rate": 1.0,
    }
    examples = cl.build(33, 3)
    for e in examples:
        for text in (cl.reference_answer(e), f"Sure:\n```json\n{cl.reference_answer(e)}\n```"):
            assert cl.example_scores(cl.score_example(e, text)) == {"label_accuracy": 1.0, "parse_rate": 1.0}


def test_wrong_answers_fail():
    for e in ex.build(30, 3):
        required = e["schema"]["required"][0]
        missing = {k: v for k, v in e["instance"].items() if k != required}
        score = ex.score_example(e, json.dumps(missing))
        assert not score["valid"] and score["field_accuracy"] < 1.0, e["id"]
        assert ex.example_scores(ex.score_example(e, "not json")) == {
            "field_accuracy": 0.0,
            "schema_valid_rate": 0.0,
        }
    for e in cl.build(22, 3):
        wrong = next(label for label in e["schema"]["properties"]["label"]["enum"] if label != e["label"])
        assert cl.example_scores(cl.score_example(e, json.dumps({"label": wrong}))) == {
            "label_accuracy": 0.0,
            "parse_rate": 1.0,
        }
        assert cl.score_example(e, json.dumps({"category": e["label"]}))["correct"] is False
        assert cl.score_example(e, e["label"]) == {
            "parsed": False,
            "correct": False,
            "predicted": None,
            "error": "no JSON object or array found",
        }
        assert cl.score_example(e, json.dumps([{"label": e["label"]}]))["parsed"] is False


@pytest.mark.parametrize("kind", ["extraction", "classification"])
def test_evaluate_scripted_and_real(model, kind):
    from transformers import AutoTokenizer

    bench = ex if kind == "extraction" else cl
    examples = bench.build(12, 5)
    answers = {e["content"]: bench.reference_answer(e) for e in examples}

    def perfect(prompt):
        # The query's content is the last one in the prompt (shots come first).
        return answers[max(answers, key=lambda c: prompt.rfind(c))]

    tok = AutoTokenizer.from_pretrained(model)
    cfg = {"examples": 12, "max_new_tokens": 32}
    gen = ScriptedGenerator(tok, perfect)
    result = evaluate(kind, model, "sft", "curated", None, cfg, BOOT, 5, generator=gen)
    assert result["n"] == 12 and result["benchmark"] == kind and set(result["metrics"]) == set(bench.METRICS)
    for m in bench.METRICS:
        assert result["metrics"][m] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert gen.prompts[0].startswith("### System:") and result["generation"]["shots"] == []

    # Base: two few-shot shots that are rows of the SFT data for the same task.
    gen = ScriptedGenerator(tok, perfect)
    result = evaluate(kind, model, "base", "curated", None, cfg, BOOT, 5, generator=gen)
    assert result["metrics"][bench.METRICS[0]]["value"] == 1.0
    sft_items = {r["item"] for r in build_sft(80, 5) if r["task"] == kind}
    assert len(result["generation"]["shots"]) == 2 and set(result["generation"]["shots"]) <= sft_items
    assert gen.prompts[0].count("Output:\n") == 3

    broken = ScriptedGenerator(tok, lambda p: "{not json")
    result = evaluate(kind, model, "dpo", "uncurated", None, cfg, BOOT, 5, generator=broken)
    assert all(v == 0.0 for e in result["examples"] for v in e["scores"].values())

    # The real tiny model: random text, every example scored.
    result = evaluate(kind, model, "sft", "curated", None, {"examples": 4, "max_new_tokens": 6}, BOOT, 5)
    assert result["n"] == 4 and all(set(e["scores"]) == set(bench.METRICS) for e in result["examples"])
    for m in result["metrics"].values():
        assert m["ci_low"] <= m["value"] <= m["ci_high"]
