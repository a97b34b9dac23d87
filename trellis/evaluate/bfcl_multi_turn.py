"""BFCL's multi-turn categories in prompt mode: bfcl-eval's agent loop for prompting models, run
offline on bfcl-eval's simulators, and bfcl-eval's multi-turn checker.

A multi-turn entry is a conversation of several user turns over stateful APIs (a file system,
trading, travel booking, messaging, ...) that bfcl-eval simulates in-process
(``bfcl_eval/eval_checker/multi_turn_eval/func_source_code``). Within a turn the model answers in
steps: each step's calls are executed in the simulators and their results are fed back, until the
model answers without a call; then the next turn's user message comes. ``run`` is that loop,
mirroring ``BaseHandler.inference_multi_turn_prompting`` (bfcl_eval/model_handler/base_handler.py)
step for step with bfcl-eval's own functions:

- the first turn gets bfcl-eval's default system prompt with the docs
  (``system_prompt_pre_processing_chat_model``, as ``OSSHandler._pre_query_processing_prompting``);
- a held-out turn of miss_func (no user message) becomes
  ``DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING`` with the held-out docs;
- each step: the model's text (after any ``</think>``, as the reasoning handlers keep it) is the
  assistant message; ``default_decode_execute_prompting`` decodes it into call strings; a text
  that does not decode, or decodes to no call, ends the turn (``is_empty_execute_response``);
  otherwise ``execute_multi_turn_func_call`` runs the calls and the results come back as one
  user message written by ``format_execution_results_prompting`` (the base handler's default for
  prompting: "execution results are added back as a `user` role message, as most models don't
  support the `tool` role in prompting mode"; the project's chat template has no tool role);
- a turn with more than ``MAXIMUM_STEP_LIMIT`` steps of calls (``step_limit``) is force-quit, and
  with it the whole entry (the checker then fails it as force-terminated).

The model is a function ``generate(requests) -> texts``, one text per ``StepRequest`` (the
conversation so far, and which entry, turn and step it is): ``run`` advances every unfinished
entry by one step per call, so a real model generates for them in one batch (see
``trellis.evaluate.dispatch``, which renders the messages with the stage's prompt format,
``prompt_text``).

Scoring: as soon as an entry's conversation ends, bfcl-eval's per-entry evaluation
(``_evaluate_single_multi_turn_entry`` of its eval runner: force-termination check, decoding of
every step, ``multi_turn_checker``: the state of the simulators and the calls' results after
each turn against the ground truth's) judges the model's texts per turn and step, the format of
the leaderboard's result files.

Simulator state: ``execute_multi_turn_func_call`` keeps one instance per (model name, entry id,
class) in its module's globals, created from the entry's initial config on first use and found
again on later steps; its checker adds "_eval" and "_ground_truth_eval" to the model name for its
own instances. Here the "model name" is a fresh random key per entry and run
(``trellis_<uuid>``), so no two entries or runs (two models, the same model twice, a test) can
see each other's state, and every instance of the key is deleted once the entry is scored (or the
run fails).

One addition to bfcl-eval's loop: its simulators are driven by ``eval`` of the decoded call
strings in the globals of ``multi_turn_utils`` (builtins included), guarded only by a short
blocklist (kill, exit, remove, ...). A call string that names anything Python would resolve there
(``open``, ``__import__``, ``importlib``, a simulator instance) other than a public method of the
entry's simulator classes, or an attribute starting with "_", is refused before it is executed:
the step counts as one that does not decode (in the loop it ends the turn; in the checker, which
decodes through the same handler, the step is skipped). Calls of functions that do not exist are
left alone: bfcl-eval answers them with "Error during execution: name ... is not defined", and
so do we.
"""

from __future__ import annotations

import ast
import builtins
import copy
import importlib
import inspect
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from trellis.evaluate import bfcl
from trellis.structured import prompts


@lru_cache(maxsize=1)
def _api() -> dict[str, Any]:
    """bfcl-eval's multi-turn pieces, imported lazily (after ``bfcl._bfcl_data`` has pointed
    BFCL_PROJECT_ROOT at a scratch directory: see there)."""
    bfcl._bfcl_data()
    from bfcl_eval.constants.default_prompts import (
        DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING,
        MAXIMUM_STEP_LIMIT,
    )
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING
    from bfcl_eval.eval_checker.eval_runner import _evaluate_single_multi_turn_entry
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
    from bfcl_eval.model_handler.utils import (
        default_decode_execute_prompting,
        format_execution_results_prompting,
        system_prompt_pre_processing_chat_model,
    )

    return {
        "additional_function_prompt": DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING,
        "step_limit": MAXIMUM_STEP_LIMIT,
        "class_modules": CLASS_FILE_PATH_MAPPING,
        "evaluate_entry": _evaluate_single_multi_turn_entry,
        "utils": multi_turn_utils,
        "execute": multi_turn_utils.execute_multi_turn_func_call,
        "is_empty": multi_turn_utils.is_empty_execute_response,
        "decode_execute": default_decode_execute_prompting,
        "format_results": format_execution_results_prompting,
        "system_prompt": system_prompt_pre_processing_chat_model,
    }


