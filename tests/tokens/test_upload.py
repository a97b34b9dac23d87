"""trellis.tokens.upload: a shard set goes to a Hugging Face dataset repo through huggingface_hub.

The test starts a small HTTP server on 127.0.0.1 that speaks the part of the hub API that
``create_repo`` and ``upload_folder`` use (repo creation, the preupload endpoint that decides each
file's upload mode, and the NDJSON commit endpoint) and points HF_ENDPOINT at it: the real client
code path runs, with no network. The server keeps what it was sent, so the test compares the
committed bytes with the shard files.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from trellis.core.io import write_json
from trellis.tokens.tkds import TKDSError, write_shard
from trellis.tokens.upload import upload_shards

REPO = "trellis-test/tkds-shards"
TOKEN = "hf_test_secret_token_0123456789"
COMMIT = "f" * 40


class StandInHub:
    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self.created: list[dict] = []
        self.committed: dict[str, bytes] = {}
        self.commit_header: dict = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, payload: dict, status: int = 200):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.split("?")[0]
                hub.requests.append(("POST", path, dict(self.headers)))
                if path == "/api/repos/create":
                    hub.created.append(json.loads(body))
                    return self._reply({"url": f"{hub.endpoint}/datasets/{REPO}", "name": REPO})
                if re.fullmatch(rf"/api/datasets/{re.escape(REPO)}/preupload/main", path):
                    files = json.loads(body)["files"]
                    return self._reply(
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in files
                            ]
                        }
                    )
                if re.fullmatch(rf"/api/datasets/{re.escape(REPO)}/commit/main", path):
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "header":
                            hub.commit_header = item["value"]
                        elif item["key"] == "file":
                            assert item["value"]["encoding"] == "base64"
                            hub.committed[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._reply(
                        {"commitUrl": f"{hub.endpoint}/datasets/{REPO}/commit/{COMMIT}", "commitOid": COMMIT}
                    )
                self._reply({"error": f"unexpected {path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants as hf_constants

    with StandInHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        yield server


@pytest.fixture
def shard_dir(tmp_path):
    out = tmp_path / "shards" / "curated"
    rng = np.random.default_rng(0)
    shards = []
    for k in range(2):
        name = f"shard-{k:05d}.tkds"
        digest = write_shard(out / name, rng.integers(0, 500, size=(3, 16), dtype=np.uint16), 512)
        shards.append({"file": name, "sequences": 3, "sha256": digest})
    write_json(
        out / "manifest.json",
        {"context_length": 16, "vocab_size": 512, "total_sequences": 6, "shards": shards},
    )
    (out / "mix.csv").write_text("component,budget\nweb,90\n")
    (out / "upload.json").write_text("{}")  # not part of the shard set: never uploaded
    return out


def test_upload_commits_the_shard_set_with_the_token_and_never_logs_it(hub, shard_dir, caplog):
    caplog.set_level(logging.DEBUG)
    record = upload_shards(shard_dir, REPO, "curated", private=True)

    assert hub.created and hub.created[0]["type"] == "dataset" and hub.created[0]["private"] is True
    expected = {f"curated/{p.name}": p.read_bytes() for p in shard_dir.iterdir() if p.name != "upload.json"}
    assert hub.committed == expected  # every shard, the manifest and the mix table, byte for byte
    assert "2 shards" in hub.commit_header["summary"]
    for _, _, headers in hub.requests:
        assert headers.get("authorization") == f"Bearer {TOKEN}"

    assert record["commit"] == COMMIT and record["repo"] == REPO and record["path_in_repo"] == "curated"
    assert [f["file"] for f in record["files"]] == [
        "shard-00000.tkds",
        "shard-00001.tkds",
        "manifest.json",
        "mix.csv",
    ]
    assert TOKEN not in json.dumps(record)
    assert TOKEN not in caplog.text and "HF_TOKEN" in caplog.text


def test_upload_needs_the_token_and_refuses_a_damaged_set(hub, shard_dir, monkeypatch):
    raw = bytearray((shard_dir / "shard-00001.tkds").read_bytes())
    raw[-1] ^= 1
    (shard_dir / "shard-00001.tkds").write_bytes(bytes(raw))
    with pytest.raises(TKDSError, match="shard-00001.tkds: does not match"):
        upload_shards(shard_dir, REPO, "curated")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(RuntimeError, match="environment variable HF_TOKEN"):
        upload_shards(shard_dir, REPO, "curated")
    assert hub.requests == []  # nothing was sent in either case
