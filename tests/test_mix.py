import hashlib
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.mix import MixStream, Packer, build_mix
from trellis.tkds import read_shard

EOS = 0
VOCAB = 30000
CTX = 16


def _token_parts(root, source, docs_per_part, n_parts, start_token, seed):
    """Token parts whose documents use disjoint token ranges: every token value names one document."""
    rng = np.random.default_rng(seed)
    paths, docs, nxt = [], {}, start_token
    for k in range(n_parts):
        rows = []
        for i in range(docs_per_part):
            n = int(rng.integers(3, 40))
            toks = np.arange(nxt, nxt + n, dtype=np.uint16)
            nxt += n
            doc_id = f"{source}-{k}-{i}"
            docs[doc_id] = toks
            rows.append({"id": doc_id, "tokens": toks.tolist(), "n_tokens": n})
        p = root / "tokens" / source / f"part-{k}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        schema = pa.schema([("id", pa.string()), ("tokens", pa.list_(pa.uint16())), ("n_tokens", pa.int32())])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), p, row_group_size=8)
        paths.append(p)
    return paths, docs, nxt


@pytest.fixture()
def corpus(tmp_path):
    web_paths, web_docs, nxt = _token_parts(tmp_path, "web", 25, 2, 1, 1)
    code_paths, code_docs, _ = _token_parts(tmp_path, "code", 20, 1, nxt, 2)
    docs = {**web_docs, **code_docs}
    totals = {"web": sum(len(d) for d in web_docs.values()), "code": sum(len(d) for d in code_docs.values())}
    components = [
        {"name": "web_part", "source": "web", "token_paths": web_paths, "budget": totals["web"] - 57},
        {"name": "code_all", "source": "code", "token_paths": code_paths, "budget": totals["code"] + 100},
    ]
    return tmp_path, components, docs, totals


def _mix(root, components, out="shards", seed=7, shard=10, buckets=3):
    return build_mix(components, root / out, context_length=CTX, eos_id=EOS, vocab_size=VOCAB,
                     sequences_per_shard=shard, shuffle_buckets=buckets, seed=seed)


def _shard_rows(out_dir, manifest):
    return np.concatenate([read_shard(out_dir / s["file"])[1] for s in manifest["shards"]])


def test_packer_puts_eos_between_documents_and_carries_over():
    p = Packer(context_length=5, eos_id=EOS)
    assert list(p.add(np.array([1, 2, 3]))) == []
    out = list(p.add(np.array([4, 5, 6, 7, 8, 9, 10, 11])))
    assert [s.tolist() for s in out] == [[1, 2, 3, EOS, 4], [5, 6, 7, 8, 9]]
    assert p.tail.tolist() == [10, 11, EOS]  # the document continues into the next sequence
    out = list(p.add(np.array([12])))
    assert [s.tolist() for s in out] == [[10, 11, EOS, 12, EOS]]
    assert p.tail.tolist() == []


def test_budgets_met_exactly_or_shortfall_reported(corpus):
    root, components, _, totals = corpus
    m = _mix(root, components)
    web, code = m["components"]["web_part"], m["components"]["code_all"]
    assert web["realized_tokens"] == web["budget"] == totals["web"] - 57 and web["shortfall"] == 0
    assert web["truncated_documents"] <= 1
    assert code["realized_tokens"] == totals["code"] and code["shortfall"] == 100 and code["documents"] == 20
    stream = sum(c["stream_tokens"] for c in m["components"].values())
    assert stream == m["total_tokens"] + m["dropped_tail_tokens"]
    assert m["total_tokens"] == m["total_sequences"] * CTX
    assert 0 <= m["dropped_tail_tokens"] < CTX
    assert (m["format"], m["version"], m["context_length"], m["vocab_size"], m["eos_id"]) == ("TKDS", 1, CTX, VOCAB, EOS)


