"""Post-training: full-parameter SFT then DPO with TRL, identical for every arm.

Every arm (curated, uncurated, external baselines) gets the same data files, the same example
order (the trainer's sampler is seeded) and the same hyperparameters, so a difference after
post-training can only come from the base model. The tokenizer is fixed by pretraining; SFT
installs trellis.prompts.CHAT_TEMPLATE (plain-text role headers, no new tokens) and saves it with
the model, so evaluation prompts the model exactly as it was trained.

Outputs are written to a temporary directory beside ``out_dir`` and renamed into place when
complete, so a killed job never leaves a directory that looks like a finished model.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from trellis.io import atomic_directory, write_json
from trellis.io import read_jsonl
from trellis.prompts import CHAT_TEMPLATE

log = logging.getLogger(__name__)

SFT_KEYS = ("epochs", "learning_rate", "batch_size")
DPO_KEYS = ("epochs", "learning_rate", "batch_size", "beta")


def _check_cfg(cfg: dict, keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise KeyError(f"posttrain.{what}: missing key(s) {missing}; got {sorted(cfg)}")


def _load(model_dir: str | os.PathLike):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The same template for every arm, whatever the base tokenizer shipped with.
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        # Pythia-style tokenizers may lack a pad token; padding is masked out, so eos is safe.
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None:
        raise ValueError(f"{model_dir}: tokenizer has no eos token; the chat template needs one")
    # Full precision weights; bf16 mixed precision (GPU only) is chosen in _common_args.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _common_args(cfg: dict, seed: int, output_dir: Path) -> dict[str, Any]:
    import torch

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=float(cfg["epochs"]),
        learning_rate=float(cfg["learning_rate"]),
        per_device_train_batch_size=int(cfg["batch_size"]),
        gradient_accumulation_steps=1,
        seed=seed,
        data_seed=seed,  # the shuffling order of examples: identical for every arm
        bf16=bf16,  # TRL defaults bf16 to True; on CPU it would be slow or unsupported
        fp16=False,
        gradient_checkpointing=False,  # tiny-to-500M models fit; recomputation only costs time
        logging_steps=1,  # every step's loss goes into train_metrics.json
        save_strategy="no",  # only the final model is saved (by us, atomically)
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        dataset_num_proc=None,
    )


def _token_length(tokenizer, messages: list[dict]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def _fit(rows: list[dict], tokenizer, max_length: int, answer_keys: tuple[str, ...]) -> tuple[list[dict], int]:
    """Rows whose full conversation fits ``max_length`` tokens, and how many were dropped.

    Dropped rather than truncated: truncation cuts the answer, which would teach the model to
    stop mid-JSON without eos (SFT) or compare unfinished answers (DPO).
    """
    kept = [r for r in rows if max(_token_length(tokenizer, r["prompt"] + r[k]) for k in answer_keys) <= max_length]
    return kept, len(rows) - len(kept)


def _metrics(trainer, result, seconds: float, n_rows: int, dropped: int, extra_keys=()) -> dict:
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    out = {
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "examples": n_rows,
        "dropped_too_long": dropped,
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


def _train_and_save(trainer, tokenizer, tmp: Path, n_rows: int, dropped: int, record: dict,
                    extra_keys=()) -> dict:
    """Train, then save model, tokenizer and train_metrics.json (metrics + ``record``) into ``tmp``."""
    start = time.monotonic()
    result = trainer.train()
    metrics = _metrics(trainer, result, time.monotonic() - start, n_rows, dropped, extra_keys=extra_keys)
    metrics.update(record)
    # The trainer's scratch output (optimizer state, logs) is not part of the model directory.
    shutil.rmtree(tmp / "_trainer", ignore_errors=True)
    _save(trainer, tokenizer, tmp, metrics)
    log.info("%s done: %d steps, loss %.4f -> %.4f in %.1fs", record["stage"].upper(), metrics["steps"],
             metrics["first_loss"], metrics["final_loss"], metrics["seconds"])
    return metrics


def _save(trainer, tokenizer, tmp: Path, metrics: dict) -> None:
    trainer.model.config.use_cache = True
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    write_json(tmp / "train_metrics.json", metrics)
    # Trainer state/arguments are of no use downstream and hold absolute paths.
    for name in ("training_args.bin",):
        (tmp / name).unlink(missing_ok=True)


def run_sft(model_dir, data_path, out_dir, cfg: dict, max_length: int, seed: int) -> dict:
    """Full fine-tune of ``model_dir`` on SFT JSONL ``data_path`` (loss on completions only).

    Writes the model, tokenizer (with CHAT_TEMPLATE) and train_metrics.json to ``out_dir``;
    returns the metrics.
    """
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    _check_cfg(cfg, SFT_KEYS, "sft")
    set_seed(seed)
    rows = read_jsonl(data_path, required=("prompt", "completion"))
    model, tokenizer = _load(model_dir)
    rows, dropped = _fit(rows, tokenizer, max_length, ("completion",))
    if not rows:
        raise ValueError(f"{data_path}: no example fits max_length={max_length}")
    log.info("SFT: %d examples (%d dropped as longer than %d tokens)", len(rows), dropped, max_length)
    # Only the conversation columns: task/item labels are bookkeeping, not model input.
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
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
        metrics = _train_and_save(trainer, tokenizer, tmp, len(rows), dropped,
                                  dict(stage="sft", base_model=str(model_dir), data=str(data_path),
                                       max_length=max_length, seed=seed, hyperparameters=dict(cfg)))
    return metrics


def run_dpo(model_dir, data_path, out_dir, cfg: dict, max_length: int, seed: int) -> dict:
    """DPO of ``model_dir`` (the SFT model) on JSONL preference pairs ``data_path``.

    The reference model is a frozen copy of ``model_dir`` loaded separately. Writes model,
    tokenizer and train_metrics.json to ``out_dir``; returns the metrics.
    """
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    _check_cfg(cfg, DPO_KEYS, "dpo")
    set_seed(seed)
    rows = read_jsonl(data_path, required=("prompt", "chosen", "rejected"))
    model, tokenizer = _load(model_dir)
    ref_model, _ = _load(model_dir)
    ref_model.requires_grad_(False)
    ref_model.eval()
    rows, dropped = _fit(rows, tokenizer, max_length, ("chosen", "rejected"))
    if not rows:
        raise ValueError(f"{data_path}: no pair fits max_length={max_length}")
    log.info("DPO: %d pairs (%d dropped as longer than %d tokens)", len(rows), dropped, max_length)
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    with atomic_directory(out_dir) as tmp:
        args = DPOConfig(
            **_common_args(cfg, seed, tmp / "_trainer"),
            beta=float(cfg["beta"]),
            max_length=max_length,
            lr_scheduler_type="linear",
            warmup_steps=0,
        )
        trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer)
        metrics = _train_and_save(trainer, tokenizer, tmp, len(rows), dropped,
                                  dict(stage="dpo", base_model=str(model_dir), data=str(data_path),
                                       max_length=max_length, seed=seed, hyperparameters=dict(cfg)),
                                  extra_keys=("rewards/accuracies", "rewards/margins"))
    return metrics
