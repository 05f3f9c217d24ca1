"""What a long-running process of ours sets in the interpreter, once, at start-up: the Celery app
(``workers.app``, before its pool forks) and the ``digest`` command (the demo and ``serve`` run
their work in-process).

The cyclic garbage collector: CPython (3.11 to 3.13) runs a young-generation pass every 700
allocations of container objects, and a full pass whenever the survivors grow by a quarter. A worker
parses tens of thousands of filter lines when it starts (every one kept, cached) and builds a pick,
a recipient and their lists per reader: at 700 a pass, a cold 100,000-reader run spends a third of
its time in the collector walking what stays alive (``python -m bench matching --arxiv-only``: compose's
matching 3.2 s at 700, 2.1 s at 10,000; docs/benchmarks.md). Our objects seldom form cycles, so a
pass every 10,000 allocations frees the same memory, a little later: at most 10,000 young objects
wait for it. (CPython 3.14's incremental collector reads only the first two numbers.)
"""

from __future__ import annotations

import gc

#: (young, middle, old): a young pass every 10,000 container allocations; the others as CPython's default
GC_THRESHOLDS = (10_000, 10, 10)
#: the interpreter's own, as this module found them (before :func:`tune_collector`): what the bench compares with
INTERPRETER_THRESHOLDS = gc.get_threshold()


def tune_collector() -> None:
    """Set :data:`GC_THRESHOLDS` (idempotent; a forked pool process inherits it)."""
    gc.set_threshold(*GC_THRESHOLDS)
