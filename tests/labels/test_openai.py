"""The OpenAI labeling backends against a local OpenAI-compatible server (tests/labels/openai_stub.py).

Nothing here reaches the network: the stub listens on 127.0.0.1, started and stopped by each test.
"""

from __future__ import annotations

import copy
import json
import logging
import runpy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from openai_stub import OpenAIStub

from trellis.core.tasks import build_tasks
from trellis.labels.label import InvalidCeilingError, label_task, make_labeler
from trellis.labels.openai_batch import BatchLabeler
from trellis.labels.openai_chat import RequestCache
from trellis.labels.prompts import PromptBuilder
from trellis.labels.sample import write_sample
from trellis.labels.settings import labels_params, labels_runtime, merge_labels_config

ROOT = Path(__file__).resolve().parents[2]
STUDY = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TASKS = build_tasks({"labels": STUDY["labels"]})
SECRET = "sk-test-TRELLIS-0123456789-do-not-log-me"


def labels_config(base_url: str, backend: str, **batch) -> dict:
    cfg = copy.deepcopy(STUDY["labels"])
    cfg["backend"] = backend
    cfg["request"]["base_url"] = base_url
    cfg["batch"].update(**{"poll_seconds": 0.01, **batch})
    cfg["chat"].update(concurrency=4, backoff_seconds=0.001, max_backoff_seconds=0.01, max_retries=3)
    cfg["max_invalid_fraction"] = 1.0  # these tests provoke invalid answers; the ceiling has its own
    return cfg


