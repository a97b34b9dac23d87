"""Post-training data: SFT prompt-completion examples and DPO preference pairs.

Generated examples are built only from the *train* pools of trellis.structured.pools, with the
message builders of trellis.structured.prompts, so the evaluation schemas and functions stay unseen by
construction. The study adds real public sets (``posttrain.public``): xLAM function calling
(Salesforce/xlam-function-calling-60k), converted to the same prompt and answer shape, with every
example that names an evaluation function dropped and counted. Every arm of the study is
post-trained on the same files (same rows; trellis.train.posttrain derives one example order from the
seed), so the post-training recipe cannot explain a difference between arms.

Files are JSON Lines (one example per line; message lists are JSON arrays of {"role", "content"}):

- SFT: {"prompt": [system, user], "completion": [assistant], "task", "item", "source"}
- DPO: {"prompt": [system, user], "chosen": [assistant], "rejected": [assistant], "task", "item",
  "source", "rejection"} where "rejection" names how the rejected answer misses.

Given the study's tokenizer, conversations longer than ``max_length`` tokens are dropped here
(counted), once for every arm, and token counts are recorded for the compute plan. The manifest
records counts per task and source, sha256 of both files, what each public set kept and skipped
and why, and the train schema names/hashes and function names used, so the benchmark can prove
its eval items are disjoint from them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from trellis.structured import prompts
from trellis.structured import pools as sp
from trellis.core.io import write_json, write_jsonl

log = logging.getLogger(__name__)

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
    """Near misses of a list of calls: one call (drawn when there are several) is spoiled."""
    i = rng.randrange(len(answer)) if len(answer) > 1 else 0
    call = answer[i]
    fn = next(f for f in functions if f["name"] == call["name"])

    def spoiled(bad_call: dict) -> str:
        return prompts.json_answer(answer[:i] + [bad_call] + answer[i + 1:])

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


# --- public sets: xLAM function calling ------------------------------------------------------

# xLAM parameter types are Python-style strings ("str", "List[int]", "Optional[str]",
# "str, optional"); these are the ones with a JSON Schema equivalent.
_XLAM_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
               "number": "number", "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array",
               "dict": "object", "object": "object"}


def xlam_parameter_schema(type_text: str) -> tuple[dict | None, bool]:
    """(JSON Schema, optional?) for an xLAM parameter type; (None, _) when it has no equivalent."""
    t, optional = type_text.strip(), False
    if t.lower().endswith(", optional"):
        t, optional = t[: -len(", optional")].strip(), True
    m = re.fullmatch(r"Optional\[(.+)\]", t)
    if m:
        t, optional = m.group(1).strip(), True
    m = re.fullmatch(r"(?:List|list)\[(.+)\]", t)
    if m:
        items, _ = xlam_parameter_schema(m.group(1))
        return ({"type": "array", "items": items} if items else None), optional
    if re.fullmatch(r"(?:Dict|dict)\[.+\]", t):
        return {"type": "object"}, optional
    base = _XLAM_TYPES.get(t.lower())
    return ({"type": base} if base else None), optional


def xlam_function(tool: dict) -> dict:
    """An xLAM tool as a BFCL/OpenAI function definition (JSON Schema parameters).

    A parameter is required when it has no default and its type is not marked optional. Raises
    ValueError naming the parameter whose type has no JSON Schema equivalent.
    """
    properties, required = {}, []
    for name, spec in (tool.get("parameters") or {}).items():
        schema, optional = xlam_parameter_schema(str(spec.get("type", "")))
        if schema is None:
            raise ValueError(f"unsupported parameter type {spec.get('type')!r} ({tool['name']}.{name})")
        if spec.get("description"):
            schema["description"] = str(spec["description"])
        properties[name] = schema
        if "default" not in spec and not optional:
            required.append(name)
    return {"name": tool["name"], "description": str(tool.get("description", "")),
            "parameters": {"type": "object", "properties": properties, "required": required}}


def _json_field(value: Any) -> Any:
    # The published file stores tools and answers as JSON-encoded strings; a converted copy may not.
    return json.loads(value) if isinstance(value, str) else value


def xlam_examples(path: str | Path, eval_names: set[str], eval_hashes: set[str]) -> tuple[list[dict], dict]:
    """Function-calling examples from an xLAM JSON file, and counted stats of what was skipped.

    Kept: every call names a listed tool, its arguments validate against the converted schema,
    and no tool's name or parameter schema is one an evaluation shows (``eval_names``,
    ``eval_hashes``). The file is xLAM's JSON array (60k rows, tens of MB: read whole).
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file: {err}") from err
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of examples, got {type(rows).__name__}")
    kept, skipped, odd_types = [], Counter(), Counter()
    for k, row in enumerate(rows):
        try:
            query, tools, answers = row["query"], _json_field(row["tools"]), _json_field(row["answers"])
        except (KeyError, TypeError, json.JSONDecodeError):
            skipped["malformed"] += 1
            continue
        if not isinstance(tools, list) or not isinstance(answers, list) or not answers or not str(query).strip():
            skipped["malformed"] += 1
            continue
        try:
            functions = [xlam_function(t) for t in tools]
        except ValueError as err:
            skipped["unsupported_parameter_type"] += 1
            odd_types[str(err).split("'")[1] if "'" in str(err) else str(err)] += 1
            continue
        except (KeyError, TypeError, AttributeError):
            skipped["malformed"] += 1
            continue
        if any(f["name"] in eval_names or sp.schema_hash(f["parameters"]) in eval_hashes for f in functions):
            skipped["evaluation_function"] += 1
            continue
        calls = [{"name": a.get("name"), "arguments": a.get("arguments", {})} for a in answers if isinstance(a, dict)]
        if len(calls) != len(answers):
            skipped["malformed"] += 1
            continue
        err = check_call_answer(prompts.json_answer(calls), functions, calls)
        if err:
            skipped["unknown_function" if err.startswith("unknown function") else "arguments_invalid"] += 1
            continue
        item = f"xlam-{row.get('id', k)}"
        kept.append({"messages": prompts.function_call_messages(str(query), functions), "answer": calls,
                     "functions": functions, "item": item})
    stats = {"rows": len(rows), "kept": len(kept), "skipped": dict(sorted(skipped.items())),
             "unsupported_types": dict(odd_types.most_common(10))}
    return kept, stats


