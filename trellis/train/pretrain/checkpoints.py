"""The checkpoints LitGPT leaves in a run's ``out_dir``: where they are, which are complete, which are stale.

``run_pretrain`` (launch.py) uses these before training, so that LitGPT's ``resume="auto"`` picks
up exactly the right checkpoint: half-written step directories of a killed job are moved aside,
checkpoints of a different run definition are discarded, and the final checkpoint is what the
Snakemake rule declares as its output.

What LitGPT writes under ``out_dir`` (checked against litgpt 0.5.13)
-------------------------------------------------------------------
- ``step-XXXXXXXX/lit_model.pth`` every ``save_interval`` optimizer steps: a Fabric checkpoint
  ``{"model", "optimizer", "train_dataloader", "iter_num", "step_count"}``, beside
  ``model_config.yaml``, ``hyperparameters.yaml`` and the tokenizer files. ``resume="auto"`` picks
  the highest step directory.
- ``final/lit_model.pth`` (same layout) after the last iteration.
- ``logs/csv/version_N/metrics.csv``: one CSV per process start (a resumed run adds a version).
  ``run_pretrain`` merges them into ``out_dir/metrics.csv`` (metrics.py).

LitGPT keeps every step checkpoint (study: model + AdamW state, ~6 GB each, every 1000 steps).
``pretrain.keep_checkpoints`` keeps only the newest K complete ones (``prune_step_checkpoints``):
launch.py prunes right after each step checkpoint is complete and when a run starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)


def final_checkpoint(out_dir: str | Path) -> Path:
    """The final LitGPT checkpoint file LitGPT writes at the end of pretraining."""
    return Path(out_dir) / "final" / "lit_model.pth"


def _checkpoint_complete(step_dir: Path) -> bool:
    # LitGPT's save_checkpoint writes lit_model.pth first and model_config.yaml last, so a step
    # directory without model_config.yaml is one a killed job was in the middle of writing.
    return (step_dir / "lit_model.pth").is_file() and (step_dir / "model_config.yaml").is_file()


def _discard_partial_checkpoints(out_dir: Path) -> list[Path]:
    """Move aside step directories a kill left half-written, so resume="auto" skips them."""
    moved = []
    for step_dir in sorted(out_dir.glob("step-*")):
        if step_dir.is_dir() and not _checkpoint_complete(step_dir):
            target = step_dir.with_name(f".partial-{step_dir.name}-{int(time.time())}")
            step_dir.rename(target)
            moved.append(target)
    return moved


def latest_step_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint LitGPT's resume="auto" would pick (highest complete step), or None."""
    steps = [d for d in Path(out_dir).glob("step-*") if d.is_dir() and _checkpoint_complete(d)]
    if not steps:
        return None
    return max(steps, key=lambda d: int(d.name.split("-")[1])) / "lit_model.pth"


def _step_dirs(out_dir: Path) -> list[Path]:
    """Step directories under ``out_dir``, oldest first (by step number, as resume="auto" orders them)."""
    steps = [d for d in out_dir.glob("step-*") if d.is_dir() and d.name.split("-", 1)[1].isdigit()]
    return sorted(steps, key=lambda d: int(d.name.split("-", 1)[1]))


def _retention(keep: object) -> int | None:
    """``pretrain.keep_checkpoints`` checked: an integer >= 1, or None to keep every checkpoint."""
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(
            "pretrain.keep_checkpoints must be an integer >= 1 (a killed run resumes from the newest) "
            f"or null (keep all), got {keep!r}"
        )
    return keep


def prune_step_checkpoints(out_dir: str | Path, keep: int | None) -> list[Path]:
    """Remove all but the newest ``keep`` complete step checkpoints; return the removed directories.

    Only complete checkpoints count, so a checkpoint goes only when ``keep`` newer complete ones
    remain to resume from. Incomplete step directories (one being written, or a kill's leftover,
    which ``_discard_partial_checkpoints`` moves aside) are left alone, and so is ``final/``.
    ``keep=None`` keeps everything.
    """
    if _retention(keep) is None:
        return []
    out_dir = Path(out_dir)
    complete = [d for d in _step_dirs(out_dir) if _checkpoint_complete(d)]
    removed = complete[:-keep]
    for step_dir in removed:
        shutil.rmtree(step_dir)
        log.info("removed step checkpoint %s (keeping the newest %d complete)", step_dir, keep)
    return removed


def _reset_if_changed(out_dir: Path, fingerprint: dict) -> None:
    """Start from scratch when ``out_dir`` holds checkpoints of a different run.

    resume="auto" resumes from any step-* directory it finds. That is right after a kill, but wrong
    when Snakemake reruns the job because a parameter or the shards changed: the old checkpoints
    belong to another run. The fingerprint (everything that defines the run) tells them apart.
    """
    path = out_dir / "run_fingerprint.json"
    current = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if path.is_file() and json.loads(path.read_text()) == current:
        return
    stale = [p for p in out_dir.iterdir() if p.name.startswith(("step-", "final", "logs", ".partial-"))]
    if any(p.name.startswith("step-") for p in stale):
        why = "run definition changed since" if path.is_file() else "no run fingerprint beside"
        log.warning("%s: %s the existing checkpoints; discarding them, starting from step 0", out_dir, why)
    for p in stale:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
