"""Rule family ``tokens``: the tokenizer, token parts, the TKDS shard format, the per-arm mix and its upload."""
