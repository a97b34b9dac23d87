"""Rule label_sample: draw a domain's labeling sample, evenly across the source's raw parts.

The sample is what every labeling backend reads: id, text and source, plus for code the file path
and language (``SAMPLE_META_COLUMNS``). No other column of a raw part enters it, so no hidden
attribute of a document can leak into its label. The draw is deterministic: each part's share
comes from its parquet footer and is drawn by a reservoir keyed on the seed and the part's name.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import ParquetWriter, count_rows, iter_batches
from trellis.core.stats import StepStats

# Metadata a labeler may read besides the text (code only); everything else stays out of the
# sample so no hidden attribute of a document can leak into its label.
SAMPLE_META_COLUMNS = ("language", "path")


def sample_stats() -> StepStats:
    """The stats ``sample_for_labeling`` counts into: documents and characters, timed."""
    return StepStats("label_sample", unit="chars", drop_sizes=False, timed=True)


def _quotas(sizes: Sequence[int], n: int) -> list[int]:
    """Split ``n`` as evenly as possible over parts of the given sizes (water-filling).

    A part smaller than its even share gives all its rows and the rest is spread over the others,
    so the sample reaches ``n`` whenever the parts hold that many rows.
    """
    quotas = [0] * len(sizes)
    remaining = min(n, sum(sizes))
    open_parts = [i for i, s in enumerate(sizes) if s > 0]
    while remaining > 0 and open_parts:
        share, extra = divmod(remaining, len(open_parts))
        still_open = []
        for rank, i in enumerate(open_parts):
            want = share + (1 if rank < extra else 0)
            take = min(want, sizes[i] - quotas[i])
            quotas[i] += take
            remaining -= take
            if quotas[i] < sizes[i]:
                still_open.append(i)
        # Each round either places all that remains or fills at least one part, so it ends.
        open_parts = still_open
    return quotas


def _part_rng(seed: int, path: str | os.PathLike) -> random.Random:
    # Keyed on the part's file name (not its position in the list or its directory), so one
    # part's draw does not change when results/ moves or the input list is reordered.
    key = hashlib.sha256(f"{seed}:{Path(path).parent.name}/{Path(path).name}".encode()).digest()
    return random.Random(int.from_bytes(key[:8], "little"))


def sample_for_labeling(
    part_paths: Sequence[str | os.PathLike],
    n: int,
    seed: int,
    tally: StepStats | None = None,
    batch_size: int = 1024,
) -> list[dict[str, Any]]:
    """Draw ``n`` documents evenly across ``part_paths``, deterministically.

    Each part gets an even share of ``n`` (its row count comes from the parquet footer, so shares
    are known before reading); the part is then streamed batch by batch and its share drawn by
    reservoir sampling, so only the sample itself is ever held in memory. Rows come back in part
    order and, within a part, in file order. Rows with empty text are skipped and counted in
    ``tally`` (reason ``empty_text``); a missing id is an error naming the file and row.
    """
    if n < 0:
        raise ValueError(f"sample size must be >= 0, got {n}")
    if not part_paths:
        raise ValueError("sample_for_labeling: no parts given")
    tally = tally if tally is not None else sample_stats()
    paths = [Path(p) for p in part_paths]
    quotas = _quotas([count_rows(p) for p in paths], n)
    sample: list[dict[str, Any]] = []
    for path, quota in zip(paths, quotas):
        sample.extend(_reservoir(path, quota, _part_rng(seed, path), tally, batch_size))
    tally.extra["parts"] = len(paths)
    tally.extra["quotas"] = {str(p): q for p, q in zip(paths, quotas)}
    return sample


def _reservoir(path: Path, k: int, rng: random.Random, tally: StepStats, batch_size: int) -> list[dict]:
    with_meta = _available_meta(path)
    columns = ["id", "text", "source", *with_meta]
    reservoir: list[tuple[int, dict]] = []
    eligible = 0  # rows that could be drawn (Algorithm R counts only these)
    row_no = -1
    for batch in iter_batches(path, columns=columns, batch_size=batch_size):
        for row in batch.to_pylist():
            row_no += 1
            tally.seen(row["text"])
            if row["id"] is None or row["id"] == "":
                raise ValueError(f"{path}: row {row_no}: column 'id' is empty")
            if row["source"] is None:
                raise ValueError(f"{path}: row {row_no}: column 'source' is empty")
            if not isinstance(row["text"], str) or not row["text"].strip():
                tally.drop("empty_text")
                continue
            eligible += 1
            if len(reservoir) < k:
                reservoir.append((row_no, row))
            elif k > 0:
                j = rng.randrange(eligible)
                if j < k:
                    reservoir[j] = (row_no, row)
    for _, row in reservoir:
        tally.kept(row["text"])
    if eligible > len(reservoir):
        tally.drop("not_drawn", docs=eligible - len(reservoir))
    # File order within the part, so the sample reads like the source, not like the draw.
    reservoir.sort(key=lambda item: item[0])
    return [row for _, row in reservoir]


def _available_meta(path: Path) -> list[str]:
    names = pq.ParquetFile(path).schema_arrow.names
    return [c for c in SAMPLE_META_COLUMNS if c in names]


def sample_schema(with_meta: Iterable[str]) -> pa.Schema:
    fields = [pa.field("id", pa.string()), pa.field("text", pa.string()), pa.field("source", pa.string())]
    fields += [pa.field(c, pa.string()) for c in SAMPLE_META_COLUMNS if c in set(with_meta)]
    return pa.schema(fields)


def write_sample(rows: Sequence[dict[str, Any]], out_path: str | os.PathLike) -> int:
    """Write the labeling sample: id, text, source, plus language/path when the rows have them."""
    meta = [c for c in SAMPLE_META_COLUMNS if any(c in r for r in rows)]
    schema = sample_schema(meta)
    with ParquetWriter(out_path, schema) as w:
        w.write_rows({name: row.get(name) for name in schema.names} for row in rows)
    return len(rows)
