"""trellis.tokens.upload: a shard set goes to a Hugging Face dataset repo through huggingface_hub.

The stand-in hub of tests/conftest.py (``hf_hub``: HTTP on 127.0.0.1, HF_ENDPOINT pointed at it)
speaks the part of the hub API that ``create_repo`` and ``upload_folder`` use (repo creation, the
preupload endpoint that decides each file's upload mode, the NDJSON commit endpoint), so the real
client code path runs with no network. It keeps what it was sent: the test compares the committed
bytes with the shard files, and downloads them back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from trellis.core.io import write_json
from trellis.tokens.tkds import TKDSError, write_shard
from trellis.tokens.upload import upload_shards

REPO = "trellis-test/tkds-shards"
TOKEN = "hf_test_secret_token_0123456789"


@pytest.fixture
def hub(hf_hub, monkeypatch):
    """The stand-in hub of tests/conftest.py, holding no repo yet, with a write token set."""
    server = hf_hub({})
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return server


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
    [commit] = hub.commits
    assert commit["files"] == expected  # every shard, the manifest and the mix table, byte for byte
    assert "2 shards" in commit["header"]["summary"]
    assert hub.authorizations and set(hub.authorizations) == {f"Bearer {TOKEN}"}

    assert record["commit"] == hub.commit and record["repo"] == REPO and record["path_in_repo"] == "curated"
    assert [f["file"] for f in record["files"]] == [
        "shard-00000.tkds",
        "shard-00001.tkds",
        "manifest.json",
        "mix.csv",
    ]
    assert TOKEN not in json.dumps(record)
    assert TOKEN not in caplog.text and "HF_TOKEN" in caplog.text


def test_a_rerun_uploads_into_the_existing_repo_and_the_shards_download_back(hub, shard_dir, tmp_path):
    from huggingface_hub import snapshot_download

    upload_shards(shard_dir, REPO, "curated")
    # The second create is refused as the hub refuses it (409: the repo exists); the upload goes on.
    upload_shards(shard_dir, REPO, "curated")
    assert len(hub.created) == 1 and len(hub.commits) == 2
    local = Path(
        snapshot_download(REPO, repo_type="dataset", local_dir=tmp_path / "down", endpoint=hub.endpoint)
    )
    for shard in shard_dir.iterdir():
        if shard.name != "upload.json":
            assert (local / "curated" / shard.name).read_bytes() == shard.read_bytes(), shard.name


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
