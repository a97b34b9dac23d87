"""Shared test fixtures: a local stand-in for the Hugging Face hub.

``hf_hub`` starts a small HTTP server on 127.0.0.1 that speaks the part of the hub API that
huggingface_hub's ``snapshot_download`` and ``datasets.load_dataset`` use, and points HF_ENDPOINT
at it: the real client code paths run, with no network. It serves model and dataset repositories
at one commit: repo info with siblings, the recursive and per-folder tree listings, and HEAD/GET
on resolve URLs with commit and etag headers (Range for resumes). Every request is recorded, so a
test can check what was fetched, or that nothing was.

Two options play the hub's refusals: ``revisions`` (the branch/tag names it knows besides its
commit; any other revision is a 404 RevisionNotFound, as for a deleted branch or a rewritten
history) and ``denied`` ({repo_id: 401 or 403}, every request for that repo refused as for a gated
repo whose terms were not accepted).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import pytest

from trellis.core.gc_tuning import tune_gc

HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _web_prefix(repo_type: str) -> str:
    """Where the hub's web paths (file resolves, repo and commit urls) put a repo of this type."""
    return "/datasets" if repo_type == "dataset" else ""


class StandInHub:
    """Repositories ({(repo_type, repo_id): {path: bytes}}) served the way huggingface.co serves them:
    downloads (repo info, tree listings, file resolves) and uploads (repo creation, preupload, commit)."""

    def __init__(
        self,
        repos: dict[tuple[str, str], dict[str, bytes]],
        commit: str = HUB_COMMIT,
        revisions: set[str] | None = None,
        denied: dict[str, int] | None = None,
    ):
        self.repos = repos
        self.commit = commit
        self.revisions = None if revisions is None else set(revisions) | {commit}
        self.denied = dict(denied or {})
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []  # each POST's Authorization header
        self.created: list[dict] = []  # create_repo's payloads
        self.commits: list[dict] = []  # {"header": the commit's summary..., "files": {path: bytes}}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, payload, status: int = 200):
                self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

            def _not_found(self, code: str):
                self._send(404, headers={"X-Error-Code": code})

            def _serve_file(self, body: bytes):
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                headers = {"X-Repo-Commit": hub.commit, "ETag": '"' + hashlib.sha1(body).hexdigest() + '"'}
                self._send(206 if start else 200, body[start:], headers)

            def _refused(self, repo: str, path: str) -> bool:
                """Answer a denied repo or an unknown revision the way the hub does."""
                if repo in hub.denied:
                    status = hub.denied[repo]
                    self._send(status, headers={"X-Error-Code": "GatedRepo"} if status == 403 else None)
                    return True
                m = re.search(r"/(?:revision|tree|resolve)/([^/]+)", path)
                if hub.revisions is not None and m and unquote(m.group(1)) not in hub.revisions:
                    self._not_found("RevisionNotFound")
                    return True
                return False

            def _route(self):
                hub.requests.append((self.command, self.path))
                url = urlparse(self.path)
                path = unquote(url.path)
                for (repo_type, repo), files in hub.repos.items():
                    prefix = _web_prefix(repo_type)
                    if (
                        path.startswith((f"/api/{repo_type}s/{repo}/", f"{prefix}/{repo}/"))
                        or path == (f"/api/{repo_type}s/{repo}")
                    ) and self._refused(repo, url.path):
                        return
                    api = f"/api/{repo_type}s/{repo}"
                    if path == api or re.fullmatch(rf"{re.escape(api)}/revision/[^/]+", path):
                        siblings = [{"rfilename": f} for f in sorted(files)]
                        return self._json({"id": repo, "sha": hub.commit, "siblings": siblings})
                    m = re.fullmatch(rf"{re.escape(api)}/tree/[^/]+(?:/(.*))?", path)
                    if m:
                        folder = (m.group(1) or "").strip("/")
                        return self._json(hub.tree(files, folder, "recursive=true" in url.query))
                    m = re.fullmatch(rf"{prefix}/{re.escape(repo)}/resolve/[^/]+/(.+)", path)
                    if m:
                        if m.group(1) not in files:
                            return self._not_found("EntryNotFound")
                        return self._serve_file(files[m.group(1)])
                return self._not_found("RepoNotFound")

            do_GET = do_HEAD = _route

            def do_POST(self):
                """The upload side, as ``create_repo`` and ``upload_folder`` use it: create a repo
                (409 when it exists, as the hub answers), preupload (every file "regular", so its
                bytes come inline in the commit) and the NDJSON commit, which becomes the repo's
                files (so a download after an upload reads them back)."""
                hub.requests.append((self.command, self.path))
                hub.authorizations.append(self.headers.get("authorization"))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = unquote(urlparse(self.path).path)
                if not self.headers.get("authorization"):
                    return self._json({"error": "Invalid username or password."}, 401)
                if path == "/api/repos/create":
                    spec = json.loads(body)
                    repo_type = spec.get("type") or "model"
                    repo = "/".join(p for p in (spec.get("organization"), spec["name"]) if p)
                    url = {"url": f"{hub.endpoint}{_web_prefix(repo_type)}/{repo}", "name": repo}
                    if (repo_type, repo) in hub.repos:
                        return self._json({**url, "error": f"You already created this {repo_type} repo"}, 409)
                    hub.created.append(spec)
                    hub.repos[(repo_type, repo)] = {}
                    return self._json(url)
                for (repo_type, repo), files in hub.repos.items():
                    api = f"/api/{repo_type}s/{repo}"
                    if re.fullmatch(rf"{re.escape(api)}/preupload/[^/]+", path):
                        listed = json.loads(body)["files"]
                        modes = [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                            for f in listed
                        ]
                        return self._json({"files": modes})
                    if re.fullmatch(rf"{re.escape(api)}/commit/[^/]+", path):
                        commit = {"header": {}, "files": {}}
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "header":
                                commit["header"] = item["value"]
                            elif item["key"] == "file" and item["value"].get("encoding") == "base64":
                                commit["files"][item["value"]["path"]] = base64.b64decode(
                                    item["value"]["content"]
                                )
                            else:
                                return self._json({"error": f"unsupported commit line {item['key']!r}"}, 400)
                        hub.commits.append(commit)
                        files.update(commit["files"])
                        commit_url = f"{hub.endpoint}{_web_prefix(repo_type)}/{repo}/commit/{hub.commit}"
                        return self._json({"commitUrl": commit_url, "commitOid": hub.commit})
                return self._not_found("RepoNotFound")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def tree(files: dict[str, bytes], folder: str, recursive: bool) -> list[dict]:
        """The hub's tree listing of ``folder``: its files and folders (everything below, if recursive)."""
        entries, folders = [], set()
        for path, body in sorted(files.items()):
            if folder and not path.startswith(folder + "/"):
                continue
            parts = path.split("/")
            depth = len(folder.split("/")) if folder else 0
            below = parts[depth:-1] if recursive else parts[depth:-1][:1]
            for k in range(len(below)):
                sub = "/".join(parts[: depth + k + 1])
                if sub not in folders:
                    folders.add(sub)
                    entries.append({"type": "directory", "path": sub, "oid": "0" * 40})
            if recursive or len(parts) == depth + 1:
                entries.append(
                    {"type": "file", "path": path, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                )
        return entries

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
def hf_hub(monkeypatch):
    """Start a stand-in hub: ``hf_hub({("model", "org/name"): {"config.json": b"..."}})``; keyword
    options (``revisions``, ``denied``) go to StandInHub.

    HF_ENDPOINT points at it (for this process and the subprocesses a test starts), HF_TOKEN is
    unset, and huggingface_hub's offline switch is off while the test runs.
    """
    import huggingface_hub.constants as hf_constants

    servers: list[StandInHub] = []

    def start(repos: dict[tuple[str, str], dict[str, bytes]], **options) -> StandInHub:
        server = StandInHub(repos, **options).__enter__()
        servers.append(server)
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        return server

    yield start
    for server in servers:
        server.__exit__()


# ---- parallel runs (pytest-xdist: the README's test command runs two workers, --dist loadgroup) --

# Fixtures that must exist once per test run, each in a worker group of its own: the finished demo
# (a session fixture) and the single-node SLURM cluster (its daemons take fixed ports on this
# machine). Their groups come first, in this order: the demo is the run's longest chain.
ONCE_PER_RUN = ("demo_run", "slurm_env")


def _once_group(item) -> str | None:
    used = [name for name in ONCE_PER_RUN if name in item.fixturenames]
    if len(used) > 1:
        raise pytest.UsageError(
            f"{item.nodeid} uses {used}: each of these lives in its own xdist group (tests/conftest.py)"
        )
    return used[0] if used else None


@pytest.fixture(scope="session")
def claim_once_per_run(tmp_path_factory):
    """``claim(name)``: fail unless this is the run's only process to build ``name`` (one of
    ONCE_PER_RUN). Should its xdist group ever be split across the workers (the grouping hook
    below must run before xdist's), both would build it, each on one of two cores, slowly and
    silently; this makes that an error instead."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's basetemp is <the run's basetemp>/<worker id>

    def claim(name: str) -> None:
        try:
            os.close(os.open(root / f"{name}.claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pytest.fail(
                f"{name} is built by two processes of this run: its xdist group was split "
                "(see pytest_collection_modifyitems in tests/conftest.py)",
                pytrace=False,
            )

    return claim


def pytest_configure(config):
    # A test process, like a rule job, imports torch, transformers, TRL and lm-eval: the same
    # collector setting (in each xdist worker too; the configure hook runs there).
    tune_gc()


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """One xdist group for the tests of the demo run and one for those of the SLURM cluster, so one
    worker builds each once, and one group per module for the rest (a module's fixtures are built
    once). The demo's group comes first and the cluster's second, so the two workers start on them
    side by side and take the other modules after. Without xdist the markers do nothing and only
    the order changes."""
    once = {item.nodeid: _once_group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(once[item.nodeid] or item.nodeid.split("::")[0]))
    rank = {name: i for i, name in enumerate(ONCE_PER_RUN)}
    items.sort(key=lambda item: rank.get(once[item.nodeid], len(rank)))
