"""StepStats: what a step read, kept and dropped, in documents and tokens or characters."""

from __future__ import annotations

import json

import pytest

from trellis.core.stats import StepStats


def test_tokens_per_reason_and_exact_keys():
    s = StepStats("filter/x", unit="tokens", reasons=("no_topic", "complexity", "empty_text"))
    for tokens, reason in [
        (10, None),
        (7, "no_topic"),
        (5, None),
        (3, "complexity"),
        (0, "empty_text"),
        (4, "no_topic"),
    ]:
        s.seen(tokens)
        if reason is None:
            s.kept(tokens)
        else:
            s.drop(reason, tokens)
    d = s.to_dict()
    assert list(d) == [
        "step",
        "docs_in",
        "docs_out",
        "tokens_in",
        "tokens_out",
        "dropped",
        "dropped_tokens",
        "unaccounted",
        "unaccounted_tokens",
    ]  # the curation stats' keys, no seconds
    assert (d["docs_in"], d["docs_out"], d["tokens_in"], d["tokens_out"]) == (6, 2, 29, 15)
    assert d["dropped"] == {"complexity": 1, "empty_text": 1, "no_topic": 2}
    assert d["dropped_tokens"] == {"complexity": 3, "empty_text": 0, "no_topic": 11}
    assert d["unaccounted"] == 0 and d["unaccounted_tokens"] == 0
    assert s.summary() == (
        "filter/x: 6 docs / 29 tokens in, 2 docs / 15 tokens out; "
        "dropped complexity=1, empty_text=1, no_topic=2"
    )


def test_listed_reasons_appear_at_zero_and_unlisted_only_when_dropped():
    s = StepStats("select", reasons=("not_selected",))
    s.seen(4)
    s.kept(4)
    d = s.to_dict()
    assert d["dropped"] == {"not_selected": 0} and d["dropped_tokens"] == {"not_selected": 0}
    assert s.summary().endswith("dropped none")
    s.seen(2)
    s.drop("other", 2)
    assert s.to_dict()["dropped"] == {"not_selected": 0, "other": 1}


def test_a_document_neither_kept_nor_dropped_is_unaccounted():
    s = StepStats("leaky")
    for tokens in (5, 6, 7):
        s.seen(tokens)
    s.kept(5)
    s.drop("bad", 6)  # the 7-token document is never accounted for
    d = s.to_dict()
    assert d["unaccounted"] == 1 and d["unaccounted_tokens"] == 7
    # A drop counted without its tokens shows up in tokens alone.
    s.seen(3)
    s.drop("bad")
    assert s.to_dict()["unaccounted"] == 1 and s.to_dict()["unaccounted_tokens"] == 10


def test_add_sums_part_dicts_read_back_from_json():
    parts = []
    for k, (kept, dropped) in enumerate([([3, 4], [("a", 2)]), ([10], [("a", 1), ("b", 5), ("b", 6)])]):
        s = StepStats(f"filter/part-{k}", reasons=("a", "b", "c"))
        for t in kept:
            s.seen(t)
            s.kept(t)
        for reason, t in dropped:
            s.seen(t)
            s.drop(reason, t)
        parts.append(json.loads(json.dumps(s.to_dict())))
    total = StepStats("filter")
    for p in parts:
        total.add(p)
    d = total.to_dict()
    assert (d["docs_in"], d["docs_out"], d["tokens_in"], d["tokens_out"]) == (7, 3, 31, 17)
    assert d["dropped"] == {"a": 2, "b": 2, "c": 0} and d["dropped_tokens"] == {"a": 3, "b": 11, "c": 0}
    assert d["unaccounted"] == 0 and d["unaccounted_tokens"] == 0
    # A StepStats adds like its dict.
    again = StepStats("filter")
    again.add(parts[0])
    one = StepStats("x")
    one.seen(1)
    one.kept(1)
    again.add(one)
    assert again.to_dict()["docs_in"] == 4 and again.to_dict()["tokens_out"] == 8


def test_chars_measure_texts_and_write_no_unmeasured_keys():
    s = StepStats("normalize/web", unit="chars", reasons=("skipped_empty",), drop_sizes=False, timed=True)
    s.seen("hello")
    s.kept("hello")
    s.seen(None)  # a row with no text: a document of zero characters
    s.drop("skipped_empty")
    s.seen("abc")
    s.drop("off_subject", docs=1)
    s.extra["source"] = "web"
    d = s.to_dict()
    # The keys normalize, tokenize and labeling have always written: seconds after unaccounted, the
    # step's extras last. Nobody measured the characters dropped, so no dropped_chars/unaccounted_chars.
    assert list(d) == [
        "step",
        "docs_in",
        "docs_out",
        "chars_in",
        "chars_out",
        "dropped",
        "unaccounted",
        "seconds",
        "source",
    ]
    assert (d["docs_in"], d["docs_out"], d["chars_in"], d["chars_out"]) == (3, 1, 8, 5)
    assert d["dropped"] == {"off_subject": 1, "skipped_empty": 1} and d["unaccounted"] == 0
    assert isinstance(d["seconds"], float) and d["seconds"] >= 0
    assert s.summary().startswith("normalize/web: 3 docs / 8 chars in, 1 docs / 5 chars out; dropped ")
    assert s.summary().endswith("s)")
    with pytest.raises(ValueError, match="drop sizes are not counted"):
        s.drop("empty_text", 4)


def test_drop_of_many_documents_at_once():
    s = StepStats("label_sample", unit="chars", drop_sizes=False)
    for text in ("a", "bb", "ccc", "dddd"):
        s.seen(text)
    s.kept("a")
    s.drop("not_drawn", docs=3)
    s.drop("never", docs=0)  # counted as a listed reason with nothing in it
    d = s.to_dict()
    assert d["dropped"] == {"never": 0, "not_drawn": 3} and d["unaccounted"] == 0 and "seconds" not in d


def test_unit_mistakes_are_errors():
    with pytest.raises(ValueError, match="unit must be one of"):
        StepStats("x", unit="bytes")
    with pytest.raises(TypeError, match="counts tokens"):
        StepStats("x").seen("a text is not a token count")
