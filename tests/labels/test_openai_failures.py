"""The OpenAI backends when the API says no: queue limits, invalid files, refused requests, hand
cancels, spent quota, cost caps and a task below its label floor (tests/labels/openai_stub.py
behaves as the Batch API is documented to; nothing here reaches the network)."""

from __future__ import annotations

import json
import multiprocessing
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from openai_stub import OpenAIStub
from test_openai import PLAIN, ROOT, SECRET, STUDY, TASKS, _snakemake, labels_config, run, web_sample

from trellis.labels.batch_queue import QueueLedger
from trellis.labels.label import InvalidCeilingError, label_task, make_labeler
from trellis.labels.openai_common import LabelingStopped, PromptCounter
from trellis.labels.sample import write_sample
from trellis.labels.settings import labels_params

MODEL = STUDY["labels"]["model"]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


@pytest.fixture
def stub():
    with OpenAIStub(SECRET, lifetime=60) as s:
        yield s


def batch_config(stub, **batch) -> dict:
    """Fast polling and backoff; no shared queue ledger unless a test sets a limit."""
    defaults = {"enqueued_token_limit": None, "queue_backoff_seconds": 0.02, "queue_max_backoff_seconds": 0.1}
    return labels_config(stub.base_url, "openai-batch", **{**defaults, **batch})


def billed_once(stub, n: int) -> bool:
    return sorted(stub.state.billed.values()) == [1] * n


# ----------------------------------------------------------------------------- the queue limit


def test_queue_limit_refusal_is_waited_out_and_every_label_arrives(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:6])
    # Someone else in the organisation holds the whole gpt-4o queue for two seconds.
    stub.state.queue_limits[MODEL] = 20_000
    stub.state.occupy(MODEL, 20_000, seconds=2.0)
    table, report = run(tmp_path, batch_config(stub), sample)
    assert table.num_rows == 6 and report["invalid"] == 0
    info = report["backend_info"]
    assert stub.state.failures["token_limit_exceeded"] >= 1
    assert info["queue_limit_refusals"] == stub.state.failures["token_limit_exceeded"]
    assert info["rounds"] == 1 and info["batch_statuses"] == {"completed": 1}
    assert billed_once(stub, 6)


def test_queue_limit_below_the_configured_one_splits_the_batch(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:4])
    labeler = make_labeler(batch_config(stub))
    counter = PromptCounter()
    sizes = [counter(labeler.body(TASKS["complexity"], {"id": "x", "text": t})) for t in PLAIN[:4]]
    # The organisation's real limit fits two requests; the config believes in far more.
    stub.state.queue_limits[MODEL] = 2 * max(sizes)
    table, report = run(tmp_path, batch_config(stub, enqueued_token_limit=10**9), sample)
    assert table.num_rows == 4 and billed_once(stub, 4)
    manifest = json.loads(Path(report["backend_info"]["manifest"]).read_text())
    split = [b["name"] for b in manifest["batches"] if b["status"] == "split"]
    assert split == ["round00-batch0000"]
    assert report["backend_info"]["batch_statuses"] == {"completed": 2}


# ----------------------------------------------------------------------------- refusals


def test_invalid_file_fails_at_once_with_the_api_message(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:3])
    stub.state.supported_models = {"gpt-4o-mini"}  # the configured model is not served
    cfg = batch_config(stub)
    with pytest.raises(LabelingStopped) as err:
        run(tmp_path, cfg, sample)
    message = str(err.value)
    for part in (
        "task complexity",
        "model_not_found at line 1 (custom_id web-0#0)",
        f"The provided model '{MODEL}' is not supported by the Batch API",
    ):
        assert part in message, part
    assert stub.state.calls["batches.create"] == 1
    # A rerun stops the same way without sending the file again.
    with pytest.raises(LabelingStopped, match="model_not_found"):
        run(tmp_path, cfg, sample)
    assert stub.state.calls["batches.create"] == 1 and stub.state.calls["files.create"] == 1


def test_rejected_request_fails_at_once_and_is_never_resent(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:2] + ["REJECT this one"] + PLAIN[2:4])
    with pytest.raises(LabelingStopped) as err:
        run(tmp_path, batch_config(stub), sample)
    message = str(err.value)
    for part in (
        "task complexity",
        "custom_id web-2#0",
        "HTTP 400 invalid_value",
        "Invalid schema for response_format 'label': REJECT is not allowed here.",
    ):
        assert part in message, part
    assert stub.state.calls["batches.create"] == 1
    # The other answers were downloaded and kept (billed once); nothing went out again.
    assert billed_once(stub, 4)


