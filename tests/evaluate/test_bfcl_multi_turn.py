"""BFCL's multi-turn categories: bfcl-eval's agent loop for prompting models on its simulators, its
multi-turn checker, and the evaluate job's batched generation of the steps."""

from __future__ import annotations

import ast
import copy

import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model

from trellis.evaluate import bfcl
from trellis.evaluate import bfcl_multi_turn as mt
from trellis.report import plan
from trellis.structured import prompts


@pytest.fixture(scope="module")
def sample():
    """Eight entries of each category, a seeded sample (the long-context ones included)."""
    return {c: bfcl.load_category(c, 8, seed=0, mode="prompt") for c in bfcl.MULTI_TURN}


@pytest.fixture(scope="module")
def base(sample):
    return sample["multi_turn_base"]


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat=True)


def _leaked() -> list[str]:
    """Simulator instances of ours left in bfcl-eval's executor globals."""
    return [k for k in vars(mt._api()["utils"]) if k.startswith("trellis_")]


def _scripted(entries, answer):
    """A ``generate`` answering each step with answer(reference steps of the turn, request)."""
    reference = {e["id"]: mt.reference_turns(e) for e in entries}

    def generate(requests):
        return [answer(reference[r.entry_id][r.turn], r) for r in requests]

    return generate


def test_reference_answers_score_correct_in_every_category(sample):
    for category, entries in sample.items():
        records = mt.run(entries, mt.reference_model(entries))
        assert [r["correct"] for r in records] == [True] * len(entries), (category, records)
        for e, r in zip(entries, records):
            assert r["turns"] == r["turns_total"] == len(e["possible_answer"])
            assert not r["force_terminated"] and r["error_type"] is None
            # Every turn answered: its calls in one step and "[]" after them, or "[]" alone.
            assert r["steps"] == sum(2 if calls else 1 for calls in e["possible_answer"])
    assert _leaked() == []


def test_calls_one_a_step_are_judged_across_the_turns_steps(sample):
    """The checker judges a turn by all of its steps: the same calls made one a step also pass."""

    def one_a_step(steps, r):
        calls = ast.parse(steps[0], mode="eval").body.elts if steps[0] != "[]" else []
        return f"[{ast.unparse(calls[r.step])}]" if r.step < len(calls) else "[]"

    for category in ("multi_turn_base", "multi_turn_miss_func"):
        entries = sample[category]
        records = mt.run(entries, _scripted(entries, one_a_step))
        assert all(r["correct"] for r in records), category


def test_wrong_or_missing_calls_score_wrong(sample):
    entries = sample["multi_turn_base"] + sample["multi_turn_miss_param"]

    def drop_last_call(steps, r):
        # The first turn that makes calls leaves out its last call; everything else is right.
        first = next(i for i, calls in enumerate(ref_calls[r.entry_id]) if calls)
        text = steps[r.step] if r.step < len(steps) else "[]"
        if r.turn == first and r.step == 0:
            calls = ast.parse(text, mode="eval").body.elts[:-1]
            text = "[" + ", ".join(ast.unparse(c) for c in calls) + "]"
        return text

    ref_calls = {e["id"]: e["possible_answer"] for e in entries}
    records = mt.run(entries, _scripted(entries, drop_last_call))
    assert not any(r["correct"] for r in records)
    assert {r["error_type"] for r in records} <= {
        "multi_turn:instance_state_mismatch",
        "multi_turn:execution_response_mismatch",
        "multi_turn:empty_turn_model_response",
    }
    # Prose, malformed calls, the JSON mode's format and no call at all: wrong, one step a turn.
    for text in ("I cannot help with that.", "[ls(a=True", '[{"name": "ls", "arguments": {}}]', "[]"):
        records = mt.run(entries, lambda requests, text=text: [text] * len(requests))
        assert not any(r["correct"] for r in records), text
        assert all(r["steps"] == r["turns_total"] for r in records), text
    assert _leaked() == []


