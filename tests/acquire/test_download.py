"""trellis.acquire.download: manifests, the demo backend, and real hub downloads against a local server.

The hub tests run huggingface_hub's real client against the local stand-in hub of
tests/conftest.py (``hf_hub``), with no network.
"""

from __future__ import annotations

import json

import pytest

from trellis.acquire.download import (
    MANIFEST_NAME,
    download_huggingface,
    read_manifest,
    write_demo_source,
    write_manifest,
)

REPO = "demo-org/tiny-dataset"
FILES = {
    "data/train-00000-of-00002.parquet": b"PAR1" + bytes(range(256)) * 40,
    "data/train-00001-of-00002.parquet": b"PAR1" + b"second file" * 300,
    "data/test-00000-of-00001.parquet": b"PAR1 test split",
    "README.md": b"# tiny dataset\n",
}


@pytest.fixture
def hub(hf_hub):
    return hf_hub({("dataset", REPO): FILES})


def test_download_writes_manifest_of_matched_files(hub, tmp_path):
    out = tmp_path / "downloads" / "tiny"
    manifest = download_huggingface(REPO, "main", ["data/train-*.parquet"], out, source="tiny")

    assert manifest == out / MANIFEST_NAME
    info = json.loads(manifest.read_text())
    assert info["repo"] == REPO and info["revision"] == "main" and info["commit"] == hub.commit
    assert info["source"] == "tiny" and info["backend"] == "huggingface" and info["repo_type"] == "dataset"
    expected = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    assert [f["path"] for f in info["files"]] == expected
    assert [f["bytes"] for f in info["files"]] == [len(FILES[p]) for p in expected]
    for rel in expected:
        assert (out / rel).read_bytes() == FILES[rel]
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
