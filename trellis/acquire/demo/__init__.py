"""The embedded demo corpus: every acquired source, generated offline in its real dataset's shape.

Each source is written with the column names, nesting, file format and directory layout of the
dataset the study downloads (FineWeb-Edu parquet, StarCoderData per-language parquet, peS2o
``.json.gz`` lines, structured-Wikipedia Parquet with JSON-string trees, StarCoderData ``content``
with its metadata line on about half the files, ...), so ``trellis.acquire.normalize`` runs the
same code on demo and real data. README's Curation section tables each real layout and its source.

The content is synthetic but built so that every later stage has something to decide:

- FineWeb-Edu documents span the configured topics with the skewed shares of the real crawl
  (education/health/business common, STEM-core rare), some mix two or three topics, and they
  come at four complexity levels (sentence length, technical density, reasoning connectives).
  A few are near-duplicates (small edits) or exact duplicates of another document, always placed
  in a different file, so dedup has to work across parts.
- StarCoderData mixes clean documented code with messy scripts, tests, configs, JSON schemas,
  DDL, data files and repetitive generated boilerplate (zlib ratio below 0.10), and a few files
  whose extension disagrees with their language directory.
- Structured Wikipedia carries infoboxes; plain Wikipedia covers an overlapping set of the same
  entities; StackExchange has accepted and low-score answers; UltraChat multi-turn chats;
  text-to-SQL schema/question/query triples.

Determinism: every random choice comes from ``random.Random`` seeded with a string built from the
run seed and the source name (string seeds are hashed with SHA-512 by Python, so the stream is
the same on every machine and every run; ``hash()`` is never used). Parquet and gzip output are
byte-identical for the same seed (gzip's header timestamp is pinned to 0).

Layout: ``generate`` holds the entry points and the source registry; one module per source key of
config ``sources:`` (``fineweb_edu``, ``starcoderdata``, ``finemath``, ``pes2o``,
``structured_wikipedia``, ``wikipedia``, ``stackexchange``, ``ultrachat``, ``text_to_sql``) holds
its generator; ``wiki_entities`` the entities both Wikipedia sources describe; ``code_templates``
the StarCoderData files, one module per language; ``vocab`` and ``common`` the shared word lists
and helpers; ``native`` the arrow schemas and file writers.
"""

from trellis.acquire.demo.common import source_rng
from trellis.acquire.demo.generate import GENERATORS, SOURCES, generate_rows, generate_source
from trellis.acquire.demo.native import NATIVE_SCHEMAS

__all__ = ["GENERATORS", "NATIVE_SCHEMAS", "SOURCES", "generate_rows", "generate_source", "source_rng"]
