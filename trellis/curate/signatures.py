"""MinHash signatures and exact-text keys of one raw part (rule ``signatures``).

**Signatures** (``compute_signatures``, one job per raw part, independent of every threshold)
are rensa's ``RMinHash`` sketch, computed for a whole batch of documents at once:

1. the text is lowercased and split on whitespace by pyarrow's string kernels (no Python loop
   over documents);
2. every distinct word of the batch gets a 64-bit hash (``hash_words``: a polynomial over its
   UTF-8 bytes with fixed odd multipliers, finished by MurmurHash3's ``fmix64``, computed with
   numpy over all the batch's bytes at once), and each shingle of ``shingle_words`` consecutive
   words gets ``shingle_hash``: an order-sensitive combination of its word hashes, computed with
   numpy over every shingle of the batch; a document shorter than one shingle is one shingle of
   all its words, an empty document has no shingle (an all-``EMPTY_HASH`` signature);
3. the shingle hashes of the batch go, as one flat array with row offsets, to rensa's batch entry
   point ``RMinHash.digest_matrix_from_flat_token_hashes`` (Rust, AVX2/AVX-512), which returns the
   ``(documents, num_perm)`` uint32 sketch.

rensa 0.5's ``RMinHash`` is not one permutation per value: it is a bucket sketch in the manner of
Fast Similarity Sketching (Dahlgaard, Knudsen and Thorup, arXiv:1704.04370). Each shingle is mixed
(splitmix64) into one of ``num_perm`` buckets with a 30-bit rank, in three rounds tagged in the
value's top two bits; a bucket left empty after three rounds (short documents) falls back to a
classic permutation minimum ``(a*h + b) >> 32`` with the seed's xoshiro256++ ``(a, b)``. Two
sketches agree in a coordinate with probability close to the Jaccard similarity of the shingle
sets, which is all dedup's banding and verification use. It costs three hashes per shingle instead
of ``num_perm``, which is why it beats one-permutation-per-value MinHash (datasketch's, and the
numpy one this module had before; ``perf/bench_dedup.py`` measures every peer). The scheme is
rensa's and changed between its releases, so ``requirements.txt`` pins rensa, and
``tests/curate/test_signatures.py`` ties its output to an independent Python implementation of the
scheme written from rensa's own canonical reference, value for value, so an upgrade that changes
it fails a test instead of silently changing which documents dedup drops.

``minhash/<source>/part-K.npy`` is ``uint32 (rows, num_perm)`` in the raw part's row order;
``part-K.exact.npy`` holds one 64-bit hash of each document's normalized word sequence (the
exact-duplicate key), so dedup never reads text.

The signatures do not depend on the dedup threshold, so they live apart from the dedup step
(``trellis.curate.dedup``, which reads these files through ``load_signatures`` and
``_load_exact`` and reuses ``fmix64`` and the position multipliers for its band keys): a changed
threshold reruns dedup only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rensa import RMinHash

from trellis.core.io import atomic_path, iter_batches
from trellis.core.logs import progress

log = logging.getLogger(__name__)

# rensa's RMinHash sketch (see the module doc); its values are uint32, the signature file's dtype.
SCHEME = "rensa-rminhash"
SIGNATURE_DTYPE = np.uint32
EMPTY_HASH = np.uint32(2**32 - 1)  # every value of a document without a shingle


# Odd 64-bit multipliers, one per position in a shingle (and per value in a band key): fixed
# constants (the splitmix64 sequence from 0), so hashes are the same on every machine and run.
def _splitmix64(n: int) -> np.ndarray:
    out, x = [], 0
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) % 2**64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        out.append((z ^ (z >> 31)) | 1)
    return np.array(out, dtype=np.uint64)


_POSITION_MULTIPLIERS = _splitmix64(64)


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def _byte_multipliers(positions: np.ndarray) -> np.ndarray:
    """The odd 64-bit multiplier of each byte position of a word (fmix64 of the position)."""
    return fmix64(positions.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


# The multipliers of the first positions, looked up instead of recomputed per byte (an fmix64 per
# byte was a third of hash_words); longer words are rare and extend it for their batch.
_BYTE_MULTIPLIERS = _byte_multipliers(np.arange(256))


def _byte_multiplier_table(longest: int) -> np.ndarray:
    """The multipliers of positions 0..longest-1."""
    if longest <= len(_BYTE_MULTIPLIERS):
        return _BYTE_MULTIPLIERS
    return _byte_multipliers(np.arange(longest))


def word_hash(word: str) -> int:
    """The 64-bit hash of one word (the reference for ``hash_words``, which does many at once)."""
    data = np.frombuffer(word.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    with np.errstate(over="ignore"):
        acc = np.sum(data.astype(np.uint64) * _byte_multipliers(np.arange(len(data))), dtype=np.uint64)
    return int(fmix64(np.array([acc ^ np.uint64(len(data))], dtype=np.uint64))[0])


def hash_words(words: pa.Array) -> np.ndarray:
    """uint64 ``word_hash`` of every string of ``words``, vectorized over their bytes.

    Hashing a word is a sum over its bytes, so numpy does it for all the words of a batch in a
    few passes over their bytes instead of one Python-level hash call per word (the blake2b per
    distinct word this module used before took about 40% of the signature time).
    """
    if len(words) == 0:
        return np.zeros(0, dtype=np.uint64)
    # large_string: one int64 offsets buffer whatever the input's string type.
    words = words.cast(pa.large_string())
    _, offsets_buffer, data_buffer = words.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[words.offset : words.offset + len(words) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
    sums = np.zeros(len(words), dtype=np.uint64)
    multipliers = _byte_multiplier_table(int(lengths.max()))
    with np.errstate(over="ignore"):
        terms = data.astype(np.uint64) * multipliers[position]
        nonempty = lengths > 0
        if nonempty.any():
            sums[nonempty] = np.add.reduceat(terms, starts[nonempty])
    return fmix64(sums ^ lengths.astype(np.uint64))


def shingle_hash(word_hashes: Sequence[int]) -> int:
    """The 64-bit hash of one shingle from its words' hashes (the reference for the numpy path)."""
    acc = 0
    for j, h in enumerate(word_hashes):
        acc = (acc + int(h) * int(_POSITION_MULTIPLIERS[j])) % 2**64
    return acc