PUBLIC_READERS = {"xlam": xlam_examples}


def eval_function_identities() -> tuple[set[str], set[str]]:
    """Names and parameter-schema hashes of every function or schema an evaluation shows a model.

    The eval pool's functions, the locked JSON suite's schemas (and the functions some were
    taken from) and every supported BFCL category's functions: a public training example that
    uses one of them would make that benchmark item seen (tests/structured/test_disjoint.py's sets).
    """
    from trellis.evaluate import bfcl
    from trellis.evaluate import json_schema as js

    names, hashes = set(sp.all_function_names("eval")), set()
    locked, _ = js.load_locked()
    for e in locked:
        hashes.add(sp.schema_hash(e["schema"]))
        if e["source"].get("function"):
            names.add(e["source"]["function"])
    for category in bfcl.SUPPORTED:
        for entry in bfcl.load_category(category):
            for f in bfcl.prompt_functions(entry):
                names.add(f["name"])
                hashes.add(sp.schema_hash(f["parameters"]))
    return names, hashes


def fetch_public_file(repo: str, revision: str, filename: str, out_dir: str | Path) -> dict:
    """Download one file of a Hugging Face dataset repo into ``out_dir`` (atomically) + fetch.json.

    Gated sets (xLAM is) need HF_TOKEN with the terms accepted on the hub.
    """
    from huggingface_hub import hf_hub_download

    from trellis.core.io import atomic_directory
    from trellis.tokens.tkds import sha256_file

    cached = Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision, repo_type="dataset"))
    info = {"repo": repo, "revision": revision, "file": filename, "bytes": cached.stat().st_size,
            "sha256": sha256_file(cached)}
    with atomic_directory(out_dir) as tmp:
        shutil.copyfile(cached, tmp / Path(filename).name)
        write_json(tmp / "fetch.json", info)
    return info


# --- public API -------------------------------------------------------------------------------


