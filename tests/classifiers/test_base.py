"""The classifiers' base model: fetched from the hub (a local stand-in), then trained on with no network.

The "hub" serves a tiny ModernBERT saved with save_pretrained (config, safetensors, tokenizer) as a
model repository; fetch_base_model downloads it as rule fetch_classifier_base does, and
train_classifier loads that directory as the GPU job does, offline.
"""

from __future__ import annotations

import json

import pytest
from test_train import TASKS, TINY, build_tokenizer, write_labels

from trellis.acquire.download import MANIFEST_NAME
from trellis.classifiers.base import BASE_MODEL_REVISION, fetch_base_model
from trellis.classifiers.train import base_model_record, train_classifier

REPO = "trellis-test/tiny-modernbert"


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory) -> dict[str, bytes]:
    """A tiny ModernBERT masked LM as a hub repository holds it (with files the fetch leaves out)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, ModernBertConfig

    root = tmp_path_factory.mktemp("hub-model")
    tokenizer = AutoTokenizer.from_pretrained(build_tokenizer(root))
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        **TINY,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    AutoModelForMaskedLM.from_config(config).save_pretrained(root)
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
    return files | {"README.md": b"# tiny ModernBERT\n", "onnx/model.onnx": b"not fetched"}


@pytest.fixture
def fetched(hf_hub, hub_files, tmp_path):
    hub = hf_hub({("model", REPO): hub_files})
    out = tmp_path / "downloads" / "models" / "classifier_base"
    manifest = fetch_base_model(REPO, BASE_MODEL_REVISION, out)
    return hub, out, manifest


def test_fetch_downloads_the_model_files_with_a_manifest(fetched, hub_files):
    hub, out, manifest = fetched
    assert manifest == json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["repo"] == REPO and manifest["repo_type"] == "model"
    assert manifest["revision"] == "main" and manifest["commit"] == hub.commit
    listed = [f["path"] for f in manifest["files"]]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(listed)
    assert "README.md" not in listed and "onnx/model.onnx" not in listed
    assert not (out / "README.md").exists() and not (out / "onnx").exists()
    for rel in listed:
        assert (out / rel).read_bytes() == hub_files[rel]
    # Written atomically: nothing left beside it under a temporary name.
    assert [p.name for p in out.parent.iterdir()] == ["classifier_base"]
    assert base_model_record(out, REPO) == {"repo": REPO, "revision": "main", "commit": hub.commit}


def test_train_classifier_loads_the_fetched_directory_offline(fetched, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    hub, base_dir, _ = fetched
    seen = len(hub.requests)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    labels = write_labels(tmp_path / "ct.parquet", "content_type", 120)
    metrics = train_classifier(
        TASKS["content_type"],
        labels,
        tmp_path / "clf",
        tokenizer_dir=None,
        base_model=REPO,
        base_model_dir=base_dir,
        tiny=TINY,
        max_length=64,
        epochs=1,
        batch_size=16,
        learning_rate=3e-3,
        validation_fraction=0.2,
        test_fraction=0.2,
        seed=7,
        threads=1,
    )
    assert len(hub.requests) == seen  # the hub was never asked
    # Provenance names the repository and its commit, never the local copy.
    assert metrics["base_model"] == REPO and metrics["base_model_commit"] == hub.commit
    saved = tmp_path / "clf" / "model"
    assert str(base_dir) not in (tmp_path / "clf" / "metrics.json").read_text()
    for name in ("config.json", "tokenizer_config.json"):
        assert str(base_dir) not in (saved / name).read_text(), name
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(saved)
    assert model.config.num_labels == 9 and model.config.trellis_task["name"] == "content_type"


def test_a_missing_or_stale_download_is_refused(fetched):
    _, out, manifest = fetched
    with pytest.raises(ValueError, match="classifiers.base_model is 'other/model'"):
        base_model_record(out, "other/model")
    with pytest.raises(FileNotFoundError, match="fetch_classifier_base"):
        base_model_record(out.parent, REPO)


def test_a_repo_without_safetensors_weights_leaves_no_directory(hf_hub, hub_files, tmp_path):
    hf_hub({("model", REPO): {k: v for k, v in hub_files.items() if not k.endswith(".safetensors")}})
    out = tmp_path / "classifier_base"
    with pytest.raises(ValueError, match="safetensors"):
        fetch_base_model(REPO, "main", out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
