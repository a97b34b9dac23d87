"""JSON Schema compliance suite: deterministic suite, scoring, greedy generation, evaluate()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trellis.evaluate import json_schema as js
from trellis.evaluate.dispatch import evaluate
from trellis.structured import pools as structured_pool
from trellis.structured import prompts
from trellis.structured.disjoint import check_disjoint, schema_hash

EOS, PAD = "<|endoftext|>", "<|padding|>"


def make_tiny_model(path: Path, chat: bool = False) -> Path:
    """A random 1-layer LlamaForCausalLM with a small byte-level BPE tokenizer (no network)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [json.dumps(s["schema"]) + " " + s["content"] for s in structured_pool.schemas("train", 0, 20)]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOS, PAD], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    if chat:
        fast.chat_template = prompts.CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


class ScriptedGenerator:
    """Stands in for trellis.evaluate.generation.Generator: answers each prompt from a lookup."""

    device = "cpu"
    truncated = 0

    def __init__(self, tokenizer, answer_for):
        self.tokenizer = tokenizer
        self.answer_for = answer_for
        self.prompts: list[str] = []

    def generate(self, prompts_, max_new_tokens, batch_size=8, stop=()):
        self.prompts = list(prompts_)
        self.stop = list(stop)
        self.truncated_rows = [False] * len(self.prompts)  # as Generator: which prompts were cut
        return [self.answer_for(p) for p in prompts_]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def locked():
    examples, _ = js.load_locked()
    return examples


@pytest.fixture(scope="module")
def suite(locked):
    return js.select(locked, 24)


def test_locked_suite_is_reproduced_byte_for_byte(tmp_path):
    # The committed suite is what the generator writes today; if this fails, the generator (or a
    # source package's data) changed after the suite was locked: fix that, do not re-lock lightly.
    digest = js.write_suite(tmp_path / "regen.jsonl", js.LOCKED_SIZE, js.LOCKED_SEED)
    assert (tmp_path / "regen.jsonl").read_bytes() == js.LOCKED_SUITE.read_bytes()
    assert js.sidecar_path(js.LOCKED_SUITE).read_text() == f"{digest}  {js.LOCKED_SUITE.name}\n"


def test_locked_suite_shape(locked):
    from jsonschema import Draft202012Validator

    assert len(locked) == js.LOCKED_SIZE == 500
    counts = {}
    for ex in locked:
        counts[ex["category"]] = counts.get(ex["category"], 0) + 1
    assert counts == {
        "adversarial": 84,
        "arrays_enums": 84,
        "conditional": 83,
        "flat": 83,
        "nested": 83,
        "real_world": 83,
    }
    assert [ex["id"] for ex in locked] == [f"json-{i:04d}" for i in range(500)]
    assert len({ex["name"] for ex in locked}) == 500
    assert len({schema_hash(ex["schema"]) for ex in locked}) == 500
    real = [ex for ex in locked if ex["category"] == "real_world"]
    assert {ex["source"]["package"] for ex in real} == {"bfcl-eval", "nbformat"}
    for ex in locked:
        Draft202012Validator.check_schema(ex["schema"])
        assert ex["instruction"] and ex["content"] and ex["instance"], ex["id"]
        if ex["category"] != "real_world":
            assert ex["source"] == {
                "generator": "trellis.structured_pool",
                "pool": "eval",
            }  # its name when locked
    # Every eval-pool schema is unseen: no train schema name or hash equals one of them.
    train = structured_pool.schemas("train", js.LOCKED_SEED, 300)
    check_disjoint({s["name"] for s in train}, {ex["name"] for ex in locked})
    check_disjoint({schema_hash(s["schema"]) for s in train}, {schema_hash(ex["schema"]) for ex in locked})


