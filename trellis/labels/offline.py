"""The offline labeling backend: deterministic rule-based labels for all five tasks.

The study labels a few thousand documents per domain with a frontier model and trains small
classifiers on them. The embedded demo has no network, so it labels with ``OfflineLabeler``: a
deterministic rule-based labeler that reads only what a labeling model would see (the text, and
for code the file path and language), never any hidden truth of the generated corpus. Its rules
are versioned, and the version plus the taxonomy form the labels' ``prompt_version``, so a changed
taxonomy or rule set shows up in the labels' provenance (and, through params, in Snakemake's
rerun triggers).

Beside it live the frontier-LLM backends, ``trellis.labels.openai_batch`` and
``trellis.labels.openai_chat``; ``trellis.labels.label`` picks one and labels a task with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from typing import Any

from trellis.core.tasks import Task
from trellis.labels.settings import max_invalid_fraction

# Bump when any rule below changes: it is hashed into prompt_version.
OFFLINE_RULES_VERSION = "offline-rules-v1"

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")

# Connectives that mark an argument being built, not a list of facts.
_CONNECTIVES = re.compile(
    r"\b(therefore|thus|hence|consequently|it follows|follows that|implies|whereas|"
    r"nevertheless|moreover|furthermore|conversely|suppose|assume|we obtain|we derive|"
    r"in contrast|by contrast|provided that|if and only if|without loss of generality|"
    r"by induction|in particular|it can be shown|we conclude|accordingly|notwithstanding)\b",
    re.IGNORECASE,
)
# Equations and formulae: "x = 2y", "a^2", LaTeX commands, math symbols.
_EQUATION = re.compile(
    r"(\b[A-Za-z0-9_)\]]+\s*[=<>≤≥≈]\s*[-+(]?[A-Za-z0-9_(\\]|\^\s*[\d{(A-Za-z]|"
    r"\\(frac|sum|int|sqrt|alpha|beta|lambda|partial|cdot|le|ge)\b|[∑∫∂√∞≤≥≈])"
)


# A comment line that is code switched off ("#print(x)", "//console.log(y)", "# def old():").
_COMMENTED_CODE = re.compile(
    r"^(#|//)\s*(def |class |print\(|return\b|import |from \w+ import|console\.|var |let |const |"
    r"if\b.*:$|for\b.*:$|\w+\s*=\s*[\w\[({'\"]|\w+\(.*\);?$)"
)
# Widely agreed code smells; each kind counts once.
_SMELLS = (
    re.compile(r"\b(TODO|FIXME|XXX|HACK)\b"),
    re.compile(r"^\s*except\s*:", re.MULTILINE),  # bare except
    re.compile(r"^\s*from\s+\S+\s+import\s+\*", re.MULTILINE),  # wildcard import
    re.compile(r"^\s*global\s+\w+", re.MULTILINE),
    re.compile(r"^\s*import\s+\w+\s*,\s*\w+", re.MULTILINE),  # several modules on one import line
    re.compile(r"[!=]=\s*None\b"),  # comparison to None by equality
)
_JS_SMELLS = (
    re.compile(r"^\s*var\s+\w+", re.MULTILINE),  # function-scoped var instead of let/const
    re.compile(r"[^=!<>]==[^=]"),  # loose equality
)


def _count_smells(text: str, language: str, commented_code: int) -> int:
    n = int(commented_code > 0) + sum(1 for p in _SMELLS if p.search(text))
    if language.lower() in {"javascript", "typescript"}:
        n += sum(1 for p in _JS_SMELLS if p.search(text))
    return n


def _compile_keyword(keyword: str) -> re.Pattern:
    # Whole words only ("war" must not fire on "software"), tolerant of plural/inflected endings
    # and of any whitespace between the words of a multi-word keyword.
    words = [re.escape(w) for w in keyword.lower().split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"(?:s|es|ed|ing)?\b", re.IGNORECASE)


class OfflineLabeler:
    """Deterministic rule-based labels for all five tasks (the demo's stand-in for an LLM).

    ``labels_config`` is the config's ``labels`` section: ``model`` names the rule set in the
    labels' provenance; ``topics`` (name + keywords) and ``content_types`` (names) are the
    taxonomies.
    """

    backend = "offline"

    # Topic assignment: hits per 100 words a topic needs, and the share of the strongest topic's
    # density a secondary topic needs, to be assigned (the strongest is always assigned).
    TOPIC_MIN_DENSITY = 0.5
    TOPIC_RELATIVE = 0.34

    def __init__(self, labels_config: dict[str, Any]):
        topics = labels_config.get("topics") or []
        if not topics:
            raise ValueError("labels.topics is empty: the offline labeler needs the topic taxonomy")
        self.model = str(labels_config.get("model", "offline"))
        self.max_invalid_fraction = max_invalid_fraction(labels_config)
        self.topics: list[tuple[str, list[re.Pattern]]] = []
        for i, t in enumerate(topics):
            keywords = t.get("keywords") or []
            if not keywords:
                raise ValueError(f"labels.topics[{i}] ({t.get('name')}): no keywords for the offline labeler")
            self.topics.append((t["name"], [_compile_keyword(k) for k in keywords]))
        self.content_types = [c["name"] for c in labels_config.get("content_types") or []]
        unknown = sorted(set(self.content_types) - set(CONTENT_TYPE_RULE_CLASSES))
        if unknown:
            raise ValueError(
                f"labels.content_types has {unknown}, which the offline labeler's rules cannot "
                f"produce; its classes are {list(CONTENT_TYPE_RULE_CLASSES)}"
            )
        taxonomy = {
            "rules": OFFLINE_RULES_VERSION,
            "topics": [{"name": t["name"], "keywords": list(t.get("keywords", []))} for t in topics],
            "content_types": self.content_types,
        }
        digest = hashlib.sha256(json.dumps(taxonomy, sort_keys=True).encode()).hexdigest()[:16]
        self.prompt_version = f"{OFFLINE_RULES_VERSION}-{digest}"
        self.prompt_hash = digest

    # -- dispatch --------------------------------------------------------------------------

    def label(self, task: Task, row: dict[str, Any]) -> Any:
        text = row["text"]
        if task.name == "topic":
            return self.topic(text)
        if task.name == "complexity":
            return float(self.complexity(text))
        if task.name == "code_quality":
            return float(self.code_quality(text, row.get("language"), row.get("path")))
        if task.name == "structured_relevance":
            return float(self.structured_relevance(text, row.get("language"), row.get("path")))
        if task.name == "content_type":
            return self.content_type(text, row.get("language"), row.get("path"))
        raise ValueError(f"offline labeler has no rules for task {task.name!r}")

    # -- topic -----------------------------------------------------------------------------

    def topic_densities(self, text: str) -> dict[str, float]:
        words = max(1, len(_WORD.findall(text)))
        per = 100.0 / max(words, 50)  # short texts are not inflated past a 50-word document
        out = {}
        for name, patterns in self.topics:
            hits = sum(len(p.findall(text)) for p in patterns)
            if hits:
                out[name] = hits * per
        return out

    def topic(self, text: str) -> list[str]:
        dens = self.topic_densities(text)
        if not dens:
            return []
        top = max(dens.values())
        floor = max(self.TOPIC_MIN_DENSITY, self.TOPIC_RELATIVE * top)
        # Taxonomy order, so equal inputs give equal lists.
        return [
            name for name, _ in self.topics if name in dens and (dens[name] == top or dens[name] >= floor)
        ]

    # -- complexity ------------------------------------------------------------------------

    @staticmethod
    def complexity_features(text: str) -> dict[str, float]:
        sentences = [s for s in _SENTENCE_END.split(text.strip()) if _WORD.search(s)]
        words = _WORD.findall(text)
        n_words = max(1, len(words))
        return {
            "words_per_sentence": n_words / max(1, len(sentences)),
            "long_word_share": sum(1 for w in words if len(w) >= 9) / n_words,
            "connectives_per_100w": 100.0 * len(_CONNECTIVES.findall(text)) / max(n_words, 50),
            "equations": float(len(_EQUATION.findall(text))),
        }

    @classmethod
    def complexity(cls, text: str) -> int:
        f = cls.complexity_features(text)
        points = 0.0
        wps = f["words_per_sentence"]
        points += 0.0 if wps < 12 else 0.5 if wps < 18 else 1.0 if wps < 26 else 1.5
        lws = f["long_word_share"]
        points += 0.0 if lws < 0.08 else 0.5 if lws < 0.14 else 1.0 if lws < 0.2 else 1.5
        con = f["connectives_per_100w"]
        points += 0.0 if con == 0 else 0.5 if con < 1.0 else 1.0 if con < 2.0 else 1.5
        eq = f["equations"]
        points += 0.0 if eq == 0 else 0.5 if eq < 3 else 1.0
        # 0-5.5 points onto the 1-4 scale: level 4 needs at least three strong signals at once.
        return 1 if points < 0.5 else 2 if points < 2.25 else 3 if points < 4.0 else 4

    # -- code quality ----------------------------------------------------------------------

    @staticmethod
    def code_quality_features(text: str, language: str | None = None) -> dict[str, float]:
        lines = text.splitlines()
        nonblank = [line.strip() for line in lines if line.strip()]
        n = max(1, len(nonblank))
        comment = re.compile(r"^(#(?!!)|//|/\*|\*|--|\"\"\"|''')")
        commented_code = sum(1 for line in nonblank if _COMMENTED_CODE.match(line))
        # Commented-out code is dead code, not documentation.
        comment_lines = sum(1 for line in nonblank if comment.match(line)) - commented_code
        # Docstring delimiters come in pairs; JSDoc/Javadoc blocks open with "/**".
        docstrings = len(re.findall(r'"""|\'\'\'', text)) // 2 + len(re.findall(r"/\*\*", text))
        functions = len(
            re.findall(
                r"^\s*(?:async\s+)?def\s+\w+|\bfunction\s+\w+\s*\(|=>\s*[{(]|"
                r"^\s*(?:public|private|protected|static)\s+[\w<>\[\]]+\s+\w+\s*\(",
                text,
                re.MULTILINE,
            )
        )
        classes = len(re.findall(r"^\s*class\s+\w+", text, re.MULTILINE))
        long_lines = sum(1 for line in lines if len(line) > 100)
        code_lines = [line for line in nonblank if not comment.match(line)]
        counts = Counter(code_lines)
        repeated = sum(c for line, c in counts.items() if c > 1 and len(line) > 3)
        # Repetition beyond the first few copies of a short line (e.g. "}" or "end") is the mark
        # of generated or copy-pasted boilerplate; templated lines differing only in a number
        # count too.
        templ = Counter(re.sub(r"\d+", "0", line) for line in code_lines)
        templated = sum(c for line, c in templ.items() if c > 2 and len(line) > 6)
        identifiers = re.findall(
            r"\b(?:def|function|let|const|var|class)\s+([A-Za-z_]\w*)|"
            r"^\s*([A-Za-z_]\w*)\s*=",
            text,
            re.MULTILINE,
        )
        names = [a or b for a, b in identifiers]
        poor = sum(
            1
            for nm in names
            if len(nm) <= 2
            and nm not in {"i", "j", "k", "id", "db", "io", "ok", "x", "y"}
            or re.fullmatch(r"(tmp|temp|foo|bar|baz|data\d*|var\d+|x\d+|a\d+|test\d+)", nm.lower())
        )
        typed = len(
            re.findall(
                r"\)\s*->\s*\w|:\s*(int|str|float|bool|list|dict|Optional|None)\b|"
                r"@param|@returns?|:param\s",
                text,
            )
        )
        return {
            "lines": float(len(nonblank)),
            "comment_share": comment_lines / n,
            "docstrings": float(docstrings),
            "functions": float(functions),
            "classes": float(classes),
            "long_line_share": long_lines / max(1, len(lines)),
            "repetition_share": max(repeated, templated) / max(1, len(code_lines)),
            "poor_name_share": poor / max(1, len(names)),
            "typed": float(typed),
            "smells": float(_count_smells(text, language or "", commented_code)),
        }

    @classmethod
    def code_quality(cls, text: str, language: str | None = None, path: str | None = None) -> int:
        lang = (language or _language_from_path(path) or "").lower()
        f = cls.code_quality_features(text, lang)
        score = 3.0
        if lang in DATA_LANGUAGES:
            # Data and config files have no functions or comments to judge: judge their layout.
            score -= 1.0 if f["long_line_share"] > 0.2 else 0.0
            score -= 1.0 if f["repetition_share"] > 0.6 else 0.0
            return int(min(5, max(1, round(score))))
        documented = f["comment_share"] >= 0.08 or f["docstrings"] >= 1
        if documented:
            score += 1.0
        elif f["lines"] > 15:
            score -= 1.0
        if f["functions"] + f["classes"] >= 1:
            score += 0.5
        elif f["lines"] > 25:
            score -= 1.0  # a long flat script with no structure
        if f["typed"] >= 2:
            score += 0.5
        if f["long_line_share"] > 0.1:
            score -= 1.0
        if f["repetition_share"] > 0.5:
            score -= 2.0
        elif f["repetition_share"] > 0.25:
            score -= 1.0
        if f["poor_name_share"] > 0.3:
            score -= 1.0
        if f["smells"] >= 4:
            score -= 2.0
        elif f["smells"] >= 2:
            score -= 1.0
        if f["lines"] < 3:
            score -= 1.0  # too short to be useful on its own
        # math.floor(x + 0.5): round half up, not Python's banker's rounding.
        return int(min(5, max(1, math.floor(score + 0.5))))

    # -- structured relevance --------------------------------------------------------------

    _STRONG = re.compile(
        r'"\$schema"|\$schema:|"type"\s*:\s*"object"|"properties"\s*:|\bCREATE\s+TABLE\b|'
        r"\bALTER\s+TABLE\b|^\s*message\s+\w+\s*\{|^\s*syntax\s*=\s*\"proto|"
        r"\binterface\s+\w+\s*\{|^\s*(?:export\s+)?type\s+\w+\s*=\s*\{|@dataclass|\bTypedDict\b|"
        r"\(BaseModel\)|\bSchema\s*\(|\bz\.object\(|\bjsonschema\b|\bpydantic\b|"
        r"\bmarshmallow\b|\bSerializer\b|\bprotobuf\b|\bavro\b|\bFOREIGN\s+KEY\b|\bPRIMARY\s+KEY\b|"
        r"^\s*type:\s*object\s*$|^openapi:|^swagger:|\$ref\b|@Entity\b|@JsonProperty\b|"
        r"\bimplements\s+Serializable\b|^\s*(?:public\s+)?record\s+\w+\s*\(",
        re.IGNORECASE | re.MULTILINE,
    )
    _MEDIUM = re.compile(
        r"\bjson\.(?:loads|dumps|load|dump)\b|\bJSON\.(?:parse|stringify)\b|\byaml\.(?:safe_)?load\b|"
        r"\byaml\.dump\b|\bto_dict\b|\bfrom_dict\b|\bserializ|\bdeserializ|\bmarshal|\bSELECT\b.+\bFROM\b|"
        r"\bINSERT\s+INTO\b|\bcsv\.(?:reader|writer|DictReader|DictWriter)\b|\bto_json\b|\bread_json\b|"
        r"\bcontent-type\b.*json|application/json|\bpublic\s+[\w<>\[\]]+\s+get[A-Z]\w*\(\)",
        re.IGNORECASE,
    )

    @classmethod
    def structured_relevance(cls, text: str, language: str | None = None, path: str | None = None) -> int:
        lang = (language or _language_from_path(path) or "").lower()
        strong = len(cls._STRONG.findall(text))
        medium = len(cls._MEDIUM.findall(text))
        is_data_file = lang in DATA_LANGUAGES or _looks_like_json(text)
        if strong >= 2 or (strong >= 1 and (medium >= 1 or is_data_file)):
            return 3
        if strong == 1 or medium >= 3 or is_data_file:
            return 2
        if medium >= 1 or re.search(r"\{\s*\"\w+\"\s*:|^\s*\w+:\s+\S", text, re.MULTILINE):
            return 1
        return 0

    # -- content type ----------------------------------------------------------------------

    def content_type(self, text: str, language: str | None = None, path: str | None = None) -> str:
        for name, rule in _CONTENT_TYPE_RULES:
            if name in self.content_types and rule(text, (language or "").lower(), (path or "").lower()):
                return name
        # "library" is the catch-all rule; a taxonomy without it falls back to its first class.
        return "library" if "library" in self.content_types else self.content_types[0]