def web_sample(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "sample-web.parquet"
    write_sample([{"id": f"web-{i}", "text": t, "source": "fineweb_edu"} for i, t in enumerate(texts)], path)
    return path


PLAIN = [
    f"Document {i}: the integral of a polynomial, proved by induction, costs $5 {{x}}." for i in range(10)
]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


@pytest.fixture
def stub():
    with OpenAIStub(SECRET, lifetime=60) as s:
        yield s


def run(tmp_path, cfg, sample, task="complexity"):
    out = tmp_path / "labels" / f"{task}.parquet"
    report = label_task(
        TASKS[task], sample, out, make_labeler(cfg), work_dir=tmp_path / "labels" / f"{task}.work"
    )
    return pq.read_table(out), report


# ----------------------------------------------------------------------------- prompts


def test_prompts_render_validate_and_hash():
    cfg = STUDY["labels"]
    for name, task in TASKS.items():
        b = PromptBuilder(task, cfg, max_text_chars=50)
        msgs = b.messages(
            {"id": "x", "text": "A $dollar {brace} text " * 10, "path": "a.py", "language": "python"}
        )
        assert [m["role"] for m in msgs] == ["system", "user"]
        assert "A $dollar {brace}" in msgs[1]["content"] and "[... truncated ...]" in msgs[1]["content"]
        assert b.prompt_version == f"{name}-v1" and len(b.prompt_hash) == 16
        assert b.parse("{not json")[1] == "malformed_json"
        assert b.parse('{"other": 1}')[1] == "schema_invalid"
    topic = PromptBuilder(TASKS["topic"], cfg, 100)
    assert "- mathematics: Pure and applied" in topic.messages({"text": "t"})[1]["content"]
    assert topic.parse('{"topics": ["mathematics", "computer_science"]}') == (
        ["computer_science", "mathematics"],
        None,
        None,
    )  # taxonomy order
    assert topic.parse('{"topics": ["astrology"]}')[1] == "schema_invalid"
    assert PromptBuilder(TASKS["complexity"], cfg, 100).parse('{"level": 3}') == (3.0, None, None)
    assert PromptBuilder(TASKS["complexity"], cfg, 100).parse('{"level": 5}')[1] == "schema_invalid"
    fewer = dict(cfg, topics=cfg["topics"][:-1])
    assert PromptBuilder(build_tasks({"labels": fewer})["topic"], fewer, 100).prompt_hash != topic.prompt_hash


def test_config_backends_and_rerun_params():
    assert STUDY["labels"]["backend"] == "openai-batch" and DEMO["labels"]["backend"] == "offline"
    offline = labels_params(DEMO["labels"])
    assert set(offline) == {"backend", "model", "topics", "content_types"}  # as before issue 3
    switched = labels_params(dict(DEMO["labels"], backend="openai-chat"))
    assert (
        switched["backend"] == "openai-chat"
        and "request" in switched
        and "api_key_env" not in switched["request"]
    )
    tuned = copy.deepcopy(STUDY["labels"])
    tuned["batch"]["poll_seconds"] = 1
    tuned["prices"]["input_per_million"] = 9
    assert labels_params(tuned) == labels_params(STUDY["labels"])  # operational: no rerun
    assert labels_runtime(tuned)["batch"]["poll_seconds"] == 1
    # The invalid ceiling decides whether labels are accepted, not which: read at run time.
    tuned["max_invalid_fraction"] = 0.5
    assert labels_params(tuned) == labels_params(STUDY["labels"])
    merged = merge_labels_config(labels_params(tuned), labels_runtime(tuned))
    assert merged["max_invalid_fraction"] == 0.5 and make_labeler(merged).max_invalid_fraction == 0.5
    assert STUDY["labels"]["max_invalid_fraction"] == 0.02
    with pytest.raises(ValueError, match=r"labels.max_invalid_fraction = 1.5 must be a number in \[0, 1\]"):
        make_labeler(dict(STUDY["labels"], max_invalid_fraction=1.5))


def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    sample = web_sample(tmp_path, PLAIN[:1])
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        run(tmp_path, labels_config("http://127.0.0.1:9/v1", "openai-batch"), sample)


# ----------------------------------------------------------------------------- openai-batch


def test_batch_clean_split_by_limits_and_rerun_asks_nothing(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN)
    cfg = labels_config(stub.base_url, "openai-batch", max_requests=4)
    table, report = run(tmp_path, cfg, sample)
    assert table.num_rows == 10 and set(table.column("label").to_pylist()) == {1.0}
    assert table.column_names[-4:] == ["backend", "model", "prompt_version", "prompt_hash"]
    assert set(table.column("backend").to_pylist()) == {"openai-batch"}
    assert set(table.column("model").to_pylist()) == {STUDY["labels"]["model"]}
    assert set(table.column("prompt_version").to_pylist()) == {"complexity-v1"}
    info = report["backend_info"]
    assert info["batches"] == 3 and info["rounds"] == 1 and info["batch_statuses"] == {"completed": 3}
    assert info["usage"]["answered_requests"] == 10 and info["usage"]["cost_usd"] > 0
    assert info["estimated_usd_before_submission"] > 0 and report["invalid"] == 0
    assert sorted(stub.state.billed.values()) == [1] * 10
    calls = dict(stub.state.calls)
    assert calls["batches.create"] == 3 and calls["files.create"] == 3
    # A rerun (the labels were deleted) reads the manifest and downloads: no upload, no batch.
    (tmp_path / "labels" / "complexity.parquet").unlink()
    table2, _ = run(tmp_path, cfg, sample)
    assert table2.equals(table) and dict(stub.state.calls) == calls

    # Splitting by bytes: every request is ~1.5 KB, so a 5 KB limit fits a few per batch.
    cfg_bytes = labels_config(stub.base_url, "openai-batch", max_bytes=5000)
    _, report = run(tmp_path / "bytes", cfg_bytes, sample)
    manifest = json.loads(Path(report["backend_info"]["manifest"]).read_text())
    assert len(manifest["batches"]) >= 3 and sum(b["n_requests"] for b in manifest["batches"]) == 10
    assert all(b["bytes"] <= 5000 for b in manifest["batches"])


def test_batch_expired_half_resubmits_only_the_rest(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:6])
    stub.state.expire_after = [3]  # the first batch expires with 3 of its 6 requests done
    table, report = run(tmp_path, labels_config(stub.base_url, "openai-batch"), sample)
    assert table.num_rows == 6 and report["invalid"] == 0
    info = report["backend_info"]
    assert info["rounds"] == 2 and info["batch_statuses"] == {"completed": 1, "expired": 1}
    assert info["request_errors"] == {"batch_expired": 3} and info["requests_submitted"] == 9
    assert sorted(stub.state.billed.values()) == [1] * 6  # nobody paid twice
    second = json.loads(sorted((tmp_path / "labels").rglob("manifest.json"))[0].read_text())["batches"][1]
    assert second["n_requests"] == 3


