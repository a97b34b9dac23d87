"""Score one document part with the trained classifiers; scores are stored apart from the text.

The scores file has one row per input document, in input order: ``id`` plus, for each task
whose classifier is given,

- ``topic``: list<float32>, the full sigmoid vector (one entry per taxonomy class; the study
  keeps every dimension so filtering can threshold each one);
- ``complexity`` / ``code_quality`` / ``structured_relevance``: float32, clipped to the scale;
- ``content_type``: string (the argmax class) and ``content_type_probs``: list<float32>.

With ``skip_below_compression_ratio`` (StarCoderData: the seeds' pre-filter, applied before any
model inference), each document's zlib compression ratio is computed first and stored as
``compression_ratio`` (float64); a document below the value is not run through the classifiers,
and its score columns are null. Filtering drops those documents as ``compression_ratio`` (its own
``min_compression_ratio`` must be at least this value, which it checks). A changed filter
threshold therefore reruns filtering only, never this step.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from trellis.classifiers.model import encode_texts, load_classifier, outputs_from_logits, predict_logits
from trellis.core.io import ParquetWriter, count_rows, iter_batches
from trellis.core.logs import progress
from trellis.core.tasks import Task
from trellis.core.text import compression_ratio

log = logging.getLogger(__name__)

# Rows read, encoded and length-sorted together. Sorting a window (not the whole part) keeps
# memory bounded while still grouping similar lengths into each batch.
WINDOW_ROWS = 2048


def scores_schema(tasks: Mapping[str, Task], with_compression_ratio: bool = False) -> pa.Schema:
    fields = [pa.field("id", pa.string())]
    if with_compression_ratio:
        fields.append(pa.field("compression_ratio", pa.float64()))
    for name, task in tasks.items():
        if task.kind == "multilabel":
            fields.append(pa.field(name, pa.list_(pa.float32())))
        elif task.kind == "regression":
            fields.append(pa.field(name, pa.float32()))
        else:
            fields.append(pa.field(name, pa.string()))
            fields.append(pa.field(f"{name}_probs", pa.list_(pa.float32())))
    return pa.schema(fields)


def _check_task(name: str, saved: Task, expected: Task | None, model_dir: Path) -> None:
    if saved.name != name:
        raise ValueError(f"{model_dir}: classifier was trained for task {saved.name!r}, given as {name!r}")
    if expected is None:
        return
    if (saved.kind, tuple(saved.labels), saved.low, saved.high) != (
        expected.kind,
        tuple(expected.labels),
        expected.low,
        expected.high,
    ):
        # A taxonomy edited in the config after training would otherwise mislabel every column.
        raise ValueError(
            f"{model_dir}: classifier for {name!r} was trained with kind={saved.kind}, "
            f"labels={list(saved.labels)}, scale={saved.low}-{saved.high}; the config now says "
            f"kind={expected.kind}, labels={list(expected.labels)}, scale={expected.low}-{expected.high}"
        )


Loaded = dict  # task name -> (model, tokenizer, Task), as load_classifiers returns


def load_classifiers(
    classifier_dirs: Mapping[str, str | os.PathLike], tasks: Mapping[str, Task] | None, device
) -> Loaded:
    """Each saved classifier, checked against the task the config defines for it (if given)."""
    if not classifier_dirs:
        raise ValueError("no classifiers given")
    loaded = {}
    for name, d in classifier_dirs.items():
        model, tokenizer, saved = load_classifier(d, device)
        _check_task(name, saved, (tasks or {}).get(name), Path(d))
        loaded[name] = (model, tokenizer, saved)
    return loaded


def predict(
    loaded: Loaded, texts: Sequence[str], batch_size: int, max_length: int, device
) -> dict[str, np.ndarray]:
    """Every classifier's outputs (outputs_from_logits, float32) for ``texts``, in their order.

    Classifiers trained with the same tokenizer share one encoding of the texts.
    """
    encoded_by_tok: dict[str, list[list[int]]] = {}
    outputs = {}
    for name, (model, tokenizer, task) in loaded.items():
        key = tokenizer.backend_tokenizer.to_str() if hasattr(tokenizer, "backend_tokenizer") else name
        if key not in encoded_by_tok:
            encoded_by_tok[key] = encode_texts(tokenizer, texts, max_length) if texts else []
        logits = predict_logits(model, encoded_by_tok[key], tokenizer.pad_token_id, batch_size, device)
        outputs[name] = outputs_from_logits(task, logits).astype(np.float32)
    return outputs


def score_part(
    part_path: str | os.PathLike,
    classifier_dirs: Mapping[str, str | os.PathLike],
    out_path: str | os.PathLike,
    batch_size: int,
    max_length: int,
    *,
    tasks: Mapping[str, Task] | None = None,
    device: str | None = None,
    threads: int | None = None,
    window_rows: int = WINDOW_ROWS,
    skip_below_compression_ratio: float | None = None,
) -> dict[str, Any]:
    """Score every document of ``part_path`` with each classifier; write ``out_path``.

    ``classifier_dirs`` maps task name -> saved classifier directory (output columns follow its
    order). ``tasks`` (from the config) is checked against what each classifier was trained on.
    ``skip_below_compression_ratio``: see the module docstring (None scores every document).
    Returns stats: rows, scored and prefiltered counts, seconds, docs/second, device, and per-task
    summaries (over the scored documents).
    """
    t0 = time.monotonic()
    if threads:
        torch.set_num_threads(int(threads))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded = load_classifiers(classifier_dirs, tasks, dev)
    prefilter = skip_below_compression_ratio
    schema = scores_schema(
        {n: t for n, (_, _, t) in loaded.items()}, with_compression_ratio=prefilter is not None
    )

    sums: dict[str, Any] = {name: None for name in loaded}
    ct_counts: dict[str, dict[str, int]] = {}
    rows = scored = 0
    bar = progress(total=count_rows(part_path), desc="score", unit="docs", logger=log)
    with ParquetWriter(out_path, schema) as writer:
        for batch in iter_batches(part_path, columns=["id", "text"], batch_size=window_rows):
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            for k, (i, t) in enumerate(zip(ids, texts)):
                if not i:
                    raise ValueError(f"{part_path}: row {rows + k}: column 'id' is empty")
                if not isinstance(t, str):
                    raise ValueError(f"{part_path}: row {rows + k} (id {i}): column 'text' is null")
            columns: dict[str, pa.Array] = {"id": pa.array(ids, pa.string())}
            skip = np.zeros(len(ids), dtype=bool)
            if prefilter is not None:
                ratios = [compression_ratio(t) if t else None for t in texts]
                columns["compression_ratio"] = pa.array(ratios, pa.float64())
                skip = np.array([r is not None and r < prefilter for r in ratios], dtype=bool)
            run = np.flatnonzero(~skip)
            run_texts = [texts[i] for i in run]
            mask = pa.array(skip) if skip.any() else None
            run_outputs = predict(loaded, run_texts, batch_size, max_length, dev)
            for name, (_, _, task) in loaded.items():
                run_out = run_outputs[name]
                # Scatter back to the window's rows; skipped rows stay NaN and are masked null.
                out = np.full((len(ids), *run_out.shape[1:]), np.nan, dtype=np.float32)
                out[run] = run_out
                if task.kind == "multilabel":
                    columns[name] = _list_array(out, mask)
                    sums[name] = run_out.sum(axis=0) + (0 if sums[name] is None else sums[name])
                elif task.kind == "regression":
                    columns[name] = pa.array(out, pa.float32(), mask=skip)
                    sums[name] = float(run_out.sum()) + (sums[name] or 0.0)
                else:
                    labels = [task.labels[k] for k in np.nan_to_num(out, nan=-1).argmax(axis=1)]
                    columns[name] = pa.array(labels, pa.string(), mask=skip)
                    columns[f"{name}_probs"] = _list_array(out, mask)
                    counts = ct_counts.setdefault(name, {c: 0 for c in task.labels})
                    for i in run:
                        counts[labels[i]] += 1
            writer.write_table(pa.table(columns, schema=schema))
            rows += len(ids)
            scored += len(run)
            bar.update(len(ids))
    bar.close()

    seconds = time.monotonic() - t0
    summary: dict[str, Any] = {}
    for name, (_, _, task) in loaded.items():
        if scored == 0:
            summary[name] = None
        elif task.kind == "multilabel":
            summary[name] = {
                "mean_probability": dict(zip(task.labels, (sums[name] / scored).round(4).tolist()))
            }
        elif task.kind == "regression":
            summary[name] = {"mean": round(sums[name] / scored, 4)}
        else:
            summary[name] = {"counts": ct_counts.get(name, {})}
    return {
        "part": str(part_path),
        "rows": rows,
        "scored": scored,
        "prefiltered_compression_ratio": rows - scored,
        "skip_below_compression_ratio": prefilter,
        "tasks": list(loaded),
        "device": str(dev),
        "seconds": round(seconds, 3),
        "docs_per_second": round(scored / seconds, 1) if seconds > 0 else None,
        "summary": summary,
    }


def _list_array(matrix: np.ndarray, mask: pa.Array | None = None) -> pa.Array:
    """(n, k) float32 matrix -> list<float32> array without a Python-level loop (rows in ``mask`` null)."""
    n, k = matrix.shape
    flat = pa.array(np.ascontiguousarray(matrix).reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat, mask=mask)
