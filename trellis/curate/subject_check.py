"""The subject filter measured: a keyword rule's precision and recall against LLM topic labels.

peS2o carries no field of study, so normalize keeps a paper on the study's subjects (CS, math, ML)
by a keyword rule (``trellis.acquire.normalize.SubjectFilter``). This module measures that rule the
way Stage 0 measures the classifiers, on a sample, before anyone trains on its output:

1. ``sample_before_filter`` draws documents from the source's *native* files, so the papers the
   rule drops are in the sample too;
2. the labeling backend labels the sample for the topic task (the same prompt, model and taxonomy
   that label FineWeb-Edu: rule ``label_subjects``);
3. ``measure`` applies the rule to the sample and scores it against those labels. The rule is
   applied here, not when sampling, so a researcher tuning its vocabularies or ``min_terms``
   re-measures in seconds against the same labels, without paying for labeling again.

A paper is *on subject* when its labels hold at least one of the filter's subjects. Overall:
precision = kept and on subject / kept, recall = kept and on subject / on subject. Per subject: the
rule "says" subject s when it keeps the paper with at least one of s's terms in its head; that
against the label s.

Each rate carries a 95% Wilson score interval: the sample is a few hundred to a few thousand
papers, and a recall measured on 40 positives is not a number to quote without one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from trellis.acquire.normalize import SPECS, RowContext, Skip, SubjectFilter, iter_native_rows
from trellis.core.io import ParquetWriter, doc_id
from trellis.core.stats import StepStats

Z_95 = 1.959963984540054

SAMPLE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
    ]
)


def check_subject_filters(sources: dict[str, dict], topics: Sequence[str]) -> None:
    """Every subject of a source's filter must be a topic of the labeling taxonomy: the subject
    check compares each subject with the labeler's topic of the same name."""
    for source, spec in sources.items():
        subjects = (spec.get("subject_filter") or {}).get("subjects") or {}
        unknown = [name for name in subjects if name not in topics]
        if unknown:
            raise ValueError(
                f"sources.{source}.subject_filter.subjects: {unknown} are not topics of "
                f"labels.topics ({list(topics)}); the subject check compares each subject with the "
                f"labeler's topic of the same name"
            )


def choose_files(files: Sequence[str | Path], max_files: int | None, seed: int) -> list[Path]:
    """The native files the sample is drawn from: all of them, or ``max_files`` chosen by ``seed``.

    A real source's files are shards of one shuffled dataset, so a few of them give an unbiased
    sample at a fraction of the reading (peS2o v2's files are gigabytes each).
    """
    ordered = sorted(Path(f) for f in files)
    if not ordered:
        raise ValueError("the source's manifest lists no data files to sample")
    if max_files is None or len(ordered) <= max_files:
        return ordered
    return sorted(random.Random(seed).sample(ordered, max_files))


def sample_before_filter(
    source: str,
    files: Sequence[str | Path],
    n: int,
    seed: int,
    tally: StepStats | None = None,
) -> list[dict[str, Any]]:
    """``n`` documents drawn uniformly from ``files`` (a reservoir: one pass, ``n`` rows held), in
    id order; rows normalize itself would drop (empty text, no native id) are counted in ``tally``
    and never sampled."""
    spec = SPECS[source]
    tally = tally if tally is not None else sample_stats(source)
    rng = random.Random(seed)
    reservoir: list[tuple[str, str]] = []
    seen = 0
    for path in files:
        for row_index, row in iter_native_rows(path, spec.required, spec.optional):
            try:
                key, text, _ = spec.convert(row, RowContext(Path(path), row_index))
            except Skip as skip:
                key, text, reason = None, "", skip.reason
            else:
                reason = "empty_text" if not text.strip() else "missing_native_id" if key is None else None
            tally.seen(text)
            if reason is not None:
                tally.drop(reason)
                continue
            tally.kept(text)
            seen += 1
            if len(reservoir) < n:
                reservoir.append((key, text))
            elif (j := rng.randrange(seen)) < n:
                reservoir[j] = (key, text)
    rows = [{"id": doc_id(source, key, text), "text": text, "source": source} for key, text in reservoir]
    return sorted(rows, key=lambda row: row["id"])


def sample_stats(source: str) -> StepStats:
    """Counts of the documents the sample was drawn from (kept: eligible), and why others were not."""
    return StepStats(f"subject_sample/{source}", unit="chars", drop_sizes=False, timed=True)