def test_batch_invalid_answers_retried_then_counted(tmp_path, key, stub):
    texts = PLAIN[:3] + ["MALFORMED answer please", "SCHEMAFAIL answer please", "FLAKY answer please"]
    sample = web_sample(tmp_path, texts)
    table, report = run(tmp_path, labels_config(stub.base_url, "openai-batch"), sample)
    assert table.column("id").to_pylist() == ["web-0", "web-1", "web-2", "web-5"]
    assert report["invalid"] == 2 and report["invalid_reasons"] == {"malformed_json": 1, "schema_invalid": 1}
    records = {r["id"]: r for r in report["invalid_records"]}
    assert records["web-3"]["attempts"] == 3 and records["web-4"]["attempts"] == 3  # 1 + invalid_retries
    assert report["retried_docs"] == 3 and report["n_in"] == 6 and report["n_labeled"] == 4
    billed = {doc.split("<document>")[1].split()[0]: n for doc, n in stub.state.billed.items()}
    assert billed["MALFORMED"] == 3 and billed["SCHEMAFAIL"] == 3 and billed["FLAKY"] == 2
    assert report["backend_info"]["rounds"] == 3


def test_batch_crash_between_submit_and_download_resumes(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:5])
    cfg = labels_config(stub.base_url, "openai-batch")
    work = tmp_path / "labels" / "complexity.work"
    rows = [{"id": f"web-{i}", "text": t} for i, t in enumerate(PLAIN[:5])]
    # A first job submits and dies before waiting (the labeler object is simply dropped).
    manifest = BatchLabeler(cfg).submit(TASKS["complexity"], rows, work)
    assert [b["status"] for b in manifest.batches] == ["submitted"]
    assert stub.state.calls["batches.create"] == 1
    table, report = run(tmp_path, cfg, sample)
    assert table.num_rows == 5 and stub.state.calls["batches.create"] == 1
    assert sorted(stub.state.billed.values()) == [1] * 5


def test_batch_crash_after_create_before_manifest_adopts_the_batch(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:4])
    cfg = labels_config(stub.base_url, "openai-batch")
    rows = [{"id": f"web-{i}", "text": t} for i, t in enumerate(PLAIN[:4])]
    manifest = BatchLabeler(cfg).submit(TASKS["complexity"], rows, tmp_path / "labels" / "complexity.work")
    # What the manifest looks like when the job died right after batches.create returned.
    data = json.loads(manifest.path.read_text())
    data["batches"][0].update(status="uploaded", batch_id=None, remote_status=None)
    manifest.path.write_text(json.dumps(data))
    table, _ = run(tmp_path, cfg, sample)
    assert table.num_rows == 4
    assert stub.state.calls["batches.create"] == 1 and stub.state.calls["batches.list"] >= 1
    assert sorted(stub.state.billed.values()) == [1] * 4


def test_batch_cost_cap_refuses_before_submitting(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN)
    cfg = labels_config(stub.base_url, "openai-batch", max_estimated_cost_usd=0.0001)
    with pytest.raises(RuntimeError, match="max_estimated_cost_usd"):
        run(tmp_path, cfg, sample)
    assert stub.state.calls["files.create"] == 0 and stub.state.calls["batches.create"] == 0


# ----------------------------------------------------------------------------- openai-chat


