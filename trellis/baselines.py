"""External baselines (Pythia): the compute-matched checkpoint, and fetching it as an HF model dir.

Pythia publishes intermediate checkpoints as git revisions ``step<N>`` of each model repository.
Every Pythia step is 1024 sequences × 2048 tokens = 2,097,152 tokens, and the saved steps are
0, 1, 2, 4, ..., 512 (log-spaced) then every 1000 up to 143000.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path

from trellis.io import atomic_directory

log = logging.getLogger(__name__)

PYTHIA_TOKENS_PER_STEP = 1024 * 2048
PYTHIA_SAVED_STEPS: tuple[int, ...] = (0,) + tuple(2**i for i in range(10)) + tuple(range(1000, 143001, 1000))


def pythia_compute_matched_step(
    tokens: int,
    tokens_per_step: int = PYTHIA_TOKENS_PER_STEP,
    available_steps: tuple[int, ...] | list[int] = PYTHIA_SAVED_STEPS,
) -> int:
    """The saved Pythia step nearest to having seen ``tokens`` tokens (ties: the earlier step).

    E.g. 20e9 tokens = 9536.7 steps -> step 10000. Beyond the last saved step the last is returned.
    """
    if tokens < 0:
        raise ValueError(f"tokens must be non-negative, got {tokens}")
    if tokens_per_step <= 0:
        raise ValueError(f"tokens_per_step must be positive, got {tokens_per_step}")
    steps = sorted(set(int(s) for s in available_steps))
    if not steps:
        raise ValueError("available_steps is empty")
    target = tokens / tokens_per_step
    i = bisect.bisect_left(steps, target)
    candidates = steps[max(0, i - 1) : i + 1]
    return min(candidates, key=lambda s: (abs(s - target), s))


def pythia_revision(step: int) -> str:
    """The git revision name Pythia uses for a saved step."""
    if step not in PYTHIA_SAVED_STEPS:
        raise ValueError(f"Pythia saved no checkpoint at step {step}")
    return f"step{step}"


def fetch_baseline(repo: str, revision: str, out_dir: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Download ``repo`` at ``revision`` and save it as an HF model directory at ``out_dir``.

    Loading and re-saving (rather than copying the snapshot) makes the directory look like our
    converted models: safetensors weights, config.json, a tokenizer with a pad token (Pythia's has
    none; SFT and batched evaluation need one, so EOS stands in). Written atomically: built under
    a temporary name and renamed into place.
    """
    from huggingface_hub import snapshot_download
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    snapshot = Path(
        snapshot_download(
            repo_id=repo,
            revision=revision,
            cache_dir=str(cache_dir) if cache_dir else None,
            # weights in either format, config and tokenizer files; no duplicate formats (flax, tf)
            allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt", "*.model"],
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(str(snapshot))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{repo}@{revision}: tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(snapshot))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    info = {
        "repo": repo,
        "revision": revision,
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "pad_token_id": tokenizer.pad_token_id,
        "out_dir": str(out_dir),
    }
    log.info("fetched %s@%s -> %s (%s parameters)", repo, revision, out_dir, f"{info['parameters']:,}")
    return info
