"""score_part: one row per input id, in order; full topic vector; no text; config cross-check."""

from __future__ import annotations

import random
import runpy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from trellis.classifiers.score import score_part
from trellis.classifiers.train import train_classifier
from trellis.core.tasks import build_tasks
from trellis.labels.label import label_schema

WORDS = (
    "the of and to in is was for on with as by at from that this it be are an which or one "
    "apple river planet violin carbon engine castle harbor garden silver"
).split()
LABELS_CONFIG = {
    "backend": "offline",
    "model": "test",
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
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def _text(rng: random.Random, lo: int = 3, hi: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _labels(task_name: str, n: int, rng: random.Random) -> list:
    task = TASKS[task_name]
    if task.kind == "multilabel":
        return [[task.labels[rng.randrange(3)]] for _ in range(n)]
    if task.kind == "regression":
        return [float(rng.randint(int(task.low), int(task.high))) for _ in range(n)]
    return [task.labels[rng.randrange(len(task.labels))] for _ in range(n)]


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clf")
    rng = random.Random(1)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [_text(rng) for _ in range(300)],
        trainers.BpeTrainer(
            vocab_size=400,
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
    dirs = {}
    for name in ("topic", "complexity", "content_type"):
        task = TASKS[name]
        rows = [
            {
                "id": f"{name}-{i}",
                "text": _text(rng),
                "source": task.source,
                "label": lab,
                "backend": "offline",
                "model": "test",
                "prompt_version": "t",
            }
            for i, lab in enumerate(_labels(name, 60, rng))
        ]
        path = root / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=label_schema(task)), path)
        train_classifier(
            task,
            path,
            root / name,
            root / "tok",
            None,
            TINY,
            max_length=64,
            epochs=1,
            batch_size=16,
            learning_rate=1e-3,
            validation_fraction=0.25,
            seed=3,
            threads=1,
        )
        dirs[name] = root / name / "model"
    return dirs


def _part(path: Path, n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    # Lengths vary widely (and exceed max_length) so the length sort really reorders rows.
    ids = [f"fineweb_edu-{i:05d}" for i in range(n)]
    texts = [_text(rng, 1, 200) for _ in range(n)]
    pq.write_table(
        pa.table({"id": ids, "text": texts, "source": ["fineweb_edu"] * n, "url": ["u"] * n}),
        path,
        row_group_size=64,
    )
    return ids


def test_scores_one_row_per_id_in_order(tmp_path, classifiers):
    ids = _part(tmp_path / "part-0.parquet", 300)
    stats = score_part(
        tmp_path / "part-0.parquet",
        classifiers,
        tmp_path / "scores.parquet",
        batch_size=16,
        max_length=64,
        tasks=TASKS,
        threads=1,
        window_rows=128,
    )
    table = pq.read_table(tmp_path / "scores.parquet")
    assert table.column("id").to_pylist() == ids
    assert "text" not in table.column_names
    assert table.column_names == ["id", "topic", "complexity", "content_type", "content_type_probs"]
    assert table.schema.field("topic").type == pa.list_(pa.float32())
    assert table.schema.field("complexity").type == pa.float32()
    topic = np.array(table.column("topic").to_pylist())
    assert topic.shape == (300, 17) and ((topic >= 0) & (topic <= 1)).all()
    cx = np.array(table.column("complexity").to_pylist())
    assert ((cx >= 1) & (cx <= 4)).all()
    probs = np.array(table.column("content_type_probs").to_pylist())
    assert probs.shape == (300, 9) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    labels = TASKS["content_type"].labels
    assert table.column("content_type").to_pylist() == [labels[k] for k in probs.argmax(axis=1)]
    assert stats["rows"] == 300 and stats["tasks"] == ["topic", "complexity", "content_type"]


def test_scores_do_not_depend_on_window_or_batch(tmp_path, classifiers):
    _part(tmp_path / "part-0.parquet", 90)
    only = {"topic": classifiers["topic"]}
    score_part(
        tmp_path / "part-0.parquet", only, tmp_path / "a.parquet", batch_size=7, max_length=64, window_rows=20
    )
    score_part(
        tmp_path / "part-0.parquet",
        only,
        tmp_path / "b.parquet",
        batch_size=64,
        max_length=64,
        window_rows=1000,
    )
    a = np.array(pq.read_table(tmp_path / "a.parquet").column("topic").to_pylist())
    b = np.array(pq.read_table(tmp_path / "b.parquet").column("topic").to_pylist())
    assert pq.read_table(tmp_path / "a.parquet").column_names == ["id", "topic"]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_changed_taxonomy_is_refused(tmp_path, classifiers):
    _part(tmp_path / "part-0.parquet", 5)
    cfg = dict(LABELS_CONFIG, topics=LABELS_CONFIG["topics"][:16])
    with pytest.raises(ValueError, match="trained with"):
        score_part(
            tmp_path / "part-0.parquet",
            {"topic": classifiers["topic"]},
            tmp_path / "s.parquet",
            batch_size=8,
            max_length=64,
            tasks=build_tasks({"labels": cfg}),
        )
    assert not (tmp_path / "s.parquet").exists()


def test_null_text_names_row(tmp_path, classifiers):
    pq.write_table(
        pa.table({"id": ["a", "b"], "text": ["fine", None], "source": ["fineweb_edu"] * 2}),
        tmp_path / "part-1.parquet",
    )
    with pytest.raises(ValueError, match=r"part-1\.parquet: row 1 \(id b\): column 'text'"):
        score_part(
            tmp_path / "part-1.parquet",
            {"complexity": classifiers["complexity"]},
            tmp_path / "s.parquet",
            batch_size=8,
            max_length=64,
        )
    assert not (tmp_path / "s.parquet").exists()


def test_score_script(tmp_path, classifiers):
    from snakemake.iocontainers import Namedlist

    class Job:
        pass

    ids = _part(tmp_path / "part-0.parquet", 20)
    job = Job()
    job.input = Namedlist(
        fromdict={
            "part": str(tmp_path / "part-0.parquet"),
            "classifiers": [str(classifiers["topic"]), str(classifiers["complexity"])],
        }
    )
    job.output = Namedlist(fromdict={"scores": str(tmp_path / "scores" / "part-0.parquet")})
    job.params = Namedlist(
        fromdict={
            "tasks": ["topic", "complexity"],
            "labels": LABELS_CONFIG,
            "batch_size": 8,
            "max_length": 64,
        }
    )
    job.log, job.threads = Namedlist(fromdict={"log": str(tmp_path / "score.log")}), 1
    runpy.run_path(
        str(Path(__file__).resolve().parents[2] / "scripts" / "score.py"), init_globals={"snakemake": job}
    )
    table = pq.read_table(tmp_path / "scores" / "part-0.parquet")
    assert table.column_names == ["id", "topic", "complexity"] and table.column("id").to_pylist() == ids
    assert "scored 20 documents" in (tmp_path / "score.log").read_text()


def test_compression_prefilter_skips_inference_and_stores_the_ratio(tmp_path, classifiers):
    boilerplate = "INSERT INTO migrations (id, name) VALUES (1, 'init');\n" * 300
    rng = random.Random(9)
    texts = [_text(rng, 20, 60), boilerplate, _text(rng, 20, 60), "", boilerplate + "-- end\n"]
    ids = [f"starcoderdata-{i}" for i in range(len(texts))]
    pq.write_table(
        pa.table({"id": ids, "text": texts, "source": ["starcoderdata"] * len(texts)}),
        tmp_path / "part-0.parquet",
    )
    only = {"content_type": classifiers["content_type"]}
    stats = score_part(
        tmp_path / "part-0.parquet",
        only,
        tmp_path / "s.parquet",
        batch_size=8,
        max_length=64,
        skip_below_compression_ratio=0.10,
    )
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.column_names == ["id", "compression_ratio", "content_type", "content_type_probs"]
    ratios = table.column("compression_ratio").to_pylist()
    assert ratios[1] < 0.10 and ratios[4] < 0.10 and ratios[0] > 0.10 and ratios[3] is None
    # Boilerplate never reached the model: null scores. Everything else was scored.
    skipped = [v is None for v in table.column("content_type").to_pylist()]
    assert skipped == [False, True, False, False, True]
    assert table.column("content_type_probs").to_pylist()[1] is None
    assert stats["scored"] == 3 and stats["prefiltered_compression_ratio"] == 2
    # The scored rows are what scoring them alone gives.
    score_part(tmp_path / "part-0.parquet", only, tmp_path / "all.parquet", batch_size=8, max_length=64)
    every = pq.read_table(tmp_path / "all.parquet").column("content_type_probs").to_pylist()
    kept = table.column("content_type_probs").to_pylist()
    for i in (0, 2, 3):
        np.testing.assert_allclose(kept[i], every[i], atol=1e-5)
