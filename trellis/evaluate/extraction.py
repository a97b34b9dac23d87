"""Structured extraction: free text -> the record it describes, filled into a given schema.

Examples come from the EVAL pool of ``trellis.structured.pools`` (entities no post-training item
uses), drawn with a seed derived from the run's seed and this benchmark's name, so they are other
schemas than the JSON suite's. The text gives the record's facts in scrambled order
(``structured_pool.record_notes``) and the prompt is the one SFT's extraction task uses, so the
benchmark asks the trained task on unseen schemas. Base models get few-shot shots that are
extraction rows of the SFT data itself (``train_shots``).

Metrics (per example, then means with bootstrap CIs):
- field_accuracy: share of the reference record's leaf fields reproduced at the same JSON path;
- schema_valid_rate: the output parses and validates (draft 2020-12, format checks).

Exact comparison undercounts answers that state the right fact another way; the optional LLM
judge (``trellis.evaluate.judge``, rule judge_extraction) scores the same outputs by meaning.
"""

from __future__ import annotations

import hashlib
import random

from trellis.evaluate import json_schema
from trellis.structured import pools as structured_pool
from trellis.structured import prompts

METRICS = ("field_accuracy", "schema_valid_rate")
TASK = "extraction"


def derived_seed(seed: int, what: str) -> int:
    """A pool seed for one benchmark: other benchmarks on the same run seed draw other items."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{what}".encode()).digest()[:8], "big")


def instruction(schema: dict) -> str:
    return f"Extract the {schema.get('title', 'record').lower()} described in the text into JSON."


def build(n: int, seed: int) -> list[dict]:
    """``n`` extraction examples from the eval pool (deterministic; a larger n extends a smaller)."""
    if n < 1:
        raise ValueError(f"extraction needs at least 1 example, got {n}")
    items = structured_pool.schemas("eval", derived_seed(seed, TASK), n)
    out = []
    for i, item in enumerate(items):
        rng = random.Random(f"{seed}|{TASK}|{item['name']}")
        out.append(
            {
                "id": f"extract-{i:04d}",
                "name": item["name"],
                "category": item["category"],
                "instruction": instruction(item["schema"]),
                "schema": item["schema"],
                "content": structured_pool.record_notes(item["instance"], rng),
                "instance": item["instance"],
            }
        )
    return out


def messages(example: dict) -> list[dict]:
    return prompts.json_schema_messages(example["instruction"], example["schema"], example["content"])


def reference_answer(example: dict) -> str:
    return prompts.json_answer(example["instance"])


def score_example(example: dict, generation_text: str) -> dict:
    """{parsed, valid, field_accuracy, error}: the JSON suite's scoring of one output, with what an
    LLM judge of the output reads (``trellis.evaluate.judge``): the source text, the schema and the
    reference record (the result file then holds everything the judge needs, with no regeneration)."""
    return {
        **json_schema.score_example(example, generation_text),
        "content": example["content"],
        "schema": example["schema"],
        "reference": example["instance"],
    }


def example_scores(score: dict) -> dict[str, float]:
    return {"field_accuracy": float(score["field_accuracy"]), "schema_valid_rate": float(score["valid"])}


def metrics(scores: list[dict]) -> dict[str, float]:
    if not scores:
        raise ValueError("no scored examples")
    per = [example_scores(s) for s in scores]
    return {m: sum(p[m] for p in per) / len(per) for m in METRICS}
