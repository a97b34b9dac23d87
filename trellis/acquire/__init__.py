"""Rule family ``acquire``.

Download a source from the hub (or generate the demo corpus) and normalize it into parts.
"""
