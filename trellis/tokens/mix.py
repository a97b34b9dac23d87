"""Build one arm's pretraining mix: exact token budgets per component, EOS packing, external shuffle.

Steps, all deterministic in ``seed`` (same config and token parts -> same shard bytes anywhere):

1. **Plan.** Each component (one source's token parts and a token budget) reads only the
   ``n_tokens`` column of its parts (the document index) to learn what it has, ``available``
   tokens. Components that read the same source never share a document: each one skips, by id,
   the documents the components before it (in config order) took, so FineWeb-Edu "random" never
   repeats a document of FineWeb-Edu "curated" (ids are the same in raw and curated parts; the
   skipped ones are reported as ``excluded_documents``). Then:

   - ``budget < available``: a seeded sample of exactly ``budget`` tokens (below);
   - ``budget >= available`` and ``upsample: false``: everything once; the manifest reports the
     ``shortfall`` (``budget - available``);
   - ``upsample: true``: ``budget // available`` whole epochs (every document that many times)
     plus a seeded sample of the remaining ``budget % available`` tokens: the budget is met
     exactly.

   **Sampling exactly N tokens in bounded memory.** N is split over the parts in proportion to
   their tokens (largest remainder). Part by part, in a seeded permutation of its documents,
   documents are taken while the running total is below the cumulative target of the parts so
   far; the one document that crosses N is cut to fit (the component's only truncated
   document). Every part can meet its target (a part's share never exceeds its tokens), so the
   total is always exactly N. Memory: one part's ``n_tokens`` column while planning; the plan
   keeps only the sampled rows (and the ids' 8-byte hashes of a source read by several
   components), never tokens.

2. **Stream.** A component emits its documents part by part, visiting each part's row groups in a
   seeded order and each row group's documents in a seeded order (a fresh order per epoch, so
   upsampled documents do not meet the same neighbours again). Memory: one row group per
   component.
3. **Interleave.** Components' streams are merged by drawing, for each next document, a component
   with probability proportional to its remaining planned tokens, so every source is spread over
   the whole stream instead of arriving in blocks.
4. **Pack.** Each document's tokens are followed by one EOS; the stream is cut into fixed
   ``context_length`` sequences, a document that does not fit carrying over into the next. The
   final partial sequence is dropped (``dropped_tail_tokens``).
5. **Shuffle, externally, in two passes over disk.** Pass 1 fills a buffer of
   ``buffer_sequences`` sequences (``mix.shuffle_buffer_mb``), permutes it and writes it as a run
   file, until the stream ends. Pass 2 writes the shards one at a time: how many of a shard's
   ``sequences_per_shard`` sequences come from each run is drawn from the multivariate
   hypergeometric distribution over the runs' remaining counts, those sequences are read in order
   from each run and permuted. That is exactly a uniform random interleaving of the
   independently permuted runs, i.e. a uniformly random permutation of the whole stream, with
   memory bounded by the buffer (pass 1) and one shard (pass 2), never by the corpus.

Token accounting (the decision the manifest's numbers rest on): a component's ``budget`` and
``realized_tokens`` count **document tokens only, EOS excluded**. EOS separators are packing
overhead, counted per component as ``eos_tokens`` (one per document emitted, truncated and
repeated ones included); ``stream_tokens = realized_tokens + eos_tokens``. Hence
``realized_tokens == budget`` whenever ``shortfall == 0``, and over the whole mix
``sum(stream_tokens) == total_sequences * context_length + dropped_tail_tokens``.

**Resume.** Work state lives in ``<out_dir>/.mix-work/`` (not an output), keyed by a fingerprint
of every argument and of the token parts (path, size, mtime): run files, ``pass1.json`` once pass
1 is complete, and a journal line per finished shard. A killed job, rerun with the same inputs,
skips a completed pass 1 and every journaled shard whose bytes still hash to the journal's
sha256, and writes the rest; the random draws are replayed, so the shards are byte-identical to
an uninterrupted run. Other inputs discard the work state and every shard not in it.

The output directory receives ``shard-00000.tkds``, ..., ``mix.csv`` (the mix table) and
``manifest.json`` (written last, atomically: its presence means the shard set is complete).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from trellis.core.io import atomic_path, write_json
from trellis.tokens.tkds import TOKEN_DTYPE, VERSION, sha256_file, write_shard

log = logging.getLogger(__name__)

SHARD_NAME = "shard-{:05d}.tkds"
MANIFEST = "manifest.json"
MIX_TABLE = "mix.csv"
WORK_DIR = ".mix-work"
# Bumped whenever a change to this module changes which bytes a given config produces, so a
# resumed job never mixes work state of two algorithms.
ALGORITHM = "trellis-mix/2"
# Sequences per write when pass 1 writes a permuted buffer out (bounds the gather's copy).
WRITE_CHUNK = 1024
MIX_TABLE_COLUMNS = [
    "component", "source", "stage", "upsample", "budget", "available_tokens", "realized_tokens",
    "share", "epochs", "documents", "truncated_documents", "shortfall",
]


def _rng(seed: int, *tags: int) -> np.random.Generator:
    # Independent, reproducible streams per purpose: changing one component or the buffer size
    # does not perturb the other streams' draws.
    return np.random.default_rng([int(seed), *tags])


def _name_tag(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


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
        dtype=np.uint64, count=len(ids),
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
            tag = _name_tag(self.name)
            targets = np.cumsum(allocate(self.sample_tokens, self.part_tokens))
            running = 0
            for k, path in enumerate(self.token_paths):
                lengths = self._lengths(k, path)
                take, running = select_prefix(lengths, running, int(targets[k]), self.sample_tokens,
                                              _rng(seed, 5, tag, k))
                rows = np.flatnonzero(take)
                self.sample[k] = (rows, take[rows])
        if self.shortfall:
            why = "its source has no documents left for it" if available == 0 else "upsample is off for it"
            log.warning("component %s: %d tokens available for a budget of %d (%s): shortfall %d",
                        self.name, available, self.budget, why, self.shortfall)

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


def _row_group_documents(
    pf: pq.ParquetFile, path: Path, group: int, with_ids: bool, vocab_size: int
) -> tuple[list[str] | None, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, token values, start offsets, lengths) of one row group, checked against the index."""
    columns = ["id", "tokens", "n_tokens"] if with_ids else ["tokens", "n_tokens"]
    table = pf.read_row_group(group, columns=columns)
    col = table.column("tokens").combine_chunks()
    if col.null_count:
        raise ValueError(f"{path}: row group {group}: {col.null_count} rows have null token lists")
    lengths = col.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    if not np.array_equal(lengths, table.column("n_tokens").to_numpy().astype(np.int64)):
        raise ValueError(f"{path}: row group {group}: n_tokens disagrees with the token lists' lengths")
    values = col.flatten().to_numpy(zero_copy_only=False)
    if values.size and int(values.max()) >= vocab_size:
        raise ValueError(
            f"{path}: token {int(values.max())} >= vocab_size {vocab_size}: tokenized with another tokenizer?"
        )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    ids = table.column("id").to_pylist() if with_ids else None
    return ids, values, starts, lengths


