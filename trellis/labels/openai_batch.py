"""``openai-batch``: label through the OpenAI Batch API, resumable at every step.

The work happens in rounds. A round writes one JSON Lines input file per batch (split so no batch
exceeds the configured request, byte and enqueued-token limits), then each batch goes through

    prepared --upload--> uploaded --queue room, batches.create--> submitted --poll--> ended
    --download--> downloaded

and the manifest (``manifest.json``, rewritten atomically after every step) records where each one
is. A rerun after a crash picks every batch up where the manifest left it:

- a crash after ``files.create`` but before the manifest was saved re-uploads the input file
  (uploads are free; nothing is billed);
- a crash after ``batches.create`` but before the manifest was saved is the one place a second
  submission could pay twice, so before creating a batch the backend lists the account's batches
  and adopts one already made from the same uploaded file (never one it saw fail);
- a crash while waiting or downloading just polls or downloads again.

Each way a batch or a request can go wrong is handled on its own:

- ``failed`` with ``token_limit_exceeded`` (the organisation's enqueued-token limit for the model;
  nothing was billed): the batch waits, with exponential backoff, for batches in flight to finish
  and is created again from the same uploaded file; one refused while no other batch of the
  ledger was in flight is split in two (the real limit is lower than the configured one). A batch
  that cannot get into the queue within ``labels.batch.queue_wait_hours`` stops the job. Jobs of
  different tasks share the limit through ``batch_queue.QueueLedger`` (``labels.batch.
  enqueued_token_limit``), so they queue behind each other instead of failing each other.
- ``failed`` for any other reason (an invalid input file, a model the Batch API does not serve) and
  a request the API refused (a 4xx line in the error file): the job stops at once, naming the task,
  the request's custom_id and the API's message, and never sends it again (a rerun stops the same
  way until the cause is fixed, which changes the manifest's fingerprint).
- ``expired``: the answers it has are kept; what is missing goes into the next round.
- ``cancelled``: the job never cancels a batch, so a cancel was made by hand; the job downloads
  what was answered and stops, unless ``labels.batch.resume_cancelled`` says to go on (then the
  rest goes into the next round like an expiry).

When every batch of a round has been downloaded, the answers are parsed and validated. Documents
with a valid answer are done and never sent again; documents with no answer go into the next round
as they were; documents with an invalid answer (malformed JSON, schema violation, refusal,
truncation) are resubmitted until ``labels.request.invalid_retries`` retries are spent, then
recorded as invalid. At most ``labels.batch.max_rounds`` rounds run; what is still unanswered after
that is recorded as invalid (reason ``no_response``, with the last error the API gave for it).

Cost: before a round goes out, what was billed (the ``usage`` of every answered line, at
``labels.prices``) plus the round's estimate (prompt tokens counted with o200k_base, each answer
priced at the longest answer seen so far, or at max_completion_tokens before the first) must stay
within ``labels.batch.max_estimated_cost_usd``. A round that billed nothing costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trellis.core.io import atomic_path, iter_jsonl, read_json, write_json
from trellis.core.tasks import Task
from trellis.labels.batch_queue import QueueLedger
from trellis.labels.openai_common import (
    LabelingStopped,
    LLMLabeler,
    Outcome,
    PromptCounter,
    Usage,
    make_client,
)

log = logging.getLogger("trellis.labeling.batch")

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "expired", "failed", "cancelled")
QUEUE_FULL = "token_limit_exceeded"
# Per-request statuses worth asking again (timeouts, conflicts, rate limits); every other 4xx is a
# refusal of the request itself, and 5xx a transient server error.
RETRYABLE_4XX = (408, 409, 429)
MANIFEST_VERSION = 1


def custom_id(doc_id: str, attempt: int) -> str:
    return f"{doc_id}#{attempt}"


def split_custom_id(cid: str) -> tuple[str, int]:
    doc_id, sep, attempt = cid.rpartition("#")
    if not sep or not attempt.isdigit():
        raise ValueError(f"custom_id {cid!r} is not '<doc id>#<attempt>'")
    return doc_id, int(attempt)


class Manifest:
    """The on-disk record of every batch of one (task, model, prompt, settings) fingerprint."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = path
        if path.exists():
            self.data = read_json(path)
            if self.data.get("fingerprint") != header["fingerprint"]:
                raise ValueError(
                    f"{path}: manifest fingerprint {self.data.get('fingerprint')!r} does not "
                    f"match this run's {header['fingerprint']!r}"
                )
        else:
            self.data = {
                "version": MANIFEST_VERSION,
                **header,
                "rounds": 0,
                "estimated_usd": 0.0,
                "batches": [],
            }
            self.save()

    @property
    def batches(self) -> list[dict[str, Any]]:
        return self.data["batches"]

    def save(self) -> None:
        write_json(self.path, self.data)


