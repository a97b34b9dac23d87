"""Rule family ``classifiers``.

Train the document classifiers on the labels, score parts, report their metrics.
"""