def test_json_mode_is_refused_naming_the_config_key(base):
    with pytest.raises(ValueError, match=r"prompt mode only.*evaluate\.bfcl\.modes"):
        bfcl.check_category_mode("multi_turn_base", "json")
    with pytest.raises(ValueError, match=r"evaluate\.bfcl\.modes"):
        bfcl.mode_categories({"categories": ["multi_turn_long_context"], "modes": ["json"]})
    # Both modes: multi-turn runs in prompt mode only.
    cfg = {"categories": ["simple", "multi_turn_base"], "modes": ["prompt", "json"]}
    assert bfcl.mode_categories(cfg) == {"prompt": ["simple", "multi_turn_base"], "json": ["simple"]}
    # A JSON-mode entry is not asked, nor scored as one prompt and one answer.
    json_entry = {**base[0], "mode": "json"}
    with pytest.raises(ValueError, match=r"evaluate\.bfcl\.modes"):
        mt.run([json_entry], mt.reference_model(base[:1]))
    with pytest.raises(ValueError, match="multi-turn"):
        bfcl.score_example(base[0], "[]")
    with pytest.raises(ValueError, match="multi-turn"):
        bfcl.messages(base[0])


def test_a_turn_past_the_step_limit_is_force_quit(base):
    entries = base[:2]
    seen = []

    def always_calls(requests):
        seen.extend(requests)
        return ["[pwd()]" for _ in requests]

    records = mt.run(entries, always_calls, step_limit=2)
    for r in records:
        # Steps 0, 1, 2 made calls; the third is one too many: the entry ends in its first turn.
        assert (r["steps"], r["turns"], r["force_terminated"]) == (3, 1, True)
        assert not r["correct"] and r["error_type"] == "multi_turn:force_terminated"
    # Each step after the first sees the previous step's call and its result (bfcl-eval's
    # format_execution_results_prompting, as a user message).
    second = next(q for q in seen if q.step == 1)
    assert [m["role"] for m in second.messages[-2:]] == ["assistant", "user"]
    assert second.messages[-2]["content"] == "[pwd()]"
    assert second.messages[-1]["content"].startswith("[{'role': 'tool', 'name': 'pwd()', 'content': ")
    # Without a limit, bfcl-eval's own.
    assert mt.default_step_limit() == 20
    with pytest.raises(ValueError, match="step_limit"):
        mt.run(entries, always_calls, step_limit=-1)
    assert _leaked() == []


def test_two_runs_of_one_entry_do_not_share_simulator_state(base):
    """Each conversation keys bfcl-eval's simulator instances afresh: a second run of the same entry
    (or the same entry twice in one run) starts from the initial state, and nothing is left."""
    entry = next(e for e in base if "GorillaFileSystem" in e["involved_classes"])
    runs = []
    for entries in ([entry], [entry], [entry, copy.deepcopy(entry)]):
        seen = []
        reference = mt.reference_model(entries)

        def generate(requests, seen=seen, reference=reference):
            seen.append([q.messages for q in requests])
            return reference(requests)

        records = mt.run(entries, generate)
        assert all(r["correct"] for r in records)
        assert _leaked() == []
        runs.append(seen)
    # The execution results fed back are the same every time (a state carried over would
    # answer, e.g., "file already exists").
    first = [step[0] for step in runs[0]]
    assert [step[0] for step in runs[1]] == first
    assert [step[0] for step in runs[2]] == [step[1] for step in runs[2]] == first


def test_state_is_released_when_the_model_fails(base):
    def broken(requests):
        if requests[0].step == 1:
            raise RuntimeError("out of memory")
        return mt.reference_model(base[:2])(requests)

    with pytest.raises(RuntimeError, match="out of memory"):
        mt.run(base[:2], broken)
    assert _leaked() == []
    with pytest.raises(ValueError, match="2 requests"):
        mt.run(base[:2], lambda requests: ["[]"])
    assert _leaked() == []


@pytest.mark.parametrize(
    "call",
    [
        "open(file='pwned', mode='w')",
        "__import__(name='os')",
        "importlib.import_module(name='os')",
        "json.loads(s='1')",
        "globals()",
    ],
)
def test_calls_that_would_run_python_itself_are_refused(base, call, tmp_path, monkeypatch):
    entry = base[0]
    monkeypatch.chdir(tmp_path)
    handler = mt._Handler(entry)
    with pytest.raises(ValueError, match="Python's, not a function of"):
        handler.decode_execute(f"[{call}]")
    # In the loop the step does not decode: the turn ends and nothing is executed.
    records = mt.run([entry], lambda requests: [f"[{call}]" for _ in requests])
    assert not records[0]["correct"] and records[0]["output"][0] == [f"[{call}]"]
    assert not (tmp_path / "pwned").exists()


