"""Score one document part with the trained classifiers; scores are stored apart from the text.

The scores file has one row per input document, in input order: ``id`` plus, for each task
whose classifier is given,

- ``topic``: list<float32>, the full sigmoid vector (one entry per taxonomy class; the study
  keeps every dimension so filtering can threshold each one);
- ``complexity`` / ``code_quality`` / ``structured_relevance``: float32, clipped to the scale;
- ``content_type``: string (the argmax class) and ``content_type_probs``: list<float32>.

A changed threshold therefore reruns filtering only, never this step.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import torch

from trellis.classifiers import encode_texts, load_classifier, outputs_from_logits, predict_logits
from trellis.io import ParquetWriter, iter_batches
from trellis.tasks import Task

log = logging.getLogger(__name__)

# Rows read, encoded and length-sorted together. Sorting a window (not the whole part) keeps
# memory bounded while still grouping similar lengths into each batch.
WINDOW_ROWS = 2048


def scores_schema(tasks: Mapping[str, Task]) -> pa.Schema:
    fields = [pa.field("id", pa.string())]
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
        expected.kind, tuple(expected.labels), expected.low, expected.high
    ):
        # A taxonomy edited in the config after training would otherwise mislabel every column.
        raise ValueError(
            f"{model_dir}: classifier for {name!r} was trained with kind={saved.kind}, "
            f"labels={list(saved.labels)}, scale={saved.low}-{saved.high}; the config now says "
            f"kind={expected.kind}, labels={list(expected.labels)}, scale={expected.low}-{expected.high}"
        )


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
) -> dict[str, Any]:
    """Score every document of ``part_path`` with each classifier; write ``out_path``.

    ``classifier_dirs`` maps task name -> saved classifier directory (output columns follow its
    order). ``tasks`` (from the config) is checked against what each classifier was trained on.
    Returns stats: rows, seconds, docs/second, device, and per-task summaries.
    """
    t0 = time.monotonic()
    if not classifier_dirs:
        raise ValueError("score_part: no classifiers given")
    if threads:
        torch.set_num_threads(int(threads))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    loaded: dict[str, tuple[Any, Any, Task]] = {}
    for name, d in classifier_dirs.items():
        model, tokenizer, saved = load_classifier(d, dev)
        _check_task(name, saved, (tasks or {}).get(name), Path(d))
        loaded[name] = (model, tokenizer, saved)
    schema = scores_schema({n: t for n, (_, _, t) in loaded.items()})

    # Classifiers trained with the same tokenizer share one encoding of each window.
    tok_key = {name: tok.backend_tokenizer.to_str() if hasattr(tok, "backend_tokenizer") else name
               for name, (_, tok, _) in loaded.items()}

    sums: dict[str, Any] = {name: None for name in loaded}
    ct_counts: dict[str, dict[str, int]] = {}
    rows = 0
    with ParquetWriter(out_path, schema) as writer:
        for batch in iter_batches(part_path, columns=["id", "text"], batch_size=window_rows):
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            for k, (i, t) in enumerate(zip(ids, texts)):
                if not i:
                    raise ValueError(f"{part_path}: row {rows + k}: column 'id' is empty")
                if not isinstance(t, str):
                    raise ValueError(f"{part_path}: row {rows + k} (id {i}): column 'text' is null")
            encoded_by_tok: dict[str, list[list[int]]] = {}
            columns: dict[str, pa.Array] = {"id": pa.array(ids, pa.string())}
            for name, (model, tokenizer, task) in loaded.items():
                key = tok_key[name]
                if key not in encoded_by_tok:
                    encoded_by_tok[key] = encode_texts(tokenizer, texts, max_length)
                logits = predict_logits(model, encoded_by_tok[key], tokenizer.pad_token_id, batch_size, dev)
                out = outputs_from_logits(task, logits).astype(np.float32)
                if task.kind == "multilabel":
                    columns[name] = _list_array(out)
                    sums[name] = out.sum(axis=0) if sums[name] is None else sums[name] + out.sum(axis=0)
                elif task.kind == "regression":
                    columns[name] = pa.array(out, pa.float32())
                    sums[name] = float(out.sum()) + (sums[name] or 0.0)
                else:
                    labels = [task.labels[k] for k in out.argmax(axis=1)]
                    columns[name] = pa.array(labels, pa.string())
                    columns[f"{name}_probs"] = _list_array(out)
                    counts = ct_counts.setdefault(name, {c: 0 for c in task.labels})
                    for lab in labels:
                        counts[lab] += 1
            writer.write_table(pa.table(columns, schema=schema))
            rows += len(ids)

    seconds = time.monotonic() - t0
    summary: dict[str, Any] = {}
    for name, (_, _, task) in loaded.items():
        if rows == 0:
            summary[name] = None
        elif task.kind == "multilabel":
            summary[name] = {"mean_probability": dict(zip(task.labels, (sums[name] / rows).round(4).tolist()))}
        elif task.kind == "regression":
            summary[name] = {"mean": round(sums[name] / rows, 4)}
        else:
            summary[name] = {"counts": ct_counts.get(name, {})}
    return {
        "part": str(part_path),
        "rows": rows,
        "tasks": list(loaded),
        "device": str(dev),
        "seconds": round(seconds, 3),
        "docs_per_second": round(rows / seconds, 1) if seconds > 0 else None,
        "summary": summary,
    }


def _list_array(matrix: np.ndarray) -> pa.Array:
    """(n, k) float32 matrix -> list<float32> array without a Python-level loop."""
    n, k = matrix.shape
    flat = pa.array(np.ascontiguousarray(matrix).reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)
