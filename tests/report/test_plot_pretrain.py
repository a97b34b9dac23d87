"""Pretraining curves: metrics.csv series per arm, the summary figures, the PNG."""

from __future__ import annotations

import pytest

from trellis.report.plot_pretrain import plot_pretraining, read_curve, summarize

HEADER = "iter,step,loss,time,total_tokens,val_loss,tokens_per_sec,mfu\n"


def write_metrics(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_series_place_validation_at_the_last_logged_tokens(tmp_path):
    path = write_metrics(
        tmp_path / "a" / "metrics.csv",
        [
            (2, 1, 5.0, 1.0, 1000, "", 1000.0, ""),
            (4, 3, 4.0, 2.0, 2000, "", 1000.0, ""),
            ("", 3, "", "", "", 4.5, "", ""),  # LitGPT's validation row after step 3
            (6, 5, 3.0, 4.0, 3000, "", 500.0, ""),
        ],
    )
    series = read_curve(path)
    assert series["loss"] == [(1000, 5.0), (2000, 4.0), (3000, 3.0)]
    assert series["val_loss"] == [(2000, 4.5)]
    assert summarize(series) == {
        "tokens": 3000,
        "final_loss": 3.0,
        "final_val_loss": 4.5,
        "median_tokens_per_sec": 1000.0,
        "median_mfu": None,
    }


def test_plot_writes_a_png_for_every_arm(tmp_path):
    metrics = {
        arm: write_metrics(
            tmp_path / arm / "metrics.csv",
            [(2, 1, 5.0 + k, 1.0, 1000, "", 900.0, 0.41), (4, 3, 4.0 + k, 2.0, 2000, 4.2, 950.0, 0.43)],
        )
        for k, arm in enumerate(["curated", "uncurated"])
    }
    out = tmp_path / "plots" / "pretrain_loss.png"
    summary = plot_pretraining(metrics, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(summary) == ["curated", "uncurated"]
    assert summary["uncurated"]["final_loss"] == 5.0 and summary["curated"]["median_mfu"] == pytest.approx(
        0.42
    )
    assert not list(out.parent.glob(".*tmp*"))


def test_bad_metrics_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        read_curve(tmp_path / "missing" / "metrics.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("iter,step,loss\n1,0,2.0\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_curve(bad)
    broken = write_metrics(tmp_path / "broken.csv", [(2, 1, "nan?", 1.0, 1000, "", "", "")])
    with pytest.raises(ValueError, match="line 2"):
        read_curve(broken)
    empty = write_metrics(tmp_path / "empty.csv", [("", 3, "", "", "", 4.5, "", "")])
    with pytest.raises(ValueError, match="no training loss"):
        read_curve(empty)
