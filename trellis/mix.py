"""Build one arm's pretraining mix: token budgets per component, EOS packing, external shuffle.

Steps, all deterministic in ``seed``:

1. **Select.** Each component (a source's token parts and a token budget) visits its parts in a
   seeded order and each part's documents in a seeded order, holding one part in memory at a
   time, and takes documents until its budget is met exactly: the last document is truncated to
   fit. A source with fewer tokens than its budget contributes everything it has and the manifest
   records the ``shortfall`` (no upsampling).
2. **Interleave.** Components' document streams are merged by drawing, for each next document, a
   component with probability proportional to its remaining budget, so every source is spread
   over the whole stream instead of arriving in blocks.
3. **Pack.** Each document's tokens are followed by one EOS; the stream is cut into fixed
   ``context_length`` sequences, a document that does not fit carrying over into the next. The
   final partial sequence is dropped (``dropped_tail_tokens``).
4. **Shuffle, externally.** Pass 1 appends each sequence to one of ``shuffle_buckets`` bucket
   files chosen at random; pass 2 loads one bucket at a time, permutes it, and writes TKDS shards
   of ``sequences_per_shard`` sequences (the last may be smaller). Memory: one part per component
   during selection, one bucket during pass 2. Bucket files live in a temporary directory beside
   the output directory and are deleted.

Token accounting (the decision the manifest's numbers rest on): a component's ``budget`` and
``realized_tokens`` count **document tokens only, EOS excluded**. EOS separators are packing
overhead, counted per component as ``eos_tokens`` (one per document taken, truncated ones
included); ``stream_tokens = realized_tokens + eos_tokens``. Hence realized_tokens == budget
whenever shortfall == 0, and over the whole mix
``sum(stream_tokens) == total_sequences * context_length + dropped_tail_tokens``.

The output directory receives only ``shard-00000.tkds``, ... and ``manifest.json`` (written
last, atomically: its presence means the shard set is complete).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.parquet as pq

from trellis.io import write_json
from trellis.tkds import VERSION, write_shard

log = logging.getLogger(__name__)

SHARD_NAME = "shard-{:05d}.tkds"
MANIFEST = "manifest.json"
# Sequences assigned to buckets per block in pass 1 (one vectorized draw per block).
BLOCK_SEQUENCES = 1024


def _rng(seed: int, *tags: int) -> np.random.Generator:
    # Independent, reproducible streams per purpose: changing one component or the bucket count
    # does not perturb the other streams' draws.
    return np.random.default_rng([int(seed), *tags])


def _name_tag(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def part_documents(path: str | os.PathLike, rng: np.random.Generator, vocab_size: int) -> Iterator[tuple[str, np.ndarray]]:
    """(id, tokens) of one token part in a seeded order; the part is read once, whole."""
    table = pq.read_table(path, columns=["id", "tokens"])
    col = table.column("tokens").combine_chunks()
    if col.null_count:
        raise ValueError(f"{path}: {col.null_count} rows have null token lists")
    ids = table.column("id").to_pylist()
    lengths = col.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    values = col.flatten().to_numpy(zero_copy_only=False)
    if values.size and int(values.max()) >= vocab_size:
        raise ValueError(f"{path}: token {int(values.max())} >= vocab_size {vocab_size}: tokenized with another tokenizer?")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    for i in rng.permutation(len(ids)):
        yield ids[i], values[starts[i] : starts[i] + lengths[i]]


@dataclass
class Component:
    """One mix component's selection state and what the manifest reports about it."""

    name: str
    source: str
    token_paths: list[Path]
    budget: int
    stage: str | None = None  # raw or curated parts, when the caller says (reported as given)
    realized_tokens: int = 0
    documents: int = 0
    truncated_documents: int = 0
    exhausted: bool = False
    selected: list[tuple[str, int]] | None = None  # (id, tokens taken), when recording

    @property
    def remaining(self) -> int:
        return 0 if self.exhausted else self.budget - self.realized_tokens

    @property
    def shortfall(self) -> int:
        return self.budget - self.realized_tokens

    def report(self) -> dict[str, Any]:
        report = {
            "source": self.source,
            "budget": self.budget,
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


def component_pieces(comp: Component, seed: int, vocab_size: int) -> Iterator[np.ndarray]:
    """The component's documents in seeded order, cut so their total is exactly the budget."""
    rng = _rng(seed, 1, _name_tag(comp.name))
    order = rng.permutation(len(comp.token_paths))
    for k in order:
        for doc_id, tokens in part_documents(comp.token_paths[k], rng, vocab_size):
            need = comp.budget - comp.realized_tokens
            if need <= 0:
                return
            if len(tokens) == 0:
                continue  # tokenize writes no empty documents; nothing to take from one anyway
            piece = tokens[:need]
            comp.truncated_documents += len(piece) < len(tokens)
            comp.realized_tokens += len(piece)
            comp.documents += 1
            if comp.selected is not None:
                comp.selected.append((doc_id, len(piece)))
            yield piece


def interleave(comps: list[Component], streams: list[Iterator[np.ndarray]], rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Merge the component streams, drawing each next document ∝ the components' remaining budgets."""
    while True:
        weights = np.array([c.remaining for c in comps], dtype=np.float64)
        total = weights.sum()
        if total <= 0:
            return
        k = int(np.searchsorted(np.cumsum(weights), rng.random() * total, side="right"))
        k = min(k, len(comps) - 1)
        piece = next(streams[k], None)
        if piece is None:
            comps[k].exhausted = True  # out of documents (shortfall) or budget met
            if comps[k].shortfall > 0:
                log.warning("component %s: source exhausted %d tokens short of its budget %d",
                            comps[k].name, comps[k].shortfall, comps[k].budget)
            continue
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
        names = [c["name"] for c in self.components]
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
                budget=int(c["budget"]), stage=c.get("stage"), selected=[] if self.record_documents else None,
            ))
        self.packer = Packer(self.context_length, self.eos_id)

    def __iter__(self) -> Iterator[np.ndarray]:
        streams = [component_pieces(c, self.seed, self.vocab_size) for c in self.comps]
        for piece in interleave(self.comps, streams, _rng(self.seed, 2)):
            yield from self.packer.add(piece)

    @property
    def dropped_tail_tokens(self) -> int:
        return self.packer.fill


