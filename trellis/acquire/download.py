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

Before a source's download starts (``download_huggingface`` with ``source=``): its revision must be
pinned when ``require_pinned`` (a commit id or a version branch, see :func:`is_pinned_revision`); a
gated source needs ``HF_TOKEN``; a 401/403 from the hub becomes :class:`HubAccessError` naming the
source, the repo, the variable and the page where the terms are accepted; a pinned revision the
hub no longer has becomes :class:`RevisionGoneError`; and the files the patterns match at that
revision must number at least ``min_files`` (the source's parts), so no part is ever short.
"""

from __future__ import annotations

import logging
import os
import re
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


TOKEN_VARIABLE = "HF_TOKEN"
# A commit id, or a dataset's own version branch/tag (FineWeb-Edu keeps old releases on v1.x.y
# branches); anything else (main, a feature branch) moves under the study.
_PINNED = re.compile(r"^([0-9a-f]{40}|v[0-9]+(\.[0-9]+)*)$")
PIN_COMMAND = "python -m trellis.acquire.pin --configfile config/study.yaml"


class UnpinnedRevisionError(ValueError):
    """A source whose revision is a moving branch (or not set) where a pin is required."""


class HubAccessError(PermissionError):
    """The hub refused the repo (401/403) or no token was set for a gated source."""


class RevisionGoneError(FileNotFoundError):
    """The pinned revision no longer exists on the hub."""


def is_pinned_revision(revision: str | None) -> bool:
    """True for a 40-hex commit id or a version name (``v1``, ``v1.2.0``); False for ``main``,
    any other branch name, or None."""
    return isinstance(revision, str) and bool(_PINNED.match(revision))


def hub_page(repo: str, repo_type: str = "dataset") -> str:
    """The repo's page on the hub, where a gated repo's terms are accepted."""
    prefix = "datasets/" if repo_type == "dataset" else ""
    return f"https://huggingface.co/{prefix}{repo}"


def check_pinned(source: str, repo: str, revision: str | None) -> None:
    """Raise UnpinnedRevisionError unless ``revision`` is a commit id or a version branch."""
    if is_pinned_revision(revision):
        return
    what = "is not pinned (null)" if revision is None else f"is {revision!r}, a moving branch"
    raise UnpinnedRevisionError(
        f"source {source!r}: sources.{source}.hf.revision {what}; the study downloads only a commit id "
        f"or the dataset's own version branch (v1.2.0) of {repo}, so two runs fetch the same data. "
        f"Resolve the current commit on a host with internet access ({PIN_COMMAND}) and set it in "
        "the config."
    )


def check_token(source: str, repo: str, repo_type: str = "dataset", what: str = "source") -> None:
    """A gated repo needs HF_TOKEN before anything is requested: raise HubAccessError if unset.

    ``what`` names the kind of thing fetched in the message (a ``source``; ``posttrain.public``'s
    sets such as xLAM pass their config key)."""
    if not os.environ.get(TOKEN_VARIABLE):
        raise HubAccessError(
            f"{what} {source!r}: {repo} is gated and {TOKEN_VARIABLE} is not set. Accept the dataset's "
            f"terms at {hub_page(repo, repo_type)} with your account, then export {TOKEN_VARIABLE} "
            "(a read token of that account) in the environment of the job that downloads it."
        )


def _hub_error(
    exc: Exception,
    source: str | None,
    repo: str,
    revision: str,
    repo_type: str,
    what: str = "source",
    revision_key: str | None = None,
) -> Exception:
    """The hub client's error made specific: access (401/403) or a revision that is gone; any other
    error comes back as it is. ``what``/``revision_key``: how the message names the thing fetched
    and its revision's config key (a source's by default)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RevisionNotFoundError

    label = f"{what} {source!r}: " if source else ""
    revision_key = revision_key or f"sources.{source}.hf.revision"
    if isinstance(exc, RevisionNotFoundError):
        return RevisionGoneError(
            f"{label}the hub no longer has revision {revision!r} of {repo} ({revision_key}); "
            f"the dataset was rewritten or the branch deleted. Pick the revision again ({PIN_COMMAND}) "
            "and check the layout still matches (README, Curation)."
        )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError) or (isinstance(exc, HfHubHTTPError) and status in (401, 403)):
        has_token = bool(os.environ.get(TOKEN_VARIABLE))
        why = (
            f"the token in {TOKEN_VARIABLE} was refused (HTTP {status})"
            if has_token
            else f"{TOKEN_VARIABLE} is not set (HTTP {status})"
        )
        return HubAccessError(
            f"{label}{repo}: {why}. Accept the dataset's terms at {hub_page(repo, repo_type)} with the "
            f"account whose token is in {TOKEN_VARIABLE}, and check the token can read gated repos."
        )
    return exc


