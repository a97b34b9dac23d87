"""A trained classifier: its saved config, loading it, and running it on documents.

Training (``trellis.classifiers.train``) writes a model directory; scoring
(``trellis.classifiers.score``) and Stage 0 (``trellis.curate.stage0``) load it back. All three
tokenize, batch and turn logits into outputs through the functions here, so the documents a
model was trained and evaluated on are encoded exactly like the ones it later scores.

Outputs follow the task's kind (``outputs_from_logits``):

- multilabel (topic): one sigmoid per class;
- regression (complexity, code_quality, structured_relevance): one output, clipped to the scale;
- single_label (content_type): softmax over the classes.

The saved model's config carries ``trellis_task`` (name, domain, kind, scale, class names) next
to ``id2label``, and ``trellis_thresholds`` for a multilabel head, so scoring and Stage 0 need
nothing but the model directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trellis.core.tasks import Task

# Default probability a multilabel head must reach for its class to count as predicted: the
# threshold of a class with no positive validation document, and the reference point the metrics
# also report. Scoring stores the full sigmoid vector; filtering picks its own thresholds.
MULTILABEL_THRESHOLD = 0.5


# --------------------------------------------------------------------------------------------
# Task <-> saved model config
# --------------------------------------------------------------------------------------------


def task_to_dict(task: Task) -> dict[str, Any]:
    return {
        "name": task.name,
        "domain": task.domain,
        "kind": task.kind,
        "low": task.low,
        "high": task.high,
        "labels": list(task.labels),
    }


def task_from_model_config(config: Any, where: str = "model") -> Task:
    info = getattr(config, "trellis_task", None)
    if not isinstance(info, dict):
        raise ValueError(f"{where}: config.json has no 'trellis_task' entry; not a Trellis classifier")
    return Task(
        info["name"],
        info["domain"],
        info["kind"],
        info.get("low"),
        info.get("high"),
        tuple(info.get("labels") or ()),
    )


def tuned_thresholds(model_config: Any, task: Task) -> list[float]:
    """The per-class thresholds saved with a multilabel classifier (0.5 for a class without one)."""
    saved = getattr(model_config, "trellis_thresholds", None) or {}
    return [float(saved.get(label, MULTILABEL_THRESHOLD)) for label in task.labels]


# --------------------------------------------------------------------------------------------
# Tokenization and batching
# --------------------------------------------------------------------------------------------


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids for each text, starting with [CLS] and ending with [SEP], at most max_length.

    A pretrained BERT-style tokenizer adds [CLS]/[SEP] itself; the project's byte-level BPE
    tokenizer (shared with the LLM) does not, so they are added here. Training and scoring both
    go through this function, so the two always agree.
    """
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3, got {max_length}")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    probe = tokenizer("a")["input_ids"]
    if cls_id is None or (probe and probe[0] == cls_id):
        return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    body = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length - 2)[
        "input_ids"
    ]
    tail = [sep_id] if sep_id is not None else []
    return [[cls_id, *ids, *tail] for ids in body]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    encoded: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Logits for each encoded text, in input order (batched by length, order restored).

    bf16 autocast is used on CUDA only: CPU bf16 matmuls are slow on most CPUs and gain nothing.
    """
    device = torch.device(device)
    n = len(encoded)
    out = np.zeros((n, model.config.num_labels), dtype=np.float32)
    if n == 0:
        return out
    order = sorted(range(n), key=lambda i: len(encoded[i]))
    was_training = model.training
    model.eval()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )
    try:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_batch([encoded[i] for i in idx], pad_id)
            with autocast:
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            out[idx] = logits.float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def outputs_from_logits(task: Task, logits: np.ndarray) -> np.ndarray:
    """Task outputs: sigmoid vector (multilabel), clipped score (regression), softmax (single)."""
    if task.kind == "multilabel":
        return 1.0 / (1.0 + np.exp(-logits))
    if task.kind == "regression":
        return np.clip(logits[:, 0], task.low, task.high)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def load_classifier(model_dir: str | os.PathLike, device: torch.device | str = "cpu"):
    """(model in eval mode on ``device``, tokenizer, Task) from a saved classifier directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}: no config.json; expected a saved classifier directory")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    task = task_from_model_config(model.config, str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model.to(device).eval()
    return model, tokenizer, task
