"""The plan: from the config alone, the mix, the model's size and FLOPs, cost per arm, downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trellis.report import plan
from trellis.train import compute

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_study_plan_matches_the_model_card():
    p = plan.build_plan(load("study.yaml"))
    # The model card's parameter count, and the LitGPT model's (tests/train/test_pretrain.py builds it).
    assert p["model"]["parameters"] == 506_328_320
    assert p["mix"]["total_tokens"] == 20_000_000_000
    assert sum(r["share"] for r in p["mix"]["components"]) == pytest.approx(1.0)
    arms = {r["arm"]: r for r in p["compute"]}
    assert arms["curated"]["total_flops"] == arms["uncurated"]["total_flops"] > 6e19
    # 6·N·D dominates: the pretraining FLOPs are 6 × matmul weights × tokens plus attention.
    tokens = arms["curated"]["pretrain_tokens"]
    assert arms["curated"]["pretrain_flops"] == pytest.approx(
        tokens * compute.training_flops_per_token(p["model"]["matmul_parameters"], 24, 1280, 2047)
    )
    assert arms["pythia-410m-matched"]["pretrain_flops"] == 0  # pretrained elsewhere
    what = {d["what"]: d for d in p["downloads"]}
    assert {f"source {s}" for s in load("study.yaml")["sources"]} <= set(what)
    assert what["baseline arm pythia-410m-matched"]["revision"] == "step10000"
    assert what["lm-eval task mmlu"]["repo"] == "cais/mmlu"
    assert "benchmark MBPP" in what


def test_demo_downloads_nothing_and_markdown_reads(tmp_path):
    config = load("config.yaml")
    written = plan.write_plan(config, tmp_path / "plan.md", tmp_path / "plan.json")
    assert written["downloads"] == []
    md = (tmp_path / "plan.md").read_text()
    assert f"parameters: **{compute.parameter_count(config['model']):,}**" in md
    assert "Nothing: every input is generated" in md
    for component in config["mix"]["components"]:
        assert f"| {component} |" in md
    # Changing a budget changes the plan: it is computed, not stored.
    config["mix"]["components"]["wikipedia"]["tokens"] *= 3
    assert plan.build_plan(config)["mix"]["total_tokens"] > written["mix"]["total_tokens"]


def test_cli_prints_the_study_plan(capsys):
    assert plan.main(["--configfile", str(ROOT / "config/study.yaml")]) == 0
    out = capsys.readouterr().out
    assert "506,328,320" in out and "GPU-hours" in out
