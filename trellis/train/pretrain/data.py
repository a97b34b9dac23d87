"""The data side of pretraining: TKDS shard directories as a LitGPT data module.

``TKDSDataset`` memory-maps a shard directory's sequences; ``ResumableSampler`` and
``ResumableDataLoader`` split them across ranks and save their position in LitGPT's checkpoint, so
a resumed run continues with the next unseen batch; ``TKDSDataModule`` is what LitGPT's loop is
given (it is also named by class path in hyperparameters.yaml, so it must stay importable from
this module). Nothing here knows about the model or the run's checkpoints.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from litgpt.data import DataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def _read_manifest(shard_dir: Path) -> dict:
    path = shard_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no TKDS manifest (expected the output of the mix stage)")
    manifest = json.loads(path.read_text())
    for key in ("context_length", "vocab_size", "shards"):
        if key not in manifest:
            raise KeyError(f"{path}: manifest has no {key!r}")
    if not manifest["shards"]:
        raise ValueError(f"{path}: manifest lists no shards")
    for entry in manifest["shards"]:
        for key in ("file", "sequences"):
            if key not in entry:
                raise KeyError(f"{path}: shard entry {entry} has no {key!r}")
    return manifest


class TKDSDataset(Dataset):
    """Sequences ``[start, stop)`` of a shard directory, in manifest order, as int64 tensors.

    Shards are memory-mapped lazily (per process, so DataLoader workers open their own maps and
    nothing large is pickled); a sequence read touches only its own pages.
    """

    def __init__(self, shard_dir: Path, manifest: dict, start: int, stop: int, validate_tokens: bool = False):
        self.shard_dir = Path(shard_dir)
        self.files = [self.shard_dir / s["file"] for s in manifest["shards"]]
        self.counts = [int(s["sequences"]) for s in manifest["shards"]]
        self.offsets = np.cumsum([0] + self.counts).tolist()
        self.context_length = int(manifest["context_length"])
        self.vocab_size = int(manifest["vocab_size"])
        self.validate_tokens = validate_tokens
        if not 0 <= start <= stop <= self.offsets[-1]:
            raise ValueError(f"{shard_dir}: sequence range [{start}, {stop}) outside 0..{self.offsets[-1]}")
        self.start, self.stop = start, stop
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.stop - self.start

    def _shard(self, k: int) -> np.ndarray:
        if k not in self._maps:
            from trellis.tokens.tkds import read_shard

            _, data = read_shard(self.files[k], validate=self.validate_tokens)
            expected = (self.counts[k], self.context_length)
            if tuple(data.shape) != expected:
                raise ValueError(
                    f"{self.files[k]}: holds {tuple(data.shape)} tokens, manifest says {expected}"
                )
            self._maps[k] = data
        return self._maps[k]

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        g = self.start + index
        k = bisect.bisect_right(self.offsets, g) - 1
        row = np.asarray(self._shard(k)[g - self.offsets[k]], dtype=np.int64)
        return torch.from_numpy(row)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}  # memory maps are reopened in each worker
        return state


class ResumableSampler(DistributedSampler):
    """A DistributedSampler (rank-disjoint, seeded per epoch) that can skip what was consumed.

    Being a DistributedSampler also stops Fabric from wrapping it in its own sampler.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int):
        # drop_last: DistributedSampler would otherwise pad ranks with repeated sequences, so two
        # ranks would train on the same sequence within one epoch.
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position (epoch, batches consumed) is saved in LitGPT's checkpoint.

    Fabric saves any object in the state dict that has ``state_dict``/``load_state_dict``, so a
    resumed run continues with the next unseen batch instead of replaying the epoch's start (a plain
    DataLoader would be pickled whole into the checkpoint and restart at batch 0).
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, **kwargs: Any):
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._epoch = 0
        self._consumed = 0

    def __iter__(self):
        # Fabric sets the sampler's epoch to its own call count (which restarts at 0 on resume);
        # ours, restored from the checkpoint, wins because it is set last.
        self.sampler.set_epoch(self._epoch)
        self.sampler.skip = self._consumed * self.batch_size
        for batch in super().__iter__():
            self._consumed += 1
            yield batch
        self._epoch += 1
        self._consumed = 0

    def state_dict(self) -> dict:
        return {"epoch": self._epoch, "consumed_batches": self._consumed}

    def load_state_dict(self, state: dict) -> None:
        self._epoch = int(state["epoch"])
        self._consumed = int(state["consumed_batches"])


