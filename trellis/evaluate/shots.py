"""Few-shot examples for base models, drawn from the TRAIN pools, never from evaluated examples.

Base models get a few-shot completion prompt (``trellis.structured.prompts.build_prompt``); SFT
and DPO models get their chat template with no shots, as they were trained. Each function
returns k (messages, answer) pairs and the names of the items they came from, which the result
records and ``trellis.evaluate.dispatch`` checks against the evaluated examples
(``trellis.structured.disjoint``). MBPP's shots are its own prompt split
(``trellis.evaluate.code.mbpp_shots``).
"""

from __future__ import annotations

import json
from typing import Any

from trellis.evaluate import json_schema
from trellis.structured import pools as structured_pool
from trellis.structured import prompts
from trellis.structured.examples import build_sft

# Few-shot defaults for base models: enough shots to show the answer format, few enough to fit
# a small model's context next to a schema. Shots are the shortest of a candidate draw from the
# train pool, again to leave room for the query.
DEFAULT_SHOTS = 2
_SHOT_CANDIDATES = 12

# SFT rows built to pick extraction/classification shots from: at the post-training task shares
# this gives a dozen rows of each task to choose the shortest from.
_SFT_SHOT_ROWS = 80


def _shortest(items: list[tuple[Any, list[dict], str]], k: int) -> list[tuple[Any, list[dict], str]]:
    scored = sorted(items, key=lambda t: (len(json.dumps(t[1])) + len(t[2]), t[0]))
    return scored[:k]


def json_schema_shots(seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs from the TRAIN schema pool, and their names."""
    if k <= 0:
        return [], []
    pool = structured_pool.schemas("train", seed, max(_SHOT_CANDIDATES, k))
    cands = [(item["name"], json_schema.messages(item), json_schema.reference_answer(item)) for item in pool]
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n for n, _, _ in chosen]


def bfcl_shots(seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs from the TRAIN function pool, and their names."""
    if k <= 0:
        return [], []
    pool = structured_pool.functions("train", seed, max(_SHOT_CANDIDATES, k))
    cands = []
    seen = set()
    for item in pool:
        name = item["function"]["name"]
        if name in seen:
            continue
        seen.add(name)
        msgs = prompts.function_call_messages(item["question"], [item["function"]])
        cands.append((name, msgs, json.dumps([item["call"]], ensure_ascii=False)))
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n for n, _, _ in chosen]


def sft_shots(task: str, seed: int, k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs that are rows of the SFT data's ``task``, and their items.

    The shots are exactly what post-training teaches for the task (same builder, TRAIN pool), so
    a base model sees the trained format; the shortest rows leave room for the query.
    """
    if k <= 0:
        return [], []
    rows = [r for r in build_sft(_SFT_SHOT_ROWS, seed) if r["task"] == task]
    if len(rows) < k:
        raise ValueError(f"only {len(rows)} SFT rows of task {task!r} to draw {k} shots from")
    cands = [(f"{r['item']}#{i}", r["prompt"], r["completion"][0]["content"]) for i, r in enumerate(rows)]
    chosen = _shortest(cands, k)
    return [(m, a) for _, m, a in chosen], [n.split("#")[0] for n, _, _ in chosen]