def emit_part(
    comp: Component, path: Path, take: np.ndarray | None, rng: np.random.Generator, vocab_size: int
) -> Iterator[np.ndarray]:
    """Documents of one part (``take`` tokens of each, or all), row group by row group, seeded order."""
    pf = pq.ParquetFile(path)
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    firsts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    for g in rng.permutation(pf.num_row_groups):
        lo, n = int(firsts[g]), sizes[g]
        order = rng.permutation(n)  # drawn for every group so skipping one changes nothing else
        if take is not None and not take[lo : lo + n].any():
            continue  # nothing selected here: the row group is not even read
        with_ids = comp.selected is not None
        ids, values, starts, lengths = _row_group_documents(pf, path, int(g), with_ids, vocab_size)
        for i in order:
            want = int(lengths[i]) if take is None else int(take[lo + i])
            if want == 0:
                continue  # not selected, or excluded (tokenize writes no empty documents)
            comp.truncated_documents += want < lengths[i]
            comp.realized_tokens += want
            comp.documents += 1
            if comp.selected is not None:
                comp.selected.append((ids[i], want))
            yield values[starts[i] : starts[i] + want]


def component_stream(comp: Component, seed: int, vocab_size: int) -> Iterator[np.ndarray]:
    """The component's documents: its whole epochs, then its exact sample, in seeded orders."""
    tag = _name_tag(comp.name)
    for epoch in range(comp.epochs + (1 if comp.sample_tokens else 0)):
        for k, path in enumerate(comp.token_paths):
            take = comp.part_take(k, epoch)
            if take is None or take.any():
                yield from emit_part(comp, path, take, _rng(seed, 1, tag, epoch, k), vocab_size)


