"""trellis.acquire.download: manifests, the demo backend, and real hub downloads against a local server.

The hub test starts a small HTTP server on 127.0.0.1 that speaks the part of the Hugging Face
hub API that snapshot_download uses (dataset info with siblings; HEAD/GET on resolve URLs with
commit and etag headers, Range for resumes), and points HF_ENDPOINT at it: the real client code
path runs, with no network.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trellis.acquire.download import (
    MANIFEST_NAME,
    download_huggingface,
    read_manifest,
    write_demo_source,
    write_manifest,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "demo-org/tiny-dataset"


class FakeHub:
    """A dataset repo served over HTTP the way huggingface.co serves it."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _file(self):
                m = re.fullmatch(
                    rf"/datasets/{re.escape(REPO)}/resolve/([^/]+)/(.+)", self.path.split("?")[0]
                )
                if not m or m.group(2) not in hub.files:
                    return None
                return hub.files[m.group(2)]

            def _file_headers(self, body: bytes, status: int = 200, length: int | None = None):
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", '"' + hashlib.sha1(body).hexdigest() + '"')
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()

            def do_HEAD(self):
                hub.requests.append(("HEAD", self.path))
                body = self._file()
                if body is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self._file_headers(body)

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                path = self.path.split("?")[0]
                if re.fullmatch(rf"/api/datasets/{re.escape(REPO)}/revision/[^/]+", path):
                    payload = json.dumps(
                        {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": f} for f in sorted(hub.files)]}
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                body = self._file()
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                chunk = body[start:]
                self._file_headers(body, 206 if start else 200, len(chunk))
                self.wfile.write(chunk)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def file_gets(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants as hf_constants

    files = {
        "data/train-00000-of-00002.parquet": b"PAR1" + bytes(range(256)) * 40,
        "data/train-00001-of-00002.parquet": b"PAR1" + b"second file" * 300,
        "data/test-00000-of-00001.parquet": b"PAR1 test split",
        "README.md": b"# tiny dataset\n",
    }
    with FakeHub(files) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        yield server


def test_download_writes_manifest_of_matched_files(hub, tmp_path):
    out = tmp_path / "downloads" / "tiny"
    manifest = download_huggingface(REPO, "main", ["data/train-*.parquet"], out, source="tiny")

    assert manifest == out / MANIFEST_NAME
    info = json.loads(manifest.read_text())
    assert info["repo"] == REPO and info["revision"] == "main" and info["commit"] == COMMIT
    assert info["source"] == "tiny" and info["backend"] == "huggingface"
    expected = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    assert [f["path"] for f in info["files"]] == expected
    assert [f["bytes"] for f in info["files"]] == [len(hub.files[p]) for p in expected]
    for rel in expected:
        assert (out / rel).read_bytes() == hub.files[rel]
    # The test split and README did not match the pattern and were never fetched.
    assert not (out / "README.md").exists() and not (out / "data/test-00000-of-00001.parquet").exists()
    assert read_manifest(manifest) == [(out / p).resolve() for p in expected]


def test_download_is_resumable_without_refetching(hub, tmp_path):
    out = tmp_path / "tiny"
    download_huggingface(REPO, "main", ["data/train-*.parquet"], out)
    first = len(hub.file_gets())
    assert first == 2

    # A lost manifest (killed job) and a second run: complete files are not downloaded again.
    (out / MANIFEST_NAME).unlink()
    download_huggingface(REPO, "main", ["data/train-*.parquet"], out)
    assert len(hub.file_gets()) == first
    assert (out / MANIFEST_NAME).exists()


def test_pattern_matching_nothing_is_a_clear_error(hub, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"allow_patterns \['nope/\*\.parquet'\] match none") as err:
        download_huggingface(REPO, "main", ["nope/*.parquet"], tmp_path / "x")
    assert REPO in str(err.value)
    assert not (tmp_path / "x" / MANIFEST_NAME).exists()


def test_demo_source_manifest_lists_sorted_files(tmp_path):
    manifest = write_demo_source("text_to_sql", 30, 3, 7, [], tmp_path / "t2s")
    info = json.loads(manifest.read_text())
    paths = [f["path"] for f in info["files"]]
    assert paths == sorted(paths) and len(paths) == 3
    assert info["backend"] == "demo" and info["source"] == "text_to_sql"
    assert info["total_bytes"] == sum(f["bytes"] for f in info["files"])
    files = read_manifest(manifest)
    assert all(f.is_absolute() and f.is_file() for f in files)


def test_read_manifest_rejects_truncated_or_missing_files(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"12345")
    (tmp_path / "b.parquet").write_bytes(b"xy")
    manifest = write_manifest(tmp_path, ["b.parquet", "a.parquet"], backend="demo")
    assert [p.name for p in read_manifest(manifest)] == ["a.parquet", "b.parquet"]

    (tmp_path / "a.parquet").write_bytes(b"123")
    with pytest.raises(ValueError, match=r"a\.parquet has 3 bytes, manifest says 5"):
        read_manifest(manifest)
    (tmp_path / "a.parquet").write_bytes(b"12345")
    (tmp_path / "b.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.parquet"):
        read_manifest(manifest)


def test_manifest_is_not_written_when_a_file_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        write_manifest(tmp_path, ["missing.parquet"], backend="demo")
    assert not (tmp_path / MANIFEST_NAME).exists()
