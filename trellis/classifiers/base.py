"""The classifiers' base model (``classifiers.base_model``; study: ModernBERT-base) as a local directory.

Rule ``fetch_classifier_base`` downloads it once, where the internet is reachable, into
``downloads/models/classifier_base/``: the repository's config, tokenizer and safetensors files
with ``MANIFEST.json`` (repo, requested revision, the commit it resolved to, every file and its
size; ``trellis.acquire.download``, the same download and manifest as an acquired source). The
directory is written atomically. ``train_classifier`` reads that directory as a declared input and
never reaches the hub, so it runs on GPU nodes that have no route out; its metrics still name the
repository and the commit (``trellis.classifiers.train.base_model_record``), never the local path.
That side reads the manifest without this module, so the training environment needs no hub client.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trellis.acquire.download import download_huggingface
from trellis.core.io import atomic_directory, read_json

log = logging.getLogger(__name__)

# The revision the study fine-tunes; the manifest records the commit it resolved to.
BASE_MODEL_REVISION = "main"
# Config, tokenizer (JSON, vocab.txt or a sentencepiece model) and safetensors weights: no README,
# no duplicate weight formats (PyTorch .bin, ONNX, Flax).
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def fetch_base_model(repo: str, revision: str, out_dir: str | Path) -> dict:
    """Download ``repo`` at ``revision`` into ``out_dir`` (atomically); return its manifest."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        manifest = read_json(
            download_huggingface(
                repo, revision, MODEL_PATTERNS, tmp, source="classifier_base", repo_type="model"
            )
        )
        names = [f["path"] for f in manifest["files"]]
        if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
            raise ValueError(
                f"{repo}@{revision}: not a transformers model with safetensors weights "
                f"(downloaded {names}); classifiers.base_model must name one"
            )
    log.info(
        "fetched %s@%s (commit %s): %d files, %s bytes -> %s",
        repo,
        revision,
        manifest["commit"],
        len(names),
        f"{manifest['total_bytes']:,}",
        out_dir,
    )
    return manifest
