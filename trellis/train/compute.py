"""Compute accounting: training FLOPs per token, model FLOPs utilization (MFU), the compute plan.

The FLOPs formula (model FLOPs, as PaLM's MFU counts them; Chowdhery et al. 2022, Appendix B)
----------------------------------------------------------------------------------------------
One training token of a decoder-only transformer costs

    6 · N  +  12 · L · H · Q · T

- ``N``: the weights that take part in a matrix multiplication: every parameter except the input
  embedding table (a lookup, no multiply) and the norm gains (elementwise). Each such weight
  costs one multiply-add (2 FLOPs) in the forward pass and two in the backward pass (gradient
  with respect to the input and to the weight): 6 FLOPs per weight per token. The LM head is a
  matmul and counts.
- ``12·L·H·Q·T``: attention scores (Q·Kᵀ) and the weighted sum of values, per layer ``L``, head
  ``H`` of size ``Q``, over a sequence of ``T`` positions: 2·2·H·Q·T FLOPs forward per token,
  times 3 for forward + backward. Counted over the full T×T matrix as PaLM does (a causal kernel
  skips half of it, so this slightly flatters MFU, the same way for every run compared).

Activation (gradient) checkpointing recomputes the forward pass during backward; that work is
*hardware* FLOPs, not model FLOPs, so it is deliberately not counted: MFU then says how much of the
device's peak went into useful training, and turning checkpointing on shows up as a lower MFU.

For the study's 506M model (N = 441,876,480 matmul weights of 506,328,320, L=24, H·Q=1280,
T=2047 trained positions per 2048-token sequence) this is 3.41 GFLOPs per token, 6.8e19 FLOPs
for 20B tokens.

MFU = tokens/s × FLOPs per token / peak FLOP/s of the device (dense bf16 tensor-core peak).

DPO costs more per token than SFT: the frozen reference model runs a forward pass on every
chosen and rejected sequence as well (2·N + 4·L·H·Q·T per token on top of the policy's
6·N + 12·L·H·Q·T).
"""

from __future__ import annotations

from typing import Any

from trellis.train.baselines import PYTHIA_ARCHITECTURES, pythia_tokens_seen, resolve_revision

# Dense (no sparsity) bf16 tensor-core peak FLOP/s per GPU, from the vendors' datasheets.
# Lightning's table (lightning.fabric.utilities.throughput) is not used: it lists the H200's
# sparse figure and, for the RTX 4090, the non-tensor FP32 rate (82.6 TFLOP/s) instead of the
# bf16 tensor rate, which would inflate or deflate MFU by 2x.
PEAK_BF16_FLOPS: dict[str, float] = {
    "a100": 312e12,
    "h100 sxm": 989.4e12,
    "h100 pcie": 756e12,
    "h100 nvl": 835e12,
    "h200": 989.4e12,
    "l40s": 362.05e12,
    "l4": 121e12,
    "rtx 4090": 165.2e12,  # Ada whitepaper: bf16 tensor with fp32 accumulate, dense
}

PLAN_COLUMNS = (
    "arm",
    "kind",
    "parameters",
    "pretrain_tokens",
    "pretrain_flops",
    "sft_flops",
    "dpo_flops",
    "total_flops",
    "gpu_hours",
    "cost_usd",
    "note",
)


# ------------------------------------------------------------------------------ FLOPs per token


MODEL_KEYS = (
    "n_layer",
    "n_embd",
    "n_head",
    "n_query_groups",
    "intermediate_size",
    "rope_base",
    "norm_eps",
    "padded_vocab_size",
)


def parameter_count(model: dict) -> int:
    """Parameters of our LLaMA-style model, analytically (untied embeddings, no biases).

    embeddings + n_layer × (2 RMSNorm + fused qkv + out proj + SwiGLU fc_1/fc_2/proj) + final
    RMSNorm + lm_head; RoPE has no weights. tests/train/test_pretrain.py checks it against LitGPT's
    model built on the meta device (study config: 506,328,320, the model card's count).
    """
    missing = [k for k in MODEL_KEYS if k not in model]
    if missing:
        raise KeyError(f"config section 'model' is missing key(s) {missing}")
    d, v, i = int(model["n_embd"]), int(model["padded_vocab_size"]), int(model["intermediate_size"])
    n_head, groups = int(model["n_head"]), int(model["n_query_groups"])
    head = d // n_head
    qkv = d * (n_head + 2 * groups) * head
    proj = n_head * head * d
    mlp = 3 * d * i
    norms = 2 * d
    per_layer = qkv + proj + mlp + norms
    return v * d + int(model["n_layer"]) * per_layer + d + v * d


