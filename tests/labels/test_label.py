"""Labeling sample and the offline labeler."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from trellis.labels.label import OfflineLabeler, label_task, make_labeler, sample_for_labeling, write_sample
from trellis.core.stats import Tally
from trellis.core.tasks import build_tasks

ROOT = Path(__file__).resolve().parents[2]
LABELS_CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["labels"]
TASKS = build_tasks({"labels": LABELS_CONFIG})


@pytest.fixture(scope="module")
def labeler() -> OfflineLabeler:
    return OfflineLabeler(LABELS_CONFIG)


def _write_part(path: Path, source: str, n: int, code: bool = False, start: int = 0) -> list[str]:
    ids = [f"{source}-{path.stem}-{i}" for i in range(start, start + n)]
    cols = {"id": ids, "text": [f"document {i} about things" for i in range(n)], "source": [source] * n,
            "url": ["http://x"] * n}
    if code:
        cols.update(language=["python"] * n, path=[f"src/m{i}.py" for i in range(n)],
                    repo=["r"] * n, stars=[1] * n)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path, row_group_size=37)
    return ids


# ----------------------------------------------------------------------------- sampling


def test_sample_is_stratified_and_deterministic(tmp_path):
    parts = [tmp_path / "raw" / "fineweb_edu" / f"part-{k}.parquet" for k in range(3)]
    all_ids = [set(_write_part(p, "fineweb_edu", 200)) for p in parts]
    a = sample_for_labeling(parts, 90, seed=1)
    b = sample_for_labeling(list(parts), 90, seed=1)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert len(a) == 90 and len({r["id"] for r in a}) == 90
    assert [sum(r["id"] in ids for r in a) for ids in all_ids] == [30, 30, 30]
    c = sample_for_labeling(parts, 90, seed=2)
    assert {r["id"] for r in a} != {r["id"] for r in c}
    # Not just the first rows of each part: the reservoir reaches the whole file.
    positions = [int(r["id"].rsplit("-", 1)[1]) for r in a]
    assert max(positions) > 150


def test_sample_spreads_short_parts_shortfall(tmp_path):
    small = tmp_path / "part-0.parquet"
    big = tmp_path / "part-1.parquet"
    _write_part(small, "fineweb_edu", 10)
    big_ids = set(_write_part(big, "fineweb_edu", 300))
    tally = Tally("label_sample")
    rows = sample_for_labeling([small, big], 100, seed=0, tally=tally)
    assert len(rows) == 100 and sum(r["id"] in big_ids for r in rows) == 90
    d = tally.to_dict()
    assert d["docs_in"] == 310 and d["docs_out"] == 100 and d["dropped"] == {"not_drawn": 210}
    assert d["unaccounted"] == 0


def test_sample_counts_empty_text_and_keeps_code_metadata(tmp_path):
    part = tmp_path / "part-0.parquet"
    _write_part(part, "starcoderdata", 20, code=True)
    t = pq.read_table(part).to_pylist()
    t[3]["text"] = "   "
    pq.write_table(pa.Table.from_pylist(t), part)
    tally = Tally("s")
    rows = sample_for_labeling([part], 50, seed=0, tally=tally)
    assert len(rows) == 19 and tally.dropped["empty_text"] == 1
    out = tmp_path / "sample.parquet"
    write_sample(rows, out)
    table = pq.read_table(out)
    assert table.column_names == ["id", "text", "source", "language", "path"]  # no repo/stars
    assert table.num_rows == 19


def test_sample_missing_id_names_file_and_row(tmp_path):
    part = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({"id": ["a", None], "text": ["x", "y"], "source": ["s", "s"]}), part)
    with pytest.raises(ValueError, match=r"part-0\.parquet: row 1: column 'id'"):
        sample_for_labeling([part], 2, seed=0)


# ----------------------------------------------------------------------------- labeler

CS_MATH = (
    "A sorting algorithm orders a list, and its running time is analysed with a recurrence "
    "equation. We give a proof by induction that the algorithm is correct and bound the "
    "polynomial cost of the program. The compiler and the runtime do not change the theorem: "
    "the number of comparisons satisfies T(n) = 2T(n/2) + n, therefore T(n) = n log n."
)
SIMPLE = "My dog likes the park. We go there every day. The sun is warm. He runs with a ball. Then we go home."
TECHNICAL = (
    "Suppose the operator is bounded and self-adjoint on the separable Hilbert space; then, by the "
    "spectral theorem, it admits a decomposition into orthogonal projections, and consequently the "
    "associated eigenvalue distribution is determined uniquely by its characteristic measure. It "
    "follows that the perturbation, whenever sufficiently small in norm, preserves the isolated "
    "eigenvalues; therefore the resolvent R(z) = (A - z)^{-1} remains analytic outside the spectrum."
)
GOOD_CODE = '''"""Parse user records from the accounts export."""

from dataclasses import dataclass


@dataclass
class User:
    """A user as stored in the accounts table."""

    name: str
    email: str


def parse_user(record: dict) -> User:
    """Build a User from a raw record, rejecting rows without an email."""
    # The email is the account key, so a missing one is an error rather than a default.
    if "email" not in record:
        raise ValueError("record has no email")
    return User(name=record.get("name", ""), email=record["email"])
'''
BOILERPLATE = "\n".join([f"x{i} = 0" for i in range(40)] + [f"print(x{i})" for i in range(40)])
JSON_SCHEMA = """{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Order",
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "items": {"type": "array", "items": {"type": "string"}}
  },
  "required": ["id"]
}"""
TEST_FILE = '''import pytest
from shop.cart import Cart


def test_empty_cart_total_is_zero():
    assert Cart().total() == 0


def test_add_item():
    cart = Cart()
    cart.add("apple", 3)
    assert cart.total() == 3
'''


def test_topics_multi_label_and_none(labeler):
    assert set(labeler.topic(CS_MATH)) >= {"computer_science", "mathematics"}
    assert labeler.topic(SIMPLE) == []
    assert labeler.topic("The patient had a symptom of the disease and needed treatment.") == ["medicine_health"]
    # Whole words only: "software" must not count as the history keyword "war".
    assert "history" not in labeler.topic("Software and more software.")


def test_complexity_orders_simple_below_technical(labeler):
    simple, technical = labeler.complexity(SIMPLE), labeler.complexity(TECHNICAL)
    assert simple == 1 and technical >= 3 and simple < technical


def test_code_quality(labeler):
    assert labeler.code_quality(BOILERPLATE, "python", "gen/values.py") <= 2
    assert labeler.code_quality(GOOD_CODE, "python", "src/accounts/users.py") >= 4


def test_structured_relevance(labeler):
    assert labeler.structured_relevance(JSON_SCHEMA, "json", "schemas/order.json") == 3
    assert labeler.structured_relevance(BOILERPLATE, "python", "gen/values.py") == 0
    assert labeler.structured_relevance("CREATE TABLE users (id INT PRIMARY KEY, name TEXT);", "sql", "db.sql") == 3


def test_content_type(labeler):
    assert labeler.content_type(JSON_SCHEMA, "json", "schemas/order.json") == "schema"
    assert labeler.content_type(TEST_FILE, "python", "tests/test_cart.py") == "test"
    assert labeler.content_type("name: ci\non: [push]\n", "yaml", ".github/workflows/ci.yml") == "configuration"
    assert labeler.content_type('[{"id": 1}, {"id": 2}]', "json", "fixtures/users.json") == "data"
    assert labeler.content_type("# Generated by protoc. DO NOT EDIT.\nx = 1\n", "python", "a_pb2.py") == "generated"
    main = "import argparse\n\ndef main():\n    pass\n\nif __name__ == '__main__':\n    main()\n"
    assert labeler.content_type(main, "python", "tools/run.py") == "script"
    assert labeler.content_type(GOOD_CODE, "python", "src/accounts/users.py") == "library"


def test_prompt_version_tracks_taxonomy(labeler):
    changed = dict(LABELS_CONFIG, topics=LABELS_CONFIG["topics"][:-1])
    assert OfflineLabeler(changed).prompt_version != labeler.prompt_version
    assert OfflineLabeler(dict(LABELS_CONFIG)).prompt_version == labeler.prompt_version


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="labels.backend"):
        make_labeler(dict(LABELS_CONFIG, backend="claude-batch"))
    assert isinstance(make_labeler(LABELS_CONFIG), OfflineLabeler)


# ----------------------------------------------------------------------------- label_task


def _sample(tmp_path: Path) -> Path:
    rows = [
        {"id": "c1", "text": JSON_SCHEMA, "source": "starcoderdata", "language": "json", "path": "schemas/o.json"},
        {"id": "c2", "text": TEST_FILE, "source": "starcoderdata", "language": "python", "path": "tests/test_c.py"},
        {"id": "c3", "text": BOILERPLATE, "source": "starcoderdata", "language": "python", "path": "gen/v.py"},
        {"id": "c4", "text": "", "source": "starcoderdata", "language": "python", "path": "empty.py"},
    ]
    path = tmp_path / "sample_code.parquet"
    write_sample(rows, path)
    return path


def test_label_task_outputs_and_report(tmp_path, labeler):
    sample = _sample(tmp_path)
    out = tmp_path / "labels" / "content_type.parquet"
    report = label_task(TASKS["content_type"], sample, out, labeler)
    table = pq.read_table(out)
    assert table.column_names == ["id", "text", "source", "label", "backend", "model", "prompt_version",
                                  "prompt_hash"]
    assert set(table.column("prompt_hash").to_pylist()) == {labeler.prompt_hash}
    assert table.column("id").to_pylist() == ["c1", "c2", "c3"]
    assert table.column("label").to_pylist()[:2] == ["schema", "test"]
    assert set(table.column("backend").to_pylist()) == {"offline"}
    assert set(table.column("prompt_version").to_pylist()) == {labeler.prompt_version}
    assert report["n_in"] == 4 and report["n_labeled"] == 3
    assert report["invalid"] == 1 and report["invalid_reasons"] == {"empty_text": 1}
    assert report["invalid_records"] == [{"id": "c4", "reason": "empty_text", "detail": None, "attempts": 0}]
    assert sum(report["distribution"].values()) == 3 and list(report["distribution"]) == list(TASKS["content_type"].labels)

    report = label_task(TASKS["structured_relevance"], sample, tmp_path / "sr.parquet", labeler)
    t = pq.read_table(tmp_path / "sr.parquet")
    assert t.schema.field("label").type == pa.float64()
    assert t.column("label").to_pylist()[0] == 3.0
    assert list(report["distribution"]) == ["0", "1", "2", "3"]


def test_label_task_topic_is_a_list_and_wrong_source_fails(tmp_path, labeler):
    path = tmp_path / "sample_web.parquet"
    write_sample([{"id": "w1", "text": CS_MATH, "source": "fineweb_edu"},
                  {"id": "w2", "text": SIMPLE, "source": "fineweb_edu"}], path)
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
        _write_part(p, "starcoderdata", 30, code=True)
    sample = tmp_path / "samples" / "code.parquet"
    runpy.run_path(str(scripts / "label_sample.py"), init_globals={"snakemake": _snakemake(
        {"parts": [str(p) for p in parts]}, {"sample": str(sample)}, {"n": 20, "seed": 3},
        tmp_path / "logs" / "sample.log")})
    assert pq.read_table(sample).num_rows == 20
    assert "wrote 20 rows" in (tmp_path / "logs" / "sample.log").read_text()
    out = tmp_path / "labels" / "content_type.parquet"
    report = tmp_path / "labels" / "content_type.json"
    runpy.run_path(str(scripts / "label.py"), init_globals={"snakemake": _snakemake(
        {"sample": str(sample)}, {"labels": str(out), "report": str(report)},
        {"task": "content_type", "labels": LABELS_CONFIG}, tmp_path / "logs" / "label.log")})
    assert pq.read_table(out).num_rows == 20
    assert json.loads(report.read_text())["n_labeled"] == 20
