"""FineMath demo: worked math problems in ``finemath-4plus/train-XXXXX-of-YYYYY.parquet``.

Imitates HuggingFaceTB/finemath's ``finemath-4plus`` subset: rows with ``url``, ``fetch_time``,
the WARC location, ``text``, token and character counts, ``metadata`` (a JSON string),
``score``/``int_score`` (4 or above, as the subset's name says), ``crawl``, ``snapshot_type`` and
``language``. Each text is a page of step-by-step solutions (linear equations, quadratics,
derivatives, probability, sequences, geometry) whose arithmetic is correct, like the real
high-scoring pages.
"""

from __future__ import annotations

import json
import random

from trellis.acquire.demo.common import _distribute, _file_names, _word
from trellis.acquire.demo.vocab import DUMPS, TLDS


def _math_problem(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        a, x, b = rng.randint(2, 12), rng.randint(-10, 15), rng.randint(-20, 30)
        c = a * x + b
        return (
            f"Solve for x: {a}x + {b} = {c}.\n\nSubtract {b} from both sides to get {a}x = {c - b}. "
            f"Dividing both sides by {a} gives x = {x}. Check: {a}·{x} + {b} = {c}, so the solution is "
            "correct."
        )
    if kind == 1:
        r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
        s, p = -(r1 + r2), r1 * r2
        return (
            f"Find the roots of x^2 + {s}x + {p} = 0.\n\nWe look for two numbers whose sum is {-s} and "
            f"whose product is {p}: they are {r1} and {r2}. So the polynomial factors as (x - {r1})(x - "
            f"{r2}) and the roots are x = {r1} and x = {r2}. The discriminant is {s * s - 4 * p}, which is "
            "consistent with real roots."
        )
    if kind == 2:
        n, k = rng.randint(2, 6), rng.randint(2, 9)
        return (
            f"Differentiate f(x) = {k}x^{n}.\n\nBy the power rule, d/dx x^n = n x^(n-1). Therefore f'(x) "
            f"= {k}·{n}x^{n - 1} = {k * n}x^{n - 1}. At x = 1 the slope of the tangent line is {k * n}."
        )
    if kind == 3:
        total, good = rng.randint(6, 20), rng.randint(1, 5)
        return (
            f"A bag holds {total} marbles, {good} of them red. What is the probability of drawing two "
            f"red marbles without replacement?\n\nThe first draw is red with probability {good}/{total}; "
            f"given that, the second is red with probability {good - 1}/{total - 1}. Multiplying, P = "
            f"{good * (good - 1)}/{total * (total - 1)}, which is about "
            f"{good * (good - 1) / (total * (total - 1)):.4f}."
        )
    if kind == 4:
        a1, d, n = rng.randint(1, 10), rng.randint(1, 7), rng.randint(5, 40)
        twice_sum = n * (2 * a1 + (n - 1) * d)
        total = twice_sum // 2 if twice_sum % 2 == 0 else twice_sum / 2  # an int where exact
        return (
            f"Compute the sum of the first {n} terms of the arithmetic sequence {a1}, {a1 + d}, "
            f"{a1 + 2 * d}, ...\n\nThe n-th term is a_n = {a1} + (n - 1)·{d}, so a_{n} = "
            f"{a1 + (n - 1) * d}. The sum is S = n(a_1 + a_n)/2 = {n}·({a1} + {a1 + (n - 1) * d})/2 = "
            f"{total}."
        )
    w, h = rng.randint(2, 30), rng.randint(2, 30)
    return (
        f"A rectangle is {w} cm wide and {h} cm tall. Find its area, its perimeter and the length of its "
        f"diagonal.\n\nArea = {w}·{h} = {w * h} cm^2. Perimeter = 2({w} + {h}) = {2 * (w + h)} cm. By the "
        f"Pythagorean theorem the diagonal is √({w}^2 + {h}^2) = √{w * w + h * h} ≈ "
        f"{(w * w + h * h) ** 0.5:.3f} cm."
    )


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
                "warc_filename": f"crawl-data/{dump}/segments/{rng.randint(1700000000000, 1709999999999)}"
                f".{rng.randint(10, 99)}/warc/{dump}-{rng.randint(0, 899):05d}.warc.gz",
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