def _sft_row(task: str, ex: dict, source: str) -> dict:
    text = prompts.json_answer(ex["answer"])
    err = (check_call_answer(text, ex["functions"], ex["answer"]) if task == "function_call"
           else check_json_answer(text, ex["schema"]))
    if err:  # a builder bug: never train on an invalid target
        raise AssertionError(f"SFT target for {ex['item']} is invalid: {err}")
    return {"prompt": ex["messages"], "completion": [{"role": "assistant", "content": text}],
            "task": task, "item": ex["item"], "source": source}


def _dpo_row(task: str, ex: dict, rng: random.Random, source: str) -> dict:
    chosen = prompts.json_answer(ex["answer"])
    if task == "function_call":
        check = lambda t: check_call_answer(t, ex["functions"], ex["answer"])
        candidates = _reject_call(ex["answer"], ex["functions"], rng)
    else:
        check = lambda t: check_json_answer(t, ex["schema"])
        candidates = _reject_json(ex["answer"], ex["schema"], rng)
    if check(chosen):
        raise AssertionError(f"DPO chosen answer for {ex['item']} is invalid: {check(chosen)}")
    # The first candidate that really fails the check: a mutation can happen to stay valid
    # (e.g. removing a key that a oneOf branch did not need), and such a pair would teach noise.
    kind, rejected = next(((k, t) for k, t in candidates if check(t)), (None, None))
    if rejected is None:
        raise AssertionError(f"no failing rejected answer for {ex['item']}")
    return {"prompt": ex["messages"], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "task": task,
            "item": ex["item"], "source": source, "rejection": kind}


def build_sft(n: int, seed: int) -> list[dict]:
    """``n`` conversational prompt-completion examples from the train pools (deterministic)."""
    return [_sft_row(task, ex, "generated") for task, ex in _examples(n, seed, "sft")]


def build_dpo(n: int, seed: int) -> list[dict]:
    """``n`` preference pairs: chosen is valid, rejected a verified near-miss (deterministic).

    Drawn with a seed distinct from SFT's so DPO prompts are mostly new to the SFT model.
    """
    rng = _rng(seed, "dpo-rejections")
    return [_dpo_row(task, ex, rng, "generated") for task, ex in _examples(n, seed + 7919, "dpo")]


def build_public(name: str, spec: dict, path: str | Path, seed: int,
                 eval_identities: tuple[set[str], set[str]]) -> tuple[list[dict], list[dict], dict]:
    """SFT rows and DPO pairs from one public set (``posttrain.public.<name>``), and its stats.

    The usable examples are shuffled with the seed; the first ``sft_examples`` become SFT rows,
    the next ``dpo_pairs`` DPO pairs (disjoint, as for the generated data).
    """
    if spec["kind"] not in PUBLIC_READERS:
        raise ValueError(f"posttrain.public.{name}.kind: {spec['kind']!r} is not one of {sorted(PUBLIC_READERS)}")
    examples, stats = PUBLIC_READERS[spec["kind"]](path, *eval_identities)
    n_sft, n_dpo = int(spec["sft_examples"]), int(spec["dpo_pairs"])
    if len(examples) < n_sft + n_dpo:
        raise ValueError(f"{path}: {len(examples)} usable examples ({stats['skipped']} skipped), but "
                         f"posttrain.public.{name} asks for sft_examples + dpo_pairs = {n_sft + n_dpo}")
    _rng(seed, f"public-{name}").shuffle(examples)
    sft = [_sft_row("function_call", ex, name) for ex in examples[:n_sft]]
    rejections = _rng(seed, f"public-{name}-rejections")
    dpo = [_dpo_row("function_call", ex, rejections, name) for ex in examples[n_sft:n_sft + n_dpo]]
    return sft, dpo, stats


