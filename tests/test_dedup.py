import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.dedup import compute_signatures, dedup_source, normalize_text, shingles

NUM_PERM = 64
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega river stone cloud forest ember harbor lantern meadow quartz summit").split()


def _doc(seed, n=120):
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=n))


def _near(text, seed, edits=2):
    """A copy with a couple of words changed: Jaccard of 5-gram shingles stays well above 0.7."""
    words = text.split()
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(words), size=edits, replace=False):
        words[i] = "CHANGED"
    return " ".join(words)


def _part(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)


def test_shingles_normalize_case_and_whitespace():
    assert normalize_text("  Hello\n\tWORLD  ") == "hello world"
    assert shingles("a b c", 5) == {b"a b c"}
    assert shingles("", 5) == set()
    assert shingles("A  b\nC d", 2) == shingles("a b c d", 2) == {b"a b", b"b c", b"c d"}


def test_signatures_shape_dtype_and_determinism(tmp_path):
    rows = [{"id": f"d{i}", "text": _doc(i), "source": "s"} for i in range(10)]
    rows.append({"id": "empty", "text": "", "source": "s"})
    _part(tmp_path / "raw/s/part-0.parquet", rows)
    stats = compute_signatures(tmp_path / "raw/s/part-0.parquet", tmp_path / "a.npy", NUM_PERM, 5, 7)
    compute_signatures(tmp_path / "raw/s/part-0.parquet", tmp_path / "b.npy", NUM_PERM, 5, 7)
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.dtype == np.uint64 and a.shape == (11, NUM_PERM)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    assert stats["rows"] == 11 and stats["empty_documents"] == 1 and stats["docs_per_second"] > 0
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed away


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
    for rows in (part0, part1):
        for r in rows:
            r["source"] = "s"
            r["meta"] = len(r["text"])
    raws, filts, sigs, outs = [], [], [], []
    for k, rows in enumerate((part0, part1)):
        raw = tmp_path / f"raw/s/part-{k}.parquet"
        _part(raw, rows)
        filt = tmp_path / f"filtered/s/part-{k}.parquet"
        _part(filt, [r for r in rows if r["id"] != "dropped-by-filter"])
        sig = tmp_path / f"minhash/s/part-{k}.npy"
        compute_signatures(raw, sig, NUM_PERM, 5, 1)
        raws.append(raw), filts.append(filt), sigs.append(sig)
        outs.append(tmp_path / f"curated/s/part-{k}.parquet")

    stats = dedup_source(filts, raws, sigs, outs, NUM_PERM, 0.7)
    kept0 = pq.read_table(outs[0])
    kept1 = pq.read_table(outs[1])
    assert kept0.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert kept1.column("id").to_pylist() == ["e", "f", "only-filtered-copy"]
    assert kept0.column_names == ["id", "text", "source", "meta"]
    assert stats["dropped"] == {"exact_duplicate": 3, "near_duplicate": 2}
    assert stats["kept"] == 7 and stats["docs_in"] == 12
    assert stats["clusters"] == 4  # a, b, c, e each absorbed duplicates
    assert stats["unaccounted"] == 0


def test_dedup_errors_name_the_file(tmp_path):
    rows = [{"id": f"d{i}", "text": _doc(i), "source": "s"} for i in range(3)]
    raw = tmp_path / "raw/s/part-0.parquet"
    _part(raw, rows)
    sig = tmp_path / "minhash/s/part-0.npy"
    compute_signatures(raw, sig, NUM_PERM, 5, 1)
    filt = tmp_path / "filtered/s/part-0.parquet"
    _part(filt, rows + [{"id": "stranger", "text": "not in raw", "source": "s"}])
    with pytest.raises(ValueError, match="filtered/s/part-0.parquet: id 'stranger' is not in the raw part"):
        dedup_source([filt], [raw], [sig], [tmp_path / "o/part-0.parquet"], NUM_PERM, 0.7)
    with pytest.raises(ValueError, match=r"part-0.npy: shape \(3, 64\) does not match .*num_perm=128"):
        dedup_source([filt], [raw], [sig], [tmp_path / "o/part-0.parquet"], 128, 0.7)
    with pytest.raises(ValueError, match="out of order"):
        dedup_source([filt], [tmp_path / "raw/s/part-1.parquet"], [sig], [tmp_path / "o/part-0.parquet"], NUM_PERM, 0.7)
