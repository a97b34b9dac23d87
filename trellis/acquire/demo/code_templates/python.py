"""Python files for the StarCoderData demo's ``python/`` directory.

Kinds, as found in the real dump: a documented dataclass library module, a messy script (bare
``except``, star imports, commented-out code), a pytest file, an argparse CLI, a pydantic schema,
and two generated kinds (a protobuf ``_pb2`` module and a Django migration). The generated ones
repeat one line hundreds of times, so their zlib ratio falls below the compression pre-filter's
threshold and scoring skips them, as it does real generated code.
"""

from __future__ import annotations

from trellis.acquire.demo.common import _camel, _fields, _word
from trellis.acquire.demo.vocab import ACTIONS


def _py_library(rng, ent):
    fields = _fields(rng)
    cls = _camel(ent)
    act = rng.choice(ACTIONS)
    lines = [
        f'"""{cls} records: parsing, validation and JSON round-trips for the {ent} service."""',
        "",
        "from __future__ import annotations",
        "",
        "import json",
        "from dataclasses import asdict, dataclass",
        "from typing import Any, Iterable",
        "",
        f'__all__ = ["{cls}", "{act}_{ent}s"]',
        "",
        "",
        "@dataclass(frozen=True)",
        f"class {cls}:",
        f'    """One {ent} as stored by the API."""',
        "",
    ]
    lines += [f"    {f}: {t}" for f, t, _, _ in fields]
    lines += [
        "",
        "    @classmethod",
        f'    def from_dict(cls, data: dict[str, Any]) -> "{cls}":',
        f'        """Build a {cls} from decoded JSON, rejecting unknown keys."""',
        "        unknown = set(data) - set(cls.__dataclass_fields__)",
        "        if unknown:",
        f'            raise ValueError(f"unknown {ent} fields: {{sorted(unknown)}}")',
        "        return cls(**data)",
        "",
        "    def to_json(self) -> str:",
        "        return json.dumps(asdict(self), sort_keys=True)",
        "",
        "",
    ]
    lines += [
        f"def {act}_{ent}s(lines: Iterable[str]) -> list[{cls}]:",
        f'    """{act.capitalize()} {ent}s from JSON lines, skipping blank lines."""',
        f"    {ent}s = []",
        "    for number, line in enumerate(lines, start=1):",
        "        if not line.strip():",
        "            continue",
        "        try:",
        f"            {ent}s.append({cls}.from_dict(json.loads(line)))",
        "        except (json.JSONDecodeError, TypeError) as exc:",
        '            raise ValueError(f"line {number}: {exc}") from exc',
        f"    return {ent}s",
        "",
    ]
    if rng.random() < 0.5:
        f2 = rng.choice(fields[1:])[0]
        lines += [
            "",
            f"def group_by_{f2}({ent}s: Iterable[{cls}]) -> dict[Any, list[{cls}]]:",
            f'    """Index {ent}s by their {f2} (insertion order kept)."""',
            f"    groups: dict[Any, list[{cls}]] = {{}}",
            f"    for item in {ent}s:",
            f"        groups.setdefault(item.{f2}, []).append(item)",
            "    return groups",
            "",
        ]
    return f"src/{ent}s/{ent}_model.py", "\n".join(lines)


def _py_messy(rng, ent):
    v = rng.choice(["x", "d", "tmp", "data2", "res"])
    lines = [
        "import os,sys,json",
        "from math import *",
        f"{v} = []",
        "DEBUG=1",
        "",
        "def doit(f,flag=0):",
        "    global " + v,
        "    try:",
        "        fh=open(f)",
        "        for l in fh.readlines():",
        "            l=l.strip()",
        "            if l=='' : continue",
        "            #print(l)",
        f"            {v}.append(l.split(','))",
        "    except:",
        "        pass",
        f"    if flag==1: print('done',len({v}))",
        f"    return {v}",
        "",
        "def doit2(a,b):",
        "    # TODO fix this later",
        "    c=a",
        "    for i in range(len(b)):",
        "        if b[i]!=None:",
        "            c=c+b[i] # add",
        "    return c",
        "",
    ]
    for i in range(rng.randint(1, 4)):
        lines += [f"#def old_{rng.choice(ACTIONS)}{i}(q):", f"#    return q*{rng.randint(2, 9)}", ""]
    lines += [
        "if __name__=='__main__':",
        f"    r=doit(sys.argv[1],{rng.randint(0, 1)})",
        "    print(r)",
        f"    print(doit2({rng.randint(0, 9)},[1,2,None,{rng.randint(3, 99)}]))",
    ]
    return f"{_word(rng)}/{rng.choice(['test2', 'script', 'main', 'stuff', 'new'])}_{ent}.py", "\n".join(
        lines
    )