# --------------------------------------------------------------------------------------------
# Languages and content-type rules
# --------------------------------------------------------------------------------------------

# Languages whose files are data, configuration or schema rather than program logic.
DATA_LANGUAGES = {"json", "yaml", "yml", "toml", "xml", "csv", "ini", "sql", "protobuf", "graphql"}

CODE_LANGUAGES = {
    "python",
    "javascript",
    "typescript",
    "java",
    "go",
    "rust",
    "c",
    "c++",
    "cpp",
    "c-sharp",
    "csharp",
    "ruby",
    "php",
    "kotlin",
    "scala",
    "swift",
    "shell",
    "sql",
}

_EXT_LANGUAGE = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".sql": "sql",
    ".toml": "toml",
    ".xml": "xml",
    ".csv": "csv",
    ".ini": "ini",
    ".proto": "protobuf",
    ".graphql": "graphql",
    ".java": "java",
    ".go": "go",
    ".rs": "rust",
}


def _language_from_path(path: str | None) -> str | None:
    if not path:
        return None
    return _EXT_LANGUAGE.get(os.path.splitext(path.lower())[1])


def _looks_like_json(text: str) -> bool:
    s = text.strip()
    if not s or s[0] not in "[{":
        return False
    try:
        json.loads(s)
        return True
    except ValueError:
        return False