def normalized_words(text: str) -> list[str]:
    """The words dedup sees: lowercased, split on whitespace (the Python form of _batch_words)."""
    return text.lower().split()


def shingles(text: str, shingle_words: int) -> set[tuple[str, ...]]:
    """A document's shingles as word tuples (the set its MinHash estimates Jaccard over)."""
    words = normalized_words(text)
    if not words:
        return set()
    if len(words) <= shingle_words:
        return {tuple(words)}
    return {tuple(words[i : i + shingle_words]) for i in range(len(words) - shingle_words + 1)}


def _batch_words(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(all words of the batch, flattened; words per document), with pyarrow's string kernels."""
    lists = pc.utf8_split_whitespace(pc.utf8_lower(texts.fill_null("")))
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists)
    # Leading or trailing whitespace splits off an empty string, and so does an empty text: not a
    # word (dropping them here is cheaper than trimming every text first).
    nonempty = pc.not_equal(flat, "")
    flat, parent = flat.filter(nonempty), parent.filter(nonempty)
    counts = np.bincount(parent.to_numpy(zero_copy_only=False), minlength=len(texts)).astype(np.int64)
    return flat, counts


def _word_hashes(words: pa.Array) -> np.ndarray:
    """uint64 hash of every word, hashing each distinct word of the batch once."""
    if len(words) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = pc.dictionary_encode(words)
    return hash_words(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]


def _shingle_hashes(hashes: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every shingle of the batch, shingles per document), vectorized over documents."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_shingles = np.where(counts == 0, 0, np.maximum(counts - n + 1, 1))
    total = int(n_shingles.sum())
    # Position of each shingle's first word in the flat word array, and how many words it has.
    doc_of = np.repeat(np.arange(len(counts)), n_shingles)
    first = np.concatenate([[0], np.cumsum(n_shingles)[:-1]]).astype(np.int64)
    pos = starts[doc_of] + (np.arange(total, dtype=np.int64) - first[doc_of])
    acc = np.zeros(total, dtype=np.uint64)
    if total == 0:
        return acc, n_shingles
    with np.errstate(over="ignore"):
        # Every shingle as if it had n words (clipped at the end of the batch)...
        last = len(hashes) - 1
        for j in range(n):
            acc += hashes[np.minimum(pos + j, last)] * _POSITION_MULTIPLIERS[j]
        # ...then the few of documents shorter than n words (one shingle of all their words)
        # again, with only their own words: cheaper than masking every shingle at every position.
        short = np.flatnonzero(counts[doc_of] < n)
        if len(short):
            width = counts[doc_of[short]]
            acc[short] = 0
            for j in range(n - 1):
                use = short[width > j]
                acc[use] += hashes[pos[use] + j] * _POSITION_MULTIPLIERS[j]
    return acc, n_shingles


