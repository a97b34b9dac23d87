"""Rule label: label a domain's sample for one task with the configured backend, validate, write.

``make_labeler`` picks the backend that ``labels.backend`` names: ``offline``
(``trellis.labels.offline``, rule-based, no network; the demo's), ``openai-batch``
(``trellis.labels.openai_batch``) or ``openai-chat`` (``trellis.labels.openai_chat``).
``label_task`` then writes the same labeled dataset and report whichever backend answered: every
label is validated against the task (``validate_label``) and every row left out is counted with its
reason.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from trellis.core.io import ParquetWriter, iter_batches, write_json
from trellis.core.stats import StepStats
from trellis.core.tasks import Task
from trellis.labels.offline import OfflineLabeler

SUPPORTED_BACKENDS = ("offline", "openai-batch", "openai-chat")


def make_labeler(labels_config: dict[str, Any]):
    """The labeler the config's ``labels.backend`` names.

    The OpenAI backends are imported only when chosen, so the offline demo never loads the SDK.
    """
    backend = labels_config.get("backend")
    if backend == "offline":
        return OfflineLabeler(labels_config)
    if backend == "openai-batch":
        from trellis.labels.openai_batch import BatchLabeler

        return BatchLabeler(labels_config)
    if backend == "openai-chat":
        from trellis.labels.openai_chat import ChatLabeler

        return ChatLabeler(labels_config)
    raise ValueError(
        f"config key labels.backend = {backend!r} is not a labeling backend; "
        f"supported: {list(SUPPORTED_BACKENDS)}"
    )


# --------------------------------------------------------------------------------------------
# Labeling a task
# --------------------------------------------------------------------------------------------


def label_schema(task: Task) -> pa.Schema:
    label_type = {
        "multilabel": pa.list_(pa.string()),
        "regression": pa.float64(),
        "single_label": pa.string(),
    }[task.kind]
    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("text", pa.string()),
            pa.field("source", pa.string()),
            pa.field("label", label_type),
            pa.field("backend", pa.string()),
            pa.field("model", pa.string()),
            pa.field("prompt_version", pa.string()),
            pa.field("prompt_hash", pa.string()),
        ]
    )


def validate_label(task: Task, value: Any) -> str | None:
    """Why ``value`` is not a valid label for ``task`` (None when it is)."""
    if task.kind == "multilabel":
        if not isinstance(value, list):
            return "not_a_list"
        bad = [v for v in value if v not in task.labels]
        return "unknown_class" if bad else None
    if task.kind == "regression":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return "not_a_number"
        if not (task.low <= value <= task.high) or value != int(value):
            return "out_of_scale"
        return None
    if task.kind == "single_label":
        return None if value in task.labels else "unknown_class"
    raise ValueError(f"task {task.name}: unknown kind {task.kind!r}")


def _check_row(task: Task, row: dict[str, Any], row_no: int, sample_path, source: str) -> bool:
    """Raise on a miswired row; False for an empty text (counted by the caller), else True."""
    if row.get("source") != source:
        raise ValueError(
            f"{sample_path}: row {row_no}: column 'source' is {row.get('source')!r}, but task "
            f"{task.name!r} labels {source!r} documents here"
        )
    return isinstance(row.get("text"), str) and bool(row["text"].strip())


def _llm_outcomes(task: Task, sample_path, labeler, work_dir, batch_size: int, source: str):
    """Ask the LLM backend about every labelable sample row: (id -> Outcome, backend info)."""
    if work_dir is None:
        raise ValueError(f"backend {labeler.backend} needs a work directory for its manifest/cache")
    rows, seen = [], {}
    batches = iter_batches(sample_path, batch_size=batch_size)
    for row_no, row in enumerate(r for b in batches for r in b.to_pylist()):
        if not _check_row(task, row, row_no, sample_path, source):
            continue
        if row["id"] in seen:
            raise ValueError(f"{sample_path}: row {row_no}: id {row['id']!r} repeats row {seen[row['id']]}")
        seen[row["id"]] = row_no
        rows.append({k: row.get(k) for k in ("id", "text", "language", "path")})
    return labeler.run(task, rows, work_dir)


def label_task(
    task: Task,
    sample_path: str | os.PathLike,
    out_path: str | os.PathLike,
    labeler,
    batch_size: int = 512,
    work_dir: str | os.PathLike | None = None,
    max_invalid_fraction: float | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Label every sample row for ``task``; write ``labels/<task>.parquet``; return a report.

    ``labeler`` is an ``OfflineLabeler`` (labels each row on the spot) or an OpenAI backend
    (``trellis.labels.openai_batch`` or ``openai_chat``: asked about all rows at once; its manifest
    or request cache lives in ``work_dir``, so a rerun resumes and pays nothing twice).

    Rows whose source is not the task's source are an error (a miswired sample would otherwise
    train a classifier on the wrong domain). Rows with empty text, answers that stayed invalid
    after their retries, and labels that fail validation are left out of the parquet, and each is
    counted in the report (``invalid``, ``invalid_reasons``) and listed in ``invalid_records``
    with its id, reason and number of answers received.

    ``max_invalid_fraction`` (default: the labeler's, from ``labels.max_invalid_fraction``; None:
    no ceiling): when more than this share of the sample rows ends without a valid label, the
    labels parquet is not written (the job fails and nothing downstream runs); the report is
    written to ``<task>.rejected.report.json`` beside it (not a Snakemake output, so it survives
    the failed job) and the error names the task, count, fraction, ceiling and example ids.

    ``source``: the source the sample's rows come from (default: the task's own). The subject
    check labels peS2o papers for topics, a task otherwise trained on FineWeb-Edu.
    """
    source = source or task.source
    if max_invalid_fraction is None:
        max_invalid_fraction = getattr(labeler, "max_invalid_fraction", None)
    rejected_path = rejected_report_path(out_path)
    tally = StepStats(f"label:{task.name}", unit="chars", drop_sizes=False, timed=True)
    schema = label_schema(task)
    invalid: Counter[str] = Counter()
    invalid_records: list[dict[str, Any]] = []
    dist: Counter[str] = Counter()
    reg_values: list[float] = []
    n_topics: list[int] = []
    retried = 0
    outcomes, backend_info = None, None
    if not isinstance(labeler, OfflineLabeler):
        outcomes, backend_info = _llm_outcomes(task, sample_path, labeler, work_dir, batch_size, source)
        prompt_version, prompt_hash = labeler.provenance(task)
    else:
        prompt_version, prompt_hash = labeler.prompt_version, labeler.prompt_hash

    def reject(row_id, reason, detail=None, attempts=0):
        invalid[reason] += 1
        tally.drop(f"invalid_{reason}")
        invalid_records.append({"id": row_id, "reason": reason, "detail": detail, "attempts": attempts})

    row_no = -1
    with ParquetWriter(out_path, schema) as w:
        for batch in iter_batches(sample_path, batch_size=batch_size):
            out = []
            for row in batch.to_pylist():
                row_no += 1
                tally.seen(row.get("text"))
                if not _check_row(task, row, row_no, sample_path, source):
                    reject(row.get("id"), "empty_text")
                    continue
                if outcomes is None:
                    value = labeler.label(task, row)
                else:
                    outcome = outcomes.get(row["id"])
                    if outcome is None:
                        raise RuntimeError(
                            f"{sample_path}: row {row_no}: backend {labeler.backend} returned "
                            f"no outcome for id {row['id']!r}"
                        )
                    retried += outcome.attempts > 1
                    if not outcome.valid:
                        reject(row["id"], outcome.reason, outcome.detail, outcome.attempts)
                        continue
                    value = outcome.label
                reason = validate_label(task, value)
                if reason:
                    reject(row["id"], reason, repr(value)[:200])
                    continue
                if task.kind == "multilabel":
                    dist.update(value)
                    n_topics.append(len(value))
                    if not value:
                        dist["(none)"] += 1
                elif task.kind == "regression":
                    dist[str(int(value))] += 1
                    reg_values.append(float(value))
                else:
                    dist[value] += 1
                out.append(
                    {
                        "id": row["id"],
                        "text": row["text"],
                        "source": row["source"],
                        "label": value,
                        "backend": labeler.backend,
                        "model": labeler.model,
                        "prompt_version": prompt_version,
                        "prompt_hash": prompt_hash,
                    }
                )
                tally.kept(row["text"])
            w.write_rows(out)
        report: dict[str, Any] = {
            "task": task.name,
            "kind": task.kind,
            "backend": labeler.backend,
            "model": labeler.model,
            "prompt_version": prompt_version,
            "prompt_hash": prompt_hash,
            "n_in": tally.docs_in,
            "n_labeled": tally.docs_out,
            "invalid": sum(invalid.values()),
            "invalid_reasons": dict(sorted(invalid.items())),
            "invalid_records": invalid_records,
            "distribution": _ordered_distribution(task, dist),
            "seconds": tally.seconds,
        }
        if outcomes is not None:
            # Documents that needed more than one answer (an invalid answer was retried).
            report["retried_docs"] = retried
            report["backend_info"] = backend_info
        if task.kind == "multilabel" and n_topics:
            report["mean_labels_per_doc"] = sum(n_topics) / len(n_topics)
            report["multi_label_docs"] = sum(1 for k in n_topics if k > 1)
        if task.kind == "regression" and reg_values:
            report["mean"] = sum(reg_values) / len(reg_values)
        report["invalid_fraction"] = report["invalid"] / report["n_in"] if report["n_in"] else 0.0
        report["max_invalid_fraction"] = max_invalid_fraction
        if max_invalid_fraction is not None and report["invalid_fraction"] > max_invalid_fraction:
            # Raised inside the writer: its temporary file is discarded, no labels output appears.
            write_json(rejected_path, report)
            raise InvalidCeilingError(_ceiling_message(report, rejected_path))
    rejected_path.unlink(missing_ok=True)  # a rejected report of an earlier run is out of date
    return report


