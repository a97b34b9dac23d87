"""SFT rows and DPO pairs generated from the train pools: what post-training teaches, and the shots.

Examples are built only from the *train* pools of ``trellis.structured.pools``, with the message
builders of ``trellis.structured.prompts``, so the evaluation schemas and functions stay unseen by
construction (``trellis.structured.disjoint``). Four tasks in fixed shares (``TASK_WEIGHTS``):
schema-guided JSON, function calling, extraction and classification. Post-training trains on
these rows (``trellis.train.posttrain_data`` adds the public sets and writes the files), and base
models are evaluated with some of them as few-shot examples (``trellis.evaluate.shots``), so both
see the same format.

Rows (message lists are lists of {"role", "content"}):

- SFT: {"prompt": [system, user], "completion": [assistant], "task", "item", "source"}
- DPO: {"prompt": [system, user], "chosen": [assistant], "rejected": [assistant], "task", "item",
  "source", "rejection"} where "rejection" names how the rejected answer misses.

Every target is checked before it is returned (``check_json_answer``, ``check_call_answer``), and
every rejected answer is verified to fail the same check.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any

from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured.disjoint import schema_hash

TASKS = ("json_schema", "function_call", "extraction", "classification")
# Share of each task in SFT and DPO data: schema-guided JSON and function calling are the study's
# headline abilities; extraction and classification add variety in how content is given.
TASK_WEIGHTS = {"json_schema": 0.4, "function_call": 0.3, "extraction": 0.15, "classification": 0.15}

# Classification tasks: the label is carried by cue phrases, so the answer follows from the text.
_CLASSIFY = {
    "sentiment": {
        "instruction": "Classify the sentiment of this review.",
        "cues": {
            "positive": ["I loved it", "excellent quality", "would recommend it to anyone", "great value"],
            "negative": [
                "terrible experience",
                "I was disappointed",
                "it arrived broken",
                "a waste of money",
            ],
            "neutral": [
                "it was okay",
                "nothing special either way",
                "about what I expected",
                "average overall",
            ],
        },
        "template": "Review of the {thing}: {cue}.",
    },
    "urgency": {
        "instruction": "Classify how urgent this support message is.",
        "cues": {
            "high": ["please fix this immediately", "it is a critical outage", "we need help right now"],
            "medium": ["could you look at it this week", "it is somewhat annoying", "please check soon"],
            "low": ["no rush at all", "just a minor suggestion", "whenever it is convenient"],
        },
        "template": "Message about the {thing}: {cue}.",
    },
}


# DPO prompts are drawn with this offset to the seed, so they are mostly new to the SFT model.
_DPO_SEED_OFFSET = 7919


def derived_rng(seed: int, what: str) -> random.Random:
    """A random generator for one use (``what``) of the run seed: other uses draw independently."""
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}|{what}".encode()).digest()[:8], "big"))


def _task_counts(n: int) -> dict[str, int]:
    counts = {t: int(n * w) for t, w in TASK_WEIGHTS.items()}
    counts["json_schema"] += n - sum(counts.values())  # rounding remainder
    return counts


# --- prompts and answers per task ------------------------------------------------------------


def _schema_example(item: dict, task: str, rng: random.Random) -> dict:
    if task == "extraction":
        title = item["schema"].get("title", "record").lower()
        messages = prompts.json_schema_messages(
            f"Extract the {title} described in the text into JSON.",
            item["schema"],
            sp.record_notes(item["instance"], rng),
        )
    else:
        messages = prompts.json_schema_messages(item["instruction"], item["schema"], item["content"])
    return {"messages": messages, "answer": item["instance"], "schema": item["schema"], "item": item["name"]}


def _function_example(item: dict, pool_items: list[dict], rng: random.Random) -> dict:
    # The right function among 0-1 distractors (more would not fit a demo context), in random
    # order: the model must pick by name.
    distractors = [f["function"] for f in pool_items if f["function"]["name"] != item["function"]["name"]]
    shown = [item["function"]] + rng.sample(distractors, min(len(distractors), rng.randint(0, 1)))
    rng.shuffle(shown)
    return {
        "messages": prompts.function_call_messages(item["question"], shown),
        "answer": [item["call"]],
        "functions": shown,
        "item": item["function"]["name"],
    }


def _classification_example(rng: random.Random, things: list[str]) -> dict:
    name = rng.choice(sorted(_CLASSIFY))
    spec = _CLASSIFY[name]
    labels = sorted(spec["cues"])
    label = rng.choice(labels)
    text = spec["template"].format(thing=rng.choice(things), cue=rng.choice(spec["cues"][label]))
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
        "additionalProperties": False,
    }
    return {
        "messages": prompts.json_schema_messages(spec["instruction"], schema, text),
        "answer": {"label": label},
        "schema": schema,
        "item": f"classify_{name}",
    }


def _examples(n: int, seed: int, purpose: str) -> list[tuple[str, dict]]:
    """(task, example) pairs: ``n`` in all, task shares per TASK_WEIGHTS, interleaved deterministically."""
    counts = _task_counts(n)
    rng = derived_rng(seed, purpose)
    schema_items = sp.schemas("train", seed, counts["json_schema"] + counts["extraction"])
    fn_items = sp.functions("train", seed, counts["function_call"])
    fn_pool = sp.functions("train", seed + 1, 60)  # distractors
    things = sorted({s["schema"].get("title", "item").lower() for s in schema_items}) or ["item"]
    out: list[tuple[str, dict]] = []
    it = iter(schema_items)
    for _ in range(counts["json_schema"]):
        out.append(("json_schema", _schema_example(next(it), "json_schema", rng)))
    for _ in range(counts["extraction"]):
        out.append(("extraction", _schema_example(next(it), "extraction", rng)))
    for item in fn_items:
        out.append(("function_call", _function_example(item, fn_pool, rng)))
    for _ in range(counts["classification"]):
        out.append(("classification", _classification_example(rng, things)))
    rng.shuffle(out)
    return out


# --- answer checks ---------------------------------------------------------------------------


def check_json_answer(text: str, schema: dict) -> str | None:
    """None if ``text`` is exactly one JSON value valid against ``schema``; else the reason.

    Strict on purpose: the system prompt asks for ONLY the JSON, so surrounding text is a miss.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not pure JSON: {e.msg}"
    return sp.validation_error(value, schema)


