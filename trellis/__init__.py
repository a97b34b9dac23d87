"""Trellis: the library behind the curated-pretraining workflow.

Every module here is plain Python over files (parquet, npy, TKDS shards, model directories) and
knows nothing about Snakemake; the thin scripts in ``scripts/`` read the ``snakemake`` object and
call into this package.
"""
