"""BFCL (Berkeley Function Calling Leaderboard) AST categories, scored with bfcl-eval's own checker.

Data: the question and possible-answer files that ship inside the installed ``bfcl_eval``
package (``bfcl_eval/data/BFCL_v4_<category>.json`` and ``data/possible_answer/...``), loaded
with the package's own loaders, so the test set is exactly the leaderboard's.

Output format. BFCL's prompting mode asks for Python call syntax (``[func(a=1)]``); we ask for
the JSON list ``[{"name": ..., "arguments": {...}}]`` of ``prompts.function_call_messages``
instead, because that is the format the study's SFT/DPO data teaches and the JSON-schema suite
uses: the benchmark then measures choosing the right function and arguments, not whether a
model trained on JSON also happens to emit Python. BFCL itself treats JSON as a legitimate
return format (``ReturnFormat.JSON`` in its format-sensitivity study). The decoded form handed
to the checker, ``[{func_name: {arg: value}}]``, is identical either way, and the scoring is
bfcl-eval's ``ast_checker`` unchanged. For the same reason the function docs in the prompt are
converted from BFCL's Gorilla type names ("dict", "float", "tuple") to JSON Schema types with
bfcl-eval's own converter; the checker still sees the original docs.

Supported: the Python-language AST categories, and the relevance categories (irrelevance,
live_irrelevance: right when the answer holds no function call, ``[]`` or no JSON; live_relevance:
right when it holds one), judged as bfcl-eval's relevance runner does. Java/JavaScript categories
expect every argument as a language-literal string, which a JSON-format prompt does not ask for;
multi-turn, memory and web-search categories need an agent loop.

``summary`` computes BFCL's own aggregates over the categories evaluated, with bfcl-eval's
helpers: the Non-Live AST summary (unweighted mean of simple, multiple, parallel,
parallel_multiple; BFCL's "simple" also averages Java and JavaScript, which are not run here, so
ours is the Python part) and the Live AST summary (mean weighted by category size), plus the
relevance detection rates.
"""

from __future__ import annotations

import copy
import json
import os
import random
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from trellis.structured import prompts

# Metric name; per-example scores carry the same name.
METRICS = ("accuracy",)

# Older (v3) names of the categories and the names v4 files use.
_ALIASES = {"simple": "simple_python"}

# AST-scored, Python-language categories, then the relevance ones (see the module docstring).
AST = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
RELEVANCE = ("irrelevance", "live_irrelevance", "live_relevance")
SUPPORTED = AST + RELEVANCE

# BFCL's summary sections: (name, categories, how bfcl-eval aggregates them).
SUMMARY_SECTIONS = (
    ("non_live_ast", ("simple_python", "multiple", "parallel", "parallel_multiple"), "unweighted"),
    ("live_ast", ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"), "weighted"),
    ("irrelevance", ("irrelevance",), "weighted"),
    ("live_irrelevance", ("live_irrelevance",), "weighted"),
    ("live_relevance", ("live_relevance",), "weighted"),
)


@lru_cache(maxsize=1)
def _bfcl() -> dict[str, Any]:
    """Import bfcl-eval lazily (it pulls in every provider SDK: seconds of import time).

    bfcl_eval.constants.eval_config creates result/, score/ and .file_locks/ under
    BFCL_PROJECT_ROOT at import time; unset, that is the site-packages directory, which may be
    read-only (a conda env) and must not be written into. Point it at a scratch directory unless
    the user chose one.
    """
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(Path(tempfile.gettempdir()) / "trellis-bfcl"))
    from bfcl_eval.constants import eval_config
    from bfcl_eval.constants.category_mapping import VERSION_PREFIX
    from bfcl_eval.constants.enums import Language, ModelStyle
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.eval_runner_helper import (
        calculate_unweighted_accuracy,
        calculate_weighted_accuracy,
    )
    from bfcl_eval.model_handler.utils import convert_to_tool
    from bfcl_eval.utils import (
        is_function_calling_format_output,
        load_dataset_entry,
        load_ground_truth_entry,
    )

    # The checker's model_name only decides whether "." in expected function names is rewritten
    # to "_" (for APIs that forbid dots). We keep dotted names in the prompt, so pick a
    # prompting-mode model whose config leaves names alone.
    checker_model = "gorilla-openfunctions-v2"
    if checker_model not in MODEL_CONFIG_MAPPING or MODEL_CONFIG_MAPPING[checker_model].underscore_to_dot:
        checker_model = next(
            name
            for name, cfg in MODEL_CONFIG_MAPPING.items()
            if not cfg.underscore_to_dot and "_" not in name and "/" not in name
        )
    return {
        "prompt_path": Path(eval_config.PROMPT_PATH),
        "answer_path": Path(eval_config.POSSIBLE_ANSWER_PATH),
        "version": VERSION_PREFIX,
        "Language": Language,
        "ModelStyle": ModelStyle,
        "GORILLA_TO_OPENAPI": GORILLA_TO_OPENAPI,
        "ast_checker": ast_checker,
        "convert_to_tool": convert_to_tool,
        "is_format_ok": is_function_calling_format_output,
        "load_dataset_entry": load_dataset_entry,
        "load_ground_truth_entry": load_ground_truth_entry,
        "checker_model": checker_model,
        "unweighted": calculate_unweighted_accuracy,
        "weighted": calculate_weighted_accuracy,
    }


