"""Quality filtering of the curated sources: classifier scores and heuristics decide what stays.

A raw part and its scores part are read side by side, batch by batch: the scorer writes scores in
the raw part's row order, so the join is a lockstep walk that checks every id instead of a hash
join that would hold a whole part in memory. Kept documents are written with exactly the raw
part's columns; every dropped document is counted under the first rule that rejected it.

FineWeb-Edu (thresholds ``topic_threshold``, ``min_complexity``): a document stays when at least
one of its 17 topic sigmoids reaches ``topic_threshold`` (it is clearly about something) and its
predicted reasoning complexity reaches ``min_complexity``.

StarCoderData (``min_compression_ratio``, ``min_code_quality``, ``min_structured_relevance``):
rules in the order the study applies them (session 7):

1. zlib compression ratio below ``min_compression_ratio`` -> ``compression_ratio``. Extreme
   repetition (migrations, generated configs) compresses to a few percent; real code rarely goes
   below ~0.2. Checked first because it is the cheapest and most reliable signal.
2. predicted code quality at or below ``min_code_quality`` -> ``code_quality``. The quality
   classifier is weak (0.575 Spearman), so it is only a hard floor, never a ranking.
3. structured relevance below ``min_structured_relevance`` -> ``structured_relevance``.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trellis.io import ParquetWriter, iter_batches
from trellis.tally import Tally

log = logging.getLogger(__name__)

# The score columns each filtered source needs, and the thresholds its rules read.
SCORE_COLUMNS = {
    "fineweb_edu": ["id", "topic", "complexity"],
    "starcoderdata": ["id", "code_quality", "structured_relevance"],
}
THRESHOLD_KEYS = {
    "fineweb_edu": ("topic_threshold", "min_complexity"),
    "starcoderdata": ("min_compression_ratio", "min_code_quality", "min_structured_relevance"),
}

# Drop reasons, in the order the rules are checked (the first failing rule names the drop).
FINEWEB_REASONS = ("missing_score", "topic", "complexity")
STARCODER_REASONS = ("empty_text", "compression_ratio", "missing_score", "code_quality", "structured_relevance")


def compression_ratio(text: str) -> float:
    """zlib-compressed size / raw size of the UTF-8 bytes (lower = more repetitive).

    Empty text has no meaningful ratio; callers must handle it (the filter drops it as
    ``empty_text``) rather than get a division by zero.
    """
    data = text.encode("utf-8", "surrogatepass")
    if not data:
        raise ValueError("compression_ratio of empty text is undefined")
    # Level 6 (zlib's default) is what the study calibrated the 0.10 threshold with.
    return len(zlib.compress(data, 6)) / len(data)


def _float_column(batch: pa.Table, name: str) -> np.ndarray:
    """A numeric score column as float32 with nulls as NaN (so a missing score is visible)."""
    col = batch.column(name)
    return col.cast(pa.float32()).to_numpy(zero_copy_only=False)


def _max_topic(batch: pa.Table) -> np.ndarray:
    """Per-row max over the topic sigmoid list; NaN for a null or empty list."""
    col = batch.column("topic")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    out = np.full(len(col), np.nan, dtype=np.float32)
    lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    # Flattened values of the non-null lists, in row order; reduceat needs each start < len.
    values = col.flatten().cast(pa.float32()).to_numpy(zero_copy_only=False)
    has = lengths > 0
    if has.any():
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[has]
        out[has] = np.maximum.reduceat(values, starts)
    return out


def _check_thresholds(source: str, thresholds: dict) -> dict[str, float]:
    if source not in THRESHOLD_KEYS:
        raise ValueError(f"no filter rules for source {source!r}; filtered sources: {sorted(THRESHOLD_KEYS)}")
    missing = [k for k in THRESHOLD_KEYS[source] if k not in thresholds]
    if missing:
        raise KeyError(f"filter thresholds for {source} lack {missing}; got {sorted(thresholds)}")
    # Scores are float32 (the contract); comparing them with float64 thresholds would make an
    # inclusive threshold like 1.8 reject a score stored as float32(1.8) = 1.79999995.
    # The compression ratio is computed here in float64, so its threshold stays float64.
    return {
        k: float(thresholds[k]) if k == "min_compression_ratio" else np.float32(thresholds[k])
        for k in THRESHOLD_KEYS[source]
    }


def _fineweb_reasons(batch: pa.RecordBatch, scores: pa.Table, t: dict[str, float]) -> list[str | None]:
    topic = _max_topic(scores)
    complexity = _float_column(scores, "complexity")
    reasons: list[str | None] = []
    for top, cx in zip(topic, complexity):
        if math.isnan(top) or math.isnan(cx):
            reasons.append("missing_score")
        elif top < t["topic_threshold"]:
            reasons.append("topic")
        elif cx < t["min_complexity"]:
            reasons.append("complexity")
        else:
            reasons.append(None)
    return reasons


def _starcoder_reasons(batch: pa.RecordBatch, scores: pa.Table, t: dict[str, float]) -> list[str | None]:
    quality = _float_column(scores, "code_quality")
    relevance = _float_column(scores, "structured_relevance")
    texts = batch.column("text").to_pylist()
    reasons: list[str | None] = []
    for text, q, r in zip(texts, quality, relevance):
        if not text:
            reasons.append("empty_text")
        elif compression_ratio(text) < t["min_compression_ratio"]:
            reasons.append("compression_ratio")
        elif math.isnan(q) or math.isnan(r):
            reasons.append("missing_score")
        elif q <= t["min_code_quality"]:
            reasons.append("code_quality")
        elif r < t["min_structured_relevance"]:
            reasons.append("structured_relevance")
        else:
            reasons.append(None)
    return reasons


_RULES: dict[str, Callable[[pa.RecordBatch, pa.Table, dict], list[str | None]]] = {
    "fineweb_edu": _fineweb_reasons,
    "starcoderdata": _starcoder_reasons,
}


def filter_part(
    source: str,
    raw_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    thresholds: dict,
    out_path: str | os.PathLike,
) -> dict[str, Any]:
    """Write the raw documents of one part that pass ``source``'s rules to ``out_path``.

    Returns the Tally dict: docs_in/docs_out, ``dropped`` per reason (they sum with docs_out to
    docs_in), plus the thresholds used. Raises ValueError naming both files (and the row) when the
    scores part is not row-aligned with the raw part.
    """
    t = _check_thresholds(source, thresholds)
    rules = _RULES[source]
    raw_path, scores_path = Path(raw_path), Path(scores_path)
    tally = Tally(f"filter/{source}/{raw_path.name}")
    tally.extra["thresholds"] = {k: float(thresholds[k]) for k in t}
    for reason in (FINEWEB_REASONS if source == "fineweb_edu" else STARCODER_REASONS):
        tally.dropped[reason] += 0  # every reason appears in the stats, zero or not

    raw_rows = pq.ParquetFile(raw_path).metadata.num_rows
    score_rows = pq.ParquetFile(scores_path).metadata.num_rows
    if raw_rows != score_rows:
        raise ValueError(
            f"scores {scores_path} has {score_rows} rows but raw part {raw_path} has {raw_rows}: "
            "scores must be written in the raw part's row order"
        )

    schema = pq.read_schema(raw_path)
    raw_batches = iter_batches(raw_path)
    score_batches = _Slicer(iter_batches(scores_path, SCORE_COLUMNS[source]), scores_path)
    row = 0
    with ParquetWriter(out_path, schema) as writer:
        for batch in raw_batches:
            if batch.num_rows == 0:
                continue
            scores = score_batches.take(batch.num_rows)
            raw_ids = batch.column("id").to_pylist()
            score_ids = scores.column("id").to_pylist()
            if raw_ids != score_ids:
                bad = next(i for i, (a, b) in enumerate(zip(raw_ids, score_ids)) if a != b)
                raise ValueError(
                    f"id mismatch at row {row + bad}: raw part {raw_path} has {raw_ids[bad]!r}, "
                    f"scores {scores_path} has {score_ids[bad]!r} (scores must follow the raw row order)"
                )
            reasons = rules(batch, scores, t)
            keep = np.array([r is None for r in reasons], dtype=bool)
            for text, reason in zip(batch.column("text").to_pylist(), reasons):
                tally.seen(text)
                if reason is None:
                    tally.kept(text)
                else:
                    tally.drop(reason)
            if keep.any():
                writer.write_table(pa.Table.from_batches([batch.filter(pa.array(keep))]))
            row += batch.num_rows
    stats = tally.to_dict()
    log.info(tally.summary())
    if tally.dropped["missing_score"]:
        log.warning("%s: %d documents dropped for null/NaN scores in %s", raw_path,
                    tally.dropped["missing_score"], scores_path)
    return stats


class _Slicer:
    """Hands out a batch stream in slices of exactly the requested row counts.

    The raw and scores files may have different row-group sizes, so the lockstep walk re-slices
    the score stream to match each raw batch (memory: at most about two score batches).
    """

    def __init__(self, batches, path: Path):
        self._batches = iter(batches)
        self._path = path
        self._pending: pa.Table | None = None

    def take(self, n: int) -> pa.Table:
        parts = [self._pending] if self._pending is not None else []
        have = sum(p.num_rows for p in parts)
        while have < n:
            try:
                b = next(self._batches)
            except StopIteration:
                raise ValueError(f"{self._path}: ended after fewer rows than the raw part") from None
            parts.append(pa.Table.from_batches([b]))
            have += b.num_rows
        table = pa.concat_tables(parts) if parts else None
        if table is None:
            raise ValueError(f"{self._path}: no rows to take")
        self._pending = table.slice(n) if table.num_rows > n else None
        return table.slice(0, n)
