"""Band-partitioned dedup across parts: clusters, the kept member, the LSH shape and input errors."""

import pyarrow.parquet as pq
import pytest

# Corpus helpers shared with the signature tests (the tests dir is on sys.path).
from test_signatures import NUM_PERM, _doc, _near, _part

from trellis.curate.dedup import dedup_source, lsh_bands
from trellis.curate.signatures import compute_signatures


def _source(tmp_path, parts_rows, filtered_out=(), priority=None):
    """Write raw/filtered parts and signatures; return the dedup_source arguments."""
    raws, filts, sigs, exacts, outs = [], [], [], [], []
    for k, rows in enumerate(parts_rows):
        for r in rows:
            r.setdefault("source", "s")
        raw = tmp_path / f"raw/s/part-{k}.parquet"
        _part(raw, rows)
        kept = [
            dict(r, n_tokens=len(r["text"].split()), priority=(priority or {}).get(r["id"], 1.0))
            for r in rows
            if r["id"] not in filtered_out
        ]
        filt = tmp_path / f"filtered/s/part-{k}.parquet"
        _part(filt, kept)
        sig = tmp_path / f"minhash/s/part-{k}.npy"
        exact = tmp_path / f"minhash/s/part-{k}.exact.npy"
        compute_signatures(raw, sig, NUM_PERM, 5, 1, exact_npy=exact)
        raws.append(raw), filts.append(filt), sigs.append(sig), exacts.append(exact)
        outs.append(tmp_path / f"dedup/s/part-{k}.parquet")
    return filts, raws, sigs, exacts, outs


def _decisions(outs):
    return [pq.read_table(o).to_pylist() for o in outs]


def test_dedup_removes_exact_and_near_duplicates_across_parts(tmp_path):
    base = {i: _doc(100 + i) for i in range(8)}
    part0 = [
        {"id": "a", "text": base[0]},
        {"id": "b", "text": base[1]},
        {"id": "dropped-by-filter", "text": base[2]},
        {"id": "c", "text": base[3]},
        {"id": "a-exact-same-part", "text": "  " + base[0].upper() + "\n"},  # same after normalization
        {"id": "d", "text": base[4]},
    ]
    part1 = [
        {"id": "b-near", "text": _near(base[1], 1)},  # near duplicate of a doc in part 0
        {"id": "e", "text": base[5]},
        {"id": "c-exact", "text": base[3]},  # exact duplicate across parts
        {"id": "e-near", "text": _near(base[5], 2)},  # near duplicate within part 1
        {"id": "f", "text": base[6]},
        {"id": "only-filtered-copy", "text": base[2]},  # its twin was filtered out: it stays
        {"id": "b-near-exact", "text": _near(base[1], 1)},  # exact copy of a near duplicate
    ]
    args = _source(tmp_path, [part0, part1], filtered_out={"dropped-by-filter"})
    # Two partitions of a few records each, so clusters must be joined across partitions too.
    stats = dedup_source(*args, NUM_PERM, 0.7, partition_mb=0.0005)
    d0, d1 = _decisions(args[-1])
    # One decision per filtered row, in the filtered order.
    assert [r["id"] for r in d0] == ["a", "b", "c", "a-exact-same-part", "d"]
    assert [r["id"] for r in d1] == [r["id"] for r in part1]
    kept = {r["id"] for r in d0 + d1 if r["keep"]}
    assert kept == {"a", "b", "c", "d", "e", "f", "only-filtered-copy"}
    reasons = {r["id"]: r["reason"] for r in d0 + d1 if not r["keep"]}
    assert reasons == {
        "a-exact-same-part": "exact_duplicate",
        "c-exact": "exact_duplicate",
        "b-near": "near_duplicate",
        "e-near": "near_duplicate",
        "b-near-exact": "near_duplicate",
    }
    # Every dropped document points at its cluster's kept document (part << 40 | raw row).
    code = {("a", 0): 0, ("b", 0): 1, ("c", 0): 3, ("e", 1): (1 << 40) | 1}
    clusters = {r["id"]: r["cluster"] for r in d0 + d1 if not r["keep"]}
    assert clusters["a-exact-same-part"] == code[("a", 0)] and clusters["c-exact"] == code[("c", 0)]
    assert clusters["b-near"] == clusters["b-near-exact"] == code[("b", 0)]
    assert clusters["e-near"] == code[("e", 1)]
    assert stats["dropped"] == {"exact_duplicate": 2, "near_duplicate": 3}
    assert stats["docs_out"] == 7 and stats["docs_in"] == 12 and stats["unaccounted"] == 0
    assert stats["clusters"] == 4  # a, b, c, e each absorbed duplicates
    assert stats["partitions"] > 1
    assert stats["tokens_in"] == stats["tokens_out"] + sum(stats["dropped_tokens"].values())