def _is_json_schema(text: str) -> bool:
    return bool(re.search(r'"\$schema"', text)) or (
        bool(re.search(r'"type"\s*:\s*"object"', text)) and '"properties"' in text
    )


def _ct_generated(text: str, lang: str, path: str) -> bool:
    head = text[:2000].lower()
    return (
        any(
            m in head
            for m in (
                "auto-generated",
                "autogenerated",
                "generated by",
                "@generated",
                "do not edit",
                "code generated",
                "this file was generated",
            )
        )
        or path.endswith((".lock", "package-lock.json", ".pb.go", "_pb2.py", ".min.js"))
        or "/migrations/" in f"/{path}"
    )


def _ct_test(text: str, lang: str, path: str) -> bool:
    name = os.path.basename(path)
    return (
        name.startswith("test_")
        or re.search(r"(_test|\.test|\.spec|_spec)\.\w+$", name) is not None
        or "/tests/" in f"/{path}"
        or "/test/" in f"/{path}"
        or "/__tests__/" in f"/{path}"
        or re.search(
            r"^\s*(?:async\s+)?def\s+test_\w+|\bimport\s+pytest\b|\bunittest\.TestCase\b|"
            r"\bdescribe\(\s*['\"]|\bit\(\s*['\"]|\bexpect\(.+\)\.to",
            text,
            re.MULTILINE,
        )
        is not None
    )