def download_hub_file(
    repo: str,
    filename: str,
    revision: str,
    *,
    name: str,
    what: str,
    revision_key: str,
    gated: bool = False,
    repo_type: str = "dataset",
) -> Path:
    """One file of a hub repo (``hf_hub_download``) with a source's checks: HF_TOKEN before a gated
    repo is asked, and a refusal (401/403) or a vanished revision named for ``what`` ``name``."""
    # Imported at call time: only download jobs need the hub client (and offline tests replace
    # huggingface_hub.hf_hub_download, which a module-level name would not see).
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    if gated:
        check_token(name, repo, repo_type, what=what)
    try:
        return Path(
            huggingface_hub.hf_hub_download(
                repo_id=repo,
                filename=filename,
                revision=revision,
                repo_type=repo_type,
                token=os.environ.get(TOKEN_VARIABLE) or None,
                endpoint=_hub_endpoint(),
            )
        )
    except HfHubHTTPError as exc:
        specific = _hub_error(exc, name, repo, revision, repo_type, what=what, revision_key=revision_key)
        if specific is exc:
            raise
        raise specific from exc


def list_matching_files(
    repo: str,
    revision: str,
    allow_patterns: Sequence[str] | str | None,
    repo_type: str = "dataset",
    source: str | None = None,
) -> tuple[str, list[str]]:
    """(commit sha, sorted repo files matching the patterns) for a dataset (or model) repo on the hub.

    A 401/403 raises HubAccessError and an unknown revision RevisionGoneError, both naming
    ``source`` when given.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=_hub_endpoint(), token=os.environ.get(TOKEN_VARIABLE) or None)
    try:
        info = api.repo_info(repo, repo_type=repo_type, revision=revision)
        if not info.sha:
            raise RuntimeError(f"{repo}@{revision}: the hub returned no commit sha")
        siblings = info.siblings or []
        # The hub truncates `siblings` on very large repos (fineweb-edu has thousands of files);
        # the tree listing is complete.
        if not siblings or len(siblings) > 1000:
            names = [
                f.path
                for f in api.list_repo_tree(repo, repo_type=repo_type, revision=info.sha, recursive=True)
                if isinstance(f, RepoFile)
            ]
        else:
            names = [s.rfilename for s in siblings]
    except HfHubHTTPError as exc:
        specific = _hub_error(exc, source, repo, revision, repo_type)
        if specific is exc:
            raise
        raise specific from exc
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
    *,
    gated: bool = False,
    min_files: int | None = None,
    require_pinned: bool = False,
) -> Path:
    """Download a dataset (or model) repo's matching files into ``out_dir`` and write the manifest.

    Resumable: files already complete in ``out_dir`` are not fetched again (the hub client keeps
    their etags under ``out_dir/.cache``), and the snapshot is pinned to the commit the listing
    came from, so a branch moving mid-download cannot mix two revisions.

    Checked before any file is fetched: ``require_pinned`` (the revision is a commit id or a
    version branch), ``gated`` (HF_TOKEN is set), access (401/403) and the revision's existence,
    and ``min_files`` (the source's parts: each part takes whole files, so fewer files than parts
    would leave a part empty).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    label = source or repo
    if require_pinned:
        check_pinned(label, repo, revision)
    if gated:
        check_token(label, repo, repo_type)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    commit, files = list_matching_files(repo, revision, allow_patterns, repo_type, source=source)
    log.info("%s@%s (commit %s): %d file(s) match %s", repo, revision, commit, len(files), allow_patterns)
    if min_files is not None and len(files) < min_files:
        raise ValueError(
            f"source {label!r}: {repo}@{commit} has {len(files)} file(s) matching {allow_patterns}, fewer "
            f"than its {min_files} parts (sources.{label}.parts); each part takes whole files, so set "
            f"parts to at most {len(files)} or widen allow_patterns. Nothing was downloaded."
        )
    try:
        snapshot_download(
            repo,
            repo_type=repo_type,
            revision=commit,
            local_dir=out_dir,
            allow_patterns=files,
            token=os.environ.get(TOKEN_VARIABLE) or None,
            endpoint=_hub_endpoint(),
            max_workers=max_workers,
        )
    except HfHubHTTPError as exc:
        specific = _hub_error(exc, source, repo, commit, repo_type)
        if specific is exc:
            raise
        raise specific from exc
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