def default_step_limit() -> int:
    """bfcl-eval's MAXIMUM_STEP_LIMIT: steps of calls a turn may take before it is force-quit."""
    return int(_api()["step_limit"])


@dataclass(frozen=True)
class StepRequest:
    """One model step: the conversation so far (system prompt first, ending with a user message:
    the turn's question or the last step's execution results), and where it is."""

    entry_id: str
    turn: int  # index of the user turn being answered
    step: int  # model steps already taken in this turn
    messages: list[dict]


Generate = Callable[[list[StepRequest]], Sequence[str]]


@cache
def _simulator_class(name: str):
    module = _api()["class_modules"].get(name)
    if module is None:
        raise ValueError(f"unknown BFCL simulator class {name!r}")
    return getattr(importlib.import_module(module), name)


def _methods(classes: Sequence[str]) -> dict[str, inspect.Signature]:
    """The public methods of the simulator classes (what bfcl-eval's executor maps call names to),
    with their signatures."""
    out = {}
    for name in classes:
        cls = _simulator_class(name)
        for method, fn in inspect.getmembers(cls, inspect.isfunction):
            if not method.startswith("_"):
                out[method] = inspect.signature(fn)
    return out


def _python_name(call: str, methods: dict) -> str | None:
    """The first name in ``call`` that ``eval`` in bfcl-eval's executor would resolve to Python
    itself rather than to a simulator method (see the module docstring), or None."""
    try:
        tree = ast.parse(call, mode="eval")
    except SyntaxError:
        return None  # bfcl-eval's executor reports it as an execution error
    python = set(dir(builtins)) | set(vars(_api()["utils"]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in methods and node.id in python:
            return node.id
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return node.attr
    return None


class _Handler:
    """What bfcl-eval's multi-turn evaluation asks of a prompting model's handler: its
    ``decode_execute`` (``default_decode_execute_prompting``, OSSHandler's), with calls that
    would run Python itself refused (module docstring)."""

    def __init__(self, entry: dict):
        self.entry_id = entry["id"]
        self.classes = list(entry["involved_classes"])
        self.methods = _methods(self.classes)

    def decode_execute(self, result, has_tool_call_tag=False):
        calls = _api()["decode_execute"](result, has_tool_call_tag)
        for call in calls:
            name = _python_name(call, self.methods)
            if name is not None:
                raise ValueError(
                    f"{self.entry_id}: call {call[:200]!r} names {name!r}, which is Python's, not a "
                    f"function of {', '.join(self.classes)}: not executed"
                )
        return calls


def _long_context(entry_id: str) -> bool:
    # As the base handler and the checker decide it, from the category part of the id.
    category = entry_id.rsplit("_", 1)[0]
    return "long_context" in category or "composite" in category


def release(key: str) -> None:
    """Delete every simulator instance bfcl-eval keeps for the model name ``key`` (the loop's,
    and its checker's "_eval" and "_ground_truth_eval" ones)."""
    names = vars(_api()["utils"])
    for name in [n for n in names if n.startswith(f"{key}_")]:
        del names[name]


class _Conversation:
    """One entry's conversation, advanced a step at a time; mirrors
    ``BaseHandler.inference_multi_turn_prompting`` with OSSHandler's message bookkeeping."""

    def __init__(self, entry: dict, step_limit: int):
        api = _api()
        self.entry = entry
        self.id = entry["id"]
        self.key = f"trellis_{uuid.uuid4().hex}"  # bfcl-eval's "model name": unique per entry and run
        self.step_limit = step_limit
        self.handler = _Handler(entry)
        # OSSHandler._pre_query_processing_prompting: the system prompt with the docs joins the
        # first turn's messages. bfcl-eval's helper edits its arguments in place: copies.
        self.question = copy.deepcopy(entry["question"])
        if not self.question or not self.question[0]:
            raise ValueError(f"BFCL entry {self.id}: the first turn has no message")
        self.question[0] = api["system_prompt"](
            self.question[0], copy.deepcopy(entry["prompt_docs"]), self.id
        )
        self.messages: list[dict] = []
        self.turns: list[list[str]] = []  # the model's texts per turn and step: what the checker judges
        self.steps: list[str] = []  # the current turn's
        self.turn = -1
        self.count = 0  # steps of calls executed in the current turn
        self.generations = 0
        self.force_terminated = False
        self.done = False
        self._next_turn()

    def _next_turn(self) -> None:
        self.turn += 1
        if self.turn == len(self.question):
            self.done = True
            return
        message = self.question[self.turn]
        holdout = self.entry.get("missed_function", {}).get(str(self.turn))
        if holdout is not None:
            # miss_func: the turn that brings the held-out functions has no user message of its
            # own; the base handler writes one that lists them.
            if message:
                raise ValueError(
                    f"BFCL entry {self.id}: turn {self.turn} holds out functions but has a message"
                )
            message = [
                {"role": "user", "content": _api()["additional_function_prompt"].format(functions=holdout)}
            ]
        if not message:
            raise ValueError(f"BFCL entry {self.id}: turn {self.turn} has no message")
        self.messages.extend(message)
        self.steps, self.count = [], 0

    def request(self) -> StepRequest:
        return StepRequest(self.id, self.turn, len(self.steps), copy.deepcopy(self.messages))

    def answer(self, text: str) -> None:
        """Take the model's text for the current step and execute its calls."""
        api = _api()
        self.generations += 1
        response = bfcl.prompt_response(text)
        self.steps.append(response)
        self.messages.append({"role": "assistant", "content": response})
        try:
            calls = self.handler.decode_execute(response, has_tool_call_tag=False)
        except Exception:
            calls = None  # not a call list: the turn is over, as in bfcl-eval
        if calls is None or api["is_empty"](calls):
            self._end_turn()
            return
        results, _ = api["execute"](
            calls,
            self.entry.get("initial_config", {}),
            self.entry["involved_classes"],
            self.key,
            self.id,
            long_context=_long_context(self.id),
            is_evaL_run=False,
        )
        content = api["format_results"]({}, results, {"model_responses_decoded": calls})
        self.messages.append({"role": "user", "content": content})
        self.count += 1
        if self.count > self.step_limit:
            self.force_terminated = True
            self._end_turn()

    def _end_turn(self) -> None:
        self.turns.append(self.steps)
        if self.force_terminated:
            self.done = True
        else:
            self._next_turn()


def score(entry: dict, turns: list[list[str]], key: str | None = None) -> dict:
    """bfcl-eval's evaluation of one entry's texts (per turn, per step), as its eval runner calls it:
    {correct, error_type, error}. ``key``: the model name its checker keys its simulators by (a
    fresh one when None); its instances are deleted afterwards."""
    api = _api()
    key = key or f"trellis_{uuid.uuid4().hex}"
    # The checker reads the id, initial config and involved classes (no docs).
    prompt_entry = {
        "id": entry["id"],
        "initial_config": entry.get("initial_config", {}),
        "involved_classes": entry["involved_classes"],
    }
    try:
        result = api["evaluate_entry"](
            _Handler(entry),
            entry["id"],
            turns,
            entry["possible_answer"],
            prompt_entry,
            key,
            entry["category"],
        )
    except Exception as e:
        # A model's calls can put the simulators in states the checker's comparisons were never
        # written for; that is a wrong answer, not a crash.
        return {"correct": False, "error_type": "checker_exception", "error": f"{type(e).__name__}: {e}"}
    finally:
        release(key)
    if result["valid"]:
        return {"correct": True, "error_type": None, "error": None}
    error = result.get("error") or {}
    return {
        "correct": False,
        "error_type": error.get("error_type"),
        "error": json.dumps(error.get("error_message"), default=str)[:500],
    }


def _check_entry(entry: dict) -> None:
    if entry.get("category") not in bfcl.MULTI_TURN:
        raise ValueError(f"BFCL entry {entry.get('id')}: not a multi-turn entry ({entry.get('category')!r})")
    bfcl.check_category_mode(entry["category"], entry.get("mode", "prompt"))


def run(entries: list[dict], generate: Generate, step_limit: int | None = None) -> list[dict]:
    """Every entry's conversation with the model ``generate``, scored; one record per entry, in
    order: {correct, error_type, error, output (the model's texts per turn and step), steps
    (model steps taken), turns (turns answered, of ``turns_total``), force_terminated}.

    Each call of ``generate`` gets one ``StepRequest`` per unfinished entry and must return one
    text per request. ``step_limit``: bfcl-eval's MAXIMUM_STEP_LIMIT when None.
    """
    step_limit = default_step_limit() if step_limit is None else int(step_limit)
    if step_limit < 0:
        raise ValueError(f"step_limit must be >= 0, got {step_limit}")
    for e in entries:
        _check_entry(e)
    conversations: list[_Conversation] = []
    records: list[dict | None] = [None] * len(entries)
    try:
        for e in entries:
            conversations.append(_Conversation(e, step_limit))
        while True:
            active = [(i, c) for i, c in enumerate(conversations) if not c.done]
            if not active:
                break
            texts = list(generate([c.request() for _, c in active]))
            if len(texts) != len(active):
                raise ValueError(f"generate returned {len(texts)} texts for {len(active)} requests")
            for (i, c), text in zip(active, texts):
                if not isinstance(text, str):
                    raise TypeError(f"generate returned {type(text).__name__} for {c.id}, not a text")
                c.answer(text)
                if c.done:
                    # Score now, and drop the loop's simulators: long-context states are large.
                    release(c.key)
                    records[i] = {
                        **score(c.entry, c.turns, c.key),
                        "output": c.turns,
                        "steps": c.generations,
                        "turns": len(c.turns),
                        "turns_total": len(c.question),
                        "force_terminated": c.force_terminated,
                    }
    finally:
        for c in conversations:
            release(c.key)
    missing = [e["id"] for e, r in zip(entries, records) if r is None]
    if missing:  # the loop ends only when every conversation is done and scored
        raise AssertionError(f"BFCL multi-turn entries left unscored: {missing[:5]}")
    return records


# ---- prompts: the conversation in the stage's format ----------------------------------------------


def prompt_text(stage: str, tokenizer, messages: list[dict], shots: list[tuple[list[dict], str]]) -> str:
    """The prompt for a conversation at ``stage``.

    SFT and DPO models: their chat template over the whole conversation
    (``prompts.build_prompt``). Base models: the few-shot completion prompt, whose "Input/Output"
    pairs are the only turns a base model is shown; the conversation's earlier exchanges (a user
    message or execution results, then the model's answer) follow the shots as pairs of their
    own, and the last user message is the query (``prompts.completion_prompt``).
    """
    if stage != "base":
        return prompts.build_prompt(stage, tokenizer, messages, [])
    system = [m for m in messages if m["role"] == "system"]
    history: list[tuple[list[dict], str]] = []
    pending: list[str] = []
    for m in messages:
        if m["role"] == "user":
            pending.append(m["content"])
        elif m["role"] == "assistant":
            history.append(([{"role": "user", "content": "\n\n".join(pending)}], m["content"]))
            pending = []
    if not pending:
        raise ValueError("a multi-turn conversation must end with a user message to be answered")
    query = [*system, {"role": "user", "content": "\n\n".join(pending)}]
    return prompts.completion_prompt(query, [*shots, *history])


# ---- the ground truth as a model ----------------------------------------------------------------


def _keyword_call(call: str, methods: dict[str, inspect.Signature], entry_id: str) -> str:
    """A ground-truth call string with its positional arguments named (``sort('a.txt')`` ->
    ``sort(file_name='a.txt')``): the prompt asks for keyword arguments, and bfcl-eval's
    decoder drops positional ones."""
    tree = ast.parse(call, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in methods:
            raise ValueError(f"BFCL entry {entry_id}: ground-truth call {call!r} of an unknown function")
        params = [p for p in methods[name].parameters if p != "self"]
        if len(node.args) > len(params):
            raise ValueError(f"BFCL entry {entry_id}: ground-truth call {call!r} has too many arguments")
        named = [ast.keyword(arg=p, value=a) for p, a in zip(params, node.args)]
        node.args, node.keywords = [], named + node.keywords
    return ast.unparse(tree)


def reference_turns(entry: dict) -> list[list[str]]:
    """What a model that gets every turn right answers: per turn, the ground truth's calls in one
    step ("[f(a=1), g(b='x')]"), then "[]" (no call) to end the turn; a turn whose ground truth
    is no call (the function or parameter is missing), "[]" alone."""
    _check_entry(entry)
    methods = _methods(entry["involved_classes"])
    turns = []
    for calls in entry["possible_answer"]:
        if not calls:
            turns.append(["[]"])
            continue
        named = [_keyword_call(c, methods, entry["id"]) for c in calls]
        turns.append(["[" + ", ".join(named) + "]", "[]"])
    return turns


def reference_model(entries: list[dict]) -> Generate:
    """A ``generate`` that answers every entry with ``reference_turns`` (a step past them: "[]")."""
    answers = {e["id"]: reference_turns(e) for e in entries}

    def generate(requests: list[StepRequest]) -> list[str]:
        out = []
        for r in requests:
            steps = answers[r.entry_id][r.turn]
            out.append(steps[r.step] if r.step < len(steps) else "[]")
        return out

    return generate
