"""Pretraining with LitGPT: the model config, a data module over TKDS shards, and the run itself.

LitGPT's own pretrain loop (``litgpt.pretrain.setup``) does the training: Fabric (multi-GPU,
multi-node, precision), cosine schedule with warmup, gradient accumulation, clipping, periodic
checkpoints, resume and CSV logging. This package only supplies what LitGPT cannot know, one
concern per module:

- ``model``: the LLaMA-style config from our ``model`` section, the ``pretrain`` section's keys,
  and activation checkpointing, which LitGPT's loop has no switch for.
- ``data``: the data (TKDS shard directories) as a resumable LitGPT data module.
- ``checkpoints``: the final, latest and half-written checkpoints under ``out_dir``, and
  discarding those of a different run.
- ``metrics``: merging the run's CSV logs into one metrics.csv with tokens/s and MFU per logged step.
- ``launch``: the mapping from our ``pretrain`` section onto LitGPT's arguments, the run
  (``run_pretrain``), and starting one process per GPU from inside a Snakemake job
  (``launch_command``: torchrun, or srun under SLURM).

Each launched process runs ``python -m trellis.train.pretrain LAUNCH_JSON`` (``__main__``).
The names callers use are re-exported here.
"""

from trellis.train.pretrain.checkpoints import final_checkpoint, latest_step_checkpoint
from trellis.train.pretrain.data import ResumableDataLoader, ResumableSampler, TKDSDataModule, TKDSDataset
from trellis.train.pretrain.launch import launch_command, run_pretrain
from trellis.train.pretrain.metrics import merge_metrics
from trellis.train.pretrain.model import PRETRAIN_KEYS, enable_gradient_checkpointing, litgpt_config

__all__ = [
    "PRETRAIN_KEYS",
    "ResumableDataLoader",
    "ResumableSampler",
    "TKDSDataModule",
    "TKDSDataset",
    "enable_gradient_checkpointing",
    "final_checkpoint",
    "latest_step_checkpoint",
    "launch_command",
    "litgpt_config",
    "merge_metrics",
    "run_pretrain",
]
