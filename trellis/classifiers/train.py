"""Train one of the study's document classifiers on the labeled sample (rule ``train_classifier``).

One classifier per task, each a ModernBERT sequence classifier: in the study, ModernBERT-base
fine-tuned (``classifiers.base_model``, loaded from the directory ``fetch_classifier_base`` downloaded
it to, so training needs no network: ``trellis.classifiers.base``, ``base_model_record``); in the
demo, a tiny ModernBERT trained from scratch with the project's own tokenizer. Heads follow the
task's kind:

- multilabel (topic): one sigmoid per class, BCE loss (``multi_label_classification``);
- regression (complexity, code_quality, structured_relevance): one output, MSE loss;
- single_label (content_type): softmax over the classes, cross-entropy.

Training is a plain torch loop rather than ``transformers.Trainer``: on CPU with a few hundred
short documents the Trainer's per-step machinery (accelerate state, callbacks, logging and
evaluation plumbing) costs as much as the model itself, and a hand loop keeps seeding, thread
count and the length-bucketed batching below explicit. The model, its config, the loss heads, the
tokenizer and the LR schedule all come from transformers.

As in the seeds, the labeled sample is split by document id into train, validation and test
(``split_of``: a document's side depends on its id only, so every task and rerun agrees). Training
stops early when the validation loss has not improved for ``patience`` epochs and keeps the best
epoch's weights. The topic head's per-class decision thresholds are tuned on validation (the F1-best
threshold of each class, ``tune_thresholds``); every reported metric is computed on the test split,
which neither training nor tuning saw (``trellis.classifiers.metrics.compute_metrics``).

Encoding, batching and evaluation go through ``trellis.classifiers.model``, the same functions
scoring and Stage 0 use, and the model directory is saved with the config entries that module
reads back (``trellis_task``, ``trellis_thresholds``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trellis.classifiers.metrics import compute_metrics
from trellis.classifiers.model import (
    MULTILABEL_THRESHOLD,
    encode_texts,
    outputs_from_logits,
    pad_batch,
    predict_logits,
    task_to_dict,
)
from trellis.core.io import atomic_directory, iter_rows, read_json, write_json
from trellis.core.tasks import Task

log = logging.getLogger(__name__)

# Candidate thresholds tuned per class on validation.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)

# Batches are formed from windows of this many batches' worth of rows sorted by length, so a
# batch pads to similar lengths (much less wasted compute) while batch order stays random.
LENGTH_BUCKET_BATCHES = 16


# --------------------------------------------------------------------------------------------
# Labels and the train/validation split
# --------------------------------------------------------------------------------------------


def split_of(doc_id: str, validation_fraction: float, test_fraction: float) -> str:
    """ "train", "validation" or "test": a stable split that depends only on the document id.

    The id's hash is a uniform number in [0, 1): below ``test_fraction`` is test, the next
    ``validation_fraction`` is validation, the rest train. Growing one fraction never moves a
    document between the other two sides.
    """
    u = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little") / 2**64
    if u < test_fraction:
        return "test"
    return "validation" if u < test_fraction + validation_fraction else "train"


def _target(task: Task, value: Any, where: str) -> Any:
    if task.kind == "multilabel":
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: column 'label' must be a list of class names, got {value!r}")
        vec = [0.0] * len(task.labels)
        for v in value:
            if v not in task.labels:
                raise ValueError(
                    f"{where}: column 'label' has unknown class {v!r}; known: {list(task.labels)}"
                )
            vec[task.labels.index(v)] = 1.0
        return vec
    if task.kind == "regression":
        if (
            value is None
            or isinstance(value, bool)
            or not isinstance(value, (int, float))
            or math.isnan(value)
        ):
            raise ValueError(f"{where}: column 'label' must be a number, got {value!r}")
        if not task.low <= value <= task.high:
            raise ValueError(f"{where}: column 'label' = {value} is outside the scale {task.low}-{task.high}")
        return float(value)
    if value not in task.labels:
        raise ValueError(f"{where}: column 'label' has unknown class {value!r}; known: {list(task.labels)}")
    return task.labels.index(value)


def read_labeled(task: Task, labels_path: str | os.PathLike) -> tuple[list[str], list[str], list[Any]]:
    """ids, texts and training targets of a labels file.

    The labels file is the labeling sample (thousands of rows, not a source), so it is read
    whole; rows are still streamed so a bad one is reported by its row number.
    """
    ids, texts, targets = [], [], []
    seen: set[str] = set()
    for i, row in enumerate(iter_rows(labels_path, columns=["id", "text", "label"])):
        where = f"{labels_path}: row {i}"
        if not row["id"]:
            raise ValueError(f"{where}: column 'id' is empty")
        if row["id"] in seen:
            raise ValueError(f"{where}: column 'id' repeats {row['id']!r}")
        if not isinstance(row["text"], str):
            raise ValueError(f"{where}: column 'text' is not a string")
        seen.add(row["id"])
        ids.append(row["id"])
        texts.append(row["text"])
        targets.append(_target(task, row["label"], where))
    if not ids:
        raise ValueError(f"{labels_path}: no labeled rows")
    return ids, texts, targets


# --------------------------------------------------------------------------------------------
# Threshold tuning
# --------------------------------------------------------------------------------------------


def tune_thresholds(task: Task, y_true: Sequence[Any], probs: np.ndarray) -> list[float]:
    """Per-class decision thresholds of a multilabel head: each class's F1-best on ``THRESHOLD_GRID``.

    A sigmoid head trained with BCE on imbalanced classes is not calibrated at 0.5 (a rare class
    rarely reaches it), so the seeds tune one threshold per class on validation. A class with no
    positive validation document keeps ``MULTILABEL_THRESHOLD``; ties go to the threshold nearest
    0.5 so that a flat F1 curve does not push a class to an extreme.
    """
    from sklearn.metrics import f1_score

    y = np.asarray(y_true, dtype=int).reshape(-1, len(task.labels))
    thresholds = []
    order = np.argsort(np.abs(THRESHOLD_GRID - MULTILABEL_THRESHOLD), kind="stable")
    for c in range(len(task.labels)):
        if y[:, c].sum() == 0:
            thresholds.append(MULTILABEL_THRESHOLD)
            continue
        f1 = [f1_score(y[:, c], probs[:, c] >= t, zero_division=0) for t in THRESHOLD_GRID[order]]
        thresholds.append(float(THRESHOLD_GRID[order][int(np.argmax(f1))]))
    return thresholds


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def base_model_record(model_dir: str | os.PathLike, repo: str) -> dict:
    """{repo, revision, commit} of a base model directory ``fetch_classifier_base`` wrote, checked
    against ``repo`` (the directory must hold the configured model, not one fetched for an earlier
    config). Read from its ``MANIFEST.json``, the acquire manifest (``trellis.acquire.download``)."""
    path = Path(model_dir) / "MANIFEST.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{model_dir}: no MANIFEST.json; fetch the base model first (rule fetch_classifier_base)"
        )
    manifest = read_json(path)
    if manifest.get("repo") != repo:
        raise ValueError(
            f"{model_dir} holds {manifest.get('repo')!r}, but classifiers.base_model is {repo!r}; "
            "fetch it again"
        )
    return {"repo": repo, "revision": manifest["revision"], "commit": manifest["commit"]}


def problem_type(task: Task) -> str:
    return {
        "multilabel": "multi_label_classification",
        "regression": "regression",
        "single_label": "single_label_classification",
    }[task.kind]


def _id2label(task: Task) -> dict[int, str]:
    return {0: task.name} if task.kind == "regression" else dict(enumerate(task.labels))


def tiny_config(tiny: dict, vocab_size: int, max_length: int, special_ids: tuple[int, int, int], **head):
    """The ModernBertConfig of a classifier trained from scratch: classifiers.tiny's shape, the
    project tokenizer's vocabulary and (pad, [CLS], [SEP]) ids, positions up to max_length; ``head``
    is the task's (num_labels, problem_type...)."""
    from transformers import ModernBertConfig

    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if key not in tiny:
            raise ValueError(f"config key classifiers.tiny.{key} is missing")
    pad_id, cls_id, sep_id = special_ids
    return ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=int(tiny["hidden_size"]),
        num_hidden_layers=int(tiny["num_hidden_layers"]),
        num_attention_heads=int(tiny["num_attention_heads"]),
        intermediate_size=int(tiny["intermediate_size"]),
        max_position_embeddings=max_length,
        pad_token_id=pad_id,
        cls_token_id=cls_id,
        sep_token_id=sep_id,
        bos_token_id=cls_id,
        eos_token_id=sep_id,
        # Mean pooling: a tiny encoder trained from scratch on a few hundred documents learns a
        # usable document vector far sooner by averaging tokens than through [CLS] alone.
        classifier_pooling="mean",
        **head,
    )


