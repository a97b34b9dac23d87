"""Rule family ``labels``: draw each domain's labeling sample and label it for every task.

- ``sample``: rule ``label_sample``, the deterministic, evenly spread sample a labeler reads;
- ``label``: rule ``label``, pick the backend, label a task's sample, validate, write labels + report;
- the backends: ``offline`` (rule-based, no network; the demo's), ``openai_batch`` (OpenAI Batch
  API) and ``openai_chat`` (chat completions on any OpenAI-compatible server), the latter two
  built on what ``openai_common`` holds (API key, client, outcomes, cost);
- ``prompts`` (the LLM prompts and answer parsing) and ``settings`` (which config keys decide the
  labels and which only steer fetching).

Nothing is re-exported here: the Snakefile imports ``trellis.labels.settings`` when it parses, and
importing the package must not load pyarrow or a backend for that.
"""
