"""The headline table, built only from the per-(arm, stage, benchmark) result files.

Result rows copy each file's metric value, interval and n verbatim: the table never re-scores
anything. Delta rows (every other arm minus the control arm, per stage, benchmark and metric)
are computed from the per-example scores stored in the same files, paired by example id, with
the bootstrap settings recorded in the files.

No silent partial table: when a result of another arm has no control counterpart, when the two
were scored on different examples (ids or n), or when a metric is on one side only, building
the table fails with one error that lists every such problem by arm, stage, benchmark and metric.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from trellis.core.bootstrap import paired_delta_ci
from trellis.core.io import atomic_path, read_json

log = logging.getLogger(__name__)

COLUMNS = ["kind", "arm", "control", "stage", "benchmark", "metric", "value", "ci_low", "ci_high", "n"]
_REQUIRED = ("arm", "stage", "benchmark", "n", "metrics", "examples", "bootstrap")
_STAGE_ORDER = {"base": 0, "sft": 1, "dpo": 2}


def load_result(path: str | os.PathLike) -> dict:
    """A result file, checked for the keys the tables use (errors name the file and key)."""
    try:
        result = read_json(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"result file not found: {path}") from None
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    for key in _REQUIRED:
        if key not in result:
            raise KeyError(f"{path}: result lacks key {key!r}")
    for name, m in result["metrics"].items():
        for key in ("value", "ci_low", "ci_high"):
            if key not in m:
                raise KeyError(f"{path}: metrics[{name!r}] lacks key {key!r}")
    seen = set()
    for i, ex in enumerate(result["examples"]):
        if "id" not in ex or "scores" not in ex:
            raise KeyError(f"{path}: examples[{i}] lacks 'id' or 'scores'")
        if ex["id"] in seen:
            # Deltas pair the arms' examples by id: an id must name one example.
            raise ValueError(f"{path}: examples[{i}] repeats the example id {ex['id']!r}")
        seen.add(ex["id"])
    return result


class IncomparableResults(ValueError):
    """The result files cannot be compared as the delta rows need; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            f"cannot build the headline table: {len(self.problems)} problem(s) with the result files\n"
            + "\n".join(f"  - {p}" for p in self.problems)
        )


def _names(items: Iterable[str], limit: int | None = 5) -> str:
    """'a', 'b', … (3 more): at most ``limit`` names (None: all)."""
    items = list(items)
    if limit is None or len(items) <= limit:
        return ", ".join(repr(i) for i in items)
    return ", ".join(repr(i) for i in items[:limit]) + f", … ({len(items) - limit} more)"


def _pair_problems(
    stage: str,
    benchmark: str,
    arm: str,
    path: str,
    r: dict,
    control_arm: str,
    control_path: str,
    control: dict,
) -> list[str]:
    """Why ``r`` (arm) cannot be paired with ``control`` at this stage and benchmark ([] when it can)."""
    where = f"stage {stage!r}, benchmark {benchmark!r}"
    problems = []
    metrics, control_metrics = list(r["metrics"]), list(control["metrics"])
    for metric in metrics:
        if metric not in control["metrics"]:
            problems.append(
                f"{where}, metric {metric!r}: in arm {arm!r} ({path}) but not in the control arm "
                f"{control_arm!r} ({control_path})"
            )
    for metric in control_metrics:
        if metric not in r["metrics"]:
            problems.append(
                f"{where}, metric {metric!r}: in the control arm {control_arm!r} ({control_path}) but not "
                f"in arm {arm!r} ({path})"
            )
    shared = [m for m in metrics if m in control["metrics"]]
    ids = [ex["id"] for ex in r["examples"]]
    control_ids = [ex["id"] for ex in control["examples"]]
    id_set, control_id_set = set(ids), set(control_ids)
    only = [i for i in ids if i not in control_id_set]
    control_only = [i for i in control_ids if i not in id_set]
    if only or control_only or r["n"] != control["n"]:
        detail = [f"n {r['n']} vs {control['n']}"]
        if only:
            detail.append(f"{len(only)} example id(s) only in {arm!r}: {_names(only)}")
        if control_only:
            detail.append(f"{len(control_only)} only in {control_arm!r}: {_names(control_only)}")
        if not only and not control_only:
            detail.append("the same example ids")
        problems.append(
            f"{where}, metric(s) {_names(shared, None)}: arm {arm!r} ({path}) and the control arm "
            f"{control_arm!r} ({control_path}) were scored on different example sets ({'; '.join(detail)})"
        )
        return problems
    # A metric may be a mean over part of the examples only (a BFCL summary metric covers its
    # section's categories): both arms must score it on the same examples.
    for metric in shared:
        scored = [ex["id"] for ex in r["examples"] if metric in ex["scores"]]
        control_scored = {ex["id"] for ex in control["examples"] if metric in ex["scores"]}
        if set(scored) != control_scored:
            problems.append(
                f"{where}, metric {metric!r}: scored per example on {len(scored)} examples of arm {arm!r} "
                f"({path}) but {len(control_scored)} of the control arm {control_arm!r} ({control_path}); "
                f"they differ on {_names(sorted(set(scored) ^ control_scored))}"
            )
    return problems