def chat_tokenizer(path: str | Path):
    """The tokenizer at ``path`` with the post-training chat template (and eos as pad if it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    # The same template for every arm, whatever the base tokenizer shipped with.
    tokenizer.chat_template = prompts.CHAT_TEMPLATE
    if tokenizer.eos_token is None:
        raise ValueError(f"{path}: tokenizer has no eos token; the chat template needs one")
    if tokenizer.pad_token is None:
        # Pythia-style tokenizers may lack a pad token; padding is masked out, so eos is safe.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def conversation_tokens(tokenizer, messages: list[dict]) -> int:
    """Tokens of a conversation rendered with the chat template (what SFT/DPO train on)."""
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def fit_to_length(rows: list[dict], tokenizer, max_length: int, answer_keys: tuple[str, ...]):
    """Rows whose every conversation fits ``max_length`` tokens, dropped counts by source, token stats.

    Dropped rather than truncated: truncation cuts the answer, which would teach the model to
    stop mid-JSON without eos (SFT) or compare unfinished answers (DPO).
    """
    kept, dropped, tokens, sequences = [], Counter(), 0, 0
    for row in rows:
        lengths = [conversation_tokens(tokenizer, row["prompt"] + row[k]) for k in answer_keys]
        if max(lengths) > max_length:
            dropped[row.get("source", "generated")] += 1
            continue
        kept.append(row)
        tokens += sum(lengths)
        sequences += len(lengths)
    return kept, dict(sorted(dropped.items())), {"tokens": tokens, "mean_tokens": tokens / max(1, sequences)}


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


def write_posttrain_data(sft_path, dpo_path, n_sft: int, n_dpo: int, seed: int, manifest_path=None,
                         public: dict | None = None, tokenizer_dir=None, max_length: int | None = None) -> dict:
    """Build and write SFT and DPO data plus a manifest (beside the SFT file unless given).

    ``public``: ``posttrain.public`` with each set's fetched directory under ``"dir"`` (the
    fetch_posttrain_data output). ``tokenizer_dir``/``max_length``: drop what does not fit and
    count tokens (skipped when no tokenizer is given).
    """
    sft, dpo = build_sft(n_sft, seed), build_dpo(n_dpo, seed)
    public_report: dict[str, dict] = {}
    if public:
        eval_ids = eval_function_identities()
        for name, spec in public.items():
            folder = Path(spec["dir"])
            fetched = json.loads((folder / "fetch.json").read_text())
            path = folder / Path(spec["file"]).name
            rows_sft, rows_dpo, stats = build_public(name, spec, path, seed, eval_ids)
            sft, dpo = sft + rows_sft, dpo + rows_dpo
            public_report[name] = fetched | {"stats": stats, "sft_rows": len(rows_sft), "dpo_rows": len(rows_dpo)}
            log.info("%s: %s", name, stats)
    # One file order mixing the sources (generated rows are already interleaved by task).
    _rng(seed, "sft-file-order").shuffle(sft)
    _rng(seed, "dpo-file-order").shuffle(dpo)

    dropped = {"sft": {}, "dpo": {}}
    tokens = {"sft": {"tokens": None, "mean_tokens": None}, "dpo": {"tokens": None, "mean_tokens": None}}
    if tokenizer_dir is not None:
        if max_length is None:
            raise ValueError("max_length is needed with tokenizer_dir (posttrain.max_length)")
        tokenizer = chat_tokenizer(tokenizer_dir)
        sft, dropped["sft"], tokens["sft"] = fit_to_length(sft, tokenizer, max_length, ("completion",))
        dpo, dropped["dpo"], tokens["dpo"] = fit_to_length(dpo, tokenizer, max_length, ("chosen", "rejected"))
        for stage, rows in (("sft", sft), ("dpo", dpo)):
            if not rows:
                raise ValueError(f"no {stage} example fits posttrain.max_length={max_length} tokens")

    def section(stage: str, path, rows: list[dict]) -> dict:
        return {"path": str(path), "rows": len(rows), "sha256": write_jsonl(path, rows),
                "tasks": dict(sorted(Counter(r["task"] for r in rows).items())),
                "sources": dict(sorted(Counter(r["source"] for r in rows).items())),
                "dropped_too_long": dropped[stage], **tokens[stage]}

    manifest = {
        "seed": seed,
        "format": "jsonl",
        "tokenizer": str(tokenizer_dir) if tokenizer_dir is not None else None,
        "max_length": max_length,
        "sft": section("sft", sft_path, sft),
        "dpo": section("dpo", dpo_path, dpo) | {
            "rejections": dict(sorted(Counter(r["rejection"] for r in dpo).items()))},
        "public": public_report,
        "train_pool": _used_identities(seed, n_sft, n_dpo),
        "train_pool_all_function_names": sp.all_function_names("train"),
    }
    manifest_path = manifest_path or Path(sft_path).with_name("manifest.json")
    write_json(manifest_path, manifest)
    return manifest