def _request_line(doc_id: str, attempt: int, body: dict[str, Any]) -> bytes:
    record = {"custom_id": custom_id(doc_id, attempt), "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _api_error(rec: dict[str, Any]) -> tuple[int | None, str, str]:
    """(HTTP status or None, code, message) of a non-200 result line."""
    response = rec.get("response") or {}
    status = response.get("status_code")
    error = rec.get("error") or ((response.get("body") or {}).get("error")) or {}
    code = error.get("code") or error.get("type") or (f"http_{status}" if status else "unknown")
    return status, str(code), str(error.get("message") or "")[:500]


def _refused(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


class BatchLabeler(LLMLabeler):
    backend = "openai-batch"

    def __init__(self, labels_config: dict[str, Any]):
        super().__init__(labels_config)
        self.batch = self.config_section(
            "batch",
            (
                "completion_window",
                "max_requests",
                "max_bytes",
                "poll_seconds",
                "max_rounds",
                "max_estimated_cost_usd",
            ),
        )
        limit = self.batch.get("enqueued_token_limit")
        self.queue_limit = int(limit) if limit is not None else None
        self.backoff = float(self.batch.get("queue_backoff_seconds", 60))
        self.max_backoff = float(self.batch.get("queue_max_backoff_seconds", 1800))
        self.queue_wait = 3600 * float(self.batch.get("queue_wait_hours", 48))
        self.resume_cancelled = bool(self.batch.get("resume_cancelled", False))
        self.window_seconds = 3600 * int(str(self.batch["completion_window"]).rstrip("h"))
        self._client = None
        self._counter: PromptCounter | None = None
        self._ledger: QueueLedger | None = None
        self._waiting_logged: set[str] = set()
        # When each batch of this job first wanted into the queue: the queue_wait_hours deadline
        # counts from there (per job, so a rerun days later gets the whole wait again).
        self._queued_since: dict[str, float] = {}
        self._adoption_checked: set[str] = set()

    def client(self):
        if self._client is None:
            # File and batch API calls are cheap and idempotent enough to let the SDK retry them.
            self._client = make_client(
                self.request_cfg,
                max_retries=int(self.batch.get("api_retries", 5)),
                timeout=float(self.batch.get("timeout_seconds", 600)),
            )
        return self._client

    def count_tokens(self, body: dict[str, Any]) -> int:
        if self._counter is None:
            self._counter = PromptCounter()
        return self._counter(body)

    # -- entry points ---------------------------------------------------------------------

    def manifest(self, task: Task, work_dir: str | os.PathLike) -> Manifest:
        fp = self.fingerprint(task)
        prompt_version, prompt_hash = self.provenance(task)
        header = {
            "fingerprint": fp,
            "task": task.name,
            "model": self.model,
            "endpoint": ENDPOINT,
            "prompt_version": prompt_version,
            "prompt_hash": prompt_hash,
            "completion_window": self.batch["completion_window"],
        }
        m = Manifest(Path(work_dir) / "openai-batch" / fp / "manifest.json", header)
        if self.queue_limit is not None:
            # Every task's work directory sits in the run's labels/ directory: the ledger beside
            # them is the one all label jobs of the run share.
            self._ledger = QueueLedger(
                Path(work_dir).resolve().parent, self.model, self.queue_limit, self.window_seconds + 3600
            )
        return m

    def submit(self, task: Task, rows: Sequence[dict[str, Any]], work_dir: str | os.PathLike) -> Manifest:
        """Prepare, upload and submit what is missing, without waiting (``run`` does the rest)."""
        m = self.manifest(task, work_dir)
        if not any(b["status"] != "downloaded" for b in m.batches):
            state = self._collect(task, m, rows)
            if state["pending"]:
                self._prepare_round(task, m, rows, state)
        self._upload(m)
        self._submit_ready(m)
        return m

    def run(
        self, task: Task, rows: Sequence[dict[str, Any]], work_dir: str | os.PathLike
    ) -> tuple[dict[str, Outcome], dict[str, Any]]:
        m = self.manifest(task, work_dir)
        log.info("openai-batch: manifest %s (%d batch(es) from earlier runs)", m.path, len(m.batches))
        while True:
            self._drive(m)
            state = self._collect(task, m, rows)
            if not state["pending"]:
                break
            if m.data["rounds"] >= int(self.batch["max_rounds"]):
                log.warning(
                    "%d document(s) still unanswered after %d round(s); recorded as invalid",
                    len(state["pending"]),
                    m.data["rounds"],
                )
                break
            self._prepare_round(task, m, rows, state)
        return self._outcomes(rows, state, m), self._info(m, state)

    # -- rounds ---------------------------------------------------------------------------

    def _prepare_round(self, task: Task, m: Manifest, rows: Sequence[dict[str, Any]], state: dict) -> None:
        r = m.data["rounds"]
        by_id = {row["id"]: row for row in rows}
        requests = []
        for doc_id, attempt in state["pending"].items():
            body = self.body(task, by_id[doc_id])
            line = _request_line(doc_id, attempt, body)
            if len(line) > int(self.batch["max_bytes"]):
                raise ValueError(
                    f"document {doc_id}: its request is {len(line)} bytes, over "
                    f"labels.batch.max_bytes = {self.batch['max_bytes']}; lower labels.request.max_text_chars"
                )
            tokens = self.count_tokens(body)
            if self.queue_limit is not None and tokens > self.queue_limit:
                raise ValueError(
                    f"document {doc_id}: its request is {tokens} prompt tokens, over "
                    f"labels.batch.enqueued_token_limit = {self.queue_limit}"
                )
            requests.append((line, tokens))
        chunks = self._chunk(requests)
        self._check_cost(task, m, r, requests, state)
        entries = [
            self._write_batch(m, f"round{r:02d}-batch{i:04d}", r, chunk) for i, chunk in enumerate(chunks)
        ]
        # The round exists only once the manifest says so; a crash before this line re-prepares it.
        m.batches.extend(entries)
        m.data["rounds"] = r + 1
        m.save()

    def _chunk(self, requests: list[tuple[bytes, int]]) -> list[list[tuple[bytes, int]]]:
        """Split into batches within max_requests, max_bytes and (when set) the queue limit."""
        max_requests, max_bytes = int(self.batch["max_requests"]), int(self.batch["max_bytes"])
        max_tokens = self.queue_limit if self.queue_limit is not None else float("inf")
        chunks: list[list[tuple[bytes, int]]] = [[]]
        size = tokens = 0
        for line, n in requests:
            full = len(chunks[-1]) >= max_requests or size + len(line) > max_bytes or tokens + n > max_tokens
            if chunks[-1] and full:
                chunks.append([])
                size = tokens = 0
            chunks[-1].append((line, n))
            size, tokens = size + len(line), tokens + n
        return chunks

    def _check_cost(self, task: Task, m: Manifest, r: int, requests, state: dict) -> None:
        """Refuse a round when what was billed plus its estimate would pass the cap."""
        billed = state["usage"].cost(self.prices)
        estimate = self.estimate_cost(sum(n for _, n in requests), len(requests), state["usage"])
        m.data["estimated_usd"] = round(m.data["estimated_usd"] + estimate["usd"], 6)  # for the report
        log.info(
            "round %d: %d request(s); estimated cost $%.4f (%d prompt tokens by %s at $%s/M, %d "
            "completion tokens (%s) at $%s/M); billed so far $%.4f",
            r,
            len(requests),
            estimate["usd"],
            estimate["prompt_tokens"],
            self._counter.name if self._counter else "-",
            self.prices["input_per_million"],
            estimate["completion_tokens"],
            estimate["completion_basis"],
            self.prices["output_per_million"],
            billed,
        )
        cap = self.batch["max_estimated_cost_usd"]
        if cap is None or estimate["usd"] == 0 or billed + estimate["usd"] <= float(cap):
            return
        why = ", ".join(f"{k}: {v}" for k, v in sorted(state["errors"].items())) or "none"
        raise LabelingStopped(
            f"task {task.name}: round {r} would bring the cost to ${billed + estimate['usd']:.4f}: "
            f"${billed:.4f} billed so far ({state['usage'].requests} answered requests) + "
            f"${estimate['usd']:.4f} estimated for {len(requests)} request(s), over "
            f"labels.batch.max_estimated_cost_usd = ${float(cap):.4f}. Errors of earlier rounds: "
            f"{why}. Nothing was submitted for round {r}; raise the cap to go on"
        )

    def _write_batch(self, m: Manifest, name: str, r: int, chunk: list[tuple[bytes, int]]) -> dict[str, Any]:
        path = m.path.parent / f"{name}.input.jsonl"
        h = hashlib.sha256()
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            for line, _ in chunk:
                fh.write(line)
                h.update(line)
        return {
            "name": name,
            "round": r,
            "input": path.name,
            "n_requests": len(chunk),
            "bytes": sum(len(x) for x, _ in chunk),
            "prompt_tokens": sum(n for _, n in chunk),
            "sha256": h.hexdigest(),
            "status": "prepared",
            "input_file_id": None,
            "batch_id": None,
            "remote_status": None,
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": None,
            "refused": [],  # batches created from this file and failed for the queue limit
        }

    # -- the batch lifecycle ----------------------------------------------------------------

    def _drive(self, m: Manifest) -> None:
        """Upload, queue, submit, poll and download until no batch is left in flight."""
        poll = float(self.batch["poll_seconds"])
        for b in m.batches:
            self._stop_if_fatal(m, b)
        while True:
            self._upload(m)
            self._submit_ready(m)
            in_flight = self._poll(m)
            for b in m.batches:
                if b["status"] == "ended":
                    self._download(m, b)
                    self._stop_if_fatal(m, b)
            if not in_flight and not any(b["status"] in ("prepared", "uploaded") for b in m.batches):
                return
            time.sleep(poll)

    def _upload(self, m: Manifest) -> None:
        work = m.path.parent
        for b in m.batches:
            if b["status"] != "prepared":
                continue
            path = work / b["input"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != b["sha256"]:
                raise ValueError(f"{path}: sha256 {digest} != manifest's {b['sha256']}; the input changed")
            with open(path, "rb") as fh:
                f = self.client().files.create(file=(path.name, fh), purpose="batch")
            b["input_file_id"], b["status"], b["uploaded_at"] = f.id, "uploaded", int(time.time())
            m.save()
            log.info(
                "%s: uploaded %s (%d requests, %d bytes, %d prompt tokens) as %s",
                b["name"],
                b["input"],
                b["n_requests"],
                b["bytes"],
                b.get("prompt_tokens", 0),
                f.id,
            )

    def _ledger_key(self, m: Manifest, b: dict[str, Any]) -> str:
        return f"{m.data['task']}/{m.data['fingerprint']}/{b['name']}"

    def _submit_ready(self, m: Manifest) -> None:
        """Create a batch for every uploaded file whose backoff has passed and that fits the queue."""
        now = time.time()
        for b in m.batches:
            if b["status"] != "uploaded" or b.get("retry_at", 0) > now:
                continue
            self._queued_since.setdefault(b["name"], now)
            existing = None
            if b["name"] not in self._adoption_checked:
                # Once per job and batch: only a run that stopped between batches.create and the
                # manifest's save can have left a batch to adopt, and listing costs API calls.
                existing = self._find_batch(
                    b["input_file_id"], b.get("uploaded_at"), set(b.get("refused", []))
                )
                self._adoption_checked.add(b["name"])
            if existing is None and not self._reserve(m, b):
                self._check_queue_deadline(m, b)
                continue
            if existing is not None:
                log.warning(
                    "%s: batch %s was already created from %s (a run stopped before recording "
                    "it); adopting it instead of submitting again",
                    b["name"],
                    existing.id,
                    b["input_file_id"],
                )
                self._reserve(m, b, force=True)
                batch = existing
            else:
                # If create raises, the batch may exist all the same: look for it before the next try.
                self._adoption_checked.discard(b["name"])
                batch = self.client().batches.create(
                    input_file_id=b["input_file_id"],
                    endpoint=ENDPOINT,
                    completion_window=self.batch["completion_window"],
                    metadata={
                        "trellis_task": m.data["task"],
                        "trellis_batch": b["name"],
                        "trellis_fingerprint": m.data["fingerprint"],
                    },
                )
                self._adoption_checked.add(b["name"])
                log.info("%s: submitted batch %s", b["name"], batch.id)
            b["batch_id"], b["status"], b["remote_status"] = batch.id, "submitted", batch.status
            m.save()

    def _reserve(self, m: Manifest, b: dict[str, Any], force: bool = False) -> bool:
        """Room for the batch in the shared queue ledger (always, with no limit configured)."""
        if self._ledger is None:
            return True
        tokens = int(b.get("prompt_tokens", 0))
        ok, others = self._ledger.reserve(self._ledger_key(m, b), tokens, m.data["task"], force)
        if ok:
            b["queue_others_at_submit"] = others
            self._waiting_logged.discard(b["name"])
        elif b["name"] not in self._waiting_logged:
            self._waiting_logged.add(b["name"])
            log.info(
                "%s: waiting for room in the %s batch queue: %d tokens in flight (%s) + this batch's "
                "%d > labels.batch.enqueued_token_limit = %d",
                b["name"],
                self.model,
                others,
                self._ledger.holders(),
                tokens,
                self.queue_limit,
            )
        return ok

    def _release(self, m: Manifest, b: dict[str, Any]) -> None:
        if self._ledger is not None:
            self._ledger.release(self._ledger_key(m, b))

    def _check_queue_deadline(self, m: Manifest, b: dict[str, Any]) -> None:
        waited = time.time() - self._queued_since.setdefault(b["name"], time.time())
        if waited <= self.queue_wait:
            return
        last = b["refused_errors"][-1] if b.get("refused_errors") else "the queue ledger had no room"
        raise LabelingStopped(
            f"task {m.data['task']}: batch {b['name']} ({b['n_requests']} requests, "
            f"{b.get('prompt_tokens', 0)} prompt tokens) could not get into the {self.model} batch "
            f"queue in {waited / 3600:.2f} h (labels.batch.queue_wait_hours = "
            f"{self.queue_wait / 3600:g}); last: {last}. Check the organisation's enqueued-token "
            f"limit against labels.batch.enqueued_token_limit = {self.queue_limit}; a rerun resumes"
        )

    def _find_batch(self, input_file_id: str, uploaded_at: int | None, refused: set[str]):
        for batch in self.client().batches.list(limit=100):
            if batch.input_file_id == input_file_id and batch.id not in refused:
                return batch
            # Newest first: anything created well before our upload cannot be ours.
            if (
                uploaded_at is not None
                and batch.created_at is not None
                and batch.created_at < uploaded_at - 3600
            ):
                return None
        return None

    def _poll(self, m: Manifest) -> int:
        """Poll every submitted batch once; returns how many are still in flight."""
        in_flight = 0
        for b in m.batches:
            if b["status"] != "submitted":
                continue
            batch = self.client().batches.retrieve(b["batch_id"])
            counts = batch.request_counts.model_dump() if batch.request_counts else None
            if batch.status != b["remote_status"] or counts != b["request_counts"]:
                log.info("%s (%s): %s %s", b["name"], b["batch_id"], batch.status, counts or "")
            b["remote_status"], b["request_counts"] = batch.status, counts
            if batch.status not in TERMINAL:
                in_flight += 1
            else:
                self._release(m, b)
                errors = [
                    {"code": e.code, "message": (e.message or "")[:500], "line": e.line}
                    for e in ((batch.errors.data if batch.errors else None) or [])[:20]
                ]
                if batch.status == "failed" and any(e["code"] == QUEUE_FULL for e in errors):
                    self._requeue(m, b, errors)
                    in_flight += 1  # it goes out again
                else:
                    b["output_file_id"], b["error_file_id"] = batch.output_file_id, batch.error_file_id
                    if errors:
                        b["errors"] = errors
                        log.warning("%s: batch %s: %s", b["name"], batch.status, errors[:3])
                    b["status"] = "failed" if batch.status == "failed" else "ended"
            m.save()
            self._stop_if_fatal(m, b)
        return in_flight

    def _requeue(self, m: Manifest, b: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        """A batch refused for the queue limit: nothing was billed; wait and send it again."""
        message = next(e["message"] for e in errors if e["code"] == QUEUE_FULL)
        b.setdefault("refused", []).append(b["batch_id"])
        b.setdefault("refused_errors", []).append(f"{QUEUE_FULL}: {message}")
        b.update(status="uploaded", batch_id=None, remote_status=None)
        if self._ledger is not None and b.get("queue_others_at_submit", 0) == 0:
            b["refused_alone"] = b.get("refused_alone", 0) + 1
        if b.get("refused_alone", 0) >= 2 and b["n_requests"] > 1:
            # Refused twice with nothing else of ours in flight: the organisation's real limit is
            # lower than ours (or others hold much of it), so waiting alone may never help.
            self._split(m, b)
            return
        n = len(b["refused"])
        delay = min(self.max_backoff, self.backoff * 2 ** (n - 1))
        b["retry_at"] = time.time() + delay
        log.warning(
            "%s: refused for the %s enqueued-token limit (%s); submitting it again in %.1fs (refusal %d)",
            b["name"],
            self.model,
            message,
            delay,
            n,
        )
        m.save()
        self._check_queue_deadline(m, b)

    def _split(self, m: Manifest, b: dict[str, Any]) -> None:
        lines = (m.path.parent / b["input"]).read_bytes().splitlines(keepends=True)
        half = len(lines) // 2
        parts = []
        for i, part in enumerate((lines[:half], lines[half:])):
            chunk = [(line, self.count_tokens(json.loads(line)["body"])) for line in part]
            entry = self._write_batch(m, f"{b['name']}-{i}", b["round"], chunk)
            self._queued_since[entry["name"]] = self._queued_since.get(b["name"], time.time())
            parts.append(entry)
        b["status"] = "split"
        m.batches.extend(parts)
        log.warning(
            "%s: refused twice for the enqueued-token limit with no other batch in flight; split into "
            "%s and %s (%d and %d requests)",
            b["name"],
            parts[0]["name"],
            parts[1]["name"],
            parts[0]["n_requests"],
            parts[1]["n_requests"],
        )

    def _download(self, m: Manifest, b: dict[str, Any]) -> None:
        work = m.path.parent
        for kind in ("output", "error"):
            file_id = b[f"{kind}_file_id"]
            if file_id:
                content = self.client().files.content(file_id)
                with atomic_path(work / f"{b['name']}.{kind}.jsonl") as tmp:
                    tmp.write_bytes(content.read())
                b[kind] = f"{b['name']}.{kind}.jsonl"
        b["status"] = "downloaded"
        m.save()
        log.info("%s: downloaded (%s)", b["name"], b["remote_status"])

    # -- what stops the job ------------------------------------------------------------------

    def _stop_if_fatal(self, m: Manifest, b: dict[str, Any]) -> None:
        """Stop on a batch that failed validation, a refused request or a hand cancel."""
        task = m.data["task"]
        if b["status"] == "failed":
            raise LabelingStopped(self._failed_message(m, b))
        if b["status"] != "downloaded":
            return
        refused = self._refusals(m.path.parent, b)
        if refused:
            cid, status, code, message = refused[0]
            raise LabelingStopped(
                f"task {task}: the API refused {len(refused)} request(s) of batch {b['name']} "
                f"({b['batch_id']}); first: custom_id {cid}: HTTP {status} {code}: {message}. A "
                f"refused request is never sent again: fix the request (model, prompt, schema, "
                f"labels.request) and rerun"
            )
        if b["remote_status"] == "cancelled" and not self.resume_cancelled:
            raise LabelingStopped(
                f"task {task}: batch {b['name']} ({b['batch_id']}) was cancelled (this job never "
                f"cancels its batches, so by hand); its {self._answered(m.path.parent, b)} answered "
                f"request(s) are kept. Set labels.batch.resume_cancelled: true and rerun to send the "
                f"rest again, or leave the task stopped"
            )

    def _failed_message(self, m: Manifest, b: dict[str, Any]) -> str:
        errors = b.get("errors") or [{"code": "unknown", "message": "no error given", "line": None}]
        parts = []
        for e in errors[:5]:
            where = ""
            if e.get("line"):
                where = f" at line {e['line']} (custom_id {self._custom_id_at(m, b, e['line'])})"
            parts.append(f"{e['code']}{where}: {e['message']}")
        return (
            f"task {m.data['task']}: batch {b['name']} ({b['batch_id']}, input {b['input']}) failed "
            f"validation: {'; '.join(parts)}. Its requests are not sent again: fix the cause and "
            f"rerun (a fixed model or request setting starts a new manifest)"
        )

    @staticmethod
    def _custom_id_at(m: Manifest, b: dict[str, Any], line: int) -> str:
        lines = (m.path.parent / b["input"]).read_bytes().splitlines()
        if not 1 <= line <= len(lines):
            return "?"
        try:
            return str(json.loads(lines[line - 1]).get("custom_id"))
        except (ValueError, AttributeError):
            return "? (not a JSON object)"

    @staticmethod
    def _result_lines(work: Path, b: dict[str, Any]):
        for kind in ("output", "error"):
            if b.get(kind):
                path = work / b[kind]
                for lineno, rec in iter_jsonl(path):
                    if not isinstance(rec.get("custom_id"), str):
                        raise ValueError(f"{path}, line {lineno}: no custom_id")
                    yield rec

    def _refusals(self, work: Path, b: dict[str, Any]) -> list[tuple[str, int, str, str]]:
        out = []
        for rec in self._result_lines(work, b):
            if (rec.get("response") or {}).get("status_code") != 200:
                status, code, message = _api_error(rec)
                if _refused(status):
                    out.append((rec["custom_id"], status, code, message))
        return out

    def _answered(self, work: Path, b: dict[str, Any]) -> int:
        return sum((r.get("response") or {}).get("status_code") == 200 for r in self._result_lines(work, b))

    # -- answers ----------------------------------------------------------------------------

    def _collect(self, task: Task, m: Manifest, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Parse every downloaded answer; decide what each document still needs."""
        work = m.path.parent
        answers: dict[str, dict[int, tuple]] = defaultdict(dict)
        last_error: dict[str, str] = {}
        usage = Usage()
        errors: Counter[str] = Counter()
        duplicates = 0
        for b in m.batches:
            if b["status"] != "downloaded":
                continue
            for rec in self._result_lines(work, b):
                doc_id, attempt = split_custom_id(rec["custom_id"])
                response = rec.get("response") or {}
                if rec.get("error") or response.get("status_code") != 200:
                    _, code, message = _api_error(rec)
                    errors[code] += 1
                    last_error[doc_id] = f"{code}: {message}"[:300]
                    continue
                body = response.get("body") or {}
                usage.add(body.get("usage"))
                if attempt in answers[doc_id]:
                    duplicates += 1  # billed (counted in usage above) but not used twice
                    continue
                answers[doc_id][attempt] = self.parse_completion(task, body)
        done: dict[str, tuple] = {}
        pending: dict[str, int] = {}
        for row in rows:
            got = answers.get(row["id"], {})
            valid = [a for a in got.values() if a[1] is None]
            if valid:
                done[row["id"]] = (valid[0], len(got))
            elif len(got) >= self.max_attempts:
                done[row["id"]] = (got[max(got)], len(got))
            else:
                pending[row["id"]] = len(got)  # the next attempt's number
        return {
            "done": done,
            "pending": pending,
            "answers": answers,
            "last_error": last_error,
            "usage": usage,
            "errors": errors,
            "duplicates": duplicates,
        }

    def _outcomes(self, rows, state, m: Manifest) -> dict[str, Outcome]:
        out = {}
        for row in rows:
            doc_id = row["id"]
            if doc_id in state["done"]:
                (label, reason, detail), attempts = state["done"][doc_id]
                out[doc_id] = Outcome(doc_id, label, reason, detail, attempts)
            else:
                got = state["answers"].get(doc_id, {})
                if got:
                    _, reason, detail = got[max(got)]
                else:
                    reason, detail = "no_response", f"no answer after {m.data['rounds']} round(s)"
                    if doc_id in state["last_error"]:
                        detail += f"; last error {state['last_error'][doc_id]}"
                out[doc_id] = Outcome(doc_id, None, reason, detail, len(got))
        return out

    def _info(self, m: Manifest, state: dict) -> dict[str, Any]:
        statuses = Counter(b["remote_status"] for b in m.batches if b["status"] != "split")
        return {
            "usage": state["usage"].to_dict(self.prices),
            "billed_usd": round(state["usage"].cost(self.prices), 6),
            "estimated_usd_before_submission": m.data["estimated_usd"],
            "prompt_tokenizer": self._counter.name if self._counter else None,
            "rounds": m.data["rounds"],
            "batches": sum(b["status"] != "split" for b in m.batches),
            "batch_statuses": dict(sorted((str(k), v) for k, v in statuses.items())),
            "queue_limit_refusals": sum(len(b.get("refused", [])) for b in m.batches),
            "requests_submitted": sum(b["n_requests"] for b in m.batches if b["status"] != "split"),
            "request_errors": dict(sorted(state["errors"].items())),
            "duplicate_answers": state["duplicates"],
            "manifest": str(m.path),
        }