def test_the_guard_is_needed_and_leaves_api_calls_alone(base, tmp_path, monkeypatch):
    entry = next(e for e in base if "GorillaFileSystem" in e["involved_classes"])
    handler = mt._Handler(entry)
    # The simulators' own functions, and unknown ones (bfcl-eval answers "not defined").
    for call in ("ls(a=True)", "cd(folder='document')", "no_such_function(x=1)"):
        assert handler.decode_execute(f"[{call}]") == [call]
    # bfcl-eval's executor alone runs a builtin named in a call string: it wrote the file.
    monkeypatch.chdir(tmp_path)
    key = "trellis_guard_test"
    try:
        mt._api()["execute"](
            ["open(file='pwned', mode='w')"], {}, entry["involved_classes"], key, entry["id"]
        )
    finally:
        mt.release(key)
    assert (tmp_path / "pwned").exists()


def test_held_out_functions_come_back_as_bfcl_evals_user_prompt(sample):
    entry = next(e for e in sample["multi_turn_miss_func"] if e["missed_function"])
    turn, docs = next(iter(entry["missed_function"].items()))
    assert entry["question"][int(turn)] == []
    seen = []

    def generate(requests):
        seen.extend(requests)
        return mt.reference_model([entry])(requests)

    assert mt.run([entry], generate)[0]["correct"]
    request = next(r for r in seen if r.turn == int(turn) and r.step == 0)
    expected = mt._api()["additional_function_prompt"].format(functions=docs)
    assert request.messages[-1] == {"role": "user", "content": expected}
    # The held-out docs are not in the first prompt; the rest are, in bfcl-eval's system prompt.
    system = seen[0].messages[0]
    assert system["role"] == "system" and system["content"].startswith(
        "You are an expert in composing functions."
    )
    for doc in docs:
        assert f'"name": "{doc["name"]}"' not in system["content"]
    assert all(f'"name": "{d["name"]}"' in system["content"] for d in entry["prompt_docs"])


def test_prompt_text_in_each_stage_format(tiny_chat_model):
    from transformers import AutoTokenizer

    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "[ls()]"},
        {"role": "user", "content": "RESULTS"},
    ]
    shots = [([{"role": "user", "content": "SHOT"}], "[f(a=1)]")]
    # Base: the system text, the shots, the earlier exchanges as further pairs, then the query.
    text = mt.prompt_text("base", None, messages, shots)
    pairs = ["Input:\nSHOT\nOutput:\n[f(a=1)]", "Input:\nQ1\nOutput:\n[ls()]", "Input:\nRESULTS\nOutput:\n"]
    assert text == "\n\n".join(["SYS", *pairs])
    with pytest.raises(ValueError, match="end with a user message"):
        mt.prompt_text("base", None, messages[:3], shots)
    # SFT/DPO: the chat template over the whole conversation, no shots.
    tok = AutoTokenizer.from_pretrained(tiny_chat_model)
    assert mt.prompt_text("sft", tok, messages, shots) == prompts.chat_prompt(tok, messages)


