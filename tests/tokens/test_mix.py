"""trellis.tokens.mix: exact budgets (sampled, upsampled or short), packing, the external shuffle, resume."""

import csv
import hashlib
import json
import logging
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.tokens.mix import (
    MixStream,
    Packer,
    allocate,
    buffer_sequences,
    build_mix,
    merge_runs,
    write_runs,
)
from trellis.tokens.mix import build as mix_build
from trellis.tokens.tkds import read_shard

EOS = 0
VOCAB = 30000
CTX = 16
SCHEMA = pa.schema([("id", pa.string()), ("tokens", pa.list_(pa.uint16())), ("n_tokens", pa.int32())])


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
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), p, row_group_size=8)
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


# 64 KiB of 16-token sequences: 2048 per run, so small corpora fit one run unless a test says so.
def _mix(root, components, out="shards", seed=7, shard=10, buffer_mb=0.0625):
    return build_mix(
        components,
        root / out,
        context_length=CTX,
        eos_id=EOS,
        vocab_size=VOCAB,
        sequences_per_shard=shard,
        shuffle_buffer_mb=buffer_mb,
        seed=seed,
    )


SMALL_BUFFER_MB = 7 * CTX * 2 / 2**20  # 7 sequences per run: several runs, shards spanning runs


def _shard_rows(out_dir, manifest):
    return np.concatenate([read_shard(out_dir / s["file"])[1] for s in manifest["shards"]])


def _hashes(rows):
    return [hashlib.sha1(r.tobytes()).hexdigest() for r in rows]


def test_packer_puts_eos_between_documents_and_carries_over():
    p = Packer(context_length=5, eos_id=EOS)
    assert list(p.add(np.array([1, 2, 3]))) == []
    out = list(p.add(np.array([4, 5, 6, 7, 8, 9, 10, 11])))
    assert [s.tolist() for s in out] == [[1, 2, 3, EOS, 4], [5, 6, 7, 8, 9]]
    assert p.tail.tolist() == [10, 11, EOS]  # the document continues into the next sequence
    out = list(p.add(np.array([12])))
    assert [s.tolist() for s in out] == [[10, 11, EOS, 12, EOS]]
    assert p.tail.tolist() == []


