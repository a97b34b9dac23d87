"""Stage 0: validate the classifiers on a sample of the source before curation commits to them.

The seeds' Stage 0 scores a 50k-document sample in minutes to catch miscalibrated sigmoids,
degenerate distributions and threshold problems before the multi-hour classification and
filtering runs. Here it is a gate in the DAG: ``filter`` needs the Stage 0 report, and the report
is only written when every check passes or is explicitly accepted in the config.

What it measures on the sample (``run_stage0``):

- topic (multi-label): each topic's positive rate at the candidate thresholds and at the
  classifier's tuned per-class threshold; the multi-label rate (documents with two or more active
  topics) and the no-topic rate at the thresholds the filter applies; the topic x complexity
  heatmap (strongest active topic against rounded complexity), the picture that showed the seeds
  STEM-core topics are ~5% of the crawl.

The thresholds the filter applies have one source of truth (``thresholds``, from the config's
``curation.<source>.topic_thresholds``): ``calibrated`` (Stage 0 calibrates them: the classifier's
tuned per-class thresholds) or pinned per topic in the config (Stage 0 then also checks each
topic's positive rate at exactly the pinned value). Either way the report records them under
``thresholds.<task>`` (and ``threshold_source.<task>``), and the filter reads them from there.
- regressions (complexity, code quality, structured relevance): histogram, mean, std, quantiles
  and the share at each rounded level;
- content type (single-label): the share of each predicted class.

Checks (``check_name``: what fails it):

- ``topic:never_on:<topic>``: positive rate at the tuned threshold below ``min_positive_rate``;
- ``topic:always_on:<topic>``: positive rate above ``max_positive_rate``;
- ``topic:never_on_pinned:<topic>``, ``topic:always_on_pinned:<topic>``: the same bounds on the
  positive rate at the threshold pinned in the config (pinned thresholds only);
- ``topic:multilabel_rate``: outside [``min_multilabel_rate``, ``max_multilabel_rate``];
- ``topic:no_topic_rate``: above ``max_no_topic_rate``;
- ``<regression>:collapsed``: prediction std below ``min_regression_std`` (scale units);
- ``<task>:never_predicted:<class>``: a class's share below ``min_class_share``;
- ``<task>:dominant``: one class's share above ``max_class_share``.

``curation.stage0.accept`` maps a source to ``{check: reason}``: an accepted failing check is
logged with its reason and does not stop the run (a name that is not one of the source's checks
is a config error, so a typo cannot silently accept nothing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from trellis.classifiers.model import tuned_thresholds
from trellis.classifiers.score import load_classifiers, predict
from trellis.core.io import atomic_path, count_rows, iter_batches, write_json
from trellis.core.tasks import Task
from trellis.core.text import compression_ratio

log = logging.getLogger(__name__)

CHECK_KEYS = (
    "min_positive_rate",
    "max_positive_rate",
    "min_multilabel_rate",
    "max_multilabel_rate",
    "max_no_topic_rate",
    "min_regression_std",
    "min_class_share",
    "max_class_share",
)


class Stage0GateError(RuntimeError):
    """Raised when a Stage 0 check fails and the config does not accept it."""


def _check(name: str, passed: bool, value: float, limit: str, why: str) -> dict[str, Any]:
    return {
        "check": name,
        "passed": bool(passed),
        "value": round(float(value), 6),
        "limit": limit,
        "why": why,
    }


def _multilabel_stats(
    task: Task,
    probs: np.ndarray,
    tuned: Sequence[float],
    candidates: Sequence[float],
    limits: Mapping[str, float],
    pinned: Sequence[float] | None = None,
    pinned_key: str = "the config",
) -> tuple[dict, list]:
    tuned_arr = np.asarray(tuned, dtype=np.float32)
    rates = (probs >= tuned_arr[None, :]).mean(axis=0)
    # What the filter applies: the pinned thresholds, or the calibrated (tuned) ones.
    applied = np.asarray(tuned if pinned is None else pinned, dtype=np.float32)
    active = probs >= applied[None, :]
    n_active = active.sum(axis=1)
    stats = {
        "tuned_thresholds": dict(zip(task.labels, map(float, tuned))),
        "positive_rate_at_tuned": dict(zip(task.labels, map(float, rates))),
        "positive_rate_at": {
            f"{t:.2f}": dict(zip(task.labels, map(float, (probs >= t).mean(axis=0)))) for t in candidates
        },
        "multilabel_rate_at": {f"{t:.2f}": float(((probs >= t).sum(axis=1) >= 2).mean()) for t in candidates},
        "multilabel_rate": float((n_active >= 2).mean()),
        "no_topic_rate": float((n_active == 0).mean()),
        "active_topics_histogram": {
            str(k): int((n_active == k).sum()) for k in range(int(n_active.max(initial=0)) + 1)
        },
        "mean_probability": dict(zip(task.labels, map(float, probs.mean(axis=0)))),
    }
    checks = []
    for label, rate, threshold in zip(task.labels, rates, tuned):
        checks.append(
            _check(
                f"{task.name}:never_on:{label}",
                rate >= limits["min_positive_rate"],
                rate,
                f">= min_positive_rate {limits['min_positive_rate']}",
                f"positive rate {rate:.4f} at its threshold {threshold:.2f}: the classifier (almost) never "
                "assigns it",
            )
        )
        checks.append(
            _check(
                f"{task.name}:always_on:{label}",
                rate <= limits["max_positive_rate"],
                rate,
                f"<= max_positive_rate {limits['max_positive_rate']}",
                f"positive rate {rate:.4f} at its threshold {threshold:.2f}: the classifier assigns it to "
                "(almost) everything",
            )
        )
    if pinned is not None:
        pinned_rates = active.mean(axis=0)
        stats["pinned_thresholds"] = dict(zip(task.labels, map(float, pinned)))
        stats["positive_rate_at_pinned"] = dict(zip(task.labels, map(float, pinned_rates)))
        for label, rate, threshold in zip(task.labels, pinned_rates, pinned):
            where = f"topic {label!r} at its threshold {float(threshold):g} pinned in {pinned_key}"
            checks.append(
                _check(
                    f"{task.name}:never_on_pinned:{label}",
                    rate >= limits["min_positive_rate"],
                    rate,
                    f">= min_positive_rate {limits['min_positive_rate']}",
                    f"positive rate {rate:.4f} of {where}: the filter would (almost) never keep it",
                )
            )
            checks.append(
                _check(
                    f"{task.name}:always_on_pinned:{label}",
                    rate <= limits["max_positive_rate"],
                    rate,
                    f"<= max_positive_rate {limits['max_positive_rate']}",
                    f"positive rate {rate:.4f} of {where}: the filter would assign it to (almost) everything",
                )
            )
    ml = stats["multilabel_rate"]
    checks.append(
        _check(
            f"{task.name}:multilabel_rate",
            limits["min_multilabel_rate"] <= ml <= limits["max_multilabel_rate"],
            ml,
            f"in [min_multilabel_rate {limits['min_multilabel_rate']}, max_multilabel_rate "
            f"{limits['max_multilabel_rate']}]",
            f"{ml:.4f} of documents have two or more active topics",
        )
    )
    none = stats["no_topic_rate"]
    checks.append(
        _check(
            f"{task.name}:no_topic_rate",
            none <= limits["max_no_topic_rate"],
            none,
            f"<= max_no_topic_rate {limits['max_no_topic_rate']}",
            f"{none:.4f} of documents have no active topic",
        )
    )
    return stats, checks


def _regression_stats(task: Task, values: np.ndarray, limits: Mapping[str, float]) -> tuple[dict, list]:
    edges = np.linspace(task.low, task.high, int((task.high - task.low) * 4) + 1)  # quarter-level bins
    hist, _ = np.histogram(values, bins=edges)
    levels = np.clip(np.rint(values), task.low, task.high).astype(int)
    std = float(values.std())
    stats = {
        "mean": float(values.mean()),
        "std": std,
        "quantiles": {
            q: float(np.quantile(values, float(q))) for q in ("0.05", "0.25", "0.5", "0.75", "0.95")
        },
        "histogram": {"edges": edges.tolist(), "counts": hist.tolist()},
        "level_share": {
            str(lv): float((levels == lv).mean()) for lv in range(int(task.low), int(task.high) + 1)
        },
    }
    check = _check(
        f"{task.name}:collapsed",
        std >= limits["min_regression_std"],
        std,
        f">= min_regression_std {limits['min_regression_std']}",
        f"predictions have std {std:.4f} on the {task.low:g}-{task.high:g} scale: the output has collapsed "
        "toward one value",
    )
    return stats, [check]


def _single_label_stats(task: Task, probs: np.ndarray, limits: Mapping[str, float]) -> tuple[dict, list]:
    predicted = probs.argmax(axis=1)
    shares = np.bincount(predicted, minlength=len(task.labels)) / max(len(predicted), 1)
    stats = {
        "class_share": dict(zip(task.labels, map(float, shares))),
        "mean_max_probability": float(probs.max(axis=1).mean()),
    }
    checks = [
        _check(
            f"{task.name}:never_predicted:{label}",
            share >= limits["min_class_share"],
            share,
            f">= min_class_share {limits['min_class_share']}",
            f"predicted for {share:.4f} of documents: the classifier (almost) never outputs this class",
        )
        for label, share in zip(task.labels, shares)
    ]
    top = int(shares.argmax())
    checks.append(
        _check(
            f"{task.name}:dominant",
            shares[top] <= limits["max_class_share"],
            shares[top],
            f"<= max_class_share {limits['max_class_share']}",
            f"{task.labels[top]!r} is predicted for {shares[top]:.4f} of documents",
        )
    )
    return stats, checks


def check_names(tasks: Sequence[Task], pinned: Sequence[str] = ()) -> list[str]:
    """Every check Stage 0 runs for these tasks (what ``accept`` may name).

    ``pinned``: the multi-label tasks whose thresholds are pinned in the config.
    """
    names = []
    for t in tasks:
        if t.kind == "multilabel":
            names += [f"{t.name}:{kind}:{label}" for label in t.labels for kind in ("never_on", "always_on")]
            if t.name in pinned:
                names += [
                    f"{t.name}:{kind}:{label}"
                    for label in t.labels
                    for kind in ("never_on_pinned", "always_on_pinned")
                ]
            names += [f"{t.name}:multilabel_rate", f"{t.name}:no_topic_rate"]
        elif t.kind == "regression":
            names.append(f"{t.name}:collapsed")
        else:
            names += [f"{t.name}:never_predicted:{label}" for label in t.labels] + [f"{t.name}:dominant"]
    return names


def evaluate_sample(
    outputs: Mapping[str, np.ndarray],
    tasks: Mapping[str, Task],
    tuned: Mapping[str, list],
    settings: Mapping[str, Any],
    pinned: Mapping[str, Sequence[float]] | None = None,
    pinned_key: str = "the config",
) -> tuple[dict, list]:
    """Per-task statistics and checks from the classifiers' outputs on the sample.

    ``pinned``: per multi-label task, the thresholds pinned in the config (in label order); a
    task not named is calibrated (the filter applies its tuned thresholds).
    """
    missing = [k for k in (*CHECK_KEYS, "candidate_thresholds") if k not in settings]
    if missing:
        raise KeyError(f"config keys {[f'curation.stage0.{k}' for k in missing]} are missing")
    pinned = pinned or {}
    stats, checks = {}, []
    for name, task in tasks.items():
        out = outputs[name]
        if task.kind == "multilabel":
            s, c = _multilabel_stats(
                task,
                out,
                tuned[name],
                settings["candidate_thresholds"],
                settings,
                pinned.get(name),
                pinned_key,
            )
        elif task.kind == "regression":
            s, c = _regression_stats(task, out, settings)
        else:
            s, c = _single_label_stats(task, out, settings)
        stats[name], checks = s, checks + c
    return stats, checks


def gate(
    source: str,
    checks: list[dict],
    accept: Mapping[str, str],
    tasks: Sequence[Task],
    pinned: Sequence[str] = (),
) -> dict[str, Any]:
    """Apply the config's acceptances; raise Stage0GateError naming every failing, unaccepted check."""
    known = set(check_names(tasks, pinned))
    unknown = sorted(set(accept) - known)
    if unknown:
        raise ValueError(
            f"config key curation.stage0.accept.{source} names {unknown}, which are not Stage 0 checks "
            f"of {source}; its checks are {sorted(known)}"
        )
    failing = [c for c in checks if not c["passed"]]
    accepted = []
    for c in failing:
        if c["check"] in accept:
            c["accepted"] = str(accept[c["check"]])
            accepted.append(c)
            log.warning(
                "Stage 0 %s: check %s fails (%s), accepted by the config: %s",
                source,
                c["check"],
                c["why"],
                c["accepted"],
            )
    for name in sorted(set(accept) - {c["check"] for c in failing}):
        log.warning(
            "Stage 0 %s: check %s is accepted in the config but passes; the acceptance can go", source, name
        )
    blocking = [c for c in failing if c["check"] not in accept]
    summary = {
        "passed": not blocking,
        "failed": [c["check"] for c in blocking],
        "accepted": {c["check"]: c["accepted"] for c in accepted},
        "checks_run": len(checks),
        "checks_failing": len(failing),
    }
    return summary


