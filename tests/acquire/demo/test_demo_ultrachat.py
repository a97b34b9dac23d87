"""trellis.acquire.demo.ultrachat: chats in the dataset's message shape."""

from __future__ import annotations

from pathlib import Path

import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def test_chats_open_with_a_user_then_an_assistant_turn():
    chats = [r for rows in dc.generate_rows("ultrachat", 20, 1, 2, TOPICS).values() for r in rows]
    assert all([m["role"] for m in c["messages"]][:2] == ["user", "assistant"] for c in chats)
