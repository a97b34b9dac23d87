"""Stage 0: statistics and checks on planted score distributions, the gate, and a degenerate classifier."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

from trellis.classifiers.train import train_classifier
from trellis.core.tasks import build_tasks
from trellis.curate.stage0 import Stage0GateError, check_names, evaluate_sample, gate, run_stage0
from trellis.labels.label import label_schema

LABELS_CONFIG = {
    "topics": [{"name": f"topic_{i}"} for i in range(17)],
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
SETTINGS = {
    "sample_docs": 120,
    "candidate_thresholds": [0.3, 0.5, 0.7],
    "min_positive_rate": 0.005,
    "max_positive_rate": 0.9,
    "min_multilabel_rate": 0.01,
    "max_multilabel_rate": 0.8,
    "max_no_topic_rate": 0.5,
    "min_regression_std": 0.1,
    "min_class_share": 0.005,
    "max_class_share": 0.9,
    "accept": {},
}
FILLER = "the of and to in is was for on with as by at from that this it be are an".split()
# One marker word per topic: a document's topics are the markers it contains.
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


def _planted_text(rng: random.Random) -> tuple[str, list[int]]:
    topics = sorted(set(rng.sample(range(17), rng.choice([1, 1, 1, 2]))))
    words = [rng.choice(FILLER) for _ in range(rng.randint(8, 24))]
    for k in topics:
        words[rng.randrange(len(words))] = MARKERS[k]
    return " ".join(words), topics


def healthy_outputs(n=500, seed=0):
    rng = np.random.default_rng(seed)
    topic = rng.uniform(0, 0.3, size=(n, 17)).astype(np.float32)
    primary = rng.integers(0, 17, n)
    topic[np.arange(n), primary] = rng.uniform(0.6, 0.95, n)
    second = rng.random(n) < 0.2  # a fifth of the documents span two topics
    topic[np.flatnonzero(second), (primary[second] + 1) % 17] = 0.7
    content = rng.dirichlet(np.ones(9), size=n).astype(np.float32)
    return {
        "topic": topic,
        "complexity": rng.uniform(1, 4, n).astype(np.float32),
        "code_quality": rng.uniform(1, 5, n).astype(np.float32),
        "content_type": content,
    }


def _evaluate(outputs, **overrides):
    tasks = {k: TASKS[k] for k in outputs}
    tuned = {"topic": [0.5] * 17}
    return evaluate_sample(outputs, tasks, tuned, {**SETTINGS, **overrides})


def _failed(checks):
    return sorted(c["check"] for c in checks if not c["passed"])


def test_healthy_classifiers_pass_every_check():
    stats, checks = _evaluate(healthy_outputs())
    assert _failed(checks) == []
    assert len(checks) == len(
        check_names([TASKS[k] for k in ("topic", "complexity", "code_quality", "content_type")])
    )
    assert 0.15 < stats["topic"]["multilabel_rate"] < 0.25
    assert set(stats["topic"]["positive_rate_at"]) == {"0.30", "0.50", "0.70"}
    assert sum(stats["complexity"]["histogram"]["counts"]) == 500
    assert abs(sum(stats["content_type"]["class_share"].values()) - 1) < 1e-6


def test_planted_degenerate_distributions_fail_the_named_checks():
    out = healthy_outputs()
    out["topic"][:, 3] = 0.99  # always on
    out["topic"][:, 5] = 0.01  # never on
    out["complexity"][:] = 2.5 + np.random.default_rng(1).normal(0, 0.01, len(out["complexity"]))  # collapsed
    probs = np.full_like(out["content_type"], 0.01)
    probs[:, 0] = 0.92  # everything is "library"
    out["content_type"] = probs
    _, checks = _evaluate(out)
    failed = _failed(checks)
    assert "topic:always_on:topic_3" in failed and "topic:never_on:topic_5" in failed
    assert "topic:multilabel_rate" in failed  # topic 3 is on everywhere, so every document is multi-label
    assert "complexity:collapsed" in failed and "code_quality:collapsed" not in failed
    assert "content_type:dominant" in failed and "content_type:never_predicted:schema" in failed
    why = next(c for c in checks if c["check"] == "topic:always_on:topic_3")
    assert "assigns it to (almost) everything" in why["why"] and why["value"] == 1.0


def test_gate_accepts_only_what_the_config_names():
    out = healthy_outputs()
    out["topic"][:, 5] = 0.01
    _, checks = _evaluate(out)
    tasks = [TASKS["topic"], TASKS["complexity"]]
    summary = gate("fineweb_edu", checks, {}, tasks)
    assert not summary["passed"] and summary["failed"] == ["topic:never_on:topic_5"]
    summary = gate("fineweb_edu", checks, {"topic:never_on:topic_5": "rare in this crawl"}, tasks)
    assert summary["passed"] and summary["accepted"] == {"topic:never_on:topic_5": "rare in this crawl"}
    with pytest.raises(
        ValueError, match=r"curation.stage0.accept.fineweb_edu names \['topic:never_on:topic_99'\]"
    ):
        gate("fineweb_edu", checks, {"topic:never_on:topic_99": "typo"}, tasks)


# --------------------------------------------------------------------------------------------
# The gate on a real (tiny) classifier
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def topic_classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage0")
    rng = random.Random(0)
    planted = [_planted_text(rng) for _ in range(600)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [t for t, _ in planted],
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>", "<|padding|>", "[CLS]", "[SEP]", "[MASK]"],
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
    ).save_pretrained(root / "tok")
    task = TASKS["topic"]
    rows = [
        {
            "id": f"doc-{i}",
            "text": text,
            "source": "fineweb_edu",
            "label": [task.labels[k] for k in topics],
            "backend": "offline",
            "model": "t",
            "prompt_version": "t",
        }
        for i, (text, topics) in enumerate(planted)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=label_schema(task)), root / "labels.parquet")
    train_classifier(
        task,
        root / "labels.parquet",
        root / "topic",
        root / "tok",
        None,
        {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
        max_length=48,
        epochs=6,
        batch_size=16,
        learning_rate=3e-3,
        validation_fraction=0.2,
        seed=1,
        threads=1,
    )
    raw = root / "raw/fineweb_edu/part-0.parquet"
    raw.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": [f"r{i}" for i in range(200)],
                "text": [_planted_text(rng)[0] for _ in range(200)],
                "source": ["fineweb_edu"] * 200,
            }
        ),
        raw,
    )
    return root


def _run(root, model_dir, out, settings, thresholds=None):
    return run_stage0(
        "fineweb_edu",
        [root / "raw/fineweb_edu/part-0.parquet"],
        {"topic": model_dir},
        {"topic": TASKS["topic"]},
        settings,
        out / "report.json",
        out / "stage0.png",
        seed=3,
        batch_size=32,
        max_length=48,
        threads=1,
        thresholds=thresholds,
    )


def test_gate_stops_on_a_planted_degenerate_classifier(topic_classifier, tmp_path):
    root = topic_classifier
    # Plant the degenerate classifier: topic_7's output bias so large its sigmoid is ~1 everywhere.
    model = AutoModelForSequenceClassification.from_pretrained(root / "topic/model")
    with torch.no_grad():
        model.classifier.bias[7] = 30.0
    model.save_pretrained(tmp_path / "degenerate")
    (tmp_path / "degenerate").joinpath("tokenizer.json").write_bytes(
        (root / "topic/model/tokenizer.json").read_bytes()
    )
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (root / "topic/model" / name).exists():
            (tmp_path / "degenerate" / name).write_bytes((root / "topic/model" / name).read_bytes())
    # The healthy classifier's run tells which checks the planted fault alone adds.
    lenient = {
        **SETTINGS,
        "min_positive_rate": 0.0,
        "min_multilabel_rate": 0.0,
        "max_no_topic_rate": 1.0,
        "max_multilabel_rate": 1.0,
    }
    report = _run(root, root / "topic/model", tmp_path / "healthy", lenient)
    assert report["passed"] and (tmp_path / "healthy/report.json").exists()
    assert (tmp_path / "healthy/stage0.png").read_bytes()[:4] == b"\x89PNG"

    with pytest.raises(Stage0GateError) as err:
        _run(root, tmp_path / "degenerate", tmp_path / "bad", lenient)
    message = str(err.value)
    assert "Stage 0 gate stopped curation of fineweb_edu" in message
    assert "topic:always_on:topic_7" in message and "assigns it to (almost) everything" in message
    assert not (tmp_path / "bad/report.json").exists()  # no output: filter cannot run
    failed = json.loads((tmp_path / "bad/report.failed.json").read_text())
    assert failed["failed"] == ["topic:always_on:topic_7"]

    # Accepting the named check lets it through, with the reason kept in the report.
    accepted = {**lenient, "accept": {"fineweb_edu": {"topic:always_on:topic_7": "planted for this test"}}}
    report = _run(root, tmp_path / "degenerate", tmp_path / "bad", accepted)
    assert report["passed"] and report["accepted"] == {"topic:always_on:topic_7": "planted for this test"}
    assert not (tmp_path / "bad/report.failed.json").exists()


def test_pinned_thresholds_are_checked_by_name():
    out = healthy_outputs()
    tasks = {k: TASKS[k] for k in out}
    pinned = [0.5] * 17
    pinned[4], pinned[6] = 0.99, 0.0  # topic_4 never reaches it, topic_6 always does
    stats, checks = evaluate_sample(
        out,
        tasks,
        {"topic": [0.5] * 17},
        SETTINGS,
        {"topic": pinned},
        "curation.fineweb_edu.topic_thresholds",
    )
    failed = _failed(checks)
    assert "topic:never_on_pinned:topic_4" in failed and "topic:always_on_pinned:topic_6" in failed
    assert "topic:never_on:topic_4" not in failed  # the classifier itself is healthy at its tuned threshold
    why = next(c for c in checks if c["check"] == "topic:never_on_pinned:topic_4")["why"]
    assert "'topic_4'" in why and "threshold 0.99" in why and "curation.fineweb_edu.topic_thresholds" in why
    assert stats["topic"]["pinned_thresholds"]["topic_4"] == pytest.approx(0.99)
    names = check_names([TASKS["topic"]], pinned=["topic"])
    assert {"topic:never_on_pinned:topic_4", "topic:always_on_pinned:topic_6"} <= set(names)
    assert not any("pinned" in n for n in check_names([TASKS["topic"]]))  # calibrated: no pinned checks
    summary = gate("fineweb_edu", checks, {}, [TASKS["topic"]], pinned=["topic"])
    assert not summary["passed"] and "topic:never_on_pinned:topic_4" in summary["failed"]


def test_report_records_the_thresholds_the_filter_applies(topic_classifier, tmp_path):
    root = topic_classifier
    lenient = {
        **SETTINGS,
        "min_positive_rate": 0.0,
        "min_multilabel_rate": 0.0,
        "max_no_topic_rate": 1.0,
        "max_multilabel_rate": 1.0,
    }
    labels = TASKS["topic"].labels
    calibrated = _run(root, root / "topic/model", tmp_path / "cal", lenient)
    assert calibrated["threshold_source"] == {"topic": "calibrated"}
    assert calibrated["thresholds"]["topic"] == calibrated["stats"]["topic"]["tuned_thresholds"]
    pinned = {t: 0.5 for t in labels} | {labels[2]: 1.0}  # a sigmoid never reaches 1.0 here
    with pytest.raises(Stage0GateError, match=rf"topic:never_on_pinned:{labels[2]}"):
        _run(
            root,
            root / "topic/model",
            tmp_path / "pin",
            {**lenient, "min_positive_rate": 0.001},
            {"topic": pinned},
        )
    failed = json.loads((tmp_path / "pin/report.failed.json").read_text())
    assert failed["thresholds"]["topic"] == pinned and failed["threshold_source"] == {"topic": "pinned"}
    with pytest.raises(ValueError, match=r"config key curation.fineweb_edu.topic_thresholds must be"):
        run_stage0(
            "fineweb_edu",
            [],
            {},
            {"topic": TASKS["topic"]},
            lenient,
            tmp_path / "x/report.json",
            tmp_path / "x/stage0.png",
            seed=3,
            batch_size=32,
            max_length=48,
            thresholds={"topic": {labels[0]: 0.5}},
        )
