"""Budget planning: what each component's token parts hold and exactly which tokens it takes.

A component reads only the ``n_tokens`` column of its parts (the document index), skips by id
hash what earlier components of its source took, and settles on whole epochs plus an exact,
seeded sample: per document, how many tokens to take (``Component.plan``). The plan keeps only
the sampled rows, never tokens. ``pack`` streams the plan; the manifest reports it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from trellis.tokens.mix.seeds import name_tag, seeded_rng

log = logging.getLogger(__name__)


# ---- token parts -----------------------------------------------------------------------------


def part_lengths(path: str | os.PathLike) -> np.ndarray:
    """The ``n_tokens`` column of a token part (its document index) as int64."""
    col = pq.read_table(path, columns=["n_tokens"]).column("n_tokens")
    if col.null_count:
        raise ValueError(f"{path}: {col.null_count} rows have a null n_tokens")
    lengths = col.to_numpy().astype(np.int64)
    if lengths.size and int(lengths.min()) < 0:
        raise ValueError(f"{path}: negative n_tokens at row {int(np.argmin(lengths))}")
    return lengths


def allocate(amount: int, weights: np.ndarray) -> np.ndarray:
    """Split ``amount`` into integers proportional to ``weights`` (largest remainder, ties by index)."""
    weights = np.asarray(weights, dtype=np.int64)
    total = int(weights.sum())
    if total <= 0:
        raise ValueError("cannot allocate over parts holding no tokens")
    # Exact integer arithmetic (python ints): amount * weight overflows int64 at study scale.
    exact = [amount * int(w) for w in weights]
    shares = np.array([e // total for e in exact], dtype=np.int64)
    remainders = np.array([e % total for e in exact], dtype=object)
    extra = amount - int(shares.sum())
    order = sorted(range(len(weights)), key=lambda k: (-remainders[k], k))
    shares[order[:extra]] += 1
    return shares


def select_prefix(
    lengths: np.ndarray, running: int, target: int, total: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Tokens to take from each document of one part so the running total reaches ``target``.

    Documents are taken in a seeded permutation while ``running < target``; the document that
    crosses ``total`` (the component's whole sample) is cut to fit. Returns (tokens taken per
    document, new running total).
    """
    take = np.zeros(len(lengths), dtype=np.int64)
    perm = rng.permutation(len(lengths))  # drawn even when unused: later parts' draws stay put
    if running >= target:
        return take, running
    cum = running + np.cumsum(lengths[perm])
    j = int(np.searchsorted(cum, target, side="left"))
    if j == len(cum):
        raise RuntimeError(f"part holds {int(lengths.sum())} tokens, cannot reach {target - running} more")
    chosen = perm[: j + 1]
    take[chosen] = lengths[chosen]
    new_running = int(cum[j])
    if new_running > total:
        take[perm[j]] -= new_running - total
        new_running = total
    return take, new_running


# ---- components ------------------------------------------------------------------------------


