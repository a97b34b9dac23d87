"""Which parts of the config's ``labels`` section decide labels, and which only steer fetching.

Kept free of heavy imports: the Snakefile imports it at DAG-build time.
"""

from __future__ import annotations

from typing import Any

# Config sections that only steer how labels are fetched (polling, concurrency, limits, prices and
# the cost cap), never which labels come back; they stay out of the label rule's params so tuning
# them does not invalidate labels and everything trained on them.
OPERATIONAL_SECTIONS = ("batch", "chat", "prices")
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
    """The operational part of the labels section (see OPERATIONAL_SECTIONS)."""
    out = {k: labels_config[k] for k in OPERATIONAL_SECTIONS if k in labels_config}
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
