"""Build one arm's pretraining mix: exact token budgets per component, EOS packing, external shuffle.

Steps, all deterministic in ``seed`` (same config and token parts -> same shard bytes anywhere):

1. **Plan.** Each component (one source's token parts and a token budget) reads only the
   ``n_tokens`` column of its parts (the document index) to learn what it has, ``available``
   tokens. Components that read the same source never share a document: each one skips, by id,
   the documents the components before it (in config order) took, so FineWeb-Edu "random" never
   repeats a document of FineWeb-Edu "curated" (ids are the same in raw and curated parts; the
   skipped ones are reported as ``excluded_documents``). Then:

   - ``budget < available``: a seeded sample of exactly ``budget`` tokens (below);
   - ``budget >= available`` and ``upsample: false``: everything once; the manifest reports the
     ``shortfall`` (``budget - available``);
   - ``upsample: true``: ``budget // available`` whole epochs (every document that many times)
     plus a seeded sample of the remaining ``budget % available`` tokens: the budget is met
     exactly.

   **Sampling exactly N tokens in bounded memory.** N is split over the parts in proportion to
   their tokens (largest remainder). Part by part, in a seeded permutation of its documents,
   documents are taken while the running total is below the cumulative target of the parts so
   far; the one document that crosses N is cut to fit (the component's only truncated
   document). Every part can meet its target (a part's share never exceeds its tokens), so the
   total is always exactly N. Memory: one part's ``n_tokens`` column while planning; the plan
   keeps only the sampled rows (and the ids' 8-byte hashes of a source read by several
   components), never tokens.

2. **Stream.** A component emits its documents part by part, visiting each part's row groups in a
   seeded order and each row group's documents in a seeded order (a fresh order per epoch, so
   upsampled documents do not meet the same neighbours again). Memory: one row group per
   component.
3. **Interleave.** Components' streams are merged by drawing, for each next document, a component
   with probability proportional to its remaining planned tokens, so every source is spread over
   the whole stream instead of arriving in blocks.
4. **Pack.** Each document's tokens are followed by one EOS; the stream is cut into fixed
   ``context_length`` sequences, a document that does not fit carrying over into the next. The
   final partial sequence is dropped (``dropped_tail_tokens``).
5. **Shuffle, externally, in two passes over disk.** Pass 1 fills a buffer of
   ``buffer_sequences`` sequences (``mix.shuffle_buffer_mb``), permutes it and writes it as a run
   file, until the stream ends. Pass 2 writes the shards one at a time: how many of a shard's
   ``sequences_per_shard`` sequences come from each run is drawn from the multivariate
   hypergeometric distribution over the runs' remaining counts, those sequences are read in order
   from each run and permuted. That is exactly a uniform random interleaving of the
   independently permuted runs, i.e. a uniformly random permutation of the whole stream, with
   memory bounded by the buffer (pass 1) and one shard (pass 2), never by the corpus.

Token accounting (the decision the manifest's numbers rest on): a component's ``budget`` and
``realized_tokens`` count **document tokens only, EOS excluded**. EOS separators are packing
overhead, counted per component as ``eos_tokens`` (one per document emitted, truncated and
repeated ones included); ``stream_tokens = realized_tokens + eos_tokens``. Hence
``realized_tokens == budget`` whenever ``shortfall == 0``, and over the whole mix
``sum(stream_tokens) == total_sequences * context_length + dropped_tail_tokens``.

**Resume.** Work state lives in ``<out_dir>/.mix-work/`` (not an output), keyed by a fingerprint
of every argument and of the token parts (path, size, mtime): run files, ``pass1.json`` once pass
1 is complete, and a journal line per finished shard. A killed job, rerun with the same inputs,
skips a completed pass 1 and every journaled shard whose bytes still hash to the journal's
sha256, and writes the rest; the random draws are replayed, so the shards are byte-identical to
an uninterrupted run. Other inputs discard the work state and every shard not in it.

The output directory receives ``shard-00000.tkds``, ..., ``mix.csv`` (the mix table) and
``manifest.json`` (written last, atomically: its presence means the shard set is complete).

One concern per module, each importing only those above it:

- ``seeds``: the seeded random streams, one per purpose, and the purposes' tags.
- ``plan`` (step 1): the token parts' document index, exact allocation and sampling (``Component``).
- ``pack`` (steps 2 to 4): streaming each component's documents, interleaving, EOS packing
  (``Packer``; ``MixStream`` is the whole pre-shuffle stream).
- ``shuffle`` (step 5): the buffer size, pass 1 (``write_runs``) and pass 2 (``merge_runs``).
- ``state``: the resumable work state (``WorkState``) and the fingerprint it is keyed by.
- ``build``: ``build_mix``, which runs the steps and writes the mix table and the manifest, and the
  shard set's file names and ``ALGORITHM``.

The names callers use are re-exported here.
"""

from trellis.tokens.mix.build import MANIFEST, MIX_TABLE, build_mix
from trellis.tokens.mix.pack import MixStream, Packer
from trellis.tokens.mix.plan import allocate, part_lengths
from trellis.tokens.mix.shuffle import buffer_sequences, merge_runs, write_runs

__all__ = [
    "MANIFEST",
    "MIX_TABLE",
    "MixStream",
    "Packer",
    "allocate",
    "buffer_sequences",
    "build_mix",
    "merge_runs",
    "part_lengths",
    "write_runs",
]
