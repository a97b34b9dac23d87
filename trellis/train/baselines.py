"""External baselines (Pythia): the compute-matched checkpoint, and fetching it as an HF model dir.

Pythia publishes intermediate checkpoints as git revisions ``step<N>`` of each model repository.
Every Pythia step is 1024 sequences × 2048 tokens = 2,097,152 tokens, and the saved steps are
0, 1, 2, 4, ..., 512 (log-spaced) then every 1000 up to 143000.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path

from trellis.core.io import atomic_directory

log = logging.getLogger(__name__)

PYTHIA_TOKENS_PER_STEP = 1024 * 2048
PYTHIA_SAVED_STEPS: tuple[int, ...] = (0,) + tuple(2**i for i in range(10)) + tuple(range(1000, 143001, 1000))
PYTHIA_FINAL_STEP = PYTHIA_SAVED_STEPS[-1]

# What a baseline arm's revision may name besides a literal "step<N>": resolved from the config
# (trellis.train.baselines.resolve_revision), so changing pretrain.max_tokens moves the baseline too.
COMPUTE_MATCHED = "compute-matched"
FINAL = "final"

# The shapes the compute plan needs, from the Pythia paper (Biderman et al. 2023, Table 1) and the
# models' config.json: GPT-NeoX blocks (LayerNorm with bias, two per layer, plus a final one),
# untied input/output embeddings over a 50,304-row vocabulary. tests/train/test_convert.py rebuilds each
# as a transformers GPTNeoXForCausalLM on the meta device and checks the parameter count.
PYTHIA_ARCHITECTURES: dict[str, dict[str, int]] = {}
for _size, (_layers, _width, _heads) in {"410m": (24, 1024, 16), "1b": (16, 2048, 8)}.items():
    _params = 2 * 50304 * _width + _layers * (12 * _width * _width + 13 * _width) + 2 * _width
    for _repo in (f"EleutherAI/pythia-{_size}-deduped", f"EleutherAI/pythia-{_size}"):
        PYTHIA_ARCHITECTURES[_repo] = {
            "parameters": _params,
            "n_layer": _layers,
            "n_embd": _width,
            "n_head": _heads,
            "vocab_size": 50304,
            "norm_parameters": (4 * _layers + 2) * _width,
        }


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
    steps = sorted({int(s) for s in available_steps})
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


def resolve_revision(revision: str, pretrain_tokens: int) -> str:
    """A baseline arm's hub revision: ``compute-matched`` and ``final`` resolved, others as given.

    ``compute-matched``: the saved step nearest to ``pretrain_tokens`` (what our pretrained arms
    train on) at Pythia's 2,097,152 tokens per step; ``final``: step 143000 (Pythia's ``main``).
    """
    if revision == COMPUTE_MATCHED:
        return pythia_revision(pythia_compute_matched_step(pretrain_tokens))
    if revision == FINAL:
        return pythia_revision(PYTHIA_FINAL_STEP)
    return revision


def final_baseline_arm(arms: dict[str, dict], repo: str, pretrain_tokens: int) -> str | None:
    """The baseline arm that is ``repo`` at its final step (None when there is none).

    ``final`` and ``step143000`` (what ``final`` resolves to) and ``main`` all name it; a
    compute-matched checkpoint is another model. The harness validation runs on this arm
    (``trellis.evaluate.harness``: published numbers exist only for the final step).
    """
    final = resolve_revision(FINAL, pretrain_tokens)
    for name, spec in arms.items():
        if spec.get("kind") != "baseline" or spec.get("repo") != repo:
            continue
        if resolve_revision(str(spec.get("revision")), pretrain_tokens) in (final, "main"):
            return name
    return None


def pythia_tokens_seen(revision: str) -> int:
    """Tokens a Pythia checkpoint had trained on at a ``step<N>`` revision (``main``: the last)."""
    if revision == "main":
        return PYTHIA_FINAL_STEP * PYTHIA_TOKENS_PER_STEP
    if not revision.startswith("step") or not revision[4:].isdigit():
        raise ValueError(f"not a Pythia step revision: {revision!r} (expected step<N> or main)")
    return int(revision[4:]) * PYTHIA_TOKENS_PER_STEP


def fetch_baseline(
    repo: str, revision: str, out_dir: str | Path, cache_dir: str | Path | None = None
) -> dict:
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
