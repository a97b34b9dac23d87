"""A small OpenAI-compatible HTTP server for the labeling tests (never the real API).

Implements what the backends call — chat completions, files (upload, content), batches (create,
retrieve, list, cancel) — and behaves as the API is documented to:

- a batch moves ``validating -> in_progress -> finalizing -> completed`` (or ``expired``), one step
  per request the server receives and no sooner than ``durations[status]`` seconds, whether or not
  anyone polls it (so batches in flight free the queue by themselves);
- at validation it fails (``failed``, ``errors.data[]``, nothing billed, no files) for an invalid
  input file (a line that is not JSON: ``invalid_json_line``; a bad method or url: ``invalid_url``
  / ``invalid_request``; a repeated ``custom_id``: ``duplicate_custom_id``; a model it does not
  serve: ``model_not_found``) or when the batch's prompt tokens plus those of the model's batches
  in flight (in_progress, finalizing, cancelling) pass ``queue_limits[model]``:
  ``token_limit_exceeded``;
- results: answered requests in the output file, every other request in the error file (a refused
  request as ``{"response": {"status_code": 400, "body": {"error": {message, type, param, code}}}}``,
  an expired or cancelled one as ``{"response": null, "error": {"code": "batch_expired"}}``), each
  file in shuffled order, and ``request_counts`` with ``total = completed + failed``;
- ``POST /batches/{id}/cancel`` (and ``hand_cancel``, a cancel made in the dashboard): ``cancelling``,
  then ``cancelled`` with the answers processed before the cancel;
- usage counted with tiktoken's o200k_base on the rendered messages (its own rule: text tokens plus
  3 a message and 3 for the reply; not the project's estimate, which adds the response schema).

Answers come from the request's response_format schema; markers in the document text choose faults:
MALFORMED, SCHEMAFAIL, FLAKY (malformed the first time), REJECT (a 400 line). ``billed`` counts
answers per document, so a test can prove nothing was paid twice.

Bounded: it binds 127.0.0.1 on a free port, serves from a daemon thread, and shuts itself down
after ``lifetime`` seconds even if a test forgets to stop it.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from trellis.labels.prompt_tokens import o200k_encoding

IN_QUEUE = ("in_progress", "finalizing", "cancelling")
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes."
)


def valid_answer(schema: dict) -> dict:
    """The first valid instance of a label schema (the first enum value of its one property)."""
    key, prop = next(iter(schema["properties"].items()))
    if prop["type"] == "array":
        return {key: [prop["items"]["enum"][0]]}
    return {key: prop["enum"][0]}


class StubState:
    def __init__(self, api_key: str, seed: int = 0):
        self.api_key = api_key
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.encoding = o200k_encoding()
        if self.encoding is None:
            raise RuntimeError("the OpenAI stub counts usage with o200k_base: pip install bpe-openai")
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.billed: Counter[str] = Counter()  # document marker (last user message) -> answers billed
        self.chat_faults: list[int] = []  # HTTP statuses to answer the next chat calls with
        self.quota_exhausted = False  # every chat call: 429 insufficient_quota
        self.expire_after: list[int] = []  # per created batch: complete only this many requests
        self.hand_cancel: list[int | None] = []  # per created batch: cancelled by hand after this many
        self.queue_limits: dict[str, int] = {}  # model -> enqueued-token limit
        self.supported_models: set[str] | None = None  # None: every model
        self.durations = {"validating": 0.0, "in_progress": 0.0, "finalizing": 0.0, "cancelling": 0.0}
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # batch failure codes
        self.max_enqueued: Counter[str] = Counter()  # model -> most prompt tokens in flight at once
        self.unauthorized = 0
        self.flaky_seen: Counter[str] = Counter()

    # -- counting and answering ------------------------------------------------------------

    def tokens(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def prompt_tokens(self, body: dict) -> int:
        return sum(self.tokens(m["content"]) + 3 for m in body["messages"]) + 3

    def answer(self, body: dict) -> tuple[str, dict]:
        """(content, usage) for one chat-completion request."""
        doc = body["messages"][-1]["content"]
        with self.lock:
            self.billed[doc] += 1
            self.flaky_seen[doc] += 1
            first = self.flaky_seen[doc] == 1
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema")
        if "MALFORMED" in doc or ("FLAKY" in doc and first):
            content = '{"oops": '
        elif "SCHEMAFAIL" in doc:
            content = json.dumps({next(iter(schema["properties"])): 99})
        else:
            content = json.dumps(valid_answer(schema), separators=(",", ":"))
        prompt, completion = self.prompt_tokens(body), self.tokens(content)
        return content, {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def completion(self, body: dict) -> dict:
        content, usage = self.answer(body)
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "usage": usage,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
        }

    # -- batches ---------------------------------------------------------------------------

    def new_file(self, data: bytes) -> str:
        fid = f"file-{len(self.files)}"
        self.files[fid] = data
        return fid

    def create_batch(self, input_file_id: str, endpoint: str, window: str, metadata=None) -> dict:
        bid = f"batch_{len(self.batches)}"
        now = int(time.time())
        batch = {
            "id": bid,
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "metadata": metadata,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "_since": time.monotonic(),
        }
        if self.expire_after:
            batch["_expire_after"] = self.expire_after.pop(0)
        if self.hand_cancel:
            batch["_cancel_after"] = self.hand_cancel.pop(0)
        self.batches[bid] = batch
        return batch

    def occupy(self, model: str, tokens: int, seconds: float) -> dict:
        """A batch of someone else in the organisation, holding ``tokens`` of the queue for a while."""
        with self.lock:
            body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
            line = {"custom_id": "other-0", "method": "POST", "url": "/v1/chat/completions", "body": body}
            batch = self.create_batch(self.new_file(json.dumps(line).encode()), line["url"], "24h")
            batch.update(status="in_progress", in_progress_at=int(time.time()), _since=time.monotonic())
            batch.update(_model=model, _tokens=tokens, _lines=[line], _hold=seconds)
            return batch

    def enqueued(self, model: str) -> int:
        return sum(
            b["_tokens"]
            for b in self.batches.values()
            if b["status"] in IN_QUEUE and b.get("_model") == model
        )

    def advance_all(self) -> None:
        """Every batch one step further where its state's duration has passed."""
        with self.lock:
            for batch in list(self.batches.values()):
                hold = batch.get("_hold", self.durations.get(batch["status"], 0.0))
                if time.monotonic() - batch["_since"] >= hold:
                    self.step(batch)

    def step(self, batch: dict) -> None:
        status = batch["status"]
        if status == "validating":
            self.validate(batch)
        elif status == "in_progress":
            if "_hold" in batch:  # someone else's batch: it just ends
                self.finish(batch, "completed", [], [])
                return
            self.process(batch)
        elif status in ("finalizing", "cancelling"):
            self.finish(batch, batch.pop("_final"), *batch.pop("_results"))
        batch.pop("_hold", None)

    def set_status(self, batch: dict, status: str) -> None:
        batch["status"] = status
        batch["_since"] = time.monotonic()
        batch[f"{status}_at"] = int(time.time())

    def fail(self, batch: dict, code: str, message: str, line: int | None = None) -> None:
        self.failures[code] += 1
        batch["errors"] = {
            "object": "list",
            "data": [{"code": code, "message": message, "param": None, "line": line}],
        }
        self.set_status(batch, "failed")

    def validate(self, batch: dict) -> None:
        lines, seen = [], set()
        raw = self.files[batch["input_file_id"]].decode("utf-8", errors="replace").splitlines()
        for no, text in enumerate(raw, 1):
            try:
                line = json.loads(text)
            except ValueError:
                return self.fail(batch, "invalid_json_line", "This line is not parseable as valid JSON.", no)
            if (
                not isinstance(line, dict)
                or line.get("method") != "POST"
                or not isinstance(line.get("body"), dict)
            ):
                return self.fail(
                    batch, "invalid_request", "Each line needs custom_id, method POST and body.", no
                )
            if line.get("url") != batch["endpoint"]:
                return self.fail(batch, "invalid_url", f"The url must be {batch['endpoint']}.", no)
            if line.get("custom_id") in seen:
                return self.fail(
                    batch, "duplicate_custom_id", "The custom_id for this request is a duplicate.", no
                )
            model = line["body"].get("model")
            if self.supported_models is not None and model not in self.supported_models:
                msg = f"The provided model '{model}' is not supported by the Batch API."
                return self.fail(batch, "model_not_found", msg, no)
            seen.add(line["custom_id"])
            lines.append(line)
        if not lines:
            return self.fail(batch, "empty_file", "The input file is empty.")
        model = lines[0]["body"]["model"]
        tokens = sum(self.prompt_tokens(x["body"]) for x in lines)
        limit = self.queue_limits.get(model)
        in_flight = self.enqueued(model)
        if limit is not None and in_flight + tokens > limit:
            return self.fail(
                batch,
                "token_limit_exceeded",
                f"Enqueued token limit reached for {model} in organization org-stub. Limit: "
                f"{limit:,} enqueued tokens. Please try again once some in_progress batches have "
                f"been completed.",
            )
        batch.update(_model=model, _tokens=tokens, _lines=lines)
        batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": 0}
        self.set_status(batch, "in_progress")
        self.max_enqueued[model] = max(self.max_enqueued[model], self.enqueued(model))

    def process(self, batch: dict) -> None:
        """Answer the batch (or the part an expiry or a hand cancel leaves), then finalize."""
        lines = batch["_lines"]
        expire, cancel = batch.pop("_expire_after", None), batch.pop("_cancel_after", None)
        final, done = "completed", len(lines)
        if expire is not None and expire < done:
            final, done = "expired", expire
        if cancel is not None and cancel < done:
            final, done = "cancelled", cancel
        unfinished_code = f"batch_{final}"
        out, err = [], []
        for i, req in enumerate(lines):
            if i >= done:
                message = f"This request was not executed: {unfinished_code.replace('_', ' ')}."
                err.append(self.result(i, req, None, {"code": unfinished_code, "message": message}))
            elif "REJECT" in req["body"]["messages"][-1]["content"]:
                err.append(self.result(i, req, self.refusal(req), None))
            else:
                body = self.completion(req["body"])
                out.append(
                    self.result(i, req, {"status_code": 200, "request_id": f"req_{i}", "body": body}, None)
                )
        batch["_final"], batch["_results"] = final, (out, err)
        self.set_status(batch, "cancelling" if final == "cancelled" else "finalizing")

    @staticmethod
    def result(i: int, req: dict, response: dict | None, error: dict | None) -> dict:
        return {"id": f"batch_req_{i}", "custom_id": req["custom_id"], "response": response, "error": error}

    @staticmethod
    def refusal(req: dict) -> dict:
        error = {
            "message": "Invalid schema for response_format 'label': REJECT is not allowed here.",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": "invalid_value",
        }
        return {"status_code": 400, "request_id": f"req_{req['custom_id']}", "body": {"error": error}}

    def finish(self, batch: dict, status: str, out: list, err: list) -> None:
        for kind, rows in (("output", out), ("error", err)):
            if rows:
                self.rng.shuffle(rows)  # the API gives no order: match by custom_id
                batch[f"{kind}_file_id"] = self.new_file(
                    ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
                )
        total = batch["request_counts"]["total"]
        batch["request_counts"] = {"total": total, "completed": len(out), "failed": len(err)}
        self.set_status(batch, status)

    def cancel(self, batch: dict) -> None:
        if batch["status"] in ("validating", "in_progress"):
            if batch["status"] == "validating":
                batch.update(_model=None, _tokens=0, _lines=[])
            batch["_final"] = "cancelled"
            out, err = [], []
            for i, req in enumerate(batch.get("_lines", [])):
                message = "This request was not executed: batch cancelled."
                err.append(self.result(i, req, None, {"code": "batch_cancelled", "message": message}))
            batch["_results"] = (out, err)
            self.set_status(batch, "cancelling")


class Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, obj=None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.state.api_key}":
            self.state.unauthorized += 1
            self._send(
                401,
                {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}},
            )
            return False
        self.state.advance_all()
        return True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        if not self._authorized():
            return
        path = urlparse(self.path).path
        parts = path.strip("/").split("/")
        s = self.state
        if path == "/v1/chat/completions":
            body = json.loads(self._body())
            with s.lock:
                s.calls["chat"] += 1
                fault = s.chat_faults.pop(0) if s.chat_faults else None
            if s.quota_exhausted:
                error = {
                    "message": QUOTA_MESSAGE,
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
                return self._send(429, {"error": error})
            if fault:
                return self._send(fault, {"error": {"message": f"injected {fault}", "type": "server_error"}})
            return self._send(200, s.completion(body))
        if path == "/v1/files":
            raw = self._body()
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
            )
            fields = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            with s.lock:
                s.calls["files.create"] += 1
                fid = s.new_file(fields["file"].get_payload(decode=True))
            return self._send(
                200,
                {
                    "id": fid,
                    "object": "file",
                    "bytes": len(s.files[fid]),
                    "created_at": int(time.time()),
                    "filename": "input.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        if path == "/v1/batches":
            body = json.loads(self._body())
            with s.lock:
                s.calls["batches.create"] += 1
                batch = s.create_batch(
                    body["input_file_id"], body["endpoint"], body["completion_window"], body.get("metadata")
                )
            return self._send(200, _public(batch))
        if parts[:2] == ["v1", "batches"] and len(parts) == 4 and parts[3] == "cancel":
            with s.lock:
                s.calls["batches.cancel"] += 1
                batch = s.batches[parts[2]]
                s.cancel(batch)
            return self._send(200, _public(batch))
        self._send(404, {"error": {"message": f"no route {path}"}})

    def do_GET(self):
        if not self._authorized():
            return
        url = urlparse(self.path)
        s = self.state
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
            with s.lock:
                s.calls["files.content"] += 1
            return self._send(200, raw=s.files[parts[2]])
        if parts[:2] == ["v1", "batches"] and len(parts) == 3:
            with s.lock:
                s.calls["batches.retrieve"] += 1
                batch = s.batches[parts[2]]
            return self._send(200, _public(batch))
        if url.path == "/v1/batches":
            q = parse_qs(url.query)
            with s.lock:
                s.calls["batches.list"] += 1
                newest_first = sorted(
                    s.batches.values(), key=lambda b: int(b["id"].split("_")[1]), reverse=True
                )
            if "after" in q:
                ids = [b["id"] for b in newest_first]
                newest_first = newest_first[ids.index(q["after"][0]) + 1 :]
            limit = int(q.get("limit", ["20"])[0])
            page = newest_first[:limit]
            return self._send(
                200,
                {
                    "object": "list",
                    "data": [_public(b) for b in page],
                    "first_id": page[0]["id"] if page else None,
                    "last_id": page[-1]["id"] if page else None,
                    "has_more": len(newest_first) > limit,
                },
            )
        self._send(404, {"error": {"message": f"no route {url.path}"}})


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


class OpenAIStub:
    """Context manager: ``with OpenAIStub(api_key) as stub: stub.base_url ...``."""

    def __init__(self, api_key: str, lifetime: float = 120.0):
        self.state = StubState(api_key)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.server.shutdown)
        self._timer.daemon = True

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
