"""Signatures: the vectorized MinHash equals datasketch's, exact-text keys, and the signature files."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHash

from trellis.curate.signatures import (
    compute_signatures,
    exact_keys,
    minhash_batch,
    permutations,
    shingle_hash,
    shingles,
    word_hash,
)

NUM_PERM = 64
WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
    "upsilon phi chi psi omega river stone cloud forest ember harbor lantern meadow quartz summit"
).split()


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


def _part(path, rows, row_group_size=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)


def test_shingles_normalize_case_and_whitespace():
    assert shingles("a b c", 5) == {("a", "b", "c")}
    assert shingles("", 5) == set()
    assert shingles("A  b\nC d", 2) == shingles("a b c d", 2) == {("a", "b"), ("b", "c"), ("c", "d")}


def test_vectorized_signatures_equal_datasketch():
    """The numpy path is datasketch's affine64 MinHash over the same shingle hashes, value for value."""
    texts = [_doc(1), _near(_doc(1), 3), "Short text", "", None, "  A  b\nC d e f g h  ", _doc(2, 2000)]
    a, b = permutations(NUM_PERM, 11)
    sig = minhash_batch(pa.array(texts), NUM_PERM, 5, a, b)
    for text, row in zip(texts, sig):
        m = MinHash(num_perm=NUM_PERM, seed=11, scheme="affine64", hashfunc=lambda h: h)
        m.update_batch([shingle_hash([word_hash(w) for w in s]) for s in shingles(text or "", 5)])
        assert np.array_equal(m.hashvalues, row), text
    # And the estimate tracks the true Jaccard of the shingle sets.
    s0, s1 = shingles(texts[0], 5), shingles(texts[1], 5)
    true = len(s0 & s1) / len(s0 | s1)
    assert abs(float(np.mean(sig[0] == sig[1])) - true) < 0.15


def test_exact_keys_ignore_case_and_spacing_only():
    keys = exact_keys(pa.array(["Hello  World", " hello world\n", "world hello", "", None]))
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]  # word order matters
    assert keys[3] == keys[4]


def test_signatures_shape_dtype_and_determinism(tmp_path):
    rows = [{"id": f"d{i}", "text": _doc(i), "source": "s"} for i in range(10)]
    rows.append({"id": "empty", "text": "", "source": "s"})
    _part(tmp_path / "raw/s/part-0.parquet", rows)
    stats = compute_signatures(
        tmp_path / "raw/s/part-0.parquet",
        tmp_path / "a.npy",
        NUM_PERM,
        5,
        7,
        exact_npy=tmp_path / "a.exact.npy",
        batch_size=3,
    )
    compute_signatures(tmp_path / "raw/s/part-0.parquet", tmp_path / "b.npy", NUM_PERM, 5, 7)
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.dtype == np.uint64 and a.shape == (11, NUM_PERM)
    assert np.array_equal(a, b)  # batch size does not change a signature
    assert not np.array_equal(a[0], a[1])
    assert np.load(tmp_path / "a.exact.npy").shape == (11,)
    assert stats["rows"] == 11 and stats["empty_documents"] == 1 and stats["docs_per_second"] > 0
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary files were renamed away
