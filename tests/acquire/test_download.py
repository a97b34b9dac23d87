"""trellis.acquire.download: manifests, the demo backend, and real hub downloads against a local server.

The hub tests run huggingface_hub's real client against the local stand-in hub of
tests/conftest.py (``hf_hub``), with no network.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from trellis.acquire.download import (
    MANIFEST_NAME,
    HubAccessError,
    RevisionGoneError,
    UnpinnedRevisionError,
    check_pinned,
    download_huggingface,
    is_pinned_revision,
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


# --- pinned revisions, gated sources, parts against the pinned listing -----------------------

PIN = "0123456789abcdef0123456789abcdef01234567"  # the stand-in hub's commit (tests/conftest.py)
STUDY = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "study.yaml").read_text())


def test_a_moving_branch_is_refused_before_the_hub_is_asked(hub, tmp_path):
    for revision in ("main", "dev", None):
        with pytest.raises(UnpinnedRevisionError) as err:
            download_huggingface(
                REPO, revision, ["data/*"], tmp_path / "x", source="tiny", require_pinned=True
            )
        assert "source 'tiny'" in str(err.value) and "sources.tiny.hf.revision" in str(err.value)
        assert "python -m trellis.acquire.pin" in str(err.value)
    assert hub.requests == []
    # A commit id and a dataset's version branch are pins.
    manifest = download_huggingface(
        REPO, PIN, ["data/train-*.parquet"], tmp_path / "y", source="tiny", require_pinned=True
    )
    assert json.loads(manifest.read_text())["commit"] == PIN
    assert is_pinned_revision("v1.2.0") and not is_pinned_revision("main")
    assert not is_pinned_revision(PIN[:12])  # a short sha is ambiguous and not accepted


def test_a_pinned_revision_the_hub_no_longer_has_names_the_source(hf_hub, tmp_path):
    hf_hub({("dataset", REPO): FILES}, revisions={"v2.0.0"})
    gone = "f" * 40
    with pytest.raises(RevisionGoneError) as err:
        download_huggingface(REPO, gone, ["data/*"], tmp_path / "x", source="tiny", require_pinned=True)
    message = str(err.value)
    assert "source 'tiny'" in message and gone in message and REPO in message
    assert "sources.tiny.hf.revision" in message
    assert not (tmp_path / "x" / MANIFEST_NAME).exists()
    # The version branch the hub does have still resolves.
    download_huggingface(REPO, "v2.0.0", ["data/train-*.parquet"], tmp_path / "y", require_pinned=True)


def test_a_gated_source_without_a_token_fails_before_any_request(hub, tmp_path):
    with pytest.raises(HubAccessError) as err:
        download_huggingface(REPO, PIN, ["data/*"], tmp_path / "x", source="starcoderdata", gated=True)
    message = str(err.value)
    assert "starcoderdata" in message and REPO in message and "HF_TOKEN" in message
    assert f"https://huggingface.co/datasets/{REPO}" in message
    assert hub.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_names_source_repo_variable_and_terms_page(hf_hub, monkeypatch, tmp_path, status):
    hub = hf_hub({("dataset", REPO): FILES}, denied={REPO: status})
    monkeypatch.setenv("HF_TOKEN", "hf_not_accepted")
    with pytest.raises(HubAccessError) as err:
        download_huggingface(REPO, PIN, ["data/*"], tmp_path / "x", source="starcoderdata", gated=True)
    message = str(err.value)
    assert "source 'starcoderdata'" in message and REPO in message and "HF_TOKEN" in message
    assert f"https://huggingface.co/datasets/{REPO}" in message and str(status) in message
    assert "hf_not_accepted" not in message  # the token is never shown
    assert hub.file_gets() == []


def test_more_parts_than_pinned_files_fails_before_downloading(hub, tmp_path):
    with pytest.raises(ValueError, match=r"has 2 file\(s\) matching .* fewer than its 3 parts") as err:
        download_huggingface(REPO, PIN, ["data/train-*.parquet"], tmp_path / "x", source="tiny", min_files=3)
    assert "sources.tiny.parts" in str(err.value) and "at most 2" in str(err.value)
    assert hub.file_gets() == []
    download_huggingface(REPO, PIN, ["data/train-*.parquet"], tmp_path / "y", source="tiny", min_files=2)


def test_no_study_source_uses_a_moving_branch():
    """Every study source is pinned (commit or version branch) or explicitly unpinned (null), in
    which case acquiring it stops with an error naming it; none says main."""
    unpinned = []
    for name, spec in STUDY["sources"].items():
        revision = spec["hf"]["revision"]
        assert revision is None or is_pinned_revision(revision), f"{name}: revision {revision!r} moves"
        if revision is None:
            unpinned.append(name)
            with pytest.raises(UnpinnedRevisionError, match=f"source '{name}'"):
                check_pinned(name, spec["hf"]["repo"], revision)
    # Pinned from a cited listing (README, Curation): the H4 set's last data commit.
    assert STUDY["sources"]["stackexchange"]["hf"]["revision"] == "c7bda74048748f55749cd663c3d8d1025a841fd9"
    assert "stackexchange" not in unpinned


def test_the_schema_rejects_a_moving_branch_and_names_the_key():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(Path(__file__).resolve().parents[2] / "config" / "schema.yaml")
    config = copy.deepcopy(STUDY)
    config["sources"]["finemath"]["hf"]["revision"] = "main"
    with pytest.raises(WorkflowError, match=r"'main' does not match[\s\S]*finemath[\s\S]*revision"):
        validate(config, schema)


def test_pin_tool_resolves_each_source_and_checks_its_parts(hub):
    from trellis.acquire.pin import resolve_pins

    sources = {
        "tiny": {"parts": 2, "hf": {"repo": REPO, "revision": None, "allow_patterns": ["data/train-*"]}},
        "wide": {"parts": 5, "hf": {"repo": REPO, "revision": PIN, "allow_patterns": ["data/*"]}},
    }
    rows = resolve_pins(sources)
    assert [(r["source"], r["commit"], r["files"], r["fits"]) for r in rows] == [
        ("tiny", PIN, 2, True),
        ("wide", PIN, 3, False),
    ]
    assert rows[0]["resolved_from"] == "main" and rows[1]["resolved_from"] == PIN
    with pytest.raises(ValueError, match=r"--source \['nope'\]"):
        resolve_pins(sources, only=["nope"])


def test_pin_tool_cli_prints_the_lines_to_paste(hub, tmp_path, capsys):
    from trellis.acquire.pin import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "sources": {
                    "tiny": {"parts": 2, "hf": {"repo": REPO, "revision": None, "allow_patterns": ["data/*"]}}
                }
            }
        )
    )
    assert main(["--configfile", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"sources.tiny.hf.revision: {PIN}" in out and "3 file(s) match, parts 2" in out