def test_chat_retries_429_and_500_and_caches(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:6])
    stub.state.chat_faults = [429, 500, 429, 503]
    cfg = labels_config(stub.base_url, "openai-chat")
    # Which documents the four faults land on depends on the four threads' timing: one document
    # can take all four (its retries come back before the other threads ask), so it gets a fifth try.
    cfg["chat"]["max_retries"] = len(stub.state.chat_faults)
    table, report = run(tmp_path, cfg, sample, task="topic")
    assert table.num_rows == 6 and table.column("label").to_pylist()[0] == ["computer_science"]
    assert set(table.column("backend").to_pylist()) == {"openai-chat"}
    info = report["backend_info"]
    assert info["transport_errors"] == {"http_429": 2, "http_500": 1, "http_503": 1}
    assert info["usage"]["answered_requests"] == 6 and stub.state.calls["chat"] == 10
    assert sorted(stub.state.billed.values()) == [1] * 6
    # Rerun: every answer comes from the cache; the server is not asked again.
    _, report2 = run(tmp_path, cfg, sample, task="topic")
    assert stub.state.calls["chat"] == 10 and report2["backend_info"]["cache_hits"] == 6


def test_chat_invalid_answers_retried_then_counted(tmp_path, key, stub):
    sample = web_sample(tmp_path, ["MALFORMED one", "SCHEMAFAIL two", "FLAKY three", PLAIN[0]])
    table, report = run(tmp_path, labels_config(stub.base_url, "openai-chat"), sample)
    assert table.column("id").to_pylist() == ["web-2", "web-3"]
    assert report["invalid_reasons"] == {"malformed_json": 1, "schema_invalid": 1}
    assert report["retried_docs"] == 3 and stub.state.calls["chat"] == 3 + 3 + 2 + 1


def test_chat_gives_up_then_rerun_asks_only_the_missing(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:3])
    cfg = labels_config(stub.base_url, "openai-chat")
    cfg["chat"]["concurrency"] = 1
    stub.state.chat_faults = [500] * 4  # the first document exhausts its 3 retries
    with pytest.raises(RuntimeError, match="1 of 3 documents got no answer"):
        run(tmp_path, cfg, sample)
    assert not (tmp_path / "labels" / "complexity.parquet").exists()
    asked = stub.state.calls["chat"]
    table, _ = run(tmp_path, cfg, sample)
    assert table.num_rows == 3 and stub.state.calls["chat"] == asked + 1
    assert sorted(stub.state.billed.values()) == [1] * 3


def _cache_path(tmp_path, task="complexity") -> Path:
    return tmp_path / "labels" / f"{task}.work" / "openai-chat" / "cache.jsonl"


def test_chat_torn_cache_line_is_asked_once_more_and_later_answers_kept(tmp_path, key, stub, caplog):
    sample = web_sample(tmp_path, PLAIN[:4])
    cfg = labels_config(stub.base_url, "openai-chat")
    run(tmp_path, cfg, sample)
    assert stub.state.calls["chat"] == 4
    cache = _cache_path(tmp_path)
    data = cache.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1  # where the last answer's line starts
    cache.write_bytes(data[: last + (len(data) - last) // 2])  # killed halfway through writing it
    with caplog.at_level(logging.WARNING):
        table, report = run(tmp_path, cfg, sample)
    assert f"{cache}: dropped a torn last line at byte offset {last}" in caplog.text
    # Exactly one more request, for the torn answer; none for the three complete ones.
    assert table.num_rows == 4 and stub.state.calls["chat"] == 5
    assert report["backend_info"]["cache_hits"] == 3
    assert sorted(stub.state.billed.values()) == [1, 1, 1, 2]
    text = cache.read_text()
    assert text.endswith("\n") and len([json.loads(line) for line in text.splitlines()]) == 4
    # The answer appended after the repair is a line of its own: the next run asks nothing.
    _, report = run(tmp_path, cfg, sample)
    assert stub.state.calls["chat"] == 5 and report["backend_info"]["cache_hits"] == 4


def test_request_cache_tail_repair_and_damage_in_the_middle(tmp_path, caplog):
    path = tmp_path / "cache.jsonl"
    cache = RequestCache(path)
    for k in "abc":
        cache.put(k, {"content": f"réponse {k}"})
    cache.close()
    whole = path.read_bytes()
    # Killed between an answer and its newline: the line is whole, kept, and completed.
    path.write_bytes(whole[:-1])
    cache = RequestCache(path)
    assert sorted(cache.entries) == ["a", "b", "c"] and cache.torn_bytes == 0
    cache.close()
    assert path.read_bytes() == whole
    # Cut inside a multi-byte character of the last line: dropped, and the file is whole again.
    cut = whole.rindex("é".encode()) + 1
    path.write_bytes(whole[:cut])
    with caplog.at_level(logging.WARNING):
        cache = RequestCache(path)
    start = whole[:-1].rindex(b"\n") + 1
    assert sorted(cache.entries) == ["a", "b"] and cache.torn_bytes == cut - start
    assert f"byte offset {start}" in caplog.text
    cache.put("d", {"content": "after"})
    cache.close()
    cache = RequestCache(path)
    assert sorted(cache.entries) == ["a", "b", "d"]
    cache.close()
    # A damaged line before the last one is corruption: named by file and line, never skipped.
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1][:20] + "\n" + lines[2])
    with pytest.raises(ValueError, match=r"cache.jsonl, line 2: invalid JSON .*damaged before its last line"):
        RequestCache(path)


