"""Classifier metrics: what each ``metrics.json`` reports, and the table of rule ``classifier_metrics``.

``compute_metrics`` turns a split's targets and model outputs into the seeds' numbers; training
(``trellis.classifiers.train``) calls it on the test split (the reported metrics) and on the
validation split. ``metrics_rows`` lays one task's ``metrics.json`` out as rows of the report's
table (``METRICS_COLUMNS``). The metric names the one writes are the ones the other reads, so both
live here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from trellis.classifiers.model import MULTILABEL_THRESHOLD
from trellis.core.tasks import Task

# --------------------------------------------------------------------------------------------
# Metrics of one split (metrics.json)
# --------------------------------------------------------------------------------------------


def _multilabel_metrics(task: Task, y: np.ndarray, probs: np.ndarray, thresholds) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    pred = (probs >= np.asarray(thresholds, dtype=np.float32)[None, :]).astype(int)
    per = f1_score(y, pred, average=None, zero_division=0, labels=list(range(len(task.labels))))
    present = y.sum(axis=0) > 0
    return {
        "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
        "macro_f1": float(per[present].mean()) if present.any() else 0.0,
        "per_class_f1": {c: float(f) for c, f in zip(task.labels, per)},
        "exact_match": float((pred == y).all(axis=1).mean()),
        "multilabel_rate_predicted": float((pred.sum(axis=1) >= 2).mean()),
    }


def compute_metrics(
    task: Task, y_true: Sequence[Any], outputs: np.ndarray, thresholds: Sequence[float] | None = None
) -> dict[str, Any]:
    """Metrics for a task from its targets and model outputs (see outputs_from_logits).

    The seeds' metrics: micro, macro and per-class F1 for the topic head (at the per-class
    ``thresholds``, with the same at a flat 0.5 under ``at_0.5`` for reference); Spearman and
    per-level F1 after rounding for a regression; accuracy and per-class F1 for content type.
    Macro F1 averages over the classes present in the split (a class with no documents has no
    meaningful F1); per-class F1 is reported for every class with its support.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, mean_squared_error

    if task.kind == "multilabel":
        y = np.asarray(y_true, dtype=int).reshape(-1, len(task.labels))
        flat = [MULTILABEL_THRESHOLD] * len(task.labels)
        thresholds = list(thresholds) if thresholds is not None else flat
        return {
            **_multilabel_metrics(task, y, outputs, thresholds),
            "thresholds": dict(zip(task.labels, map(float, thresholds))),
            "at_0.5": {
                k: v
                for k, v in _multilabel_metrics(task, y, outputs, flat).items()
                if k in ("micro_f1", "macro_f1")
            },
            "per_class_support": {c: int(s) for c, s in zip(task.labels, y.sum(axis=0))},
            "multilabel_rate_true": float((y.sum(axis=1) >= 2).mean()),
        }
    if task.kind == "regression":
        from scipy.stats import spearmanr

        y = np.asarray(y_true, dtype=float)
        pred = np.asarray(outputs, dtype=float)
        rho = spearmanr(y, pred).statistic if len(y) > 1 and y.std() > 0 and pred.std() > 0 else float("nan")
        levels = list(range(int(task.low), int(task.high) + 1))
        y_lv = np.clip(np.rint(y), task.low, task.high).astype(int)
        p_lv = np.clip(np.rint(pred), task.low, task.high).astype(int)
        per = f1_score(y_lv, p_lv, labels=levels, average=None, zero_division=0)
        return {
            "spearman": None if math.isnan(rho) else float(rho),
            "mse": float(mean_squared_error(y, pred)),
            "mse_predict_mean": float(((y - y.mean()) ** 2).mean()),
            "level_accuracy": float(accuracy_score(y_lv, p_lv)),
            "per_level_f1": {str(lv): float(f) for lv, f in zip(levels, per)},
            "per_level_support": {str(lv): int((y_lv == lv).sum()) for lv in levels},
            "confusion": {"levels": levels, "matrix": confusion_matrix(y_lv, p_lv, labels=levels).tolist()},
        }
    y = np.asarray(y_true, dtype=int)
    pred = outputs.argmax(axis=1)
    all_classes = list(range(len(task.labels)))
    per = f1_score(y, pred, labels=all_classes, average=None, zero_division=0)
    support = np.bincount(y, minlength=len(task.labels))
    present = support > 0
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "majority_baseline": float(support.max() / support.sum()),
        "macro_f1": float(per[present].mean()),
        "per_class_f1": {c: float(f) for c, f in zip(task.labels, per)},
        "per_class_support": {c: int(s) for c, s in zip(task.labels, support)},
        "confusion": {
            "labels": list(task.labels),
            "matrix": confusion_matrix(y, pred, labels=all_classes).tolist(),
        },
    }


# --------------------------------------------------------------------------------------------
# The metrics table (for the report)
# --------------------------------------------------------------------------------------------

METRICS_COLUMNS = ("task", "kind", "split", "metric", "label", "value", "support")
_HEADLINE = (
    "micro_f1",
    "macro_f1",
    "exact_match",
    "accuracy",
    "majority_baseline",
    "spearman",
    "mse",
    "mse_predict_mean",
    "level_accuracy",
)


def metrics_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One task's metrics.json as table rows: headline metrics per split, then per class or level.

    The seeds' numbers: micro/macro/per-class F1 (topic), Spearman and per-level F1 after rounding
    (regressions), accuracy and per-class F1 (content type). Test rows are the reported ones;
    validation rows show what early stopping and threshold tuning saw.
    """
    rows = []
    for split, m in (("test", metrics), ("validation", metrics["validation"])):
        for key in _HEADLINE:
            if key in m:
                rows.append(
                    {
                        "task": metrics["task"],
                        "kind": metrics["kind"],
                        "split": split,
                        "metric": key,
                        "label": "",
                        "value": m[key],
                        "support": "",
                    }
                )
        per, support = (
            ("per_level_f1", "per_level_support")
            if "per_level_f1" in m
            else ("per_class_f1", "per_class_support")
        )
        for label, value in m.get(per, {}).items():
            rows.append(
                {
                    "task": metrics["task"],
                    "kind": metrics["kind"],
                    "split": split,
                    "metric": "f1",
                    "label": label,
                    "value": value,
                    "support": m.get(support, {}).get(label, ""),
                }
            )
    # The per-class thresholds of a multilabel head (tuned on validation, used for both splits).
    for label, value in (metrics.get("thresholds") or {}).items():
        rows.append(
            {
                "task": metrics["task"],
                "kind": metrics["kind"],
                "split": "validation",
                "metric": "tuned_threshold",
                "label": label,
                "value": value,
                "support": "",
            }
        )
    return rows
