"""Rule acquire: download a source from the Hugging Face hub, or generate its demo files.

params.spec comes from rules/common.smk:acquire_spec (backend + what that backend needs).
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.acquire.download import download_huggingface, read_manifest, write_demo_source
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
start = time.monotonic()
source = snakemake.params.source
spec = dict(snakemake.params.spec)
manifest_path = snakemake.output.manifest
out_dir = Path(manifest_path).parent
backend = spec["backend"]

if backend == "demo":
    log.info(
        "generating demo %s: %d docs in %d file(s), seed %s, %d topics -> %s",
        source,
        spec["demo_docs"],
        spec["n_files"],
        spec["seed"],
        len(spec.get("topics") or []),
        out_dir,
    )
    written = write_demo_source(
        source, int(spec["demo_docs"]), int(spec["n_files"]), int(spec["seed"]), spec.get("topics"), out_dir
    )
elif backend == "huggingface":
    log.info(
        "downloading %s from %s@%s, patterns %s%s -> %s",
        source,
        spec["repo"],
        spec["revision"],
        spec["allow_patterns"],
        " (gated: HF_TOKEN required)" if spec.get("gated") else "",
        out_dir,
    )
    # The study downloads only pinned revisions, and checks the pinned listing has a file for each
    # of the source's parts before fetching anything (parts is read from the config: it does not
    # change what is downloaded, so it is no param of this rule).
    written = download_huggingface(
        spec["repo"],
        spec["revision"],
        spec["allow_patterns"],
        out_dir,
        source=source,
        gated=bool(spec.get("gated", False)),
        min_files=int(snakemake.config["sources"][source]["parts"]),
        require_pinned=True,
    )
else:
    raise ValueError(f"acquire.backend must be 'demo' or 'huggingface', got {backend!r}")

if Path(written).resolve() != Path(manifest_path).resolve():
    raise RuntimeError(f"manifest written to {written}, but the rule expects {manifest_path}")
files = read_manifest(manifest_path)
total = sum(f.stat().st_size for f in files)
log.info(
    "wrote %s: %d file(s), %.1f MB, in %.1fs",
    manifest_path,
    len(files),
    total / 1e6,
    time.monotonic() - start,
)