def resolve_category(category: str) -> str:
    """'simple', 'BFCL_v3_simple', 'BFCL_v4_simple_python' -> 'simple_python' (the v4 name)."""
    name = category
    for prefix in ("BFCL_v4_", "BFCL_v3_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    name = _ALIASES.get(name, name)
    if name not in SUPPORTED:
        raise ValueError(
            f"unsupported BFCL category {category!r}; supported: {', '.join(SUPPORTED)} (or 'simple')"
        )
    return name


def data_paths(category: str) -> tuple[Path, Path]:
    """(question file, possible-answer file) inside the installed bfcl_eval package."""
    b = _bfcl()
    cat = resolve_category(category)
    # Relevance categories have no possible answers: any call (or none) is the judgement.
    answers = None if cat in RELEVANCE else b["answer_path"] / f"{b['version']}_{cat}.json"
    return b["prompt_path"] / f"{b['version']}_{cat}.json", answers


def load_category(category: str, limit: int | None = None, seed: int | None = None) -> list[dict]:
    """BFCL examples of one category joined with their possible answers.

    ``limit`` keeps the first N in file order, or with ``seed`` a seeded sample of N (still in
    file order). Each entry: id, category, question (the first turn's messages), functions (BFCL
    docs as the checker needs them), possible_answer (BFCL ground truth).
    """
    b = _bfcl()
    cat = resolve_category(category)
    questions_path, answers_path = data_paths(cat)
    for p in (questions_path, answers_path):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"BFCL data file missing from the bfcl_eval install: {p}")
    # The package's own loaders: they add the same language hint to function docs as the
    # leaderboard's runs do.
    questions = b["load_dataset_entry"](cat)
    if answers_path is None:
        answers = {q["id"]: None for q in questions}
    else:
        answers = {a["id"]: a["ground_truth"] for a in b["load_ground_truth_entry"](cat)}
    entries = []
    for q in questions:
        if q["id"] not in answers:
            raise KeyError(f"{answers_path}: no possible answer for {q['id']}")
        if len(q["question"]) != 1:
            raise ValueError(
                f"{questions_path}: {q['id']} is multi-turn; only single-turn categories are supported"
            )
        entries.append(
            {
                "id": q["id"],
                "category": cat,
                "question": q["question"][0],
                "functions": q["function"],
                "possible_answer": answers[q["id"]],
            }
        )
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if seed is not None and limit < len(entries):
            keep = set(random.Random(seed).sample(range(len(entries)), limit))
            entries = [e for i, e in enumerate(entries) if i in keep]
        else:
            entries = entries[:limit]
    return entries


