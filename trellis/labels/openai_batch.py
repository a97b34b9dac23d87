"""``openai-batch``: label through the OpenAI Batch API, resumable at every step.

The work happens in rounds. A round writes one JSON Lines input file per batch (split so no batch
exceeds the configured request and byte limits), then each batch goes through

    prepared --upload--> uploaded --batches.create--> submitted --poll--> ended --download--> downloaded

and the manifest (``manifest.json``, rewritten atomically after every step) records where each one
is. A rerun after a crash picks every batch up where the manifest left it:

- a crash after ``files.create`` but before the manifest was saved re-uploads the input file
  (uploads are free; nothing is billed);
- a crash after ``batches.create`` but before the manifest was saved is the one place a second
  submission could pay twice, so before creating a batch the backend lists the account's batches
  and adopts one already made from the same uploaded file;
- a crash while waiting or downloading just polls or downloads again.

When every batch of a round has been downloaded, the answers are parsed and validated. Documents
with a valid answer are done and never sent again; documents with no answer (the batch expired,
failed or was cancelled, or the request errored) go into the next round as they were; documents
with an invalid answer (malformed JSON, schema violation, refusal, truncation) are resubmitted
until ``labels.request.invalid_retries`` retries are spent, then recorded as invalid. At most
``labels.batch.max_rounds`` rounds run; what is still unanswered after that is recorded as invalid
(reason ``no_response``) and counted in the report.
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
from trellis.labels.openai_common import LLMLabeler, Outcome, Usage, make_client, message_chars

log = logging.getLogger("trellis.labeling.batch")

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "expired", "failed", "cancelled")
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
        self._client = None

    def client(self):
        if self._client is None:
            # File and batch API calls are cheap and idempotent enough to let the SDK retry them.
            self._client = make_client(
                self.request_cfg,
                max_retries=int(self.batch.get("api_retries", 5)),
                timeout=float(self.batch.get("timeout_seconds", 600)),
            )
        return self._client

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
        return Manifest(Path(work_dir) / "openai-batch" / fp / "manifest.json", header)

    def submit(self, task: Task, rows: Sequence[dict[str, Any]], work_dir: str | os.PathLike) -> Manifest:
        """Prepare, upload and submit what is missing, without waiting (``run`` does the rest)."""
        m = self.manifest(task, work_dir)
        if not any(b["status"] != "downloaded" for b in m.batches):
            state = self._collect(task, m, rows)
            if state["pending"]:
                self._prepare_round(task, m, rows, state)
        self._upload_and_submit(m)
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
        work = m.path.parent
        max_requests, max_bytes = int(self.batch["max_requests"]), int(self.batch["max_bytes"])
        chunks: list[list[bytes]] = [[]]
        chunk_bytes = 0
        chars = 0
        by_id = {row["id"]: row for row in rows}
        for doc_id, attempt in state["pending"].items():
            body = self.body(task, by_id[doc_id])
            chars += message_chars(body)
            line = (
                json.dumps(
                    {
                        "custom_id": custom_id(doc_id, attempt),
                        "method": "POST",
                        "url": ENDPOINT,
                        "body": body,
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
                + "\n"
            ).encode("utf-8")
            if len(line) > max_bytes:
                raise ValueError(
                    f"document {doc_id}: its request is {len(line)} bytes, over "
                    f"labels.batch.max_bytes = {max_bytes}; lower labels.request.max_text_chars"
                )
            if chunks[-1] and (len(chunks[-1]) >= max_requests or chunk_bytes + len(line) > max_bytes):
                chunks.append([])
                chunk_bytes = 0
            chunks[-1].append(line)
            chunk_bytes += len(line)
        n = len(state["pending"])
        estimate = self.estimate_cost(chars, n)
        total = m.data["estimated_usd"] + estimate["usd"]
        log.info(
            "round %d: %d request(s) in %d batch(es); estimated cost $%.4f (%d prompt tokens at "
            "$%s/M, <= %d completion tokens at $%s/M); all rounds so far $%.4f",
            r,
            n,
            len(chunks),
            estimate["usd"],
            estimate["prompt_tokens"],
            self.prices["input_per_million"],
            estimate["max_completion_tokens"],
            self.prices["output_per_million"],
            total,
        )
        cap = self.batch["max_estimated_cost_usd"]
        if cap is not None and total > float(cap):
            raise RuntimeError(
                f"estimated cost ${total:.2f} exceeds labels.batch.max_estimated_cost_usd = "
                f"${float(cap):.2f}; nothing was submitted for round {r}"
            )
        entries = []
        for i, lines in enumerate(chunks):
            name = f"round{r:02d}-batch{i:04d}"
            path = work / f"{name}.input.jsonl"
            h = hashlib.sha256()
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                for line in lines:
                    fh.write(line)
                    h.update(line)
            entries.append(
                {
                    "name": name,
                    "round": r,
                    "input": path.name,
                    "n_requests": len(lines),
                    "bytes": sum(len(x) for x in lines),
                    "sha256": h.hexdigest(),
                    "status": "prepared",
                    "input_file_id": None,
                    "batch_id": None,
                    "remote_status": None,
                    "output_file_id": None,
                    "error_file_id": None,
                    "request_counts": None,
                }
            )
        # The round exists only once the manifest says so; a crash before this line re-prepares it.
        m.batches.extend(entries)
        m.data["rounds"] = r + 1
        m.data["estimated_usd"] = round(total, 6)
        m.save()

    # -- the batch lifecycle ----------------------------------------------------------------

    def _drive(self, m: Manifest) -> None:
        self._upload_and_submit(m)
        self._wait_and_download(m)

    def _upload_and_submit(self, m: Manifest) -> None:
        work = m.path.parent
        for b in m.batches:
            if b["status"] == "prepared":
                path = work / b["input"]
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest != b["sha256"]:
                    raise ValueError(
                        f"{path}: sha256 {digest} != manifest's {b['sha256']}; the input changed"
                    )
                with open(path, "rb") as fh:
                    f = self.client().files.create(file=(path.name, fh), purpose="batch")
                b["input_file_id"], b["status"], b["uploaded_at"] = f.id, "uploaded", int(time.time())
                m.save()
                log.info(
                    "%s: uploaded %s (%d requests, %d bytes) as %s",
                    b["name"],
                    b["input"],
                    b["n_requests"],
                    b["bytes"],
                    f.id,
                )
            if b["status"] == "uploaded":
                existing = self._find_batch(b["input_file_id"], b.get("uploaded_at"))
                if existing is not None:
                    log.warning(
                        "%s: batch %s was already created from %s (a run stopped before recording "
                        "it); adopting it instead of submitting again",
                        b["name"],
                        existing.id,
                        b["input_file_id"],
                    )
                    batch = existing
                else:
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
                    log.info("%s: submitted batch %s", b["name"], batch.id)
                b["batch_id"], b["status"], b["remote_status"] = batch.id, "submitted", batch.status
                m.save()

    def _find_batch(self, input_file_id: str, uploaded_at: int | None):
        for batch in self.client().batches.list(limit=100):
            if batch.input_file_id == input_file_id:
                return batch
            # Newest first: anything created well before our upload cannot be ours.
            if (
                uploaded_at is not None
                and batch.created_at is not None
                and batch.created_at < uploaded_at - 3600
            ):
                return None
        return None

    def _wait_and_download(self, m: Manifest) -> None:
        poll = float(self.batch["poll_seconds"])
        while True:
            waiting = 0
            for b in m.batches:
                if b["status"] == "submitted":
                    batch = self.client().batches.retrieve(b["batch_id"])
                    counts = batch.request_counts.model_dump() if batch.request_counts else None
                    if batch.status != b["remote_status"] or counts != b["request_counts"]:
                        log.info("%s (%s): %s %s", b["name"], b["batch_id"], batch.status, counts or "")
                    b["remote_status"], b["request_counts"] = batch.status, counts
                    if batch.status in TERMINAL:
                        b["output_file_id"], b["error_file_id"] = batch.output_file_id, batch.error_file_id
                        if batch.errors and batch.errors.data:
                            b["errors"] = [
                                {"code": e.code, "message": (e.message or "")[:300], "line": e.line}
                                for e in batch.errors.data[:20]
                            ]
                            log.warning("%s: batch %s: %s", b["name"], batch.status, b["errors"][:3])
                        b["status"] = "ended"
                    else:
                        waiting += 1
                    m.save()
                if b["status"] == "ended":
                    self._download(m, b)
            if not waiting:
                return
            time.sleep(poll)

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

    # -- answers ----------------------------------------------------------------------------

    def _collect(self, task: Task, m: Manifest, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Parse every downloaded answer; decide what each document still needs."""
        work = m.path.parent
        answers: dict[str, dict[int, tuple]] = defaultdict(dict)
        usage = Usage()
        errors: Counter[str] = Counter()
        duplicates = 0
        for b in m.batches:
            if b["status"] != "downloaded":
                continue
            if b.get("output"):
                for lineno, rec in iter_jsonl(work / b["output"]):
                    cid = rec.get("custom_id")
                    if not isinstance(cid, str):
                        raise ValueError(f"{work / b['output']}, line {lineno}: no custom_id")
                    doc_id, attempt = split_custom_id(cid)
                    response = rec.get("response") or {}
                    if rec.get("error") or response.get("status_code") != 200:
                        code = (rec.get("error") or {}).get("code") or f"http_{response.get('status_code')}"
                        errors[code] += 1
                        continue
                    body = response.get("body") or {}
                    usage.add(body.get("usage"))
                    if attempt in answers[doc_id]:
                        duplicates += 1  # billed (counted in usage above) but not used twice
                        continue
                    answers[doc_id][attempt] = self.parse_completion(task, body)
            if b.get("error"):
                for _, rec in iter_jsonl(work / b["error"]):
                    code = (rec.get("error") or {}).get("code")
                    if not code:
                        status = (rec.get("response") or {}).get("status_code")
                        code = f"http_{status}" if status else "unknown"
                    errors[code] += 1
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
                out[doc_id] = Outcome(doc_id, None, reason, detail, len(got))
        return out

    def _info(self, m: Manifest, state: dict) -> dict[str, Any]:
        statuses = Counter(b["remote_status"] for b in m.batches)
        return {
            "usage": state["usage"].to_dict(self.prices),
            "estimated_usd_before_submission": m.data["estimated_usd"],
            "rounds": m.data["rounds"],
            "batches": len(m.batches),
            "batch_statuses": dict(sorted((str(k), v) for k, v in statuses.items())),
            "requests_submitted": sum(b["n_requests"] for b in m.batches),
            "request_errors": dict(sorted(state["errors"].items())),
            "duplicate_answers": state["duplicates"],
            "manifest": str(m.path),
        }