def test_summary_multi_turn_is_bfcl_evals_unweighted_mean():
    from bfcl_eval.eval_checker.eval_runner_helper import (
        calculate_percentage_weighted_accuracy,
        calculate_unweighted_accuracy,
        calculate_weighted_accuracy,
    )

    def records(category, accuracies):
        return [{"id": f"{category}_{i}", "scores": {"accuracy": float(a)}} for i, a in enumerate(accuracies)]

    def stats(rs):
        acc = sum(r["scores"]["accuracy"] for r in rs) / len(rs)
        return {"accuracy": acc, "total_count": len(rs), "display_accuracy": acc}

    multi_turn = {
        "multi_turn_base": records("multi_turn_base", [1, 1, 0, 0]),  # 0.5
        "multi_turn_miss_func": records("multi_turn_miss_func", [1]),  # 1.0
        "multi_turn_miss_param": records("multi_turn_miss_param", [0, 0, 0]),  # 0.0
        "multi_turn_long_context": records("multi_turn_long_context", [1, 0, 0, 0, 0]),  # 0.2
    }
    half = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple")
    single = {c: records(c, [1, 0]) for c in half}
    single.update(
        {
            "simple_java": records("simple_java", [1]),
            "simple_javascript": records("simple_javascript", [0]),
            "live_parallel": records("live_parallel", [1, 1, 1]),
            "live_parallel_multiple": records("live_parallel_multiple", [0]),
            "irrelevance": records("irrelevance", [1, 1, 1, 0]),
            "live_irrelevance": records("live_irrelevance", [0, 1]),
        }
    )
    out = bfcl.summary({**single, **multi_turn}, "prompt")
    expected = calculate_unweighted_accuracy([stats(rs) for rs in multi_turn.values()])["accuracy"]
    assert expected == pytest.approx((0.5 + 1.0 + 0.0 + 0.2) / 4)  # not the pooled 4/13
    assert out["multi_turn"]["value"] == pytest.approx(expected)
    assert out["multi_turn"]["categories"] == list(bfcl.MULTI_TURN)
    # The overall with multi-turn: bfcl-eval's weighting of the sections that ran, 10/10/10/30.
    simple = calculate_unweighted_accuracy(
        [stats(single[c]) for c in ("simple_python", "simple_java", "simple_javascript")]
    )
    non_live = calculate_unweighted_accuracy(
        [simple] + [stats(single[c]) for c in ("multiple", "parallel", "parallel_multiple")]
    )
    live_categories = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
    live = calculate_weighted_accuracy([stats(single[c]) for c in live_categories])
    irrelevance = calculate_unweighted_accuracy(
        [stats(single[c]) for c in ("irrelevance", "live_irrelevance")]
    )
    mean = {"accuracy": expected, "total_count": 13, "display_accuracy": expected}
    overall = calculate_percentage_weighted_accuracy([non_live, live, irrelevance, mean], [10, 10, 10, 30])
    assert out["overall_offline_with_multi_turn"]["value"] == pytest.approx(overall["accuracy"])
    single_turn = (non_live["accuracy"] + live["accuracy"] + irrelevance["accuracy"]) / 3
    assert out["overall_offline"]["value"] == pytest.approx(single_turn)
    # The examples' weighted means are the aggregates (what bootstrap CIs and deltas resample).
    scores = {r["id"]: r["scores"]["accuracy"] for rs in {**single, **multi_turn}.values() for r in rs}
    for name in ("multi_turn", "overall_offline_with_multi_turn"):
        w = out[name]["weights"]
        assert sum(scores[i] * w[i] for i in w) / sum(w.values()) == pytest.approx(out[name]["value"])
    # Three of the four categories: no multi-turn section, and the single-turn overall alone.
    partial = {k: v for k, v in {**single, **multi_turn}.items() if k != "multi_turn_long_context"}
    assert {"multi_turn", "overall_offline_with_multi_turn"}.isdisjoint(bfcl.summary(partial, "prompt"))
    assert "overall_offline" in bfcl.summary(partial, "prompt")


def test_multi_turn_section_is_the_one_bfcl_eval_computes():
    """generate_leaderboard_csv's Multi Turn Acc is the unweighted mean of these four categories."""
    import inspect

    from bfcl_eval.eval_checker.eval_runner_helper import generate_leaderboard_csv

    source = inspect.getsource(generate_leaderboard_csv)
    call = source[source.index("overall_accuracy_multi_turn = calculate_unweighted_accuracy(") :]
    call = call[: call.index(")")]
    assert [c for c in bfcl.MULTI_TURN if c in call] == list(bfcl.MULTI_TURN)


def test_plan_step_counts_are_the_data_s():
    """trellis.report.plan prices a multi-turn category by its model steps: recount them."""
    for category in bfcl.MULTI_TURN:
        entries = bfcl.load_category(category, mode="prompt")
        steps = sum(len(calls) + 1 for e in entries for calls in e["possible_answer"])
        assert plan.BFCL_MULTI_TURN_STEPS[category] == steps, category
        assert plan.BFCL_SIZES.get(category) is None  # not also priced one prompt an entry


