"""The five labeling/classification tasks of the study and the sources they apply to.

The label sets (17 topics, 9 content types) live in the config, so a study can revise the
taxonomy without touching code; what is fixed here is the shape of each task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Which acquired source each labeling domain samples from and its classifiers score.
DOMAIN_SOURCE = {"web": "fineweb_edu", "code": "starcoderdata"}


@dataclass(frozen=True)
class Task:
    name: str
    domain: str  # "web" or "code"
    kind: str  # "multilabel", "regression" or "single_label"
    low: float | None = None  # regression range
    high: float | None = None
    labels: tuple[str, ...] = field(default=())  # multilabel / single_label classes

    @property
    def source(self) -> str:
        return DOMAIN_SOURCE[self.domain]

    @property
    def num_outputs(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)


def build_tasks(config: dict) -> dict[str, Task]:
    """Task objects from the config's ``labels`` section (topic and content-type class lists)."""
    topics = tuple(t["name"] for t in config["labels"]["topics"])
    content_types = tuple(t["name"] for t in config["labels"]["content_types"])
    return {
        "topic": Task("topic", "web", "multilabel", labels=topics),
        "complexity": Task("complexity", "web", "regression", 1.0, 4.0),
        "code_quality": Task("code_quality", "code", "regression", 1.0, 5.0),
        "structured_relevance": Task("structured_relevance", "code", "regression", 0.0, 3.0),
        "content_type": Task("content_type", "code", "single_label", labels=content_types),
    }


TASK_NAMES = ("topic", "complexity", "code_quality", "structured_relevance", "content_type")


def tasks_for_source(source: str) -> list[str]:
    domain = {v: k for k, v in DOMAIN_SOURCE.items()}[source]
    web = ("topic", "complexity")
    code = ("code_quality", "structured_relevance", "content_type")
    return list(web if domain == "web" else code)
