"""JSON and YAML files for the StarCoderData demo's ``json/`` and ``yaml/`` directories.

The real dump's data and configuration formats, kept in one module because each template is a
few lines. JSON: a JSON Schema, a ``package.json``, a fixture data file and a generated locale
file. YAML: a GitHub Actions workflow, a docker-compose file, an OpenAPI spec and a generated
deployment manifest. The generated kinds repeat one entry hundreds of times, so the compression
pre-filter removes them before scoring.
"""

from __future__ import annotations

import json

from trellis.acquire.demo.common import _camel, _fields, _word

# ---- JSON ------------------------------------------------------------------------------------


def _json_schema(rng, ent):
    fields = _fields(rng)
    props = {f: {"type": jt, "description": f"{f.replace('_', ' ')} of the {ent}"} for f, _, _, jt in fields}
    if "email" in props:
        props["email"]["format"] = "email"
    if "status" in props:
        props["status"] = {"type": "string", "enum": ["active", "pending", "archived"]}
    doc = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"https://example.com/schemas/{ent}.json",
        "title": _camel(ent),
        "type": "object",
        "properties": props,
        "required": [f for f, *_ in fields[: rng.randint(1, len(fields))]],
        "additionalProperties": False,
    }
    return f"schemas/{ent}.schema.json", json.dumps(doc, indent=2)


def _json_package(rng, ent):
    doc = {
        "name": f"{_word(rng)}-{ent}-service",
        "version": f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        "private": True,
        "scripts": {"start": "node server/index.js", "test": "jest"},
        "dependencies": {"ajv": "^8.12.0", "express": "^4.18.2"},
        "devDependencies": {"jest": "^29.7.0", "supertest": "^6.3.3"},
    }
    return "package.json", json.dumps(doc, indent=2)


def _json_data(rng, ent):
    fields = _fields(rng)
    rows = []
    for i in range(rng.randint(4, 12)):
        row = {}
        for f, t, _, _ in fields:
            row[f] = (
                i + 1
                if f == "id"
                else (
                    rng.randint(1, 500)
                    if t == "int"
                    else (
                        round(rng.uniform(1, 999), 2)
                        if t == "float"
                        else rng.random() < 0.7
                        if t == "bool"
                        else _word(rng)
                    )
                )
            )
        rows.append(row)
    return f"fixtures/{ent}s.json", json.dumps(rows, indent=2)


def _json_generated(rng, ent):
    n = rng.randint(250, 400)
    doc = {
        f"{ent}.label.{i}": {
            "message": f"{_camel(ent)} label {i}",
            "description": "Auto-generated translation key; do not edit.",
        }
        for i in range(n)
    }
    return f"locales/en/{ent}.generated.json", json.dumps(doc, indent=2)


# ---- YAML ------------------------------------------------------------------------------------


def _yaml_ci(rng, ent):
    py = rng.choice(["3.10", "3.11", "3.12"])
    text = (
        "name: ci\non:\n  push:\n    branches: [main]\n  pull_request:\njobs:\n  test:\n    runs-on: "
        "ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: "
        f"actions/setup-python@v5\n        with:\n          python-version: '{py}'\n      - run: pip "
        "install -r requirements.txt\n      - run: pytest -q tests/\n"
    )
    return ".github/workflows/ci.yml", text


def _yaml_compose(rng, ent):
    text = (
        f"version: '3.8'\nservices:\n  {ent}-api:\n    build: .\n    ports:\n      - "
        f'"{rng.choice([8000, 8080, 5000])}:8000"\n    environment:\n      DATABASE_URL: '
        f"postgres://app:app@db:5432/{ent}s\n    depends_on: [db]\n  db:\n    image: "
        f"postgres:{rng.choice([13, 14, 15, 16])}\n    volumes:\n      - "
        f"db-data:/var/lib/postgresql/data\nvolumes:\n  db-data: {{}}\n"
    )
    return "docker-compose.yml", text


def _yaml_openapi(rng, ent):
    fields = _fields(rng)
    props = "".join(f"        {f}:\n          type: {jt}\n" for f, _, _, jt in fields)
    text = (
        f"openapi: 3.0.3\ninfo:\n  title: {_camel(ent)} API\n  version: "
        f"1.{rng.randint(0, 9)}.0\npaths:\n  /{ent}s/{{id}}:\n    get:\n      summary: Fetch one {ent}\n    "
        "  parameters:\n        - name: id\n          in: path\n          required: true\n          "
        f"schema: {{type: integer}}\n      responses:\n        '200':\n          description: The {ent}\n   "
        f"       content:\n            application/json:\n"
        f"              schema: {{$ref: '#/components/schemas/{_camel(ent)}'}}\n"
        f"components:\n  schemas:\n    {_camel(ent)}:\n      type: object\n      properties:\n{props}"
    )
    return f"api/{ent}.openapi.yaml", text


def _yaml_generated(rng, ent):
    n = rng.randint(150, 250)
    body = "".join(
        f"  - name: {ent}-worker-{i}\n    image: registry.local/{ent}-worker:latest\n    replicas: 1\n    "
        "restartPolicy: Always\n"
        for i in range(n)
    )
    return (
        f"deploy/{ent}-workers.generated.yaml",
        "# generated by render_workers.py - do not edit\nworkers:\n" + body,
    )
