"""Rule family ``classifiers``: train the document classifiers on the labels, score parts, report their metrics."""