def _build_model(task: Task, tokenizer_dir, base_model, tiny: dict, max_length: int, base_model_dir=None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    id2label = _id2label(task)
    label2id = {v: k for k, v in id2label.items()}
    if base_model:
        # The fetched copy when there is one (no network); the saved model still names the repo.
        source = str(base_model_dir) if base_model_dir else base_model
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=task.num_outputs,
            problem_type=problem_type(task),
            id2label=id2label,
            label2id=label2id,
            # The base model's own head (if any) has another shape: replace it, don't fail.
            ignore_mismatched_sizes=True,
        )
        model.config._name_or_path = tokenizer.name_or_path = base_model
        return model, tokenizer
    if tokenizer_dir is None:
        raise ValueError(
            "classifiers.base_model is null, so a tokenizer directory is required to "
            "train a classifier from scratch"
        )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    missing = [n for n in ("pad_token_id", "cls_token_id", "sep_token_id") if getattr(tokenizer, n) is None]
    if missing:
        raise ValueError(
            f"tokenizer {tokenizer_dir}: {missing} not set; a classifier needs pad, [CLS] and [SEP] tokens"
        )
    config = tiny_config(
        tiny,
        vocab_size=len(tokenizer),
        max_length=max_length,
        special_ids=(tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id),
        num_labels=task.num_outputs,
        problem_type=problem_type(task),
        id2label=id2label,
        label2id=label2id,
    )
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    return model, tokenizer


