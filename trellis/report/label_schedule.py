"""The Batch API schedule of a run's labeling, from the config alone: per task the requests, the
enqueued prompt tokens, the batches, and the wall time and cost to expect.

Token counts come from ``trellis.report.plan.labeling_cost`` (templates counted with o200k_base,
documents at the plan's tokens per document, capped by ``labels.request.max_text_chars``). Batches
follow ``BatchLabeler``'s split: at most ``max_requests``, ``max_bytes`` and (when set)
``enqueued_token_limit`` tokens each. The label jobs (the five tasks and the subject check's topic
labels, all in ``labels/``, sharing one queue ledger) go through the organisation's queue in
``waves``: their batches packed into the limit, largest first (without a limit, all at once).
Each wave takes at most the completion window (24 h); batches usually finish well within it, so
the expected time is given at a stated ``typical_hours`` per wave beside the 24 h bound. Rounds
that resubmit expired or invalid answers come on top.
"""

from __future__ import annotations

import math
from typing import Any

# A batch's usual turnaround (hours): OpenAI promises only the 24 h window; most batches of this
# size finish in a few hours. An assumption, stated wherever it is used.
TYPICAL_BATCH_HOURS = 6.0


def batch_schedule(config: dict, encoding=None, typical_hours: float = TYPICAL_BATCH_HOURS) -> dict[str, Any]:
    from trellis.core.tasks import build_tasks
    from trellis.labels.openai_batch import _request_line
    from trellis.labels.openai_common import LLMLabeler
    from trellis.report.plan import TEXT_BYTES_PER_TOKEN, labeling_cost

    labels = config["labels"]
    batch = labels["batch"]
    limit = batch.get("enqueued_token_limit")
    window = int(str(batch["completion_window"]).rstrip("h"))
    labeler = LLMLabeler(labels)
    tasks = build_tasks(config)
    rows = []
    for r in labeling_cost(config, encoding):
        task = tasks[r["task"].split(" ")[0]]  # "topic (pes2o subject check)" asks the topic prompt
        empty = {"id": "x" * 24, "text": "", "path": "src/app/utils.py", "language": "python"}
        template_bytes = len(_request_line(empty["id"], 0, labeler.body(task, empty)))
        request_bytes = template_bytes + r["document_tokens"] * TEXT_BYTES_PER_TOKEN
        prompt_tokens = r["input_tokens"]
        n_batches = max(
            math.ceil(r["documents"] / int(batch["max_requests"])),
            math.ceil(r["documents"] * request_bytes / int(batch["max_bytes"])),
            math.ceil(prompt_tokens / limit) if limit else 1,
        )
        rows.append(
            {
                "task": r["task"],
                "requests": r["documents"],
                "enqueued_prompt_tokens": round(prompt_tokens),
                "batches": n_batches,
                "estimated_usd": r["usd"],
                "cap_usd": batch["max_estimated_cost_usd"],
            }
        )
    total_tokens = sum(r["enqueued_prompt_tokens"] for r in rows)
    sizes = [r["enqueued_prompt_tokens"] / r["batches"] for r in rows for _ in range(r["batches"])]
    waves = _waves(sizes, limit) if limit else 1
    caps = [r["cap_usd"] for r in rows]
    return {
        "tasks": rows,
        "enqueued_token_limit": limit,
        "total_enqueued_prompt_tokens": total_tokens,
        "queue_waves": waves,
        "expected_hours": waves * typical_hours,
        "typical_batch_hours": typical_hours,
        "max_hours_first_round": waves * window,
        "estimated_usd": sum(r["estimated_usd"] for r in rows),
        "cap_usd": None if any(c is None for c in caps) else sum(caps),
    }


def _waves(sizes: list[float], limit: float) -> int:
    """Rounds of the queue: batches packed first-fit, largest first, into waves of ``limit``."""
    waves: list[float] = []
    for size in sorted(sizes, reverse=True):
        for i, used in enumerate(waves):
            if used + size <= limit:
                waves[i] += size
                break
        else:
            waves.append(size)
    return len(waves)
