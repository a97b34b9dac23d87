import hashlib
import json
import struct

import numpy as np
import pytest

from trellis.tokens import tkds
from trellis.tokens.tkds import TKDSError, inspect_shard, read_shard, write_shard


def _seqs(n=5, ctx=8, vocab=100, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=(n, ctx), dtype=np.uint16)


def test_round_trip_and_byte_layout(tmp_path):
    seqs = _seqs()
    path = tmp_path / "shard-00000.tkds"
    digest = write_shard(path, seqs, vocab_size=100)
    raw = path.read_bytes()
    assert raw[:16] == struct.pack("<4sHHII", b"TKDS", 1, 8, 5, 100)
    assert len(raw) == 16 + 5 * 8 * 2
    assert np.array_equal(np.frombuffer(raw[16:], dtype="<u2").reshape(5, 8), seqs)
    assert digest == hashlib.sha256(raw).hexdigest()
    header, data = read_shard(path)
    assert (
        header.magic,
        header.version,
        header.context_length,
        header.sequence_count,
        header.vocab_size,
    ) == (b"TKDS", 1, 8, 5, 100)
    assert data.dtype == np.uint16 and np.array_equal(data, seqs)
    # the documented input/target mapping is a one-token shift within a sequence
    inputs, targets = data[:, :-1], data[:, 1:]
    assert np.array_equal(inputs[:, 1:], targets[:, :-1])


def test_reader_refuses_bad_magic(tmp_path):
    path = tmp_path / "bad.tkds"
    write_shard(path, _seqs(), 100)
    raw = bytearray(path.read_bytes())
    raw[:4] = b"NOPE"
    path.write_bytes(bytes(raw))
    with pytest.raises(TKDSError, match=r"bad.tkds: bad magic b'NOPE'"):
        read_shard(path)


def test_reader_refuses_unknown_version(tmp_path):
    path = tmp_path / "v2.tkds"
    write_shard(path, _seqs(), 100)
    raw = bytearray(path.read_bytes())
    raw[4:6] = struct.pack("<H", 2)
    path.write_bytes(bytes(raw))
    with pytest.raises(TKDSError, match="v2.tkds: unknown TKDS version 2"):
        read_shard(path)


def test_reader_refuses_truncated_and_oversized(tmp_path):
    path = tmp_path / "cut.tkds"
    write_shard(path, _seqs(), 100)
    full = path.read_bytes()
    path.write_bytes(full[:-3])
    with pytest.raises(TKDSError, match=r"cut.tkds: truncated file: 93 bytes, header promises 96"):
        read_shard(path)
    path.write_bytes(full + b"\x00\x00")
    with pytest.raises(TKDSError, match="cut.tkds: oversized file"):
        read_shard(path)
    path.write_bytes(full[:10])
    with pytest.raises(TKDSError, match="cut.tkds: truncated header"):
        read_shard(path)


def test_reader_refuses_token_out_of_vocab(tmp_path, monkeypatch):
    monkeypatch.setattr(tkds, "CHUNK_SEQUENCES", 2)  # exercise the chunked scan
    seqs = _seqs(n=7)
    path = tmp_path / "oov.tkds"
    write_shard(path, seqs, 100)
    raw = bytearray(path.read_bytes())
    at = 16 + 2 * (5 * 8 + 3)  # sequence 5, position 3
    raw[at : at + 2] = struct.pack("<H", 100)
    path.write_bytes(bytes(raw))
    with pytest.raises(TKDSError, match="oov.tkds: token 100 at sequence 5, position 3 is >= vocab_size 100"):
        read_shard(path)
    header, _ = read_shard(path, validate=False)  # structure alone is fine
    assert header.sequence_count == 7


def test_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        write_shard(tmp_path / "x.tkds", np.array([[1, 2, 100]], dtype=np.uint16), 100)
    with pytest.raises(ValueError, match="2-d"):
        write_shard(tmp_path / "x.tkds", np.arange(4, dtype=np.uint16), 100)
    assert not (tmp_path / "x.tkds").exists()


def test_inspect_and_cli_check_manifest(tmp_path, capsys):
    seqs = _seqs(n=3, ctx=4)
    seqs[0, 0], seqs[2, 3] = 1, 98
    path = tmp_path / "shard-00000.tkds"
    digest = write_shard(path, seqs, 99)
    info = inspect_shard(path)
    assert info["sequences"] == 3 and info["context_length"] == 4 and info["vocab_size"] == 99
    assert info["min_token"] == int(seqs.min()) and info["max_token"] == 98
    assert info["sha256"] == digest and info["magic"] == "TKDS"

    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "context_length": 4,
                "vocab_size": 99,
                "shards": [{"file": path.name, "sequences": 3, "sha256": digest}],
            }
        )
    )
    assert tkds.main(["inspect", str(path), "--manifest", str(manifest)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sha256_matches"] is True

    manifest.write_text(json.dumps({"shards": [{"file": path.name, "sequences": 3, "sha256": "0" * 64}]}))
    assert tkds.main(["inspect", str(path), "--manifest", str(manifest)]) == 1
    assert "does not match" in capsys.readouterr().err


def test_inspect_directory_checks_every_shard_and_the_manifest(tmp_path, capsys):
    shard_dir = tmp_path / "shards"
    entries = []
    for k in range(3):
        seqs = _seqs(n=4 + k, ctx=8, seed=k)
        name = f"shard-{k:05d}.tkds"
        entries.append({"file": name, "sequences": 4 + k, "sha256": write_shard(shard_dir / name, seqs, 100)})
    manifest = {"context_length": 8, "vocab_size": 100, "total_sequences": 15, "shards": entries}
    (shard_dir / "manifest.json").write_text(json.dumps(manifest))
    assert tkds.main(["inspect", str(shard_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["shards"], out["sequences"], out["tokens"], out["sha256_matches"]) == (3, 15, 120, True)

    (shard_dir / "shard-00009.tkds").write_bytes((shard_dir / "shard-00000.tkds").read_bytes())
    assert tkds.main(["inspect", str(shard_dir)]) == 1
    assert "not in the manifest: ['shard-00009.tkds']" in capsys.readouterr().err
    (shard_dir / "shard-00009.tkds").unlink()

    manifest["total_sequences"] = 16
    (shard_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TKDSError, match="total_sequences 16 but the shards hold 15"):
        tkds.inspect_directory(shard_dir)

    raw = bytearray((shard_dir / "shard-00001.tkds").read_bytes())
    raw[20] ^= 1  # one flipped bit in a token: still a valid shard, but not the one the manifest hashed
    (shard_dir / "shard-00001.tkds").write_bytes(bytes(raw))
    with pytest.raises(TKDSError, match="shard-00001.tkds: does not match .*sha256"):
        tkds.inspect_directory(shard_dir)
