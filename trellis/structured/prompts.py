"""The one place structured-output prompts are built: for post-training data and every benchmark.

(Labeling prompts, which ask a frontier model to label documents, are another matter: versioned
templates in trellis/labels/.)

Base models have never seen a chat format, so they are prompted few-shot with plain text; SFT and
DPO models are prompted with exactly the chat template they were trained with (`CHAT_TEMPLATE`,
saved into their tokenizer by trellis.train.posttrain). Keeping both here guarantees that training and
evaluation render a conversation identically.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Plain-text role headers: the tokenizer is fixed by pretraining, so the template must not need
# new special tokens. The only special token used is the tokenizer's own eos, which ends every
# assistant turn so that generation stops there. Nothing follows the eos inside the assistant
# turn: the completion the SFT loss is computed on is exactly "<answer><eos>". The generation
# prompt ends in a newline, which byte-level BPE never merges with the next character, so the
# tokenized prompt is a prefix of the tokenized prompt + completion (TRL relies on that to mask
# the prompt out of the loss). {% generation %} marks assistant tokens for assistant_only_loss.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '### System:\\n' + message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '### User:\\n' + message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '### Assistant:\\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{%- else -%}"
    "{{ raise_exception('unsupported role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '### Assistant:\\n' }}{%- endif -%}"
)

JSON_SYSTEM = "Reply with ONLY a JSON object valid against the JSON Schema: no other text."

FUNCTION_SYSTEM = (
    "Functions:\n{functions}\n"
    'Reply with ONLY a JSON list of calls [{{"name": ..., "arguments": {{...}}}}]: no other text.'
)

CODE_SYSTEM = "Reply with ONLY Python code in a ```python code block: no other text."

# The Codex paper's HumanEval protocol: a base model continues the function's prompt, and the body
# ends where the next top-level statement begins.
CODE_COMPLETION_STOPS = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]

# Headers of the few-shot completion prompt for base models (plain text, one shot after another).
_SHOT_INPUT = "Input:\n"
_SHOT_OUTPUT = "Output:\n"
_SHOT_SEPARATOR = "\n\n"


def _compact(value: Any) -> str:
    # Schemas and function lists are the longest part of a prompt; compact separators keep them
    # within a small model's context while staying ordinary JSON.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_answer(value: Any) -> str:
    """How a JSON answer is written in training targets and few-shot shots (one line, UTF-8)."""
    return json.dumps(value, ensure_ascii=False)


def json_schema_messages(instruction: str, schema: dict, content: str) -> list[dict]:
    """System + user messages asking for only a JSON object valid against ``schema``."""
    user = f"{instruction}\n\nJSON Schema:\n{_compact(schema)}\n\nContent:\n{content}"
    return [{"role": "system", "content": JSON_SYSTEM}, {"role": "user", "content": user}]


def function_call_messages(question: str, functions: list[dict]) -> list[dict]:
    """System + user messages for function calling; the answer is an xLAM-style JSON list of calls.

    ``functions`` are BFCL/OpenAI definitions ({"name", "description", "parameters"}); a
    {"type": "function", "function": {...}} wrapper is unwrapped.
    """
    defs = []
    for f in functions:
        f = f.get("function", f) if isinstance(f.get("function"), dict) else f
        if "name" not in f:
            raise KeyError(f"function definition without a 'name': {f!r}")
        defs.append(_compact(f))
    system = FUNCTION_SYSTEM.format(functions="\n".join(defs))
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def code_messages(task: str) -> list[dict]:
    """System + user messages asking for Python code that solves ``task``."""
    return [{"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": task}]


def code_answer(code: str) -> str:
    """How a code answer is written in few-shot shots and training targets: a fenced block."""
    return f"```python\n{code.strip()}\n```"


def extract_code(text: str) -> str:
    """The code in a generation: the first fenced block if there is one, else the text as is."""
    fenced = _FENCE.search(text)
    return fenced.group(1) if fenced else text


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    """The chat-formatted prompt, ending where the assistant's answer starts."""
    template = tokenizer.chat_template or CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        messages, chat_template=template, add_generation_prompt=True, tokenize=False
    )