def _check_comparable(
    by_key: dict[tuple[str, str], dict[str, tuple[str, dict]]], control_arm: str, require_control: bool
) -> None:
    """Raise ``IncomparableResults`` listing every reason a delta row would be missing or unpaired.

    An arm other than the control may lack a (stage, benchmark) (a baseline not evaluated at a
    stage): it has no row there, and no delta. The control arm may not: every result of another
    arm needs its control counterpart, on the same examples and with the same metrics. A control
    arm with no result at all gives a table without deltas (unless ``require_control``).
    """
    control_seen = any(control_arm in arms for arms in by_key.values())
    if not control_seen and require_control and by_key:
        arms = sorted({arm for arms in by_key.values() for arm in arms})
        raise IncomparableResults(
            [
                f"the control arm {control_arm!r} has no result at all (arms with results: "
                f"{_names(arms, None)}): no stage, benchmark or metric would have a delta"
            ]
        )
    problems = []
    for (stage, benchmark), arms in by_key.items():
        if control_arm not in arms:
            if control_seen:
                for arm, (path, r) in arms.items():
                    problems.append(
                        f"stage {stage!r}, benchmark {benchmark!r}, metric(s) {_names(r['metrics'], None)}: "
                        f"the control arm {control_arm!r} has no result "
                        f"(eval/{control_arm}/{stage}/{benchmark}.json) to compare arm {arm!r} ({path}) with"
                    )
            continue
        control_path, control = arms[control_arm]
        for arm, (path, r) in arms.items():
            if arm != control_arm:
                problems += _pair_problems(stage, benchmark, arm, path, r, control_arm, control_path, control)
    if problems:
        raise IncomparableResults(problems)
    if not control_seen:
        log.warning("the control arm %r has no result files: the table has no delta rows", control_arm)


def _deltas(results: list[tuple[str, dict]], control_arm: str, require_control: bool = False) -> list[dict]:
    rows = []
    by_key: dict[tuple[str, str], dict[str, tuple[str, dict]]] = {}
    for path, r in results:
        by_key.setdefault((r["stage"], r["benchmark"]), {})[r["arm"]] = (path, r)
    _check_comparable(by_key, control_arm, require_control)
    for (stage, benchmark), arms in by_key.items():
        if control_arm not in arms:
            continue
        control = arms[control_arm][1]
        control_scores = {ex["id"]: ex["scores"] for ex in control["examples"]}
        for arm, (_, r) in arms.items():
            if arm == control_arm:
                continue
            scores = {ex["id"]: ex["scores"] for ex in r["examples"]}
            weights = {ex["id"]: ex["weights"] for ex in r["examples"] if "weights" in ex}
            # The same example ids on both sides (checked above), in this arm's order.
            ids = list(scores)
            boot = r["bootstrap"]
            for metric in r["metrics"]:
                # A metric may be a mean over part of the examples only (a BFCL summary metric
                # covers its section's categories), and a weighted one.
                metric_ids = [i for i in ids if metric in scores[i]]
                a = [scores[i][metric] for i in metric_ids]
                b = [control_scores[i][metric] for i in metric_ids]
                w = [weights[i][metric] for i in metric_ids] if weights else None
                mean, low, high = paired_delta_ci(
                    a,
                    b,
                    int(boot.get("resamples", 1000)),
                    float(boot.get("confidence", 0.95)),
                    int(boot.get("seed", 0)),
                    weights=w,
                )
                rows.append(
                    {
                        "kind": "delta",
                        "arm": arm,
                        "control": control_arm,
                        "stage": stage,
                        "benchmark": benchmark,
                        "metric": metric,
                        "value": mean,
                        "ci_low": low,
                        "ci_high": high,
                        "n": len(metric_ids),
                    }
                )
    return rows