def question_text(entry: dict) -> str:
    """The question as one text: BFCL turns may hold a system message before the user's."""
    parts = [m["content"] for m in entry["question"] if m.get("content")]
    if not parts:
        raise ValueError(f"BFCL entry {entry['id']}: empty question")
    return "\n\n".join(parts)


def prompt_functions(entry: dict) -> list[dict]:
    """Function docs for the prompt: BFCL's, with Gorilla types converted to JSON Schema."""
    b = _bfcl()
    originals = copy.deepcopy(entry["functions"])
    converted = b["convert_to_tool"](originals, b["GORILLA_TO_OPENAPI"], b["ModelStyle"].OSSMODEL)
    out = []
    for original, tool in zip(entry["functions"], converted):
        # The OSS style also rewrites "a.b" names to "a_b" (an API restriction we do not have);
        # restore the real name so the answer the checker expects is the name the model saw.
        tool = dict(tool)
        tool["name"] = original["name"]
        out.append(
            {
                "name": tool["name"],
                "description": tool.get("description", ""),
                "parameters": tool["parameters"],
            }
        )
    return out


def messages(entry: dict) -> list[dict]:
    return prompts.function_call_messages(question_text(entry), prompt_functions(entry))


def decode_output(text: str) -> tuple[list[dict] | None, str | None]:
    """Model text -> BFCL's decoded form [{func_name: {arg: value}}] ([] for "no call"), or (None, error)."""
    value, error = prompts.extract_json(text)
    if error is not None:
        return None, f"no JSON in output: {error}"
    if value == []:
        return [], None
    # One call without the enclosing list is still an unambiguous answer; BFCL's own prompting
    # decoder likewise adds missing brackets.
    calls = value if isinstance(value, list) else [value]
    decoded = []
    for call in calls:
        if not isinstance(call, dict) or "name" not in call:
            return None, f"not a function call object: {json.dumps(call)[:200]}"
        args = call.get("arguments", {})
        if not isinstance(call["name"], str) or not isinstance(args, dict):
            return (
                None,
                f"malformed call (name must be a string, arguments an object): {json.dumps(call)[:200]}",
            )
        decoded.append({call["name"]: args})
    if not _bfcl()["is_format_ok"](decoded):
        return None, "decoded output is not in BFCL's function-call format"
    return decoded, None


def _score_relevance(entry: dict, generation_text: str) -> dict:
    # As bfcl-eval's relevance runner: a call is present when the output decodes to a non-empty
    # list of calls; irrelevance asks for none, relevance for one.
    decoded, error = decode_output(generation_text)
    has_call = bool(decoded)
    expects_call = entry["category"] == "live_relevance"
    correct = has_call == expects_call
    error_type = None
    if not correct:
        error_type = "irrelevance_error:decoder_success" if has_call else "relevance_error:decoder_failed"
    return {
        "parsed": decoded is not None,
        "correct": correct,
        "error_type": error_type,
        "error": None if correct else (error or json.dumps(decoded)[:500]),
    }


def score_example(entry: dict, generation_text: str) -> dict:
    """{parsed, correct, error_type, error}; an unparseable output is scored wrong, not dropped."""
    if entry["category"] in RELEVANCE:
        return _score_relevance(entry, generation_text)
    b = _bfcl()
    decoded, error = decode_output(generation_text)
    if decoded is None:
        return {"parsed": False, "correct": False, "error_type": "decode_failed", "error": error}
    try:
        result = b["ast_checker"](
            entry["functions"],
            decoded,
            entry["possible_answer"],
            b["Language"].PYTHON,
            entry["category"],
            b["checker_model"],
        )
    except Exception as e:
        # A model can emit values the checker's type logic was never written for (e.g. an
        # object where a list of strings is expected); that is a wrong answer, not a crash.
        return {
            "parsed": True,
            "correct": False,
            "error_type": "checker_exception",
            "error": f"{type(e).__name__}: {e}",
        }
    errors = result.get("error") or []
    return {
        "parsed": True,
        "correct": bool(result["valid"]),
        "error_type": None if result["valid"] else result.get("error_type"),
        "error": None if result["valid"] else json.dumps(errors, default=str)[:500],
    }


