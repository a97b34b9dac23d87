"""Measures of a document's text that more than one stage computes the same way.

The compression ratio is both scoring's pre-filter (inference is skipped below
``scoring.skip_below_compression_ratio``) and the filter's first rule
(``curation.starcoderdata.min_compression_ratio``); one definition keeps the two comparable.
"""

from __future__ import annotations

import zlib


def compression_ratio(text: str) -> float:
    """zlib-compressed size / raw size of the UTF-8 bytes (lower = more repetitive).

    Empty text has no meaningful ratio; callers must handle it (the filter drops it as
    ``empty_text``) rather than get a division by zero.
    """
    data = text.encode("utf-8", "surrogatepass")
    if not data:
        raise ValueError("compression_ratio of empty text is undefined")
    # Level 6 (zlib's default) is what the study calibrated the 0.10 threshold with.
    return len(zlib.compress(data, 6)) / len(data)