def gate_message(source: str, checks: list[dict], failed: Sequence[str], n_docs: int) -> str:
    lines = [
        f"Stage 0 gate stopped curation of {source}: {len(failed)} check(s) failed on {n_docs} sampled "
        "documents."
    ]
    for c in checks:
        if c["check"] in failed:
            lines.append(f"  - {c['check']}: {c['why']} (value {c['value']}, required {c['limit']})")
    lines.append(
        "Fix the classifier (labels, training) or thresholds, or accept a check with a reason under "
        f"curation.stage0.accept.{source} in the config."
    )
    return "\n".join(lines)


def plot_stage0(source: str, stats: Mapping[str, Any], tasks: Mapping[str, Task], heatmap, path) -> None:
    """One figure: every task's distribution, and the topic x complexity (or quality x relevance) heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(tasks)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(5.2 * (len(names) + 1), 4.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        task, st = tasks[name], stats[name]
        if task.kind == "multilabel":
            rates = st["positive_rate_at_tuned"]
            order = sorted(rates, key=rates.get)
            ax.barh(order, [rates[t] for t in order], color="#4C72B0")
            ax.set_xlabel("positive rate at tuned threshold")
            ax.set_title(f"{name}: multi-label rate {st['multilabel_rate']:.3f}", fontsize=9)
            ax.tick_params(axis="y", labelsize=6)
        elif task.kind == "regression":
            edges, counts = st["histogram"]["edges"], st["histogram"]["counts"]
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#55A868", edgecolor="white")
            ax.set_xlabel(f"predicted {name}")
            ax.set_title(f"{name}: mean {st['mean']:.2f}, std {st['std']:.2f}", fontsize=9)
        else:
            shares = st["class_share"]
            ax.barh(list(shares), list(shares.values()), color="#C44E52")
            ax.set_xlabel("share of predictions")
            ax.set_title(name, fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
    ax = axes[0][-1]
    if heatmap is not None:
        counts, row_labels, col_labels, title = heatmap
        im = ax.imshow(counts, aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=6)
        ax.set_xticks(range(len(col_labels)), col_labels)
        for (i, j), v in np.ndenumerate(counts):
            ax.text(
                j,
                i,
                str(int(v)),
                ha="center",
                va="center",
                fontsize=5,
                color="w" if v < counts.max() / 2 else "k",
            )
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.suptitle(f"Stage 0 — {source}", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def resolve_thresholds(
    source: str, tasks: Mapping[str, Task], thresholds: Mapping[str, Any] | None
) -> dict[str, list[float]]:
    """The pinned thresholds per multi-label task, in label order; calibrated tasks are left out.

    ``thresholds`` maps a multi-label task to ``"calibrated"`` or ``{label: threshold}`` covering
    every label (a task not named is calibrated).
    """
    key = f"curation.{source}.topic_thresholds"
    pinned = {}
    for name, spec in (thresholds or {}).items():
        task = tasks.get(name)
        if task is None or task.kind != "multilabel":
            raise ValueError(f"Stage 0 {source}: thresholds given for {name!r}, not a multi-label task here")
        if spec == "calibrated":
            continue
        if not isinstance(spec, Mapping) or sorted(spec) != sorted(task.labels):
            raise ValueError(
                f"config key {key} must be 'calibrated' or pin a threshold for every label of {name} "
                f"({list(task.labels)}); got {spec!r}"
            )
        values = []
        for label in task.labels:
            v = spec[label]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"config key {key}.{label} must be a number in [0, 1], got {v!r}")
            values.append(float(v))
        pinned[name] = values
    return pinned


def _heatmap(outputs, tasks, tuned) -> tuple[np.ndarray, list, list, str] | None:
    """Counts of (strongest active topic x rounded complexity), or (quality level x relevance level)."""
    kinds = {t.kind: n for n, t in tasks.items()}
    if "multilabel" in kinds and "complexity" in tasks:
        topic = tasks[kinds["multilabel"]]
        probs = outputs[topic.name]
        active = probs >= np.asarray(tuned[topic.name], dtype=np.float32)[None, :]
        strongest = np.where(active, probs, -1).argmax(axis=1)
        has = active.any(axis=1)
        cx = tasks["complexity"]
        levels = np.clip(np.rint(outputs["complexity"]), cx.low, cx.high).astype(int) - int(cx.low)
        counts = np.zeros((len(topic.labels), int(cx.high - cx.low) + 1), dtype=int)
        np.add.at(counts, (strongest[has], levels[has]), 1)
        cols = [str(v) for v in range(int(cx.low), int(cx.high) + 1)]
        return counts, list(topic.labels), cols, "strongest topic x complexity (documents)"
    if "code_quality" in tasks and "structured_relevance" in tasks:
        q, r = tasks["code_quality"], tasks["structured_relevance"]
        ql = np.clip(np.rint(outputs["code_quality"]), q.low, q.high).astype(int) - int(q.low)
        rl = np.clip(np.rint(outputs["structured_relevance"]), r.low, r.high).astype(int) - int(r.low)
        counts = np.zeros((int(q.high - q.low) + 1, int(r.high - r.low) + 1), dtype=int)
        np.add.at(counts, (ql, rl), 1)
        rows = [f"quality {v}" for v in range(int(q.low), int(q.high) + 1)]
        cols = [str(v) for v in range(int(r.low), int(r.high) + 1)]
        return counts, rows, cols, "code quality x structured relevance (documents)"
    return None


def sample_texts(part_paths: Sequence[str | os.PathLike], n: int, seed: int) -> tuple[list[str], int]:
    """About ``n`` texts drawn uniformly from the parts (each part in proportion to its rows), streamed.

    Row indices are drawn up front (seeded per part), then each part is read batch by batch and
    only the drawn rows kept, so memory holds the sample, not a part. Returns (texts, empty texts
    skipped).
    """
    sizes = [count_rows(p) for p in part_paths]
    total = sum(sizes)
    if total == 0:
        return [], 0
    exact = np.array(sizes, dtype=float) * min(n, total) / total
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(quotas - exact)[: min(n, total) - quotas.sum()]] += 1  # largest remainders
    texts, empty = [], 0
    for k, (path, size, quota) in enumerate(zip(part_paths, sizes, quotas)):
        rows = np.sort(
            np.random.default_rng([seed, k]).choice(size, size=min(int(quota), size), replace=False)
        )
        offset = 0
        for batch in iter_batches(path, ["text"]):
            lo, hi = np.searchsorted(rows, [offset, offset + batch.num_rows])
            for text in batch.column("text").take(pa.array(rows[lo:hi] - offset)).to_pylist():
                if text and text.strip():
                    texts.append(text)
                else:
                    empty += 1
            offset += batch.num_rows
    return texts, empty


def run_stage0(
    source: str,
    part_paths: Sequence[str | os.PathLike],
    classifier_dirs: Mapping[str, str | os.PathLike],
    tasks: Mapping[str, Task],
    settings: Mapping[str, Any],
    report_path: str | os.PathLike,
    plot_path: str | os.PathLike,
    *,
    seed: int,
    batch_size: int,
    max_length: int,
    skip_below_compression_ratio: float | None = None,
    threads: int | None = None,
    device: str | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Sample, score, measure, check; write the report and plot, or raise Stage0GateError.

    ``thresholds``: per multi-label task, ``"calibrated"`` (default) or the ``{label: threshold}``
    pinned in the config; the report's ``thresholds`` holds what the filter applies.
    On failure the report is still written, beside the would-be output, as ``report.failed.json``
    (not a rule output, so Snakemake leaves it for inspection) before the error is raised.
    """
    pinned = resolve_thresholds(source, tasks, thresholds)
    if threads:
        torch.set_num_threads(int(threads))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    texts, empty = sample_texts(part_paths, int(settings["sample_docs"]), seed)
    prefiltered = 0
    if skip_below_compression_ratio is not None:
        # What scoring never runs the classifiers on is not part of what they must handle.
        keep = [compression_ratio(t) >= skip_below_compression_ratio for t in texts]
        prefiltered = len(texts) - sum(keep)
        texts = [t for t, k in zip(texts, keep) if k]
    if not texts:
        raise ValueError(f"Stage 0 {source}: no documents to sample from {list(map(str, part_paths))}")
    loaded = load_classifiers(classifier_dirs, tasks, dev)
    outputs = predict(loaded, texts, batch_size, max_length, dev)
    tuned = {
        n: tuned_thresholds(model.config, task)
        for n, (model, _, task) in loaded.items()
        if task.kind == "multilabel"
    }
    stats, checks = evaluate_sample(
        outputs, tasks, tuned, settings, pinned, f"curation.{source}.topic_threshold(s)"
    )
    accept = dict((settings.get("accept") or {}).get(source) or {})
    summary = gate(source, checks, accept, list(tasks.values()), list(pinned))
    applied = {n: pinned.get(n, t) for n, t in tuned.items()}
    report = {
        "source": source,
        "sample": {
            "documents": len(texts),
            "requested": int(settings["sample_docs"]),
            "skipped_empty": empty,
            "prefiltered_compression_ratio": prefiltered,
        },
        "settings": {k: settings[k] for k in (*CHECK_KEYS, "candidate_thresholds")},
        # What the filter applies per multi-label task: calibrated here, or pinned and checked.
        "thresholds": {n: dict(zip(tasks[n].labels, map(float, v))) for n, v in applied.items()},
        "threshold_source": {n: "pinned" if n in pinned else "calibrated" for n in applied},
        **summary,
        "checks": checks,
        "stats": stats,
    }
    if not summary["passed"]:
        failed_path = Path(report_path).with_name("report.failed.json")
        write_json(failed_path, report)
        raise Stage0GateError(
            gate_message(source, checks, summary["failed"], len(texts)) + f"\nThe full report: {failed_path}"
        )
    Path(report_path).with_name("report.failed.json").unlink(missing_ok=True)
    plot_stage0(source, stats, tasks, _heatmap(outputs, tasks, applied), plot_path)
    write_json(report_path, report)
    log.info(
        "Stage 0 %s: %d checks on %d documents, all passed or accepted (%d accepted)",
        source,
        len(checks),
        len(texts),
        len(summary["accepted"]),
    )
    return report
