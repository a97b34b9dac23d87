"""The embedded demo corpus: every acquired source, generated offline in its real dataset's shape.

Each source is written with the column names, nesting, file format and directory layout of the
dataset the study downloads (FineWeb-Edu parquet, StarCoderData per-language parquet, peS2o
``.json.gz`` lines, structured-Wikipedia JSON lines, ...), so ``trellis.acquire.normalize`` runs the same
code on demo and real data.

The content is synthetic but built so that every later stage has something to decide:

- FineWeb-Edu documents span the configured topics with the skewed shares of the real crawl
  (education/health/business common, STEM-core rare), some mix two or three topics, and they
  come at four complexity levels (sentence length, technical density, reasoning connectives).
  A few are near-duplicates (small edits) or exact duplicates of another document, always placed
  in a different file, so dedup has to work across parts.
- StarCoderData mixes clean documented code with messy scripts, tests, configs, JSON schemas,
  DDL, data files and repetitive generated boilerplate (zlib ratio below 0.10), and a few files
  whose extension disagrees with their language directory.
- Structured Wikipedia carries infoboxes; plain Wikipedia covers an overlapping set of the same
  entities; StackExchange has accepted and low-score answers; UltraChat multi-turn chats;
  text-to-SQL schema/question/query triples.

Determinism: every random choice comes from ``random.Random`` seeded with a string built from the
run seed and the source name (string seeds are hashed with SHA-512 by Python, so the stream is
the same on every machine and every run; ``hash()`` is never used). Parquet and gzip output are
byte-identical for the same seed (gzip's header timestamp is pinned to 0).

The generator builds one source's rows in memory before writing: it has to, to place a
near-duplicate in a different file than its original, and a demo source is a few megabytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import uuid
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import atomic_path

SOURCES = (
    "fineweb_edu",
    "starcoderdata",
    "finemath",
    "pes2o",
    "structured_wikipedia",
    "wikipedia",
    "stackexchange",
    "ultrachat",
    "text_to_sql",
)

# Shares of documents per topic, shaped like the study's classified FineWeb-Edu sample: the
# STEM-core topics (CS, math, ML) are rare (~7%) and education/health/business dominate. Topics
# the config adds beyond these get DEFAULT_TOPIC_SHARE.
TOPIC_SHARES = {
    "education": 0.16,
    "medicine_health": 0.14,
    "business_economics": 0.12,
    "history": 0.08,
    "social_sciences": 0.07,
    "practical_skills": 0.07,
    "biology": 0.06,
    "earth_environment": 0.05,
    "arts_literature": 0.05,
    "law_government": 0.04,
    "philosophy_religion": 0.03,
    "physics": 0.03,
    "chemistry": 0.03,
    "engineering": 0.03,
    "computer_science": 0.03,
    "mathematics": 0.025,
    "machine_learning_ai": 0.02,
}
DEFAULT_TOPIC_SHARE = 0.04

# Topics that co-occur in real documents; a multi-topic document prefers a related second topic.
RELATED_TOPICS = {
    "machine_learning_ai": ["computer_science", "mathematics"],
    "computer_science": ["machine_learning_ai", "mathematics", "engineering"],
    "mathematics": ["physics", "computer_science", "education"],
    "physics": ["mathematics", "engineering", "chemistry"],
    "chemistry": ["biology", "physics", "medicine_health"],
    "biology": ["medicine_health", "chemistry", "earth_environment"],
    "medicine_health": ["biology", "social_sciences", "practical_skills"],
    "earth_environment": ["biology", "business_economics", "law_government"],
    "engineering": ["physics", "computer_science", "business_economics"],
    "business_economics": ["law_government", "social_sciences", "computer_science"],
    "education": ["social_sciences", "mathematics", "arts_literature"],
    "history": ["law_government", "philosophy_religion", "arts_literature"],
    "social_sciences": ["education", "business_economics", "history"],
    "philosophy_religion": ["history", "arts_literature", "social_sciences"],
    "arts_literature": ["history", "education", "philosophy_religion"],
    "law_government": ["history", "business_economics", "social_sciences"],
    "practical_skills": ["medicine_health", "business_economics", "earth_environment"],
}

# Richer per-topic vocabulary than the config's keywords, so a document is more than its
# keyword list and a classifier has to generalize past exact keyword matches.
TOPIC_VOCAB = {
    "computer_science": "hash table, binary tree, operating system, cache, compiler pass, sorting routine, source code, query planner, memory allocator, thread scheduler, packet, api endpoint, recursion, linked list, interpreter",
    "mathematics": "derivative, vector space, prime number, inequality, function, set, geometry, sequence, limit, eigenvalue, conjecture, axiom, fraction, coordinate system, series",
    "machine_learning_ai": "loss function, feature vector, attention layer, overfitting, validation set, backpropagation, decision tree, reinforcement learning, benchmark, tokenizer, fine-tuning, hyperparameter, inference, label noise, learning rate",
    "physics": "force, wave, thermodynamics, electric field, mass, acceleration, orbit, friction, relativity, magnetic field, pressure, frequency, kinetic energy, spectrum, laser",
    "chemistry": "atom, ion, oxidation, periodic table, polymer, solvent, ph level, isotope, covalent bond, titration, crystal, reagent, enthalpy, alloy, precipitate",
    "biology": "chromosome, mitochondria, photosynthesis, bacteria, mutation, habitat, membrane, neuron, rna, immune system, tissue, population genetics, metabolism, fungus, predator",
    "earth_environment": "sediment, volcano, watershed, erosion, biodiversity, drought, atmosphere, wetland, emissions, groundwater, coral reef, deforestation, plate tectonics, monsoon, recycling",
    "engineering": "beam, torque, control system, gearbox, hydraulics, welding, fatigue, signal, microcontroller, actuator, blueprint, resistor, structural steel, pump, feedback loop",
    "medicine_health": "blood pressure, nutrition, infection, diagnosis, antibiotic, exercise, sleep, cholesterol, hospital, nurse, prescription, chronic pain, mental health, immunization, physician",
    "business_economics": "pricing, startup, interest rate, shareholder, unemployment, marketing, cash flow, tax, trade, entrepreneur, balance sheet, demand, wage, loan, competition",
    "education": "school, reading skills, textbook, exam, tutor, classroom management, literacy, study habits, grade, kindergarten, feedback, teaching strategy, project work, learners, lesson plan",
    "history": "kingdom, medieval period, archive, monarch, battle, civilization, industrial revolution, independence, migration, chronicle, renaissance, republic, artifact, conquest, pilgrimage",
    "social_sciences": "identity, inequality, social norm, interview, urbanization, family structure, cognition, institution, demographic, social network, motivation, stereotype, ritual, public opinion, census",
    "philosophy_religion": "consciousness, free will, scripture, logic, justice, existence, prayer, stoicism, knowledge, soul, doctrine, meditation, ethical dilemma, truth, temple",
    "arts_literature": "character, sculpture, symphony, narrative, poetry, rhyme, canvas, chapter, melody, dialogue, sonnet, playwright, gallery, protagonist, verse",
    "law_government": "judge, parliament, lawsuit, citizen, amendment, federal agency, jury, treaty law, tax code, lawyer, ballot, verdict, ordinance, senate, civil liberties",
    "practical_skills": "kitchen, baking, woodworking, sewing, plumbing, packing list, laundry, grocery list, stain removal, camping, home maintenance, meal prep, paint, fence, compost",
}

GENERIC_NOUNS = [
    "people",
    "children",
    "families",
    "the town",
    "a neighbor",
    "the class",
    "workers",
    "friends",
    "visitors",
    "parents",
]

# Per complexity level: verbs, adjectives, clause joiners, sentence openers and tails. Higher
# levels get longer multi-clause sentences, denser terminology and explicit reasoning
# connectives; level 1 reads like a children's explainer.
LEVELS: dict[int, dict[str, Any]] = {
    1: {
        "clauses": (1, 1, 1, 2),
        "verbs": [
            "helps",
            "needs",
            "has",
            "makes",
            "uses",
            "shows",
            "is part of",
            "goes with",
            "likes",
            "gives",
        ],
        "adjectives": ["big", "small", "good", "new", "old", "simple", "nice", "daily", "easy", "fun"],
        "joiners": [", and ", ". Then "],
        "openers": ["", "", "", "Today, ", "Look: "],
        "tails": ["", "", " every day", " at home", " in school", " a lot"],
        "generic": 0.5,
        "sentences": (5, 8),
        "paragraphs": (4, 6),
    },
    2: {
        "clauses": (1, 1, 2, 2),
        "verbs": [
            "affects",
            "depends on",
            "changes",
            "supports",
            "describes",
            "is linked to",
            "leads to",
            "improves",
            "explains",
            "includes",
        ],
        "adjectives": [
            "common",
            "important",
            "modern",
            "regional",
            "basic",
            "typical",
            "useful",
            "popular",
            "practical",
            "local",
        ],
        "joiners": [", and ", ", but ", ", so ", ", while "],
        "openers": ["", "", "Often, ", "In many cases, ", "For example, ", "Usually, "],
        "tails": [
            "",
            " in many countries",
            " over time",
            " for most people",
            " in {year}",
            " during the {decade}s",
        ],
        "generic": 0.25,
        "sentences": (4, 7),
        "paragraphs": (4, 6),
    },
    3: {
        "clauses": (2, 2, 2, 3),
        "verbs": [
            "constrains",
            "mediates",
            "correlates with",
            "accounts for",
            "modulates",
            "is determined by",
            "reinforces",
            "predicts",
            "offsets",
            "shapes",
        ],
        "adjectives": [
            "significant",
            "measurable",
            "structural",
            "systematic",
            "comparative",
            "underlying",
            "relative",
            "dominant",
            "observed",
            "primary",
        ],
        "joiners": [
            ", because ",
            ", and therefore ",
            ", although ",
            "; however, ",
            ", which means that ",
            ", since ",
        ],
        "openers": [
            "",
            "As a result, ",
            "In practice, ",
            "By contrast, ",
            "This suggests that ",
            "Therefore, ",
        ],
        "tails": [
            "",
            " by roughly {pct} percent",
            " across different settings",
            " in a study of {n} cases",
            " over {n} years",
        ],
        "generic": 0.05,
        "sentences": (4, 6),
        "paragraphs": (3, 5),
    },
    4: {
        "clauses": (2, 3, 3, 4),
        "verbs": [
            "asymptotically bounds",
            "is conditionally independent of",
            "induces a monotone transformation of",
            "is identifiable from",
            "parameterizes",
            "attenuates the marginal effect of",
            "dominates",
            "is invariant under",
            "linearizes",
            "decomposes",
        ],
        "adjectives": [
            "heteroskedastic",
            "nonlinear",
            "endogenous",
            "stochastic",
            "latent",
            "asymptotic",
            "orthogonal",
            "invariant",
            "multivariate",
            "second-order",
        ],
        "joiners": [
            "; consequently, ",
            ", which implies that ",
            ", whereas ",
            "; it follows that ",
            ", provided that ",
            "; hence ",
            ", notwithstanding that ",
        ],
        "openers": [
            "Formally, ",
            "Assuming stationarity, ",
            "Empirically, ",
            "Conversely, ",
            "Under these conditions, ",
            "Nevertheless, ",
        ],
        "tails": [
            "",
            " with an elasticity near {f}",
            " under the assumption that variance is bounded by {f}",
            " at the {p} significance level",
            " in the limit of large samples",
        ],
        "generic": 0.0,
        "sentences": (3, 5),
        "paragraphs": (3, 5),
    },
}
# Real FineWeb-Edu sits mostly at levels 2-3.
LEVEL_WEIGHTS = (0.2, 0.35, 0.3, 0.15)

DUMPS = ("CC-MAIN-2023-50", "CC-MAIN-2024-10", "CC-MAIN-2024-18")
SYLLABLES = "ka ri to mel an sor vi den lu par os ter ba nim qua zel fo rin ash del mor ty ven cal".split()
TLDS = ("com", "org", "edu", "net", "gov", "co.uk", "info")


# ---- shared helpers --------------------------------------------------------------------------


def source_rng(seed: int, source: str, salt: str = "") -> random.Random:
    # A string seed goes through SHA-512 in random.seed (version 2): stable across machines.
    return random.Random(f"trellis-demo:{seed}:{source}:{salt}")


def _word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))


def _name(rng: random.Random) -> str:
    return f"{_word(rng).capitalize()} {_word(rng).capitalize()}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _split_counts(total: int, buckets: int) -> list[int]:
    base, extra = divmod(total, buckets)
    return [base + (1 if i < extra else 0) for i in range(buckets)]


def _file_names(prefix: str, n: int, ext: str) -> list[str]:
    return [f"{prefix}train-{i:05d}-of-{n:05d}{ext}" for i in range(n)]


def _distribute(rng: random.Random, docs: list[dict], n_files: int) -> list[list[dict]]:
    """Contiguous split of docs over files, then a per-file shuffle (originals and copies mix)."""
    files = [[] for _ in range(n_files)]
    n_orig = sum(1 for doc in docs if "_file" not in doc)
    for i, doc in enumerate(docs):
        doc["_n"] = i
        if "_file" not in doc:
            doc["_file"] = i * n_files // n_orig
        files[doc["_file"]].append(doc)
    for rows in files:
        rng.shuffle(rows)
    return files


def _plant_copies(
    rng: random.Random,
    docs: list[dict],
    n_files: int,
    n_near: int,
    n_exact: int,
    text_key: str,
    retag: Callable[[random.Random, dict], dict],
) -> None:
    """Append near- and exact duplicates of existing docs, each pinned to a different file.

    A copy goes to the file after its original's (mod n_files), so with as many files as parts
    the pair always straddles two parts and only a cross-part dedup can find it.
    """
    n = len(docs)
    originals = rng.sample(range(n), k=min(n, n_near + n_exact))
    for j, i in enumerate(originals):
        orig = docs[i]
        copy = retag(rng, dict(orig))
        if j < n_near:
            copy[text_key] = _near_edit(rng, orig[text_key])
            copy["_planted"] = "near_duplicate"
        else:
            copy["_planted"] = "exact_duplicate"
        copy["_of"] = i  # the original's position in docs, which _distribute records as _n
        copy["_file"] = (i * n_files // n + 1) % n_files
        docs.append(copy)


def _near_edit(rng: random.Random, text: str) -> str:
    """A light edit (a few word substitutions, maybe a sentence added) that keeps 5-shingle
    Jaccard similarity with the original well above 0.7."""
    words = text.split(" ")
    for _ in range(max(1, len(words) // 120)):
        k = rng.randrange(len(words))
        words[k] = rng.choice(["very", "really", "also", "often", "still", "quite"])
    out = " ".join(words)
    if rng.random() < 0.5:
        out += rng.choice(
            [
                "\n\nShare this page with a friend.",
                "\n\nUpdated last month.",
                "\n\nSee also our other guides.",
            ]
        )
    return out


# ---- FineWeb-Edu -----------------------------------------------------------------------------


def _topic_terms(topic: dict) -> list[str]:
    extra = [t.strip() for t in TOPIC_VOCAB.get(topic["name"], "").split(",") if t.strip()]
    if not extra:
        # A topic the code has no vocabulary for still gets its description's content words.
        extra = [w.strip(".,").lower() for w in topic.get("description", "").split() if len(w) > 4]
    return list(topic.get("keywords", [])) + extra


def _noun_phrase(rng: random.Random, spec: dict, terms: list[str]) -> str:
    if rng.random() < spec["generic"]:
        return rng.choice(GENERIC_NOUNS)
    det = rng.choice(["the", "a", "this", "each", "every", "such a", "one"])
    adj = rng.choice(spec["adjectives"]) + " " if rng.random() < 0.6 else ""
    return f"{det} {adj}{rng.choice(terms)}"


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        year=rng.randint(1850, 2023),
        decade=rng.randrange(1900, 2020, 10),
        pct=rng.randint(3, 60),
        n=rng.randint(12, 4000),
        f=f"{rng.uniform(0.05, 2.5):.2f}",
        p=rng.choice(["1%", "5%", "0.1%"]),
    )


def _sentence(rng: random.Random, level: int, terms: list[str]) -> str:
    spec = LEVELS[level]
    clauses = []
    for _ in range(rng.choice(spec["clauses"])):
        clause = (
            f"{_noun_phrase(rng, spec, terms)} {rng.choice(spec['verbs'])} {_noun_phrase(rng, spec, terms)}"
        )
        clauses.append(clause + _fill(rng, rng.choice(spec["tails"])))
    text = clauses[0]
    for clause in clauses[1:]:
        text += rng.choice(spec["joiners"]) + clause
    opener = rng.choice(spec["openers"])
    text = opener + text if opener else text
    return text[0].upper() + text[1:] + "."


def _web_document(rng: random.Random, level: int, doc_topics: list[dict]) -> str:
    spec = LEVELS[level]
    primary = _topic_terms(doc_topics[0])
    title_term = rng.choice(primary)
    title = rng.choice(
        [
            "Understanding {t}",
            "A Guide to {t}",
            "What You Should Know About {t}",
            "{t}: An Overview",
            "Notes on {t}",
            "How {t} Works",
        ]
    )
    paragraphs = [title.format(t=title_term.title())]
    n_par = rng.randint(*spec["paragraphs"])
    for p in range(n_par):
        # The primary topic owns most paragraphs; secondary topics get their own paragraphs so a
        # multi-topic document genuinely discusses each topic.
        topic = (
            doc_topics[0]
            if p == 0 or len(doc_topics) == 1 or rng.random() < 0.55
            else rng.choice(doc_topics[1:])
        )
        terms = _topic_terms(topic)
        sentences = [_sentence(rng, level, terms) for _ in range(rng.randint(*spec["sentences"]))]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def _pick_topics(rng: random.Random, topics: list[dict]) -> list[dict]:
    by_name = {t["name"]: t for t in topics}
    weights = [TOPIC_SHARES.get(t["name"], DEFAULT_TOPIC_SHARE) for t in topics]
    chosen = [rng.choices(topics, weights=weights)[0]]
    r = rng.random()
    n_extra = 2 if r < 0.06 else 1 if r < 0.3 else 0
    for _ in range(n_extra):
        related = [by_name[n] for n in RELATED_TOPICS.get(chosen[-1]["name"], []) if n in by_name]
        pool = [t for t in (related if related and rng.random() < 0.8 else topics) if t not in chosen]
        if pool:
            chosen.append(rng.choice(pool))
    return chosen


def _fineweb_retag(rng: random.Random, doc: dict) -> dict:
    doc["id"] = f"<urn:uuid:{_uuid(rng)}>"
    doc["url"] = doc["url"] + rng.choice(["?ref=feed", "?page=1", "#main", "?amp=1"])
    return doc


def gen_fineweb_edu(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    if not topics:
        raise ValueError("fineweb_edu demo needs the topic list (config labels.topics)")
    files = _file_layout_dumps(n_files)
    docs = []
    n_near, n_exact = int(n_docs * 0.05), int(n_docs * 0.01)
    n_orig = n_docs - n_near - n_exact
    for _ in range(max(n_orig, 1)):
        level = rng.choices((1, 2, 3, 4), weights=LEVEL_WEIGHTS)[0]
        doc_topics = _pick_topics(rng, topics)
        text = _web_document(rng, level, doc_topics)
        score = min(5.0, max(2.5, 2.3 + 0.45 * level + rng.gauss(0, 0.35)))
        domain = f"{_word(rng)}{rng.choice(['learning', 'health', 'news', 'guide', 'hub', 'academy', ''])}"
        docs.append(
            {
                "text": text,
                "id": f"<urn:uuid:{_uuid(rng)}>",
                "url": f"https://www.{domain}.{rng.choice(TLDS)}/{'-'.join(text.split(chr(10))[0].lower().split()[:6])}",
                "language": "en",
                "language_score": round(rng.uniform(0.86, 0.99), 6),
                "token_count": int(len(text.split()) * 1.3),
                "score": round(score, 6),
                "int_score": int(round(score)),
                "_planted": "original",
                "_level": level,
                "_topics": [t["name"] for t in doc_topics],
            }
        )
    _plant_copies(rng, docs, n_files, n_near, n_exact, "text", _fineweb_retag)
    out = {}
    for rel, rows in zip(files, _distribute(rng, docs, n_files)):
        dump = rel.split("/")[1]
        for row in rows:
            row["dump"] = dump
            row["file_path"] = (
                f"s3://commoncrawl/crawl-data/{dump}/segments/{rng.randint(1700000000000, 1709999999999)}.{rng.randint(10, 99)}"
                f"/warc/{dump}-{rng.randint(20231101000000, 20240430235959)}-{rng.randint(0, 899):05d}.warc.gz"
            )
        out[rel] = rows
    return out


def _file_layout_dumps(n_files: int) -> list[str]:
    # As on the hub: data/<dump>/train-XXXXX-of-YYYYY.parquet; dumps sort in file order, so the
    # k-th file in this list is also the k-th file in sorted order.
    n_dumps = min(n_files, len(DUMPS))
    names = []
    for d, count in enumerate(_split_counts(n_files, n_dumps)):
        names += _file_names(f"data/{DUMPS[d]}/", count, ".parquet")
    return names


# ---- StarCoderData ---------------------------------------------------------------------------

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
ENTITIES = [
    "user",
    "order",
    "invoice",
    "sensor",
    "reading",
    "product",
    "account",
    "session",
    "payment",
    "shipment",
    "ticket",
    "event",
    "metric",
    "device",
    "booking",
    "customer",
    "review",
    "course",
    "employee",
    "warehouse",
]
ACTIONS = [
    "load",
    "parse",
    "save",
    "validate",
    "compute",
    "fetch",
    "update",
    "render",
    "build",
    "merge",
    "export",
    "sync",
    "normalize",
    "summarize",
]
FIELD_TYPES = [
    ("id", "int", "INTEGER", "integer"),
    ("name", "str", "VARCHAR(120)", "string"),
    ("email", "str", "VARCHAR(255)", "string"),
    ("created_at", "str", "TIMESTAMP", "string"),
    ("amount", "float", "NUMERIC(12,2)", "number"),
    ("status", "str", "VARCHAR(32)", "string"),
    ("quantity", "int", "INTEGER", "integer"),
    ("active", "bool", "BOOLEAN", "boolean"),
    ("score", "float", "REAL", "number"),
    ("country", "str", "CHAR(2)", "string"),
    ("notes", "str", "TEXT", "string"),
    ("updated_at", "str", "TIMESTAMP", "string"),
]


def _camel(s: str) -> str:
    return "".join(p.capitalize() for p in s.split("_"))


def _fields(rng: random.Random, lo: int = 3, hi: int = 7) -> list[tuple[str, str, str, str]]:
    rest = rng.sample(FIELD_TYPES[1:], k=rng.randint(lo, hi) - 1)
    return [FIELD_TYPES[0]] + rest


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
        f'            row["{rng.choice(["amount", "score"])}"] = float(row.get("{rng.choice(["amount", "score"])}") or 0)',
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
        lines.append(f"    {f}: {t} = Field(..., description=\"{f.replace('_', ' ')} of the {ent}\")")
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
            f"_{cls.upper()}_FIELD_{i} = _descriptor.FieldDescriptor(name='field_{i}', full_name='{ent}.{cls}.field_{i}', index={i}, number={i + 1}, type=9, cpp_type=9, label=1, has_default_value=False, default_value=b\"\".decode('utf-8'), message_type=None, enum_type=None, containing_type=None, is_extension=False, extension_scope=None, serialized_options=None, file=DESCRIPTOR)"
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


def _js_app(rng, ent):
    act = rng.choice(ACTIONS)
    lines = [
        "'use strict';",
        "",
        "const express = require('express');",
        "const Ajv = require('ajv');",
        f"const schema = require('./schemas/{ent}.json');",
        "",
        "const ajv = new Ajv({ allErrors: true });",
        "const validate = ajv.compile(schema);",
        "const router = express.Router();",
        "",
        f"/** POST /{ent}s: validate the body against the {ent} schema before storing it. */",
        f"router.post('/{ent}s', async (req, res, next) => {{",
        "  if (!validate(req.body)) {",
        "    return res.status(422).json({ errors: validate.errors });",
        "  }",
        "  try {",
        f"    const saved = await req.app.locals.db.{act}('{ent}s', req.body);",
        "    return res.status(201).json(saved);",
        "  } catch (err) {",
        "    return next(err);",
        "  }",
        "});",
        "",
        "module.exports = router;",
        "",
    ]
    return f"server/routes/{ent}s.js", "\n".join(lines)


def _js_messy(rng, ent):
    lines = [
        "var data = []",
        "var i",
        "$(document).ready(function(){",
        f"  $.get('/api/{ent}s', function(r){{",
        "    data = r",
        "    for(i=0;i<data.length;i++){",
        "      $('#list').append('<li>'+data[i].name+'</li>')",
        "      //console.log(data[i])",
        "    }",
        "  })",
        f"  $('#btn{rng.randint(1, 9)}').click(function(){{ alert('saved') }})",
        "})",
        "function x(a,b){ return a==b?1:0 }",
        "",
    ]
    return f"public/js/{_word(rng)}.js", "\n".join(lines)


def _js_test(rng, ent):
    lines = [
        "const request = require('supertest');",
        "const app = require('../app');",
        "",
        f"describe('POST /{ent}s', () => {{",
        "  it('rejects a body that breaks the schema', async () => {",
        f"    const res = await request(app).post('/{ent}s').send({{ id: 'not-a-number' }});",
        "    expect(res.status).toBe(422);",
        "    expect(res.body.errors.length).toBeGreaterThan(0);",
        "  });",
        "",
        "  it('stores a valid record', async () => {",
        f"    const res = await request(app).post('/{ent}s').send({{ id: {rng.randint(1, 500)}, name: '{_word(rng)}' }});",
        "    expect(res.status).toBe(201);",
        "  });",
        "});",
        "",
    ]
    return f"test/{ent}s.test.js", "\n".join(lines)


def _js_config(rng, ent):
    lines = [
        "const path = require('path');",
        "",
        "module.exports = {",
        f"  mode: '{rng.choice(['production', 'development'])}',",
        "  entry: './src/index.js',",
        "  output: {",
        "    path: path.resolve(__dirname, 'dist'),",
        "    filename: '[name].[contenthash].js',",
        "  },",
        "  module: {",
        "    rules: [{ test: /\\.jsx?$/, exclude: /node_modules/, use: 'babel-loader' }],",
        "  },",
        f"  devServer: {{ port: {rng.choice([3000, 8080, 9000])}, hot: true }},",
        "};",
        "",
    ]
    return "webpack.config.js", "\n".join(lines)


def _java_service(rng, ent):
    cls = _camel(ent)
    lines = [
        f"package com.{_word(rng)}.{ent};",
        "",
        "import java.util.List;",
        "import java.util.Optional;",
        "",
        "/**",
        f" * Looks up and updates {ent}s; all persistence goes through {cls}Repository.",
        " */",
        f"public final class {cls}Service {{",
        f"    private final {cls}Repository repository;",
        "",
        f"    public {cls}Service({cls}Repository repository) {{",
        "        this.repository = repository;",
        "    }",
        "",
        f"    /** Returns the {ent} with this id, or empty when none exists. */",
        f"    public Optional<{cls}> find(long id) {{",
        "        return repository.findById(id);",
        "    }",
        "",
        f"    public List<{cls}> active() {{",
        f"        return repository.findAll().stream().filter({cls}::isActive).toList();",
        "    }",
        "}",
        "",
    ]
    return f"src/main/java/com/example/{ent}/{cls}Service.java", "\n".join(lines)


def _java_pojo(rng, ent):
    cls = _camel(ent)
    fields = _fields(rng, 5, 9)
    jt = {"int": "int", "str": "String", "float": "double", "bool": "boolean"}
    lines = [f"package com.example.{ent};", "", f"public class {cls} {{"]
    lines += [f"    private {jt[t]} {_camel(f)[0].lower() + _camel(f)[1:]};" for f, t, _, _ in fields]
    for f, t, _, _ in fields:
        name = _camel(f)[0].lower() + _camel(f)[1:]
        lines += [
            "",
            f"    public {jt[t]} get{_camel(f)}() {{",
            f"        return {name};",
            "    }",
            "",
            f"    public void set{_camel(f)}({jt[t]} {name}) {{",
            f"        this.{name} = {name};",
            "    }",
        ]
    lines += ["}", ""]
    return f"src/main/java/com/example/{ent}/{cls}.java", "\n".join(lines)


def _java_test(rng, ent):
    cls = _camel(ent)
    lines = [
        f"package com.example.{ent};",
        "",
        "import static org.junit.jupiter.api.Assertions.*;",
        "",
        "import org.junit.jupiter.api.Test;",
        "",
        f"class {cls}ServiceTest {{",
        "    @Test",
        "    void missingIdIsEmpty() {",
        f"        var service = new {cls}Service(new InMemory{cls}Repository());",
        f"        assertTrue(service.find({rng.randint(100, 999)}L).isEmpty());",
        "    }",
        "}",
        "",
    ]
    return f"src/test/java/com/example/{ent}/{cls}ServiceTest.java", "\n".join(lines)


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
                        else rng.random() < 0.7 if t == "bool" else _word(rng)
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


def _yaml_ci(rng, ent):
    py = rng.choice(["3.10", "3.11", "3.12"])
    text = f"name: ci\non:\n  push:\n    branches: [main]\n  pull_request:\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n        with:\n          python-version: '{py}'\n      - run: pip install -r requirements.txt\n      - run: pytest -q tests/\n"
    return ".github/workflows/ci.yml", text


def _yaml_compose(rng, ent):
    text = f"version: '3.8'\nservices:\n  {ent}-api:\n    build: .\n    ports:\n      - \"{rng.choice([8000, 8080, 5000])}:8000\"\n    environment:\n      DATABASE_URL: postgres://app:app@db:5432/{ent}s\n    depends_on: [db]\n  db:\n    image: postgres:{rng.choice([13, 14, 15, 16])}\n    volumes:\n      - db-data:/var/lib/postgresql/data\nvolumes:\n  db-data: {{}}\n"
    return "docker-compose.yml", text


def _yaml_openapi(rng, ent):
    fields = _fields(rng)
    props = "".join(f"        {f}:\n          type: {jt}\n" for f, _, _, jt in fields)
    text = f"openapi: 3.0.3\ninfo:\n  title: {_camel(ent)} API\n  version: 1.{rng.randint(0, 9)}.0\npaths:\n  /{ent}s/{{id}}:\n    get:\n      summary: Fetch one {ent}\n      parameters:\n        - name: id\n          in: path\n          required: true\n          schema: {{type: integer}}\n      responses:\n        '200':\n          description: The {ent}\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/{_camel(ent)}'}}\ncomponents:\n  schemas:\n    {_camel(ent)}:\n      type: object\n      properties:\n{props}"
    return f"api/{ent}.openapi.yaml", text


def _yaml_generated(rng, ent):
    n = rng.randint(150, 250)
    body = "".join(
        f"  - name: {ent}-worker-{i}\n    image: registry.local/{ent}-worker:latest\n    replicas: 1\n    restartPolicy: Always\n"
        for i in range(n)
    )
    return (
        f"deploy/{ent}-workers.generated.yaml",
        "# generated by render_workers.py - do not edit\nworkers:\n" + body,
    )


def _sql_ddl(rng, ent):
    fields = _fields(rng)
    cols = ",\n".join(
        f"    {f} {sql}{' PRIMARY KEY' if f == 'id' else ' NOT NULL' if rng.random() < 0.4 else ''}"
        for f, _, sql, _ in fields
    )
    other = rng.choice([e for e in ENTITIES if e != ent])
    text = f"-- Schema for {ent}s and their {other}s.\nCREATE TABLE {ent}s (\n{cols}\n);\n\nCREATE TABLE {other}s (\n    id INTEGER PRIMARY KEY,\n    {ent}_id INTEGER NOT NULL REFERENCES {ent}s(id),\n    label VARCHAR(80)\n);\n\nCREATE INDEX idx_{other}s_{ent} ON {other}s ({ent}_id);\n"
    return f"db/schema/{ent}s.sql", text


def _sql_query(rng, ent):
    col = rng.choice(["amount", "score", "quantity"])
    text = f"-- Monthly {col} per status, most recent first.\nSELECT date_trunc('month', created_at) AS month,\n       status,\n       COUNT(*) AS n,\n       AVG({col}) AS avg_{col}\nFROM {ent}s\nWHERE created_at >= DATE '{rng.randint(2015, 2023)}-01-01'\nGROUP BY 1, 2\nHAVING COUNT(*) > {rng.randint(1, 50)}\nORDER BY month DESC, n DESC;\n"
    return f"reports/{ent}_{col}_by_month.sql", text


def _sql_inserts(rng, ent):
    rows = ",\n".join(
        f"    ({i + 1}, '{_word(rng)}', {round(rng.uniform(1, 900), 2)}, '{rng.choice(['active', 'pending', 'archived'])}')"
        for i in range(rng.randint(5, 15))
    )
    return f"db/seed/{ent}s.sql", f"INSERT INTO {ent}s (id, name, amount, status) VALUES\n{rows};\n"


def _sql_migration(rng, ent):
    n = rng.randint(200, 320)
    body = "".join(
        f"ALTER TABLE {ent}s ADD COLUMN attribute_{i} VARCHAR(255) DEFAULT NULL;\nCOMMENT ON COLUMN {ent}s.attribute_{i} IS 'generated attribute column';\n"
        for i in range(n)
    )
    return (
        f"db/migrations/V{rng.randint(100, 999)}__add_{ent}_attributes.sql",
        "-- Flyway migration, generated. Do not edit.\nBEGIN;\n" + body + "COMMIT;\n",
    )


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
    counts = [max(1, int(round(n_docs * LANG_SHARES[l]))) for l in langs]
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
    return out


# ---- FineMath --------------------------------------------------------------------------------


def _math_problem(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        a, x, b = rng.randint(2, 12), rng.randint(-10, 15), rng.randint(-20, 30)
        c = a * x + b
        return f"Solve for x: {a}x + {b} = {c}.\n\nSubtract {b} from both sides to get {a}x = {c - b}. Dividing both sides by {a} gives x = {x}. Check: {a}·{x} + {b} = {c}, so the solution is correct."
    if kind == 1:
        r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
        s, p = -(r1 + r2), r1 * r2
        return f"Find the roots of x^2 + {s}x + {p} = 0.\n\nWe look for two numbers whose sum is {-s} and whose product is {p}: they are {r1} and {r2}. So the polynomial factors as (x - {r1})(x - {r2}) and the roots are x = {r1} and x = {r2}. The discriminant is {s * s - 4 * p}, which is consistent with real roots."
    if kind == 2:
        n, k = rng.randint(2, 6), rng.randint(2, 9)
        return f"Differentiate f(x) = {k}x^{n}.\n\nBy the power rule, d/dx x^n = n x^(n-1). Therefore f'(x) = {k}·{n}x^{n - 1} = {k * n}x^{n - 1}. At x = 1 the slope of the tangent line is {k * n}."
    if kind == 3:
        total, good = rng.randint(6, 20), rng.randint(1, 5)
        return f"A bag holds {total} marbles, {good} of them red. What is the probability of drawing two red marbles without replacement?\n\nThe first draw is red with probability {good}/{total}; given that, the second is red with probability {good - 1}/{total - 1}. Multiplying, P = {good * (good - 1)}/{total * (total - 1)}, which is about {good * (good - 1) / (total * (total - 1)):.4f}."
    if kind == 4:
        a1, d, n = rng.randint(1, 10), rng.randint(1, 7), rng.randint(5, 40)
        return f"Compute the sum of the first {n} terms of the arithmetic sequence {a1}, {a1 + d}, {a1 + 2 * d}, ...\n\nThe n-th term is a_n = {a1} + (n - 1)·{d}, so a_{n} = {a1 + (n - 1) * d}. The sum is S = n(a_1 + a_n)/2 = {n}·({a1} + {a1 + (n - 1) * d})/2 = {n * (2 * a1 + (n - 1) * d) // 2 if n * (2 * a1 + (n - 1) * d) % 2 == 0 else n * (2 * a1 + (n - 1) * d) / 2}."
    w, h = rng.randint(2, 30), rng.randint(2, 30)
    return f"A rectangle is {w} cm wide and {h} cm tall. Find its area, its perimeter and the length of its diagonal.\n\nArea = {w}·{h} = {w * h} cm^2. Perimeter = 2({w} + {h}) = {2 * (w + h)} cm. By the Pythagorean theorem the diagonal is √({w}^2 + {h}^2) = √{w * w + h * h} ≈ {(w * w + h * h) ** 0.5:.3f} cm."


def gen_finemath(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    docs = []
    for _ in range(n_docs):
        parts = [rng.choice(["# Worked examples", "## Practice problems", "Lesson notes", "Homework help"])]
        for i in range(rng.randint(2, 5)):
            parts.append(f"**Problem {i + 1}.** " + _math_problem(rng))
        text = "\n\n".join(parts)
        score = round(rng.uniform(4.0, 5.0), 6)
        dump = rng.choice(DUMPS)
        docs.append(
            {
                "url": f"https://{_word(rng)}math.{rng.choice(TLDS)}/{_word(rng)}/{rng.randint(100, 99999)}",
                "fetch_time": rng.randint(1_600_000_000_000, 1_710_000_000_000),
                "content_mime_type": "text/html",
                "warc_filename": f"crawl-data/{dump}/segments/{rng.randint(1700000000000, 1709999999999)}.{rng.randint(10, 99)}/warc/{dump}-{rng.randint(0, 899):05d}.warc.gz",
                "warc_record_offset": rng.randint(0, 1_000_000_000),
                "warc_record_length": rng.randint(2000, 90000),
                "text": text,
                "token_count": int(len(text.split()) * 1.4),
                "char_count": len(text),
                "metadata": json.dumps({"math_score": round(rng.uniform(0.5, 1.0), 4)}),
                "score": score,
                "int_score": int(score),
                "crawl": dump,
                "snapshot_type": rng.choice(["latest", "largest"]),
                "language": "en",
                "language_score": round(rng.uniform(0.8, 0.99), 6),
            }
        )
    return dict(zip(_file_names("finemath-4plus/", n_files, ".parquet"), _distribute(rng, docs, n_files)))


# ---- peS2o -----------------------------------------------------------------------------------

PAPER_TOPICS = (
    "computer_science",
    "mathematics",
    "machine_learning_ai",
    "physics",
    "biology",
    "medicine_health",
    "chemistry",
)


def gen_pes2o(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    by_name = {t["name"]: t for t in topics}
    pool = [by_name.get(name, {"name": name, "keywords": []}) for name in PAPER_TOPICS]
    docs = []
    for _ in range(n_docs):
        topic = rng.choice(pool)
        terms = _topic_terms(topic)
        title = f"{rng.choice(['On', 'Towards', 'Revisiting', 'Learning', 'A Study of'])} {rng.choice(terms).title()} and {rng.choice(terms).title()}"
        abstract = " ".join(_sentence(rng, 4, terms) for _ in range(rng.randint(3, 5)))
        full = rng.random() < 0.5
        body = [title, abstract]
        if full:
            for section in ("1 Introduction", "2 Related Work", "3 Method", "4 Results"):
                body.append(
                    section
                    + "\n"
                    + " ".join(_sentence(rng, rng.choice((3, 4)), terms) for _ in range(rng.randint(3, 5)))
                )
        year = rng.randint(1995, 2023)
        docs.append(
            {
                "added": f"{rng.randint(2022, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z",
                "created": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z",
                "id": str(rng.randint(10_000_000, 260_000_000)),
                "source": "s2orc/train" if full else "s2ag/train",
                "text": "\n\n".join(body),
                "version": "v2",
            }
        )
    return dict(
        zip([f"data/v2/train-{i:05d}.json.gz" for i in range(n_files)], _distribute(rng, docs, n_files))
    )


# ---- Wikipedia (structured and plain) --------------------------------------------------------

ENTITY_KINDS = ("city", "person", "company", "species", "river", "programming_language")


def _entity(seed: int, index: int) -> dict:
    """One encyclopedic entity, derived only from (seed, index) so structured and plain
    Wikipedia describe the same entity identically."""
    rng = source_rng(seed, "wikipedia-entities", str(index))
    kind = ENTITY_KINDS[index % len(ENTITY_KINDS)]
    name = (
        _name(rng)
        if kind == "person"
        else _word(rng, 2, 3).capitalize()
        + {
            "city": "",
            "company": " Systems",
            "species": "ia",
            "river": " River",
            "programming_language": "Lang",
        }[kind]
    )
    country = rng.choice(["Norvania", "Estrel", "Caldor", "Miravel", "Tosk", "Ardenne"])
    year = rng.randint(1700, 2015)
    if kind == "city":
        fields = {
            "General": {
                "Country": country,
                "Founded": str(year),
                "Population": f"{rng.randint(5, 2500) * 1000:,}",
                "Elevation": f"{rng.randint(2, 2400)} m",
            },
            "Government": {"Mayor": _name(rng), "Type": rng.choice(["Mayor–council", "Council–manager"])},
        }
        prose = [
            f"{name} is a city in {country}, founded in {year}.",
            f"It has a population of about {fields['General']['Population']} and lies at an elevation of {fields['General']['Elevation']}.",
            f"The city is governed under a {fields['Government']['Type'].lower()} system; the current mayor is {fields['Government']['Mayor']}.",
        ]
        sections = {
            "History": [
                f"The settlement grew around a river crossing and received a charter in {year + rng.randint(10, 120)}.",
                "Trade and later manufacturing shaped its growth.",
            ],
            "Geography": [
                f"{name} lies in a valley surrounded by low hills.",
                "The climate is temperate with warm summers.",
            ],
        }
    elif kind == "person":
        born = rng.randint(1850, 1990)
        job = rng.choice(["physicist", "novelist", "engineer", "composer", "economist", "painter"])
        fields = {
            "Personal information": {
                "Born": f"{born}",
                "Nationality": country,
                "Occupation": job.capitalize(),
            },
            "Career": {
                "Known for": (
                    f"{_word(rng).capitalize()} theory"
                    if job in ("physicist", "economist")
                    else f"The {_word(rng).capitalize()} Cycle"
                ),
                "Awards": rng.choice(["National Prize", "Gold Medal", "none"]),
            },
        }
        prose = [
            f"{name} (born {born}) is a {country}-born {job}.",
            f"{name.split()[0]} is best known for {fields['Career']['Known for']}.",
            (
                f"Honours include the {fields['Career']['Awards']}."
                if fields["Career"]["Awards"] != "none"
                else f"{name.split()[1]} received no major awards."
            ),
        ]
        sections = {
            "Early life": [
                f"{name.split()[0]} grew up in {country} and studied at a provincial university.",
                "An early interest in mathematics and music shaped later work.",
            ],
            "Career": [
                f"Over several decades {name.split()[1]} worked as a {job}.",
                "Later work was widely cited and translated.",
            ],
        }
    elif kind == "company":
        fields = {
            "Company": {
                "Type": rng.choice(["Public", "Private"]),
                "Industry": rng.choice(["Software", "Logistics", "Energy", "Retail"]),
                "Founded": str(year),
                "Headquarters": country,
                "Employees": f"{rng.randint(20, 90000):,}",
            }
        }
        prose = [
            f"{name} is a {fields['Company']['Type'].lower()} {fields['Company']['Industry'].lower()} company founded in {year}.",
            f"It is headquartered in {country} and employs about {fields['Company']['Employees']} people.",
        ]
        sections = {
            "History": [
                f"{name} began as a small workshop and expanded through acquisitions.",
                "It entered foreign markets in the following decades.",
            ],
            "Products": ["The company's products are sold to businesses and consumers."],
        }
    elif kind == "species":
        fields = {
            "Scientific classification": {
                "Kingdom": "Animalia",
                "Class": rng.choice(["Aves", "Insecta", "Mammalia", "Reptilia"]),
                "Genus": name,
            },
            "Conservation": {"Status": rng.choice(["Least Concern", "Vulnerable", "Endangered"])},
        }
        prose = [
            f"{name} is a genus in the class {fields['Scientific classification']['Class']}.",
            f"Its conservation status is {fields['Conservation']['Status']}.",
            f"Members are found mainly in {country}.",
        ]
        sections = {
            "Description": ["Adults are small and brightly coloured.", "They feed on seeds and insects."],
            "Distribution": [f"The genus is native to forests of {country}."],
        }
    elif kind == "river":
        length = rng.randint(30, 3000)
        fields = {
            "Location": {"Country": country, "Mouth": f"{_word(rng).capitalize()} Sea"},
            "Physical characteristics": {
                "Length": f"{length} km",
                "Discharge": f"{rng.randint(10, 9000)} m3/s",
            },
        }
        prose = [
            f"The {name} is a river in {country}, {length} km long.",
            f"It flows into the {fields['Location']['Mouth']} with a mean discharge of {fields['Physical characteristics']['Discharge']}.",
        ]
        sections = {
            "Course": [
                "The river rises in the highlands and flows through farmland.",
                "Several dams regulate its flow.",
            ],
            "Ecology": ["Its basin supports wetlands and migratory birds."],
        }
    else:
        fields = {
            "General": {
                "Paradigm": rng.choice(["Functional", "Object-oriented", "Multi-paradigm"]),
                "Designed by": _name(rng),
                "First appeared": str(rng.randint(1960, 2020)),
                "Typing discipline": rng.choice(["Static", "Dynamic", "Gradual"]),
            }
        }
        prose = [
            f"{name} is a {fields['General']['Paradigm'].lower()} programming language designed by {fields['General']['Designed by']}.",
            f"It first appeared in {fields['General']['First appeared']} and uses {fields['General']['Typing discipline'].lower()} typing.",
        ]
        sections = {
            "Syntax": [
                f"Programs in {name} are made of modules, each a sequence of declarations.",
                "Blocks are delimited by indentation.",
            ],
            "Implementations": ["A reference compiler targets native code and a bytecode interpreter."],
        }
    return {
        "index": index,
        "kind": kind,
        "name": name,
        "identifier": 1000 + index * 7,
        "qid": f"Q{rng.randint(1000, 9_999_999)}",
        "fields": fields,
        "abstract": " ".join(prose),
        "sections": sections,
    }


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def gen_structured_wikipedia(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    docs = []
    for i in range(n_docs):
        e = _entity(seed, i)
        sections = [
            {
                "type": "section",
                "name": "Abstract",
                "has_parts": [{"type": "paragraph", "value": e["abstract"]}],
            }
        ]
        for heading, paras in e["sections"].items():
            parts: list[dict] = [{"type": "paragraph", "value": p} for p in paras]
            if rng.random() < 0.3:
                parts.append(
                    {
                        "type": "section",
                        "name": f"{heading} details",
                        "has_parts": [
                            {
                                "type": "paragraph",
                                "value": f"Further details on the {heading.lower()} of {e['name']} are disputed.",
                            }
                        ],
                    }
                )
            sections.append({"type": "section", "name": heading, "has_parts": parts})
        sections.append({"type": "section", "name": "References", "has_parts": []})
        infoboxes = [
            {
                "name": f"Infobox {e['kind'].replace('_', ' ')}",
                "type": "infobox",
                "has_parts": [
                    {
                        "type": "section",
                        **({"name": sec} if j else {}),
                        "has_parts": [{"type": "field", "name": k, "value": v} for k, v in flds.items()],
                    }
                    for j, (sec, flds) in enumerate(e["fields"].items())
                ],
            }
        ]
        docs.append(
            {
                "name": e["name"],
                "identifier": e["identifier"],
                "abstract": e["abstract"],
                "date_modified": f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T12:00:00Z",
                "version": {"identifier": rng.randint(10**9, 2 * 10**9)},
                "url": f"https://en.wikipedia.org/wiki/{_slug(e['name'])}",
                "main_entity": {"identifier": e["qid"], "url": f"https://www.wikidata.org/entity/{e['qid']}"},
                "in_language": {"identifier": "en"},
                "description": e["kind"].replace("_", " "),
                "sections": sections,
                "infoboxes": infoboxes,
            }
        )
    return dict(
        zip(
            [f"20240916.en/enwiki_namespace_0_{i}.jsonl" for i in range(n_files)],
            _distribute(rng, docs, n_files),
        )
    )


def gen_wikipedia(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    # Start partway into the entity list: with structured Wikipedia at least as large (as in the
    # config), most plain articles are also structured ones (the study's dual-representation
    # overlap) and the last few are not.
    offset = max(1, n_docs // 2)
    docs = []
    for i in range(offset, offset + n_docs):
        e = _entity(seed, i)
        body = [e["abstract"]]
        for heading, paras in e["sections"].items():
            body.append(heading + "\n\n" + " ".join(paras))
        docs.append(
            {
                "id": str(e["identifier"]),
                "url": f"https://en.wikipedia.org/wiki/{_slug(e['name'])}",
                "title": e["name"],
                "text": "\n\n".join(body),
            }
        )
    return dict(zip(_file_names("20231101.en/", n_files, ".parquet"), _distribute(rng, docs, n_files)))


# ---- StackExchange ---------------------------------------------------------------------------

SE_SITES = ("dba.stackexchange.com", "softwareengineering.stackexchange.com", "stackoverflow.com")
SE_QUESTIONS = [
    (
        "How do I validate a JSON payload against a schema in {lang}?",
        '<p>I receive {ent} records as JSON and need to reject ones with missing fields.</p>\n<pre><code>{{"id": 1, "name": null}}\n</code></pre>\n<p>What is the idiomatic way to do this?</p>',
    ),
    (
        "Why does my LEFT JOIN return duplicate {ent}s?",
        "<p>This query returns each {ent} several times:</p>\n<pre><code>SELECT u.* FROM {ent}s u LEFT JOIN events e ON e.{ent}_id = u.id;\n</code></pre>\n<p>I expected one row per {ent}.</p>",
    ),
    (
        "Best way to model optional fields in a {lang} API response?",
        "<p>Some {ent} fields are only present for admins. Should they be <code>null</code> or omitted?</p>",
    ),
    (
        "Parsing nested YAML config into typed objects",
        "<p>My config has a nested <code>{ent}</code> section with lists of maps. How can I load it into {lang} classes and fail early on typos?</p>",
    ),
]
SE_ANSWERS = [
    "<p>Use a schema validator instead of hand-written checks: define the {ent} schema once and validate every payload against it.</p>\n<pre><code>validate(instance=payload, schema={ent}_schema)\n</code></pre>\n<p>Errors then name the exact path that failed.</p>",
    "<p>The duplicates come from the one-to-many join. Aggregate first, or use <code>EXISTS</code>:</p>\n<pre><code>SELECT * FROM {ent}s u WHERE EXISTS (SELECT 1 FROM events e WHERE e.{ent}_id = u.id);\n</code></pre>",
    '<p>Omit fields that do not apply, and document them as optional in the schema. <code>null</code> should mean "known to be empty".</p>',
    "<p>Load it with a safe loader and then map the dict onto dataclasses, raising on unknown keys.</p>",
    "<p>Did you try restarting?</p>",
    "<p>same problem here, any update??</p>",
    "<p>I think this is a duplicate of another question, but roughly: check your types.</p>",
]


def gen_stackexchange(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    # One directory per site as on the hub; n_files is spread over them, at least one per site.
    sites = SE_SITES
    per_site = _split_counts(max(n_files, len(sites)), len(sites))
    counts = _split_counts(n_docs, len(sites))
    out = {}
    answer_id = 500_000
    for site, n_site, site_files in zip(sites, counts, per_site):
        docs = []
        for _ in range(n_site):
            qid = rng.randint(10_000, 79_999_999)
            ent, lang = rng.choice(ENTITIES), rng.choice(["Python", "JavaScript", "Java", "Go", "SQL"])
            q_index = rng.randrange(len(SE_QUESTIONS))
            title, body = SE_QUESTIONS[q_index]
            answers = []
            n_ans = rng.choice((0, 1, 1, 2, 2, 3, 4))
            accepted = rng.randrange(n_ans) if n_ans and rng.random() < 0.6 else None
            for a in range(n_ans):
                good = a == accepted or rng.random() < 0.6
                # Good answers address the question asked (SE_ANSWERS[i] answers SE_QUESTIONS[i]).
                text = (SE_ANSWERS[q_index] if good else rng.choice(SE_ANSWERS[len(SE_QUESTIONS) :])).format(
                    ent=ent, lang=lang
                )
                # An accepted answer can still have a low score; it is kept regardless.
                score = (
                    rng.randint(-1, 1)
                    if a == accepted and rng.random() < 0.2
                    else rng.randint(2, 40) if good else rng.randint(-3, 1)
                )
                answer_id += rng.randint(1, 50)
                answers.append(
                    {
                        "answer_id": answer_id,
                        "author": _word(rng),
                        "author_id": rng.randint(1, 9_000_000),
                        "author_profile": f"https://{site}/users/{rng.randint(1, 9_000_000)}",
                        "pm_score": score,
                        "selected": a == accepted,
                        "text": text,
                    }
                )
            docs.append(
                {
                    "qid": qid,
                    "question": f"<p><strong>{title.format(ent=ent, lang=lang)}</strong></p>\n"
                    + body.format(ent=ent, lang=lang),
                    "answers": answers,
                    "date": f"{rng.randint(2009, 2023)}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}",
                    "metadata": [
                        f"https://{site}/questions/{qid}",
                        f"https://{site}",
                        f"https://{site}/users/{rng.randint(1, 9_000_000)}/",
                    ],
                }
            )
        for rel, rows in zip(
            _file_names(f"data/{site}/", site_files, ".parquet"), _distribute(rng, docs, site_files)
        ):
            out[rel] = rows
    return out


# ---- UltraChat -------------------------------------------------------------------------------

CHAT_OPENERS = [
    "Can you explain {t} in simple terms?",
    "What are the main benefits of {t}?",
    "Write a short JSON object describing a {e} with three fields.",
    "How should I get started with {t}?",
    "Summarize the debate around {t} in a few sentences.",
]
CHAT_FOLLOWUPS = [
    "Can you give me an example?",
    "How does that compare to {t}?",
    "Could you format that as a list?",
    "What are common mistakes to avoid?",
    "Thanks! One more question: why does it matter?",
]


def _assistant_reply(rng: random.Random, prompt: str, terms: list[str]) -> str:
    if "JSON" in prompt:
        ent = rng.choice(ENTITIES)
        obj = {"id": rng.randint(1, 999), "name": _word(rng), "status": rng.choice(["active", "pending"])}
        return f"Here is a {ent} as JSON:\n\n```json\n{json.dumps(obj, indent=2)}\n```\n\nEach key is a field of the {ent}; add more keys as needed."
    if "list" in prompt:
        return "Sure:\n\n" + "\n".join(
            f"{k}. {_sentence(rng, 2, terms)}" for k in range(1, rng.randint(3, 5) + 1)
        )
    return " ".join(_sentence(rng, rng.choice((2, 3)), terms) for _ in range(rng.randint(2, 4)))


def gen_ultrachat(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    pool = topics or [{"name": "general", "keywords": ["everyday life", "work", "health", "travel"]}]
    docs = []
    for _ in range(n_docs):
        terms = _topic_terms(rng.choice(pool))
        prompt = rng.choice(CHAT_OPENERS).format(t=rng.choice(terms), e=rng.choice(ENTITIES))
        messages = [
            {"content": prompt, "role": "user"},
            {"content": _assistant_reply(rng, prompt, terms), "role": "assistant"},
        ]
        for _ in range(rng.randint(0, 2)):
            follow = rng.choice(CHAT_FOLLOWUPS).format(t=rng.choice(terms))
            messages += [
                {"content": follow, "role": "user"},
                {"content": _assistant_reply(rng, follow, terms), "role": "assistant"},
            ]
        docs.append(
            {
                "prompt": prompt,
                "prompt_id": hashlib.sha256(f"{prompt}{rng.random()}".encode()).hexdigest(),
                "messages": messages,
            }
        )
    names = [
        f"data/train_sft-{i:05d}-of-{n_files:05d}-{hashlib.sha1(f'{seed}{i}'.encode()).hexdigest()[:16]}.parquet"
        for i in range(n_files)
    ]
    return dict(zip(names, _distribute(rng, docs, n_files)))


# ---- text-to-SQL -----------------------------------------------------------------------------


def gen_text_to_sql(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    docs = []
    for _ in range(n_docs):
        ent = rng.choice(ENTITIES)
        other = rng.choice([e for e in ENTITIES if e != ent])
        fields = _fields(rng, 4, 7)
        cols = ", ".join(f"{f} {sql}{' PRIMARY KEY' if f == 'id' else ''}" for f, _, sql, _ in fields)
        schema = f"CREATE TABLE {ent}s ({cols});"
        numeric = [f for f, t, _, _ in fields if t in ("int", "float") and f != "id"]
        texty = [f for f, t, _, _ in fields if t == "str"]
        kind = rng.randrange(4)
        if kind == 0 and numeric:
            col, v = rng.choice(numeric), rng.randint(1, 500)
            question, query = (
                f"How many {ent}s have a {col.replace('_', ' ')} greater than {v}?",
                f"SELECT COUNT(*) FROM {ent}s WHERE {col} > {v};",
            )
        elif kind == 1 and numeric and texty:
            col, grp = rng.choice(numeric), rng.choice(texty)
            question, query = (
                f"What is the average {col.replace('_', ' ')} of {ent}s for each {grp.replace('_', ' ')}?",
                f"SELECT {grp}, AVG({col}) FROM {ent}s GROUP BY {grp};",
            )
        elif kind == 2:
            schema += f"\nCREATE TABLE {other}s (id INTEGER PRIMARY KEY, {ent}_id INTEGER REFERENCES {ent}s(id), label VARCHAR(80));"
            question, query = (
                f"List each {ent} id with the number of {other}s it has.",
                f"SELECT e.id, COUNT(o.id) AS n_{other}s FROM {ent}s e LEFT JOIN {other}s o ON o.{ent}_id = e.id GROUP BY e.id;",
            )
        else:
            col = rng.choice([f for f, *_ in fields])
            k = rng.randint(1, 10)
            question, query = (
                f"Show the {k} most recent {ent}s by id, with their {col.replace('_', ' ')}.",
                f"SELECT id, {col} FROM {ent}s ORDER BY id DESC LIMIT {k};",
            )
        docs.append({"schema": schema, "question": question, "query": query})
    return dict(zip(_file_names("data/", n_files, ".parquet"), _distribute(rng, docs, n_files)))


# ---- native schemas and writers --------------------------------------------------------------

_STR = pa.string()
NATIVE_SCHEMAS: dict[str, pa.Schema] = {
    "fineweb_edu": pa.schema(
        [
            ("text", _STR),
            ("id", _STR),
            ("dump", _STR),
            ("url", _STR),
            ("file_path", _STR),
            ("language", _STR),
            ("language_score", pa.float64()),
            ("token_count", pa.int64()),
            ("score", pa.float64()),
            ("int_score", pa.int64()),
        ]
    ),
    "starcoderdata": pa.schema(
        [
            ("max_stars_repo_path", _STR),
            ("max_stars_repo_name", _STR),
            ("max_stars_count", pa.int64()),
            ("id", _STR),
            ("content", _STR),
        ]
    ),
    "finemath": pa.schema(
        [
            ("url", _STR),
            ("fetch_time", pa.int64()),
            ("content_mime_type", _STR),
            ("warc_filename", _STR),
            ("warc_record_offset", pa.int32()),
            ("warc_record_length", pa.int32()),
            ("text", _STR),
            ("token_count", pa.int64()),
            ("char_count", pa.int64()),
            ("metadata", _STR),
            ("score", pa.float64()),
            ("int_score", pa.int64()),
            ("crawl", _STR),
            ("snapshot_type", _STR),
            ("language", _STR),
            ("language_score", pa.float64()),
        ]
    ),
    "wikipedia": pa.schema([("id", _STR), ("url", _STR), ("title", _STR), ("text", _STR)]),
    "stackexchange": pa.schema(
        [
            ("qid", pa.int64()),
            ("question", _STR),
            (
                "answers",
                pa.list_(
                    pa.struct(
                        [
                            ("answer_id", pa.int64()),
                            ("author", _STR),
                            ("author_id", pa.int64()),
                            ("author_profile", _STR),
                            ("pm_score", pa.int64()),
                            ("selected", pa.bool_()),
                            ("text", _STR),
                        ]
                    )
                ),
            ),
            ("date", _STR),
            ("metadata", pa.list_(_STR)),
        ]
    ),
    "ultrachat": pa.schema(
        [
            ("prompt", _STR),
            ("prompt_id", _STR),
            ("messages", pa.list_(pa.struct([("content", _STR), ("role", _STR)]))),
        ]
    ),
    "text_to_sql": pa.schema([("schema", _STR), ("question", _STR), ("query", _STR)]),
}

GENERATORS: dict[str, Callable] = {
    "fineweb_edu": gen_fineweb_edu,
    "starcoderdata": gen_starcoderdata,
    "finemath": gen_finemath,
    "pes2o": gen_pes2o,
    "structured_wikipedia": gen_structured_wikipedia,
    "wikipedia": gen_wikipedia,
    "stackexchange": gen_stackexchange,
    "ultrachat": gen_ultrachat,
    "text_to_sql": gen_text_to_sql,
}


def generate_rows(
    source: str, n_docs: int, n_files: int, seed: int, topics: list[dict] | None = None
) -> dict[str, list[dict]]:
    """The source's native rows per relative file path, before writing.

    Rows carry private ``_``-prefixed keys (``_planted``: original / near_duplicate /
    exact_duplicate / code / boilerplate..., ``_of``: the original's index) that the writers drop;
    tests use them to find what was planted.
    """
    if source not in GENERATORS:
        raise ValueError(f"no demo generator for source {source!r}; known: {sorted(GENERATORS)}")
    if n_docs < 1 or n_files < 1:
        raise ValueError(f"{source}: demo needs n_docs >= 1 and n_files >= 1 (got {n_docs}, {n_files})")
    if n_files > n_docs:
        raise ValueError(f"{source}: {n_files} files for {n_docs} documents would leave files empty")
    rng = source_rng(seed, source)
    return GENERATORS[source](rng, n_docs, n_files, seed, list(topics or []))


def generate_source(
    source: str, n_docs: int, n_files: int, seed: int, topics: list[dict] | None, out_dir: str | Path
) -> list[str]:
    """Write one demo source's native files under ``out_dir``; return their relative paths, sorted.

    ``n_files`` is the file count for flat layouts; sources laid out one directory per language
    (starcoderdata) or per site (stackexchange) get at least one file per directory, so they may
    have more files than ``n_files`` (never fewer, so ``parts <= n_files`` always has work).
    """
    out_dir = Path(out_dir)
    files = generate_rows(source, n_docs, n_files, seed, topics)
    for rel, rows in files.items():
        rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
        _write_native(source, out_dir / rel, rows)
    return sorted(files)


def _write_native(source: str, path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        if path.name.endswith(".parquet"):
            schema = NATIVE_SCHEMAS[source]
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, row_group_size=512)
        elif path.name.endswith(".json.gz"):
            buf = io.BytesIO()
            # mtime=0 and no file name in the header: the same rows give the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                for row in rows:
                    gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            tmp.write_bytes(buf.getvalue())
        elif path.name.endswith(".jsonl"):
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            raise ValueError(f"{path}: no writer for this file type")
