"""Rule family ``labels``: draw the labeling sample and label it (offline rules, OpenAI Batch API, chat endpoint)."""
