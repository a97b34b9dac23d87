"""Selection: the source's best documents up to its token target, with groups rebalanced.

After filtering and dedup, each curated source still has more tokens than its mix budget, spread
over groups (FineWeb-Edu: primary topic; StarCoderData: language) in the crawl's proportions.
The study rebalances: STEM-core topics are ~5% of FineWeb-Edu, so selection takes all of them it
can and fewer of the dominant topics; code gets per-language quotas.

1. *quotas* (``group_quotas``): the target is split over groups by the configured shares (a
   group not named shares what the named ones leave, in proportion to what it has). A group with
   fewer tokens than its quota gives everything it has, and its shortfall is spread over the
   groups that still have room, by their shares (water-filling), so the target is met whenever
   the source holds that many tokens.
2. *ranking*: within a group, documents are taken by ``priority`` (from the filter: complexity
   plus the multi-label bonus; structured relevance plus the quality boost), highest first, until
   the group's quota.

Bounded memory in two passes over the parts' small columns: pass 1 builds, per group, a
histogram of tokens by priority (priorities quantized to 1/1000); the quotas turn into per-group
cutoffs; pass 2 streams the parts again and writes every document above its group's cutoff plus,
at the cutoff itself, documents in part order until the quota is reached.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import ParquetWriter, iter_batches
from trellis.core.stats import StepStats

log = logging.getLogger(__name__)

PRIORITY_RESOLUTION = 1000  # priorities compare at 1/1000; finer differences do not reorder


def group_quotas(
    available: Mapping[str, int], target: float | None, shares: Mapping[str, float]
) -> dict[str, float]:
    """Tokens to take per group (see the module docstring). ``target`` None takes everything."""
    bad = {g: s for g, s in shares.items() if not 0 <= s <= 1}
    if bad or sum(shares.values()) > 1 + 1e-9:
        raise ValueError(f"target shares must be in [0, 1] and sum to at most 1, got {dict(shares)}")
    total = sum(available.values())
    if target is None or target >= total:
        return {g: float(a) for g, a in available.items()}
    unnamed = [g for g in available if g not in shares]
    unnamed_total = sum(available[g] for g in unnamed)
    rest = 1.0 - sum(shares.values())
    weight = {g: float(shares.get(g, 0.0)) for g in available}
    for g in unnamed:
        weight[g] = rest * available[g] / unnamed_total if unnamed_total else 0.0
    quota = {g: 0.0 for g in available}
    open_groups = [g for g in available if available[g] > 0]
    remaining = float(target)
    while remaining > 1e-6 and open_groups:
        w = {g: weight[g] for g in open_groups}
        if sum(w.values()) <= 0:
            # Every group with a share is full: the rest goes by what the others have.
            w = {g: float(available[g] - quota[g]) for g in open_groups}
        wsum = sum(w.values())
        for g in open_groups:
            quota[g] += min(remaining * w[g] / wsum, available[g] - quota[g])
        remaining = float(target) - sum(quota.values())
        open_groups = [g for g in open_groups if available[g] - quota[g] > 1e-6]
    return quota


def _cutoffs(histograms: Mapping[str, Counter], quotas: Mapping[str, float]) -> dict[str, tuple[int, float]]:
    """Per group: (priority key at which the quota is reached, tokens still to take at that key)."""
    out = {}
    for g, hist in histograms.items():
        need = quotas.get(g, 0.0)
        taken = 0.0
        key = None
        for key in sorted(hist, reverse=True):
            if taken + hist[key] >= need:
                break
            taken += hist[key]
        else:
            key = None  # the whole group fits
        out[g] = (key, need - taken) if key is not None else (np.iinfo(np.int64).min, 0.0)
    return out


def _part_rows(filtered_path, dedup_path):
    """Batches of (filtered batch, keep mask from dedup), checked id by id."""
    dedup_rows = pq.ParquetFile(dedup_path).metadata.num_rows
    filtered_rows = pq.ParquetFile(filtered_path).metadata.num_rows
    if dedup_rows != filtered_rows:
        raise ValueError(
            f"{dedup_path} has {dedup_rows} rows but {filtered_path} has {filtered_rows}: "
            "dedup decisions must come from this filtered part"
        )
    decisions = pq.read_table(
        dedup_path, columns=["id", "keep"]
    ).combine_chunks()  # two small columns of one part
    row = 0
    for batch in iter_batches(filtered_path):
        ids = decisions.column("id").chunk(0).slice(row, batch.num_rows)
        if not ids.equals(batch.column("id")):
            raise ValueError(
                f"{dedup_path}: ids differ from {filtered_path} near row {row}; "
                "dedup decisions must follow the filtered row order"
            )
        yield (
            batch,
            decisions.column("keep").chunk(0).slice(row, batch.num_rows).to_numpy(zero_copy_only=False),
        )
        row += batch.num_rows


def select_source(
    filtered_paths: Sequence[str | os.PathLike],
    dedup_paths: Sequence[str | os.PathLike],
    out_paths: Sequence[str | os.PathLike],
    target_tokens: int | None,
    target_shares: Mapping[str, float],
) -> dict[str, Any]:
    """Write each part's selected documents (filtered columns, kept rows in order) to ``out_paths``.

    Returns stats: documents and tokens in (after dedup), selected and ``not_selected``; per
    group its available tokens, quota, selected tokens and shares (available, selected, target).
    """
    if not (len(filtered_paths) == len(dedup_paths) == len(out_paths)):
        raise ValueError(
            f"select needs one dedup file and output per filtered part; got {len(filtered_paths)}, "
            f"{len(dedup_paths)}, {len(out_paths)}"
        )
    # Pass 1: tokens per group and priority key.
    histograms: dict[str, Counter] = defaultdict(Counter)
    for fpath, dpath in zip(filtered_paths, dedup_paths):
        for batch, keep in _part_rows(fpath, dpath):
            groups = batch.column("group").to_pylist()
            keys = np.rint(
                batch.column("priority").to_numpy(zero_copy_only=False) * PRIORITY_RESOLUTION
            ).astype(np.int64)
            tokens = batch.column("n_tokens").to_numpy(zero_copy_only=False)
            for g, k, t, kp in zip(groups, keys, tokens, keep):
                if kp:
                    histograms[g][int(k)] += int(t)
    available = {g: sum(h.values()) for g, h in sorted(histograms.items())}
    quotas = group_quotas(available, target_tokens, target_shares)
    cutoffs = _cutoffs(histograms, quotas)
    missing = sorted(set(target_shares) - set(available))
    if missing:
        log.warning("select: target shares name groups with no documents after dedup: %s", missing)

    # Pass 2: write what each group's cutoff admits.
    counts = StepStats("select", unit="tokens", reasons=("not_selected",))
    at_cutoff_left = {g: left for g, (_, left) in cutoffs.items()}
    selected: Counter[str] = Counter()
    for fpath, dpath, opath in zip(filtered_paths, dedup_paths, out_paths):
        schema = pq.read_schema(fpath)
        with ParquetWriter(opath, schema) as writer:
            for batch, keep in _part_rows(fpath, dpath):
                groups = batch.column("group").to_pylist()
                keys = np.rint(
                    batch.column("priority").to_numpy(zero_copy_only=False) * PRIORITY_RESOLUTION
                ).astype(np.int64)
                tokens = batch.column("n_tokens").to_numpy(zero_copy_only=False)
                take = np.zeros(batch.num_rows, dtype=bool)
                for i, (g, k, t, kp) in enumerate(zip(groups, keys, tokens, keep)):
                    if not kp:
                        continue  # a duplicate: counted by dedup, not here
                    counts.seen(t)
                    cut_key, _ = cutoffs[g]
                    if k > cut_key or (k == cut_key and at_cutoff_left[g] > 0):
                        if k == cut_key:
                            at_cutoff_left[g] -= int(t)
                        take[i] = True
                        counts.kept(t)
                        selected[g] += int(t)
                    else:
                        counts.drop("not_selected", t)
                if take.any():
                    writer.write_table(pa.Table.from_batches([batch.filter(pa.array(take))]))
    total_available = sum(available.values()) or 1
    total_selected = sum(selected.values()) or 1
    stats = counts.to_dict()
    stats.update(
        target_tokens=target_tokens,
        shortfall_tokens=max(0, int(target_tokens) - counts.size_out) if target_tokens else 0,
        groups={
            g: {
                "available_tokens": available[g],
                "quota_tokens": round(quotas[g], 1),
                "selected_tokens": selected[g],
                "available_share": round(available[g] / total_available, 6),
                "selected_share": round(selected[g] / total_selected, 6),
                "target_share": target_shares.get(g),
            }
            for g in available
        },
    )
    if target_shares:
        # How far the groups' token shares are from the targets before and after selection.
        stats["target_share_distance"] = {
            "available": share_distance(stats["groups"], "available_share", target_shares),
            "selected": share_distance(stats["groups"], "selected_share", target_shares),
        }
    log.info("%s; target %s tokens", counts.summary(), target_tokens)
    return stats


def share_distance(groups: Mapping[str, Mapping[str, Any]], key: str, targets: Mapping[str, float]) -> float:
    """Sum over the targeted groups of |share - target|: how far ``key`` shares are from the targets."""
    return float(sum(abs(groups.get(g, {}).get(key, 0.0) - t) for g, t in targets.items()))
