"""StackExchange demo: Q&A threads in ``data/<site>/train-XXXXX-of-YYYYY.parquet``, one directory per site.

Imitates HuggingFaceH4/stack-exchange-preferences: rows with ``qid``, ``question`` (the post's
HTML body; the set carries no title), ``answers`` (a list of structs: ``answer_id``, ``author``,
``author_id``, ``author_profile``, ``pm_score``, ``selected``, ``text``), ``date`` and ``metadata``
(question, site and user URLs). ``pm_score`` is computed as the set's card defines it, from a
drawn vote count (``trellis.acquire.normalize.pm_score``: round(log2(1 + upvotes)), +1 when
accepted, -1 below zero votes). Threads have two to four answers (the set keeps only questions with
at least two): accepted ones (a few with a low score), good unaccepted ones and low-score noise, so
the answer-score threshold in normalizing has answers to keep and to drop.

Besides the technical sites (``SE_SITES``, the demo config's ``sources.stackexchange.sites``) it
writes a few threads on a meta site and a non-technical one (``SE_OFF_SITES``), which normalizing
must drop (``meta_site``, ``not_listed_site``). Those come from their own random stream, after
the listed sites, so the listed sites' rows are the same as without them.
"""

from __future__ import annotations

import random

from trellis.acquire.demo.common import _distribute, _file_names, _split_counts, _word, source_rng
from trellis.acquire.demo.vocab import ENTITIES
from trellis.acquire.normalize import pm_score

SE_SITES = ("dba.stackexchange.com", "softwareengineering.stackexchange.com", "stackoverflow.com")
# Sites normalize must not take: a meta site and a non-technical one (one file each).
SE_OFF_SITES = ("cooking.stackexchange.com", "meta.stackoverflow.com")
SE_OFF_THREADS = {
    "cooking.stackexchange.com": (
        "How long should {ent} dough rest before baking?",
        "<p>My {ent} dough tears when I roll it out. Does a longer rest help, and in the fridge or "
        "on the counter?</p>",
        "<p>Rest it for at least thirty minutes, covered, in the fridge; the gluten relaxes and the "
        "butter firms up again.</p>",
    ),
    "meta.stackoverflow.com": (
        "Should questions about {lang} style be closed as opinion-based?",
        "<p>Several {lang} style questions were closed this week. Is there a policy?</p>",
        "<p>Style questions are on topic when they ask about a documented convention; pure "
        "preference questions are closed.</p>",
    ),
}
SE_QUESTIONS = [
    (
        "How do I validate a JSON payload against a schema in {lang}?",
        "<p>I receive {ent} records as JSON and need to reject ones with missing "
        'fields.</p>\n<pre><code>{{"id": 1, "name": null}}\n</code></pre>\n<p>What is the idiomatic way to '
        "do this?</p>",
    ),
    (
        "Why does my LEFT JOIN return duplicate {ent}s?",
        "<p>This query returns each {ent} several times:</p>\n<pre><code>SELECT u.* FROM {ent}s u LEFT JOIN "
        "events e ON e.{ent}_id = u.id;\n</code></pre>\n<p>I expected one row per {ent}.</p>",
    ),
    (
        "Best way to model optional fields in a {lang} API response?",
        "<p>Some {ent} fields are only present for admins. Should they be <code>null</code> or omitted?</p>",
    ),
    (
        "Parsing nested YAML config into typed objects",
        "<p>My config has a nested <code>{ent}</code> section with lists of maps. How can I load it into "
        "{lang} classes and fail early on typos?</p>",
    ),
]
SE_ANSWERS = [
    "<p>Use a schema validator instead of hand-written checks: define the {ent} schema once and validate "
    "every payload against it.</p>\n<pre><code>validate(instance=payload, "
    "schema={ent}_schema)\n</code></pre>\n<p>Errors then name the exact path that failed.</p>",
    "<p>The duplicates come from the one-to-many join. Aggregate first, or use "
    "<code>EXISTS</code>:</p>\n<pre><code>SELECT * FROM {ent}s u WHERE EXISTS (SELECT 1 FROM events e WHERE "
    "e.{ent}_id = u.id);\n</code></pre>",
    "<p>Omit fields that do not apply, and document them as optional in the schema. <code>null</code> "
    'should mean "known to be empty".</p>',
    "<p>Load it with a safe loader and then map the dict onto dataclasses, raising on unknown keys.</p>",
    "<p>Did you try restarting?</p>",
    "<p>same problem here, any update??</p>",
    "<p>I think this is a duplicate of another question, but roughly: check your types.</p>",
]


def _off_site_threads(seed: int, n_docs: int) -> dict[str, list[dict]]:
    """A few threads per site in SE_OFF_SITES (one file each), from their own random stream."""
    rng = source_rng(seed, "stackexchange", "off-sites")
    out = {}
    for site in SE_OFF_SITES:
        # The title stays unused: the set's questions are bodies only.
        _title, body, answer = SE_OFF_THREADS[site]
        docs = []
        for _ in range(max(2, n_docs // 40)):
            qid = rng.randint(10_000, 9_999_999)
            ent, lang = rng.choice(ENTITIES), rng.choice(["Python", "JavaScript", "Java", "Go", "SQL"])
            docs.append(
                {
                    "qid": qid,
                    "question": body.format(ent=ent, lang=lang),
                    "answers": [
                        {
                            "answer_id": rng.randint(1, 9_000_000),
                            "author": _word(rng),
                            "author_id": rng.randint(1, 9_000_000),
                            "author_profile": f"https://{site}/users/{rng.randint(1, 9_000_000)}",
                            "pm_score": pm_score(rng.randint(3, 200), accepted=True),
                            "selected": True,
                            "text": answer,
                        }
                    ],
                    "date": f"{rng.randint(2009, 2023)}/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}",
                    "metadata": [
                        f"https://{site}/questions/{qid}",
                        f"https://{site}",
                        f"https://{site}/users/{rng.randint(1, 9_000_000)}/",
                    ],
                }
            )
        out[_file_names(f"data/{site}/", 1, ".parquet")[0]] = docs
    return out


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
            _title, body = SE_QUESTIONS[q_index]  # no title in the set's rows
            answers = []
            n_ans = rng.choice((2, 2, 2, 3, 3, 4))
            accepted = rng.randrange(n_ans) if n_ans and rng.random() < 0.6 else None
            for a in range(n_ans):
                good = a == accepted or rng.random() < 0.6
                # Good answers address the question asked (SE_ANSWERS[i] answers SE_QUESTIONS[i]).
                text = (SE_ANSWERS[q_index] if good else rng.choice(SE_ANSWERS[len(SE_QUESTIONS) :])).format(
                    ent=ent, lang=lang
                )
                # An accepted answer can still have few votes; it is kept regardless.
                upvotes = (
                    rng.randint(-1, 1)
                    if a == accepted and rng.random() < 0.2
                    else rng.randint(3, 60)
                    if good
                    else rng.randint(-3, 1)
                )
                answer_id += rng.randint(1, 50)
                answers.append(
                    {
                        "answer_id": answer_id,
                        "author": _word(rng),
                        "author_id": rng.randint(1, 9_000_000),
                        "author_profile": f"https://{site}/users/{rng.randint(1, 9_000_000)}",
                        "pm_score": pm_score(upvotes, accepted=a == accepted),
                        "selected": a == accepted,
                        "text": text,
                    }
                )
            docs.append(
                {
                    "qid": qid,
                    "question": body.format(ent=ent, lang=lang),
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
    out.update(_off_site_threads(seed, n_docs))
    return out
