"""trellis.acquire.demo.stackexchange: native answer structs, accepted and low-score answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def test_answers_have_native_fields_and_mixed_quality():
    se = [r for rows in dc.generate_rows("stackexchange", 60, 1, 2, TOPICS).values() for r in rows]
    answers = [a for r in se for a in r["answers"]]
    assert {"answer_id", "author", "pm_score", "selected", "text"} <= set(answers[0])
    assert any(a["selected"] for a in answers) and any(
        a["pm_score"] < 2 and not a["selected"] for a in answers
    )