_MODEL_CLASS = re.compile(
    r"^\s*class\s+\w+\((?:BaseModel|TypedDict|Enum|IntEnum|Schema|SQLModel)\)|^\s*@dataclass|"
    r"^\s*(?:export\s+)?interface\s+\w+|^\s*(?:export\s+)?type\s+\w+\s*=\s*\{|"
    r"^\s*message\s+\w+\s*\{",
    re.MULTILINE,
)
_TOP_LEVEL_FUNCTION = re.compile(r"^(?:async\s+)?def\s+\w+|^(?:export\s+)?function\s+\w+", re.MULTILINE)


def _ct_schema(text: str, lang: str, path: str) -> bool:
    inserts = len(re.findall(r"\bINSERT\s+INTO\b", text, re.IGNORECASE))
    ddl = len(re.findall(r"\bCREATE\s+(?:TABLE|TYPE|INDEX|VIEW)\b", text, re.IGNORECASE))
    return (
        path.endswith((".proto", ".graphql", ".xsd", ".avsc", ".schema.json"))
        or _is_json_schema(text)
        or (ddl >= 1 and ddl >= inserts)
        or (lang in {"protobuf", "graphql"})
        # API descriptions are schemas of their endpoints' payloads.
        or re.search(r"^(?:openapi|swagger):|^\s*\"(?:openapi|swagger)\"\s*:", text, re.MULTILINE) is not None
        # A module of data-model definitions with no free functions (pydantic/dataclass models,
        # TypeScript interfaces): the code is the schema.
        or (
            _MODEL_CLASS.search(text) is not None
            and _TOP_LEVEL_FUNCTION.search(text) is None
            and not _ct_application_code(text)
        )
    )


