"""The curated-minus-control plot: drawn from the headline table's delta rows only."""

from __future__ import annotations

import pandas as pd
import pytest

from trellis.report.plot_deltas import plot_deltas
from trellis.report.tables import COLUMNS


def headline(tmp_path, rows):
    path = tmp_path / "headline.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def row(kind, arm, stage, benchmark, value, low, high):
    return {
        "kind": kind,
        "arm": arm,
        "control": "uncurated" if kind == "delta" else None,
        "stage": stage,
        "benchmark": benchmark,
        "metric": "accuracy",
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "n": 10,
    }


def test_plots_every_delta_row_and_nothing_else(tmp_path):
    from PIL import Image

    rows = [
        row("result", "curated", "sft", "bfcl_simple", 0.5, 0.4, 0.6),
        row("delta", "curated", "base", "bfcl_simple", 0.1, 0.05, 0.15),
        row("delta", "curated", "sft", "bfcl_simple", -0.1, -0.2, 0.01),
        row("delta", "curated", "dpo", "humaneval", 0.0, 0.0, 0.0),
    ]
    out = tmp_path / "deltas.png"
    assert plot_deltas(headline(tmp_path, rows), out) == 3
    image = Image.open(out)
    assert image.format == "PNG" and image.width > 600 and len(set(image.getdata())) > 10


def test_no_delta_rows_or_no_headline_is_an_error(tmp_path):
    only_results = headline(tmp_path, [row("result", "curated", "sft", "bfcl_simple", 0.5, 0.4, 0.6)])
    with pytest.raises(ValueError, match="no delta rows"):
        plot_deltas(only_results, tmp_path / "x.png")
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1]}).to_csv(other, index=False)
    with pytest.raises(KeyError, match="not a headline table"):
        plot_deltas(other, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