def matmul_parameters(model: dict) -> int:
    """Weights of our LLaMA-style model that enter a matmul (all but input embeddings and norms)."""
    d, vocab, layers = int(model["n_embd"]), int(model["padded_vocab_size"]), int(model["n_layer"])
    norms = 2 * d * layers + d  # two RMSNorm gains per block and the final one
    return parameter_count(model) - vocab * d - norms


def training_flops_per_token(matmul_params: int, n_layer: int, attention_dim: int, seq_len: int) -> float:
    """Model FLOPs of one trained token: 6·N + 12·L·(H·Q)·T (see the module docstring)."""
    if min(matmul_params, n_layer, attention_dim, seq_len) <= 0:
        raise ValueError("matmul_params, n_layer, attention_dim and seq_len must be positive")
    return 6.0 * matmul_params + 12.0 * n_layer * attention_dim * seq_len


def forward_flops_per_token(matmul_params: int, n_layer: int, attention_dim: int, seq_len: int) -> float:
    """A forward pass only (a frozen reference model): a third of the training cost."""
    return training_flops_per_token(matmul_params, n_layer, attention_dim, seq_len) / 3.0


def model_flops_per_token(model: dict, seq_len: int) -> float:
    """Training FLOPs per token of our model section at ``seq_len`` trained positions."""
    attention_dim = int(model["n_embd"])  # n_head × head_size, head_size = n_embd / n_head
    return training_flops_per_token(matmul_parameters(model), int(model["n_layer"]), attention_dim, seq_len)


def mfu(tokens_per_second: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilization: the share of the device's peak that went into model FLOPs."""
    if peak_flops <= 0:
        raise ValueError(f"peak FLOP/s must be positive, got {peak_flops}")
    return tokens_per_second * flops_per_token / peak_flops


# -------------------------------------------------------------------------------- device peaks


def peak_flops(name: str) -> float:
    """The dense bf16 peak of a GPU by name ("A100", "NVIDIA H100 80GB HBM3", "rtx 4090", ...)."""
    chip = name.lower().replace("nvidia", "").replace("geforce", "").strip()
    if "h100" in chip:
        chip = "h100 pcie" if "pcie" in chip else "h100 nvl" if "nvl" in chip else "h100 sxm"
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):  # "l40s" before "l4"
        if key in chip:
            return PEAK_BF16_FLOPS[key]
    raise KeyError(
        f"no peak FLOP/s known for GPU {name!r}; known: {sorted(PEAK_BF16_FLOPS)} "
        "(give the peak explicitly: resources.accelerator.peak_tflops or --peak-tflops)"
    )


def accelerator_peak(accelerator: dict) -> float:
    """Peak FLOP/s of the configured accelerator: its ``peak_tflops`` if set, else by ``name``."""
    if accelerator.get("peak_tflops") is not None:
        return float(accelerator["peak_tflops"]) * 1e12
    return peak_flops(str(accelerator["name"]))


# --------------------------------------------------------------------------------- the schedule


