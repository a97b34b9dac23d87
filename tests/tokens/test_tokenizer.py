import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.tokens.tokenize import tokenize_part
from trellis.tokens.tokenizer import (
    PAD,
    SPECIAL_TOKENS,
    eos_id,
    fetch_pretrained,
    load_tokenizer,
    sample_plan,
    train_bpe,
)

PROSE = (
    "The committee reviewed the proposal and found that the budget was balanced. Students wrote "
    "essays about the river, the harbor and the old stone bridge near the town square. "
)
CODE = (
    'def add(a, b):\n    """Add two numbers."""\n    return a + b\n\nprint(json.dumps({"key": [1, 2, 3]}))\n'
)


def _corpus(root):
    paths = []
    for source, text, parts in (("web", PROSE, 2), ("code", CODE, 1)):
        for k in range(parts):
            rows = [
                {"id": f"{source}-{k}-{i}", "text": f"{text} {i} " * (1 + i % 3), "source": source}
                for i in range(40)
            ]
            p = root / "raw" / source / f"part-{k}.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=16)
            paths.append(p)
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    parts = _corpus(root)
    stats = train_bpe(
        parts, vocab_size=400, docs_per_source=30, out_dir=root / "tokenizer", seed=3, model_max_length=256
    )
    return root, parts, stats


def test_sample_plan_is_deterministic_and_even(tmp_path):
    parts = _corpus(tmp_path)
    plan = sample_plan(parts, 31, seed=5)
    assert plan.keys() == set(parts)
    web = [len(plan[p]) for p in parts if p.parent.name == "web"]
    assert sorted(web) == [15, 16] and len(plan[parts[2]]) == 31
    again = sample_plan(parts, 31, seed=5)
    assert all(np.array_equal(plan[p], again[p]) for p in parts)
    other = sample_plan(parts, 31, seed=6)
    assert any(not np.array_equal(plan[p], other[p]) for p in parts)


def test_trained_tokenizer_round_trips_and_has_special_tokens(trained):
    root, _, stats = trained
    tok = load_tokenizer(root / "tokenizer")
    assert stats["documents"] == 60
    assert len(tok) <= 400
    assert tok.convert_ids_to_tokens(0) == "<|endoftext|>"
    assert eos_id(tok) == 0 and tok.bos_token_id == 0
    assert tok.pad_token == PAD
    for t in SPECIAL_TOKENS:
        assert t in tok.get_vocab()
    assert (tok.cls_token, tok.sep_token, tok.mask_token) == ("[CLS]", "[SEP]", "[MASK]")
    assert tok.model_max_length == 256
    for text in (PROSE, CODE, 'naïve café — 数据 🙂 {"a": null}\n\ttab'):  # unseen bytes too: byte-level
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    # merges were learned: the common prose compresses well below one token per byte
    assert len(tok.encode(PROSE, add_special_tokens=False)) < len(PROSE.encode()) / 2


def test_training_is_deterministic(trained, tmp_path):
    root, parts, _ = trained
    train_bpe(
        parts, vocab_size=400, docs_per_source=30, out_dir=tmp_path / "again", seed=3, model_max_length=256
    )
    a = json.loads((root / "tokenizer" / "tokenizer.json").read_text())
    b = json.loads((tmp_path / "again" / "tokenizer.json").read_text())
    assert a["model"]["vocab"] == b["model"]["vocab"]
    assert a["model"]["merges"] == b["model"]["merges"]


def test_fetch_pretrained_from_local_dir_sets_pad(trained, tmp_path):
    root, _, _ = trained
    # A tokenizer without a pad token, like GPT-NeoX's as shipped; loaded from disk (no network).
    from transformers import PreTrainedTokenizerFast

    tok = load_tokenizer(root / "tokenizer")
    bare = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, eos_token="<|endoftext|>")
    assert bare.pad_token is None
    bare.save_pretrained(tmp_path / "bare")
    stats = fetch_pretrained(str(tmp_path / "bare"), tmp_path / "fetched")
    fetched = load_tokenizer(tmp_path / "fetched")
    assert fetched.pad_token == PAD and stats["pad_token"] == PAD
    assert eos_id(fetched) == 0


def test_tokenize_part_writes_ids_tokens_counts(trained, tmp_path):
    root, _, _ = trained
    tok = load_tokenizer(root / "tokenizer")
    rows = [
        {"id": "x", "text": PROSE, "source": "web"},
        {"id": "empty", "text": "", "source": "web"},
        {"id": "y", "text": CODE, "source": "web"},
        {"id": "null", "text": None, "source": "web"},
    ]
    part = tmp_path / "raw" / "web" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), part)
    out = tmp_path / "tokens" / "web" / "part-0.parquet"
    stats = tokenize_part(root / "tokenizer", part, out, batch_size=2)
    table = pq.read_table(out)
    assert table.schema.field("tokens").type == pa.list_(pa.uint16())
    assert table.schema.field("n_tokens").type == pa.int32()
    assert table.column("id").to_pylist() == ["x", "y"]
    toks = table.column("tokens").to_pylist()
    assert toks[0] == tok.encode(PROSE, add_special_tokens=False)
    assert tok.decode(toks[1]) == CODE
    assert table.column("n_tokens").to_pylist() == [len(t) for t in toks]
    assert 0 not in toks[0]  # no EOS added: separators are the packer's job
    assert stats["docs_in"] == 4 and stats["docs_out"] == 2
    assert stats["dropped"]["skipped_empty"] == 2
    assert stats["tokens"] == sum(len(t) for t in toks)
    assert stats["vocab_size"] == len(tok)  # tokenizer.json alone gives the transformers vocabulary


def test_killed_tokenize_leaves_nothing_and_rerun_is_byte_identical(trained, tmp_path, monkeypatch):
    root, parts, _ = trained
    clean = tmp_path / "clean.parquet"
    tokenize_part(root / "tokenizer", parts[0], clean, batch_size=8)

    import trellis.core.io

    real = trellis.core.io.ParquetWriter.write_table
    calls = []

    def dies_on_third_batch(self, table):
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return real(self, table)

    monkeypatch.setattr(trellis.core.io.ParquetWriter, "write_table", dies_on_third_batch)
    out = tmp_path / "tokens" / "part-0.parquet"
    with pytest.raises(KeyboardInterrupt):
        tokenize_part(root / "tokenizer", parts[0], out, batch_size=8)
    assert not out.exists() and not list(out.parent.iterdir())  # no half-written part, no temp file
    monkeypatch.undo()
    tokenize_part(root / "tokenizer", parts[0], out, batch_size=8)
    assert out.read_bytes() == clean.read_bytes()