def _batch_word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every word of the batch, flattened; words per document)."""
    words, counts = _batch_words(texts)
    return _word_hashes(words), counts


def minhash_batch(
    texts: pa.Array,
    num_perm: int,
    shingle_words: int,
    seed: int,
    word_hashes: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """MinHash signatures ``(len(texts), num_perm)`` uint32 of a batch of documents (module doc)."""
    hashes, counts = word_hashes if word_hashes is not None else _batch_word_hashes(texts)
    shingle_h, per_doc = _shingle_hashes(hashes, counts, shingle_words)
    row_offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.uint64)
    sketch = RMinHash.digest_matrix_from_flat_token_hashes(shingle_h, row_offsets, num_perm, seed)
    # to_rows() is the matrix's only accessor (lists of ints): about 10 ms for 1,024 x 128.
    out = np.array(sketch.to_rows(), dtype=SIGNATURE_DTYPE).reshape(len(texts), num_perm)
    return out


def exact_keys(texts: pa.Array, word_hashes: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A 64-bit hash of each document's normalized word sequence: equal for exact duplicates."""
    hashes, counts = word_hashes if word_hashes is not None else _batch_word_hashes(texts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    position = np.arange(len(hashes), dtype=np.int64) - np.repeat(starts, counts)
    with np.errstate(over="ignore"):
        terms = hashes * fmix64(position.astype(np.uint64) + np.uint64(1))
        sums = np.zeros(len(counts), dtype=np.uint64)
        nonzero = counts > 0
        if nonzero.any():
            sums[nonzero] = np.add.reduceat(terms, starts[nonzero])
        return fmix64(sums ^ counts.astype(np.uint64))


def compute_signatures(
    raw_path: str | os.PathLike,
    out_npy: str | os.PathLike,
    num_perm: int,
    shingle_words: int,
    seed: int,
    exact_npy: str | os.PathLike | None = None,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """MinHash every document of a raw part; write ``(rows, num_perm)`` uint32 ``.npy`` atomically.

    ``exact_npy`` (optional) receives each document's exact-duplicate key. Streams the part;
    the outputs are filled through ``open_memmap`` of temporary files, so only one batch of
    texts and the output pages are ever resident.
    """
    if shingle_words < 1 or shingle_words > len(_POSITION_MULTIPLIERS):
        raise ValueError(f"shingle_words must be in 1..{len(_POSITION_MULTIPLIERS)}, got {shingle_words}")
    raw_path = Path(raw_path)
    rows = pq.ParquetFile(raw_path).metadata.num_rows
    empty = 0
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out_npy))
        # np.save appends .npy to names that lack it; open_memmap writes exactly the given name.
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=SIGNATURE_DTYPE, shape=(rows, num_perm))
        exact = None
        if exact_npy:
            tmp_exact = stack.enter_context(atomic_path(exact_npy))
            exact = np.lib.format.open_memmap(tmp_exact, mode="w+", dtype=np.uint64, shape=(rows,))
        row = 0
        bar = progress(total=rows, desc="minhash", unit="docs", logger=log)
        for batch in iter_batches(raw_path, ["text"], batch_size):
            texts = batch.column("text")
            word_hashes = _batch_word_hashes(texts)  # shared by the signatures and the exact keys
            sig = minhash_batch(texts, num_perm, shingle_words, seed, word_hashes)
            out[row : row + len(texts)] = sig
            empty += int((sig[:, 0] == EMPTY_HASH).sum())
            if exact is not None:
                exact[row : row + len(texts)] = exact_keys(texts, word_hashes)
            row += len(texts)
            bar.update(len(texts))
        bar.close()
        if row != rows:
            raise ValueError(f"{raw_path}: metadata says {rows} rows but {row} were read")
        out.flush()
        del out
        if exact is not None:
            exact.flush()
            del exact
    seconds = time.monotonic() - start
    stats = {
        "rows": rows,
        "num_perm": num_perm,
        "shingle_words": shingle_words,
        "seed": seed,
        "scheme": SCHEME,
        "empty_documents": empty,
        "seconds": round(seconds, 3),
        "docs_per_second": round(rows / seconds, 1) if seconds > 0 else None,
    }
    log.info(
        "signatures %s: %d docs (%d empty) in %.1fs, %.0f docs/s",
        raw_path,
        rows,
        empty,
        seconds,
        rows / seconds if seconds > 0 else float("inf"),
    )
    return stats


def load_signatures(path: str | os.PathLike, rows: int, num_perm: int) -> np.ndarray:
    """Memory-map a signature file and check it matches its raw part and the configured num_perm."""
    sig = np.load(path, mmap_mode="r")
    if sig.dtype != SIGNATURE_DTYPE or sig.ndim != 2:
        raise ValueError(
            f"{path}: expected a 2-d {np.dtype(SIGNATURE_DTYPE)} array, got {sig.dtype} {sig.shape}"
        )
    if sig.shape != (rows, num_perm):
        raise ValueError(
            f"{path}: shape {sig.shape} does not match the raw part ({rows} rows) and num_perm={num_perm}; "
            "were the signatures computed with another num_perm or from another part?"
        )
    return sig


def _load_exact(path: str | os.PathLike, rows: int) -> np.ndarray:
    """Memory-map an exact-key file and check it has one uint64 key per row of its raw part."""
    keys = np.load(path, mmap_mode="r")
    if keys.dtype != np.uint64 or keys.shape != (rows,):
        raise ValueError(f"{path}: expected uint64 ({rows},) exact keys, got {keys.dtype} {keys.shape}")
    return keys
