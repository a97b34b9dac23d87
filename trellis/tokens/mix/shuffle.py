"""The external two-pass shuffle: permuted runs on disk, then a hypergeometric merge into shards.

Pass 1 (``write_runs``) permutes the stream a buffer at a time into run files; pass 2
(``merge_runs``) draws each shard's sequences from the runs. Together they are a uniformly random
permutation of the whole stream in memory bounded by the buffer and one shard. Both work on a
plain directory: what keeps the runs across a killed job is ``state``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from trellis.core.io import atomic_path
from trellis.tokens.tkds import TOKEN_DTYPE

log = logging.getLogger(__name__)

# Sequences per write when pass 1 writes a permuted buffer out (bounds the gather's copy).
WRITE_CHUNK = 1024


def buffer_sequences(shuffle_buffer_mb: float, context_length: int) -> int:
    """How many sequences of ``context_length`` uint16 tokens fit the shuffle buffer (at least 1)."""
    return max(1, int(shuffle_buffer_mb * 2**20) // (context_length * TOKEN_DTYPE.itemsize))


def run_path(work: Path, r: int) -> Path:
    """Run file ``r`` of pass 1 in ``work``."""
    return work / f"run-{r:05d}.bin"


def write_runs(
    sequences: Iterator[np.ndarray], work: Path, context_length: int, capacity: int, rng: np.random.Generator
) -> list[int]:
    """Pass 1: fill a ``capacity``-sequence buffer, write it permuted as a run file; repeat."""
    buf = np.empty((capacity, context_length), dtype=np.uint16)
    counts: list[int] = []

    def flush(n: int) -> None:
        perm = rng.permutation(n)
        with atomic_path(run_path(work, len(counts))) as tmp, open(tmp, "wb") as f:
            f.writelines(buf[perm[i : i + WRITE_CHUNK]].tobytes() for i in range(0, n, WRITE_CHUNK))
        counts.append(n)
        log.info("pass 1: run %d written (%d sequences)", len(counts) - 1, n)

    n = 0
    for seq in sequences:
        buf[n] = seq
        n += 1
        if n == capacity:
            flush(n)
            n = 0
    if n:
        flush(n)
    return counts


def merge_runs(
    work: Path,
    counts: list[int],
    context_length: int,
    sequences_per_shard: int,
    rng: np.random.Generator,
    write: Callable[[int, np.ndarray], None],
    have: Callable[[int], bool] = lambda index: False,
) -> None:
    """Pass 2: shard by shard, draw how many sequences each run gives, read them, permute, write.

    ``write(index, rows)`` writes shard ``index``; a shard for which ``have(index)`` is true (a
    resumed job already wrote it) is not read or written, but its draws are still made, so the
    shards after it come out exactly as in an uninterrupted run.
    """
    remaining = np.array(counts, dtype=np.int64)
    position = np.zeros(len(counts), dtype=np.int64)
    row_bytes = context_length * TOKEN_DTYPE.itemsize
    total = int(remaining.sum())
    for index, start in enumerate(range(0, total, sequences_per_shard)):
        n = min(sequences_per_shard, total - start)
        take = rng.multivariate_hypergeometric(remaining, n, method="marginals")
        perm = rng.permutation(n)
        if not have(index):
            rows = np.empty((n, context_length), dtype=np.uint16)
            fill = 0
            for r in np.flatnonzero(take):
                k = int(take[r])
                rows[fill : fill + k] = np.fromfile(
                    run_path(work, int(r)),
                    dtype=np.uint16,
                    count=k * context_length,
                    offset=int(position[r]) * row_bytes,
                ).reshape(k, context_length)
                fill += k
            write(index, rows[perm])
        remaining -= take
        position += take
