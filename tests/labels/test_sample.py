"""The labeling sample (rule label_sample): even across parts, deterministic, counted."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.labels.sample import sample_for_labeling, sample_stats, write_sample


def write_part(path: Path, source: str, n: int, code: bool = False, start: int = 0) -> list[str]:
    ids = [f"{source}-{path.stem}-{i}" for i in range(start, start + n)]
    cols = {
        "id": ids,
        "text": [f"document {i} about things" for i in range(n)],
        "source": [source] * n,
        "url": ["http://x"] * n,
    }
    if code:
        cols.update(
            language=["python"] * n, path=[f"src/m{i}.py" for i in range(n)], repo=["r"] * n, stars=[1] * n
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path, row_group_size=37)
    return ids


def test_sample_is_stratified_and_deterministic(tmp_path):
    parts = [tmp_path / "raw" / "fineweb_edu" / f"part-{k}.parquet" for k in range(3)]
    all_ids = [set(write_part(p, "fineweb_edu", 200)) for p in parts]
    a = sample_for_labeling(parts, 90, seed=1)
    b = sample_for_labeling(list(parts), 90, seed=1)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert len(a) == 90 and len({r["id"] for r in a}) == 90
    assert [sum(r["id"] in ids for r in a) for ids in all_ids] == [30, 30, 30]
    c = sample_for_labeling(parts, 90, seed=2)
    assert {r["id"] for r in a} != {r["id"] for r in c}
    # Not just the first rows of each part: the reservoir reaches the whole file.
    positions = [int(r["id"].rsplit("-", 1)[1]) for r in a]
    assert max(positions) > 150


def test_sample_spreads_short_parts_shortfall(tmp_path):
    small = tmp_path / "part-0.parquet"
    big = tmp_path / "part-1.parquet"
    write_part(small, "fineweb_edu", 10)
    big_ids = set(write_part(big, "fineweb_edu", 300))
    tally = sample_stats()
    rows = sample_for_labeling([small, big], 100, seed=0, tally=tally)
    assert len(rows) == 100 and sum(r["id"] in big_ids for r in rows) == 90
    d = tally.to_dict()
    assert d["docs_in"] == 310 and d["docs_out"] == 100 and d["dropped"] == {"not_drawn": 210}
    assert d["unaccounted"] == 0
    # Characters of every row read (both parts' texts) and of the rows drawn.
    assert d["chars_in"] == sum(len(f"document {i} about things") for n in (10, 300) for i in range(n))
    assert d["chars_out"] == sum(len(r["text"]) for r in rows)
    # Characters in and out, timed; drops are counted but not measured, so no dropped_chars.
    assert set(d) == {
        "step",
        "docs_in",
        "docs_out",
        "chars_in",
        "chars_out",
        "dropped",
        "unaccounted",
        "seconds",
        "parts",
        "quotas",
    }
    assert d["parts"] == 2 and list(d["quotas"].values()) == [10, 90]


def test_sample_counts_empty_text_and_keeps_code_metadata(tmp_path):
    part = tmp_path / "part-0.parquet"
    write_part(part, "starcoderdata", 20, code=True)
    t = pq.read_table(part).to_pylist()
    t[3]["text"] = "   "
    pq.write_table(pa.Table.from_pylist(t), part)
    tally = sample_stats()
    rows = sample_for_labeling([part], 50, seed=0, tally=tally)
    assert len(rows) == 19 and tally.dropped["empty_text"] == 1
    out = tmp_path / "sample.parquet"
    write_sample(rows, out)
    table = pq.read_table(out)
    assert table.column_names == ["id", "text", "source", "language", "path"]  # no repo/stars
    assert table.num_rows == 19


def test_sample_missing_id_names_file_and_row(tmp_path):
    part = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"id": ["a", None], "text": ["x", "y"], "source": ["s", "s"]}), part)
    with pytest.raises(ValueError, match=r"part-0\.parquet: row 1: column 'id'"):
        sample_for_labeling([part], 2, seed=0)