def test_evaluate_bfcl_asks_every_step_in_batches_and_writes_the_records(tiny_chat_model):
    from transformers import AutoTokenizer

    from trellis.evaluate.dispatch import evaluate_bfcl

    tok = AutoTokenizer.from_pretrained(tiny_chat_model)
    limit = 2
    entries = [e for c in bfcl.MULTI_TURN for e in bfcl.load_category(c, limit, mode="prompt")]
    # The prompts the loop will render, each answered as the reference answers it.
    answers = {}
    reference = mt.reference_model(entries)

    def record(requests):
        texts = reference(requests)
        for q, t in zip(requests, texts):
            answers[mt.prompt_text("sft", tok, q.messages, [])] = t
        return texts

    mt.run(entries, record)
    calls = []

    def answer(prompt):
        return answers[prompt]

    class Recording(ScriptedGenerator):
        def generate(self, prompts_, max_new_tokens, batch_size=8, stop=()):
            calls.append(len(prompts_))
            return super().generate(prompts_, max_new_tokens, batch_size, stop)

    single = ["simple", "irrelevance"]
    cfg = {
        "categories": single + list(bfcl.MULTI_TURN),
        "modes": ["prompt", "json"],
        "limit": limit,
        "max_new_tokens": 16,
    }
    boot = {"resamples": 50, "confidence": 0.95}
    single_answers = {}
    for mode in ("prompt", "json"):
        for c in single:
            for e in bfcl.load_category(c, limit, mode=mode):
                prompt = prompts.build_prompt("sft", tok, bfcl.messages(e), [])
                single_answers[prompt] = bfcl.reference_answer(e)
    answers.update(single_answers)
    results = evaluate_bfcl(tiny_chat_model, "sft", "curated", cfg, boot, 0, generator=Recording(tok, answer))
    assert set(results) == set(bfcl.result_names(cfg))
    assert not any(name.startswith("bfcl_multi_turn") for name in results)  # JSON mode: not run

    for category in bfcl.MULTI_TURN:
        r = results[f"bfcl_prompt_{category}"]
        assert r["n"] == limit and r["metrics"]["accuracy"]["value"] == 1.0
        assert r["data"]["mode"] == "prompt" and r["data"]["step_limit"] == 20
        ex = r["examples"][0]
        assert ex["correct"] is True and ex["scores"] == {"accuracy": 1.0} and ex["error"] is None
        assert isinstance(ex["output"], list) and all(isinstance(t, list) for t in ex["output"])
        assert ex["turns"] == ex["turns_total"] == len(ex["output"])
        assert r["generation"]["steps"] == sum(e["steps"] for e in r["examples"])
        # Every generate call advanced all unfinished entries one step: the first asks both.
        assert r["generation"]["generate_calls"] == max(e["steps"] for e in r["examples"])
    assert limit in calls
    summary = results["bfcl_prompt_summary"]
    assert summary["metrics"]["multi_turn"]["value"] == 1.0
    assert summary["data"]["categories"]["multi_turn"] == list(bfcl.MULTI_TURN)
    assert "overall_offline_with_multi_turn" not in summary["metrics"]  # live categories not run

    # The single-turn results are what they are without multi-turn categories.
    alone = evaluate_bfcl(
        tiny_chat_model,
        "sft",
        "curated",
        {**cfg, "categories": single},
        boot,
        0,
        generator=ScriptedGenerator(tok, single_answers.get),
    )
    for name, r in alone.items():
        if name.endswith("summary"):
            continue
        assert {k: v for k, v in results[name].items() if k != "timing"} == {
            k: v for k, v in r.items() if k != "timing"
        }, name


def test_a_real_model_runs_the_loop_with_a_step_limit(tiny_chat_model):
    """The tiny random model through Generator: prompts cut to its context, garbage scored wrong."""
    from trellis.evaluate.dispatch import evaluate
    from trellis.evaluate.generation import Generator

    gen = Generator(tiny_chat_model, device="cpu")
    cfg = {"limit": 1, "max_new_tokens": 4, "multi_turn_step_limit": 1}
    boot = {"resamples": 20, "confidence": 0.95}
    for stage in ("base", "sft"):
        name = "bfcl_prompt_multi_turn_base"
        r = evaluate(name, tiny_chat_model, stage, "curated", None, cfg, boot, 0, generator=gen)
        assert r["n"] == 1 and r["data"]["step_limit"] == 1
        assert r["metrics"]["accuracy"]["value"] == 0.0
        assert r["generation"]["truncated_prompts"] > 0  # the docs alone exceed its 4,096 tokens
        assert r["generation"]["prompt"] == ("few-shot completion" if stage == "base" else "chat template")
    with pytest.raises(ValueError, match=r"evaluate\.bfcl\.modes"):
        evaluate("bfcl_multi_turn_base", tiny_chat_model, "sft", "curated", None, cfg, boot, 0, generator=gen)
    assert _leaked() == []