def _init_head_bias(model: torch.nn.Module, task: Task, targets: Sequence[Any]) -> None:
    """Start the output layer at the label prior (mean score, class log-odds).

    With a randomly initialised head a regression starts predicting ~0 on a 1-4 scale and a
    multilabel head ~0.5 for every class; starting at the prior spends the few training steps on
    the documents instead of on learning the label distribution.
    """
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear) or head.bias is None:
        return
    with torch.no_grad():
        if task.kind == "regression":
            head.bias.fill_(float(np.mean(targets)))
        elif task.kind == "multilabel":
            p = np.clip(np.asarray(targets, dtype=float).mean(axis=0), 1e-3, 1 - 1e-3)
            head.bias.copy_(torch.tensor(np.log(p / (1 - p)), dtype=head.bias.dtype))
        else:
            counts = np.bincount(np.asarray(targets, dtype=int), minlength=len(task.labels)) + 1.0
            head.bias.copy_(torch.tensor(np.log(counts / counts.sum()), dtype=head.bias.dtype))


def _batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * LENGTH_BUCKET_BATCHES
    batches = []
    for start in range(0, len(perm), window):
        chunk = sorted(perm[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def _split(
    ids: Sequence[str], validation_fraction: float, test_fraction: float, where
) -> dict[str, list[int]]:
    for key, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"config key classifiers.{key} must be in (0, 1), got {value}")
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            "config keys classifiers.validation_fraction + test_fraction must be < 1, got "
            f"{validation_fraction} + {test_fraction}"
        )
    sides: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, doc_id in enumerate(ids):
        sides[split_of(doc_id, validation_fraction, test_fraction)].append(i)
    empty = [k for k, v in sides.items() if not v]
    if empty:
        raise ValueError(
            f"{where}: {len(ids)} labeled rows give "
            + ", ".join(f"{len(v)} {k}" for k, v in sides.items())
            + f" documents; {empty} must not be empty (label more documents)"
        )
    return sides


def _pad_id(tokenizer: Any) -> int:
    if tokenizer.pad_token_id is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no pad token")
    return tokenizer.pad_token_id


@torch.no_grad()
def _mean_loss(model, encoded, targets, rows, pad_id, batch_size, target_dtype, dev) -> float:
    """The model's own loss (BCE, MSE or cross-entropy) over ``rows``, in eval mode."""
    was_training = model.training
    model.eval()
    total = 0.0
    order = sorted(rows, key=lambda r: len(encoded[r]))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids_t, mask_t = pad_batch([encoded[r] for r in batch], pad_id)
        labels_t = torch.tensor([targets[r] for r in batch], dtype=target_dtype)
        out = model(input_ids=ids_t.to(dev), attention_mask=mask_t.to(dev), labels=labels_t.to(dev))
        total += out.loss.item() * len(batch)
    model.train(was_training)
    return total / len(rows)


