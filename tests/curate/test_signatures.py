"""Signatures: rensa's sketch against an independent implementation of its scheme, the text-to-shingle
path against per-word references, exact-text keys, and the signature files."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rensa import RMinHash

from trellis.curate.signatures import (
    EMPTY_HASH,
    compute_signatures,
    exact_keys,
    hash_words,
    minhash_batch,
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


# --- rensa 0.5's RMinHash, written from its canonical reference (src/rminhash/bucket.rs, tests) ---
M64 = 2**64
RANK_BITS, FRACTION_BITS, ROUNDS = 2, 30, 3
FALLBACK = 3 << FRACTION_BITS
BUCKET_DOMAIN, ROUND_DOMAIN, FALLBACK_DOMAIN = 0x6A09E667F3BCC909, 0x3C6EF372FE94F82B, 0xBB67AE8584CAA73B


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) % M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % M64
    return x ^ (x >> 31)


def _xoshiro256pp(seed):
    """rand_xoshiro's Xoshiro256PlusPlus::seed_from_u64: its state is SplitMix64's first four outputs."""
    s0, s1, s2, s3 = (_splitmix64((seed + i * 0x9E3779B97F4A7C15) % M64) for i in range(4))

    def rotl(v, k):
        return ((v << k) | (v >> (64 - k))) % M64

    while True:
        out = (rotl((s0 + s3) % M64, 23) + s0) % M64
        t = (s1 << 17) % M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        yield out


def rminhash_reference(tokens, num_perm, seed):
    """Coordinate-wise minimum over every token of its three bucket ranks and its fallback ranks."""
    rng = _xoshiro256pp(seed)
    pairs = [(next(rng) | 1, next(rng)) for _ in range(num_perm)]
    values = np.full(num_perm, 2**32 - 1, dtype=np.uint64)
    a = np.array([p[0] for p in pairs], dtype=np.uint64)
    b = np.array([p[1] for p in pairs], dtype=np.uint64)
    threshold = (1 << 32) % num_perm
    for token in (int(t) for t in tokens):
        fallback_hash = np.uint64(_splitmix64(token ^ pairs[0][0] ^ FALLBACK_DOMAIN))
        with np.errstate(over="ignore"):
            ranks = np.uint64(FALLBACK) | ((a * fallback_hash + b) >> np.uint64(32 + RANK_BITS))
        values = np.minimum(values, ranks)
        for round_ in range(ROUNDS):
            mixed = _splitmix64(token ^ pairs[0][1] ^ BUCKET_DOMAIN ^ (round_ * ROUND_DOMAIN % M64))
            candidate = mixed
            while ((candidate & 0xFFFFFFFF) * num_perm) & 0xFFFFFFFF < threshold:  # Lemire, rejecting
                candidate = _splitmix64(candidate)
            bucket = ((candidate & 0xFFFFFFFF) * num_perm) >> 32
            rank = (round_ << FRACTION_BITS) | (mixed >> (32 + RANK_BITS))
            values[bucket] = min(int(values[bucket]), rank)
    return values.astype(np.uint32)


def test_rensa_sketch_equals_an_independent_implementation_of_its_scheme():
    """rensa's batch entry point, value for value, on the paths its kernel takes: empty, short rows
    (fallback-filled), rows past its 1,024-token prefix, and bucket counts that are and are not
    powers of two. A rensa release that changes the scheme fails here."""
    rng = np.random.default_rng(0)
    sizes = [0, 1, 5, 32, 33, 200, 3000]
    rows = [rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True) for n in sizes]
    rows.append(np.array([0, 1, 2, 2**64 - 1, 2**32], dtype=np.uint64))
    flat = np.concatenate(rows)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.uint64)
    for num_perm, seed in [(128, 1), (64, 7), (100, 2**40 + 3)]:
        got = np.array(RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed).to_rows())
        for row, tokens in zip(got, rows):
            assert np.array_equal(row, rminhash_reference(tokens, num_perm, seed)), (num_perm, len(tokens))
    assert np.all(got[0] == EMPTY_HASH)


def test_word_hashes_match_the_per_word_reference():
    lone_surrogate = "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    words = ["", "a", "alpha", "Ünïcödé", "x" * 300, "tab\tinside", lone_surrogate]
    for array in (pa.array(words), pa.array(words, type=pa.large_string()), pa.array(["zz"] + words)[1:]):
        assert hash_words(array).tolist() == [word_hash(w) for w in words]
    assert len(set(hash_words(pa.array(words)).tolist())) == len(words)


def test_batch_signatures_are_the_sketch_of_each_documents_shingles():
    """Text to signature: each row is the scheme applied to the document's shingle hashes, built
    from the per-word and per-shingle references."""
    # Documents shorter than a shingle in the middle and at the end of the batch (where the
    # n-word pass runs past the last word), blank ones, surrounding whitespace.
    texts = [_doc(1), _near(_doc(1), 3), "Short text", "", None, "  A  b\nC d e f g h  ", _doc(2, 2000)]
    texts += [" \t ", "tail words"]
    sig = minhash_batch(pa.array(texts), NUM_PERM, 5, 11)
    assert sig.dtype == np.uint32 and sig.shape == (len(texts), NUM_PERM)
    for text, row in zip(texts, sig):
        tokens = {shingle_hash([word_hash(w) for w in s]) for s in shingles(text or "", 5)}
        assert np.array_equal(row, rminhash_reference(sorted(tokens), NUM_PERM, 11)), text
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
    assert a.dtype == np.uint32 and a.shape == (11, NUM_PERM)
    assert np.array_equal(a, b)  # batch size does not change a signature
    assert not np.array_equal(a[0], a[1])
    assert np.load(tmp_path / "a.exact.npy").shape == (11,)
    assert stats["rows"] == 11 and stats["empty_documents"] == 1 and stats["docs_per_second"] > 0
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary files were renamed away
