"""Classifier training on tiny planted datasets: metrics, learning, the saved model, the report table."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

from trellis.classifiers.metrics import metrics_rows
from trellis.classifiers.model import encode_texts, load_classifier, outputs_from_logits, predict_logits
from trellis.classifiers.train import split_of, train_classifier, tune_thresholds
from trellis.core.tasks import build_tasks
from trellis.labels.label import label_schema

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
FILLER = (
    "the of and to in is was for on with as by at from that this it be are an "
    "which or one have not but had they all were when there can more some time"
).split()
SPECIAL = ["<|endoftext|>", "<|padding|>", "[CLS]", "[SEP]", "[MASK]"]

LABELS_CONFIG = {
    "backend": "offline",
    "model": "keyword-heuristic-v1",
    "topics": [{"name": f"topic_{i}", "keywords": [f"kw{i}"]} for i in range(17)],
    "content_types": [
        {"name": n}
        for n in (
            "library",
            "application",
            "script",
            "test",
            "configuration",
            "schema",
            "data",
            "documentation",
            "generated",
        )
    ],
}
TASKS = build_tasks({"labels": LABELS_CONFIG})
# Each class or topic is planted by a marker word that the byte-level BPE learns as one token.
MARKERS = [
    "apple",
    "river",
    "planet",
    "violin",
    "carbon",
    "engine",
    "castle",
    "harbor",
    "garden",
    "silver",
    "thunder",
    "pencil",
    "meadow",
    "falcon",
    "lantern",
    "quartz",
    "velvet",
]


def build_tokenizer(out_dir: Path) -> Path:
    """A small byte-level BPE tokenizer with the project's special tokens (the tokenizer contract)."""
    rng = random.Random(0)
    texts = [" ".join(rng.choice(FILLER + MARKERS) for _ in range(20)) for _ in range(400)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=500,
            special_tokens=SPECIAL,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|padding|>",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(out_dir)
    return out_dir


def planted_rows(task_name: str, n: int, seed: int = 0) -> list[dict]:
    """Documents whose label is fully determined by planted marker words."""
    rng = random.Random(seed)
    task = TASKS[task_name]
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(15, 40))]
        if task.kind == "multilabel":
            picks = rng.sample(range(4), rng.choice([1, 1, 2]))  # 4 planted topics, some docs 2
            label = [task.labels[p] for p in sorted(picks)]
            for p in picks:
                words[rng.randrange(len(words))] = MARKERS[p]
        elif task.kind == "single_label":
            c = rng.randrange(len(task.labels))
            label = task.labels[c]
            for _ in range(2):
                words[rng.randrange(len(words))] = MARKERS[c]
        else:
            level = rng.randint(int(task.low), int(task.high))
            label = float(level)
            for _ in range(3 * (level - int(task.low))):
                words[rng.randrange(len(words))] = MARKERS[0]
        rows.append(
            {
                "id": f"doc-{task_name}-{seed}-{i}",
                "text": " ".join(words),
                "source": task.source,
                "label": label,
                "backend": "offline",
                "model": "planted",
                "prompt_version": "test",
            }
        )
    return rows


def write_labels(path: Path, task_name: str, n: int, seed: int = 0) -> Path:
    pq.write_table(
        pa.Table.from_pylist(planted_rows(task_name, n, seed), schema=label_schema(TASKS[task_name])), path
    )
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


def _train(task_name, labels, out, tokenizer_dir, epochs=6, **kw):
    args = dict(
        tokenizer_dir=tokenizer_dir,
        base_model=None,
        tiny=TINY,
        max_length=64,
        epochs=epochs,
        batch_size=16,
        learning_rate=3e-3,
        validation_fraction=0.2,
        test_fraction=0.2,
        seed=7,
        threads=1,
    )
    args.update(kw)
    return train_classifier(TASKS[task_name], labels, out, **args)


def test_split_is_stable_and_near_fraction():
    ids = [f"doc-{i}" for i in range(4000)]
    first = [split_of(i, 0.2, 0.1) for i in ids]
    assert first == [split_of(i, 0.2, 0.1) for i in ids]
    assert 0.17 < first.count("validation") / len(ids) < 0.23
    assert 0.08 < first.count("test") / len(ids) < 0.12
    # Growing the validation share never moves a test document, nor a validation one to train.
    grown = [split_of(i, 0.3, 0.1) for i in ids]
    assert all(g == "test" for f, g in zip(first, grown) if f == "test")
    assert all(g == "validation" for f, g in zip(first, grown) if f == "validation")