def test_subsets_are_stratified_nested_and_locked(tmp_path, locked, suite):
    assert [ex["category"] for ex in suite].count("real_world") == 4
    assert {ex["category"] for ex in suite} == set(js.CATEGORIES) and len(suite) == 24
    bigger = js.select(locked, 60)
    assert all(ex in bigger for ex in suite)  # a smaller subset is inside a larger one
    assert js.select(locked, 500) == locked

    path = tmp_path / "suite.jsonl"
    digest, n = js.write_subset(js.LOCKED_SUITE, path, 24)
    assert n == 24 and js.sidecar_path(path).read_text().split() == [digest, "suite.jsonl"]
    loaded, loaded_digest = js.load_suite(path)
    assert loaded == suite and loaded_digest == digest
    # The full subset is the locked file itself, byte for byte.
    js.write_subset(js.LOCKED_SUITE, tmp_path / "all.jsonl", 500)
    assert (tmp_path / "all.jsonl").read_bytes() == js.LOCKED_SUITE.read_bytes()
    # A suite is locked: edited bytes no longer match the sidecar.
    path.write_text(path.read_text().replace("json-0000", "json-9999"))
    with pytest.raises(ValueError, match="does not match its locked hash"):
        js.load_suite(path)
    tampered = tmp_path / "locked.jsonl"
    tampered.write_bytes(js.LOCKED_SUITE.read_bytes().replace(b"json-0001", b"json-9991"))
    js.sidecar_path(tampered).write_text(js.sidecar_path(js.LOCKED_SUITE).read_text())
    with pytest.raises(ValueError, match="does not match its locked hash"):
        js.write_subset(tampered, tmp_path / "x.jsonl", 5)
    js.sidecar_path(tampered).unlink()
    with pytest.raises(FileNotFoundError, match="no sha256 sidecar"):
        js.write_subset(tampered, tmp_path / "x.jsonl", 5)
    with pytest.raises(ValueError, match="501 examples requested"):
        js.select(locked, 501)


def test_generator_is_deterministic_and_balanced():
    small = js.build_suite(12, seed=11)
    assert small == js.build_suite(12, seed=11) and small != js.build_suite(12, seed=12)
    assert sorted(ex["category"] for ex in small) == sorted(list(js.CATEGORIES) * 2)


def test_reference_answers_score_perfectly(locked):
    for ex in locked:
        for text in (js.reference_answer(ex), "```json\n" + json.dumps(ex["instance"], indent=2) + "\n```"):
            score = js.score_example(ex, text)
            assert score == {"parsed": True, "valid": True, "field_accuracy": 1.0, "error": None}, ex["id"]
    m = js.metrics([js.score_example(ex, js.reference_answer(ex)) for ex in locked])
    assert m == {"parse_rate": 1.0, "schema_valid_rate": 1.0, "field_accuracy": 1.0}


def _example_with_required(suite):
    for ex in suite:
        required = ex["schema"].get("required", [])
        if ex["schema"].get("type") == "object" and required:
            return ex, required[0]
    raise AssertionError("no suite schema with a required top-level field")


def test_wrong_answers_fail(suite):
    ex = suite[0]
    bad = js.score_example(ex, '{"unterminated": ')
    assert bad["parsed"] is False and bad["valid"] is False and bad["field_accuracy"] == 0.0
    assert js.score_example(ex, "no json here at all")["parsed"] is False

    ex, field = _example_with_required(suite)
    missing = dict(ex["instance"])
    del missing[field]
    score = js.score_example(ex, json.dumps(missing))
    assert score["parsed"] and not score["valid"] and "required" in score["error"]
    assert 0.0 < score["field_accuracy"] < 1.0

    # A wrong type for a field: replace a string leaf with a number (or a number with a string).
    for key, value in ex["instance"].items():
        if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            wrong = dict(ex["instance"])
            wrong[key] = 12345 if isinstance(value, str) else "twelve"
            score = js.score_example(ex, json.dumps(wrong))
            assert score["parsed"] and not score["valid"]
            assert score["field_accuracy"] < 1.0
            break
    else:
        raise AssertionError("no scalar field to corrupt")


