"""Rule script: train one task's classifier on its labels; write the model dir and metrics.

A base model (study) comes from fetch_classifier_base's directory: the job never reaches the hub.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import json
import os
import time
from pathlib import Path

from trellis.classifiers.train import train_classifier
from trellis.core.logs import setup_logging
from trellis.core.tasks import build_tasks

log = setup_logging(snakemake.log[0])
start = time.monotonic()
labels_path = snakemake.input.get("labels", snakemake.input[0])
tokenizer_dir = snakemake.input.get("tokenizer")
base_model_dir = snakemake.input.get("base_model") or None
# Read by huggingface_hub when transformers first imports it (in train_classifier, below).
os.environ["HF_HUB_OFFLINE"] = "1"
task_name = snakemake.params.task
clf = dict(snakemake.params.classifiers)
seed = int(snakemake.params.seed)
model_dir = snakemake.output.model
metrics_path = snakemake.output.metrics

task = build_tasks({"labels": dict(snakemake.params.labels)})[task_name]
log.info(
    "training %s (%s) on %s; base_model=%s (from %s) tokenizer=%s threads=%d",
    task.name,
    task.kind,
    labels_path,
    clf.get("base_model"),
    base_model_dir,
    tokenizer_dir,
    snakemake.threads,
)
metrics = train_classifier(
    task,
    labels_path,
    out_dir=Path(model_dir).parent,
    tokenizer_dir=tokenizer_dir,
    base_model=clf.get("base_model"),
    base_model_dir=base_model_dir,
    tiny=clf.get("tiny") or {},
    max_length=int(clf["max_length"]),
    epochs=int(clf["epochs"]),
    batch_size=int(clf["batch_size"]),
    learning_rate=float(clf["learning_rate"]),
    validation_fraction=float(clf["validation_fraction"]),
    seed=seed,
    test_fraction=float(clf["test_fraction"]),
    patience=int(clf["patience"]),
    compile_model=bool(clf["compile"]),
    model_dir=model_dir,
    metrics_path=metrics_path,
    threads=snakemake.threads,
)
headline = {k: metrics[k] for k in ("micro_f1", "macro_f1", "accuracy", "spearman", "mse") if k in metrics}
log.info(
    "n_train=%d n_validation=%d n_test=%d; best epoch %d of %d run; test: %s",
    metrics["n_train"],
    metrics["n_validation"],
    metrics["n_test"],
    metrics["best_epoch"],
    metrics["epochs_run"],
    json.dumps(headline),
)
log.info("wrote %s and %s in %.1fs", model_dir, metrics_path, time.monotonic() - start)