def _world() -> tuple[int, int]:
    """(world size, rank) from torch.distributed, which Fabric initializes before data setup."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class TKDSDataModule(DataModule):
    """LitGPT data module over a TKDS shard directory (``manifest.json`` + ``shard-*.tkds``).

    The validation slice is the last ``n_val`` sequences in manifest order (the mix already shuffled
    globally, so the tail is a random sample): ``ceil(val_fraction × total)`` clamped to at least
    one micro batch per rank and at most ``max_val_sequences``. Training uses everything before it.
    Both are split across ranks without overlap; training is reshuffled each epoch from ``seed``.
    """

    def __init__(
        self,
        shard_dir: str | Path,
        val_fraction: float = 0.01,
        max_val_sequences: int = 1024,
        seed: int = 42,
        num_workers: int = 0,
        validate_tokens: bool = False,
    ):
        super().__init__()
        self.shard_dir = Path(shard_dir)
        self.val_fraction = val_fraction
        self.max_val_sequences = max_val_sequences
        self.seed = seed
        self.num_workers = num_workers
        # The mix stage validated every token when it wrote the shards; rescanning 40 GB at each
        # (re)start of every rank buys nothing, so token validation is opt-in here.
        self.validate_tokens = validate_tokens
        self.manifest = _read_manifest(self.shard_dir)
        self.context_length = int(self.manifest["context_length"])
        self.total_sequences = sum(int(s["sequences"]) for s in self.manifest["shards"])
        self.batch_size = 1
        self.max_seq_length: int | None = None
        self.train_dataset: TKDSDataset | None = None
        self.val_dataset: TKDSDataset | None = None

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments (LitGPT records them in hyperparameters.yaml)."""
        return {
            "shard_dir": str(self.shard_dir),
            "val_fraction": self.val_fraction,
            "max_val_sequences": self.max_val_sequences,
            "seed": self.seed,
            "num_workers": self.num_workers,
            "validate_tokens": self.validate_tokens,
        }

    def connect(
        self, tokenizer=None, batch_size: int = 1, max_seq_length: int | None = None, **kwargs
    ) -> None:
        self.batch_size = batch_size
        # LitGPT passes the model's max_seq_length; each sequence must hold one more token (the
        # last target), so it can be at most context_length - 1.
        if max_seq_length is not None and max_seq_length > self.context_length - 1:
            raise ValueError(
                f"{self.shard_dir}: max_seq_length {max_seq_length} needs sequences of {max_seq_length + 1} "
                "tokens;"
                f" the shards hold {self.context_length} (set train.max_seq_length = context_length - 1)"
            )
        self.max_seq_length = max_seq_length

    def validation_size(self, world_size: int = 1) -> int:
        per_batch = self.batch_size * world_size
        n = math.ceil(self.val_fraction * self.total_sequences)
        n = max(per_batch, min(n, self.max_val_sequences))
        return math.ceil(n / per_batch) * per_batch  # whole batches on every rank

    def setup(self, stage: str = "") -> None:
        world, _ = _world()
        n_val = self.validation_size(world)
        n_train = self.total_sequences - n_val
        if n_train < self.batch_size * world:
            raise ValueError(
                f"{self.shard_dir}: {self.total_sequences} sequences leave {n_train} for training after "
                f"{n_val} held out; need at least one micro batch ({self.batch_size}) per rank ({world})"
            )
        self.train_dataset = TKDSDataset(self.shard_dir, self.manifest, 0, n_train, self.validate_tokens)
        self.val_dataset = TKDSDataset(
            self.shard_dir, self.manifest, n_train, self.total_sequences, self.validate_tokens
        )
        # Open every shard now (header, size and manifest checks are cheap) so a bad shard fails
        # before the model is built, not hours into the run when its first sequence is drawn.
        for k in range(len(self.manifest["shards"])):
            self.train_dataset._shard(k)

    def _loader(self, dataset: TKDSDataset, shuffle: bool) -> ResumableDataLoader:
        if dataset is None:
            raise RuntimeError("TKDSDataModule.setup() must run before the dataloaders are requested")
        world, rank = _world()
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.seed)
        return ResumableDataLoader(
            dataset,
            sampler,
            batch_size=self.batch_size,
            drop_last=True,  # fixed batch shapes (compiled graphs, exact token accounting)
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def __repr__(self) -> str:
        return f"TKDSDataModule(shard_dir={str(self.shard_dir)!r}, sequences={self.total_sequences})"
