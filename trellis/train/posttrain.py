"""Post-training: full-parameter SFT then DPO with TRL, identical for every arm.

Every arm (curated, uncurated, external baselines) gets the same data files, the same example
order and the same hyperparameters, so a difference after post-training can only come from the
base model. The order is made explicit rather than left to the trainer's sampler:
``training_order`` draws one permutation of the rows per epoch from the seed, the dataset is laid
out in that order and read sequentially, and its sha256 is recorded in every model's
train_metrics.json beside the data file's sha256 and the hyperparameters, so the arms' records
can be compared line by line. Rows were already fitted to ``max_length`` with the study's
tokenizer when the data was built; an arm whose tokenizer would need to drop a row fails instead
of silently training on less. The tokenizer is fixed by pretraining; SFT installs
trellis.structured.prompts.CHAT_TEMPLATE (plain-text role headers, no new tokens) and saves it with the
model, so evaluation prompts the model exactly as it was trained.

Outputs are written to a temporary directory beside ``out_dir`` and renamed into place when
complete, so a killed job never leaves a directory that looks like a finished model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from trellis.core.io import atomic_directory, read_json, read_jsonl, write_json
from trellis.tokens.tkds import sha256_file
from trellis.train.posttrain_data import chat_tokenizer, conversation_tokens

log = logging.getLogger(__name__)

SFT_KEYS = ("epochs", "learning_rate", "batch_size")
DPO_KEYS = ("epochs", "learning_rate", "batch_size", "beta")


def _check_cfg(cfg: dict, keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KeyError(f"posttrain.{what}: missing key(s) {missing}; got {sorted(cfg)}")


def _load(model_dir: str | os.PathLike):
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    tokenizer = chat_tokenizer(model_dir)
    # Full precision weights; bf16 mixed precision (GPU only) is chosen in _common_args.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def training_order(n_rows: int, epochs: float, seed: int) -> list[int]:
    """Row indices in training order: one seeded permutation per epoch, a fractional last epoch cut.

    Depends on nothing but (rows, epochs, seed), so every arm sees the same sequence.
    """
    if n_rows <= 0 or epochs <= 0:
        raise ValueError(f"need rows and epochs > 0, got {n_rows} rows, {epochs} epochs")
    total = round(n_rows * float(epochs))
    order: list[int] = []
    for epoch in range(math.ceil(total / n_rows)):
        permutation = list(range(n_rows))
        random.Random(f"{seed}|epoch|{epoch}").shuffle(permutation)
        order += permutation
    return order[:total]


def _check_against_manifest(data_path, manifest_path, stage: str) -> str:
    """The data file's sha256, after checking it is the file the manifest describes."""
    digest = sha256_file(data_path)
    if manifest_path is not None:
        recorded = read_json(manifest_path)[stage]["sha256"]
        if digest != recorded:
            raise ValueError(
                f"{data_path}: sha256 {digest} differs from {manifest_path} ({recorded}); "
                "the data changed after it was built (rerun build_posttrain_data)"
            )
    return digest


def _common_args(cfg: dict, seed: int, output_dir: Path) -> dict[str, Any]:
    import torch

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=1,  # the dataset already holds every epoch, in training_order
        learning_rate=float(cfg["learning_rate"]),
        per_device_train_batch_size=int(cfg["batch_size"]),
        gradient_accumulation_steps=1,
        seed=seed,
        data_seed=seed,  # unused by the sequential sampler; the same for every arm regardless
        bf16=bf16,  # TRL defaults bf16 to True; on CPU it would be slow or unsupported
        fp16=False,
        # Recompute activations in backward: the study's 1B baseline at 32 x 2048 tokens needs it
        # on one GPU; the demo's tiny models do not.
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing", False)),
        logging_steps=1,  # every step's loss goes into train_metrics.json
        save_strategy="no",  # only the final model is saved (by us, atomically)
        report_to="none",
        disable_tqdm=True,
        train_sampling_strategy="sequential",  # the order is the dataset's (training_order)
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        dataset_num_proc=None,
    )


def _token_length(tokenizer, messages: list[dict]) -> int:
    return conversation_tokens(tokenizer, messages)


def _require_fit(
    rows: list[dict], tokenizer, max_length: int, answer_keys: tuple[str, ...], data_path
) -> None:
    """Fail if this arm's tokenizer makes any row longer than ``max_length`` (see module docstring)."""
    too_long = [
        r.get("item", i)
        for i, r in enumerate(rows)
        if max(_token_length(tokenizer, r["prompt"] + r[k]) for k in answer_keys) > max_length
    ]
    if too_long:
        raise ValueError(
            f"{data_path}: {len(too_long)} row(s) exceed max_length={max_length} tokens with this model's "
            "tokenizer "
            f"(e.g. {too_long[:5]}); the data was fitted with the study's tokenizer, and dropping rows here "
            "would "
            "give this arm different data"
        )


def _ordered_dataset(rows: list[dict], columns: tuple[str, ...], epochs: float, seed: int):
    """A datasets.Dataset of ``columns`` laid out in training_order, and that order's sha256."""
    from datasets import Dataset

    order = training_order(len(rows), epochs, seed)
    digest = hashlib.sha256(json.dumps(order).encode()).hexdigest()
    return Dataset.from_list([{c: rows[i][c] for c in columns} for i in order]), len(order), digest


def _metrics(trainer, result, seconds: float, extra_keys=()) -> dict:
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    out = {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "loss_history": losses,
        "seconds": round(seconds, 2),
    }
    for k in extra_keys:
        values = [h[k] for h in history if k in h]
        out[f"final_{k.replace('/', '_')}"] = values[-1] if values else None
    return out