def test_hand_cancelled_batch_stops_the_job_unless_told_to_resume(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:6])
    stub.state.hand_cancel = [2]  # someone cancels the batch in the dashboard after 2 answers
    cfg = batch_config(stub)
    with pytest.raises(LabelingStopped) as err:
        run(tmp_path, cfg, sample)
    assert "task complexity: batch round00-batch0000" in str(err.value)
    assert "was cancelled" in str(err.value) and "labels.batch.resume_cancelled: true" in str(err.value)
    assert stub.state.calls["batches.create"] == 1
    with pytest.raises(LabelingStopped, match="was cancelled"):
        run(tmp_path, cfg, sample)  # a plain rerun stops too
    assert stub.state.calls["batches.create"] == 1
    cfg["batch"]["resume_cancelled"] = True
    table, report = run(tmp_path, cfg, sample)
    assert table.num_rows == 6 and billed_once(stub, 6)
    assert report["backend_info"]["batch_statuses"] == {"cancelled": 1, "completed": 1}
    assert report["backend_info"]["request_errors"] == {"batch_cancelled": 4}


# ----------------------------------------------------------------------------- the cost cap


def test_cost_cap_lets_a_retry_after_a_zero_dollar_round_go_out(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:4])
    stub.state.expire_after = [0]  # the first batch expires before answering anything: $0 billed
    first = batch_config(stub, max_rounds=1, max_estimated_cost_usd=None)
    first["prices"] = {"input_per_million": 1000.0, "output_per_million": 1000.0}
    table, report = run(tmp_path, first, sample)
    assert table.num_rows == 0 and report["backend_info"]["billed_usd"] == 0
    estimate = report["backend_info"]["estimated_usd_before_submission"]
    # Room for one more round of the same requests, not for two: the expired round cost nothing.
    retry = dict(first, batch=dict(first["batch"], max_rounds=2, max_estimated_cost_usd=1.5 * estimate))
    table, report = run(tmp_path, retry, sample)
    assert table.num_rows == 4 and report["backend_info"]["rounds"] == 2 and billed_once(stub, 4)


def test_cost_cap_refuses_a_round_that_would_pass_it_by_what_was_billed(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:3] + ["MALFORMED answer please"])
    first = batch_config(stub, max_rounds=1, max_estimated_cost_usd=None)
    first["prices"] = {"input_per_million": 1000.0, "output_per_million": 1000.0}
    _, report = run(tmp_path, first, sample)
    billed = report["backend_info"]["billed_usd"]
    assert billed > 0 and report["invalid_reasons"] == {"malformed_json": 1}
    # The malformed answer's retry would take the cost past a cap just above what was billed.
    retry = dict(first, batch=dict(first["batch"], max_rounds=3, max_estimated_cost_usd=billed * 1.01))
    with pytest.raises(LabelingStopped) as err:
        run(tmp_path, retry, sample)
    assert f"${billed:.4f} billed so far (4 answered requests)" in str(err.value)
    assert "estimated for 1 request(s), over labels.batch.max_estimated_cost_usd" in str(err.value)
    assert stub.state.calls["batches.create"] == 1


# ----------------------------------------------------------------------------- the label floor


def test_job_below_its_label_floor_exits_non_zero_naming_the_cause(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:4])
    stub.state.expire_after = [0, 0]  # every batch expires unanswered, round after round
    cfg = batch_config(stub, max_rounds=2)
    cfg["max_invalid_fraction"] = 0.25
    results = tmp_path / "results"
    job = _snakemake(
        {"sample": str(sample)},
        {"labels": str(results / "complexity.parquet"), "report": str(results / "complexity.report.json")},
        {"task": "complexity", "labels": labels_params(cfg), "work_dir": str(results / "complexity.work")},
        results / "logs" / "label.log",
        {"labels": cfg},
    )
    with pytest.raises(InvalidCeilingError) as err:
        runpy.run_path(str(ROOT / "scripts" / "label.py"), init_globals={"snakemake": job})
    message = str(err.value)
    for part in (
        "task complexity: 4 of 4 sample documents",
        "by reason: {'no_response': 4}",
        "e.g. web-0 (no_response), web-1 (no_response)",
        "Only 0 were labeled, below the task's floor of 75.00% of the sample",
        "no answer after 2 round(s); last error batch_expired",
    ):
        assert part in message, part
    assert not (results / "complexity.parquet").exists()


# ----------------------------------------------------------------------------- openai-chat


@pytest.mark.parametrize("refusal", ["insufficient_quota", "bad_key"])
def test_chat_stops_the_task_at_the_first_quota_or_auth_refusal(tmp_path, monkeypatch, key, stub, refusal):
    sample = web_sample(tmp_path, PLAIN[:6])
    cfg = labels_config(stub.base_url, "openai-chat")
    cfg["chat"]["concurrency"] = 1
    if refusal == "insufficient_quota":
        stub.state.quota_exhausted = True
    else:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-revoked")
    with pytest.raises(LabelingStopped) as err:
        run(tmp_path, cfg, sample)
    expected = (
        "HTTP 429 insufficient_quota" if refusal == "insufficient_quota" else "HTTP 401 invalid_api_key"
    )
    assert "task complexity: stopped at the first answer" in str(err.value) and expected in str(err.value)
    assert stub.state.calls["chat"] + stub.state.unauthorized == 1
    assert "sk-revoked" not in str(err.value) and SECRET not in str(err.value)
    assert not (tmp_path / "labels" / "complexity.parquet").exists()