def _corrupt(value):
    """The value with its first leaf replaced by one of another JSON type."""
    if isinstance(value, dict) and value:
        k = next(iter(value))
        return {**value, k: _corrupt(value[k])}
    if isinstance(value, list) and value:
        return [_corrupt(value[0])] + value[1:]
    return "wrong" if isinstance(value, (list, dict)) else [["wrong"]]


def test_every_locked_example_fails_a_wrong_answer(locked):
    for ex in locked:
        score = js.score_example(ex, json.dumps(_corrupt(ex["instance"])))
        assert score["parsed"] and score["field_accuracy"] < 1.0, ex["id"]
        # A list where the schema wants a scalar (or a string where it wants a list) is invalid
        # wherever the schema constrains that field's type at all.
        assert not score["valid"] or ex["category"] == "real_world", ex["id"]
        assert js.score_example(ex, js.reference_answer(ex)[:-1])["parsed"] is False, ex["id"]


def test_field_accuracy_counts_leaf_paths():
    ex = {
        "schema": {"type": "object"},
        "instance": {"a": 1, "b": {"c": "x", "d": [True, 2.5]}, "e/f": [], "g": None},
    }
    assert js.leaf_fields(ex["instance"]) == {
        "/a": 1,
        "/b/c": "x",
        "/b/d/0": True,
        "/b/d/1": 2.5,
        "/e~1f": [],
        "/g": None,
    }
    # 3 of 6 leaves right; True is not 1 and 1 is not "1" (JSON equality, not Python's).
    out = {"a": 1.0, "b": {"c": "x", "d": [1, 2.5]}, "e/f": [0], "g": "null"}
    assert js.score_example(ex, json.dumps(out))["field_accuracy"] == pytest.approx(3 / 6)


def test_generation_is_deterministic_and_returns_new_text(tiny_model):
    from transformers import AutoTokenizer

    from trellis.evaluate.generation import Generator, generate

    prompts_ = ['Input:\n{"a": 1}\nOutput:\n', "hello", "Create a JSON object describing this pet patient."]
    gen = Generator(tiny_model, device="cpu")
    out1 = gen.generate(prompts_, max_new_tokens=12, batch_size=2)
    out2 = generate(tiny_model, prompts_, max_new_tokens=12, batch_size=3)
    assert out1 == out2
    assert len(out1) == 3 and all(isinstance(o, str) for o in out1)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    longest = max(len(tok.decode([i])) for i in range(len(tok)))
    for p, o in zip(prompts_, out1):
        # Only new text comes back, never the prompt, and at most max_new_tokens tokens of it.
        assert o and not o.startswith(p) and len(o) <= 12 * longest
    # Batching (left padding) does not change a prompt's greedy continuation.
    assert gen.generate([prompts_[1]], max_new_tokens=12, batch_size=1) == [out1[1]]