_CONFIG_NAMES = (
    "dockerfile",
    "makefile",
    "setup.cfg",
    "pyproject.toml",
    "package.json",
    "tsconfig.json",
    ".eslintrc",
    ".babelrc",
    "docker-compose",
    ".env",
    "requirements.txt",
    "settings.py",
    "config.py",
    "webpack.config",
    ".travis.yml",
    ".gitlab-ci",
)


def _ct_configuration(text: str, lang: str, path: str) -> bool:
    name = os.path.basename(path)
    return (
        path.endswith((".yml", ".yaml", ".toml", ".ini", ".cfg", ".conf", ".properties", ".env"))
        or any(n in name for n in _CONFIG_NAMES)
        or "/.github/workflows/" in f"/{path}"
        or "/config/" in f"/{path}"
        or (lang in {"yaml", "toml", "ini"})
        or (
            lang == "json"
            and _looks_like_json(text)
            and text.strip().startswith("{")
            and not _is_json_schema(text)
        )
    )


def _ct_data(text: str, lang: str, path: str) -> bool:
    inserts = len(re.findall(r"\bINSERT\s+INTO\b", text, re.IGNORECASE))
    return (
        path.endswith((".csv", ".tsv", ".jsonl", ".ndjson", ".xml", ".dat"))
        or "/fixtures/" in f"/{path}"
        or "/data/" in f"/{path}"
        or inserts >= 2
        # One INSERT with many VALUES tuples is a data dump too.
        or (inserts >= 1 and len(re.findall(r"^\s*\(.*\)\s*[,;]\s*$", text, re.MULTILINE)) >= 3)
        or (lang in {"json", "csv"} or path.endswith(".json"))
        and text.strip().startswith("[")
    )


