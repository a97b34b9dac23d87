"""Prompt building: chat template, few-shot completion prompts, JSON extraction."""

from __future__ import annotations

import pytest

from trellis.structured import prompts
from trellis.structured.prompts import (
    CHAT_TEMPLATE,
    build_prompt,
    chat_prompt,
    completion_prompt,
    extract_json,
    function_call_messages,
    json_schema_messages,
)

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    texts = ['### System:\nReply with JSON.\n\n### User:\nhello world\n\n### Assistant:\n{"a": 1}'] * 20
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>", "<|padding|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|padding|>")


def test_chat_template_renders_roles_and_eos(tokenizer):
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    text = tokenizer.apply_chat_template(msgs, chat_template=CHAT_TEMPLATE, tokenize=False)
    assert text == "### System:\nS\n\n### User:\nU\n\n### Assistant:\nA<|endoftext|>"


def test_chat_prompt_ends_with_generation_prompt_and_uses_fallback_template(tokenizer):
    assert tokenizer.chat_template is None  # the fallback: CHAT_TEMPLATE
    p = chat_prompt(tokenizer, [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert p == "### System:\nS\n\n### User:\nU\n\n### Assistant:\n"
    assert (
        build_prompt("sft", tokenizer, [{"role": "user", "content": "U"}], [])
        == "### User:\nU\n\n### Assistant:\n"
    )


def test_prompt_tokens_are_a_prefix_of_prompt_plus_answer(tokenizer):
    # TRL masks the prompt by this prefix; a merge across the boundary would shift the mask.
    msgs = json_schema_messages("Make it.", SCHEMA, "a is 1")
    ids_p = tokenizer(chat_prompt(tokenizer, msgs), add_special_tokens=False).input_ids
    full = tokenizer.apply_chat_template(
        msgs + [{"role": "assistant", "content": '{"a": 1}'}], chat_template=CHAT_TEMPLATE, tokenize=False
    )
    ids_f = tokenizer(full, add_special_tokens=False).input_ids
    assert ids_f[: len(ids_p)] == ids_p
    assert ids_f[-1] == tokenizer.eos_token_id  # the eos is one special token, not literal text


def test_unknown_role_is_an_error(tokenizer):
    with pytest.raises(Exception, match="unsupported role"):
        tokenizer.apply_chat_template(
            [{"role": "tool", "content": "x"}], chat_template=CHAT_TEMPLATE, tokenize=False
        )


def test_message_builders():
    m = json_schema_messages("Do it.", SCHEMA, "a is five")
    assert [x["role"] for x in m] == ["system", "user"]
    assert "ONLY a JSON object" in m[0]["content"]
    assert '{"type":"object"' in m[1]["content"] and "a is five" in m[1]["content"]
    fn = {"name": "get_x", "description": "d", "parameters": {"type": "object", "properties": {}}}
    f = function_call_messages("q?", [fn, {"type": "function", "function": dict(fn, name="get_y")}])
    assert '"name":"get_x"' in f[0]["content"] and '"name":"get_y"' in f[0]["content"]
    assert '"type":"function"' not in f[0]["content"]
    assert "JSON list" in f[0]["content"] and f[1] == {"role": "user", "content": "q?"}
    with pytest.raises(KeyError, match="name"):
        function_call_messages("q", [{"description": "no name"}])


def test_completion_prompt_has_shots_then_query():
    shots = [
        (json_schema_messages("I1", SCHEMA, "shot one"), '{"a": 1}'),
        (json_schema_messages("I2", SCHEMA, "shot two"), '{"a": 2}'),
    ]
    query = json_schema_messages("I3", SCHEMA, "the query")
    p = completion_prompt(query, shots)
    assert p.count(prompts.JSON_SYSTEM) == 1 and p.startswith(prompts.JSON_SYSTEM)
    i1, a1, i2, a2, q = (p.index(s) for s in ("shot one", '{"a": 1}', "shot two", '{"a": 2}', "the query"))
    assert i1 < a1 < i2 < a2 < q
    assert p.endswith("the query\nOutput:\n")
    assert build_prompt("base", None, query, shots) == p
    assert completion_prompt(query, []).endswith("Output:\n")
    with pytest.raises(ValueError, match="stage"):
        build_prompt("rlhf", None, query, shots)


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": [1, 2]}\n```\nDone.', {"a": [1, 2]}),
        ('Sure! Here it is: {"a": "}{"} and more {"b": 2}', {"a": "}{"}),
        ('[{"name": "f", "arguments": {}}]<|endoftext|>', [{"name": "f", "arguments": {}}]),
        ('see [the docs] then {"a": 1}', {"a": 1}),
        ('{"a": "esc \\" quote"} tail', {"a": 'esc " quote'}),
    ],
)
def test_extract_json_finds_first_value(text, expected):
    value, err = extract_json(text)
    assert err is None and value == expected


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("no json here", "no JSON"),
        ('{"a": 1', "unterminated"),
        ('{"a": {"b": 1}, "c": }', "invalid JSON"),
        ("", "no JSON"),
    ],
)
def test_extract_json_reports_garbage(text, fragment):
    value, err = extract_json(text)
    assert value is None and fragment in err


def test_extract_json_never_returns_an_inner_value_of_a_broken_outer_one():
    value, err = extract_json('{"outer": {"inner": 1}, broken}')
    assert value is None and err.startswith("invalid JSON")


def test_base_stop_string_ends_each_shot_and_never_occurs_inside_an_answer():
    from trellis.evaluate.shots import json_schema_shots

    shots, _ = json_schema_shots(seed=3, k=3)
    msgs = json_schema_messages("Fill it.", SCHEMA, "a is 4")
    text = completion_prompt(msgs, shots)
    (stop,) = prompts.stop_strings("base")
    for _, answer in shots:
        assert stop not in answer
        # A model that copies the shots' format writes the stop string right after its answer.
        assert answer + stop in text
    assert prompts.stop_strings("sft") == prompts.stop_strings("dpo")
    with pytest.raises(ValueError, match="unknown stage"):
        prompts.stop_strings("rlhf")
