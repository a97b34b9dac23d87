"""Upload one arm's TKDS shard set to a Hugging Face dataset repo (optional; ``mix.upload``).

The study shipped its shards this way so the training cluster downloads ready-made uint16 arrays
and never tokenizes. What goes up: the shards the manifest lists, ``manifest.json`` and
``mix.csv``, under ``<path_in_repo>/`` (the arm's name), in one commit through
``huggingface_hub`` (``create_repo`` + ``upload_folder``: large files go through the hub's LFS or
Xet storage, and a rerun after a killed upload sends only what the hub does not already hold).

The shard set is validated against its manifest first (every shard's header, tokens and sha256),
so a damaged set is never published. The token comes from the environment variable ``HF_TOKEN``
only; it is handed to the client and never logged or written. ``HF_ENDPOINT`` (read at call time)
points the client at another hub, as the tests do with a local stand-in server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trellis.core.io import read_json
from trellis.tokens.tkds import inspect_directory

log = logging.getLogger(__name__)

TOKEN_ENV = "HF_TOKEN"
# Besides the shards: what a consumer needs to check and describe them.
SIDECARS = ("manifest.json", "mix.csv")


def upload_shards(
    shard_dir: str | os.PathLike,
    repo_id: str,
    path_in_repo: str,
    revision: str = "main",
    private: bool = True,
) -> dict[str, Any]:
    """Validate the shard set, create the dataset repo if needed, upload it in one commit.

    Returns a record of what was uploaded (repo, revision, commit, files with sha256); never the
    token.
    """
    from huggingface_hub import HfApi

    shard_dir = Path(shard_dir)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise RuntimeError(
            f"uploading {shard_dir} to {repo_id} needs a Hugging Face token with write access in the "
            f"environment variable {TOKEN_ENV} (it is not set); or set mix.upload.enabled: false"
        )
    summary = inspect_directory(shard_dir)  # raises, naming the shard, on any damage
    manifest = read_json(shard_dir / "manifest.json")
    files = [s["file"] for s in manifest["shards"]] + [
        name for name in SIDECARS if (shard_dir / name).is_file()
    ]
    endpoint = os.environ.get("HF_ENDPOINT") or None
    api = HfApi(endpoint=endpoint, token=token)
    log.info(
        "uploading %d files of %s (%d sequences, %d tokens) to dataset %s@%s/%s (token from $%s)",
        len(files),
        shard_dir,
        summary["sequences"],
        summary["tokens"],
        repo_id,
        revision,
        path_in_repo,
        TOKEN_ENV,
    )
    repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=shard_dir,
        repo_id=repo_id,
        repo_type="dataset",
        path_in_repo=path_in_repo,
        revision=revision,
        allow_patterns=files,
        commit_message=f"TKDS v1 shards: {path_in_repo} ({len(manifest['shards'])} shards, "
        f"{summary['tokens']} tokens)",
    )
    log.info("committed %s", commit.commit_url)
    hashes = {s["file"]: s["sha256"] for s in manifest["shards"]}
    return {
        "repo": repo_id,
        "repo_url": str(repo_url),
        "revision": revision,
        "path_in_repo": path_in_repo,
        "private": private,
        "commit": commit.oid,
        "commit_url": commit.commit_url,
        "sequences": summary["sequences"],
        "tokens": summary["tokens"],
        "files": [{"file": f, "sha256": hashes.get(f)} for f in files],
    }
