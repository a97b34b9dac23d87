"""The README's config reference is generated from the schema and stays in sync with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trellis.report import config_reference as cr

ROOT = Path(__file__).resolve().parents[2]
# JSON Schema keywords the project's schema uses; anything else in a node is a typo or an
# unquoted comma in a YAML flow mapping ("{description: a, b}" makes "b" a key).
KEYWORDS = {
    "$schema",
    "$defs",
    "$ref",
    "type",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "pattern",
    "oneOf",
    "anyOf",
    "allOf",
    "const",
    "if",
    "then",
    "else",
    "not",
    "minLength",
    "maxLength",
    "patternProperties",
    "propertyNames",
    "format",
    "default",
}


def schema_nodes(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in child.items():
                    yield from schema_nodes(sub, f"{path}/{key}/{name}")
            elif isinstance(child, (dict, list)):
                yield from schema_nodes(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from schema_nodes(child, f"{path}[{i}]")


def test_schema_nodes_hold_only_json_schema_keywords():
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    bad = {path: sorted(set(node) - KEYWORDS) for path, node in schema_nodes(schema) if set(node) - KEYWORDS}
    assert not bad, f"config/schema.yaml: not JSON Schema keywords (quote descriptions with commas): {bad}"


def test_readme_config_reference_is_in_sync():
    readme = (ROOT / "README.md").read_text()
    expected = cr.splice(readme, cr.render(ROOT))
    assert readme == expected, (
        "README's config reference is stale: run `python -m trellis.report.config_reference --write "
        "README.md`"
    )


def test_every_key_of_both_configs_has_a_row():
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    nodes = dict(cr.rows(schema))
    # Maps whose entries are named by the user (mix components, arms, topic shares, lm-eval
    # tasks...) document the shape of an entry, not each name.
    free_form = {path for path, node in nodes.items() if node.get("additionalProperties", False) is not False}

    def keys(value, path=""):
        if isinstance(value, dict) and path not in free_form:
            for k, v in value.items():
                p = f"{path}.{k}" if path else str(k)
                yield p
                yield from keys(v, p)

    for name in ("config.yaml", "study.yaml"):
        config = yaml.safe_load((ROOT / "config" / name).read_text())
        missing = sorted(k for k in keys(config) if k not in nodes)
        assert not missing, (name, missing)


def test_reference_expands_refs_and_shows_ranges():
    schema = {
        "$defs": {"n": {"type": "integer", "minimum": 1}},
        "properties": {
            "a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/n", "description": "x | y"}}}
        },
    }
    table = cr.reference(schema, {"a": {"b": 3}}, {"a": {"b": 7}})
    assert "| `a.b` | integer (≥ 1) | x \\| y | `3` | `7` |" in table
    with pytest.raises(ValueError, match="markers"):
        cr.splice("no markers here", table)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@pytest.mark.parametrize("name", ["schema.yaml", "config.yaml", "study.yaml"])
def test_config_files_have_no_duplicate_keys(name):
    yaml.load((ROOT / "config" / name).read_text(), Loader=_UniqueKeyLoader)
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'a'"):
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=_UniqueKeyLoader)
