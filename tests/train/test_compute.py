"""Compute accounting: FLOPs per token against PyTorch's FLOP counter, MFU, the plan table."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from trellis.train import compute
from trellis.train.baselines import PYTHIA_ARCHITECTURES, pythia_tokens_seen, resolve_revision

ROOT = Path(__file__).resolve().parents[2]
STUDY = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TINY = {
    "n_layer": 2,
    "n_embd": 64,
    "n_head": 4,
    "n_query_groups": 2,
    "intermediate_size": 160,
    "rope_base": 10000,
    "norm_eps": 1e-5,
    "padded_vocab_size": 512,
}


def measured_flops_per_token(model_section: dict, seq_len: int) -> float:
    """FLOPs of one training step (forward + backward) per token, counted by torch's FlopCounterMode."""
    from lightning.fabric.utilities.throughput import measure_flops
    from litgpt.model import GPT
    from litgpt.utils import chunked_cross_entropy

    from trellis.train.pretrain import litgpt_config

    with torch.device("meta"):  # shapes only: the 506M model costs no memory here
        model = GPT(litgpt_config(model_section, seq_len + 1, name="trellis-flops"))
        model.max_seq_length = seq_len
        x = torch.randint(0, 1, (1, seq_len))
        flops = measure_flops(model, lambda: model(x), lambda y: chunked_cross_entropy(y, x, chunk_size=0))
    return flops / seq_len


@pytest.mark.parametrize("section,seq_len", [(TINY, 32), (STUDY["model"], 2047)], ids=["tiny", "study-506m"])
def test_flops_formula_equals_pytorch_flop_counter(section, seq_len):
    # 6N + 12·L·H·Q·T is exactly what PyTorch counts for LitGPT's forward and backward matmuls.
    assert compute.model_flops_per_token(section, seq_len) == measured_flops_per_token(section, seq_len)


def test_study_figures():
    model = STUDY["model"]
    assert compute.parameter_count(model) == 506_328_320
    assert compute.matmul_parameters(model) == 506_328_320 - 50304 * 1280 - (2 * 24 + 1) * 1280
    per_token = compute.model_flops_per_token(model, 2047)
    assert per_token == 6 * 441_876_480 + 12 * 24 * 1280 * 2047
    schedule = compute.pretrain_schedule(STUDY["pretrain"], STUDY["mix"]["context_length"])
    assert schedule["gradient_accumulation"] == 16 and schedule["tokens_per_step"] == 64 * 2047
    assert schedule["iterations"] == 20_000_000_000 // (4 * 2047)
    assert schedule["optimizer_steps"] == schedule["iterations"] // 16
    assert 0 <= 20e9 - schedule["tokens"] < 4 * 2047


def test_schedule_matches_what_litgpt_ran():
    # tests/train/test_pretrain.py's tiny run: 8 iterations of micro batch 4, accumulation 2, 4 steps.
    cfg = {
        "max_tokens": 8 * 4 * 31,
        "micro_batch_size": 4,
        "global_batch_size": 8,
        "devices": 1,
        "num_nodes": 1,
    }
    assert compute.pretrain_schedule(cfg, 32) == {
        "world_size": 1,
        "seq_len": 31,
        "iterations": 8,
        "optimizer_steps": 4,
        "gradient_accumulation": 2,
        "tokens_per_step": 8 * 31,
        "tokens": 8 * 4 * 31,
    }
    two_gpus = dict(cfg, devices=2, global_batch_size=16, max_tokens=2 * 8 * 4 * 31)
    assert compute.pretrain_schedule(two_gpus, 32)["iterations"] == 8  # per device


def test_peak_lookup_by_device_name():
    assert compute.peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
    assert compute.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert compute.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert compute.peak_flops("NVIDIA L40S") == 362.05e12  # not the L4
    assert compute.peak_flops("NVIDIA L4") == 121e12
    assert compute.peak_flops("NVIDIA GeForce RTX 4090") == 165.2e12
    assert compute.peak_flops("NVIDIA H200") == 989.4e12
    with pytest.raises(KeyError, match="peak_tflops"):
        compute.peak_flops("Imaginary GPU 9000")
    assert compute.accelerator_peak({"name": "anything", "peak_tflops": 100}) == 100e12


def test_mfu_and_the_model_cards_throughput_estimate():
    per_token = compute.model_flops_per_token(STUDY["model"], 2047)
    assert compute.mfu(1000.0, 2.0, 4000.0) == 0.5
    # The model card expects 45-55k tokens/s on one RTX 4090: that is more model FLOPs than the
    # card's dense bf16 peak, i.e. not reachable (README: Compute).
    assert compute.mfu(45_000, per_token, compute.peak_flops("RTX 4090")) > 0.9
    assert compute.mfu(55_000, per_token, compute.peak_flops("RTX 4090")) > 1.0
    with pytest.raises(ValueError):
        compute.mfu(1.0, 1.0, 0.0)