def test_generation_stops_at_eos(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trellis.evaluate.generation import generate

    # Zero output weights make every logit equal; greedy argmax then picks id 0, the eos token
    # (trained as the first special token), so generation must stop at once and return "".
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.convert_ids_to_tokens(0) == EOS
    with torch.no_grad():
        model.lm_head.weight.zero_()
    model.save_pretrained(tmp_path / "eos")
    tok.save_pretrained(tmp_path / "eos")
    assert generate(tmp_path / "eos", ["hello", "a longer prompt"], max_new_tokens=8) == ["", ""]


def test_generation_cuts_at_the_first_stop_string(tiny_model):
    from trellis.evaluate.generation import Generator

    gen = Generator(tiny_model, device="cpu")
    prompts_ = ["hello", "Create a JSON object describing this pet patient."]
    full = gen.generate(prompts_, max_new_tokens=16, batch_size=2)
    # Stop strings taken from inside each free-running continuation: the stopped output must be
    # exactly the text before the earliest one, in the same batch as a row that does not stop.
    stop_a = full[0][4:7]
    stop_b = full[0][2:4]
    stopped = gen.generate(prompts_, max_new_tokens=16, batch_size=2, stop=[stop_a, stop_b])
    assert stopped[0] == full[0][: min(full[0].find(stop_a), full[0].find(stop_b))]
    for text, free in zip(stopped[1:], full[1:]):
        assert free.startswith(text)
        assert stop_a not in text and stop_b not in text


def test_generation_processes_the_vocabulary_once_per_stop_set(tiny_model, monkeypatch):
    from transformers.generation.stopping_criteria import StopStringCriteria

    from trellis.evaluate.generation import Generator

    gen = Generator(tiny_model, device="cpu")
    prompts_ = ["hello", "Create a JSON object", "a third prompt", "and a fourth"]
    full = gen.generate(prompts_, max_new_tokens=16, batch_size=1)
    stop = [full[0][4:7]]
    expected = gen.generate(prompts_, max_new_tokens=16, batch_size=4, stop=stop)

    processed = []
    clean = StopStringCriteria.clean_tokenizer_vocab
    monkeypatch.setattr(
        StopStringCriteria,
        "clean_tokenizer_vocab",
        staticmethod(lambda tok, *a, **k: processed.append(1) or clean(tok, *a, **k)),
    )
    fresh = Generator(tiny_model, device="cpu")
    # Four batches and a second call with the same stop strings: one pass over the vocabulary
    # (transformers' own cache would miss on every batch); the outputs are those of one batch.
    assert fresh.generate(prompts_, max_new_tokens=16, batch_size=1, stop=stop) == expected
    assert fresh.generate(prompts_, max_new_tokens=16, batch_size=1, stop=stop) == expected
    assert len(processed) == 1
    # Another stop set is another criterion.
    fresh.generate(prompts_[:1], max_new_tokens=16, batch_size=1, stop=[full[0][2:4]])
    assert len(processed) == 2


def test_generation_stop_strings_replace_the_models_own(tiny_model, tmp_path):
    import shutil

    from transformers import GenerationConfig

    from trellis.evaluate.generation import Generator

    free = Generator(tiny_model, device="cpu").generate(["hello"], max_new_tokens=16)[0]
    own, ours = free[1:3], [free[5:8]]
    expected = Generator(tiny_model, device="cpu").generate(["hello"], max_new_tokens=16, stop=ours)
    # A model whose generation config names a stop string of its own, earlier in the text: the
    # caller's stop strings replace it (as generate's stop_strings argument did).
    shutil.copytree(tiny_model, tmp_path / "own_stop")
    config = GenerationConfig.from_pretrained(tiny_model)
    config.stop_strings = [own]
    config.save_pretrained(tmp_path / "own_stop")
    gen = Generator(tmp_path / "own_stop", device="cpu")
    assert gen.generate(["hello"], max_new_tokens=16, stop=ours) == expected
    assert expected[0] == free[: free.find(ours[0])] and own in expected[0]


def test_evaluate_scripted_perfect_and_broken_model(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    path = tmp_path / "suite.jsonl"
    js.write_subset(js.LOCKED_SUITE, path, 12)
    suite, _ = js.load_suite(path)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    answers = {json.dumps(ex["schema"], separators=(",", ":")): js.reference_answer(ex) for ex in suite}

    def perfect(prompt):
        # The query's schema is the last one in the prompt (shots come first).
        last = max(answers, key=lambda s: prompt.rfind(s))
        return answers[last] + "\n\nInput:"

    gen = ScriptedGenerator(tok, perfect)
    boot = {"resamples": 200, "confidence": 0.9}
    cfg = {"examples": 12, "max_new_tokens": 64}
    result = evaluate("json_schema", tiny_model, "base", "curated", path, cfg, boot, 3, generator=gen)
    assert result["n"] == 12 and result["benchmark"] == "json_schema" and result["stage"] == "base"
    for m in js.METRICS:
        assert result["metrics"][m] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    # Base prompts are few-shot with shots from the train pool, built by prompts.build_prompt.
    assert len(result["generation"]["shots"]) == 2
    train = {s["name"]: s for s in structured_pool.schemas("train", 3, 12)}
    for name in result["generation"]["shots"]:
        assert name in train and json.dumps(train[name]["instance"], ensure_ascii=False) in gen.prompts[0]
    assert gen.prompts[0].count("Output:\n") == 3
    assert result["model"]["config_sha256"] and result["model"]["weights_sha256"]

    broken = ScriptedGenerator(tok, lambda p: "{not json")
    result = evaluate("json_schema", tiny_model, "sft", "uncurated", path, cfg, boot, 3, generator=broken)
    assert result["metrics"]["parse_rate"]["value"] == 0.0
    assert all(
        ex["scores"] == {"parse_rate": 0.0, "schema_valid_rate": 0.0, "field_accuracy": 0.0}
        for ex in result["examples"]
    )
    assert broken.prompts[0].startswith("### System:")  # chat template, no shots


def test_evaluate_real_tiny_model(tiny_model, tmp_path):
    from trellis.core.io import read_json, write_json

    cfg = {"examples": 6, "max_new_tokens": 16}
    result = evaluate(
        "json_schema", tiny_model, "base", "curated", None, cfg, {"resamples": 100, "confidence": 0.95}, 5
    )
    assert result["n"] == 6 and len(result["examples"]) == 6
    assert result["data"]["locked_sha256"] == js.sidecar_path(js.LOCKED_SUITE).read_text().split()[0]
    for ex in result["examples"]:
        assert isinstance(ex["output"], str) and set(ex["scores"]) == set(js.METRICS)
    for m in result["metrics"].values():
        assert m["ci_low"] <= m["value"] <= m["ci_high"]
    write_json(tmp_path / "r.json", result)
    assert read_json(tmp_path / "r.json")["metrics"] == result["metrics"]


def test_evaluate_errors_name_the_problem(tiny_model):
    with pytest.raises(ValueError, match="unknown benchmark"):
        evaluate(
            "mmlu",
            tiny_model,
            "base",
            "a",
            None,
            {"max_new_tokens": 4},
            {"resamples": 10, "confidence": 0.9},
            0,
        )
    with pytest.raises(KeyError, match="max_new_tokens"):
        evaluate(
            "json_schema",
            tiny_model,
            "base",
            "a",
            None,
            {"examples": 2},
            {"resamples": 10, "confidence": 0.9},
            0,
        )
    with pytest.raises(ValueError, match="unknown stage"):
        evaluate(
            "json_schema",
            tiny_model,
            "rlhf",
            "a",
            None,
            {"examples": 2, "max_new_tokens": 4},
            {"resamples": 10, "confidence": 0.9},
            0,
        )


def test_batched_benchmarks_keep_their_own_outputs_and_cut_prompts(tiny_model):
    """Several benchmarks' prompts in one generate call (as BFCL's categories of a mode): each
    gets back its own outputs, the same as generated alone, and its own count of prompts cut to
    fit the context."""
    from types import SimpleNamespace

    from trellis.evaluate.dispatch import _generate
    from trellis.evaluate.generation import Generator

    gen = Generator(tiny_model, device="cpu")
    long = "word " * 5000  # longer than the model's 4,096 positions
    first, second = ["a short prompt", long + "one"], [long + "two", "another", long + "three"]
    settings = SimpleNamespace(gen=gen, max_new_tokens=4, batch_size=8, stop=[])
    outputs, seconds, cut = _generate([first, second], settings)
    assert cut == [1, 2] and seconds > 0
    assert gen.truncated_rows == [False, True, True, False, True]
    assert outputs == [gen.generate(first, 4, 1), gen.generate(second, 4, 1)]