def pretrain_schedule(pretrain: dict, context_length: int) -> dict[str, int]:
    """Iterations, optimizer steps and trained tokens exactly as LitGPT's loop counts them.

    Each TKDS sequence of ``context_length`` tokens trains ``context_length - 1`` positions
    (trellis.train.pretrain); LitGPT runs ``max_tokens // world // tokens_per_iteration`` iterations
    per device and steps the optimizer every ``global_batch / (micro_batch · world)`` of them.
    """
    world = int(pretrain["devices"]) * int(pretrain["num_nodes"])
    micro, global_bs = int(pretrain["micro_batch_size"]), int(pretrain["global_batch_size"])
    seq = int(context_length) - 1
    iters = (int(pretrain["max_tokens"]) // world) // (micro * seq)
    accumulation = global_bs // (micro * world)
    return {
        "world_size": world,
        "seq_len": seq,
        "iterations": iters,
        "optimizer_steps": iters // accumulation,
        "gradient_accumulation": accumulation,
        "tokens_per_step": global_bs * seq,
        "tokens": iters * micro * seq * world,
    }


# ------------------------------------------------------------------------------- the plan table


def _posttrain_tokens(posttrain: dict, manifest: dict | None) -> tuple[dict[str, tuple[int, int]], str]:
    """(tokens, sequence length for the attention term) per stage, and what they are based on.

    With the post-training data manifest (trellis.train.posttrain_data records token counts measured
    with the study's tokenizer) the figures are measured; from the config alone they are an upper
    bound: every example as long as ``max_length``.
    """
    sft_cfg, dpo_cfg = posttrain["sft"], posttrain["dpo"]
    if manifest is not None:
        sft, dpo = manifest["sft"], manifest["dpo"]
        return {
            "sft": (round(sft["tokens"] * float(sft_cfg["epochs"])), max(1, round(sft["mean_tokens"]))),
            "dpo": (round(dpo["tokens"] * float(dpo_cfg["epochs"])), max(1, round(dpo["mean_tokens"]))),
        }, "measured post-training tokens"
    length = int(posttrain["max_length"])
    return {
        "sft": (round(int(posttrain["sft_examples"]) * float(sft_cfg["epochs"]) * length), length),
        # chosen and rejected are both full sequences
        "dpo": (round(int(posttrain["dpo_pairs"]) * float(dpo_cfg["epochs"]) * 2 * length), length),
    }, "post-training upper bound (every example max_length tokens)"


def compute_plan(config: dict, posttrain_manifest: dict | None = None) -> list[dict[str, Any]]:
    """The compute plan: one row per arm (columns PLAN_COLUMNS), from the config alone.

    FLOPs follow the module docstring; GPU-hours are FLOPs / (peak × expected MFU) on the
    configured ``resources.accelerator``, cost is GPU-hours × its ``usd_per_gpu_hour``. Baseline
    arms are not pretrained here: their pretraining costs this study nothing (their
    ``pretrain_tokens`` is what the fetched revision saw, for the compute-matched comparison);
    every arm pays for the same SFT and DPO.
    """
    accelerator = config["resources"]["accelerator"]
    throughput = accelerator_peak(accelerator) * float(accelerator["mfu"])
    price = float(accelerator["usd_per_gpu_hour"])
    posttrain_tokens, basis = _posttrain_tokens(config["posttrain"], posttrain_manifest)
    context = int(config["mix"]["context_length"])
    model = config["model"]

    rows = []
    for arm, spec in config["arms"].items():
        if spec["kind"] == "pretrain":
            params, layers, attention_dim = (
                parameter_count(model),
                int(model["n_layer"]),
                int(model["n_embd"]),
            )
            matmul = matmul_parameters(model)
            schedule = pretrain_schedule(config["pretrain"], context)
            tokens = schedule["tokens"]
            pretrain_flops = tokens * training_flops_per_token(
                matmul, layers, attention_dim, schedule["seq_len"]
            )
            note = (
                f"pretrained here: {schedule['optimizer_steps']:,} steps of "
                f"{schedule['tokens_per_step']:,} tokens"
            )
        else:
            arch = PYTHIA_ARCHITECTURES.get(spec["repo"])
            if arch is None:
                raise KeyError(
                    f"arms.{arm}: no architecture known for {spec['repo']!r} "
                    f"(known: {sorted(PYTHIA_ARCHITECTURES)}); cannot count its FLOPs"
                )
            params, layers, attention_dim = arch["parameters"], arch["n_layer"], arch["n_embd"]
            matmul = arch["parameters"] - arch["vocab_size"] * arch["n_embd"] - arch["norm_parameters"]
            revision = resolve_revision(spec["revision"], int(config["pretrain"]["max_tokens"]))
            tokens = pythia_tokens_seen(revision)
            pretrain_flops = 0.0
            note = f"baseline {spec['repo']}@{revision}: pretrained elsewhere on {tokens:,} tokens"
        sft_tokens, sft_len = posttrain_tokens["sft"]
        dpo_tokens, dpo_len = posttrain_tokens["dpo"]
        sft_flops = sft_tokens * training_flops_per_token(matmul, layers, attention_dim, sft_len)
        dpo_flops = dpo_tokens * (
            training_flops_per_token(matmul, layers, attention_dim, dpo_len)
            + forward_flops_per_token(matmul, layers, attention_dim, dpo_len)
        )
        total = pretrain_flops + sft_flops + dpo_flops
        gpu_hours = total / throughput / 3600.0
        rows.append(
            {
                "arm": arm,
                "kind": spec["kind"],
                "parameters": params,
                "pretrain_tokens": tokens,
                "pretrain_flops": pretrain_flops,
                "sft_flops": sft_flops,
                "dpo_flops": dpo_flops,
                "total_flops": total,
                "gpu_hours": gpu_hours,
                "cost_usd": gpu_hours * price,
                "note": f"{note}; {basis}; {accelerator['name']} at {float(accelerator['mfu']):.0%} MFU",
            }
        )
    return rows
