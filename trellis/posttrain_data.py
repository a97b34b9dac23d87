"""Post-training data: SFT prompt-completion examples and DPO preference pairs.

Both are built only from the *train* pools of trellis.structured_pool, with the message builders
of trellis.prompts, so the evaluation schemas and functions stay unseen by construction. Every
arm of the study is post-trained on the same files (same rows, same order), so the post-training
recipe cannot explain a difference between arms.

Files are JSON Lines (one example per line; message lists are JSON arrays of {"role", "content"}):

- SFT: {"prompt": [system, user], "completion": [assistant], "task", "item"}
- DPO: {"prompt": [system, user], "chosen": [assistant], "rejected": [assistant], "task", "item",
  "rejection"} where "rejection" names how the rejected answer misses.

The manifest records counts per task, sha256 of both files and the train schema names/hashes and
function names used, so the benchmark can prove its eval items are disjoint from them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from trellis import prompts, structured_pool as sp
from trellis.io import write_json, write_jsonl

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
            "negative": ["terrible experience", "I was disappointed", "it arrived broken", "a waste of money"],
            "neutral": ["it was okay", "nothing special either way", "about what I expected", "average overall"],
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


def _rng(seed: int, what: str) -> random.Random:
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
            f"Extract the {title} described in the text into JSON.", item["schema"], sp.record_notes(item["instance"], rng))
    else:
        messages = prompts.json_schema_messages(item["instruction"], item["schema"], item["content"])
    return {"messages": messages, "answer": item["instance"], "schema": item["schema"], "item": item["name"]}


def _function_example(item: dict, pool_items: list[dict], rng: random.Random) -> dict:
    # The right function among 0-1 distractors (more would not fit a demo context), in random order: the model must pick by name.
    distractors = [f["function"] for f in pool_items if f["function"]["name"] != item["function"]["name"]]
    shown = [item["function"]] + rng.sample(distractors, min(len(distractors), rng.randint(0, 1)))
    rng.shuffle(shown)
    return {"messages": prompts.function_call_messages(item["question"], shown), "answer": [item["call"]],
            "functions": shown, "item": item["function"]["name"]}


def _classification_example(rng: random.Random, things: list[str]) -> dict:
    name = rng.choice(sorted(_CLASSIFY))
    spec = _CLASSIFY[name]
    labels = sorted(spec["cues"])
    label = rng.choice(labels)
    text = spec["template"].format(thing=rng.choice(things), cue=rng.choice(spec["cues"][label]))
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": labels}},
              "required": ["label"], "additionalProperties": False}
    return {"messages": prompts.json_schema_messages(spec["instruction"], schema, text), "answer": {"label": label},
            "schema": schema, "item": f"classify_{name}"}


def _examples(n: int, seed: int, purpose: str) -> list[tuple[str, dict]]:
    """(task, example) pairs: ``n`` in all, task shares per TASK_WEIGHTS, interleaved deterministically."""
    counts = _task_counts(n)
    rng = _rng(seed, purpose)
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

_WRAPPERS = [("Here is the JSON you asked for:\n", ""), ("", "\nLet me know if you need anything else."),
             ("Sure! ", " Hope this helps.")]


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
    call = answer[0]
    fn = next(f for f in functions if f["name"] == call["name"])
    out = []
    others = [f["name"] for f in functions if f["name"] != call["name"]]
    wrong_name = rng.choice(others) if others else call["name"] + "_v2"
    out.append(("wrong_function", prompts.json_answer([{"name": wrong_name, "arguments": call["arguments"]}])))
    required = [k for k in fn["parameters"].get("required", []) if k in call["arguments"]]
    if required:
        args = dict(call["arguments"])
        del args[rng.choice(required)]
        out.append(("missing_argument", prompts.json_answer([{"name": call["name"], "arguments": args}])))
    if call["arguments"]:
        args = dict(call["arguments"])
        k = rng.choice(sorted(args))
        args[k] = _wrong_type(args[k])
        out.append(("wrong_argument_type", prompts.json_answer([{"name": call["name"], "arguments": args}])))
    before, after = rng.choice(_WRAPPERS)
    out.append(("extra_text", before + prompts.json_answer(answer) + after))
    rng.shuffle(out)
    return out


# --- public API -------------------------------------------------------------------------------


def build_sft(n: int, seed: int) -> list[dict]:
    """``n`` conversational prompt-completion examples from the train pools (deterministic)."""
    rows = []
    for task, ex in _examples(n, seed, "sft"):
        text = prompts.json_answer(ex["answer"])
        err = (check_call_answer(text, ex["functions"], ex["answer"]) if task == "function_call"
               else check_json_answer(text, ex["schema"]))
        if err:  # a builder bug: never train on an invalid target
            raise AssertionError(f"SFT target for {ex['item']} is invalid: {err}")
        rows.append({"prompt": ex["messages"], "completion": [{"role": "assistant", "content": text}],
                     "task": task, "item": ex["item"]})
    return rows


def build_dpo(n: int, seed: int) -> list[dict]:
    """``n`` preference pairs: chosen is valid, rejected a verified near-miss (deterministic).

    Drawn with a seed distinct from SFT's so DPO prompts are mostly new to the SFT model.
    """
    rng = _rng(seed, "dpo-rejections")
    rows = []
    for task, ex in _examples(n, seed + 7919, "dpo"):
        chosen = prompts.json_answer(ex["answer"])
        if task == "function_call":
            check = lambda t: check_call_answer(t, ex["functions"], ex["answer"])  # noqa: E731
            candidates = _reject_call(ex["answer"], ex["functions"], rng)
        else:
            check = lambda t: check_json_answer(t, ex["schema"])  # noqa: E731
            candidates = _reject_json(ex["answer"], ex["schema"], rng)
        if check(chosen):
            raise AssertionError(f"DPO chosen answer for {ex['item']} is invalid: {check(chosen)}")
        # The first candidate that really fails the check: a mutation can happen to stay valid
        # (e.g. removing a key that a oneOf branch did not need), and such a pair would teach noise.
        kind, rejected = next(((k, t) for k, t in candidates if check(t)), (None, None))
        if rejected is None:
            raise AssertionError(f"no failing rejected answer for {ex['item']}")
        rows.append({"prompt": ex["messages"], "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}], "task": task,
                     "item": ex["item"], "rejection": kind})
    return rows


def _used_identities(seed: int, n_sft: int, n_dpo: int) -> dict[str, Any]:
    schemas, functions = {}, set()
    for n, s in ((n_sft, seed), (n_dpo, seed + 7919)):
        counts = _task_counts(n)
        for item in sp.schemas("train", s, counts["json_schema"] + counts["extraction"]):
            schemas[item["name"]] = sp.schema_hash(item["schema"])
        functions |= {f["function"]["name"] for f in sp.functions("train", s, counts["function_call"])}
        functions |= {f["function"]["name"] for f in sp.functions("train", s + 1, 60)}
    return {"schema_names": sorted(schemas), "schema_hashes": sorted(set(schemas.values())),
            "function_names": sorted(functions)}


def write_posttrain_data(sft_path, dpo_path, n_sft: int, n_dpo: int, seed: int, manifest_path=None) -> dict:
    """Build and write SFT and DPO data plus a manifest (beside the SFT file unless given)."""
    sft = build_sft(n_sft, seed)
    dpo = build_dpo(n_dpo, seed)
    manifest = {
        "seed": seed,
        "format": "jsonl",
        "sft": {"path": str(sft_path), "rows": len(sft), "sha256": write_jsonl(sft_path, sft),
                "tasks": dict(sorted(Counter(r["task"] for r in sft).items()))},
        "dpo": {"path": str(dpo_path), "rows": len(dpo), "sha256": write_jsonl(dpo_path, dpo),
                "tasks": dict(sorted(Counter(r["task"] for r in dpo).items())),
                "rejections": dict(sorted(Counter(r["rejection"] for r in dpo).items()))},
        "train_pool": _used_identities(seed, n_sft, n_dpo),
        "train_pool_all_function_names": sp.all_function_names("train"),
    }
    manifest_path = manifest_path or Path(sft_path).with_name("manifest.json")
    write_json(manifest_path, manifest)
    return manifest