def test_invalid_ceiling_fails_the_task_without_labels_and_keeps_the_report(tmp_path, key, stub):
    sample = web_sample(tmp_path, ["MALFORMED one"] + PLAIN[:3])  # 1 of 4 invalid: 25%
    cfg = labels_config(stub.base_url, "openai-chat")
    cfg["max_invalid_fraction"] = 0.2
    out = tmp_path / "labels" / "complexity.parquet"
    rejected = tmp_path / "labels" / "complexity.rejected.report.json"
    with pytest.raises(InvalidCeilingError) as err:
        run(tmp_path, cfg, sample)
    message = str(err.value)
    for part in (
        "task complexity: 1 of 4 sample documents (25.00%)",
        "labels.max_invalid_fraction = 0.2",
        "web-0 (malformed_json)",
        str(rejected),
    ):
        assert part in message, part
    assert not out.exists() and not list(out.parent.glob(".*tmp*"))
    report = json.loads(rejected.read_text())
    assert report["invalid"] == 1 and report["invalid_fraction"] == 0.25
    assert report["invalid_records"][0]["id"] == "web-0"
    asked = stub.state.calls["chat"]
    # At the ceiling it passes, and every answer comes from the cache: nothing is paid twice.
    cfg["max_invalid_fraction"] = 0.25
    table, report = run(tmp_path, cfg, sample)
    assert table.num_rows == 3 and report["max_invalid_fraction"] == 0.25
    assert stub.state.calls["chat"] == asked and not rejected.exists()


# ----------------------------------------------------------------------------- the secret


def _snakemake(input, output, params, log, config):
    from snakemake.iocontainers import Namedlist

    class Job:
        pass

    job = Job()
    job.input, job.output, job.params = (Namedlist(fromdict=d) for d in (input, output, params))
    job.log, job.threads, job.config = Namedlist(fromdict={"log": str(log)}), 1, config
    return job


@pytest.mark.parametrize("backend", ["openai-batch", "openai-chat"])
def test_api_key_from_dotenv_never_written(tmp_path, monkeypatch, stub, backend):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    sample = web_sample(tmp_path, PLAIN[:3] + ["MALFORMED x"])
    stub.state.chat_faults = [429]
    cfg = labels_config(stub.base_url, backend)
    results = tmp_path / "results"
    runpy.run_path(
        str(ROOT / "scripts" / "label.py"),
        init_globals={
            "snakemake": _snakemake(
                {"sample": str(sample)},
                {"labels": str(results / "topic.parquet"), "report": str(results / "topic.report.json")},
                {"task": "topic", "labels": labels_params(cfg), "work_dir": str(results / "topic.work")},
                results / "logs" / "label.log",
                {"labels": cfg},
            )
        },
    )
    assert stub.state.unauthorized == 0  # the key did reach the server
    report = json.loads((results / "topic.report.json").read_text())
    assert report["n_labeled"] == 3 and report["invalid"] == 1
    written = [p for p in results.rglob("*") if p.is_file()]
    assert len(written) >= 4 and any(p.name == "label.log" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
        assert b"TRELLIS-0123456789" not in path.read_bytes(), path
