"""Per-part curation policy: hard rules drop documents, kept ones get a priority and a group.

The study's two curated sources each have a policy (seeds, sessions 3, 5 and 7). This step applies
the per-document part of it; ranking and quotas need the whole source and happen after dedup
(``trellis.curate.select``). Every dropped document is counted, with its tokens, under the first rule
that rejected it.

FineWeb-Edu (config ``curation.fineweb_edu``)

- the topic classifier is multi-label: a topic is *active* when its own sigmoid reaches its own
  threshold; a document with no active topic is dropped (``no_topic``). The thresholds have one
  source of truth, chosen by ``topic_thresholds``: ``calibrated`` applies the per-topic
  thresholds Stage 0 calibrated (the classifier's tuned per-class thresholds, the report's
  ``thresholds.topic``; ``topic_threshold`` must then be null), or a mapping pins them
  (``topic_threshold``, or the topic's entry in ``topic_thresholds``) and Stage 0 checks each
  topic's positive rate at exactly that value (the report must have checked the same values);
- reasoning complexity below ``min_complexity`` is dropped (``complexity``);
- priority = complexity + ``multilabel_bonus`` x (active topics - 1): documents spanning several
  topics are the study's most valuable and rank first; group = the strongest active topic (what
  rebalancing counts shares by).

StarCoderData (config ``curation.starcoderdata``), in the order the study applies it:

1. zlib compression ratio below ``min_compression_ratio`` (``compression_ratio``): extreme
   repetition (migrations, generated configs) compresses to a few percent, real code rarely
   below ~0.2. Scoring already skipped model inference for these (``scoring.skip_below_compression_ratio``);
2. predicted code quality at or below ``min_code_quality`` (``code_quality``): the quality
   classifier is weak (0.575 Spearman), so it is a hard floor and a soft boost, never a ranking;
3. predicted structured relevance below ``min_structured_relevance`` (``structured_relevance``);
4. priority = structured relevance + ``quality_boost`` when predicted quality reaches
   ``quality_boost_at`` (the seeds' "soft boost for predicted >= 4"); group = the document's
   language after ``repair_language`` (per-language quotas count by it).

Input: a raw part, its scores part (same row order, checked id by id) and its token part
(``tokens/raw``: id and n_tokens of every non-empty document, same order). Output: the kept
documents with the raw part's columns unchanged plus ``n_tokens``, ``priority`` and ``group``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import ParquetWriter, iter_batches
from trellis.core.stats import StepStats
from trellis.core.text import compression_ratio

log = logging.getLogger(__name__)

POLICY_COLUMNS = [
    pa.field("n_tokens", pa.int64()),
    pa.field("priority", pa.float32()),
    pa.field("group", pa.string()),
]
SCORE_COLUMNS = {
    "fineweb_edu": ["id", "topic", "complexity"],
    "starcoderdata": ["id", "code_quality", "structured_relevance"],
}
# Drop reasons, in the order the rules are checked (the first failing rule names the drop).
FINEWEB_REASONS = ("empty_text", "missing_score", "no_topic", "complexity")
STARCODER_REASONS = (
    "empty_text",
    "compression_ratio",
    "missing_score",
    "code_quality",
    "structured_relevance",
)


# --------------------------------------------------------------------------------------------
# Policies (config -> checked, typed thresholds)
# --------------------------------------------------------------------------------------------


def _f32(value) -> np.float32:
    # Scores are float32 (the contract); comparing them with float64 thresholds would make an
    # inclusive threshold like 1.8 reject a score stored as float32(1.8) = 1.79999995.
    return np.float32(value)


def _require(cfg: dict, keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KeyError(f"config keys {[f'{where}.{k}' for k in missing]} are missing; got {sorted(cfg)}")


CALIBRATED = "calibrated"


def _threshold(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"config key {key} must be a number in [0, 1], got {value!r}")
    return float(value)


def topic_thresholds(cfg: dict, topics: Sequence[str]) -> str | dict[str, float]:
    """The FineWeb-Edu topic thresholds the config asks for: ``"calibrated"`` (Stage 0's), or pinned.

    Pinned: every topic's value, ``topic_thresholds[topic]`` or else ``topic_threshold``. Errors
    name the config key.
    """
    where = "curation.fineweb_edu"
    _require(cfg, ("topic_threshold", "topic_thresholds"), where)
    spec, default = cfg["topic_thresholds"], cfg["topic_threshold"]
    if isinstance(spec, str):
        if spec != CALIBRATED:
            raise ValueError(
                f"config key {where}.topic_thresholds must be {CALIBRATED!r} (Stage 0's calibrated "
                f"thresholds) or a mapping {{topic: threshold}} (pinned), got {spec!r}"
            )
        if default is not None:
            raise ValueError(
                f"config key {where}.topic_threshold is {default!r} but {where}.topic_thresholds is "
                f"{CALIBRATED!r}: the filter applies Stage 0's thresholds, so set topic_threshold to null "
                "(or pin thresholds instead)"
            )
        return CALIBRATED
    if spec is not None and not isinstance(spec, dict):
        raise ValueError(
            f"config key {where}.topic_thresholds must be {CALIBRATED!r} or a mapping {{topic: threshold}}, "
            f"got {spec!r}"
        )
    unknown = sorted(set(spec or {}) - set(topics))
    if unknown:
        raise ValueError(
            f"config key {where}.topic_thresholds names unknown topics {unknown}; "
            f"the taxonomy (labels.topics) has {list(topics)}"
        )
    per = spec or {}
    out = {}
    for t in topics:
        if t in per:
            out[t] = _threshold(per[t], f"{where}.topic_thresholds.{t}")
        else:
            out[t] = _threshold(default, f"{where}.topic_threshold")
    return out


def report_thresholds(report: dict | None, task: str = "topic") -> dict[str, float] | None:
    """The thresholds a Stage 0 report applied to a multi-label task (``thresholds.<task>``), if any."""
    if not report:
        return None
    values = (report.get("thresholds") or {}).get(task)
    return {k: float(v) for k, v in values.items()} if values else None


@dataclass(frozen=True)
class FinewebPolicy:
    thresholds: np.ndarray  # per topic, float32
    min_complexity: np.float32
    multilabel_bonus: float

    @classmethod
    def from_config(
        cls, cfg: dict, topics: Sequence[str], stage0_report: dict | None = None
    ) -> FinewebPolicy:
        """The policy; with ``topic_thresholds: calibrated`` the thresholds come from the Stage 0 report.

        A pinned policy given a report checks that Stage 0 checked the same thresholds (a stale
        report, e.g. under ``--rerun-triggers mtime``, would otherwise pass the gate unchecked).
        """
        where = "curation.fineweb_edu"
        _require(cfg, ("topic_threshold", "topic_thresholds", "min_complexity", "multilabel_bonus"), where)
        spec = topic_thresholds(cfg, topics)
        checked = report_thresholds(stage0_report)
        if spec == CALIBRATED:
            if checked is None:
                raise ValueError(
                    f"config key {where}.topic_thresholds is {CALIBRATED!r} but no Stage 0 report with "
                    "calibrated thresholds (thresholds.topic) was given"
                )
            if sorted(checked) != sorted(topics):
                raise ValueError(
                    f"config key {where}.topic_thresholds is {CALIBRATED!r} but the Stage 0 report has "
                    f"thresholds for {sorted(checked)}; the taxonomy (labels.topics) has {list(topics)}"
                )
            per = checked
        else:
            per = spec
            if checked is not None and any(checked.get(t) != per[t] for t in topics):
                raise ValueError(
                    f"config keys {where}.topic_threshold/topic_thresholds pin {per} but the Stage 0 "
                    f"report checked {checked}: rerun stage0 for these thresholds"
                )
        thresholds = np.array([per[t] for t in topics], dtype=np.float32)
        return cls(thresholds, _f32(cfg["min_complexity"]), float(cfg["multilabel_bonus"]))


@dataclass(frozen=True)
class StarcoderPolicy:
    min_compression_ratio: float  # compared with the float64 ratio
    min_code_quality: np.float32
    min_structured_relevance: np.float32
    quality_boost_at: np.float32
    quality_boost: float

    @classmethod
    def from_config(cls, cfg: dict) -> StarcoderPolicy:
        where = "curation.starcoderdata"
        _require(
            cfg,
            (
                "min_compression_ratio",
                "min_code_quality",
                "min_structured_relevance",
                "quality_boost_at",
                "quality_boost",
            ),
            where,
        )
        return cls(
            float(cfg["min_compression_ratio"]),
            _f32(cfg["min_code_quality"]),
            _f32(cfg["min_structured_relevance"]),
            _f32(cfg["quality_boost_at"]),
            float(cfg["quality_boost"]),
        )


# --------------------------------------------------------------------------------------------
# Language tags (StarCoderData)
# --------------------------------------------------------------------------------------------

# StarCoderData's language is the directory a file came from; a file's extension can disagree
# (templates, misnamed configs, a JSON file in a JavaScript slice). Only then is the tag checked.
EXTENSION_LANGUAGE = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".java": "java",
    ".json": "json",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".sql": "sql",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".hpp": "cpp",
    ".cxx": "cpp",
}
# Content evidence per language: a pattern a file of that language shows near its start.
_EVIDENCE = {
    "python": re.compile(r"^\s*(def |class \w+[:(]|import \w|from [\w.]+ import )", re.M),
    "javascript": re.compile(
        r"\b(function\s*\w*\s*\(|const \w+\s*=|let \w+\s*=|=>|require\(|module\.exports|export "
        r"(default|const|function))"
    ),
    "typescript": re.compile(r"\b(interface \w+\s*\{|: (string|number|boolean)\b|export (type|interface) )"),
    "java": re.compile(
        r"\b(public|private|protected)\s+(static\s+)?(final\s+)?(class|interface|void|[A-Z]\w*)\s+\w+"
    ),
    "yaml": re.compile(r"^[\w.-]+:(\s|$)", re.M),
    "sql": re.compile(r"^\s*(create|insert|select|alter|drop|update|delete|begin|with)\b", re.I | re.M),
    "go": re.compile(r"^package \w+|^func \w*\(", re.M),
    "rust": re.compile(r"\bfn \w+\s*[(<]|\blet mut\b|^use [\w:]+;", re.M),
    "c": re.compile(r"^#include\s*[<\"]", re.M),
    "cpp": re.compile(r"^#include\s*[<\"]|\bstd::|\bnamespace \w+", re.M),
}
_SNIFF_CHARS = 4000


def _looks_like(language: str, text: str) -> bool:
    head = text[:_SNIFF_CHARS]
    if language == "json":
        s = text.strip()
        if not s or s[0] not in "[{":
            return False
        try:
            json.loads(s)
        except ValueError:
            return False
        return True
    pattern = _EVIDENCE.get(language)
    return bool(pattern and pattern.search(head))


def repair_language(tag: str | None, path: str | None, text: str) -> tuple[str | None, str]:
    """The language a file should be counted under, and why.

    Returns ``(language, outcome)``: ``consistent`` (the extension agrees with the tag, or says
    nothing known), ``repaired`` (the extension names another language, the content shows that
    language and not the tag's: the tag is replaced) or ``kept`` (they disagree but the content
    does not settle it for the extension: the tag stays).
    """
    ext = os.path.splitext((path or "").lower())[1]
    ext_language = EXTENSION_LANGUAGE.get(ext)
    if ext_language is None or ext_language == tag:
        return tag, "consistent"
    if _looks_like(ext_language, text) and not (tag and _looks_like(tag, text)):
        return ext_language, "repaired"
    if not tag:
        return ext_language, "repaired"
    return tag, "kept"


# --------------------------------------------------------------------------------------------
# Reading the three inputs side by side
# --------------------------------------------------------------------------------------------


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


class _TokenCounts:
    """n_tokens of each raw row, from the token part (which leaves out documents without tokens)."""

    def __init__(self, path: Path):
        self._path = path
        self._rows: Iterator[tuple[str, int]] = (
            (i, n)
            for b in iter_batches(path, ["id", "n_tokens"])
            for i, n in zip(b.column("id").to_pylist(), b.column("n_tokens").to_pylist())
        )
        self._next = next(self._rows, None)

    def take(self, doc_id: str, text: str | None, where: str) -> int:
        if self._next is not None and self._next[0] == doc_id:
            n = int(self._next[1])
            self._next = next(self._rows, None)
            return n
        if text:
            raise ValueError(
                f"{where} (id {doc_id!r}) has text but no entry in the token part {self._path} "
                "at this position; the token part must come from this raw part"
            )
        return 0

    def finish(self) -> None:
        if self._next is not None:
            raise ValueError(
                f"{self._path}: id {self._next[0]!r} is not a row of the raw part (or is out of order)"
            )


def _topic_matrix(col: pa.ChunkedArray | pa.Array, k: int, where: str) -> np.ndarray:
    """(rows, k) float32 topic sigmoids; a null row is all NaN (so it reads as a missing score)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    bad = np.flatnonzero(valid & (lengths != k))
    if len(bad):
        raise ValueError(
            f"{where}: row {int(bad[0])} has {int(lengths[bad[0]])} topic scores; the taxonomy has {k}"
        )
    out = np.full((len(col), k), np.nan, dtype=np.float32)
    if valid.any():
        values = col.filter(pa.array(valid)).flatten().cast(pa.float32()).to_numpy(zero_copy_only=False)
        out[valid] = values.reshape(-1, k)
    return out


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric score column as float32 with nulls as NaN (so a missing score is visible)."""
    return table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------


def _fineweb_rows(batch, scores, policy: FinewebPolicy, where: str, extra: dict):
    """(drop reason or None, priority, group) per row of the batch, by the FineWeb-Edu rules."""
    topic = _topic_matrix(scores.column("topic"), len(policy.thresholds), where)
    complexity = _float_column(scores, "complexity")
    active = topic >= policy.thresholds[None, :]
    n_active = active.sum(axis=1)
    strongest = np.where(active, topic, -1.0).argmax(axis=1)
    for i, text in enumerate(batch.column("text").to_pylist()):
        if not text or not text.strip():
            yield "empty_text", None, None
        elif np.isnan(topic[i]).any() or math.isnan(complexity[i]):
            yield "missing_score", None, None
        elif n_active[i] == 0:
            yield "no_topic", None, None
        elif complexity[i] < policy.min_complexity:
            yield "complexity", None, None
        else:
            extra["multilabel_kept"] += int(n_active[i] >= 2)
            yield (
                None,
                float(complexity[i]) + policy.multilabel_bonus * (int(n_active[i]) - 1),
                int(strongest[i]),
            )


def _starcoder_rows(batch, scores, policy: StarcoderPolicy, where: str, extra: dict):
    """(drop reason or None, priority, group) per row of the batch, by the StarCoderData rules."""
    quality = _float_column(scores, "code_quality")
    relevance = _float_column(scores, "structured_relevance")
    ratios = (
        scores.column("compression_ratio").to_pylist()
        if "compression_ratio" in scores.column_names
        else [None] * scores.num_rows
    )
    texts = batch.column("text").to_pylist()
    names = batch.column_names
    languages = batch.column("language").to_pylist() if "language" in names else [None] * len(texts)
    paths = batch.column("path").to_pylist() if "path" in names else [None] * len(texts)
    for i, text in enumerate(texts):
        if not text:
            yield "empty_text", None, None
        elif (ratios[i] if ratios[i] is not None else compression_ratio(text)) < policy.min_compression_ratio:
            yield "compression_ratio", None, None
        elif math.isnan(quality[i]) or math.isnan(relevance[i]):
            yield "missing_score", None, None
        elif quality[i] <= policy.min_code_quality:
            yield "code_quality", None, None
        elif relevance[i] < policy.min_structured_relevance:
            yield "structured_relevance", None, None
        else:
            boost = policy.quality_boost if quality[i] >= policy.quality_boost_at else 0.0
            extra["quality_boosted"] += boost > 0
            language, outcome = repair_language(languages[i], paths[i], text)
            extra["language_tags"][outcome] += 1
            if outcome == "repaired":
                extra["language_repairs"][f"{languages[i]}->{language}"] += 1
            yield None, float(relevance[i]) + boost, language or "unknown"


def filter_part(
    source: str,
    raw_path: str | os.PathLike,
    scores_path: str | os.PathLike,
    tokens_path: str | os.PathLike,
    policy_config: dict,
    out_path: str | os.PathLike,
    *,
    topics: Sequence[str] = (),
    skip_below_compression_ratio: float | None = None,
    stage0_report: dict | None = None,
) -> dict[str, Any]:
    """Write the raw documents of one part that pass ``source``'s rules to ``out_path``.

    ``topics``: the taxonomy's topic names (FineWeb-Edu), in the classifier's order.
    ``stage0_report``: the source's Stage 0 report (its ``thresholds``: calibrated or checked).
    ``skip_below_compression_ratio``: the value scoring skipped inference below (StarCoderData);
    the filter's own ``min_compression_ratio`` must not be lower, or skipped documents would pass
    the pre-filter with no scores. Returns the step's counts (documents and tokens, per reason),
    the policy and per-source extras (multi-label documents, language repairs, quality boosts).
    """
    raw_path, scores_path, tokens_path = Path(raw_path), Path(scores_path), Path(tokens_path)
    if source == "fineweb_edu":
        if not topics:
            raise ValueError("filter_part: fineweb_edu needs the topic names (config labels.topics)")
        policy: Any = FinewebPolicy.from_config(policy_config, topics, stage0_report)
        decide, reasons = _fineweb_rows, FINEWEB_REASONS
        extra: dict[str, Any] = {"multilabel_kept": 0}
    elif source == "starcoderdata":
        policy = StarcoderPolicy.from_config(policy_config)
        if (
            skip_below_compression_ratio is not None
            and policy.min_compression_ratio < skip_below_compression_ratio
        ):
            raise ValueError(
                f"config key curation.starcoderdata.min_compression_ratio ({policy.min_compression_ratio}) "
                "is "
                f"below scoring.skip_below_compression_ratio ({skip_below_compression_ratio}): documents "
                "scoring skipped would have no scores; raise the former or lower the latter"
            )
        decide, reasons = _starcoder_rows, STARCODER_REASONS
        extra = {
            "quality_boosted": 0,
            "language_tags": Counter({"consistent": 0, "repaired": 0, "kept": 0}),
            "language_repairs": Counter(),
        }
    else:
        raise ValueError(
            f"no curation policy for source {source!r}; curated sources: fineweb_edu, starcoderdata"
        )

    counts = StepStats(f"filter/{source}/{raw_path.name}", unit="tokens", reasons=reasons)
    raw_rows = pq.ParquetFile(raw_path).metadata.num_rows
    score_rows = pq.ParquetFile(scores_path).metadata.num_rows
    if raw_rows != score_rows:
        raise ValueError(
            f"scores {scores_path} has {score_rows} rows but raw part {raw_path} has {raw_rows}: "
            "scores must be written in the raw part's row order"
        )
    score_columns = list(SCORE_COLUMNS[source])
    if source == "starcoderdata" and "compression_ratio" in pq.read_schema(scores_path).names:
        score_columns.append("compression_ratio")
    raw_schema = pq.read_schema(raw_path)
    clash = [f.name for f in POLICY_COLUMNS if f.name in raw_schema.names]
    if clash:
        raise ValueError(
            f"{raw_path}: has column(s) {clash} that the filter adds; rename them in normalization"
        )
    schema = pa.schema(list(raw_schema) + POLICY_COLUMNS)
    group_names = list(topics) if source == "fineweb_edu" else None
    score_batches = _Slicer(iter_batches(scores_path, score_columns), scores_path)
    token_counts = _TokenCounts(tokens_path)
    row = 0
    with ParquetWriter(out_path, schema) as writer:
        for batch in iter_batches(raw_path):
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
            texts = batch.column("text").to_pylist()
            tokens = [
                token_counts.take(i, t, f"{raw_path}: row {row + k}")
                for k, (i, t) in enumerate(zip(raw_ids, texts))
            ]
            keep, priority, group = [], [], []
            for n_tokens, (reason, prio, grp) in zip(
                tokens, decide(batch, scores, policy, f"{scores_path}", extra)
            ):
                counts.seen(n_tokens)
                keep.append(reason is None)
                if reason is None:
                    counts.kept(n_tokens)
                    priority.append(prio)
                    group.append(grp)
                else:
                    counts.drop(reason, n_tokens)
            if any(keep):
                mask = pa.array(keep)
                kept = pa.Table.from_batches([batch.filter(mask)])
                names = [group_names[g] for g in group] if group_names else group
                kept = (
                    kept.append_column(
                        POLICY_COLUMNS[0], pa.array(np.asarray(tokens)[np.asarray(keep)], pa.int64())
                    )
                    .append_column(POLICY_COLUMNS[1], pa.array(priority, pa.float32()))
                    .append_column(POLICY_COLUMNS[2], pa.array(names, pa.string()))
                )
                writer.write_table(kept)
            row += batch.num_rows
    token_counts.finish()
    stats = counts.to_dict()
    stats["policy"] = {
        k: (v.tolist() if isinstance(v, np.ndarray) else float(v)) for k, v in vars(policy).items()
    }
    stats.update({k: dict(v) if isinstance(v, Counter) else v for k, v in extra.items()})
    log.info(counts.summary())
    if counts.dropped["missing_score"]:
        log.warning(
            "%s: %d documents dropped for null/NaN scores in %s",
            raw_path,
            counts.dropped["missing_score"],
            scores_path,
        )
    return stats