def test_tune_thresholds_picks_each_class_f1_best():
    task = TASKS["topic"]
    rng = np.random.default_rng(0)
    y = np.zeros((200, 17), dtype=int)
    y[:50, 0] = 1
    y[:20, 1] = 1
    probs = rng.uniform(0, 0.2, size=(200, 17))
    probs[:50, 0] = rng.uniform(0.6, 0.7, 50)  # class 0 separates at 0.25..0.6
    probs[50:, 0] = rng.uniform(0.0, 0.2, 150)
    probs[:20, 1] = rng.uniform(0.22, 0.3, 20)  # class 1's positives never reach 0.5
    thresholds = tune_thresholds(task, y, probs)
    assert thresholds[0] == 0.5  # every threshold in 0.2-0.6 separates: the tie goes nearest 0.5
    assert thresholds[1] == 0.2  # tuned down to catch the uncalibrated rare class
    assert thresholds[2] == 0.5  # no positive validation document: the default


def test_content_type_learns_planted_classes(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "ct.parquet", "content_type", 500)
    m = _train("content_type", labels, tmp_path / "ct", tokenizer_dir)
    assert {"accuracy", "macro_f1", "per_class_f1", "n_train", "n_validation"} <= m.keys()
    assert set(m["per_class_f1"]) == set(TASKS["content_type"].labels)
    assert m["n_train"] + m["n_validation"] + m["n_test"] == 500 and m["n_test"] > 50
    assert m["split"] == "test" and m["validation"]["accuracy"] > 0.6
    assert m["accuracy"] > 0.6  # chance is 1/9
    saved = json.loads((tmp_path / "ct" / "metrics.json").read_text())
    assert saved["accuracy"] == m["accuracy"]
    model_dir = tmp_path / "ct" / "model"
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["trellis_task"]["kind"] == "single_label"
    assert cfg["problem_type"] == "single_label_classification"
    assert cfg["id2label"]["3"] == "test"
    # The saved directory alone reproduces the validation predictions.
    model, tok, task = load_classifier(model_dir)
    assert task == TASKS["content_type"]
    texts = [r["text"] for r in planted_rows("content_type", 40, seed=99)]
    truth = [r["label"] for r in planted_rows("content_type", 40, seed=99)]
    probs = outputs_from_logits(
        task, predict_logits(model, encode_texts(tok, texts, 64), tok.pad_token_id, 8)
    )
    assert probs.shape == (40, 9) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.mean([task.labels[k] == t for k, t in zip(probs.argmax(axis=1), truth)]) > 0.6


def test_topic_multilabel_metrics(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "topic.parquet", "topic", 400)
    m = _train("topic", labels, tmp_path / "topic", tokenizer_dir)
    assert {"micro_f1", "macro_f1", "per_class_f1", "thresholds", "at_0.5"} <= m.keys()
    assert len(m["per_class_f1"]) == 17 and len(m["thresholds"]) == 17
    assert m["micro_f1"] > 0.6
    cfg = json.loads((tmp_path / "topic" / "model" / "config.json").read_text())
    assert cfg["problem_type"] == "multi_label_classification" and len(cfg["id2label"]) == 17
    # The thresholds tuned on validation are saved with the model for scoring and Stage 0.
    assert cfg["trellis_thresholds"] == m["thresholds"]
    assert m["validation"]["thresholds"] == m["thresholds"]


def test_regression_metrics_and_ordering(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "cq.parquet", "code_quality", 400)
    m = _train(
        "code_quality",
        labels,
        tmp_path / "cq",
        tokenizer_dir,
        model_dir=tmp_path / "m" / "model",
        metrics_path=tmp_path / "m.json",
    )
    assert {"spearman", "mse", "per_level_f1"} <= m.keys()
    assert set(m["per_level_f1"]) == {"1", "2", "3", "4", "5"}
    assert m["spearman"] > 0.5
    assert m["mse"] < m["mse_predict_mean"]
    assert (tmp_path / "m.json").exists() and (tmp_path / "m" / "model" / "config.json").exists()
    cfg = json.loads((tmp_path / "m" / "model" / "config.json").read_text())
    assert len(cfg["id2label"]) == 1
    assert cfg["problem_type"] == "regression"