def id_hashes(ids: list[str]) -> np.ndarray:
    """64-bit hashes of document ids (blake2b: the same on every machine and Python run)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def part_id_hashes(path: str | os.PathLike) -> np.ndarray:
    return id_hashes(pq.read_table(path, columns=["id"]).column("id").to_pylist())


@dataclass
class Component:
    """One mix component: its plan, its streaming state, and what the manifest reports about it.

    The plan is kept compactly: per part, the rows excluded because an earlier component of the
    same source took them, and the sampled rows with the tokens taken from each. Never a part's
    tokens, and never a row count's worth of memory for a part the sample does not touch.
    """

    name: str
    source: str
    token_paths: list[Path]
    budget: int
    upsample: bool = False
    stage: str | None = None  # raw or curated parts, when the caller says (reported as given)
    part_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    part_documents: list[int] = field(default_factory=list)
    excluded_rows: list[np.ndarray] = field(default_factory=list)
    excluded_tokens: int = 0
    sample: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # per part: rows, tokens taken
    epochs: int = 0
    sample_tokens: int = 0
    realized_tokens: int = 0
    documents: int = 0
    truncated_documents: int = 0
    selected: list[tuple[str, int]] | None = None  # (id, tokens taken) in stream order, when recording

    def plan(self, seed: int, taken: np.ndarray | None = None) -> None:
        """Read the parts' document index, drop what ``taken`` (sorted id hashes) holds, and
        decide epochs and the exact sample."""
        n = len(self.token_paths)
        self.part_tokens = np.zeros(n, dtype=np.int64)
        self.part_documents, self.excluded_rows = [], []
        for k, path in enumerate(self.token_paths):
            lengths = self._lengths(k, path, taken)
            self.part_tokens[k] = int(lengths.sum())
            self.part_documents.append(len(lengths))
        available = self.available_tokens
        if available == 0:
            self.epochs, self.sample_tokens = 0, 0
        elif self.upsample:
            self.epochs, self.sample_tokens = divmod(self.budget, available)
        elif self.budget >= available:
            self.epochs, self.sample_tokens = 1, 0
        else:
            self.epochs, self.sample_tokens = 0, self.budget
        self.sample = [(np.zeros(0, np.int64), np.zeros(0, np.int64))] * n
        if self.sample_tokens:
            tag = name_tag(self.name)
            targets = np.cumsum(allocate(self.sample_tokens, self.part_tokens))
            running = 0
            for k, path in enumerate(self.token_paths):
                lengths = self._lengths(k, path)
                take, running = select_prefix(
                    lengths, running, int(targets[k]), self.sample_tokens, seeded_rng(seed, 5, tag, k)
                )
                rows = np.flatnonzero(take)
                self.sample[k] = (rows, take[rows])
        if self.shortfall:
            why = "its source has no documents left for it" if available == 0 else "upsample is off for it"
            log.warning(
                "component %s: %d tokens available for a budget of %d (%s): shortfall %d",
                self.name,
                available,
                self.budget,
                why,
                self.shortfall,
            )

    def _lengths(self, k: int, path: Path, taken: np.ndarray | None = None) -> np.ndarray:
        """Tokens per document of part ``k``, 0 for excluded documents (recorded on first call)."""
        lengths = part_lengths(path)
        if taken is not None:
            rows = np.flatnonzero(np.isin(part_id_hashes(path), taken))
            self.excluded_rows.append(rows)
            self.excluded_tokens += int(lengths[rows].sum())
        elif len(self.excluded_rows) <= k:
            self.excluded_rows.append(np.zeros(0, np.int64))
        lengths[self.excluded_rows[k]] = 0
        return lengths

    def part_take(self, k: int, epoch: int) -> np.ndarray | None:
        """Tokens to take per document of part ``k`` in ``epoch`` (None: all of every document)."""
        if epoch < self.epochs:
            return None if not len(self.excluded_rows[k]) else self._lengths(k, self.token_paths[k])
        rows, takes = self.sample[k]
        if not len(rows):
            return np.zeros(0, np.int64)
        take = np.zeros(self.part_documents[k], dtype=np.int64)
        take[rows] = takes
        return take

    def selected_hashes(self) -> np.ndarray:
        """Id hashes of every document this component takes (for later components of its source)."""
        hashes = []
        for k, path in enumerate(self.token_paths):
            if self.epochs:
                keep = np.ones(self.part_documents[k], dtype=bool)
                keep[self.excluded_rows[k]] = False
                rows = np.flatnonzero(keep)
            else:
                rows = self.sample[k][0]
            if len(rows):
                hashes.append(part_id_hashes(path)[rows])
        return np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)

    @property
    def available_tokens(self) -> int:
        return int(self.part_tokens.sum())

    @property
    def planned_tokens(self) -> int:
        return self.epochs * self.available_tokens + self.sample_tokens

    @property
    def remaining(self) -> int:
        return self.planned_tokens - self.realized_tokens

    @property
    def shortfall(self) -> int:
        return self.budget - self.planned_tokens

    def report(self) -> dict[str, Any]:
        report = {
            "source": self.source,
            "budget": self.budget,
            "upsample": self.upsample,
            "available_tokens": self.available_tokens,
            "available_documents": sum(self.part_documents) - sum(len(r) for r in self.excluded_rows),
            "excluded_documents": sum(len(r) for r in self.excluded_rows),
            "excluded_tokens": self.excluded_tokens,
            "epochs": self.epochs,
            "sampled_tokens": self.sample_tokens,
            "realized_tokens": self.realized_tokens,
            "eos_tokens": self.documents,
            "stream_tokens": self.realized_tokens + self.documents,
            "documents": self.documents,
            "truncated_documents": self.truncated_documents,
            "shortfall": self.shortfall,
            "parts": [str(p) for p in self.token_paths],
        }
        if self.stage is not None:
            report["stage"] = self.stage
        return report
