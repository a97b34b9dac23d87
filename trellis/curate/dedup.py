"""Exact and near duplicates across all filtered parts of a source (rule ``dedup_<source>``).

**Dedup** (``dedup_source``, one job per source) finds clusters across all of a source's filtered
parts without any process holding every signature (the design of datatrove's MinHash steps). It
reads the MinHash signatures and exact-text keys that ``trellis.curate.signatures`` wrote per raw
part, never the text:

1. *bucket*: for each filtered document, one record per LSH band (the band's ``r`` signature
   values hashed to a 64-bit key; ``b`` and ``r`` are datasketch's ``MinHashLSH`` optimum for the
   threshold) plus one for its exact key. Records are appended to on-disk partitions chosen by
   key, as many partitions as it takes to keep each under ``partition_mb``.
2. *match*: one partition at a time, records are sorted by key; documents sharing a key are
   candidates, verified against the stored signatures (estimated Jaccard >= threshold), so
   banding false positives never drop a document. Exact-key matches need no check.
3. *cluster*: the verified pairs of every partition are joined into connected components
   (scipy), so a cluster whose members met in different bands and parts is one cluster.
4. *keep the best*: in each cluster the document with the highest curation ``priority`` stays
   (ties: the earliest by part and row); every other member is dropped as ``exact_duplicate``
   (same normalized text as the kept one) or ``near_duplicate``.

Memory: one part's ids and one partition's records at a time, plus the duplicate pairs and their
documents (datatrove's clustering holds the same); never the corpus's signatures or text.

The output is one decision file per filtered part (``id``, ``keep``, ``reason``, ``cluster``) in
the filtered part's row order; the selection step reads it beside the filtered part.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHashLSH

from trellis.core.io import ParquetWriter, part_index, read_column

# Band keys hash signature values with the same fixed position multipliers and finalizer as the
# shingles, so they come from the signatures module rather than a second copy of the constants.
from trellis.curate.signatures import _POSITION_MULTIPLIERS, _load_exact, fmix64, load_signatures

log = logging.getLogger(__name__)

DEDUP_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("keep", pa.bool_()),
        ("reason", pa.string()),  # null, "exact_duplicate" or "near_duplicate"
        ("cluster", pa.int64()),  # the kept document's code (part << 40 | raw row); null if unique
    ]
)
DROP_REASONS = ("exact_duplicate", "near_duplicate")

_ROW_BITS = 40  # a document code is part << 40 | raw row: 2**40 rows per part, 2**23 parts
# Candidate pairs verified per chunk: two (pairs x num_perm) uint64 arrays, 32 MiB each at 128.
VERIFY_PAIRS = 32768
# One LSH record: a band (or exact-text) key, the document, its priority, and whether the key is
# the exact-text one (an exact match needs no signature check).
_RECORD = np.dtype([("key", "<u8"), ("doc", "<u8"), ("priority", "<f4"), ("exact", "?")])


# --------------------------------------------------------------------------------------------
# Band-partitioned LSH
# --------------------------------------------------------------------------------------------


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): datasketch's MinHashLSH optimum for this threshold and num_perm."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` 64-bit keys: band i's ``rows`` signature values, hashed with the band index."""
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(bands):
            acc = np.full(sig.shape[0], np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for j in range(rows):
                acc += np.asarray(sig[:, i * rows + j], dtype=np.uint64) * _POSITION_MULTIPLIERS[j]
            keys[:, i] = fmix64(acc)
    return keys


def _doc_codes(part: int, raw_rows: np.ndarray) -> np.ndarray:
    return (np.uint64(part) << np.uint64(_ROW_BITS)) | raw_rows.astype(np.uint64)


def _split_code(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (codes >> np.uint64(_ROW_BITS)).astype(np.int64), (codes & np.uint64(2**_ROW_BITS - 1)).astype(
        np.int64
    )


def _gather(paths: Sequence[str | os.PathLike], codes: np.ndarray) -> np.ndarray:
    """Rows of per-part ``.npy`` files (signatures or exact keys) for documents given by code.

    Each file is mapped only for this call: the pages a mapping touches count as resident until
    it is closed, so a long-lived mapping of every part would grow with the corpus.
    """
    parts, rows = _split_code(codes)
    out = None
    for p in np.unique(parts):
        source = np.load(paths[p], mmap_mode="r")
        if out is None:
            out = np.empty((len(codes), *source.shape[1:]), dtype=np.uint64)
        at = np.flatnonzero(parts == p)
        order = np.argsort(rows[at])  # sorted reads from the memory map
        out[at[order]] = source[rows[at][order]]
        del source
    return out if out is not None else np.empty((0,), dtype=np.uint64)


def _similar(sig_paths, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each pair's estimated Jaccard reaches the threshold, reading VERIFY_PAIRS at a time."""
    out = np.empty(len(a), dtype=bool)
    for lo in range(0, len(a), VERIFY_PAIRS):
        hi = lo + VERIFY_PAIRS
        out[lo:hi] = (_gather(sig_paths, a[lo:hi]) == _gather(sig_paths, b[lo:hi])).mean(axis=1) >= threshold
    return out


def _check_aligned(filtered: Sequence, raw: Sequence, sigs: Sequence, exact: Sequence, out: Sequence) -> None:
    n = len(filtered)
    if not (len(raw) == len(sigs) == len(exact) == len(out) == n):
        raise ValueError(
            f"dedup needs one raw part, signature file, exact-key file and output per filtered part; got "
            f"{n} filtered, {len(raw)} raw, {len(sigs)} signatures, {len(exact)} exact keys, {len(out)} "
            "outputs"
        )
    for f, r, s, e, o in zip(filtered, raw, sigs, exact, out):
        # Parts pair up by index; a mismatched list order would silently pair the wrong rows.
        if len({part_index(f), part_index(r), part_index(s), part_index(e), part_index(o)}) != 1:
            raise ValueError(f"part lists out of order: {f}, {r}, {s}, {e}, {o} are not the same part")


def _raw_rows(
    filtered_path, raw_path, raw_index: dict[str, int] | None = None
) -> tuple[list[str], np.ndarray]:
    """Ids of a filtered part and their rows in the raw part (the signature file's rows)."""
    ids = read_column(filtered_path, "id")
    if raw_index is None:
        raw_ids = read_column(raw_path, "id")
        raw_index = {doc_id: i for i, doc_id in enumerate(raw_ids)}
        if len(raw_index) != len(raw_ids):
            raise ValueError(f"{raw_path}: duplicate ids in the raw part; ids must be unique per part")
    rows = np.empty(len(ids), dtype=np.int64)
    for i, doc_id in enumerate(ids):
        row = raw_index.get(doc_id)
        if row is None:
            raise ValueError(f"{filtered_path}: id {doc_id!r} is not in the raw part {raw_path}")
        rows[i] = row
    return ids, rows


def _priorities(path, n: int, column: str | None) -> np.ndarray:
    if column is None:
        return np.zeros(n, dtype=np.float32)
    values = pq.read_table(path, columns=[column]).column(column).cast(pa.float32())
    if values.null_count:
        raise ValueError(f"{path}: column {column!r} has {values.null_count} null values")
    return values.to_numpy()


def _verify_runs(keys, exact_band, docs, sig_paths, threshold) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Verified (anchor, member) pairs from records sorted by key.

    In each run of equal keys, every member is checked against the run's first document; members
    that fail form a new run with their own first document (a run is almost always all true
    duplicates, so this rarely loops). Exact-key runs are linked without a check.
    """
    pairs_a, pairs_b = [], []
    checked = false_candidates = 0
    new_run = (keys[1:] != keys[:-1]) | (exact_band[1:] != exact_band[:-1])
    boundaries = np.flatnonzero(np.r_[True, new_run, True])
    lengths = np.diff(boundaries)
    multi = lengths >= 2
    run_start, run_len = boundaries[:-1][multi], lengths[multi]
    if not len(run_start):
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), 0, 0
    member_run = np.repeat(np.arange(len(run_start)), run_len)
    member_pos = np.repeat(run_start, run_len) + (
        np.arange(run_len.sum()) - np.repeat(np.cumsum(run_len) - run_len, run_len)
    )
    members = docs[member_pos]
    exact = exact_band[member_pos]
    while len(members):
        first_of_run = np.r_[True, member_run[1:] != member_run[:-1]]
        anchor = members[first_of_run][np.cumsum(first_of_run) - 1]
        rest = ~first_of_run & (members != anchor)
        ok = np.zeros(len(members), dtype=bool)
        ok[rest & exact] = True
        need = np.flatnonzero(rest & ~exact)
        if len(need):
            checked += len(need)
            ok[need] = _similar(sig_paths, anchor[need], members[need], threshold)
            false_candidates += int((~ok[need]).sum())
        pairs_a.append(anchor[ok])
        pairs_b.append(members[ok])
        failed = rest & ~ok
        # Failed members regroup per run; a run of one has nothing left to match.
        members, member_run, exact = members[failed], member_run[failed], exact[failed]
        if len(members):
            counts = np.bincount(member_run)
            keep = counts[member_run] >= 2
            members, member_run, exact = members[keep], member_run[keep], exact[keep]
    return np.concatenate(pairs_a), np.concatenate(pairs_b), checked, false_candidates


def dedup_source(
    filtered_paths: Sequence[str | os.PathLike],
    raw_paths: Sequence[str | os.PathLike],
    signature_paths: Sequence[str | os.PathLike],
    exact_paths: Sequence[str | os.PathLike],
    out_paths: Sequence[str | os.PathLike],
    num_perm: int,
    threshold: float,
    *,
    partition_mb: float = 256.0,
    priority_column: str | None = "priority",
    tokens_column: str | None = "n_tokens",
    work_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Find exact and near duplicates across all filtered parts of one source; write decisions.

    Each list is in part order, element k of every list being part k. ``out_paths[k]`` gets one
    row per row of filtered part k (``DEDUP_SCHEMA``). ``priority_column`` of the filtered parts
    decides which member of a cluster stays (None: the earliest). Returns stats: docs and tokens
    in, kept and dropped per reason, clusters, the LSH shape and partition counts.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"jaccard threshold must be in (0, 1], got {threshold}")
    if partition_mb <= 0:
        raise ValueError(f"config key curation.dedup.partition_mb must be > 0, got {partition_mb}")
    _check_aligned(filtered_paths, raw_paths, signature_paths, exact_paths, out_paths)
    start = time.monotonic()
    bands, rows_per_band = lsh_bands(threshold, num_perm)
    n_docs = sum(pq.ParquetFile(p).metadata.num_rows for p in filtered_paths)
    n_records = n_docs * (bands + 1)
    n_partitions = max(1, math.ceil(n_records * _RECORD.itemsize / (partition_mb * 2**20)))
    log.info(
        "dedup: %d documents in %d parts; LSH %d bands x %d rows (threshold %.2f, num_perm %d); "
        "%d records in %d partitions of <= %.1f MiB",
        n_docs,
        len(filtered_paths),
        bands,
        rows_per_band,
        threshold,
        num_perm,
        n_records,
        n_partitions,
        partition_mb,
    )

    raw_sizes = [pq.ParquetFile(p).metadata.num_rows for p in raw_paths]
    tmp_root = Path(tempfile.mkdtemp(prefix="dedup-", dir=work_dir))
    try:
        # 1. bucket: band and exact-key records of every filtered document, partitioned by key.
        # Each part's signature file is mapped only while its records are written: pages a
        # mapping has touched count as resident, so keeping every part mapped would make memory
        # grow with the corpus.
        handles = [open(tmp_root / f"partition-{i}.bin", "wb") for i in range(n_partitions)]
        try:
            for k, (fpath, rpath, spath, epath) in enumerate(
                zip(filtered_paths, raw_paths, signature_paths, exact_paths)
            ):
                part_sig = load_signatures(spath, raw_sizes[k], num_perm)
                part_exact = _load_exact(epath, raw_sizes[k])
                _, rows = _raw_rows(fpath, rpath)
                if not len(rows):
                    continue
                codes = _doc_codes(k, rows)
                priority = _priorities(fpath, len(rows), priority_column)
                order = np.argsort(rows)
                sig_rows = np.empty((len(rows), num_perm), dtype=np.uint64)
                sig_rows[order] = part_sig[rows[order]]
                keys = np.concatenate(
                    [band_keys(sig_rows, bands, rows_per_band), part_exact[rows][:, None]], axis=1
                )
                del part_sig, part_exact, sig_rows
                records = np.empty(keys.size, dtype=_RECORD)
                records["key"] = keys.reshape(-1)
                records["doc"] = np.repeat(codes, bands + 1)
                records["priority"] = np.repeat(priority, bands + 1)
                records["exact"] = np.tile(np.arange(bands + 1) == bands, len(codes))
                target = (records["key"] % np.uint64(n_partitions)).astype(np.int64)
                for p in np.unique(target):
                    records[target == p].tofile(handles[p])
        finally:
            for h in handles:
                h.close()

        # 2. match: one partition at a time; candidates are verified on their signatures, read in
        # bounded chunks (_similar).
        pairs = _PairSet()
        checked = false_candidates = 0
        largest = 0
        for p in range(n_partitions):
            records = np.fromfile(tmp_root / f"partition-{p}.bin", dtype=_RECORD)
            largest = max(largest, len(records))
            if len(records) < 2:
                continue
            # Sorting by (key, exact) keeps an exact-text key from ever sharing a run with a band key.
            records = records[np.lexsort((records["exact"], records["key"]))]
            docs = records["doc"]
            a, b, c, f = _verify_runs(records["key"], records["exact"], docs, signature_paths, threshold)
            checked += c
            false_candidates += f
            if len(a):
                involved = np.isin(docs, np.concatenate([a, b]))
                pairs.add(a, b, docs[involved], records["priority"][involved])
            os.unlink(tmp_root / f"partition-{p}.bin")

        # 3. cluster: connected components of the verified pairs.
        dropped_docs, dropped_reason, dropped_cluster, n_clusters = _clusters(pairs, exact_paths)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    # 4. decisions per filtered part, in the filtered part's row order.
    order = np.argsort(dropped_docs)
    dropped_docs, dropped_reason, dropped_cluster = (
        dropped_docs[order],
        dropped_reason[order],
        dropped_cluster[order],
    )
    stats: dict[str, Any] = {
        "step": "dedup",
        "docs_in": 0,
        "docs_out": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "dropped": {r: 0 for r in DROP_REASONS},
        "dropped_tokens": {r: 0 for r in DROP_REASONS},
    }
    for k, (fpath, rpath, opath) in enumerate(zip(filtered_paths, raw_paths, out_paths)):
        ids, rows = _raw_rows(fpath, rpath)
        codes = _doc_codes(k, rows)
        tokens = (
            pq.read_table(fpath, columns=[tokens_column])
            .column(tokens_column)
            .to_numpy(zero_copy_only=False)
            .astype(np.int64)
            if tokens_column
            else np.zeros(len(ids), np.int64)
        )
        at = np.searchsorted(dropped_docs, codes)
        at_c = np.minimum(at, max(len(dropped_docs) - 1, 0))
        is_dropped = (
            (at < len(dropped_docs)) & (dropped_docs[at_c] == codes)
            if len(dropped_docs)
            else np.zeros(len(codes), bool)
        )
        reasons = [DROP_REASONS[int(dropped_reason[i])] if d else None for d, i in zip(is_dropped, at_c)]
        cluster = [int(dropped_cluster[i]) if d else None for d, i in zip(is_dropped, at_c)]
        with ParquetWriter(opath, DEDUP_SCHEMA) as writer:
            writer.write_table(
                pa.table(
                    {
                        "id": pa.array(ids, pa.string()),
                        "keep": pa.array(~is_dropped),
                        "reason": pa.array(reasons, pa.string()),
                        "cluster": pa.array(cluster, pa.int64()),
                    },
                    schema=DEDUP_SCHEMA,
                )
            )
        stats["docs_in"] += len(ids)
        stats["docs_out"] += int((~is_dropped).sum())
        stats["tokens_in"] += int(tokens.sum())
        stats["tokens_out"] += int(tokens[~is_dropped].sum())
        for r_i, reason in enumerate(DROP_REASONS):
            hit = (
                is_dropped & (dropped_reason[at_c] == r_i)
                if len(dropped_docs)
                else np.zeros(len(codes), bool)
            )
            stats["dropped"][reason] += int(hit.sum())
            stats["dropped_tokens"][reason] += int(tokens[hit].sum())
    seconds = time.monotonic() - start
    stats.update(
        unaccounted=stats["docs_in"] - stats["docs_out"] - sum(stats["dropped"].values()),
        clusters=n_clusters,
        num_perm=num_perm,
        threshold=threshold,
        bands=bands,
        rows_per_band=rows_per_band,
        partitions=n_partitions,
        partition_mb=partition_mb,
        largest_partition_records=largest,
        lsh_candidates_checked=checked,
        lsh_false_candidates=false_candidates,
        seconds=round(seconds, 3),
        docs_per_second=round(stats["docs_in"] / max(seconds, 1e-9), 1),
    )
    log.info(
        "dedup: %d in, %d kept, dropped %s, %d clusters, %d candidate checks (%d false), %.1fs",
        stats["docs_in"],
        stats["docs_out"],
        stats["dropped"],
        n_clusters,
        checked,
        false_candidates,
        seconds,
    )
    return stats


class _PairSet:
    """The verified duplicate pairs and their documents' priorities, deduplicated as they come.

    A true duplicate pair meets in most bands, so most partitions find it again; compacting
    whenever the pending additions outgrow what is kept holds memory to the distinct pairs.
    """

    def __init__(self):
        self.a = self.b = self.docs = np.zeros(0, np.uint64)
        self.priority = np.zeros(0, np.float32)
        self._pending: list[tuple] = []
        self._pending_rows = 0

    def add(self, a, b, docs, priority) -> None:
        self._pending.append((a, b, docs, priority))
        self._pending_rows += len(a) + len(docs)
        if self._pending_rows > max(1_000_000, len(self.a) + len(self.docs)):
            self.compact()

    def compact(self) -> None:
        if not self._pending:
            return
        a, b, docs, priority = (
            np.concatenate([kept, *parts])
            for kept, parts in zip((self.a, self.b, self.docs, self.priority), zip(*self._pending))
        )
        pair = np.unique(np.stack([a, b], axis=1), axis=0)
        self.a, self.b = pair[:, 0], pair[:, 1]
        self.docs, first = np.unique(docs, return_index=True)
        self.priority = priority[first]
        self._pending, self._pending_rows = [], 0


def _clusters(pairs: _PairSet, exact_paths) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Dropped documents (codes), their reason index and their cluster's kept code; cluster count."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs.compact()
    if not len(pairs.a):
        return np.zeros(0, np.uint64), np.zeros(0, np.int8), np.zeros(0, np.int64), 0
    a, b, nodes, priority = pairs.a, pairs.b, pairs.docs, pairs.priority
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    graph = coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)), shape=(len(nodes), len(nodes)))
    n_components, label = connected_components(graph, directed=False)
    # Best member per component: highest priority, then the lowest code (earliest part and row).
    order = np.lexsort((nodes, -priority, label))
    is_best = np.r_[True, label[order][1:] != label[order][:-1]]
    best_of = np.empty(n_components, dtype=np.int64)
    best_of[label[order][is_best]] = order[is_best]
    kept = best_of[label]
    dropped = np.flatnonzero(kept != np.arange(len(nodes)))
    node_exact = _gather(exact_paths, nodes)
    reason = np.where(node_exact[dropped] == node_exact[kept[dropped]], 0, 1).astype(np.int8)
    return nodes[dropped], reason, nodes[kept[dropped]].astype(np.int64), int(n_components)
