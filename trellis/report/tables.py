"""The headline table, built only from the per-(arm, stage, benchmark) result files.

Result rows copy each file's metric value, interval and n verbatim: the table never re-scores
anything. Delta rows (every other arm minus the control arm, per stage, benchmark and metric)
are computed from the per-example scores stored in the same files, paired by example id, with
the bootstrap settings recorded in the files.
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
    for i, ex in enumerate(result["examples"]):
        if "id" not in ex or "scores" not in ex:
            raise KeyError(f"{path}: examples[{i}] lacks 'id' or 'scores'")
    return result


def _deltas(results: list[tuple[str, dict]], control_arm: str) -> list[dict]:
    rows = []
    by_key: dict[tuple[str, str], dict[str, tuple[str, dict]]] = {}
    for path, r in results:
        by_key.setdefault((r["stage"], r["benchmark"]), {})[r["arm"]] = (path, r)
    for (stage, benchmark), arms in by_key.items():
        if control_arm not in arms:
            continue
        control_path, control = arms[control_arm]
        control_scores = {ex["id"]: ex["scores"] for ex in control["examples"]}
        for arm, (path, r) in arms.items():
            if arm == control_arm:
                continue
            scores = {ex["id"]: ex["scores"] for ex in r["examples"]}
            weights = {ex["id"]: ex["weights"] for ex in r["examples"] if "weights" in ex}
            ids = [i for i in scores if i in control_scores]
            if len(ids) != len(scores) or len(ids) != len(control_scores):
                log.warning(
                    "%s and %s share %d of %d/%d examples; the delta uses the shared ones",
                    path,
                    control_path,
                    len(ids),
                    len(scores),
                    len(control_scores),
                )
            if not ids:
                raise ValueError(f"{path} and {control_path} have no example ids in common; cannot pair them")
            boot = r["bootstrap"]
            for metric in r["metrics"]:
                if metric not in control["metrics"]:
                    continue
                # A metric may be a mean over part of the examples only (a BFCL summary metric
                # covers its section's categories), and a weighted one.
                metric_ids = [i for i in ids if metric in scores[i]]
                if any(metric not in control_scores[i] for i in metric_ids):
                    raise KeyError(
                        f"{control_path}: an example lacks the per-example score {metric!r} that {path} has"
                    )
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


def headline_table(result_paths: Iterable[str | os.PathLike], control_arm: str = "uncurated") -> pd.DataFrame:
    """Rows arm × stage × benchmark × metric (kind "result"), then arm-minus-control deltas
    (kind "delta") wherever the control arm has a result for the same stage and benchmark."""
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
    rows.extend(_deltas(results, control_arm))
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
) -> pd.DataFrame:
    """Write the headline table as CSV and Markdown; return it."""
    df = headline_table(list(result_paths), control_arm)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(to_markdown(df, control_arm))
    return df