def _clear_outputs(out_dir: Path) -> None:
    # A rerun must not leave shards of a previous, larger mix beside the new manifest.
    for stale in list(out_dir.glob("shard-*.tkds")) + [out_dir / MANIFEST]:
        if stale.exists():
            stale.unlink()


def build_mix(
    components: list[dict],
    out_dir: str | os.PathLike,
    context_length: int,
    eos_id: int,
    vocab_size: int,
    sequences_per_shard: int,
    shuffle_buckets: int,
    seed: int,
) -> dict[str, Any]:
    """Select, pack and shuffle the components into TKDS shards; write and return the manifest.

    ``components``: dicts {name, source, token_paths: list of token parts, budget: tokens}.
    """
    if sequences_per_shard < 1 or shuffle_buckets < 1:
        raise ValueError(f"sequences_per_shard ({sequences_per_shard}) and shuffle_buckets ({shuffle_buckets}) must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_outputs(out_dir)
    start = time.monotonic()
    stream = MixStream(components, context_length, eos_id, vocab_size, seed)
    bucket_rng, perm_rng = _rng(seed, 3), _rng(seed, 4)
    bucket_counts = np.zeros(shuffle_buckets, dtype=np.int64)
    shards: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.buckets-", dir=out_dir.parent) as tmp:
        bucket_paths = [Path(tmp) / f"bucket-{b:04d}.bin" for b in range(shuffle_buckets)]
        # Pass 1: scatter sequences to bucket files (raw uint16 rows, appended block by block).
        files = [open(p, "wb") for p in bucket_paths]
        try:
            block = np.empty((BLOCK_SEQUENCES, context_length), dtype=np.uint16)
            n = 0

            def scatter(rows: np.ndarray) -> None:
                which = bucket_rng.integers(shuffle_buckets, size=len(rows))
                for b in range(shuffle_buckets):
                    sel = rows[which == b]
                    if len(sel):
                        files[b].write(sel.tobytes())
                        bucket_counts[b] += len(sel)

            for seq in stream:
                block[n] = seq
                n += 1
                if n == BLOCK_SEQUENCES:
                    scatter(block)
                    n = 0
            scatter(block[:n])
        finally:
            for f in files:
                f.close()
        selected_at = time.monotonic()
        log.info("pass 1: %d sequences into %d buckets %s (%.1fs)", int(bucket_counts.sum()),
                 shuffle_buckets, bucket_counts.tolist(), selected_at - start)

        # Pass 2: one bucket in memory at a time, permuted, cut into shards of a fixed size
        # (a shard may span two buckets; only the very last shard is smaller).
        carry = np.empty((0, context_length), dtype=np.uint16)

        def emit(rows: np.ndarray) -> None:
            name = SHARD_NAME.format(len(shards))
            digest = write_shard(out_dir / name, rows, vocab_size)
            shards.append({"file": name, "sequences": int(len(rows)), "sha256": digest})

        for path in bucket_paths:
            rows = np.fromfile(path, dtype=np.uint16).reshape(-1, context_length)
            path.unlink()
            rows = rows[perm_rng.permutation(len(rows))]
            if len(carry):
                rows = np.concatenate([carry, rows])
            full = len(rows) // sequences_per_shard * sequences_per_shard
            for i in range(0, full, sequences_per_shard):
                emit(rows[i : i + sequences_per_shard])
            carry = rows[full:]
        if len(carry):
            emit(carry)

    total_sequences = sum(s["sequences"] for s in shards)
    manifest = {
        "format": "TKDS",
        "version": VERSION,
        "context_length": context_length,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "seed": seed,
        "token_accounting": "budget and realized_tokens count document tokens, EOS excluded; "
        "stream_tokens = realized_tokens + eos_tokens",
        "total_sequences": total_sequences,
        "total_tokens": total_sequences * context_length,
        "dropped_tail_tokens": stream.dropped_tail_tokens,
        "sequences_per_shard": sequences_per_shard,
        "shuffle_buckets": shuffle_buckets,
        "components": {c.name: c.report() for c in stream.comps},
        "shards": shards,
    }
    write_json(out_dir / MANIFEST, manifest)
    log.info("mix: %d sequences (%d tokens) in %d shards, %d tail tokens dropped (%.1fs)",
             total_sequences, total_sequences * context_length, len(shards),
             stream.dropped_tail_tokens, time.monotonic() - start)
    return manifest
