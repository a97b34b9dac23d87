"""StarCoderData demo: source files in ``<language>/train-XXXXX-of-YYYYY.parquet``.

Imitates bigcode/starcoderdata: one directory per language (python, javascript, java, json, yaml,
sql here), rows with ``max_stars_repo_path``, ``max_stars_repo_name``, ``max_stars_count``, ``id``
and ``content``. Each language mixes clean documented code with messy scripts, tests, configs,
schemas, DDL and data files (the templates in ``trellis.acquire.demo.code_templates``), plus what
the real dump also has and the pipeline has to cope with: repetitive generated boilerplate (zlib
ratio below 0.10, for the compression pre-filter), about 4% of files whose extension disagrees
with their language directory, and about 3% lightly edited forks of another file, for dedup.

About half the files (``TAGGED_SHARE``; third-party loaders measured 48-49% on the real data) begin
with StarCoder's metadata line, ``<reponame>owner/repo<filename>path<gh_stars>10-100`` followed by
a newline: each of the three tags present or not, in that order, the stars as a bucket. The tags
come from their own random stream, after everything else, so the files' code is the same as
without them; normalizing strips the line into metadata columns.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trellis.acquire.demo.code_templates.java import _java_pojo, _java_service, _java_test
from trellis.acquire.demo.code_templates.javascript import _js_app, _js_config, _js_messy, _js_test
from trellis.acquire.demo.code_templates.json_yaml import (
    _json_data,
    _json_generated,
    _json_package,
    _json_schema,
    _yaml_ci,
    _yaml_compose,
    _yaml_generated,
    _yaml_openapi,
)
from trellis.acquire.demo.code_templates.python import (
    _py_cli,
    _py_generated,
    _py_library,
    _py_messy,
    _py_migration,
    _py_schema,
    _py_test,
)
from trellis.acquire.demo.code_templates.sql import _sql_ddl, _sql_inserts, _sql_migration, _sql_query
from trellis.acquire.demo.common import (
    _distribute,
    _file_names,
    _plant_copies,
    _split_counts,
    _word,
    source_rng,
)
from trellis.acquire.demo.vocab import ENTITIES

LANG_SHARES = {"python": 0.3, "javascript": 0.17, "java": 0.13, "json": 0.12, "yaml": 0.1, "sql": 0.18}
LANG_EXT = {
    "python": ".py",
    "javascript": ".js",
    "java": ".java",
    "json": ".json",
    "yaml": ".yml",
    "sql": ".sql",
}
# Extensions a file can carry that disagree with its language directory, as in the real dump
# (templates, notebooks exported as text, misnamed configs).
MISMATCH_EXT = {
    "python": [".txt", ".cfg", ".tmpl"],
    "javascript": [".json", ".html", ".ts"],
    "java": [".kt", ".txt"],
    "json": [".txt", ".js", ".yaml"],
    "yaml": [".json", ".txt", ".j2"],
    "sql": [".txt", ".py", ".ddl"],
}

# Kinds per language with their relative weights; "boilerplate" kinds produce the repetitive
# generated files that the compression-ratio pre-filter exists for.
CODE_KINDS: dict[str, list[tuple[Callable, float]]] = {
    "python": [
        (_py_library, 3),
        (_py_messy, 2),
        (_py_test, 2),
        (_py_cli, 1.5),
        (_py_schema, 1.5),
        (_py_generated, 0.6),
        (_py_migration, 0.6),
    ],
    "javascript": [(_js_app, 3), (_js_messy, 2), (_js_test, 2), (_js_config, 1)],
    "java": [(_java_service, 3), (_java_pojo, 2), (_java_test, 2)],
    "json": [(_json_schema, 3), (_json_package, 1.5), (_json_data, 2), (_json_generated, 0.8)],
    "yaml": [(_yaml_ci, 2), (_yaml_compose, 2), (_yaml_openapi, 2), (_yaml_generated, 0.8)],
    "sql": [(_sql_ddl, 3), (_sql_query, 2.5), (_sql_inserts, 2), (_sql_migration, 1)],
}
BOILERPLATE_KINDS = {"_py_generated", "_py_migration", "_json_generated", "_yaml_generated", "_sql_migration"}


# Share of files whose content starts with the metadata line.
TAGGED_SHARE = 0.49
# StarCoder's star buckets, as its model card's prompt format lists them.
STAR_BUCKETS = ((0, "0"), (10, "1-10"), (100, "10-100"), (1000, "100-1000"))


def stars_bucket(stars: int) -> str:
    """The ``<gh_stars>`` value for a star count: 0, 1-10, 10-100, 100-1000 or 1000+."""
    if stars <= 0:
        return "0"
    for upper, label in STAR_BUCKETS[1:]:
        if stars < upper:
            return label
    return "1000+"


def metadata_line(rng: random.Random, row: dict) -> str:
    """StarCoder's first line for this file: a non-empty subset of the three tags, in order."""
    present = [False, False, False]
    while not any(present):
        present = [rng.random() < 0.5 for _ in range(3)]
    values = (row["max_stars_repo_name"], row["max_stars_repo_path"], stars_bucket(row["max_stars_count"]))
    tags = ("<reponame>", "<filename>", "<gh_stars>")
    return "".join(tag + value for tag, value, on in zip(tags, values, present) if on) + "\n"