def write_sample(rows: Iterable[dict[str, Any]], out_path: str | Path) -> None:
    with ParquetWriter(out_path, SAMPLE_SCHEMA) as writer:
        writer.write_rows(rows)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without trials): sound at 0 and 1, unlike
    the normal approximation, which matters for a filter that keeps almost nothing it should not."""
    if trials == 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(successes: int, trials: int) -> dict[str, Any]:
    interval = wilson_interval(successes, trials)
    return {
        "value": successes / trials if trials else None,
        "successes": successes,
        "trials": trials,
        "ci95": list(interval) if interval else None,
    }


def _scores(predicted: Sequence[bool], actual: Sequence[bool]) -> dict[str, Any]:
    pairs = list(zip(predicted, actual, strict=True))
    tp = sum(p and a for p, a in pairs)
    fp = sum(p and not a for p, a in pairs)
    fn = sum(a and not p for p, a in pairs)
    precision, recall = _rate(tp, tp + fp), _rate(tp, tp + fn)
    p, r = precision["value"], recall["value"]
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
    return {
        "kept": tp + fp,
        "on_subject": tp + fn,
        "kept_on_subject": tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def measure(
    source: str,
    sample: Sequence[dict[str, Any]],
    labels: dict[str, list[str]],
    subject_filter: dict,
    label_report: dict[str, Any],
) -> dict[str, Any]:
    """The rule's precision and recall against the topic labels (``labels``: id -> topics).

    Sample documents without a valid label (the labeling report counts why) are left out of the
    scores and counted here; a sample with none labeled is an error, not a report of nothing. The
    report names a few papers the rule and the labels disagree on, to read.
    """
    rule = SubjectFilter.from_config(subject_filter)
    subjects = list(subject_filter["subjects"])
    scored = [row for row in sample if row["id"] in labels]
    if not scored:
        raise ValueError(
            f"{source}: none of the {len(sample)} subject-check sample documents has a topic label "
            f"(labeling report: {label_report.get('invalid_reasons')})"
        )
    found = [rule.subjects_of(row["text"]) for row in scored]
    kept = [len(set().union(*terms.values())) >= rule.min_terms for terms in found]
    on_subject = [bool(set(labels[row["id"]]) & set(subjects)) for row in scored]
    per_subject = {
        name: _scores(
            [keep and bool(terms[name]) for keep, terms in zip(kept, found, strict=True)],
            [name in labels[row["id"]] for row in scored],
        )
        for name in subjects
    }
    unlabeled = [row["id"] for row in sample if row["id"] not in labels]
    pairs = list(zip(scored, kept, on_subject, strict=True))
    return {
        "source": source,
        "sample_docs": len(sample),
        "labeled_docs": len(scored),
        "unlabeled_docs": len(unlabeled),
        "unlabeled_examples": unlabeled[:5],
        "kept_rate": _rate(sum(kept), len(scored)),
        "on_subject_rate": _rate(sum(on_subject), len(scored)),
        "overall": _scores(kept, on_subject),
        "subjects": per_subject,
        "kept_off_subject_examples": [row["id"] for row, k, on in pairs if k and not on][:10],
        "dropped_on_subject_examples": [row["id"] for row, k, on in pairs if on and not k][:10],
        "filter": {
            "min_terms": subject_filter["min_terms"],
            "head_chars": subject_filter["head_chars"],
            "subjects": subjects,
        },
        "labeler": {k: label_report.get(k) for k in ("backend", "model", "prompt_version", "prompt_hash")},
    }


TABLE_COLUMNS = (
    "scope",
    "kept",
    "on_subject",
    "kept_on_subject",
    "precision",
    "precision_lo",
    "precision_hi",
    "recall",
    "recall_lo",
    "recall_hi",
    "f1",
)


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as a table: one row for the rule as a whole, then one per subject."""
    rows = []
    for scope, scores in [("all subjects", report["overall"]), *report["subjects"].items()]:
        row = {"scope": scope, **{k: scores[k] for k in ("kept", "on_subject", "kept_on_subject")}}
        for name in ("precision", "recall"):
            rate = scores[name]
            lo, hi = rate["ci95"] or (None, None)
            row |= {name: _round(rate["value"]), f"{name}_lo": _round(lo), f"{name}_hi": _round(hi)}
        row["f1"] = _round(scores["f1"])
        rows.append(row)
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
