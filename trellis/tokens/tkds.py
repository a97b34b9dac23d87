"""TKDS v1: the pretraining shard format (fixed-length packed token sequences, no parsing).

Byte layout (all little-endian)::

    offset  size  field
    0       4     magic           b"TKDS"
    4       2     version         u16, = 1
    6       2     context_length  u16, tokens per sequence (L)
    8       4     sequence_count  u32 (N)
    12      4     vocab_size      u32, every token id is < vocab_size
    16      2*N*L token ids       u16, N sequences of L tokens, row-major (C order):
                                  sequence i occupies bytes [16 + 2*i*L, 16 + 2*(i+1)*L)

The header is ``struct.pack("<4sHHII", ...)``; the file size is exactly ``16 + 2*N*L`` bytes, so a
reader can memory-map the payload as a ``(N, L)`` uint16 array with no parsing.

Sequences are produced by packing: documents' tokens, each followed by EOS, concatenated and cut
into L-token pieces (a document may start in one sequence and continue in the next). For
next-token prediction, a sequence ``seq`` of length L maps to model inputs ``seq[:-1]`` and
targets ``seq[1:]`` (L-1 predictions per sequence); no position is padded or masked. Attention
crosses EOS boundaries (standard GPT/LLaMA packing).

``python -m trellis.tokens.tkds inspect SHARD [--manifest manifest.json]`` prints the header, sequence
count, min/max token and sha256, validating the whole file; with a manifest it also checks the
shard's sha256 against the manifest's entry. ``python -m trellis.tokens.tkds inspect DIR`` validates a
whole shard directory against its ``manifest.json``: every listed shard, no unlisted one, and the
manifest's totals. docs/tkds.md describes the format and the manifest in full.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trellis.core.io import atomic_path

MAGIC = b"TKDS"
VERSION = 1
HEADER = struct.Struct("<4sHHII")
HEADER_SIZE = HEADER.size  # 16
TOKEN_DTYPE = np.dtype("<u2")
# Validation and hashing read this many sequences at a time: bounded memory for any shard size.
CHUNK_SEQUENCES = 8192


class TKDSError(ValueError):
    """A shard that is not a valid TKDS v1 file; the message names the file and the problem."""


@dataclass(frozen=True)
class Header:
    magic: bytes
    version: int
    context_length: int
    sequence_count: int
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["magic"] = self.magic.decode("ascii", "replace")
        return d


def write_shard(path: str | os.PathLike, sequences: np.ndarray, vocab_size: int) -> str:
    """Write ``sequences`` (N, L) as a TKDS v1 shard, atomically; return its sha256 (hex).

    Refuses token ids >= vocab_size and shapes the header cannot hold, so a bad shard is never
    written in the first place.
    """
    seqs = np.asarray(sequences)
    if seqs.ndim != 2:
        raise ValueError(f"{path}: sequences must be 2-d (N, context_length), got shape {seqs.shape}")
    n, ctx = seqs.shape
    if not 1 <= ctx <= 0xFFFF:
        raise ValueError(f"{path}: context_length {ctx} does not fit TKDS's u16 field")
    if n > 0xFFFFFFFF:
        raise ValueError(f"{path}: {n} sequences do not fit TKDS's u32 count")
    if not 1 <= vocab_size <= 65536:
        raise ValueError(f"{path}: vocab_size {vocab_size} cannot be stored as uint16 token ids")
    if seqs.size and (int(seqs.min()) < 0 or int(seqs.max()) >= vocab_size):
        raise ValueError(
            f"{path}: token ids span [{int(seqs.min())}, {int(seqs.max())}], outside [0, {vocab_size})"
        )
    payload = np.ascontiguousarray(seqs, dtype=TOKEN_DTYPE)
    header = HEADER.pack(MAGIC, VERSION, ctx, n, vocab_size)
    digest = hashlib.sha256(header)
    digest.update(memoryview(payload).cast("B"))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        f.write(memoryview(payload).cast("B"))
    return digest.hexdigest()


def read_header(path: str | os.PathLike) -> Header:
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise TKDSError(f"{path}: truncated header ({len(raw)} of {HEADER_SIZE} bytes); not a TKDS shard")
    header = Header(*HEADER.unpack(raw))
    if header.magic != MAGIC:
        raise TKDSError(f"{path}: bad magic {header.magic!r}, expected {MAGIC!r}; not a TKDS shard")
    if header.version != VERSION:
        raise TKDSError(
            f"{path}: unknown TKDS version {header.version}; this reader understands version {VERSION}"
        )
    if header.context_length == 0:
        raise TKDSError(f"{path}: context_length 0 in header")
    return header


def read_shard(path: str | os.PathLike, validate: bool = True) -> tuple[Header, np.memmap]:
    """Header and a read-only (N, L) uint16 memmap of the sequences.

    Always checks magic, version and the exact file size; with ``validate`` also scans every token
    (chunk by chunk) and refuses one >= vocab_size.
    """
    path = Path(path)
    header = read_header(path)
    expected = HEADER_SIZE + header.sequence_count * header.context_length * TOKEN_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        kind = "truncated" if size < expected else "oversized"
        raise TKDSError(
            f"{path}: {kind} file: {size} bytes, header promises {expected} "
            f"(16 + {header.sequence_count} sequences x {header.context_length} tokens x 2)"
        )
    shape = (header.sequence_count, header.context_length)
    if header.sequence_count == 0:
        data = np.zeros(shape, dtype=TOKEN_DTYPE)  # np.memmap cannot map zero bytes
    else:
        data = np.memmap(path, dtype=TOKEN_DTYPE, mode="r", offset=HEADER_SIZE, shape=shape)
    if validate:
        for start in range(0, header.sequence_count, CHUNK_SEQUENCES):
            chunk = data[start : start + CHUNK_SEQUENCES]
            top = int(chunk.max())
            if top >= header.vocab_size:
                seq, pos = np.argwhere(chunk >= header.vocab_size)[0]
                raise TKDSError(
                    f"{path}: token {int(chunk[seq, pos])} at sequence {start + int(seq)}, position "
                    f"{int(pos)} "
                    f"is >= vocab_size {header.vocab_size}"
                )
    return header, data


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def inspect_shard(path: str | os.PathLike) -> dict[str, Any]:
    """Validate a shard fully and summarize it: header fields, min/max token, sha256."""
    header, data = read_shard(path, validate=True)
    lo, hi = None, None
    for start in range(0, header.sequence_count, CHUNK_SEQUENCES):
        chunk = data[start : start + CHUNK_SEQUENCES]
        lo = int(chunk.min()) if lo is None else min(lo, int(chunk.min()))
        hi = int(chunk.max()) if hi is None else max(hi, int(chunk.max()))
    return {
        "file": str(path),
        **header.to_dict(),
        "sequences": header.sequence_count,
        "tokens": header.sequence_count * header.context_length,
        "min_token": lo,
        "max_token": hi,
        "bytes": Path(path).stat().st_size,
        "sha256": sha256_file(path),
    }


def check_against_manifest(info: dict[str, Any], manifest_path: str | os.PathLike) -> dict[str, Any]:
    """Compare an inspected shard with its manifest entry (sha256, sequence count, header fields)."""
    manifest = json.loads(Path(manifest_path).read_text())
    name = Path(info["file"]).name
    entry = next((s for s in manifest.get("shards", []) if s.get("file") == name), None)
    if entry is None:
        raise TKDSError(f"{manifest_path}: no shard entry named {name}")
    problems = []
    if entry.get("sha256") != info["sha256"]:
        problems.append(f"sha256 {info['sha256']} != manifest {entry.get('sha256')}")
    if entry.get("sequences") != info["sequences"]:
        problems.append(f"sequences {info['sequences']} != manifest {entry.get('sequences')}")
    for key in ("context_length", "vocab_size"):
        if key in manifest and manifest[key] != info[key]:
            problems.append(f"{key} {info[key]} != manifest {manifest[key]}")
    if problems:
        raise TKDSError(f"{info['file']}: does not match {manifest_path}: " + "; ".join(problems))
    return {"manifest": str(manifest_path), "sha256_matches": True}


def inspect_directory(shard_dir: str | os.PathLike) -> dict[str, Any]:
    """Validate every shard of a directory against its manifest; summarize the set."""
    shard_dir = Path(shard_dir)
    manifest_path = shard_dir / "manifest.json"
    if not manifest_path.is_file():
        raise TKDSError(f"{shard_dir}: no manifest.json (not a complete shard directory)")
    manifest = json.loads(manifest_path.read_text())
    listed = [s.get("file") for s in manifest.get("shards", [])]
    unlisted = sorted(p.name for p in shard_dir.glob("*.tkds") if p.name not in listed)
    if unlisted:
        raise TKDSError(f"{shard_dir}: shard files not in the manifest: {unlisted}")
    lo, hi, sequences = None, None, 0
    for name in listed:
        info = inspect_shard(shard_dir / name)
        check_against_manifest(info, manifest_path)
        sequences += info["sequences"]
        lo = info["min_token"] if lo is None else min(lo, info["min_token"])
        hi = info["max_token"] if hi is None else max(hi, info["max_token"])
    if "total_sequences" in manifest and manifest["total_sequences"] != sequences:
        raise TKDSError(
            f"{manifest_path}: total_sequences {manifest['total_sequences']} but the shards hold {sequences}"
        )
    return {
        "directory": str(shard_dir),
        "shards": len(listed),
        "sequences": sequences,
        "tokens": sequences * int(manifest.get("context_length", 0)),
        "context_length": manifest.get("context_length"),
        "vocab_size": manifest.get("vocab_size"),
        "min_token": lo,
        "max_token": hi,
        "sha256_matches": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trellis.tokens.tkds", description="TKDS v1 shard tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "inspect", help="validate a shard (or a shard directory) and print its header, token range and sha256"
    )
    p.add_argument("shard", help="a .tkds file, or a directory with manifest.json")
    p.add_argument("--manifest", help="manifest.json to check the shard's sha256 against")
    args = parser.parse_args(argv)
    try:
        if Path(args.shard).is_dir():
            info = inspect_directory(args.shard)
        else:
            info = inspect_shard(args.shard)
            if args.manifest:
                info.update(check_against_manifest(info, args.manifest))
    except (TKDSError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
