"""What the evaluations show a model: the identities public post-training sets are filtered by."""

from __future__ import annotations

from trellis.evaluate import bfcl
from trellis.evaluate.identities import eval_function_identities
from trellis.structured import pools as sp


def test_eval_function_identities_cover_bfcl_and_the_eval_pool():
    names, hashes = eval_function_identities()
    assert set(sp.all_function_names("eval")) <= names
    simple = bfcl.load_category("simple")
    assert {f["name"] for e in simple for f in bfcl.prompt_functions(e)} <= names
    assert not names & set(sp.all_function_names("train"))  # the generated train data passes its own filter
    assert len(hashes) > 500
