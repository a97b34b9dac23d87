"""Streaming the plan into sequences: read each component's documents, interleave, pack with EOS.

``component_stream`` emits one component's planned documents part by part, row group by row
group, in seeded orders (one row group in memory); ``interleave`` merges the components' streams;
``Packer`` cuts the merged stream into full ``context_length`` sequences. ``MixStream`` plans the
components and chains the three: the pre-shuffle sequence stream that ``shuffle`` permutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from trellis.tokens.mix.plan import Component
from trellis.tokens.mix.seeds import name_tag, seeded_rng


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
    tag = name_tag(comp.name)
    for epoch in range(comp.epochs + (1 if comp.sample_tokens else 0)):
        for k, path in enumerate(comp.token_paths):
            take = comp.part_take(k, epoch)
            if take is None or take.any():
                yield from emit_part(comp, path, take, seeded_rng(seed, 1, tag, epoch, k), vocab_size)


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
            self.comps.append(
                Component(
                    name=c["name"],
                    source=c["source"],
                    token_paths=[Path(p) for p in c["token_paths"]],
                    budget=int(c["budget"]),
                    upsample=bool(c.get("upsample", False)),
                    stage=c.get("stage"),
                    selected=[] if self.record_documents else None,
                )
            )
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
        for piece in interleave(self.comps, streams, seeded_rng(self.seed, 2)):
            yield from self.packer.add(piece)

    @property
    def dropped_tail_tokens(self) -> int:
        return self.packer.fill