def _train_and_save(trainer, tokenizer, tmp: Path, record: dict, extra_keys=()) -> dict:
    """Train, then save model, tokenizer and train_metrics.json (metrics + ``record``) into ``tmp``."""
    start = time.monotonic()
    result = trainer.train()
    metrics = _metrics(trainer, result, time.monotonic() - start, extra_keys=extra_keys)
    metrics.update(record)
    # The trainer's scratch output (optimizer state, logs) is not part of the model directory.
    shutil.rmtree(tmp / "_trainer", ignore_errors=True)
    _save(trainer, tokenizer, tmp, metrics)
    log.info(
        "%s done: %d steps, loss %.4f -> %.4f in %.1fs",
        record["stage"].upper(),
        metrics["steps"],
        metrics["first_loss"],
        metrics["final_loss"],
        metrics["seconds"],
    )
    return metrics


def _save(trainer, tokenizer, tmp: Path, metrics: dict) -> None:
    trainer.model.config.use_cache = True
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    write_json(tmp / "train_metrics.json", metrics)
    # Trainer state/arguments are of no use downstream and hold absolute paths.
    for name in ("training_args.bin",):
        (tmp / name).unlink(missing_ok=True)


def _record(
    stage: str,
    model_dir,
    data_path,
    data_sha256: str,
    n_rows: int,
    n_seen: int,
    order_sha256: str,
    cfg: dict,
    max_length: int,
    seed: int,
) -> dict:
    """What this arm's post-training was: identical across arms except base_model."""
    return {
        "stage": stage,
        "base_model": str(model_dir),
        "data": str(data_path),
        "data_sha256": data_sha256,
        "examples": n_rows,
        "examples_seen": n_seen,
        "epochs": float(cfg["epochs"]),
        "order_sha256": order_sha256,
        "max_length": max_length,
        "seed": seed,
        "hyperparameters": dict(cfg),
    }


def run_sft(model_dir, data_path, out_dir, cfg: dict, max_length: int, seed: int, manifest_path=None) -> dict:
    """Full fine-tune of ``model_dir`` on SFT JSONL ``data_path`` (loss on completions only).

    ``manifest_path``: the build_posttrain_data manifest; the data file must be the one it
    describes. Writes the model, tokenizer (with CHAT_TEMPLATE) and train_metrics.json to
    ``out_dir``; returns the metrics.
    """
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    _check_cfg(cfg, SFT_KEYS, "sft")
    set_seed(seed)
    data_sha256 = _check_against_manifest(data_path, manifest_path, "sft")
    rows = read_jsonl(data_path, required=("prompt", "completion"))
    if not rows:
        raise ValueError(f"{data_path}: no SFT examples")
    model, tokenizer = _load(model_dir)
    _require_fit(rows, tokenizer, max_length, ("completion",), data_path)
    # Only the conversation columns: task/item labels are bookkeeping, not model input.
    dataset, n_seen, order_sha256 = _ordered_dataset(rows, ("prompt", "completion"), cfg["epochs"], seed)
    log.info(
        "SFT: %d examples, %d seen over %s epoch(s) in order %s",
        len(rows),
        n_seen,
        cfg["epochs"],
        order_sha256[:12],
    )
    with atomic_directory(out_dir) as tmp:
        args = SFTConfig(
            **_common_args(cfg, seed, tmp / "_trainer"),
            max_length=max_length,
            completion_only_loss=True,
            packing=False,
            lr_scheduler_type="linear",
            warmup_steps=0,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        record = _record(
            "sft", model_dir, data_path, data_sha256, len(rows), n_seen, order_sha256, cfg, max_length, seed
        )
        metrics = _train_and_save(trainer, tokenizer, tmp, record)
    return metrics


def run_dpo(model_dir, data_path, out_dir, cfg: dict, max_length: int, seed: int, manifest_path=None) -> dict:
    """DPO of ``model_dir`` (the SFT model) on JSONL preference pairs ``data_path``.

    The reference model is a frozen copy of ``model_dir`` loaded separately. Writes model,
    tokenizer and train_metrics.json to ``out_dir``; returns the metrics.
    """
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    _check_cfg(cfg, DPO_KEYS, "dpo")
    set_seed(seed)
    data_sha256 = _check_against_manifest(data_path, manifest_path, "dpo")
    rows = read_jsonl(data_path, required=("prompt", "chosen", "rejected"))
    if not rows:
        raise ValueError(f"{data_path}: no DPO pairs")
    model, tokenizer = _load(model_dir)
    ref_model, _ = _load(model_dir)
    ref_model.requires_grad_(False)
    ref_model.eval()
    _require_fit(rows, tokenizer, max_length, ("chosen", "rejected"), data_path)
    dataset, n_seen, order_sha256 = _ordered_dataset(
        rows, ("prompt", "chosen", "rejected"), cfg["epochs"], seed
    )
    log.info(
        "DPO: %d pairs, %d seen over %s epoch(s) in order %s",
        len(rows),
        n_seen,
        cfg["epochs"],
        order_sha256[:12],
    )
    with atomic_directory(out_dir) as tmp:
        args = DPOConfig(
            **_common_args(cfg, seed, tmp / "_trainer"),
            beta=float(cfg["beta"]),
            max_length=max_length,
            lr_scheduler_type="linear",
            warmup_steps=0,
        )
        trainer = DPOTrainer(
            model=model, ref_model=ref_model, args=args, train_dataset=dataset, processing_class=tokenizer
        )
        record = _record(
            "dpo", model_dir, data_path, data_sha256, len(rows), n_seen, order_sha256, cfg, max_length, seed
        )
        metrics = _train_and_save(
            trainer, tokenizer, tmp, record, extra_keys=("rewards/accuracies", "rewards/margins")
        )
    return metrics
