"""Logging for rule scripts: everything goes to the rule's log file and to stderr.

Progress bars (tqdm) write plain, line-per-update output when stderr is not a terminal, so the
log file stays readable.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | Path | None, name: str = "trellis") -> logging.Logger:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger(name)


def progress(iterable=None, **kwargs):
    """tqdm that prints a line every few seconds instead of redrawing when logging to a file."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.5 if interactive else 10.0)
    kwargs.setdefault("dynamic_ncols", interactive)
    kwargs.setdefault("ascii", not interactive)
    return tqdm(iterable, file=sys.stderr, **kwargs)
