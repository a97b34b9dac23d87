"""Deduplication: MinHash signatures per raw part, then exact + near-duplicate removal per source.

Signatures are computed once per raw part, independent of any threshold, so that a changed
filter threshold reruns only the (cheap) LSH step. A signature file is a ``.npy`` array of
``uint64`` with shape ``(rows, num_perm)`` in the raw part's row order; row ``i`` is the MinHash
of raw row ``i``. We use datasketch's ``affine64`` permutation scheme, whose hash values are
natively 64-bit, so the stored values are exactly the sketch (no narrowing or widening).

Shingles are word n-grams (``shingle_words`` words) of the lowercased, whitespace-normalized
text; a document shorter than one shingle is one shingle of all its words, and an empty
document has an empty (all-max) signature.

Dedup walks the source's filtered parts in (part, row) order and keeps the first occurrence:

1. exact duplicate: a blake2b hash of the normalized text was already seen;
2. near duplicate: MinHashLSH returns a previously kept document whose estimated Jaccard
   similarity (fraction of equal hash values) reaches the threshold. LSH candidates are verified
   against the stored signatures, so banding false positives never drop a document.

Only kept documents are inserted into the index, so a chain a~b~c with a!~c keeps a and c.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import LeanMinHash, MinHash, MinHashLSH

from trellis.io import ParquetWriter, atomic_path, iter_batches, part_index, read_column
from trellis.tally import Tally

log = logging.getLogger(__name__)

# datasketch >= 2.0 permutation scheme; its hash values are uint64, the signature file's dtype.
SCHEME = "affine64"
SIGNATURE_DTYPE = np.uint64

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lowercase and collapse whitespace: the form both dedup hashes are computed on."""
    return _WS.sub(" ", text.lower()).strip()


def shingles(text: str, shingle_words: int) -> set[bytes]:
    """Word n-gram shingles of the normalized text, as UTF-8 bytes (datasketch hashes bytes)."""
    words = normalize_text(text).split(" ")
    if words == [""]:
        return set()
    if len(words) <= shingle_words:
        return {" ".join(words).encode("utf-8", "surrogatepass")}
    return {
        " ".join(words[i : i + shingle_words]).encode("utf-8", "surrogatepass")
        for i in range(len(words) - shingle_words + 1)
    }


