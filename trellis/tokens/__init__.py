"""Rule family ``tokens``.

The tokenizer, token parts, the TKDS shard format, the per-arm mix and its upload.
"""
