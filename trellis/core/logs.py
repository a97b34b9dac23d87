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


class _LogLines:
    """A file-like sink that turns tqdm's output into log records (one per refresh)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.logger.info("%s", line)

    def flush(self) -> None:
        pass


def progress(
    iterable=None,
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    logger: logging.Logger | None = None,
    every_s: float | None = None,
    **kwargs,
):
    """A tqdm progress bar for long steps that reads well in a rule's log file.

    On a terminal it redraws in place on stderr as usual. Otherwise (a Snakemake job: stderr and
    the log file are files) every refresh, at most one per ``every_s`` seconds (default 10), is
    one log record through ``logger`` (default: the ``trellis`` logger), so the log file shows
    "desc: 40%|####      | 400/1000 [00:12<00:18, 33.1 docs/s]" lines between the job's
    read/wrote records.
    """
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    if interactive:
        return tqdm(
            iterable, desc=desc, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True, **kwargs
        )
    return tqdm(
        iterable,
        desc=desc,
        unit=unit,
        total=total,
        file=_LogLines(logger or logging.getLogger("trellis")),
        mininterval=10.0 if every_s is None else every_s,
        ascii=True,
        ncols=100,
        **kwargs,
    )