def interleave(
    comps: list[Component], streams: list[Iterator[np.ndarray]], rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Merge the component streams, drawing each next document ∝ the components' remaining tokens."""
    while True:
        weights = np.array([c.remaining for c in comps], dtype=np.float64)
        total = weights.sum()
        if total <= 0:
            return
        k = int(np.searchsorted(np.cumsum(weights), rng.random() * total, side="right"))
        k = min(k, len(comps) - 1)
        piece = next(streams[k], None)
        if piece is None:  # the plan promised more than the parts hold: they changed underneath
            raise RuntimeError(
                f"component {comps[k].name}: stream ended {comps[k].remaining} tokens before its plan"
            )
        yield piece


class Packer:
    """Concatenate documents with EOS after each and cut the stream into full sequences."""

    def __init__(self, context_length: int, eos_id: int):
        self.ctx = context_length
        self.eos = eos_id
        self.buf = np.empty(context_length, dtype=np.uint16)
        self.fill = 0

    def add(self, tokens: np.ndarray) -> Iterator[np.ndarray]:
        """Append one document (+EOS); yield every sequence it completes (fresh arrays)."""
        doc = np.empty(len(tokens) + 1, dtype=np.uint16)
        doc[:-1] = tokens
        doc[-1] = self.eos
        pos = 0
        while pos < len(doc):
            take = min(self.ctx - self.fill, len(doc) - pos)
            self.buf[self.fill : self.fill + take] = doc[pos : pos + take]
            self.fill += take
            pos += take
            if self.fill == self.ctx:
                yield self.buf.copy()
                self.fill = 0

    @property
    def tail(self) -> np.ndarray:
        """The incomplete last sequence (dropped: a TKDS sequence is always full length)."""
        return self.buf[: self.fill].copy()


@dataclass
class MixStream:
    """The pre-shuffle sequence stream of a mix; iterate it once, then read the stats.

    ``vocab_size``: every token read must be below it (the tokenizer's vocabulary).
    ``record_documents`` keeps (id, tokens taken) per component, for tests and audits.
    """

    components: list[dict]
    context_length: int
    eos_id: int
    vocab_size: int
    seed: int
    record_documents: bool = False
    comps: list[Component] = field(init=False)
    packer: Packer = field(init=False)

    def __post_init__(self):
        if not 0 <= self.eos_id < self.vocab_size:
            raise ValueError(f"eos_id {self.eos_id} is outside the vocabulary [0, {self.vocab_size})")
        if self.vocab_size > 65536:
            raise ValueError(f"vocab_size {self.vocab_size} does not fit TKDS uint16 token ids")
        names = [c.get("name") for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"mix component names must be unique: {names}")
        self.comps = []
        for c in self.components:
            missing = [k for k in ("name", "source", "token_paths", "budget") if k not in c]
            if missing:
                raise KeyError(f"mix component {c.get('name', c)!r} lacks {missing}")
            if int(c["budget"]) < 0:
                raise ValueError(f"mix component {c['name']}: negative budget {c['budget']}")
            self.comps.append(Component(
                name=c["name"], source=c["source"], token_paths=[Path(p) for p in c["token_paths"]],
                budget=int(c["budget"]), upsample=bool(c.get("upsample", False)), stage=c.get("stage"),
                selected=[] if self.record_documents else None,
            ))
        # Components of one source never share a document: each skips what the ones before it
        # (in config order) took, by id (ids are the same in raw and curated parts).
        taken: dict[str, np.ndarray] = {}
        for i, comp in enumerate(self.comps):
            comp.plan(self.seed, taken.get(comp.source))
            if any(later.source == comp.source for later in self.comps[i + 1 :]):
                before = taken.get(comp.source, np.zeros(0, np.uint64))
                taken[comp.source] = np.union1d(before, comp.selected_hashes())
        self.packer = Packer(self.context_length, self.eos_id)

    def __iter__(self) -> Iterator[np.ndarray]:
        streams = [component_stream(c, self.seed, self.vocab_size) for c in self.comps]
        for piece in interleave(self.comps, streams, _rng(self.seed, 2)):
            yield from self.packer.add(piece)

    @property
    def dropped_tail_tokens(self) -> int:
        return self.packer.fill


# ---- external shuffle ------------------------------------------------------------------------


def buffer_sequences(shuffle_buffer_mb: float, context_length: int) -> int:
    """How many sequences of ``context_length`` uint16 tokens fit the shuffle buffer (at least 1)."""
    return max(1, int(shuffle_buffer_mb * 2**20) // (context_length * TOKEN_DTYPE.itemsize))


def _run_path(work: Path, r: int) -> Path:
    return work / f"run-{r:05d}.bin"


def write_runs(
    sequences: Iterator[np.ndarray], work: Path, context_length: int, capacity: int, rng: np.random.Generator
) -> list[int]:
    """Pass 1: fill a ``capacity``-sequence buffer, write it permuted as a run file; repeat."""
    buf = np.empty((capacity, context_length), dtype=np.uint16)
    counts: list[int] = []

    def flush(n: int) -> None:
        perm = rng.permutation(n)
        with atomic_path(_run_path(work, len(counts))) as tmp, open(tmp, "wb") as f:
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
                    _run_path(work, int(r)), dtype=np.uint16, count=k * context_length,
                    offset=int(position[r]) * row_bytes,
                ).reshape(k, context_length)
                fill += k
            write(index, rows[perm])
        remaining -= take
        position += take


# ---- resumable work state --------------------------------------------------------------------


class WorkState:
    """``<out_dir>/.mix-work``: fingerprint, run files, pass-1 record and the shard journal."""

    def __init__(self, out_dir: Path, fingerprint: dict[str, Any]):
        self.dir = out_dir / WORK_DIR
        self.fingerprint = fingerprint
        state = self.dir / "state.json"
        if not (state.is_file() and _read_json_or_none(state) == fingerprint):
            if self.dir.exists():
                log.info("mix work state in %s is for other inputs; starting over", self.dir)
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            write_json(state, fingerprint)
        self.journal_path = self.dir / "shards.jsonl"
        self.done: dict[int, dict[str, Any]] = {}
        if self.journal_path.exists():
            for line in self.journal_path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by a kill: that shard is simply redone
                self.done[int(entry["index"])] = entry

    def pass1(self) -> dict[str, Any] | None:
        record = _read_json_or_none(self.dir / "pass1.json")
        if record is None:
            return None
        row_bytes = self.fingerprint["context_length"] * TOKEN_DTYPE.itemsize
        for r, n in enumerate(record["run_counts"]):
            path = _run_path(self.dir, r)
            if not path.is_file() or path.stat().st_size != n * row_bytes:
                return None
        return record

    def save_pass1(self, record: dict[str, Any]) -> None:
        write_json(self.dir / "pass1.json", record)

    def clear_runs(self) -> None:
        for path in self.dir.glob("run-*.bin"):
            path.unlink()
        (self.dir / "pass1.json").unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)
        self.done = {}

    def record_shard(self, index: int, entry: dict[str, Any]) -> None:
        with open(self.journal_path, "a") as f:
            f.write(json.dumps({"index": index, **entry}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[index] = {"index": index, **entry}

    def reusable(self, out_dir: Path, index: int) -> dict[str, Any] | None:
        entry = self.done.get(index)
        if entry is None:
            return None
        path = out_dir / entry["file"]
        if path.is_file() and sha256_file(path) == entry["sha256"]:
            return {k: entry[k] for k in ("file", "sequences", "sha256")}
        return None

    def remove(self) -> None:
        shutil.rmtree(self.dir)


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _fingerprint(components: list[dict], **settings: Any) -> dict[str, Any]:
    """Everything the shard bytes depend on, plus each token part's size and mtime."""
    comps = []
    for c in components:
        files = []
        for p in c["token_paths"]:
            st = Path(p).stat()
            files.append([str(p), st.st_size, st.st_mtime_ns])
        comps.append({"name": c["name"], "source": c["source"], "budget": int(c["budget"]),
                      "upsample": bool(c.get("upsample", False)), "files": files})
    return {"algorithm": ALGORITHM, "components": comps, **settings}


# ---- the mix ---------------------------------------------------------------------------------


def write_mix_table(path: Path, components: dict[str, dict[str, Any]]) -> None:
    """The mix table (one row per component) as CSV, for the report."""
    realized = sum(c["realized_tokens"] for c in components.values()) or 1
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MIX_TABLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for name, c in components.items():
            writer.writerow({"component": name, "stage": c.get("stage", ""),
                             "share": f"{c['realized_tokens'] / realized:.6f}",
                             **{k: c[k] for k in MIX_TABLE_COLUMNS if k in c}})


def build_mix(
    components: list[dict],
    out_dir: str | os.PathLike,
    context_length: int,
    eos_id: int,
    vocab_size: int,
    sequences_per_shard: int,
    shuffle_buffer_mb: float,
    seed: int,
    tokenizer_vocab_size: int | None = None,
) -> dict[str, Any]:
    """Select, pack and shuffle the components into TKDS shards; write and return the manifest.

    ``components``: dicts {name, source, token_paths: list of token parts, budget: tokens,
    upsample: bool (default false), stage (reported)}. ``vocab_size`` goes into each shard header
    (the padded vocabulary the model embeds); ``tokenizer_vocab_size`` (default: the same) is what
    every token read is checked against.
    """
    tokenizer_vocab_size = vocab_size if tokenizer_vocab_size is None else int(tokenizer_vocab_size)
    if sequences_per_shard < 1 or shuffle_buffer_mb <= 0:
        raise ValueError(f"sequences_per_shard ({sequences_per_shard}) must be >= 1 and shuffle_buffer_mb "
                         f"({shuffle_buffer_mb}) > 0")
    if tokenizer_vocab_size > vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer_vocab_size} tokens, more than the shards' vocab_size {vocab_size}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    capacity = buffer_sequences(shuffle_buffer_mb, context_length)
    settings = {"context_length": context_length, "eos_id": eos_id, "vocab_size": vocab_size,
                "tokenizer_vocab_size": tokenizer_vocab_size, "sequences_per_shard": sequences_per_shard,
                "buffer_sequences": capacity, "seed": seed}
    work = WorkState(out_dir, _fingerprint(components, **settings))
    record = work.pass1()
    if record is None:
        work.clear_runs()
    # Snakemake removed the old manifest; shards that no journal vouches for are from another mix.
    journaled = {e["file"] for e in work.done.values()}
    for stale in [out_dir / MANIFEST, out_dir / MIX_TABLE, *out_dir.glob("shard-*.tkds")]:
        if stale.exists() and stale.name not in journaled:
            stale.unlink()

    if record is None:
        stream = MixStream(components, context_length, eos_id, tokenizer_vocab_size, seed)
        counts = write_runs(iter(stream), work.dir, context_length, capacity, _rng(seed, 3))
        record = {"run_counts": counts, "dropped_tail_tokens": stream.dropped_tail_tokens,
                  "components": {c.name: c.report() for c in stream.comps}}
        if not counts:
            stream_tokens = sum(c["stream_tokens"] for c in record["components"].values())
            raise ValueError(f"the mix's {stream_tokens} tokens (EOS included) do not fill one sequence of "
                             f"context_length {context_length}: raise the mix.components budgets")
        work.save_pass1(record)
        log.info("pass 1: %d sequences in %d runs of at most %d (%.1fs)", sum(counts), len(counts),
                 capacity, time.monotonic() - start)
    else:
        log.info("pass 1 already complete (%d runs): resuming the merge", len(record["run_counts"]))

    shards: list[dict[str, Any]] = []
    reused: list[int] = []

    def write(index: int, rows: np.ndarray) -> None:
        name = SHARD_NAME.format(index)
        digest = write_shard(out_dir / name, rows, vocab_size)
        entry = {"file": name, "sequences": len(rows), "sha256": digest}
        work.record_shard(index, entry)
        shards.append(entry)
        if len(shards) % 100 == 0:
            log.info("pass 2: %d shards written", len(shards))

    def have(index: int) -> bool:
        entry = work.reusable(out_dir, index)
        if entry is not None:
            shards.append(entry)
            reused.append(index)
        return entry is not None

    runs = record["run_counts"]
    merge_runs(work.dir, runs, context_length, sequences_per_shard, _rng(seed, 4), write, have)

    total_sequences = sum(s["sequences"] for s in shards)
    manifest = {
        "format": "TKDS",
        "version": VERSION,
        "context_length": context_length,
        "vocab_size": vocab_size,
        "tokenizer_vocab_size": tokenizer_vocab_size,
        "eos_id": eos_id,
        "seed": seed,
        "token_accounting": "budget and realized_tokens count document tokens, EOS excluded; "
        "stream_tokens = realized_tokens + eos_tokens",
        "total_sequences": total_sequences,
        "total_tokens": total_sequences * context_length,
        "dropped_tail_tokens": record["dropped_tail_tokens"],
        "sequences_per_shard": sequences_per_shard,
        "shuffle": {"method": "external two-pass: permuted runs, hypergeometric merge",
                    "buffer_sequences": capacity, "runs": len(record["run_counts"])},
        "components": record["components"],
        "shards": shards,
    }
    write_mix_table(out_dir / MIX_TABLE, manifest["components"])
    write_json(out_dir / MANIFEST, manifest)
    work.remove()
    log.info("mix: %d sequences (%d tokens) in %d shards (%d kept from a killed run), %d tail tokens "
             "dropped (%.1fs)", total_sequences, total_sequences * context_length, len(shards), len(reused),
             record["dropped_tail_tokens"], time.monotonic() - start)
    return manifest