def _tag_files(seed: int, out: dict[str, list[dict]]) -> None:
    """Prefix about TAGGED_SHARE of the files with their metadata line (own random stream)."""
    rng = source_rng(seed, "starcoderdata", "metadata-tags")
    for rel in sorted(out):
        for row in out[rel]:
            if rng.random() < TAGGED_SHARE:
                row["content"] = metadata_line(rng, row) + row["content"]
                row["_tagged"] = True


def _starcoder_retag(rng: random.Random, doc: dict) -> dict:
    # A fork: the same file under another repository with fewer stars.
    doc["max_stars_repo_name"] = f"{_word(rng)}/{doc['max_stars_repo_name'].split('/')[1]}"
    doc["max_stars_count"] = rng.randint(0, 3)
    return doc


def gen_starcoderdata(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    langs = list(LANG_SHARES)
    # Each language is its own directory as on the hub; n_files is spread over them, at least
    # one file per language.
    per_lang_files = _split_counts(max(n_files, len(langs)), len(langs))
    counts = [max(1, int(round(n_docs * LANG_SHARES[lang]))) for lang in langs]
    out = {}
    next_id = 0
    for lang, n_lang, lang_files in zip(langs, counts, per_lang_files):
        kinds, weights = zip(*CODE_KINDS[lang])
        docs = []
        n_near = int(n_lang * 0.03)
        n_orig = max(1, n_lang - n_near)
        for _ in range(n_orig):
            kind = rng.choices(kinds, weights=weights)[0]
            ent = rng.choice(ENTITIES)
            path, content = kind(rng, ent)
            planted = "boilerplate" if kind.__name__ in BOILERPLATE_KINDS else "code"
            stem, dot, ext = path.rpartition(".")
            if rng.random() < 0.04:
                path = stem + rng.choice(MISMATCH_EXT[lang])
                planted += "+ext_mismatch"
            owner, project = (
                _word(rng),
                f"{_word(rng)}-{rng.choice(['api', 'service', 'tools', 'app', 'lib', 'infra'])}",
            )
            docs.append(
                {
                    "max_stars_repo_path": path,
                    "max_stars_repo_name": f"{owner}/{project}",
                    "max_stars_count": int(rng.paretovariate(1.1)) - 1,
                    "content": content,
                    "_planted": planted,
                    "_kind": kind.__name__,
                }
            )
        _plant_copies(rng, docs, lang_files, n_near, 0, "content", _starcoder_retag)
        for rel, rows in zip(
            _file_names(f"{lang}/", lang_files, ".parquet"), _distribute(rng, docs, lang_files)
        ):
            for row in rows:
                row["id"] = str(next_id)
                next_id += 1
            out[rel] = rows
    _tag_files(seed, out)
    return out