def check_call_answer(text: str, functions: list[dict], expected: list[dict]) -> str | None:
    """None if ``text`` is exactly the expected JSON list of calls, each valid for its function."""
    try:
        calls = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not pure JSON: {e.msg}"
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        return "not a JSON list of call objects"
    by_name = {f["name"]: f for f in functions}
    for c in calls:
        if c.get("name") not in by_name:
            return f"unknown function {c.get('name')!r}"
        err = sp.validation_error(c.get("arguments"), by_name[c["name"]]["parameters"])
        if err:
            return f"{c['name']}: {err}"
    if calls != expected:
        return "calls differ from the expected calls"
    return None


# --- rejected answers for DPO ----------------------------------------------------------------

_WRAPPERS = [
    ("Here is the JSON you asked for:\n", ""),
    ("", "\nLet me know if you need anything else."),
    ("Sure! ", " Hope this helps."),
]


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 0
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return [value]


def _reject_json(answer: dict, schema: dict, rng: random.Random) -> list[tuple[str, str]]:
    """Candidate near-miss answers (kind, text), most specific first, shuffled by ``rng``."""
    out = []
    required = [k for k in schema.get("required", []) if k in answer]
    if required:
        bad = copy.deepcopy(answer)
        del bad[rng.choice(required)]
        out.append(("missing_required", prompts.json_answer(bad)))
    scalar_keys = [k for k, v in answer.items() if not isinstance(v, dict) and v is not None]
    if scalar_keys:
        bad = copy.deepcopy(answer)
        k = rng.choice(scalar_keys)
        bad[k] = _wrong_type(bad[k])
        out.append(("wrong_type", prompts.json_answer(bad)))
    enum_keys = [k for k, s in schema.get("properties", {}).items() if "enum" in s and k in answer]
    if enum_keys:
        bad = copy.deepcopy(answer)
        k = rng.choice(enum_keys)
        bad[k] = f"other_{bad[k]}"
        out.append(("invalid_enum", prompts.json_answer(bad)))
    if schema.get("additionalProperties") is False:
        bad = dict(answer, notes="added by the model")
        out.append(("extra_property", prompts.json_answer(bad)))
    before, after = rng.choice(_WRAPPERS)
    out.append(("extra_text", before + prompts.json_answer(answer) + after))
    rng.shuffle(out)
    return out


