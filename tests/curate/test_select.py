"""Selection up to a token target with group quotas: rebalancing, ranking, exact accounting."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.curate.dedup import DEDUP_SCHEMA
from trellis.curate.select import group_quotas, select_source


def test_quotas_follow_shares_and_refill_from_groups_with_room():
    available = {"edu": 8000, "health": 1500, "cs": 300, "math": 200}
    quotas = group_quotas(available, 4000, {"cs": 0.25, "math": 0.25})
    # cs and math cannot fill 1000 each: they give all they have, the rest goes to the others.
    assert quotas["cs"] == pytest.approx(300) and quotas["math"] == pytest.approx(200)
    assert sum(quotas.values()) == pytest.approx(4000)
    # Groups not named split the remainder in proportion to what they have (8000 : 1500).
    assert quotas["edu"] / quotas["health"] == pytest.approx(8000 / 1500)
    # Enough of everything: the named shares are met exactly.
    quotas = group_quotas({"a": 5000, "b": 5000, "c": 5000}, 3000, {"a": 0.5})
    assert quotas == pytest.approx({"a": 1500, "b": 750, "c": 750})
    # A target above what exists takes everything; no target takes everything.
    assert group_quotas({"a": 10, "b": 5}, 100, {"a": 0.9}) == {"a": 10, "b": 5}
    assert group_quotas({"a": 10}, None, {}) == {"a": 10}
    with pytest.raises(ValueError, match="sum to at most 1"):
        group_quotas({"a": 1}, 1, {"a": 0.7, "b": 0.6})


def _write_source(tmp_path, parts):
    """Filtered parts (id, text, n_tokens, priority, group) and dedup decisions (keep all but 'dup-*')."""
    filtered, dedup, out = [], [], []
    for k, rows in enumerate(parts):
        f = tmp_path / f"filtered/s/part-{k}.parquet"
        d = tmp_path / f"dedup/s/part-{k}.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(
                [dict(r, text=f"text of {r['id']}") for r in rows],
                schema=pa.schema(
                    [
                        ("id", pa.string()),
                        ("n_tokens", pa.int64()),
                        ("priority", pa.float32()),
                        ("group", pa.string()),
                        ("text", pa.string()),
                    ]
                ),
            ),
            f,
            row_group_size=16,
        )
        pq.write_table(
            pa.Table.from_pylist(
                [
                    {
                        "id": r["id"],
                        "keep": not r["id"].startswith("dup-"),
                        "reason": "near_duplicate" if r["id"].startswith("dup-") else None,
                        "cluster": None,
                    }
                    for r in rows
                ],
                schema=DEDUP_SCHEMA,
            ),
            d,
        )
        filtered.append(f), dedup.append(d), out.append(tmp_path / f"curated/s/part-{k}.parquet")
    return filtered, dedup, out


def test_rebalancing_moves_topic_shares_toward_the_targets(tmp_path):
    # A crawl like FineWeb-Edu: education dominates, STEM-core topics are a few percent.
    rng = np.random.default_rng(0)
    natural = {"education": 0.6, "health": 0.3, "computer_science": 0.06, "mathematics": 0.04}
    parts = []
    for k in range(3):
        rows = []
        for i in range(400):
            group = rng.choice(list(natural), p=list(natural.values()))
            rows.append(
                {
                    "id": f"p{k}-{i}",
                    "n_tokens": int(rng.integers(50, 150)),
                    "priority": float(np.round(rng.uniform(1, 4), 3)),
                    "group": str(group),
                }
            )
        parts.append(rows)
    total = sum(r["n_tokens"] for rows in parts for r in rows)
    targets = {"computer_science": 0.15, "mathematics": 0.15}
    stats = select_source(*_write_source(tmp_path, parts), target_tokens=total // 3, target_shares=targets)

    groups = stats["groups"]
    before = stats["target_share_distance"]["available"]
    after = stats["target_share_distance"]["selected"]
    assert after < before / 3  # shares moved most of the way toward the targets
    for g in targets:
        assert groups[g]["available_share"] < 0.08
    # computer_science has more than its quota: it lands on its target share. mathematics has
    # less: all of it is taken, and what it lacks went to the other groups.
    cs, math = groups["computer_science"], groups["mathematics"]
    assert cs["available_tokens"] > 0.15 * (total // 3) and abs(cs["selected_share"] - 0.15) < 0.01
    assert (
        math["available_tokens"] < 0.15 * (total // 3) and math["selected_tokens"] == math["available_tokens"]
    )
    # The token target is met to within one document per group.
    assert total // 3 <= stats["tokens_out"] <= total // 3 + 4 * 150
    assert stats["unaccounted"] == 0 and stats["unaccounted_tokens"] == 0


def test_within_a_group_the_highest_priority_is_taken(tmp_path):
    rows = [
        {"id": f"d{i}", "n_tokens": 10, "priority": float(p), "group": "g"}
        for i, p in enumerate([1.0, 3.5, 2.0, 3.9, 1.5, 3.0])
    ]
    rows.append({"id": "dup-1", "n_tokens": 10, "priority": 4.0, "group": "g"})  # dropped by dedup
    filtered, dedup, out = _write_source(tmp_path, [rows[:3], rows[3:]])
    stats = select_source(filtered, dedup, out, target_tokens=30, target_shares={})
    selected = [i for o in out for i in pq.read_table(o).column("id").to_pylist()]
    assert selected == ["d1", "d3", "d5"]  # part order, the three best
    assert pq.read_table(out[0]).column_names == pq.read_table(filtered[0]).column_names
    assert stats["docs_in"] == 6  # the duplicate was dedup's drop, not selection's
    assert stats["dropped"] == {"not_selected": 3} and stats["tokens_out"] == 30


def test_select_refuses_decisions_of_another_part(tmp_path):
    filtered, dedup, out = _write_source(
        tmp_path,
        [
            [{"id": "a", "n_tokens": 1, "priority": 1.0, "group": "g"}],
            [{"id": "b", "n_tokens": 1, "priority": 1.0, "group": "g"}],
        ],
    )
    with pytest.raises(
        ValueError, match=r"dedup/s/part-1.parquet: ids differ from .*filtered/s/part-0.parquet"
    ):
        select_source(filtered, dedup[::-1], out, 1, {})
    assert not out[0].exists()