def _py_test(rng, ent):
    cls = _camel(ent)
    act = rng.choice(ACTIONS)
    lines = [
        "import json",
        "",
        "import pytest",
        "",
        f"from {ent}s.{ent}_model import {cls}, {act}_{ent}s",
        "",
        "",
    ]
    lines += [
        f"def test_{act}_skips_blank_lines():",
        f'    rows = {act}_{ent}s(["", json.dumps({{"id": {rng.randint(1, 99)}}}), "  "])',
        "    assert len(rows) == 1",
        "",
        "",
    ]
    lines += [
        "def test_unknown_field_is_rejected():",
        '    with pytest.raises(ValueError, match="unknown"):',
        f'        {cls}.from_dict({{"id": 1, "{_word(rng)}": 2}})',
        "",
        "",
    ]
    lines += [
        '@pytest.mark.parametrize("raw", ["{", "[1,", "nul"])',
        "def test_bad_json_names_the_line(raw):",
        '    with pytest.raises(ValueError, match="line 1"):',
        f"        {act}_{ent}s([raw])",
        "",
    ]
    return f"tests/test_{ent}_model.py", "\n".join(lines)


def _py_cli(rng, ent):
    act = rng.choice(ACTIONS)
    lines = [
        "#!/usr/bin/env python3",
        f'"""Convert a CSV export of {ent}s into JSON lines for the import API."""',
        "",
        "import argparse",
        "import csv",
        "import json",
        "import sys",
        "",
        "",
        "def main(argv=None):",
        "    parser = argparse.ArgumentParser(description=__doc__)",
        '    parser.add_argument("csv_path")',
        '    parser.add_argument("--limit", type=int, default=None, help="stop after this many rows")',
        "    args = parser.parse_args(argv)",
        '    with open(args.csv_path, newline="") as handle:',
        "        for count, row in enumerate(csv.DictReader(handle)):",
        "            if args.limit is not None and count >= args.limit:",
        "                break",
        f'            row["{rng.choice(["amount", "score"])}"] = '
        f'float(row.get("{rng.choice(["amount", "score"])}") or 0)',
        '            sys.stdout.write(json.dumps(row) + "\\n")',
        "    return 0",
        "",
        "",
        'if __name__ == "__main__":',
        "    sys.exit(main())",
        "",
    ]
    return f"tools/{act}_{ent}s.py", "\n".join(lines)


def _py_schema(rng, ent):
    cls = _camel(ent)
    fields = _fields(rng)
    lines = [
        f'"""Request and response models of the {ent} endpoints."""',
        "",
        "from datetime import datetime",
        "from typing import Literal, Optional",
        "",
        "from pydantic import BaseModel, Field",
        "",
        "",
        f"class {cls}Create(BaseModel):",
    ]
    for f, t, _, _ in fields[1:]:
        lines.append(f'    {f}: {t} = Field(..., description="{f.replace("_", " ")} of the {ent}")')
    lines += [
        "",
        "",
        f"class {cls}Response({cls}Create):",
        "    id: int",
        '    status: Literal["active", "archived"] = "active"',
        "    updated_at: Optional[datetime] = None",
        "",
    ]
    return f"app/schemas/{ent}.py", "\n".join(lines)


def _py_generated(rng, ent):
    cls = _camel(ent)
    n = rng.randint(140, 220)
    lines = [
        "# -*- coding: utf-8 -*-",
        "# Generated by the protocol buffer compiler.  DO NOT EDIT!",
        f"# source: {ent}.proto",
        "",
    ]
    for i in range(n):
        lines.append(
            f"_{cls.upper()}_FIELD_{i} = _descriptor.FieldDescriptor(name='field_{i}', "
            f"full_name='{ent}.{cls}.field_{i}', index={i}, number={i + 1}, type=9, cpp_type=9, label=1, "
            "has_default_value=False, default_value=b\"\".decode('utf-8'), message_type=None, "
            "enum_type=None, containing_type=None, is_extension=False, extension_scope=None, "
            "serialized_options=None, file=DESCRIPTOR)"
        )
    return f"gen/{ent}_pb2.py", "\n".join(lines)


def _py_migration(rng, ent):
    n = rng.randint(120, 200)
    lines = [
        "from django.db import migrations, models",
        "",
        "",
        "class Migration(migrations.Migration):",
        "",
        f"    dependencies = [('{ent}s', '00{rng.randint(10, 99)}_auto')]",
        "",
        "    operations = [",
    ]
    for i in range(n):
        lines += [
            "        migrations.AddField(",
            f"            model_name='{ent}',",
            f"            name='attribute_{i}',",
            "            field=models.CharField(blank=True, default='', max_length=255, null=True),",
            "        ),",
        ]
    lines.append("    ]")
    return f"{ent}s/migrations/00{rng.randint(10, 99)}_add_attributes.py", "\n".join(lines)
