"""Resolve each source's current commit on the hub, to pin ``sources.<name>.hf.revision``.

Run on a host with internet access (and HF_TOKEN for gated sources)::

    python -m trellis.acquire.pin --configfile config/study.yaml [--ref main] [--source NAME ...]

For every source it prints the commit the ref resolves to now, how many files the source's
``allow_patterns`` match at that commit against its ``parts``, and the line to paste into the
config. It never edits the config: a pin is a decision to review (a new commit can change a
dataset's layout; README's Curation section says what the normalizers expect). A source that is
already pinned is resolved at its pin, which checks the hub still has it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from trellis.acquire.download import is_pinned_revision, list_matching_files


def resolve_source(name: str, spec: dict, ref: str = "main") -> dict[str, Any]:
    """{source, repo, configured, commit, files, parts, fits} for one source of ``sources:``."""
    hf = spec["hf"]
    configured = hf.get("revision")
    revision = configured if is_pinned_revision(configured) else ref
    commit, files = list_matching_files(hf["repo"], revision, hf["allow_patterns"], source=name)
    parts = int(spec["parts"])
    return {
        "source": name,
        "repo": hf["repo"],
        "configured": configured,
        "resolved_from": revision,
        "commit": commit,
        "files": len(files),
        "parts": parts,
        "fits": len(files) >= parts,
    }


def resolve_pins(sources: dict, ref: str = "main", only: list[str] | None = None) -> list[dict[str, Any]]:
    """resolve_source for each configured source (or those in ``only``), in config order."""
    unknown = sorted(set(only or []) - set(sources))
    if unknown:
        raise ValueError(f"--source {unknown}: not in the config's sources ({sorted(sources)})")
    return [resolve_source(name, spec, ref) for name, spec in sources.items() if not only or name in only]


def format_pins(rows: list[dict[str, Any]]) -> str:
    """The report: one block per source with the line to paste under ``sources.<name>.hf``."""
    out = []
    for r in rows:
        note = "" if r["fits"] else f"  <- fewer files than parts ({r['parts']}): lower parts"
        out.append(
            f"# {r['source']}: {r['repo']}@{r['resolved_from']} -> {r['commit']}; "
            f"{r['files']} file(s) match, parts {r['parts']}{note}\n"
            f"sources.{r['source']}.hf.revision: {r['commit']}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/study.yaml", type=Path)
    parser.add_argument("--ref", default="main", help="branch or tag resolved for unpinned sources")
    parser.add_argument("--source", action="append", help="only this source (repeatable)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    rows = resolve_pins(config["sources"], args.ref, args.source)
    print(format_pins(rows))
    return 0 if all(r["fits"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