def headline_table(
    result_paths: Iterable[str | os.PathLike], control_arm: str = "uncurated", require_control: bool = False
) -> pd.DataFrame:
    """Rows arm × stage × benchmark × metric (kind "result"), then arm-minus-control deltas
    (kind "delta") for every other arm's result: one per metric, paired by example id.

    Raises ``IncomparableResults``, listing every problem at once, when a result has no control
    counterpart, when the two were scored on different examples (ids or n), or when a metric is
    on one side only; see ``_check_comparable``. A control arm without any result gives a table
    of result rows only, or an error with ``require_control``.
    """
    results = [(str(p), load_result(p)) for p in result_paths]
    seen: dict[tuple[str, str, str], str] = {}
    rows = []
    for path, r in results:
        key = (r["arm"], r["stage"], r["benchmark"])
        if key in seen:
            raise ValueError(f"{path} and {seen[key]} are both results for arm/stage/benchmark {key}")
        seen[key] = path
        for metric, m in r["metrics"].items():
            rows.append(
                {
                    "kind": "result",
                    "arm": r["arm"],
                    "control": None,
                    "stage": r["stage"],
                    "benchmark": r["benchmark"],
                    "metric": metric,
                    "value": m["value"],
                    "ci_low": m["ci_low"],
                    "ci_high": m["ci_high"],
                    "n": r["n"],
                }
            )
    rows.extend(_deltas(results, control_arm, require_control))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        return df
    order = df.assign(
        _k=(df["kind"] != "result").astype(int), _s=df["stage"].map(_STAGE_ORDER).fillna(len(_STAGE_ORDER))
    ).sort_values(["_k", "benchmark", "metric", "_s", "stage", "arm"], kind="stable")
    df = order.drop(columns=["_k", "_s"]).reset_index(drop=True)
    df["n"] = df["n"].astype(int)
    return df


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return ""
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


def _markdown(df: pd.DataFrame, columns: list[str]) -> str:
    header = "| " + " | ".join(columns) + " |"
    rule = (
        "|" + "|".join("---:" if c in ("value", "ci_low", "ci_high", "n") else "---" for c in columns) + "|"
    )
    lines = [header, rule]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def to_markdown(df: pd.DataFrame, control_arm: str) -> str:
    results = df[df["kind"] == "result"]
    deltas = df[df["kind"] == "delta"]
    parts = [
        "# Headline results",
        "",
        "Metric values with percentile-bootstrap confidence intervals, one row per arm, stage, "
        "benchmark and metric; copied from the result files.",
        "",
        _markdown(results, ["arm", "stage", "benchmark", "metric", "value", "ci_low", "ci_high", "n"]),
        "",
    ]
    parts += [f"## Arm minus control ({control_arm})", ""]
    if deltas.empty:
        parts += [
            f"No deltas: no other arm shares a stage and benchmark with the control arm {control_arm!r}.",
            "",
        ]
    else:
        parts += [
            "Paired bootstrap over the examples both arms were scored on.",
            "",
            _markdown(
                deltas, ["arm", "control", "stage", "benchmark", "metric", "value", "ci_low", "ci_high", "n"]
            ),
            "",
        ]
    return "\n".join(parts)


def write_tables(
    result_paths: Iterable[str | os.PathLike],
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    control_arm: str = "uncurated",
    require_control: bool = False,
) -> pd.DataFrame:
    """Write the headline table as CSV and Markdown; return it (nothing is written on an error)."""
    df = headline_table(list(result_paths), control_arm, require_control)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(to_markdown(df, control_arm))
    return df