def test_early_stopping_keeps_the_best_epoch(tmp_path, tokenizer_dir):
    # A learning rate far too high makes the validation loss climb after the first epochs.
    labels = write_labels(tmp_path / "cq.parquet", "code_quality", 200)
    m = _train(
        "code_quality", labels, tmp_path / "cq", tokenizer_dir, epochs=12, patience=1, learning_rate=0.05
    )
    losses = m["validation_loss_per_epoch"]
    assert m["epochs_run"] == len(losses) < 12
    assert m["best_epoch"] == int(np.argmin(losses)) + 1
    assert m["epochs_run"] == m["best_epoch"] + 1  # stopped after one epoch without improvement
    # The saved model is the best epoch's: its validation loss is the minimum, not the last.
    assert losses[-1] > min(losses)


def test_too_few_labels_for_a_test_split_is_an_error(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "ct.parquet", "content_type", 3)
    with pytest.raises(ValueError, match=r"ct\.parquet: 3 labeled rows give .* must not be empty"):
        _train("content_type", labels, tmp_path / "out", tokenizer_dir, epochs=1)


def test_training_is_deterministic(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "sr.parquet", "structured_relevance", 120)
    a = _train("structured_relevance", labels, tmp_path / "a", tokenizer_dir, epochs=1)
    b = _train("structured_relevance", labels, tmp_path / "b", tokenizer_dir, epochs=1)
    assert a["train_loss_per_epoch"] == b["train_loss_per_epoch"] and a["mse"] == b["mse"]


def test_fine_tunes_a_local_base_model(tmp_path, tokenizer_dir):
    """base_model path: a saved classifier directory stands in for a hub model (no network)."""
    labels = write_labels(tmp_path / "sr.parquet", "structured_relevance", 120)
    _train("structured_relevance", labels, tmp_path / "base", tokenizer_dir, epochs=1)
    ct_labels = write_labels(tmp_path / "ct.parquet", "content_type", 120)
    m = _train(
        "content_type",
        ct_labels,
        tmp_path / "ft",
        None,
        epochs=1,
        base_model=str(tmp_path / "base" / "model"),
    )
    assert m["base_model"] == str(tmp_path / "base" / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft" / "model")
    assert model.config.num_labels == 9 and model.config.trellis_task["name"] == "content_type"


def test_bad_label_names_file_and_row(tmp_path, tokenizer_dir):
    rows = planted_rows("content_type", 30)
    rows[5]["label"] = "not_a_class"
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=label_schema(TASKS["content_type"])), path)
    with pytest.raises(ValueError, match=r"bad\.parquet: row 5: column 'label'.*not_a_class"):
        _train("content_type", path, tmp_path / "out", tokenizer_dir, epochs=1)


def test_missing_tokenizer_without_base_model_is_an_error(tmp_path):
    labels = write_labels(tmp_path / "ct.parquet", "content_type", 40)
    with pytest.raises(ValueError, match="tokenizer"):
        _train("content_type", labels, tmp_path / "out", None, epochs=1)


def test_seed_is_respected_for_torch(tmp_path, tokenizer_dir):
    # train_classifier seeds torch itself, so an unrelated draw before it changes nothing.
    labels = write_labels(tmp_path / "sr.parquet", "structured_relevance", 60)
    torch.rand(5)
    a = _train("structured_relevance", labels, tmp_path / "a", tokenizer_dir, epochs=1)
    torch.rand(50)
    b = _train("structured_relevance", labels, tmp_path / "b", tokenizer_dir, epochs=1)
    assert a["mse"] == b["mse"]


def test_metrics_table_rows(tmp_path, tokenizer_dir):
    labels = write_labels(tmp_path / "topic.parquet", "topic", 200)
    rows = metrics_rows(_train("topic", labels, tmp_path / "topic", tokenizer_dir, epochs=1))
    test = {(r["metric"], r["label"]): r for r in rows if r["split"] == "test"}
    assert {("micro_f1", ""), ("macro_f1", ""), ("f1", "topic_0")} <= set(test)
    assert sum(1 for r in rows if r["metric"] == "tuned_threshold") == 17
    assert {r["split"] for r in rows} == {"test", "validation"}
