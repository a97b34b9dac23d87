"""Acquire a source: download its files from the Hugging Face hub, or generate the demo corpus.

Either way the result is a directory of the dataset's native files plus ``MANIFEST.json``, which
is written last (and atomically): its presence means every file it lists is complete. The
manifest shape::

    {"source": ..., "backend": "huggingface" | "demo", "repo": ..., "repo_type": "dataset",
     "revision": ..., "commit": ..., "allow_patterns": [...],
     "files": [{"path": "rel/path", "bytes": N}, ...], "total_bytes": N}

``files`` are relative to the manifest's directory, sorted; only data files matched by the
source's patterns are listed (not the hub client's ``.cache`` bookkeeping). The same download and
manifest serve a model repository (``repo_type="model"``: the classifiers' base model) and other
downloads that list their files (``write_manifest``).

The hub endpoint follows the standard ``HF_ENDPOINT`` variable (read at call time, so a test or
a mirror can redirect it); the token comes from ``HF_TOKEN`` and is never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trellis.acquire.demo import generate_source
from trellis.core.io import read_json, write_json

log = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_VERSION = 1


def write_manifest(out_dir: str | Path, files: Sequence[str], **info: Any) -> Path:
    """Write ``out_dir/MANIFEST.json`` listing ``files`` (relative paths) with their sizes."""
    out_dir = Path(out_dir)
    entries = []
    for rel in sorted(set(files)):
        path = out_dir / rel
        if not path.is_file():
            raise FileNotFoundError(
                f"{out_dir}: expected data file {rel} is missing; not writing the manifest"
            )
        entries.append({"path": rel, "bytes": path.stat().st_size})
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        **info,
        "files": entries,
        "total_bytes": sum(e["bytes"] for e in entries),
    }
    path = out_dir / MANIFEST_NAME
    write_json(path, manifest)
    return path


def read_manifest(path: str | Path) -> list[Path]:
    """Absolute paths of the manifest's data files, sorted; each must exist with its listed size."""
    path = Path(path)
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ValueError(f"{path}: not a Trellis manifest (no 'files' list)")
    root = path.parent.resolve()
    out = []
    for k, entry in enumerate(manifest["files"]):
        try:
            rel, size = entry["path"], int(entry["bytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: files[{k}] needs 'path' and 'bytes' ({exc})") from exc
        file = root / rel
        if not file.is_file():
            raise FileNotFoundError(f"{path}: listed file {rel} does not exist")
        actual = file.stat().st_size
        if actual != size:
            raise ValueError(f"{path}: {rel} has {actual} bytes, manifest says {size}; re-acquire the source")
        out.append(file)
    return sorted(out)


def write_demo_source(
    source: str, n_docs: int, n_files: int, seed: int, topics: list[dict] | None, out_dir: str | Path
) -> Path:
    """Generate a demo source's native files into ``out_dir``; return the manifest path."""
    files = generate_source(source, n_docs, n_files, seed, topics, out_dir)
    return write_manifest(
        out_dir,
        files,
        source=source,
        backend="demo",
        repo=f"trellis-demo/{source}",
        revision=f"seed-{seed}",
        commit=None,
        allow_patterns=None,
        demo_docs=n_docs,
    )


def _hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def list_matching_files(
    repo: str, revision: str, allow_patterns: Sequence[str] | str | None, repo_type: str = "dataset"
) -> tuple[str, list[str]]:
    """(commit sha, sorted repo files matching the patterns) for a dataset (or model) repo on the hub."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=_hub_endpoint(), token=os.environ.get("HF_TOKEN") or None)
    info = api.repo_info(repo, repo_type=repo_type, revision=revision)
    if not info.sha:
        raise RuntimeError(f"{repo}@{revision}: the hub returned no commit sha")
    siblings = info.siblings or []
    # The hub truncates `siblings` on very large repos (fineweb-edu has thousands of files); the
    # tree listing is complete.
    if not siblings or len(siblings) > 1000:
        names = [
            f.path
            for f in api.list_repo_tree(repo, repo_type=repo_type, revision=info.sha, recursive=True)
            if isinstance(f, RepoFile)
        ]
    else:
        names = [s.rfilename for s in siblings]
    patterns = [allow_patterns] if isinstance(allow_patterns, str) else list(allow_patterns or [])
    matched = sorted(filter_repo_objects(names, allow_patterns=patterns or None))
    if not matched:
        sample = ", ".join(sorted(names)[:10]) or "(no files)"
        raise FileNotFoundError(
            f"{repo}@{revision}: allow_patterns {patterns} match none of the repo's {len(names)} files "
            f"(first: {sample}); fix the allow_patterns (`hf.allow_patterns` of a source)"
        )
    return info.sha, matched


def download_huggingface(
    repo: str,
    revision: str,
    allow_patterns: Sequence[str] | str | None,
    out_dir: str | Path,
    source: str | None = None,
    max_workers: int = 8,
    repo_type: str = "dataset",
) -> Path:
    """Download a dataset (or model) repo's matching files into ``out_dir`` and write the manifest.

    Resumable: files already complete in ``out_dir`` are not fetched again (the hub client keeps
    their etags under ``out_dir/.cache``), and the snapshot is pinned to the commit the listing
    came from, so a branch moving mid-download cannot mix two revisions.
    """
    from huggingface_hub import snapshot_download

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    commit, files = list_matching_files(repo, revision, allow_patterns, repo_type)
    log.info("%s@%s (commit %s): %d file(s) match %s", repo, revision, commit, len(files), allow_patterns)
    snapshot_download(
        repo,
        repo_type=repo_type,
        revision=commit,
        local_dir=out_dir,
        allow_patterns=files,
        token=os.environ.get("HF_TOKEN") or None,
        endpoint=_hub_endpoint(),
        max_workers=max_workers,
    )
    # snapshot_download falls back to whatever is in local_dir when the hub is unreachable, so
    # completeness is checked here rather than trusted.
    missing = [f for f in files if not (out_dir / f).is_file()]
    if missing:
        raise RuntimeError(f"{repo}@{commit}: {len(missing)} file(s) did not download, e.g. {missing[:3]}")
    patterns = [allow_patterns] if isinstance(allow_patterns, str) else list(allow_patterns or [])
    return write_manifest(
        out_dir,
        files,
        source=source,
        backend="huggingface",
        repo=repo,
        repo_type=repo_type,
        revision=revision,
        commit=commit,
        allow_patterns=patterns,
    )
