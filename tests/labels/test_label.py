"""Labeling a task (rule label): backend choice, validation, the labels parquet and its report."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_offline import BOILERPLATE, CS_MATH, JSON_SCHEMA, LABELS_CONFIG, SIMPLE, TEST_FILE
from test_sample import write_part

from trellis.core.tasks import build_tasks
from trellis.labels.label import (
    InvalidCeilingError,
    label_task,
    make_labeler,
    rejected_report_path,
    validate_label,
)
from trellis.labels.offline import OfflineLabeler
from trellis.labels.sample import write_sample

ROOT = Path(__file__).resolve().parents[2]
TASKS = build_tasks({"labels": LABELS_CONFIG})


@pytest.fixture(scope="module")
def labeler() -> OfflineLabeler:
    return OfflineLabeler(LABELS_CONFIG)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="labels.backend"):
        make_labeler(dict(LABELS_CONFIG, backend="claude-batch"))
    assert isinstance(make_labeler(LABELS_CONFIG), OfflineLabeler)


def test_validate_label_names_the_reason():
    topic, cx, ct = TASKS["topic"], TASKS["complexity"], TASKS["content_type"]
    assert validate_label(topic, []) is None and validate_label(topic, [topic.labels[0]]) is None
    assert validate_label(topic, topic.labels[0]) == "not_a_list"
    assert validate_label(topic, ["no_such_topic"]) == "unknown_class"
    assert validate_label(cx, float(cx.low)) is None
    assert validate_label(cx, True) == "not_a_number" and validate_label(cx, float("nan")) == "not_a_number"
    assert (
        validate_label(cx, cx.high + 1) == "out_of_scale"
        and validate_label(cx, cx.low + 0.5) == "out_of_scale"
    )
    assert validate_label(ct, ct.labels[0]) is None and validate_label(ct, "poetry") == "unknown_class"


# ----------------------------------------------------------------------------- label_task


def _sample(tmp_path: Path) -> Path:
    rows = [
        {
            "id": "c1",
            "text": JSON_SCHEMA,
            "source": "starcoderdata",
            "language": "json",
            "path": "schemas/o.json",
        },
        {
            "id": "c2",
            "text": TEST_FILE,
            "source": "starcoderdata",
            "language": "python",
            "path": "tests/test_c.py",
        },
        {
            "id": "c3",
            "text": BOILERPLATE,
            "source": "starcoderdata",
            "language": "python",
            "path": "gen/v.py",
        },
        {"id": "c4", "text": "", "source": "starcoderdata", "language": "python", "path": "empty.py"},
    ]
    path = tmp_path / "sample_code.parquet"
    write_sample(rows, path)
    return path


def test_label_task_outputs_and_report(tmp_path, labeler):
    sample = _sample(tmp_path)
    out = tmp_path / "labels" / "content_type.parquet"
    # One of four rows has an empty text: 25% invalid, exactly at this ceiling, which passes.
    report = label_task(TASKS["content_type"], sample, out, labeler, max_invalid_fraction=0.25)
    table = pq.read_table(out)
    assert table.column_names == [
        "id",
        "text",
        "source",
        "label",
        "backend",
        "model",
        "prompt_version",
        "prompt_hash",
    ]
    assert set(table.column("prompt_hash").to_pylist()) == {labeler.prompt_hash}
    assert table.column("id").to_pylist() == ["c1", "c2", "c3"]
    assert table.column("label").to_pylist()[:2] == ["schema", "test"]
    assert set(table.column("backend").to_pylist()) == {"offline"}
    assert set(table.column("prompt_version").to_pylist()) == {labeler.prompt_version}
    assert report["n_in"] == 4 and report["n_labeled"] == 3
    assert report["invalid"] == 1 and report["invalid_reasons"] == {"empty_text": 1}
    assert report["invalid_records"] == [{"id": "c4", "reason": "empty_text", "detail": None, "attempts": 0}]
    assert sum(report["distribution"].values()) == 3 and list(report["distribution"]) == list(
        TASKS["content_type"].labels
    )

    report = label_task(
        TASKS["structured_relevance"], sample, tmp_path / "sr.parquet", labeler, max_invalid_fraction=0.25
    )
    t = pq.read_table(tmp_path / "sr.parquet")
    assert t.schema.field("label").type == pa.float64()
    assert t.column("label").to_pylist()[0] == 3.0
    assert list(report["distribution"]) == ["0", "1", "2", "3"]


def test_invalid_ceiling_from_config_fails_after_writing_the_report(tmp_path):
    sample = _sample(tmp_path)  # 1 of 4 without a valid label (empty text)
    out = tmp_path / "labels" / "content_type.parquet"
    strict = OfflineLabeler(dict(LABELS_CONFIG, max_invalid_fraction=0.2))
    with pytest.raises(InvalidCeilingError) as err:
        label_task(TASKS["content_type"], sample, out, strict)
    assert str(err.value).startswith(
        "task content_type: 1 of 4 sample documents (25.00%) have no valid label, above "
        "labels.max_invalid_fraction = 0.2; by reason: {'empty_text': 1}; e.g. c4 (empty_text)."
    )
    assert not out.exists()
    rejected = json.loads(rejected_report_path(out).read_text())
    assert rejected["invalid_records"] == [
        {"id": "c4", "reason": "empty_text", "detail": None, "attempts": 0}
    ]
    # The demo's own ceiling: the offline labeler leaves nothing invalid on clean documents.
    assert LABELS_CONFIG["max_invalid_fraction"] == 0.05
    assert OfflineLabeler(LABELS_CONFIG).max_invalid_fraction == 0.05


def test_invalid_ceiling_lists_at_most_five_examples(tmp_path):
    rows = [
        {"id": f"c{i}", "text": "" if i < 7 else TEST_FILE, "source": "starcoderdata", "language": "python"}
        for i in range(10)
    ]
    sample = tmp_path / "sample_code.parquet"
    write_sample(rows, sample)
    out = tmp_path / "ct.parquet"
    labeler = OfflineLabeler(LABELS_CONFIG)
    with pytest.raises(InvalidCeilingError, match=r"7 of 10 sample documents \(70.00%\)") as err:
        label_task(TASKS["content_type"], sample, out, labeler)
    assert "e.g. c0 (empty_text), c1 (empty_text), c2 (empty_text), c3 (empty_text), c4 (empty_text)." in str(
        err.value
    )
    assert "c5 (" not in str(err.value) and not out.exists()
    report = label_task(TASKS["content_type"], sample, out, labeler, max_invalid_fraction=0.7)
    assert report["n_labeled"] == 3 and out.exists() and not rejected_report_path(out).exists()


def test_label_task_topic_is_a_list_and_wrong_source_fails(tmp_path, labeler):
    path = tmp_path / "sample_web.parquet"
    write_sample(
        [
            {"id": "w1", "text": CS_MATH, "source": "fineweb_edu"},
            {"id": "w2", "text": SIMPLE, "source": "fineweb_edu"},
        ],
        path,
    )
    report = label_task(TASKS["topic"], path, tmp_path / "topic.parquet", labeler)
    t = pq.read_table(tmp_path / "topic.parquet")
    assert t.schema.field("label").type == pa.list_(pa.string())
    assert set(t.column("label").to_pylist()[0]) >= {"computer_science", "mathematics"}
    assert t.column("label").to_pylist()[1] == []
    assert report["distribution"]["(none)"] == 1 and report["multi_label_docs"] == 1
    with pytest.raises(ValueError, match=r"row 0: column 'source'"):
        label_task(TASKS["complexity"], _sample(tmp_path), tmp_path / "cx.parquet", labeler)


# ----------------------------------------------------------------------------- scripts


def _snakemake(input, output, params, log):
    from snakemake.iocontainers import Namedlist

    class Job:  # the attributes Snakemake's script directive gives a script
        pass

    job = Job()
    job.input, job.output, job.params = (Namedlist(fromdict=d) for d in (input, output, params))
    job.log, job.threads = Namedlist(fromdict={"log": str(log)}), 1
    return job


def test_label_scripts_end_to_end(tmp_path):
    scripts = ROOT / "scripts"
    parts = [tmp_path / "raw" / "starcoderdata" / f"part-{k}.parquet" for k in range(2)]
    for p in parts:
        write_part(p, "starcoderdata", 30, code=True)
    sample = tmp_path / "samples" / "code.parquet"
    runpy.run_path(
        str(scripts / "label_sample.py"),
        init_globals={
            "snakemake": _snakemake(
                {"parts": [str(p) for p in parts]},
                {"sample": str(sample)},
                {"n": 20, "seed": 3},
                tmp_path / "logs" / "sample.log",
            )
        },
    )
    assert pq.read_table(sample).num_rows == 20
    assert "wrote 20 rows" in (tmp_path / "logs" / "sample.log").read_text()
    out = tmp_path / "labels" / "content_type.parquet"
    report = tmp_path / "labels" / "content_type.json"
    runpy.run_path(
        str(scripts / "label.py"),
        init_globals={
            "snakemake": _snakemake(
                {"sample": str(sample)},
                {"labels": str(out), "report": str(report)},
                {"task": "content_type", "labels": LABELS_CONFIG},
                tmp_path / "logs" / "label.log",
            )
        },
    )
    assert pq.read_table(out).num_rows == 20
    assert json.loads(report.read_text())["n_labeled"] == 20
