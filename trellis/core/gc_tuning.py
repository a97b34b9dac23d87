"""The cyclic garbage collector set for a rule job: a short process that imports a great deal.

A model job imports torch, transformers, TRL, LitGPT, lm-eval or bfcl-eval: some hundreds of
thousands of long-lived objects (modules, classes, functions). At CPython's default thresholds
(700, 10, 10) the collector walks them again and again while they load, and once more at exit,
while the interpreter shuts down, although nothing among them is garbage. On the demo's evaluate
job (2 cores, CPython 3.11) that was about 7 of its 32 CPU-seconds; over the demo's 102 jobs,
about an eighth of their CPU time (728 CPU-seconds before, 637-648 after). What a job computes
does not change: the collector only decides when unreachable reference cycles are freed.
"""

from __future__ import annotations

import atexit
import gc

# Allocations (net of deallocations) between two collections of the youngest generation: 700 by
# default. Unreachable cycles are still freed, in batches of at most this many container objects
# (a few MB): nothing a long study job would notice, and the collections that walk the whole
# heap come a hundred times less often.
YOUNG_GENERATION_THRESHOLD = 100_000


def tune_gc() -> None:
    """Fewer collections from here on, and none over the whole heap at exit.

    Call it first in a job, before the heavy imports. At exit every object left is frozen (moved
    to the collector's permanent generation, ``gc.freeze``) so the interpreter's shutdown does not
    walk them; the operating system takes the memory back. Exit handlers, buffered streams'
    flushes and ``weakref.finalize`` callbacks (temporary directories) run as before; only
    objects still caught in reference cycles at exit are not finalized, which CPython never
    promised anyway. Calling it again changes nothing.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