def test_dedup_keeps_the_best_scored_member(tmp_path):
    text = _doc(7)
    rows0 = [{"id": "first", "text": text}, {"id": "other", "text": _doc(8)}]
    rows1 = [{"id": "best", "text": _near(text, 4)}, {"id": "copy", "text": text}]
    args = _source(tmp_path, [rows0, rows1], priority={"first": 1.0, "best": 3.5, "copy": 2.0})
    dedup_source(*args, NUM_PERM, 0.7)
    decisions = {r["id"]: r for part in _decisions(args[-1]) for r in part}
    assert decisions["best"]["keep"] and decisions["other"]["keep"]
    assert not decisions["first"]["keep"] and not decisions["copy"]["keep"]
    # Measured against the kept document: the exact copies of "first" are near duplicates of "best".
    assert decisions["first"]["reason"] == decisions["copy"]["reason"] == "near_duplicate"
    assert decisions["first"]["cluster"] == (1 << 40) | 0


def test_distinct_documents_are_all_kept(tmp_path):
    parts_rows = [[{"id": f"p{k}-{i}", "text": _doc(1000 * k + i)} for i in range(40)] for k in range(3)]
    args = _source(tmp_path, parts_rows)
    stats = dedup_source(*args, NUM_PERM, 0.7, partition_mb=0.01)
    assert stats["docs_out"] == stats["docs_in"] == 120 and stats["clusters"] == 0
    assert all(r["keep"] for part in _decisions(args[-1]) for r in part)


def test_lsh_shape_comes_from_datasketch():
    bands, rows = lsh_bands(0.7, 128)
    assert bands * rows <= 128 and bands > 1 and rows > 1
    assert lsh_bands(0.9, 128)[1] > rows  # a stricter threshold asks more rows per band


def test_dedup_errors_name_the_file(tmp_path):
    rows = [{"id": f"d{i}", "text": _doc(i), "source": "s"} for i in range(3)]
    raw = tmp_path / "raw/s/part-0.parquet"
    _part(raw, rows)
    sig, exact = tmp_path / "minhash/s/part-0.npy", tmp_path / "minhash/s/part-0.exact.npy"
    compute_signatures(raw, sig, NUM_PERM, 5, 1, exact_npy=exact)
    filt = tmp_path / "filtered/s/part-0.parquet"
    _part(filt, rows + [{"id": "stranger", "text": "not in raw", "source": "s"}])
    out = [tmp_path / "o/part-0.parquet"]
    with pytest.raises(ValueError, match="filtered/s/part-0.parquet: id 'stranger' is not in the raw part"):
        dedup_source(
            [filt], [raw], [sig], [exact], out, NUM_PERM, 0.7, priority_column=None, tokens_column=None
        )
    with pytest.raises(ValueError, match=r"part-0.npy: shape \(3, 64\) does not match .*num_perm=128"):
        dedup_source([filt], [raw], [sig], [exact], out, 128, 0.7, priority_column=None, tokens_column=None)
    with pytest.raises(ValueError, match="out of order"):
        dedup_source([filt], [tmp_path / "raw/s/part-1.parquet"], [sig], [exact], out, NUM_PERM, 0.7)
    assert not out[0].exists()
