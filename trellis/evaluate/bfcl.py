"""BFCL (Berkeley Function Calling Leaderboard) categories, scored with bfcl-eval's own checker.

Data: the question and possible-answer files that ship inside the installed ``bfcl_eval``
package (``bfcl_eval/data/BFCL_v4_<category>.json`` and ``data/possible_answer/...``), loaded
with the package's own loaders, so the test set is exactly the leaderboard's.

Two modes (config ``evaluate.bfcl.modes``), each a result file per category and a summary:

- ``prompt``: as the leaderboard runs and scores prompting models ("(Prompt)" rows), so our
  numbers sit beside its own. The messages are the question with bfcl-eval's default system
  prompt (``system_prompt_pre_processing_chat_model``: "... you MUST put it in the format of
  [func_name1(params_name1=params_value1, ...), func_name2(params)]", then the function docs as
  BFCL's JSON); the model's text (after any ``</think>``, as bfcl-eval's reasoning-model handlers
  keep it) is decoded by ``default_decode_ast_prompting`` and judged by bfcl-eval's own per-entry
  evaluation (``_evaluate_single_ast_entry``: decode, format check, ``ast_checker``;
  ``_evaluate_single_relevance_entry`` for the relevance categories), as its eval runner does.
  Results: ``bfcl_prompt_<category>.json``, ``bfcl_prompt_summary.json``.
- ``json``: our own variant. The model is asked for the JSON list
  ``[{"name": ..., "arguments": {...}}]`` of ``prompts.function_call_messages``, the format the
  study's SFT/DPO data teaches and the JSON-schema suite uses, so it measures choosing the right
  function and arguments, not whether a model trained on JSON also emits Python. The function
  docs are converted from BFCL's Gorilla type names to JSON Schema types with bfcl-eval's own
  converter; the project's JSON extractor decodes the answer into BFCL's decoded form
  ``[{func_name: {arg: value}}]`` and bfcl-eval's ``ast_checker`` judges it. Not comparable with
  the leaderboard's rows. Results: ``bfcl_<category>.json``, ``bfcl_summary.json`` (their names
  from before prompt mode existed, kept so earlier results and the demo stay as they were).

Categories: the Python AST ones (simple, multiple, parallel, parallel_multiple, live_*), the
relevance ones (irrelevance, live_irrelevance: right when the answer holds no function call;
live_relevance: right when it holds one) and, in prompt mode only, simple_java and
simple_javascript (BFCL's "simple" is the mean of the Python, Java and JavaScript parts; their
answers are language literals, which the JSON mode does not ask for) and the four multi-turn
categories (multi_turn_base, multi_turn_miss_func, multi_turn_miss_param,
multi_turn_long_context). A multi-turn entry is not one prompt and one answer: the model is asked
step by step, its calls are executed in bfcl-eval's in-process simulators (file system, trading,
travel, ...) and the results fed back, as the leaderboard's agent loop for prompting models does,
and bfcl-eval's multi-turn checker judges the calls of every step; that loop is
``trellis.evaluate.bfcl_multi_turn`` (this module loads the entries and aggregates the scores).
The JSON mode does not run them: the loop executes calls in bfcl-eval's Python syntax. Not here:
web search (needs a search API) and memory (needs an agent loop over a memory backend and, for
the vector backend, a hub embedding model): BFCL's "agentic" section.

``summary`` computes BFCL's aggregates with bfcl-eval's own helpers, as its
``generate_leaderboard_csv`` (``bfcl_eval/eval_checker/eval_runner_helper.py``) does; see
``SUMMARY_SECTIONS``.
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

MODES = ("prompt", "json")
# Result names per mode: "bfcl_<prefix><category>" and "bfcl_<prefix>summary".
_PREFIX = {"prompt": "prompt_", "json": ""}
OUTPUT_FORMATS = {
    "prompt": "python_calls (bfcl-eval's default prompting system prompt and decoder)",
    "json": "json_calls",
}

# Older (v3) names of the categories and the names v4 files use.
_ALIASES = {"simple": "simple_python", "java": "simple_java", "javascript": "simple_javascript"}

# AST-scored, Python-language categories; the Java/JavaScript ones (prompt mode only); then the
# relevance ones (see the module docstring).
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
OTHER_LANGUAGES = ("simple_java", "simple_javascript")
RELEVANCE = ("irrelevance", "live_irrelevance", "live_relevance")
# Asked step by step in an agent loop (trellis.evaluate.bfcl_multi_turn), prompt mode only.
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
PROMPT_ONLY = OTHER_LANGUAGES + MULTI_TURN
SUPPORTED = AST + OTHER_LANGUAGES + RELEVANCE + MULTI_TURN

# BFCL's summary sections, as bfcl-eval's generate_leaderboard_csv builds its columns
# (bfcl_eval/eval_checker/eval_runner_helper.py). A section is a tree: a category name, or
# (how, children) with how one of bfcl-eval's aggregators: "unweighted"
# (calculate_unweighted_accuracy: mean of the children), "weighted" (calculate_weighted_accuracy:
# mean weighted by the children's example counts), or "percentage"
# (calculate_percentage_weighted_accuracy, children given as (child, weight) pairs).
_NON_LIVE_PYTHON = ("unweighted", ("simple_python", "multiple", "parallel", "parallel_multiple"))
# The leaderboard's "Non-Live AST Acc": its "simple" is the unweighted mean of Python, Java and
# JavaScript simple.
_NON_LIVE = (
    "unweighted",
    (
        ("unweighted", ("simple_python", "simple_java", "simple_javascript")),
        "multiple",
        "parallel",
        "parallel_multiple",
    ),
)
_LIVE = ("weighted", ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"))
# "Irrelevance Detection" of the overall table: the mean of the non-live and live rates.
_IRRELEVANCE_DETECTION = ("unweighted", ("irrelevance", "live_irrelevance"))
# "Multi Turn Acc": the unweighted mean of the four multi-turn categories
# (generate_leaderboard_csv: calculate_unweighted_accuracy over base, miss_func, miss_param,
# long_context).
_MULTI_TURN = ("unweighted", MULTI_TURN)
# The overall accuracy's weights, as written in generate_leaderboard_csv:
# calculate_percentage_weighted_accuracy([non_live, live, total_irrelevance, multi_turn, agentic],
# [10, 10, 10, 30, 40]). Agentic (web search, memory) cannot run offline here; a category the
# leaderboard did not evaluate counts 0 there, which would cap our overall, so the overalls below
# apply the same weights to the sections that ran (bfcl-eval's helper normalizes them), and say
# "offline" because agentic is never among them: ``overall_offline`` is BFCL's overall restricted
# to its single-turn part (what ``validate_bfcl`` compares with the published row), and
# ``overall_offline_with_multi_turn`` adds multi-turn at its weight of 30 (everything but
# agentic). A test checks these weights against bfcl-eval's source.
LEADERBOARD_OVERALL_WEIGHTS = {"non_live": 10, "live": 10, "irrelevance": 10, "multi_turn": 30, "agentic": 40}
_SINGLE_TURN_WEIGHTED = (
    (_NON_LIVE, LEADERBOARD_OVERALL_WEIGHTS["non_live"]),
    (_LIVE, LEADERBOARD_OVERALL_WEIGHTS["live"]),
    (_IRRELEVANCE_DETECTION, LEADERBOARD_OVERALL_WEIGHTS["irrelevance"]),
)
_OVERALL_OFFLINE = ("percentage", _SINGLE_TURN_WEIGHTED)
_OVERALL_OFFLINE_WITH_MULTI_TURN = (
    "percentage",
    (*_SINGLE_TURN_WEIGHTED, (_MULTI_TURN, LEADERBOARD_OVERALL_WEIGHTS["multi_turn"])),
)

# Per mode: (section name, tree). The JSON mode keeps the sections it always had: its
# non_live_ast is the Python part (it does not run Java/JavaScript). Prompt mode reports the
# leaderboard's Non-Live AST when Java and JavaScript ran, and says "python" when they did not.
SUMMARY_SECTIONS = {
    "json": (
        ("non_live_ast", _NON_LIVE_PYTHON),
        ("live_ast", _LIVE),
        ("irrelevance", "irrelevance"),
        ("live_irrelevance", "live_irrelevance"),
        ("live_relevance", "live_relevance"),
    ),
    "prompt": (
        ("non_live_ast", _NON_LIVE),
        ("non_live_ast_python", _NON_LIVE_PYTHON),
        ("live_ast", _LIVE),
        ("irrelevance", "irrelevance"),
        ("live_irrelevance", "live_irrelevance"),
        ("live_relevance", "live_relevance"),
        ("irrelevance_detection", _IRRELEVANCE_DETECTION),
        ("multi_turn", _MULTI_TURN),
        ("overall_offline", _OVERALL_OFFLINE),
        ("overall_offline_with_multi_turn", _OVERALL_OFFLINE_WITH_MULTI_TURN),
    ),
}


@lru_cache(maxsize=1)
def _bfcl_data() -> dict[str, Any]:
    """bfcl-eval's data files, their loaders and its prompt-side helpers, imported lazily.

    These modules import in a fraction of a second, unlike its checkers (``_bfcl``), which pull in
    every provider SDK through its model table (seconds): jobs that only read the data (the
    post-training build's evaluation index, preparing prompts) never pay for those.

    bfcl_eval.constants.eval_config creates result/, score/ and .file_locks/ under
    BFCL_PROJECT_ROOT at import time; unset, that is the site-packages directory, which may be
    read-only (a conda env) and must not be written into. Point it at a scratch directory unless
    the user chose one.
    """
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(Path(tempfile.gettempdir()) / "trellis-bfcl"))
    from bfcl_eval.constants import eval_config
    from bfcl_eval.constants.category_mapping import VERSION_PREFIX
    from bfcl_eval.constants.enums import Language, ModelStyle, ReturnFormat
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
    from bfcl_eval.model_handler.utils import (
        convert_to_function_call,
        convert_to_tool,
        default_decode_ast_prompting,
        system_prompt_pre_processing_chat_model,
    )
    from bfcl_eval.utils import (
        add_language_specific_hint_to_function_doc,
        is_function_calling_format_output,
        load_dataset_entry,
        load_ground_truth_entry,
    )

    return {
        "prompt_path": Path(eval_config.PROMPT_PATH),
        "answer_path": Path(eval_config.POSSIBLE_ANSWER_PATH),
        "version": VERSION_PREFIX,
        "Language": Language,
        "ReturnFormat": ReturnFormat,
        "ModelStyle": ModelStyle,
        "GORILLA_TO_OPENAPI": GORILLA_TO_OPENAPI,
        "convert_to_tool": convert_to_tool,
        "convert_to_function_call": convert_to_function_call,
        "decode_ast_prompting": default_decode_ast_prompting,
        "system_prompt": system_prompt_pre_processing_chat_model,
        "add_language_hint": add_language_specific_hint_to_function_doc,
        "is_format_ok": is_function_calling_format_output,
        "load_dataset_entry": load_dataset_entry,
        "load_ground_truth_entry": load_ground_truth_entry,
    }


@lru_cache(maxsize=1)
def _bfcl() -> dict[str, Any]:
    """``_bfcl_data`` and bfcl-eval's checkers and leaderboard arithmetic, imported lazily (they
    import its model table, and with it every provider SDK: seconds of import time)."""
    data = _bfcl_data()
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.eval_runner import (
        _evaluate_single_ast_entry,
        _evaluate_single_relevance_entry,
    )
    from bfcl_eval.eval_checker.eval_runner_helper import (
        calculate_percentage_weighted_accuracy,
        calculate_unweighted_accuracy,
        calculate_weighted_accuracy,
    )

    # The checker's model_name only decides whether "." in expected function names is rewritten
    # to "_" (for APIs that forbid dots). Both modes keep dotted names in the prompt (as the
    # leaderboard's prompting models see them), so pick a prompting-mode model whose config
    # leaves names alone.
    checker_model = "gorilla-openfunctions-v2"
    if checker_model not in MODEL_CONFIG_MAPPING or MODEL_CONFIG_MAPPING[checker_model].underscore_to_dot:
        checker_model = next(
            name
            for name, cfg in MODEL_CONFIG_MAPPING.items()
            if not cfg.underscore_to_dot and "_" not in name and "/" not in name
        )
    return data | {
        "ast_checker": ast_checker,
        "evaluate_ast_entry": _evaluate_single_ast_entry,
        "evaluate_relevance_entry": _evaluate_single_relevance_entry,
        "checker_model": checker_model,
        "unweighted": calculate_unweighted_accuracy,
        "weighted": calculate_weighted_accuracy,
        "percentage": calculate_percentage_weighted_accuracy,
    }


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown BFCL mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


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


def check_category_mode(category: str, mode: str) -> str:
    """The v4 name of ``category``, or an error when ``mode`` cannot score it."""
    cat = resolve_category(category)
    if _check_mode(mode) == "json" and cat in OTHER_LANGUAGES:
        raise ValueError(
            f"BFCL category {category!r} runs in prompt mode only: its answers are {cat.split('_')[1]} "
            "literals, which the JSON mode does not ask for (evaluate.bfcl.modes)"
        )
    if mode == "json" and cat in MULTI_TURN:
        raise ValueError(
            f"BFCL category {category!r} runs in prompt mode only: its agent loop executes the calls "
            "of each step in bfcl-eval's Python call syntax, which the JSON mode does not ask for "
            "(evaluate.bfcl.modes)"
        )
    return cat


def benchmark_name(mode: str, category: str) -> str:
    """The result name of a category in a mode: bfcl_prompt_simple, bfcl_simple (json)."""
    return f"bfcl_{_PREFIX[_check_mode(mode)]}{category}"


def summary_name(mode: str) -> str:
    return f"bfcl_{_PREFIX[_check_mode(mode)]}summary"


def split_benchmark(suffix: str) -> tuple[str, str]:
    """What follows "bfcl_" in a result name -> (mode, category): 'prompt_simple' -> ('prompt',
    'simple'), 'simple' -> ('json', 'simple')."""
    for mode, prefix in _PREFIX.items():
        if prefix and suffix.startswith(prefix):
            return mode, suffix[len(prefix) :]
    return "json", suffix


def mode_categories(cfg: dict) -> dict[str, list[str]]:
    """The categories each configured mode runs (``evaluate.bfcl``: categories, modes; JSON alone
    when modes is absent): all of them, but the prompt-only ones (Java, JavaScript, multi-turn) in
    prompt mode only. Errors (an unknown mode or category, a category no configured mode can
    score) name the config key."""
    categories = list(cfg["categories"])
    modes = [_check_mode(m) for m in cfg.get("modes", ["json"])]
    for c in categories:
        resolve_category(c)
    out = {
        m: [c for c in categories if m == "prompt" or resolve_category(c) not in PROMPT_ONLY] for m in modes
    }
    if "prompt" not in modes:
        for c in categories:
            check_category_mode(c, "json")  # a prompt-only category that nothing would run
    return out


def result_names(cfg: dict) -> list[str]:
    """Every BFCL result file name the evaluate job writes for the ``evaluate.bfcl`` config: per
    mode, one per category it runs, then the summary when one of its sections can be computed."""
    names = []
    for mode, categories in mode_categories(cfg).items():
        names += [benchmark_name(mode, c) for c in categories]
        if summary_sections(categories, mode):
            names.append(summary_name(mode))
    return names


def data_paths(category: str) -> tuple[Path, Path | None]:
    """(question file, possible-answer file) inside the installed bfcl_eval package."""
    b = _bfcl_data()
    cat = resolve_category(category)
    # Relevance categories have no possible answers: any call (or none) is the judgement.
    answers = None if cat in RELEVANCE else b["answer_path"] / f"{b['version']}_{cat}.json"
    return b["prompt_path"] / f"{b['version']}_{cat}.json", answers


def load_category(
    category: str, limit: int | None = None, seed: int | None = None, mode: str = "json"
) -> list[dict]:
    """BFCL examples of one category joined with their possible answers.

    ``limit`` keeps the first N in file order, or with ``seed`` a seeded sample of N (still in
    file order). Each entry: id, category, mode, question (the first turn's messages), functions
    (BFCL's docs as its evaluation hands them to the checker), prompt_docs (the docs as its
    inference puts them in the prompt: with the language hint, "Note that the provided function is
    in Python 3 syntax.", and for Java/JavaScript every parameter typed as a string), and
    possible_answer (BFCL ground truth). Multi-turn entries differ: see ``_multi_turn_entries``.
    """
    b = _bfcl_data()
    cat = resolve_category(category)
    _check_mode(mode)
    questions_path, answers_path = data_paths(cat)
    for p in (questions_path, answers_path):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"BFCL data file missing from the bfcl_eval install: {p}")
    if cat in MULTI_TURN:
        return _limited(_multi_turn_entries(cat, mode, answers_path), limit, seed)
    # The package's own loaders. Its eval runner loads the docs without the language hint and
    # its inference with it; the hint retypes Java/JavaScript parameters, so the two differ.
    questions = b["load_dataset_entry"](cat, include_language_specific_hint=False)
    hinted = {q["id"]: q["function"] for q in b["add_language_hint"](copy.deepcopy(questions))}
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
                "mode": mode,
                "question": q["question"][0],
                "functions": q["function"],
                "prompt_docs": hinted[q["id"]],
                "possible_answer": answers[q["id"]],
            }
        )
    return _limited(entries, limit, seed)


def _limited(entries: list[dict], limit: int | None, seed: int | None) -> list[dict]:
    """The first ``limit`` entries, or with ``seed`` a seeded sample of them in file order."""
    if limit is None:
        return entries
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if seed is not None and limit < len(entries):
        keep = set(random.Random(seed).sample(range(len(entries)), limit))
        return [e for i, e in enumerate(entries) if i in keep]
    return entries[:limit]


def _multi_turn_entries(category: str, mode: str, answers_path: Path) -> list[dict]:
    """A multi-turn category's entries, as the leaderboard's inference loads them.

    bfcl-eval's ``load_dataset_entry`` adds the docs of the involved classes (the questions file
    has none), moves the held-out ones of miss_func to ``missed_function`` and adds the language
    hint (to the docs that stay; the held-out ones are moved before the hint and keep none).
    Each entry: id, category, mode, question (every turn's messages; a held-out turn has none),
    prompt_docs (the docs of the first system prompt), missed_function ({turn index as a string:
    the docs added at that turn}), functions (every doc the conversation shows: prompt_docs and
    the held-out ones), involved_classes and initial_config (the simulators and their state), and
    possible_answer (per turn, the ground-truth call strings; [] where no call can answer).
    """
    b = _bfcl_data()
    answers = {a["id"]: a["ground_truth"] for a in b["load_ground_truth_entry"](category)}
    entries = []
    for q in b["load_dataset_entry"](category):
        if q["id"] not in answers:
            raise KeyError(f"{answers_path}: no possible answer for {q['id']}")
        if len(answers[q["id"]]) != len(q["question"]):
            raise ValueError(
                f"{answers_path}: {q['id']} has {len(answers[q['id']])} answer turns for "
                f"{len(q['question'])} question turns"
            )
        missed = q.get("missed_function", {})
        entries.append(
            {
                "id": q["id"],
                "category": category,
                "mode": mode,
                "question": q["question"],
                "prompt_docs": q["function"],
                "missed_function": missed,
                "functions": q["function"] + [doc for docs in missed.values() for doc in docs],
                "involved_classes": q["involved_classes"],
                "initial_config": q.get("initial_config", {}),
                "possible_answer": answers[q["id"]],
            }
        )
    return entries


def _single_turn(entry: dict) -> dict:
    """``entry``, or an error where it is multi-turn (asked and scored by bfcl_multi_turn)."""
    if entry["category"] in MULTI_TURN:
        raise ValueError(
            f"BFCL entry {entry['id']} is multi-turn: it is asked step by step and scored by "
            "trellis.evaluate.bfcl_multi_turn.run, not as one prompt and one answer"
        )
    return entry


def question_text(entry: dict) -> str:
    """The question as one text: BFCL turns may hold a system message before the user's."""
    parts = [m["content"] for m in _single_turn(entry)["question"] if m.get("content")]
    if not parts:
        raise ValueError(f"BFCL entry {entry['id']}: empty question")
    return "\n\n".join(parts)


def prompt_functions(entry: dict) -> list[dict]:
    """JSON mode: function docs for the prompt, BFCL's with Gorilla types converted to JSON Schema."""
    b = _bfcl_data()
    docs = entry["prompt_docs"]
    converted = b["convert_to_tool"](copy.deepcopy(docs), b["GORILLA_TO_OPENAPI"], b["ModelStyle"].OSSMODEL)
    out = []
    for original, tool in zip(docs, converted):
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
    """The chat messages of an entry in its mode (see the module docstring)."""
    mode = entry.get("mode", "json")
    # Loading a Java/JavaScript or multi-turn entry in JSON mode is fine (its docs are eval
    # identities, see trellis.evaluate.identities); asking a model for it is not.
    check_category_mode(entry["category"], mode)
    _single_turn(entry)
    if mode == "prompt":
        # What bfcl-eval's prompting handlers send (OSSHandler._pre_query_processing_prompting):
        # its default system prompt with the docs, before (or merged into) the question's own
        # system message. It mutates its arguments: give it copies.
        b = _bfcl_data()
        return b["system_prompt"](
            copy.deepcopy(entry["question"]), copy.deepcopy(entry["prompt_docs"]), entry["id"]
        )
    return prompts.function_call_messages(question_text(entry), prompt_functions(entry))


def decode_output(text: str) -> tuple[list[dict] | None, str | None]:
    """JSON mode: model text -> BFCL's decoded form [{func_name: {arg: value}}] ([] for "no
    call"), or (None, error)."""
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
    if not _bfcl_data()["is_format_ok"](decoded):
        return None, "decoded output is not in BFCL's function-call format"
    return decoded, None


def prompt_response(text: str) -> str:
    """The part of a prompt-mode generation that BFCL decodes: after the last ``</think>``.

    bfcl-eval's handlers of reasoning models keep only that (QwenHandler and the other
    ``_parse_query_response_prompting``: ``text.split("</think>")[-1].lstrip("\\n")``); a model
    that does not think is unaffected.
    """
    if "</think>" in text:
        return text.split("</think>")[-1].lstrip("\n")
    return text


class _PromptingHandler:
    """What bfcl-eval's per-entry evaluation asks of a model handler: its decoder. A prompting
    model's is ``default_decode_ast_prompting`` (OSSHandler.decode_ast and BaseHandler's)."""

    def decode_ast(self, result, language, has_tool_call_tag=False):
        return _bfcl_data()["decode_ast_prompting"](result, language, has_tool_call_tag)


def _language(category: str) -> tuple[Any, Any]:
    """(checker Language, decoder ReturnFormat) as bfcl-eval's ast_file_runner picks them."""
    b = _bfcl_data()
    if category == "simple_java":
        return b["Language"].JAVA, b["ReturnFormat"].JAVA
    if category == "simple_javascript":
        return b["Language"].JAVASCRIPT, b["ReturnFormat"].JAVASCRIPT
    return b["Language"].PYTHON, b["ReturnFormat"].PYTHON


def _score_prompt(entry: dict, generation_text: str) -> dict:
    """Prompt mode: bfcl-eval's own per-entry evaluation of the response, as its eval runner
    calls it. ``parsed``: the response decoded to calls (a relevance answer without a call that
    is right, e.g. prose for irrelevance, is not "parsed")."""
    b = _bfcl()
    response = prompt_response(generation_text)
    handler = _PromptingHandler()
    # The evaluation reads the docs (without the language hint, as its runner loads them).
    prompt_entry = {"id": entry["id"], "question": [entry["question"]], "function": entry["functions"]}
    try:
        decoded = handler.decode_ast(response, _language(entry["category"])[1])
        parsed = b["is_format_ok"](decoded)
    except Exception:
        decoded, parsed = None, False
    try:
        if entry["category"] in RELEVANCE:
            result = b["evaluate_relevance_entry"](
                handler, entry["id"], response, prompt_entry, b["checker_model"], entry["category"]
            )
        else:
            language, return_format = _language(entry["category"])
            result = b["evaluate_ast_entry"](
                handler,
                entry["id"],
                response,
                entry["possible_answer"],
                prompt_entry,
                b["checker_model"],
                entry["category"],
                language=language,
                return_format=return_format,
                has_tool_call_tag=False,
            )
    except Exception as e:
        # A model can emit values the checker's type logic was never written for (e.g. an
        # object where a list of strings is expected); that is a wrong answer, not a crash.
        return {
            "parsed": parsed,
            "correct": False,
            "error_type": "checker_exception",
            "error": f"{type(e).__name__}: {e}",
        }
    valid = bool(result["valid"])
    return {
        "parsed": parsed,
        "correct": valid,
        "error_type": None if valid else result.get("error_type"),
        "error": None if valid else json.dumps(result.get("error"), default=str)[:500],
        "decoded": None if decoded is None else json.dumps(decoded, default=str)[:500],
    }


def _score_relevance(entry: dict, generation_text: str) -> dict:
    # JSON mode, as bfcl-eval's relevance runner: a call is present when the output decodes to a
    # non-empty list of calls; irrelevance asks for none, relevance for one.
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
    _single_turn(entry)
    if entry.get("mode", "json") == "prompt":
        return _score_prompt(entry, generation_text)
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


def shots(mode: str, json_shots: list[tuple[list[dict], str]]) -> list[tuple[list[dict], str]]:
    """Base models' few-shot examples in the mode's answer format. The shots come from the TRAIN
    function pool as JSON calls (``trellis.evaluate.shots.bfcl_shots``); prompt mode shows the
    same calls in the Python syntax its system prompt asks for."""
    if _check_mode(mode) == "json":
        return json_shots
    out = []
    for shot_messages, answer in json_shots:
        calls = json.loads(answer)
        out.append((shot_messages, python_calls([{c["name"]: c.get("arguments", {})} for c in calls])))
    return out


def python_calls(decoded: list[dict]) -> str:
    """BFCL's decoded form [{name: {arg: value}}] as the prompt asks for it: "[f(a=1), g(b='x')]",
    written by bfcl-eval's own convert_to_function_call."""
    return "[" + ", ".join(_bfcl_data()["convert_to_function_call"](decoded)) + "]"


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


def _leaves(tree) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    how, children = tree
    if how == "percentage":
        children = [child for child, _ in children]
    return [c for child in children for c in _leaves(child)]


def summary_sections(categories: list[str], mode: str = "json") -> list[str]:
    """The summary sections of ``mode`` whose categories are all among ``categories``."""
    have = {resolve_category(c) for c in categories}
    return [name for name, tree in SUMMARY_SECTIONS[_check_mode(mode)] if set(_leaves(tree)) <= have]


def _aggregate(tree, per_category: dict[str, list[dict]]) -> tuple[dict, dict[str, float]]:
    """(bfcl-eval's accuracy record for ``tree``, {example id: weight}).

    The record comes from bfcl-eval's own aggregators. The weights are such that the weighted mean
    of the examples' accuracies equals its accuracy, so bootstrap CIs and paired deltas of an
    aggregate resample examples: a category's examples weigh 1 each, and an aggregate scales each
    child's weights so that the child's total is its share (1/K unweighted, its size for
    "weighted", its normalized weight for "percentage").
    """
    b = _bfcl()
    if isinstance(tree, str):
        examples = per_category[tree]
        acc = sum(ex["scores"]["accuracy"] for ex in examples) / len(examples)
        stats = {"accuracy": acc, "total_count": len(examples), "display_accuracy": acc}
        return stats, {ex["id"]: 1.0 for ex in examples}
    how, children = tree
    pairs = children if how == "percentage" else [(child, None) for child in children]
    parts = [(_aggregate(child, per_category), w) for child, w in pairs]
    stats_list = [stats for (stats, _), _ in parts]
    if how == "unweighted":
        stats = b["unweighted"](stats_list)
        shares = [1.0 / len(parts)] * len(parts)
    elif how == "weighted":
        stats = b["weighted"](stats_list)
        shares = [None] * len(parts)  # keep each example's weight: the mean is by size
    elif how == "percentage":
        stats = b["percentage"](stats_list, [w for _, w in parts])
        total = sum(w for _, w in parts)
        shares = [w / total for _, w in parts]
    else:
        raise ValueError(f"unknown aggregation {how!r}")
    weights: dict[str, float] = {}
    for ((_, child_weights), _), share in zip(parts, shares):
        scale = 1.0 if share is None else share / sum(child_weights.values())
        for ex_id, w in child_weights.items():
            if ex_id in weights:
                raise ValueError(f"example {ex_id} appears in two categories of one BFCL section")
            weights[ex_id] = w * scale
    return stats, weights


def summary(per_category: dict[str, list[dict]], mode: str = "json") -> dict[str, dict]:
    """BFCL's aggregates over the evaluated categories, from per-example records.

    ``per_category``: category -> the result's example records (each with an ``id`` and
    ``scores["accuracy"]``). Returns, per summary section of ``mode`` whose categories were all
    evaluated, {"value": bfcl-eval's aggregate, "weights": {example id: weight}, "categories":
    [...]} where the weighted mean of the examples' accuracies with these weights equals the
    aggregate (so its bootstrap CI and paired deltas resample examples).
    """
    out = {}
    for name, tree in SUMMARY_SECTIONS[_check_mode(mode)]:
        categories = _leaves(tree)
        if not all(per_category.get(c) for c in categories):
            continue
        stats, weights = _aggregate(tree, per_category)
        out[name] = {"value": stats["accuracy"], "weights": weights, "categories": categories}
    return out


def reference_calls(entry: dict) -> list[dict]:
    """The possible answer as calls in the requested format: [{"name", "arguments"}].

    An argument is left out when its options allow it ("") unless the function doc lists it as
    required: a few entries mark a required parameter optional, and a few list optional keys the
    doc does not have at all; this choice passes the checker on both.
    """
    docs = {f["name"]: f for f in _single_turn(entry)["functions"]}
    calls = []
    for call in entry["possible_answer"]:
        ((name, possible),) = call.items()
        required = set(docs.get(name, {}).get("parameters", {}).get("required", []))
        args = {k: _pick(opts) for k, opts in possible.items() if "" not in opts or k in required}
        calls.append({"name": name, "arguments": args})
    return calls


def reference_answer(entry: dict) -> str:
    """A right answer in the entry's mode: the possible answer's calls; for relevance
    categories, no call (irrelevance) or a call of the first function (live_relevance, which
    only asks for a call). Python categories only in prompt mode (Java/JavaScript answers are
    language literals)."""
    prompt = entry.get("mode", "json") == "prompt"
    _single_turn(entry)  # multi-turn: trellis.evaluate.bfcl_multi_turn.reference_model
    if entry["category"] in OTHER_LANGUAGES:
        raise ValueError(f"{entry['id']}: no generated reference answer for {entry['category']}")
    if entry["category"] in ("irrelevance", "live_irrelevance"):
        return "[]"
    if entry["category"] == "live_relevance":
        name = entry["functions"][0]["name"]
        return python_calls([{name: {}}]) if prompt else json.dumps([{"name": name, "arguments": {}}])
    calls = reference_calls(entry)
    if prompt:
        return python_calls([{c["name"]: c["arguments"]} for c in calls])
    return json.dumps(calls, ensure_ascii=False)
