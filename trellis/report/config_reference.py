"""The config reference in README.md, generated from config/schema.yaml.

Every key of the schema becomes a row: its dotted path, its type (and range or choices), its
description, and its value in the demo config (config/config.yaml) and in the study config
(config/study.yaml). ``$ref`` definitions are expanded where they are used, so a reader never
has to look up a shared block. The README holds the table between two marker comments;
``python -m trellis.report.config_reference --write README.md`` refreshes it, and a test fails when the
committed README differs from what the schema and configs give.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

START = (
    "<!-- config-reference:start (generated from config/schema.yaml by python -m "
    "trellis.report.config_reference) -->"
)
END = "<!-- config-reference:end -->"
_MAX_VALUE_CHARS = 60


def _resolve(node: dict, schema: dict) -> dict:
    """The node with a local ``$ref`` merged in (the referencing node's own keys win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"config/schema.yaml: only local $defs references are supported, got {ref!r}")
    target = schema["$defs"][ref.split("/")[-1]]
    merged = {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}
    return merged


def _type(node: dict) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kinds = node.get("type", "any")
    text = " or ".join(kinds) if isinstance(kinds, list) else kinds
    bounds = []
    if "minimum" in node:
        bounds.append(f"≥ {node['minimum']}")
    if "exclusiveMinimum" in node:
        bounds.append(f"> {node['exclusiveMinimum']}")
    if "maximum" in node:
        bounds.append(f"≤ {node['maximum']}")
    if "exclusiveMaximum" in node:
        bounds.append(f"< {node['exclusiveMaximum']}")
    if node.get("type") == "array" and isinstance(node.get("items"), dict) and "enum" in node["items"]:
        text += " of " + ", ".join(f"`{v}`" for v in node["items"]["enum"])
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def rows(schema: dict) -> Iterator[tuple[str, dict]]:
    """(dotted key, resolved schema node) for every key, depth first in schema order."""

    def walk(node: dict, path: str) -> Iterator[tuple[str, dict]]:
        node = _resolve(node, schema)
        if path:
            yield path, node
        for key, child in (node.get("properties") or {}).items():
            yield from walk(child, f"{path}.{key}" if path else key)

    yield from walk(schema, "")


def _lookup(config: dict, path: str) -> tuple[bool, Any]:
    value: Any = config
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


def _value(config: dict, path: str, node: dict) -> str:
    found, value = _lookup(config, path)
    if not found:
        return ""
    if isinstance(value, dict) and node.get("properties"):
        return ""  # a section: its keys have rows of their own
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return f"`{text}`".replace("|", "\\|")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def reference(schema: dict, demo: dict, study: dict) -> str:
    """The Markdown table (no markers)."""
    lines = [
        "| key | type | description | demo | study |",
        "|---|---|---|---|---|",
    ]
    for path, node in rows(schema):
        lines.append(
            f"| `{path}` | {_cell(_type(node))} | {_cell(node.get('description', ''))} | "
            f"{_value(demo, path, node)} | {_value(study, path, node)} |"
        )
    return "\n".join(lines)


def render(root: str | Path = ".") -> str:
    root = Path(root)
    load = lambda name: yaml.safe_load((root / "config" / name).read_text())  # noqa: E731
    return reference(load("schema.yaml"), load("config.yaml"), load("study.yaml"))


def splice(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    if START not in readme or END not in readme:
        raise ValueError(f"README lacks the config reference markers {START!r} ... {END!r}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trellis.report.config_reference")
    parser.add_argument("--write", metavar="README", help="refresh the table in this file (else print it)")
    parser.add_argument("--root", default=".", help="repository root (holds config/)")
    args = parser.parse_args(argv)
    table = render(args.root)
    if args.write:
        path = Path(args.write)
        path.write_text(splice(path.read_text(), table))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
