"""The model side of pretraining: the LitGPT config, the pretrain section's keys, activation checkpointing.

``litgpt_config`` turns our ``model`` section into the LLaMA-style ``litgpt.Config`` that the run
(launch.py) and the throughput probe (perf/probe_throughput.py) build their GPT from.
``PRETRAIN_KEYS`` and ``_require`` are the section checks the run planner shares with it. LitGPT's
pretrain loop has no switch for activation checkpointing, so the wrapper
(``enable_gradient_checkpointing``) and the patch that slips it into LitGPT's loop
(``_litgpt_gradient_checkpointing``) live here, beside the config of the model they wrap. Nothing
here touches data or files, so the probe can import it without shards.
"""

from __future__ import annotations

import contextlib
import functools

import litgpt
import torch

from trellis.train.compute import MODEL_KEYS

# The pretrain section's keys every run needs (eval_interval and eval_iters are optional).
PRETRAIN_KEYS = (
    "max_tokens",
    "micro_batch_size",
    "global_batch_size",
    "learning_rate",
    "min_lr",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "max_norm",
    "precision",
    "devices",
    "num_nodes",
    "save_interval",
    "log_interval",
    "compile",
    "gradient_checkpointing",
    "keep_checkpoints",  # an integer >= 1, or None (null) to keep every step checkpoint
)


def _require(section: dict, keys: tuple[str, ...], name: str) -> None:
    missing = [k for k in keys if k not in section]
    if missing:
        raise KeyError(f"config section {name!r} is missing key(s) {missing}")


# --------------------------------------------------------------------------------------- config


def litgpt_config(model: dict, context_length: int, name: str) -> litgpt.Config:
    """The LLaMA-style LitGPT config for our ``model`` section and a TKDS context length.

    ``name`` must not start with a family LitGPT's HF converter special-cases (falcon, phi, qwen,
    gemma, olmo): the LLaMA weight mapping is chosen from ``mlp_class_name`` only for other names.
    """
    _require(model, MODEL_KEYS, "model")
    lowered = name.lower()
    if lowered.startswith(("falcon", "phi", "qwen", "qwq", "gemma", "olmo")):
        raise ValueError(f"model name {name!r} would select a non-LLaMA weight mapping in LitGPT")
    n_embd, n_head = int(model["n_embd"]), int(model["n_head"])
    if n_embd % n_head:
        raise ValueError(f"model.n_embd ({n_embd}) must be divisible by model.n_head ({n_head})")
    if n_head % int(model["n_query_groups"]):
        raise ValueError(f"model.n_head ({n_head}) must be divisible by model.n_query_groups")
    vocab = int(model["padded_vocab_size"])
    return litgpt.Config(
        name=name,
        block_size=int(context_length),
        n_layer=int(model["n_layer"]),
        n_embd=n_embd,
        n_head=n_head,
        n_query_groups=int(model["n_query_groups"]),
        intermediate_size=int(model["intermediate_size"]),
        # vocab_size == padded_vocab_size: the tokenizer is padded by config, not by LitGPT's
        # padding_multiple, so the HF config and the embedding matrix agree exactly.
        vocab_size=vocab,
        padded_vocab_size=vocab,
        padding_multiple=1,
        norm_class_name="RMSNorm",
        norm_eps=float(model["norm_eps"]),
        mlp_class_name="LLaMAMLP",
        rotary_percentage=1.0,
        rope_base=int(model["rope_base"]),
        parallel_residual=False,
        shared_attention_norm=False,
        bias=False,
        lm_head_bias=False,
    )


# ------------------------------------------------------------------------ gradient checkpointing


def enable_gradient_checkpointing(model: torch.nn.Module) -> torch.nn.Module:
    """Recompute each transformer block's activations in backward instead of storing them.

    PyTorch's checkpoint wrapper (the one FSDP's activation_checkpointing_policy uses) around
    every LitGPT ``Block``; its state-dict hooks strip the wrapper's prefix, so checkpoints keep
    LitGPT's parameter names and conversion and resume are unaffected. Memory per layer drops to
    the block input; the price is one extra forward pass per step.
    """
    from litgpt.model import Block
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    wrapper = functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    apply_activation_checkpointing(
        model, checkpoint_wrapper_fn=wrapper, check_fn=lambda m: isinstance(m, Block)
    )
    return model


@contextlib.contextmanager
def _litgpt_gradient_checkpointing(enabled: bool):
    """Turn on activation checkpointing inside LitGPT's pretrain loop, which has no switch for it.

    Single device: LitGPT builds the model with ``GPT(config)`` inside ``litgpt.pretrain.main``;
    we hand it a GPT whose blocks are wrapped (the meta-device copy LitGPT builds only to count
    FLOPs stays unwrapped, so its figure remains model FLOPs). Several devices: LitGPT builds an
    FSDPStrategy, whose own ``activation_checkpointing_policy`` does the same per block.
    """
    if not enabled:
        yield
        return
    import litgpt.pretrain as lp
    from litgpt.model import GPT, Block

    def checkpointed_gpt(config):
        model = GPT(config)
        if next(model.parameters()).device.type != "meta":  # FSDP's meta init is handled below
            enable_gradient_checkpointing(model)
        return model

    strategy = lp.FSDPStrategy

    class CheckpointedFSDPStrategy(strategy):  # a subclass: LitGPT isinstance-checks the strategy
        def __init__(self, *args, **kwargs):
            super().__init__(*args, activation_checkpointing_policy={Block}, **kwargs)

    lp.GPT, lp.FSDPStrategy = checkpointed_gpt, CheckpointedFSDPStrategy
    try:
        yield
    finally:
        lp.GPT, lp.FSDPStrategy = GPT, strategy