def exact_key(text: str) -> bytes:
    return hashlib.blake2b(normalize_text(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def compute_signatures(
    raw_path: str | os.PathLike,
    out_npy: str | os.PathLike,
    num_perm: int,
    shingle_words: int,
    seed: int,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """MinHash every document of a raw part; write a (rows, num_perm) uint64 .npy atomically.

    Streams the part; the output is filled through an ``open_memmap`` of the temporary file, so
    only one batch of texts and the output array's pages are ever resident.
    """
    if shingle_words < 1:
        raise ValueError(f"shingle_words must be >= 1, got {shingle_words}")
    raw_path = Path(raw_path)
    rows = pq.ParquetFile(raw_path).metadata.num_rows
    tally = Tally(f"signatures/{raw_path.parent.name}/{raw_path.name}")
    empty = 0
    start = time.monotonic()
    with atomic_path(out_npy) as tmp:
        # np.save appends .npy to names that lack it; open_memmap writes exactly the given name.
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=SIGNATURE_DTYPE, shape=(rows, num_perm))
        row = 0
        for batch in iter_batches(raw_path, ["text"], batch_size):
            texts = batch.column("text").to_pylist()
            shingle_sets = []
            for text in texts:
                tally.seen(text)
                s = shingles(text or "", shingle_words)
                empty += not s
                shingle_sets.append(s)
            # MinHash.generator copies one initialized MinHash (permutations computed once) per
            # document: the batch API that avoids re-deriving num_perm permutations every time.
            for i, m in enumerate(MinHash.generator(shingle_sets, num_perm=num_perm, seed=seed, scheme=SCHEME)):
                out[row + i] = m.hashvalues
                tally.kept()
            row += len(texts)
        if row != rows:
            raise ValueError(f"{raw_path}: metadata says {rows} rows but {row} were read")
        out.flush()
        del out
    seconds = time.monotonic() - start
    stats = tally.to_dict()
    stats.update(
        rows=rows,
        num_perm=num_perm,
        shingle_words=shingle_words,
        seed=seed,
        scheme=SCHEME,
        empty_documents=empty,
        docs_per_second=round(rows / seconds, 1) if seconds > 0 else None,
    )
    log.info("signatures %s: %d docs (%d empty) in %.1fs, %.0f docs/s", raw_path, rows, empty, seconds,
             rows / seconds if seconds > 0 else float("inf"))
    return stats


def load_signatures(path: str | os.PathLike, rows: int, num_perm: int) -> np.ndarray:
    """Memory-map a signature file and check it matches its raw part and the configured num_perm."""
    sig = np.load(path, mmap_mode="r")
    if sig.dtype != SIGNATURE_DTYPE or sig.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d {np.dtype(SIGNATURE_DTYPE)} array, got {sig.dtype} {sig.shape}")
    if sig.shape != (rows, num_perm):
        raise ValueError(
            f"{path}: shape {sig.shape} does not match the raw part ({rows} rows) and num_perm={num_perm}; "
            "were the signatures computed with another num_perm or from another part?"
        )
    return sig


def _check_aligned(filtered: Sequence, raw: Sequence, sigs: Sequence, out: Sequence) -> None:
    n = len(filtered)
    if not (len(raw) == len(sigs) == len(out) == n):
        raise ValueError(
            f"dedup needs one raw part, signature file and output per filtered part; got "
            f"{n} filtered, {len(raw)} raw, {len(sigs)} signatures, {len(out)} outputs"
        )
    for f, r, s in zip(filtered, raw, sigs):
        # Parts pair up by index; a mismatched list order would silently pair the wrong rows.
        if not (part_index(f) == part_index(r) == part_index(Path(s).with_suffix(".parquet"))):
            raise ValueError(f"part lists out of order: {f}, {r}, {s} are not the same part")


def dedup_source(
    filtered_paths: Sequence[str | os.PathLike],
    raw_paths: Sequence[str | os.PathLike],
    signature_paths: Sequence[str | os.PathLike],
    out_paths: Sequence[str | os.PathLike],
    num_perm: int,
    threshold: float,
) -> dict[str, Any]:
    """Remove exact and near duplicates across all filtered parts of one source.

    Each list is in part order, element k of every list being part k. Writes each curated part
    (the filtered part's columns, its kept rows in order) atomically. Returns stats: docs_in,
    kept, dropped {exact_duplicate, near_duplicate}, clusters (kept documents that absorbed at
    least one duplicate).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"jaccard threshold must be in (0, 1], got {threshold}")
    _check_aligned(filtered_paths, raw_paths, signature_paths, out_paths)
    tally = Tally("dedup")
    tally.dropped["exact_duplicate"] += 0
    tally.dropped["near_duplicate"] += 0
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    seen_exact: dict[bytes, tuple[int, int]] = {}  # text hash -> the kept document it maps to
    signatures: list[np.ndarray] = []  # memory-mapped, one per part: verification reads rows lazily
    cluster_heads: set[tuple[int, int]] = set()
    lsh_candidates = 0
    false_candidates = 0
    start = time.monotonic()

    for k, (fpath, rpath, spath, opath) in enumerate(zip(filtered_paths, raw_paths, signature_paths, out_paths)):
        # Only the raw id column: the map from a kept id to its signature row.
        raw_ids = read_column(rpath, "id")
        row_of = {doc_id: i for i, doc_id in enumerate(raw_ids)}
        if len(row_of) != len(raw_ids):
            raise ValueError(f"{rpath}: duplicate ids in the raw part; ids must be unique per part")
        sig = load_signatures(spath, len(raw_ids), num_perm)
        signatures.append(sig)
        del raw_ids

        schema = pq.read_schema(fpath)
        with ParquetWriter(opath, schema) as writer:
            for batch in iter_batches(fpath):
                keep = np.zeros(batch.num_rows, dtype=bool)
                for j, (doc_id, text) in enumerate(zip(batch.column("id").to_pylist(), batch.column("text").to_pylist())):
                    tally.seen(text)
                    row = row_of.get(doc_id)
                    if row is None:
                        raise ValueError(f"{fpath}: id {doc_id!r} is not in the raw part {rpath}")
                    key = exact_key(text or "")
                    head = seen_exact.get(key)
                    if head is not None:
                        tally.drop("exact_duplicate")
                        cluster_heads.add(head)
                        continue
                    hv = np.asarray(sig[row])
                    # The seed is not recoverable from hash values and LSH banding never reads it;
                    # candidates are verified on the raw values below, not via MinHash.jaccard.
                    m = LeanMinHash(seed=0, hashvalues=hv, scheme=SCHEME)
                    match = None
                    for cand in lsh.query(m):
                        lsh_candidates += 1
                        ck, cr = cand
                        if float(np.mean(signatures[ck][cr] == hv)) >= threshold:
                            match = cand
                            break
                        false_candidates += 1
                    if match is not None:
                        tally.drop("near_duplicate")
                        cluster_heads.add(match)
                        seen_exact[key] = match
                        continue
                    seen_exact[key] = (k, row)
                    lsh.insert((k, row), m, check_duplication=False)
                    keep[j] = True
                    tally.kept(text)
                if keep.any():
                    writer.write_table(pa.Table.from_batches([batch.filter(pa.array(keep))]))
        log.info("dedup %s -> %s: %d rows written", fpath, opath, writer.rows_written)

    stats = tally.to_dict()
    stats.update(
        kept=tally.docs_out,
        clusters=len(cluster_heads),
        num_perm=num_perm,
        threshold=threshold,
        lsh_candidates_checked=lsh_candidates,
        lsh_false_candidates=false_candidates,
        docs_per_second=round(tally.docs_in / max(time.monotonic() - start, 1e-9), 1),
    )
    log.info(tally.summary() + f"; {len(cluster_heads)} clusters")
    return stats