def test_allocate_is_proportional_exact_and_never_exceeds_a_part():
    assert allocate(10, np.array([1, 1, 2])).tolist() == [3, 2, 5]  # 2.5, 2.5, 5: tie to the first
    assert allocate(0, np.array([4, 5])).tolist() == [0, 0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        weights = rng.integers(0, 50, size=int(rng.integers(1, 8)))
        weights[0] += 1
        amount = int(rng.integers(0, weights.sum()))
        shares = allocate(amount, weights)
        assert shares.sum() == amount and (shares <= weights).all() and (shares >= 0).all()
    # study-scale numbers do not overflow
    assert allocate(4_300_000_000, np.array([9_000_000_000, 9_000_000_001])).sum() == 4_300_000_000
    with pytest.raises(ValueError, match="no tokens"):
        allocate(5, np.array([0, 0]))


def test_budgets_met_exactly_or_shortfall_reported(corpus):
    root, components, _, totals = corpus
    m = _mix(root, components)
    web, code = m["components"]["web_part"], m["components"]["code_all"]
    assert web["realized_tokens"] == web["budget"] == totals["web"] - 57 and web["shortfall"] == 0
    assert web["truncated_documents"] == 1 and web["epochs"] == 0 and web["sampled_tokens"] == web["budget"]
    assert code["realized_tokens"] == totals["code"] == code["available_tokens"]
    assert code["shortfall"] == 100 and code["documents"] == 20 and code["epochs"] == 1
    stream = sum(c["stream_tokens"] for c in m["components"].values())
    assert stream == m["total_tokens"] + m["dropped_tail_tokens"]
    assert m["total_tokens"] == m["total_sequences"] * CTX
    assert 0 <= m["dropped_tail_tokens"] < CTX
    header = (m["format"], m["version"], m["context_length"], m["vocab_size"], m["eos_id"])
    assert header == ("TKDS", 1, CTX, VOCAB, EOS)


def test_every_selected_document_appears_exactly_once(corpus):
    root, components, docs, _ = corpus
    m = _mix(root, components, buffer_mb=SMALL_BUFFER_MB)
    # The same arguments give the same selection; record it to know which prefixes were taken.
    stream = MixStream(components, CTX, EOS, VOCAB, seed=7, record_documents=True)
    pre = list(stream)
    selected = [s for c in stream.comps for s in c.selected]
    assert len(selected) == sum(c["documents"] for c in m["components"].values())
    assert len({doc_id for doc_id, _ in selected}) == len(selected)  # no document twice

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


def test_sample_is_spread_over_parts_and_differs_by_seed(corpus):
    _, components, _, _ = corpus
    half = [{**components[0], "budget": 300}]
    picks = []
    for seed in (1, 2):
        stream = MixStream(half, CTX, EOS, VOCAB, seed=seed, record_documents=True)
        list(stream)
        ids = [doc_id for doc_id, _ in stream.comps[0].selected]
        assert {i.split("-")[1] for i in ids} == {"0", "1"}  # both parts contribute
        assert stream.comps[0].realized_tokens == 300 and stream.comps[0].truncated_documents <= 1
        picks.append(set(ids))
    assert picks[0] != picks[1]


def test_components_of_one_source_never_share_a_document(corpus):
    root, components, docs, totals = corpus
    web_paths = components[0]["token_paths"]
    # A "curated" part holding a subset of the web documents under the same ids, as filter and
    # dedup leave them, read by one component; the raw parts read by the next.
    subset = pq.read_table(web_paths[0]).slice(0, 18)
    curated = root / "tokens" / "curated" / "web" / "part-0.parquet"
    curated.parent.mkdir(parents=True)
    pq.write_table(subset, curated, row_group_size=8)
    curated_tokens = sum(subset.column("n_tokens").to_pylist())
    comps = [
        {"name": "web_curated", "source": "web", "token_paths": [curated], "budget": curated_tokens - 20},
        {"name": "web_random", "source": "web", "token_paths": web_paths, "budget": 300},
        {"name": "web_rest", "source": "web", "token_paths": web_paths, "budget": totals["web"]},
    ]
    stream = MixStream(comps, CTX, EOS, VOCAB, seed=4, record_documents=True)
    list(stream)
    picked = [[doc_id for doc_id, _ in c.selected] for c in stream.comps]
    everything = [i for ids in picked for i in ids]
    assert len(everything) == len(set(everything))  # no document twice across components
    first, second, rest = (c.report() for c in stream.comps)
    assert first["realized_tokens"] == first["budget"] and first["excluded_documents"] == 0
    assert second["realized_tokens"] == 300 and second["excluded_documents"] == len(picked[0])
    assert second["excluded_tokens"] == sum(len(docs[i]) for i in picked[0])
    # the last takes everything left: every web document is used by exactly one component
    assert rest["shortfall"] > 0 and rest["epochs"] == 1
    assert sorted(everything) == sorted(i for i in docs if i.startswith("web"))


def test_upsampling_repeats_whole_epochs_then_samples_the_rest(corpus):
    root, components, docs, totals = corpus
    code = {**components[1], "budget": 2 * totals["code"] + 50, "upsample": True}
    m = _mix(root, [code], out="up", buffer_mb=SMALL_BUFFER_MB)
    c = m["components"]["code_all"]
    assert c["realized_tokens"] == c["budget"] and c["shortfall"] == 0
    assert c["epochs"] == 2 and c["sampled_tokens"] == 50 and c["upsample"] is True

    stream = MixStream([code], CTX, EOS, VOCAB, seed=7, record_documents=True)
    list(stream)
    seen = Counter(doc_id for doc_id, _ in stream.comps[0].selected)
    code_ids = [i for i in docs if i.startswith("code")]
    assert all(seen[i] in (2, 3) for i in code_ids) and set(seen) == set(code_ids)
    sampled = sum(n for doc_id, n in stream.comps[0].selected[-sum(v == 3 for v in seen.values()) :])
    assert sampled == 50
    # every token of every code document is in the shards at least twice, EOS once per document
    rows = _shard_rows(root / "up", m)
    counts = Counter(np.concatenate([rows.ravel(), stream.packer.tail]).tolist())
    assert counts.pop(EOS) == c["documents"]
    assert all(counts[int(t)] >= 2 for i in code_ids for t in docs[i])
    assert sum(counts.values()) == c["realized_tokens"]

    # The same budget without upsampling is a reported shortfall.
    short = _mix(root, [{**code, "upsample": False}], out="short")
    assert short["components"]["code_all"]["shortfall"] == totals["code"] + 50


def test_shuffle_is_a_permutation_of_the_packed_sequences(corpus):
    root, components, _, _ = corpus
    m = _mix(root, components, buffer_mb=SMALL_BUFFER_MB)
    pre = np.stack(list(MixStream(components, CTX, EOS, VOCAB, seed=7)))
    rows = _shard_rows(root / "shards", m)
    assert sorted(_hashes(pre)) == sorted(_hashes(rows))
    assert _hashes(pre) != _hashes(rows)  # the order did change
    assert m["shuffle"]["buffer_sequences"] == 7 and m["shuffle"]["runs"] == -(-len(pre) // 7) > 2
    sizes = [s["sequences"] for s in m["shards"]]
    assert all(n == 10 for n in sizes[:-1]) and 0 < sizes[-1] <= 10
    assert [s["file"] for s in m["shards"]] == [f"shard-{i:05d}.tkds" for i in range(len(sizes))]
    # only shards, the mix table and the manifest remain: no run files or work state anywhere
    names = sorted(p.name for p in (root / "shards").iterdir())
    assert names == sorted([s["file"] for s in m["shards"]] + ["manifest.json", "mix.csv"])


def test_external_shuffle_gives_every_order_equally_often(tmp_path):
    # 5 one-token sequences, runs of 2 (runs [2, 2, 1]), shards of 2: each sequence should land at
    # each of the 5 positions with probability 1/5, whatever run it was written to.
    trials, n = 1000, 5
    seqs = [np.array([v], dtype=np.uint16) for v in range(n)]
    hits = np.zeros((n, n), dtype=np.int64)
    for t in range(trials):
        work = tmp_path / f"w{t % 2}"
        work.mkdir(exist_ok=True)
        counts = write_runs(iter(seqs), work, 1, 2, np.random.default_rng([t, 1]))
        out: list[np.ndarray] = []
        rng = np.random.default_rng([t, 2])
        merge_runs(work, counts, 1, 2, rng, lambda i, rows, out=out: out.append(rows))
        order = np.concatenate(out).ravel()
        assert sorted(order.tolist()) == list(range(n))
        hits[order, np.arange(n)] += 1
    # expected 200 per cell, sd ~12.6: 5 sd either way
    assert hits.min() > 137 and hits.max() < 263, hits


def test_buffer_bounds_every_run(corpus, monkeypatch):
    root, components, _, _ = corpus
    written = []
    real = mix_build.write_runs

    def spy(sequences, work, ctx, capacity, rng):
        counts = real(sequences, work, ctx, capacity, rng)
        written.append((capacity, counts))
        return counts

    monkeypatch.setattr(mix_build, "write_runs", spy)
    _mix(root, components, buffer_mb=SMALL_BUFFER_MB)
    capacity, counts = written[0]
    assert capacity == buffer_sequences(SMALL_BUFFER_MB, CTX) == 7
    assert all(c == 7 for c in counts[:-1]) and 0 < counts[-1] <= 7


def test_mix_table_lists_every_component(corpus):
    root, components, _, totals = corpus
    m = _mix(root, components)
    with open(root / "shards" / "mix.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["component"] for r in rows] == ["web_part", "code_all"]
    web = rows[0]
    assert int(web["budget"]) == int(web["realized_tokens"]) == totals["web"] - 57
    assert int(rows[1]["shortfall"]) == 100
    realized = sum(c["realized_tokens"] for c in m["components"].values())
    assert float(web["share"]) == pytest.approx(int(web["realized_tokens"]) / realized, abs=1e-6)


def test_same_seed_same_shards_other_seed_differs(corpus):
    root, components, _, _ = corpus
    a = _mix(root, components, out="a", seed=11, buffer_mb=SMALL_BUFFER_MB)
    b = _mix(root, components, out="b", seed=11, buffer_mb=SMALL_BUFFER_MB)
    c = _mix(root, components, out="c", seed=12, buffer_mb=SMALL_BUFFER_MB)
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    assert [s["sha256"] for s in a["shards"]] != [s["sha256"] for s in c["shards"]]
    assert (root / "a" / "manifest.json").read_text() == (root / "b" / "manifest.json").read_text()


def test_known_corpus_gives_known_shard_hashes(corpus):
    # Pins the bytes: the same config and seed give these shards on any machine. If this fails,
    # the mix algorithm changed (bump ALGORITHM in mix/build.py) or a library's random streams did.
    root, components, _, _ = corpus
    m = _mix(root, components, seed=3, shard=64, buffer_mb=SMALL_BUFFER_MB)
    digest = hashlib.sha256("".join(s["sha256"] for s in m["shards"]).encode()).hexdigest()
    assert digest == GOLDEN


GOLDEN = "64204b21ae7bb344bd100e3970dbdc9908e8ede99546ec1f970c228f996de37b"


class Killed(RuntimeError):
    pass


def _kill_shard_writes_after(monkeypatch, n: int, calls: list[str]) -> None:
    """Make the mix's shard writer die (Killed) once ``n`` shards were written, recording each name."""
    real = mix_build.write_shard

    def write_shard(path, rows, vocab):
        if len(calls) == n:
            raise Killed("killed")
        calls.append(path.name)
        return real(path, rows, vocab)

    monkeypatch.setattr(mix_build, "write_shard", write_shard)


def test_killed_merge_resumes_to_identical_shards(corpus, monkeypatch):
    root, components, _, _ = corpus
    reference = _mix(root, components, out="ref", shard=4, buffer_mb=SMALL_BUFFER_MB)
    assert len(reference["shards"]) > 4
    real = mix_build.write_shard
    calls = []
    _kill_shard_writes_after(monkeypatch, 3, calls)
    with pytest.raises(Killed):
        _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    out = root / "run"
    assert not (out / "manifest.json").exists()  # nothing looks complete
    assert (out / ".mix-work" / "pass1.json").exists()

    # A journaled shard that no longer matches its sha256 is written again.
    damaged = out / "shard-00001.tkds"
    damaged.write_bytes(damaged.read_bytes()[:-2] + b"\x01\x00")
    calls.clear()
    monkeypatch.setattr(mix_build, "write_shard", lambda *a: calls.append(a[0].name) or real(*a))
    passes = []
    monkeypatch.setattr(mix_build, "write_runs", lambda *a: passes.append(1) or [])
    resumed = _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    assert not passes  # pass 1 was not redone
    assert calls == ["shard-00001.tkds"] + [s["file"] for s in reference["shards"][3:]]
    assert resumed["shards"] == reference["shards"]
    assert (out / "manifest.json").read_text() == (root / "ref" / "manifest.json").read_text()
    assert not (out / ".mix-work").exists()


def test_torn_journal_line_is_dropped_redone_and_resume_stays_identical(corpus, monkeypatch, caplog):
    root, components, _, _ = corpus
    reference = _mix(root, components, out="ref", shard=4, buffer_mb=SMALL_BUFFER_MB)
    assert len(reference["shards"]) > 5
    real = mix_build.write_shard
    calls = []
    _kill_shard_writes_after(monkeypatch, 3, calls)
    with pytest.raises(Killed):
        _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    out = root / "run"
    journal = out / ".mix-work" / "shards.jsonl"
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[: last + 9])  # killed while journaling shard 2 (its file is complete)

    # Resume, killed again after two shards: shard 2 (torn entry) is redone, then shard 3.
    calls.clear()
    monkeypatch.setattr(mix_build, "write_shard", real)
    _kill_shard_writes_after(monkeypatch, 2, calls)
    with caplog.at_level(logging.WARNING), pytest.raises(Killed):
        _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    assert f"{journal}: dropped a torn last line at byte offset {last}" in caplog.text
    assert calls == ["shard-00002.tkds", "shard-00003.tkds"]
    text = journal.read_text()
    assert text.endswith("\n")
    assert [json.loads(line)["index"] for line in text.splitlines()] == [0, 1, 2, 3]

    # The entries appended after the repair are read back: only the rest is written.
    calls.clear()
    monkeypatch.setattr(mix_build, "write_shard", lambda *a: calls.append(a[0].name) or real(*a))
    resumed = _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    assert calls == [s["file"] for s in reference["shards"][4:]]
    assert resumed["shards"] == reference["shards"]
    assert (out / "manifest.json").read_text() == (root / "ref" / "manifest.json").read_text()
    for s in reference["shards"]:
        assert (out / s["file"]).read_bytes() == (root / "ref" / s["file"]).read_bytes()


def test_journal_damaged_before_its_last_line_is_an_error(corpus, monkeypatch):
    root, components, _, _ = corpus
    _kill_shard_writes_after(monkeypatch, 3, [])
    with pytest.raises(Killed):
        _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)
    journal = root / "run" / ".mix-work" / "shards.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0] + lines[1][:12] + "\n" + lines[2])
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"shards.jsonl, line 2: invalid JSON .*delete .*\.mix-work"):
        _mix(root, components, out="run", shard=4, buffer_mb=SMALL_BUFFER_MB)


