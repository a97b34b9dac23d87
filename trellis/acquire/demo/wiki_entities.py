"""Encyclopedic entities the two Wikipedia demos share.

An entity (a city, person, company, species, river or programming language, with infobox
fields, an abstract and sections) is derived only from ``(seed, index)``, never from a source's
own random stream. Structured and plain Wikipedia therefore describe the same entity
identically, reproducing the study corpus's overlap: many articles appear in both
representations.
"""

from __future__ import annotations

from trellis.acquire.demo.common import _name, _word, source_rng

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
            f"It has a population of about {fields['General']['Population']} and lies at an elevation of "
            f"{fields['General']['Elevation']}.",
            f"The city is governed under a {fields['Government']['Type'].lower()} system; the current mayor "
            f"is {fields['Government']['Mayor']}.",
        ]
        sections = {
            "History": [
                "The settlement grew around a river crossing and received a charter in "
                f"{year + rng.randint(10, 120)}.",
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
            f"{name} is a {fields['Company']['Type'].lower()} {fields['Company']['Industry'].lower()} "
            f"company founded in {year}.",
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
            f"It flows into the {fields['Location']['Mouth']} with a mean discharge of "
            f"{fields['Physical characteristics']['Discharge']}.",
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
            f"{name} is a {fields['General']['Paradigm'].lower()} programming language designed by "
            f"{fields['General']['Designed by']}.",
            f"It first appeared in {fields['General']['First appeared']} and uses "
            f"{fields['General']['Typing discipline'].lower()} typing.",
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