def example_scores(score: dict) -> dict[str, float]:
    return {"accuracy": float(score["correct"])}


def metrics(scores: list[dict]) -> dict[str, float]:
    if not scores:
        raise ValueError("no scored examples")
    return {"accuracy": sum(float(s["correct"]) for s in scores) / len(scores)}


def _first(options: list) -> Any:
    """The first option that is a value ("" in an option list means "may be left out")."""
    for option in options:
        if option != "":
            return option
    # Some live entries list no acceptable value for a required argument: no answer can pass.
    raise ValueError("possible answer lists no acceptable value for an argument")


def _pick_dict(possible: dict) -> dict:
    # Inside a dict argument each key again maps to an option list whose options are literal
    # values: the checker (dict_checker, list_dict_checker) looks exactly one level deep, and
    # there a key whose options include "" may always be left out.
    return {k: _first(opts) for k, opts in possible.items() if "" not in opts}


def _pick(options: list) -> Any:
    """One acceptable value for an argument from its BFCL option list."""
    value = _first(options)
    if isinstance(value, dict):
        return _pick_dict(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_pick_dict(v) for v in value]
    return value


def summary_sections(categories: list[str]) -> list[str]:
    """The summary sections whose categories are all among ``categories`` (config names)."""
    have = {resolve_category(c) for c in categories}
    return [name for name, cats, _ in SUMMARY_SECTIONS if set(cats) <= have]


def summary(per_category: dict[str, list[dict]]) -> dict[str, dict]:
    """BFCL's aggregates over the evaluated categories, from per-example records.

    ``per_category``: category -> the result's example records (each with an ``id`` and
    ``scores["accuracy"]``). Returns, per summary section whose categories were all evaluated,
    {"value": bfcl-eval's aggregate, "weights": {example id: weight}} where the weighted mean of
    the examples' accuracies with these weights equals the aggregate (so its bootstrap CI and
    paired deltas resample examples).
    """
    b = _bfcl()
    out = {}
    for name, categories, how in SUMMARY_SECTIONS:
        if not all(per_category.get(c) for c in categories):
            continue
        stats = []
        weights: dict[str, float] = {}
        for c in categories:
            examples = per_category[c]
            acc = sum(ex["scores"]["accuracy"] for ex in examples) / len(examples)
            stats.append({"accuracy": acc, "total_count": len(examples), "display_accuracy": acc})
            for ex in examples:
                # unweighted: every category counts 1/K, shared by its examples; weighted: every
                # example counts the same.
                weights[ex["id"]] = 1.0 / (len(categories) * len(examples)) if how == "unweighted" else 1.0
        out[name] = {"value": b[how](stats)["accuracy"], "weights": weights, "categories": list(categories)}
    return out


def reference_calls(entry: dict) -> list[dict]:
    """The possible answer as calls in the requested format: [{"name", "arguments"}].

    An argument is left out when its options allow it ("") unless the function doc lists it as
    required: a few entries mark a required parameter optional, and a few list optional keys the
    doc does not have at all; this choice passes the checker on both.
    """
    docs = {f["name"]: f for f in entry["functions"]}
    calls = []
    for call in entry["possible_answer"]:
        ((name, possible),) = call.items()
        required = set(docs.get(name, {}).get("parameters", {}).get("required", []))
        args = {k: _pick(opts) for k, opts in possible.items() if "" not in opts or k in required}
        calls.append({"name": name, "arguments": args})
    return calls


def reference_answer(entry: dict) -> str:
    """A right answer: the possible answer's calls; for relevance categories, no call
    (irrelevance) or a call of the first function (live_relevance, which only asks for a call)."""
    if entry["category"] in ("irrelevance", "live_irrelevance"):
        return "[]"
    if entry["category"] == "live_relevance":
        return json.dumps([{"name": entry["functions"][0]["name"], "arguments": {}}])
    return json.dumps(reference_calls(entry), ensure_ascii=False)
