"""A small OpenAI-compatible HTTP server for the labeling tests (never the real API).

Implements what the backends call: chat completions, files (upload, content), batches (create,
retrieve, list). It answers from the request's response_format schema, bills every answered
request (``billed`` counts per document, so a test can prove nothing was paid twice) and injects
faults on demand: queued HTTP errors for chat, answers chosen by markers in the document text
(MALFORMED, SCHEMAFAIL, FLAKY), and batches that expire after part of their requests.

Bounded: it binds 127.0.0.1 on a free port, serves from a daemon thread, and shuts itself down
after ``lifetime`` seconds even if a test forgets to stop it.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def valid_answer(schema: dict) -> dict:
    """The first valid instance of a label schema (the first enum value of its one property)."""
    key, prop = next(iter(schema["properties"].items()))
    if prop["type"] == "array":
        return {key: [prop["items"]["enum"][0]]}
    return {key: prop["enum"][0]}


class StubState:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.lock = threading.RLock()  # run_batch answers (and locks) while holding it
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.billed: Counter[str] = Counter()  # document marker (last user message) -> answers billed
        self.chat_faults: list[int] = []  # HTTP statuses to answer the next chat calls with
        self.expire_after: list[int] = []  # per created batch: complete only this many requests
        self.calls: Counter[str] = Counter()
        self.unauthorized = 0
        self.flaky_seen: Counter[str] = Counter()

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
            content = json.dumps(valid_answer(schema))
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        return content, {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 7,
            "total_tokens": prompt_tokens + 7,
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

    def run_batch(self, batch: dict) -> None:
        """Process a batch the first time it is polled: answer, bill, write output/error files."""
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].decode().splitlines() if x.strip()]
        limit = batch.pop("_expire_after", None)
        out, err = [], []
        for i, req in enumerate(lines):
            if limit is not None and i >= limit:
                err.append(
                    {
                        "id": f"batch_req_{i}",
                        "custom_id": req["custom_id"],
                        "response": None,
                        "error": {"code": "batch_expired", "message": "expired before it was processed"},
                    }
                )
                continue
            out.append(
                {
                    "id": f"batch_req_{i}",
                    "custom_id": req["custom_id"],
                    "error": None,
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{i}",
                        "body": self.completion(req["body"]),
                    },
                }
            )
        for kind, rows in (("output", out), ("error", err)):
            if rows:
                fid = f"file-{len(self.files)}"
                self.files[fid] = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
                batch[f"{kind}_file_id"] = fid
        batch["status"] = "expired" if limit is not None and limit < len(lines) else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": 0}


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
            self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return False
        return True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        if not self._authorized():
            return
        path = urlparse(self.path).path
        s = self.state
        if path == "/v1/chat/completions":
            body = json.loads(self._body())
            with s.lock:
                s.calls["chat"] += 1
                fault = s.chat_faults.pop(0) if s.chat_faults else None
            if fault:
                return self._send(fault, {"error": {"message": f"injected {fault}", "type": "server_error"}})
            return self._send(200, s.completion(body))
        if path == "/v1/files":
            raw = self._body()
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
            )
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            with s.lock:
                s.calls["files.create"] += 1
                fid = f"file-{len(s.files)}"
                s.files[fid] = parts["file"].get_payload(decode=True)
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
                bid = f"batch_{len(s.batches)}"
                batch = {
                    "id": bid,
                    "object": "batch",
                    "endpoint": body["endpoint"],
                    "errors": None,
                    "input_file_id": body["input_file_id"],
                    "completion_window": body["completion_window"],
                    "status": "validating",
                    "output_file_id": None,
                    "error_file_id": None,
                    "created_at": int(time.time()),
                    "metadata": body.get("metadata"),
                    "request_counts": {"total": 0, "completed": 0, "failed": 0},
                }
                if s.expire_after:
                    batch["_expire_after"] = s.expire_after.pop(0)
                s.batches[bid] = batch
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
                if batch["status"] == "validating":
                    batch["status"] = "in_progress"  # one poll in progress, so waiting is exercised
                elif batch["status"] == "in_progress":
                    s.run_batch(batch)
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
