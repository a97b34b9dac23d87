"""Vocabulary the demo generators share: topic terms, complexity levels, names, code entities.

Data only. The prose sources (FineWeb-Edu, peS2o, UltraChat) write their sentences from
``TOPIC_VOCAB`` and ``LEVELS``; the code-shaped sources (StarCoderData, StackExchange, UltraChat,
text-to-SQL) take their table and record names from ``ENTITIES`` and ``FIELD_TYPES``. It lives
apart from the generators because several sources draw on each list, and a source module should
hold only what its own dataset's shape needs.
"""

from __future__ import annotations

from typing import Any

# Richer per-topic vocabulary than the config's keywords, so a document is more than its
# keyword list and a classifier has to generalize past exact keyword matches.
TOPIC_VOCAB = {
    "computer_science": "hash table, binary tree, operating system, cache, compiler pass, sorting routine, "
    "source code, query planner, memory allocator, thread scheduler, packet, api endpoint, recursion, "
    "linked list, interpreter",
    "mathematics": "derivative, vector space, prime number, inequality, function, set, geometry, sequence, "
    "limit, eigenvalue, conjecture, axiom, fraction, coordinate system, series",
    "machine_learning_ai": "loss function, feature vector, attention layer, overfitting, validation set, "
    "backpropagation, decision tree, reinforcement learning, benchmark, tokenizer, fine-tuning, "
    "hyperparameter, inference, label noise, learning rate",
    "physics": "force, wave, thermodynamics, electric field, mass, acceleration, orbit, friction, "
    "relativity, magnetic field, pressure, frequency, kinetic energy, spectrum, laser",
    "chemistry": "atom, ion, oxidation, periodic table, polymer, solvent, ph level, isotope, covalent bond, "
    "titration, crystal, reagent, enthalpy, alloy, precipitate",
    "biology": "chromosome, mitochondria, photosynthesis, bacteria, mutation, habitat, membrane, neuron, "
    "rna, immune system, tissue, population genetics, metabolism, fungus, predator",
    "earth_environment": "sediment, volcano, watershed, erosion, biodiversity, drought, atmosphere, "
    "wetland, emissions, groundwater, coral reef, deforestation, plate tectonics, monsoon, recycling",
    "engineering": "beam, torque, control system, gearbox, hydraulics, welding, fatigue, signal, "
    "microcontroller, actuator, blueprint, resistor, structural steel, pump, feedback loop",
    "medicine_health": "blood pressure, nutrition, infection, diagnosis, antibiotic, exercise, sleep, "
    "cholesterol, hospital, nurse, prescription, chronic pain, mental health, immunization, physician",
    "business_economics": "pricing, startup, interest rate, shareholder, unemployment, marketing, cash "
    "flow, tax, trade, entrepreneur, balance sheet, demand, wage, loan, competition",
    "education": "school, reading skills, textbook, exam, tutor, classroom management, literacy, study "
    "habits, grade, kindergarten, feedback, teaching strategy, project work, learners, lesson plan",
    "history": "kingdom, medieval period, archive, monarch, battle, civilization, industrial revolution, "
    "independence, migration, chronicle, renaissance, republic, artifact, conquest, pilgrimage",
    "social_sciences": "identity, inequality, social norm, interview, urbanization, family structure, "
    "cognition, institution, demographic, social network, motivation, stereotype, ritual, public opinion, "
    "census",
    "philosophy_religion": "consciousness, free will, scripture, logic, justice, existence, prayer, "
    "stoicism, knowledge, soul, doctrine, meditation, ethical dilemma, truth, temple",
    "arts_literature": "character, sculpture, symphony, narrative, poetry, rhyme, canvas, chapter, melody, "
    "dialogue, sonnet, playwright, gallery, protagonist, verse",
    "law_government": "judge, parliament, lawsuit, citizen, amendment, federal agency, jury, treaty law, "
    "tax code, lawyer, ballot, verdict, ordinance, senate, civil liberties",
    "practical_skills": "kitchen, baking, woodworking, sewing, plumbing, packing list, laundry, grocery "
    "list, stain removal, camping, home maintenance, meal prep, paint, fence, compost",
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

DUMPS = ("CC-MAIN-2023-50", "CC-MAIN-2024-10", "CC-MAIN-2024-18")
SYLLABLES = "ka ri to mel an sor vi den lu par os ter ba nim qua zel fo rin ash del mor ty ven cal".split()
TLDS = ("com", "org", "edu", "net", "gov", "co.uk", "info")

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