def _split(messages: list[dict]) -> tuple[str, str]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users:
        raise ValueError("messages have no user turn")
    return system, users[-1]


def completion_prompt(messages: list[dict], shots: list[tuple[list[dict], str]]) -> str:
    """Few-shot plain-text prompt for a base model: the task, the shots, then the query.

    The system text comes once, at the top (it is the same for the shots and the query); each
    shot is its user content and answer; the prompt ends right where the answer should start.
    """
    system, query = _split(messages)
    parts = [system + _SHOT_SEPARATOR] if system else []
    for shot_messages, answer in shots:
        _, shot_user = _split(shot_messages)
        parts.append(f"{_SHOT_INPUT}{shot_user}\n{_SHOT_OUTPUT}{answer}{_SHOT_SEPARATOR}")
    parts.append(f"{_SHOT_INPUT}{query}\n{_SHOT_OUTPUT}")
    return "".join(parts)


def stop_strings(stage: str, code_completion: bool = False) -> list[str]:
    """Where generation stops, beyond the tokenizer's eos, for a prompt built by ``build_prompt``.

    A base model that has answered goes on to write the next few-shot example: stop at its
    header (or, continuing code, at the next top-level statement). A chat model ends its turn
    with eos (the template puts it there); should it instead start a new turn, stop at that
    turn's header.
    """
    if stage == "base":
        return (
            list(CODE_COMPLETION_STOPS) if code_completion else [_SHOT_SEPARATOR + _SHOT_INPUT.rstrip("\n")]
        )
    if stage in ("sft", "dpo"):
        return ["\n### User:", "\n### System:"]
    raise ValueError(f"unknown stage {stage!r}; expected base, sft or dpo")


def build_prompt(
    stage: str,
    tokenizer,
    messages: list[dict],
    shots: list[tuple[list[dict], str]],
    code_completion: str | None = None,
) -> str:
    """Prompt for a model at ``stage``: "base" is few-shot plain text, "sft"/"dpo" chat format.

    ``code_completion``: code a base model should simply continue (a HumanEval function
    signature and docstring, the Codex protocol) instead of a few-shot prompt; chat models get
    ``messages`` all the same.
    """
    if stage == "base":
        return code_completion if code_completion is not None else completion_prompt(messages, shots)
    if stage in ("sft", "dpo"):
        return chat_prompt(tokenizer, messages)
    raise ValueError(f"unknown stage {stage!r}; expected base, sft or dpo")


_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|$)", re.S)
_DECODER = json.JSONDecoder()


def _matching_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at ``start`` (string-aware), or None."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def extract_json(text: str) -> tuple[Any | None, str | None]:
    """The first complete JSON object or array in a generation, as (value, None) or (None, error).

    Code fences are stripped (the fenced part is searched first). Scanning stops at the bracket
    matching the first opening one; text after it is ignored. A span that does not parse is
    skipped as a whole, so a value nested inside a broken outer one is never returned as if it
    were the answer.
    """
    if not isinstance(text, str):
        return None, f"expected text, got {type(text).__name__}"
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1), text] if fenced else [text]
    first_error = None
    for body in candidates:
        pos = 0
        while True:
            starts = [i for i in (body.find("{", pos), body.find("[", pos)) if i >= 0]
            if not starts:
                break
            start = min(starts)
            end = _matching_end(body, start)
            if end is None:
                first_error = first_error or f"unterminated JSON starting at character {start}"
                break
            try:
                value, _ = _DECODER.raw_decode(body[start:end])
                return value, None
            except json.JSONDecodeError as e:
                first_error = first_error or f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})"
                pos = end
    return None, first_error or "no JSON object or array found"