def test_killed_first_pass_reruns_to_identical_shards_and_new_inputs_start_over(corpus, monkeypatch):
    root, components, _, _ = corpus
    reference = _mix(root, components, out="ref", buffer_mb=SMALL_BUFFER_MB)
    real = Packer.add
    seen = []

    def dies(self, tokens):
        if len(seen) == 30:
            raise Killed("killed in pass 1")
        seen.append(1)
        return real(self, tokens)

    monkeypatch.setattr(Packer, "add", dies)
    with pytest.raises(Killed):
        _mix(root, components, out="run", buffer_mb=SMALL_BUFFER_MB)
    assert list((root / "run" / ".mix-work").glob("run-*.bin"))  # some runs were written
    monkeypatch.setattr(Packer, "add", real)
    again = _mix(root, components, out="run", buffer_mb=SMALL_BUFFER_MB)
    assert again["shards"] == reference["shards"]

    # Work state left by a killed run with other settings is discarded, never mixed in.
    monkeypatch.setattr(mix_build, "write_shard", lambda *a: (_ for _ in ()).throw(Killed("x")))
    with pytest.raises(Killed):
        _mix(root, components, out="run", seed=99, buffer_mb=SMALL_BUFFER_MB)
    monkeypatch.undo()
    other = _mix(root, components, out="run", seed=8, buffer_mb=SMALL_BUFFER_MB)
    fresh = _mix(root, components, out="fresh", seed=8, buffer_mb=SMALL_BUFFER_MB)
    assert other["shards"] == fresh["shards"]


