"""The study's Batch API schedule (trellis/report/label_schedule.py): requests, tokens, batches, waves."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from trellis.report.label_schedule import batch_schedule

STUDY = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "study.yaml").read_text())


def test_study_schedule_packs_every_label_job_into_the_queue_limit():
    plan = batch_schedule(STUDY)
    rows = {r["task"]: r for r in plan["tasks"]}
    assert {rows[t]["requests"] for t in ("topic", "complexity", "content_type")} == {30_000}
    limit = STUDY["labels"]["batch"]["enqueued_token_limit"]
    assert plan["enqueued_token_limit"] == limit
    for r in plan["tasks"]:
        assert r["enqueued_prompt_tokens"] / r["batches"] <= limit
    assert plan["total_enqueued_prompt_tokens"] == sum(r["enqueued_prompt_tokens"] for r in plan["tasks"])
    # More tokens than one queue-full, and a smaller limit means more waves, each at most 24 h.
    assert plan["queue_waves"] >= plan["total_enqueued_prompt_tokens"] / limit
    assert plan["max_hours_first_round"] == 24 * plan["queue_waves"]
    smaller = copy.deepcopy(STUDY)
    smaller["labels"]["batch"]["enqueued_token_limit"] = limit // 4
    assert batch_schedule(smaller)["queue_waves"] > plan["queue_waves"]
    assert plan["cap_usd"] == 150 * len(plan["tasks"]) and plan["estimated_usd"] < plan["cap_usd"]