def train_classifier(
    task: Task,
    labels_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike | None,
    base_model: str | None,
    tiny: dict[str, int],
    max_length: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    validation_fraction: float,
    seed: int,
    *,
    test_fraction: float = 0.1,
    patience: int = 2,
    compile_model: bool = False,
    model_dir: str | os.PathLike | None = None,
    metrics_path: str | os.PathLike | None = None,
    threads: int | None = None,
    device: str | None = None,
    base_model_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train one classifier; save it to ``out_dir/model`` and metrics to ``out_dir/metrics.json``.

    ``epochs`` is the most epochs; training stops after ``patience`` epochs without a better
    validation loss and keeps the best epoch. ``compile_model`` wraps the model in
    ``torch.compile`` (the seeds' ``--compile``; worth it on a GPU, not for the demo's CPU run).
    ``model_dir``/``metrics_path`` override the two output locations. ``base_model_dir`` is
    ``base_model`` as ``fetch_classifier_base`` downloaded it (with its manifest): loaded from
    there, recorded as the repo and its commit. Returns the metrics dict: the test split's metrics
    at the top level, the validation split's under ``validation``.
    """
    from transformers import get_linear_schedule_with_warmup

    t0 = time.monotonic()
    out_dir = Path(out_dir)
    model_dir = Path(model_dir) if model_dir else out_dir / "model"
    metrics_path = Path(metrics_path) if metrics_path else out_dir / "metrics.json"
    if patience < 1:
        raise ValueError(f"config key classifiers.patience must be >= 1, got {patience}")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    base_commit = None
    if base_model_dir:
        if not base_model:
            raise ValueError("base_model_dir given without base_model (the repo it was fetched from)")
        base_commit = base_model_record(base_model_dir, base_model)["commit"]

    ids, texts, targets = read_labeled(task, labels_path)
    sides = _split(ids, validation_fraction, test_fraction, labels_path)
    train_idx, val_idx, test_idx = sides["train"], sides["validation"], sides["test"]

    model, tokenizer = _build_model(task, tokenizer_dir, base_model, tiny, max_length, base_model_dir)
    pad_id = _pad_id(tokenizer)
    encoded = encode_texts(tokenizer, texts, max_length)
    _init_head_bias(model, task, [targets[i] for i in train_idx])
    model.to(dev).train()
    # The compiled wrapper shares its parameters with ``model``; ``model`` is what gets saved.
    forward = torch.compile(model) if compile_model else model

    target_dtype = torch.long if task.kind == "single_label" else torch.float32
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    total_steps = max(1, epochs * steps_per_epoch)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, total_steps // 10), total_steps)
    generator = torch.Generator().manual_seed(seed)
    train_lengths = [len(encoded[i]) for i in train_idx]
    epoch_losses: list[float] = []
    val_losses: list[float] = []
    best_epoch, best_state = -1, None
    for epoch in range(epochs):
        losses = []
        for batch in _batches(train_lengths, batch_size, generator):
            rows = [train_idx[b] for b in batch]
            ids_t, mask_t = pad_batch([encoded[r] for r in rows], pad_id)
            labels_t = torch.tensor([targets[r] for r in rows], dtype=target_dtype)
            out = forward(input_ids=ids_t.to(dev), attention_mask=mask_t.to(dev), labels=labels_t.to(dev))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
        epoch_losses.append(float(np.mean(losses)))
        val_losses.append(
            _mean_loss(model, encoded, targets, val_idx, pad_id, batch_size * 2, target_dtype, dev)
        )
        log.info(
            "%s: epoch %d/%d train loss %.4f, validation loss %.4f",
            task.name,
            epoch + 1,
            epochs,
            epoch_losses[-1],
            val_losses[-1],
        )
        if best_state is None or val_losses[-1] < val_losses[best_epoch]:
            best_epoch = epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            log.info(
                "%s: early stop after epoch %d (best validation loss at epoch %d)",
                task.name,
                epoch + 1,
                best_epoch + 1,
            )
            break
    model.load_state_dict(best_state)
    train_seconds = time.monotonic() - t0

    def outputs(rows):
        logits = predict_logits(model, [encoded[i] for i in rows], pad_id, batch_size * 2, dev)
        return outputs_from_logits(task, logits)

    val_out, test_out = outputs(val_idx), outputs(test_idx)
    thresholds = None
    if task.kind == "multilabel":
        thresholds = tune_thresholds(task, [targets[i] for i in val_idx], val_out)
    metrics = compute_metrics(task, [targets[i] for i in test_idx], test_out, thresholds)
    metrics.update(
        {
            "task": task.name,
            "kind": task.kind,
            "split": "test",
            "validation": compute_metrics(task, [targets[i] for i in val_idx], val_out, thresholds),
            "n_train": len(train_idx),
            "n_validation": len(val_idx),
            "n_test": len(test_idx),
            "epochs": epochs,
            "epochs_run": len(epoch_losses),
            "best_epoch": best_epoch + 1,
            "train_loss_per_epoch": epoch_losses,
            "validation_loss_per_epoch": val_losses,
            "base_model": base_model,
            "base_model_commit": base_commit,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "max_length": max_length,
            "compiled": bool(compile_model),
            "train_seconds": round(train_seconds, 3),
            "device": str(dev),
        }
    )

    model.config.trellis_task = task_to_dict(task)
    model.config.trellis_max_length = max_length
    if thresholds is not None:
        model.config.trellis_thresholds = dict(zip(task.labels, thresholds))
    model.to("cpu")

    with atomic_directory(model_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    write_json(metrics_path, metrics)
    return metrics