def test_rerun_clears_stale_shards_and_refuses_bad_input(corpus):
    root, components, _, _ = corpus
    first = _mix(root, components, shard=3)
    second = _mix(root, components, shard=50)
    assert len(first["shards"]) > len(second["shards"])
    assert len(list((root / "shards").glob("shard-*.tkds"))) == len(second["shards"])
    with pytest.raises(ValueError, match=r"web/part-\d.parquet: token \d+ >= vocab_size 100"):
        build_mix(components, root / "small", CTX, EOS, 100, 10, 1, 1)
    with pytest.raises(ValueError, match="tokenizer has 40000 tokens, more than the shards' vocab_size 3000"):
        build_mix(components, root / "x", CTX, EOS, VOCAB, 10, 1, 1, tokenizer_vocab_size=40000)

    # A mix too small for one sequence is a config error, not an empty shard set.
    tiny = [{**components[0], "budget": 5}]
    with pytest.raises(ValueError, match=r"6 tokens \(EOS included\) do not fill one sequence"):
        _mix(root, tiny, out="tiny")

    # A token part whose document index disagrees with its token lists is refused by name.
    bad = root / "tokens" / "bad" / "part-0.parquet"
    bad.parent.mkdir(parents=True)
    rows = [{"id": "a", "tokens": [5, 6, 7], "n_tokens": 2}]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), bad)
    with pytest.raises(ValueError, match=r"bad/part-0.parquet: row group 0: n_tokens disagrees"):
        _mix(root, [{"name": "bad", "source": "bad", "token_paths": [bad], "budget": 10}], out="bad")
