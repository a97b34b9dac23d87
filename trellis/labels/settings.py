"""Which parts of the config's ``labels`` section decide labels, and which only steer fetching.

Kept free of heavy imports: the Snakefile imports it at DAG-build time.
"""

from __future__ import annotations

from typing import Any

# Config sections that only steer how labels are fetched (polling, concurrency, limits, prices and
# the cost cap), never which labels come back; they stay out of the label rule's params so tuning
# them does not invalidate labels and everything trained on them.
OPERATIONAL_SECTIONS = ("batch", "chat", "prices")
# Top-level keys that only decide whether a finished labeling is accepted, never which labels it
# has: the ceiling on invalid answers. Not a param either, so changing it reruns nothing (a task
# that failed it has no labels output, so its next run happens anyway and, with the OpenAI
# backends, pays for nothing twice).
OPERATIONAL_KEYS = ("max_invalid_fraction",)
# Keys of labels.request that name where the secret comes from, not what is asked.
OPERATIONAL_REQUEST_KEYS = ("api_key_env", "dotenv_path")


def labels_params(labels_config: dict[str, Any]) -> dict[str, Any]:
    """What decides the labels: backend, model, taxonomy and, for the OpenAI backends, the request.

    The label rule passes exactly this as a param, so a change to any of it (switching backend,
    model, prompt settings or taxonomy) reruns labeling and what follows. The offline backend's
    params are the same as before the OpenAI backends existed.
    """
    out = {k: labels_config[k] for k in ("backend", "model", "topics", "content_types") if k in labels_config}
    if labels_config.get("backend") != "offline" and "request" in labels_config:
        out["request"] = {
            k: v for k, v in labels_config["request"].items() if k not in OPERATIONAL_REQUEST_KEYS
        }
    return out


def labels_runtime(labels_config: dict[str, Any]) -> dict[str, Any]:
    """The operational part of the labels section (see OPERATIONAL_SECTIONS and OPERATIONAL_KEYS)."""
    out = {k: labels_config[k] for k in OPERATIONAL_SECTIONS + OPERATIONAL_KEYS if k in labels_config}
    request = {k: v for k, v in (labels_config.get("request") or {}).items() if k in OPERATIONAL_REQUEST_KEYS}
    if request:
        out["request"] = request
    return out


def merge_labels_config(params: dict[str, Any], runtime: dict[str, Any]) -> dict[str, Any]:
    """params + runtime back into one labels section (the inverse of the two functions above)."""
    merged = {**dict(params), **{k: v for k, v in runtime.items() if k != "request"}}
    if "request" in params or "request" in runtime:
        merged["request"] = {**dict(params.get("request") or {}), **dict(runtime.get("request") or {})}
    return merged


def max_invalid_fraction(labels_config: dict[str, Any]) -> float | None:
    """``labels.max_invalid_fraction``: the share of a task's sample that may end without a valid
    label before the labeling job fails (None when unset: no ceiling)."""
    value = labels_config.get("max_invalid_fraction")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"config key labels.max_invalid_fraction = {value!r} must be a number in [0, 1]")
    return float(value)