class InvalidCeilingError(RuntimeError):
    """More of a task's sample ended without a valid label than labels.max_invalid_fraction allows."""


def rejected_report_path(out_path: str | os.PathLike) -> Path:
    """Where a labeling refused by the invalid ceiling leaves its report: beside the labels."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.rejected.report.json")


def _ceiling_message(report: dict[str, Any], rejected_path: Path) -> str:
    """The ceiling read as the task's floor: n_labeled = n_in - invalid, so more invalid than the
    ceiling allows is fewer labels than (1 - ceiling) of the sample. Names the counts by reason,
    example ids, and the first record of each reason with its detail (for ``no_response``, the
    last error the API gave, e.g. ``batch_expired`` or ``token_limit_exceeded``)."""
    examples = ", ".join(f"{r['id']} ({r['reason']})" for r in report["invalid_records"][:5])
    first: dict[str, dict[str, Any]] = {}
    for r in report["invalid_records"]:
        first.setdefault(r["reason"], r)
    details = "; ".join(f"{reason}: {r['id']}: {r['detail']}" for reason, r in first.items() if r["detail"])
    return (
        f"task {report['task']}: {report['invalid']} of {report['n_in']} sample documents "
        f"({report['invalid_fraction']:.2%}) have no valid label, above "
        f"labels.max_invalid_fraction = {report['max_invalid_fraction']:g}; by reason: "
        f"{report['invalid_reasons']}; e.g. {examples}. Only {report['n_labeled']} were labeled, "
        f"below the task's floor of {1 - report['max_invalid_fraction']:.2%} of the sample."
        + (f" First of each reason: {details}." if details else "")
        + f" The labels were not written; the report with every invalid record is {rejected_path}. "
        f"Fix the cause (prompt, model, taxonomy, sample, the API's errors) or raise the ceiling, "
        f"then rerun"
    )


def _ordered_distribution(task: Task, dist: Counter) -> dict[str, int]:
    if task.kind == "regression":
        levels = [str(v) for v in range(int(task.low), int(task.high) + 1)]
        return {lv: dist.get(lv, 0) for lv in levels}
    out = {name: dist.get(name, 0) for name in task.labels}
    if task.kind == "multilabel":
        out["(none)"] = dist.get("(none)", 0)
    return out