def test_pythia_architectures_match_transformers():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    for repo in ("EleutherAI/pythia-410m-deduped", "EleutherAI/pythia-1b-deduped"):
        arch = PYTHIA_ARCHITECTURES[repo]
        config = GPTNeoXConfig(
            vocab_size=arch["vocab_size"],
            hidden_size=arch["n_embd"],
            num_hidden_layers=arch["n_layer"],
            num_attention_heads=arch["n_head"],
            intermediate_size=4 * arch["n_embd"],
            tie_word_embeddings=False,
        )
        with torch.device("meta"):
            model = GPTNeoXForCausalLM(config)
        assert sum(p.numel() for p in model.parameters()) == arch["parameters"], repo
        norms = sum(
            p.numel() for n, p in model.named_parameters() if "layernorm" in n or "final_layer_norm" in n
        )
        assert norms == arch["norm_parameters"]
    # the Pythia paper's published counts
    assert PYTHIA_ARCHITECTURES["EleutherAI/pythia-410m-deduped"]["parameters"] == 405_334_016
    assert PYTHIA_ARCHITECTURES["EleutherAI/pythia-1b-deduped"]["parameters"] == 1_011_781_632


def test_baseline_revisions_resolve_from_the_token_budget():
    assert resolve_revision("compute-matched", 20_000_000_000) == "step10000"  # 9,536.7 steps
    assert resolve_revision("compute-matched", 5_000_000_000) == "step2000"  # 2,384 steps
    assert resolve_revision("final", 20_000_000_000) == "step143000"
    assert resolve_revision("step33000", 20_000_000_000) == "step33000"
    assert pythia_tokens_seen("step10000") == 10000 * 2_097_152
    assert pythia_tokens_seen("main") == 143000 * 2_097_152
    with pytest.raises(ValueError, match="step"):
        pythia_tokens_seen("v1.0")


def test_compute_plan_of_the_study():
    rows = {r["arm"]: r for r in compute.compute_plan(STUDY)}
    assert list(rows) == list(STUDY["arms"])
    assert all(list(r) == list(compute.PLAN_COLUMNS) for r in rows.values())
    curated, uncurated = rows["curated"], rows["uncurated"]
    assert curated["parameters"] == 506_328_320
    # the controlled ablation: identical compute
    assert {k: v for k, v in curated.items() if k != "arm"} == {
        k: v for k, v in uncurated.items() if k != "arm"
    }
    tokens = compute.pretrain_schedule(STUDY["pretrain"], 2048)["tokens"]
    assert curated["pretrain_tokens"] == tokens
    assert curated["pretrain_flops"] == tokens * compute.model_flops_per_token(STUDY["model"], 2047)
    acc = STUDY["resources"]["accelerator"]
    throughput = compute.accelerator_peak(acc) * acc["mfu"]
    assert curated["gpu_hours"] == pytest.approx(curated["total_flops"] / throughput / 3600)
    assert curated["cost_usd"] == pytest.approx(curated["gpu_hours"] * acc["usd_per_gpu_hour"])
    assert 100 < curated["gpu_hours"] < 200  # ~6.9e19 FLOPs at 45% of an A100: ~137 hours

    matched, final = rows["pythia-410m-matched"], rows["pythia-410m-final"]
    assert matched["pretrain_flops"] == 0 and matched["pretrain_tokens"] == 10000 * 2_097_152
    assert final["pretrain_tokens"] == 143000 * 2_097_152
    assert matched["parameters"] == 405_334_016 and rows["pythia-1b-final"]["parameters"] == 1_011_781_632
    # post-training costs scale with the model: the 1B pays ~2.5x the 410M for the same data
    assert rows["pythia-1b-final"]["sft_flops"] > 2 * matched["sft_flops"]
    assert matched["sft_flops"] < curated["sft_flops"]


def test_compute_plan_uses_measured_posttrain_tokens():
    manifest = {
        "sft": {"tokens": 1_000_000, "mean_tokens": 250.0},
        "dpo": {"tokens": 400_000, "mean_tokens": 200.0},
    }
    bound = {r["arm"]: r for r in compute.compute_plan(DEMO)}["curated"]
    measured = {r["arm"]: r for r in compute.compute_plan(DEMO, manifest)}["curated"]
    model, epochs = DEMO["model"], DEMO["posttrain"]["sft"]["epochs"]
    assert measured["sft_flops"] == 1_000_000 * epochs * compute.model_flops_per_token(model, 250)
    per_token_dpo = compute.model_flops_per_token(model, 200) * 4 / 3  # policy train + reference forward
    assert measured["dpo_flops"] == pytest.approx(
        400_000 * DEMO["posttrain"]["dpo"]["epochs"] * per_token_dpo
    )
    assert "measured" in measured["note"] and "upper bound" in bound["note"]


def test_compute_plan_names_an_unknown_baseline():
    config = copy.deepcopy(STUDY)
    config["arms"]["other"] = {"kind": "baseline", "repo": "someone/model", "revision": "main"}
    with pytest.raises(KeyError, match="arms.other"):
        compute.compute_plan(config)