def test_every_selected_document_appears_exactly_once(corpus):
    root, components, docs, _ = corpus
    m = _mix(root, components)
    # The same arguments give the same selection; record it to know which prefixes were taken.
    stream = MixStream(components, CTX, EOS, VOCAB, seed=7, record_documents=True)
    pre = list(stream)
    selected = [s for c in stream.comps for s in c.selected]
    assert len(selected) == sum(c["documents"] for c in m["components"].values())

    # Reconstruct documents from the unshuffled stream: split on EOS, in order, tail included.
    flat = np.concatenate(pre + [stream.packer.tail])
    pieces = np.split(flat, np.flatnonzero(flat == EOS) + 1)
    rebuilt = [p[:-1] for p in pieces if len(p)]
    expected = {doc_id: docs[doc_id][:n] for doc_id, n in selected}
    by_first = {int(t[0]): t for t in rebuilt}
    assert len(rebuilt) == len(expected)
    for doc_id, toks in expected.items():
        assert np.array_equal(by_first[int(toks[0])], toks), doc_id

    # And the shards hold exactly those tokens, each once (token values are unique per document).
    rows = _shard_rows(root / "shards", m)
    counts = Counter(rows.ravel().tolist()) + Counter(stream.packer.tail.tolist())
    assert counts.pop(EOS) == len(selected)
    want = Counter(np.concatenate(list(expected.values())).tolist())
    assert counts == want and max(counts.values()) == 1


def test_shuffle_is_a_permutation_of_the_packed_sequences(corpus):
    root, components, _, _ = corpus
    m = _mix(root, components)
    pre = np.stack(list(MixStream(components, CTX, EOS, VOCAB, seed=7)))
    rows = _shard_rows(root / "shards", m)
    h = lambda a: [hashlib.sha1(r.tobytes()).hexdigest() for r in a]  # noqa: E731
    assert sorted(h(pre)) == sorted(h(rows))
    assert h(pre) != h(rows)  # the order did change
    sizes = [s["sequences"] for s in m["shards"]]
    assert all(n == 10 for n in sizes[:-1]) and 0 < sizes[-1] <= 10
    assert [s["file"] for s in m["shards"]] == [f"shard-{i:05d}.tkds" for i in range(len(sizes))]
    # only shards and the manifest in the output; no bucket files left anywhere beside it
    assert sorted(p.name for p in (root / "shards").iterdir()) == sorted([s["file"] for s in m["shards"]] + ["manifest.json"])
    assert not [p for p in root.iterdir() if "bucket" in p.name]


def test_interleaving_spreads_components_over_the_stream(corpus):
    root, components, _, _ = corpus
    stream = MixStream(components, CTX, EOS, VOCAB, seed=7)
    flat = np.concatenate(list(stream))
    # code documents were generated after web ones, so their token values are all larger
    code_start = min(int(pq.read_table(p).column("tokens").combine_chunks().flatten().to_numpy().min())
                     for p in components[1]["token_paths"])
    is_code = flat >= code_start
    half = len(flat) // 2
    assert is_code[:half].any() and is_code[half:].any()
    assert (~is_code[:half] & (flat[:half] != EOS)).any() and (~is_code[half:] & (flat[half:] != EOS)).any()


def test_same_seed_same_shards_other_seed_differs(corpus):
    root, components, _, _ = corpus
    a = _mix(root, components, out="a", seed=11)
    b = _mix(root, components, out="b", seed=11)
    c = _mix(root, components, out="c", seed=12)
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    assert [s["sha256"] for s in a["shards"]] != [s["sha256"] for s in c["shards"]]
    assert (root / "a" / "manifest.json").read_text() == (root / "b" / "manifest.json").read_text()


def test_rerun_clears_stale_shards_and_refuses_bad_tokens(corpus):
    root, components, _, _ = corpus
    first = _mix(root, components, shard=3)
    second = _mix(root, components, shard=50)
    assert len(first["shards"]) > len(second["shards"])
    assert len(list((root / "shards").glob("shard-*.tkds"))) == len(second["shards"])
    with pytest.raises(ValueError, match=r"web/part-\d.parquet: token \d+ >= vocab_size 100"):
        build_mix(components, root / "small", CTX, EOS, 100, 10, 2, 1)
