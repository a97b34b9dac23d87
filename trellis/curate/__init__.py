"""Rule family ``curate``.

Stage 0, the per-part policy filter, MinHash signatures and LSH dedup, selection, yields.
"""
