"""MinHash signatures and exact-text keys of one raw part (rule ``signatures``).

**Signatures** (``compute_signatures``, one job per raw part, independent of every threshold)
are datasketch's ``affine64`` MinHash, computed for a whole batch of documents at once:

1. the text is lowercased and split on whitespace by pyarrow's string kernels (no Python loop
   over documents);
2. each distinct word of the batch is hashed once (blake2b, 64 bits), and each shingle of
   ``shingle_words`` consecutive words gets ``shingle_hash``: an order-sensitive combination of
   its word hashes, computed with numpy over every shingle of the batch; a document shorter than
   one shingle is one shingle of all its words, an empty document has no shingle (all-max
   signature);
3. the shingle hashes go through datasketch's own permutation family: the MurmurHash3 finalizer,
   then ``a_k * h + b_k mod 2**64`` with datasketch's ``(a, b)`` for the seed, and the minimum
   per document over its shingles (``np.minimum.reduceat``).

Steps 2-3 are what ``MinHash(scheme="affine64", hashfunc=<shingle hash>).update_batch`` does for
one document (tests check the values are equal); doing them for thousands of documents per numpy
call instead of one Python-level MinHash per document is what makes it fast
(``perf/bench_dedup.py`` prints docs/s against datasketch's per-document loop).
``minhash/<source>/part-K.npy`` is ``uint64 (rows, num_perm)`` in the raw part's row order;
``part-K.exact.npy`` holds one 64-bit hash of each document's normalized word sequence (the
exact-duplicate key), so dedup never reads text.

The signatures do not depend on the dedup threshold, so they live apart from the dedup step
(``trellis.curate.dedup``, which reads these files through ``load_signatures`` and
``_load_exact`` and reuses ``fmix64`` and the position multipliers for its band keys): a changed
threshold reruns dedup only.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from datasketch import MinHash

from trellis.core.io import atomic_path, iter_batches
from trellis.core.logs import progress

log = logging.getLogger(__name__)

# datasketch >= 2.0 permutation scheme; its hash values are uint64, the signature file's dtype.
SCHEME = "affine64"
SIGNATURE_DTYPE = np.uint64
EMPTY_HASH = np.uint64(2**64 - 1)

# Shingles permuted per numpy block: a (1024 x num_perm) uint64 buffer (1 MiB at num_perm 128)
# stays in the CPU cache, which makes the multiply-add-min about four times faster than large
# blocks that stream through memory.
SHINGLE_BLOCK = 1024


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
    """MurmurHash3's 64-bit finalizer (the pre-mix datasketch applies before its permutations)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def word_hash(word: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


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


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine64 permutation parameters ``(a, b)`` for ``seed``."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return a.astype(np.uint64), b.astype(np.uint64)


def _batch_words(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(all words of the batch, flattened; words per document), with pyarrow's string kernels."""
    lists = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.utf8_lower(texts.fill_null(""))))
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists)
    # A text that is empty after trimming splits into one empty string: not a word.
    nonempty = pc.not_equal(flat, "")
    flat, parent = flat.filter(nonempty), parent.filter(nonempty)
    counts = np.bincount(parent.to_numpy(zero_copy_only=False), minlength=len(texts)).astype(np.int64)
    return flat, counts


def _word_hashes(words: pa.Array) -> np.ndarray:
    """uint64 hash of every word, hashing each distinct word of the batch once."""
    if len(words) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = pc.dictionary_encode(words)
    distinct = np.fromiter((word_hash(w) for w in encoded.dictionary.to_pylist()), dtype=np.uint64)
    return distinct[encoded.indices.to_numpy(zero_copy_only=False)]


def _shingle_hashes(hashes: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every shingle of the batch, shingles per document), vectorized over documents."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_shingles = np.where(counts == 0, 0, np.maximum(counts - n + 1, 1))
    total = int(n_shingles.sum())
    # Position of each shingle's first word in the flat word array, and how many words it has.
    doc_of = np.repeat(np.arange(len(counts)), n_shingles)
    first = np.concatenate([[0], np.cumsum(n_shingles)[:-1]]).astype(np.int64)
    pos = starts[doc_of] + (np.arange(total, dtype=np.int64) - first[doc_of])
    width = np.minimum(counts[doc_of], n)
    acc = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            use = width > j
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
    a: np.ndarray,
    b: np.ndarray,
    word_hashes: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """MinHash signatures ``(len(texts), num_perm)`` of a batch of documents (see the module doc)."""
    hashes, counts = word_hashes if word_hashes is not None else _batch_word_hashes(texts)
    shingle_h, per_doc = _shingle_hashes(hashes, counts, shingle_words)
    out = np.full((len(texts), num_perm), EMPTY_HASH, dtype=np.uint64)
    mixed = fmix64(shingle_h)
    doc_of = np.repeat(np.arange(len(texts)), per_doc)
    buf = np.empty((SHINGLE_BLOCK, num_perm), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for lo in range(0, len(mixed), SHINGLE_BLOCK):
            m = mixed[lo : lo + SHINGLE_BLOCK]
            block = buf[: len(m)]
            np.multiply(m[:, None], a[None, :], out=block)
            np.add(block, b[None, :], out=block)
            docs = doc_of[lo : lo + SHINGLE_BLOCK]
            # Shingles are grouped by document: reduce each document's run, then merge with what
            # an earlier block already found for a document that spans the boundary.
            run_starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            rows = docs[run_starts]
            out[rows] = np.minimum(out[rows], np.minimum.reduceat(block, run_starts, axis=0))
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
    """MinHash every document of a raw part; write ``(rows, num_perm)`` uint64 ``.npy`` atomically.

    ``exact_npy`` (optional) receives each document's exact-duplicate key. Streams the part;
    the outputs are filled through ``open_memmap`` of temporary files, so only one batch of
    texts and the output pages are ever resident.
    """
    if shingle_words < 1 or shingle_words > len(_POSITION_MULTIPLIERS):
        raise ValueError(f"shingle_words must be in 1..{len(_POSITION_MULTIPLIERS)}, got {shingle_words}")
    raw_path = Path(raw_path)
    rows = pq.ParquetFile(raw_path).metadata.num_rows
    a, b = permutations(num_perm, seed)
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
            sig = minhash_batch(texts, num_perm, shingle_words, a, b, word_hashes)
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
