"""Every path and library name the documentation gives in backticks exists.

A moved module or a renamed script leaves a stale name in prose long after the code works; a
researcher who copies it gets a file-not-found. Repository paths are checked on disk (a ``*`` as a
glob; a ``<placeholder>`` or ``{a,b}`` part is skipped, it names results, not files), dotted
``trellis.`` names by importing them.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "config/README.md", "docs/architecture.md", "docs/tkds.md"]
TOP_LEVEL = (
    "trellis/",
    "tests/",
    "scripts/",
    "rules/",
    "config/",
    "envs/",
    "profiles/",
    "perf/",
    "docs/",
    "report/",
    ".ci/",
    "Snakefile",
    "pyproject.toml",
    "requirements.txt",
)
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> list[str]:
    # Fenced blocks hold commands and trees, not names to check one by one.
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return CODE_SPAN.findall(text)


def repo_paths(spans: list[str]) -> set[str]:
    found = set()
    for span in spans:
        for token in span.split():
            token = token.strip("(),;:'\"")
            if token.startswith(TOP_LEVEL) and not re.search(r"[<{]", token):
                found.add(token.split("::")[0])
    return found


def library_names(spans: list[str]) -> set[str]:
    names = set()
    for span in spans:
        for m in re.finditer(r"\btrellis(?:\.\w+)+", span):
            names.add(m.group(0))
    return names


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("doc", DOCS)
def test_paths_named_in_docs_exist(doc):
    spans = code_spans((ROOT / doc).read_text())
    missing = sorted(p for p in repo_paths(spans) if not any(ROOT.glob(p.rstrip("/"))))
    assert not missing, f"{doc} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_library_names_in_docs_import(doc):
    spans = code_spans((ROOT / doc).read_text())
    broken = sorted(n for n in library_names(spans) if not resolves(n))
    assert not broken, f"{doc} names library objects that do not import: {broken}"


def test_the_checker_sees_a_stale_path(tmp_path):
    spans = code_spans("see `trellis/no_such_module.py` and `trellis.no_such.thing`, not `results/<run>/x`")
    assert repo_paths(spans) == {"trellis/no_such_module.py"}
    assert library_names(spans) == {"trellis.no_such.thing"}
    assert not resolves("trellis.no_such.thing")
    assert resolves("trellis.core.io.atomic_path")