def _ct_documentation(text: str, lang: str, path: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    commented = sum(1 for line in lines if line.startswith(("#", "//", "*", "/*", '"""', "'''")))
    return (
        (path.endswith((".md", ".rst", ".ipynb", ".txt", ".adoc")) and lang not in CODE_LANGUAGES)
        or "/docs/" in f"/{path}"
        or "/examples/" in f"/{path}"
        or "/tutorial" in f"/{path}"
        or (len(lines) >= 5 and commented / len(lines) > 0.6)
    )


def _ct_script(text: str, lang: str, path: str) -> bool:
    return (
        re.search(r"if\s+__name__\s*==\s*['\"]__main__['\"]", text) is not None
        or text.startswith("#!")
        or re.search(r"\bargparse\b|\bsys\.argv\b|\bprocess\.argv\b|\bclick\.command\b", text) is not None
        or "/scripts/" in f"/{path}"
        or "/bin/" in f"/{path}"
        or path.startswith(("scripts/", "bin/"))
    )


def _ct_application_code(text: str) -> bool:
    return (
        re.search(
            r"@app\.(?:route|get|post|put|delete)|\bapp\.(?:get|post|listen|use)\(|\bexpress\(\)|"
            r"\bFlask\(|\bFastAPI\(|\bdjango\b|\bReact\b|\buseState\b|\brender\(|\bhandler\b|"
            r"\bcontroller\b|\brequest\.(?:json|form|args)\b|\bres\.(?:send|json)\(",
            text,
            re.IGNORECASE,
        )
        is not None
    )


def _ct_application(text: str, lang: str, path: str) -> bool:
    return _ct_application_code(text) or any(
        f"/{d}/" in f"/{path}"
        for d in (
            "app",
            "views",
            "controllers",
            "handlers",
            "services",
            "components",
            "pages",
            "routes",
            "api",
        )
    )


def _ct_library(text: str, lang: str, path: str) -> bool:
    return True


# First match wins; the order puts the most specific evidence first (a generated marker beats
# everything, a test path beats the code it tests, a schema beats a generic config/data file).
_CONTENT_TYPE_RULES = (
    ("generated", _ct_generated),
    ("test", _ct_test),
    ("schema", _ct_schema),
    # A documentation extension counts only when the language is not a programming language:
    # a .txt file in a language's directory is mislabelled code, and its content decides.
    (
        "documentation",
        lambda t, lang, p: (
            p.endswith((".md", ".rst", ".ipynb", ".txt", ".adoc")) and lang not in CODE_LANGUAGES
        ),
    ),
    ("data", _ct_data),
    ("configuration", _ct_configuration),
    ("documentation", _ct_documentation),
    ("script", _ct_script),
    ("application", _ct_application),
    ("library", _ct_library),
)
CONTENT_TYPE_RULE_CLASSES = tuple(dict.fromkeys(name for name, _ in _CONTENT_TYPE_RULES))