def test_chat_stops_every_worker_at_the_first_insufficient_quota(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN)
    stub.state.quota_exhausted = True
    with pytest.raises(LabelingStopped, match="insufficient_quota"):
        run(tmp_path, labels_config(stub.base_url, "openai-chat"), sample)  # 4 workers, 3 retries each
    assert stub.state.calls["chat"] <= 4  # at most the calls already in flight, none retried


def test_chat_cost_cap_uses_the_chat_prices(tmp_path, key, stub):
    sample = web_sample(tmp_path, PLAIN[:4])
    cfg = labels_config(stub.base_url, "openai-chat")
    cfg["prices"] = {"input_per_million": 0.0, "output_per_million": 0.0}  # the batch prices: free
    cfg["chat"].update(prices={"input_per_million": 1000.0, "output_per_million": 1000.0}, max_cost_usd=0.5)
    with pytest.raises(
        LabelingStopped, match=r"would pass labels.chat.max_cost_usd = \$0.5000; nothing was sent"
    ):
        run(tmp_path, cfg, sample)
    assert stub.state.calls["chat"] == 0
    cfg["chat"]["max_cost_usd"] = 100.0
    _, report = run(tmp_path, cfg, sample)
    usage = report["backend_info"]["usage"]
    expected = (usage["prompt_tokens"] + usage["completion_tokens"]) * 1000.0 / 1e6
    assert usage["cost_usd"] == pytest.approx(expected) and report["backend_info"]["billed_usd"] > 0


# ----------------------------------------------------------------------------- five tasks, one queue

CODE = [f"def f{i}(x):\n    return json.dumps({{'value': x, 'n': {i}}})\n" for i in range(5)]


def _label_job(task: str, sample: str, cfg: dict, results: str) -> tuple[int, int, int]:
    """One label job, as Snakemake runs the five at once (here: one thread each)."""
    out = Path(results) / f"{task}.parquet"
    report = label_task(TASKS[task], sample, out, make_labeler(cfg), work_dir=Path(results) / f"{task}.work")
    info = report["backend_info"]
    return report["n_labeled"], info["queue_limit_refusals"], info["batches"]


def test_five_tasks_under_one_queue_limit_all_complete(tmp_path, key, stub):
    web = web_sample(tmp_path, PLAIN[:5])
    code = tmp_path / "sample-code.parquet"
    rows = [
        {"id": f"code-{i}", "text": t, "source": "starcoderdata", "language": "python", "path": f"m{i}.py"}
        for i, t in enumerate(CODE)
    ]
    write_sample(rows, code)
    cfg = batch_config(stub, max_requests=2, poll_seconds=0.02)
    labeler, counter = make_labeler(cfg), PromptCounter()
    biggest = max(
        counter(labeler.body(TASKS[t], {**r, "text": r["text"]}))
        for t in TASKS
        for r in (rows if TASKS[t].domain == "code" else [{"id": "w", "text": x} for x in PLAIN[:5]])
    )
    limit = 4 * biggest  # two batches of two requests in flight at a time, of fifteen
    cfg["batch"]["enqueued_token_limit"] = limit
    stub.state.queue_limits[MODEL] = limit
    stub.state.durations["in_progress"] = 0.1
    results = tmp_path / "labels"
    jobs = [(t, str(code if TASKS[t].domain == "code" else web), cfg, str(results)) for t in TASKS]
    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(lambda job: _label_job(*job), jobs))
    assert [n for n, _, _ in outcomes] == [5] * 5
    assert [batches for _, _, batches in outcomes] == [3] * 5
    # The ledger kept the five jobs under the limit together: the API never refused a batch.
    assert stub.state.failures == {} and [r for _, r, _ in outcomes] == [0] * 5
    assert 0 < stub.state.max_enqueued[MODEL] <= limit
    assert sum(stub.state.billed.values()) == 25
    ledger = json.loads((results / "openai-batch-queue.json").read_text())
    assert ledger["entries"] == {}  # every reservation released


def _reserve_many(directory: str, worker: int) -> None:
    ledger = QueueLedger(directory, MODEL, limit=10**9, max_age_seconds=3600)
    for i in range(40):
        assert ledger.reserve(f"w{worker}/b{i}", 10, task=f"t{worker}")[0]
    ledger.release(f"w{worker}/b0")


def test_queue_ledger_is_shared_safely_by_processes(tmp_path):
    # Four processes read-modify-write the ledger at once: with its lock, no reservation is lost.
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_reserve_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    ledger = QueueLedger(tmp_path, MODEL, limit=400, max_age_seconds=3600)
    assert ledger.holders() == {f"t{w}": 390 for w in range(4)}
    # Full: 1,560 of 1,600 tokens reserved, so a batch of 50 waits and one of 40 fits.
    ledger = QueueLedger(tmp_path, MODEL, limit=1600, max_age_seconds=3600)
    assert ledger.reserve("late/b0", 50, "late") == (False, 1560)
    assert ledger.reserve("late/b1", 40, "late") == (True, 1560)
    # A reservation older than any batch can stay in flight is dropped.
    stale = QueueLedger(tmp_path, MODEL, limit=1600, max_age_seconds=0)
    assert stale.holders() == {}
