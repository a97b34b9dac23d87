"""The mix's seeded random streams: one independent, reproducible generator per purpose.

Every random choice of a mix draws from ``seeded_rng(seed, purpose, ...)``, ``purpose`` being one
of these tags (a new purpose takes a new tag: reusing one would correlate two streams and change
the bytes an existing config gives):

- 1: a component's row-group and document orders, per epoch and part (``pack.component_stream``);
- 2: which component gives the next document (``pack.MixStream``, via ``pack.interleave``);
- 3: the permutation of each pass-1 run (``build.build_mix``, via ``shuffle.write_runs``);
- 4: the pass-2 draws, per shard (``build.build_mix``, via ``shuffle.merge_runs``);
- 5: a component's exact sample, per part (``plan.Component.plan``).
"""

from __future__ import annotations

import zlib

import numpy as np


def seeded_rng(seed: int, *tags: int) -> np.random.Generator:
    # Independent, reproducible streams per purpose: changing one component or the buffer size
    # does not perturb the other streams' draws.
    return np.random.default_rng([int(seed), *tags])


def name_tag(name: str) -> int:
    """A component's name as a stream tag (crc32: the same on every machine and Python run)."""
    return zlib.crc32(name.encode("utf-8"))