def _reject_call(answer: list[dict], functions: list[dict], rng: random.Random) -> list[tuple[str, str]]:
    """Near misses of a list of calls: one call (drawn when there are several) is spoiled."""
    i = rng.randrange(len(answer)) if len(answer) > 1 else 0
    call = answer[i]
    fn = next(f for f in functions if f["name"] == call["name"])

    def spoiled(bad_call: dict) -> str:
        return prompts.json_answer(answer[:i] + [bad_call] + answer[i + 1 :])

    out = []
    others = [f["name"] for f in functions if f["name"] != call["name"]]
    wrong_name = rng.choice(others) if others else call["name"] + "_v2"
    out.append(("wrong_function", spoiled({"name": wrong_name, "arguments": call["arguments"]})))
    required = [k for k in fn["parameters"].get("required", []) if k in call["arguments"]]
    if required:
        args = dict(call["arguments"])
        del args[rng.choice(required)]
        out.append(("missing_argument", spoiled({"name": call["name"], "arguments": args})))
    if call["arguments"]:
        args = dict(call["arguments"])
        k = rng.choice(sorted(args))
        args[k] = _wrong_type(args[k])
        out.append(("wrong_argument_type", spoiled({"name": call["name"], "arguments": args})))
    before, after = rng.choice(_WRAPPERS)
    out.append(("extra_text", before + prompts.json_answer(answer) + after))
    rng.shuffle(out)
    return out


# --- rows ------------------------------------------------------------------------------------


def sft_row(task: str, ex: dict, source: str) -> dict:
    """The SFT row of one example (generated or from a public set), its target checked."""
    text = prompts.json_answer(ex["answer"])
    err = (
        check_call_answer(text, ex["functions"], ex["answer"])
        if task == "function_call"
        else check_json_answer(text, ex["schema"])
    )
    if err:  # a builder bug: never train on an invalid target
        raise AssertionError(f"SFT target for {ex['item']} is invalid: {err}")
    return {
        "prompt": ex["messages"],
        "completion": [{"role": "assistant", "content": text}],
        "task": task,
        "item": ex["item"],
        "source": source,
    }


def dpo_row(task: str, ex: dict, rng: random.Random, source: str) -> dict:
    """The DPO pair of one example: the valid answer, and a near miss that fails the check."""
    chosen = prompts.json_answer(ex["answer"])
    if task == "function_call":

        def check(t):
            return check_call_answer(t, ex["functions"], ex["answer"])

        candidates = _reject_call(ex["answer"], ex["functions"], rng)
    else:

        def check(t):
            return check_json_answer(t, ex["schema"])

        candidates = _reject_json(ex["answer"], ex["schema"], rng)
    if check(chosen):
        raise AssertionError(f"DPO chosen answer for {ex['item']} is invalid: {check(chosen)}")
    # The first candidate that really fails the check: a mutation can happen to stay valid
    # (e.g. removing a key that a oneOf branch did not need), and such a pair would teach noise.
    kind, rejected = next(((k, t) for k, t in candidates if check(t)), (None, None))
    if rejected is None:
        raise AssertionError(f"no failing rejected answer for {ex['item']}")
    return {
        "prompt": ex["messages"],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "task": task,
        "item": ex["item"],
        "source": source,
        "rejection": kind,
    }


def build_sft(n: int, seed: int) -> list[dict]:
    """``n`` conversational prompt-completion examples from the train pools (deterministic)."""
    return [sft_row(task, ex, "generated") for task, ex in _examples(n, seed, "sft")]


def build_dpo(n: int, seed: int) -> list[dict]:
    """``n`` preference pairs: chosen is valid, rejected a verified near-miss (deterministic).

    Drawn with a seed distinct from SFT's so DPO prompts are mostly new to the SFT model.
    """
    rng = derived_rng(seed, "dpo-rejections")
    return [dpo_row(task, ex, rng, "generated") for task, ex in _examples(n, seed + _DPO_SEED_OFFSET, "dpo")]


def used_identities(seed: int, n_sft: int, n_dpo: int) -> dict[str, Any]:
    """Names and hashes of the train schemas and functions ``build_sft``/``build_dpo`` draw.

    Recorded in the post-training manifest, so a benchmark can prove its items are not among
    them; it redoes ``_examples``' draws (the same pools, seeds and sizes).
    """
    schemas, functions = {}, set()
    for n, s in ((n_sft, seed), (n_dpo, seed + _DPO_SEED_OFFSET)):
        counts = _task_counts(n)
        for item in sp.schemas("train", s, counts["json_schema"] + counts["extraction"]):
            schemas[item["name"]] = schema_hash(item["schema"])
        functions |= {f["function"]["name"] for f in sp.functions("train", s, counts["function_call"])}
        functions |= {f["function"]["name"] for f in sp.functions("train", s + 1, 60)}
    return {
        "schema_names": sorted(schemas),
        "schema_hashes": sorted(set(schemas.values())),
        "function_names": sorted(functions),
    }
