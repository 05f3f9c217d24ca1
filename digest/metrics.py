"""What the service did, counted where it happens, for ``/metrics`` (Prometheus' text format).

The counters and histograms of this module are incremented by the code that does the work: ingest
(:mod:`digest.papers.ingest`), planning and each send batch (:mod:`digest.delivery`), each SMTP
message (:mod:`digest.mail.transport`); once per batch where the event is per batch. The facts of
the database (subscribers by state, the ledger's queue, votes) are not kept here: ``/metrics``
reads them at scrape time (:mod:`digest.web.metrics`).

Several processes (gunicorn's workers, Celery's pool, a CLI run) each count their own share. With
``DIGEST_METRICS_DIR`` set, a directory that every process of the service can write, each process
writes its counts to files there (prometheus-client's multi-process mode) and a scrape adds up every
process's files, those of processes that have exited included: a counter is a total since the
directory was emptied. A file is named after its host and pid (``counter_<host>-<pid>.db``), so
containers that share the directory as a volume never write to one another's. Without it, a
process counts in memory and ``/metrics`` shows that process's counts alone: right for
``digest demo`` (one process), too little for anything else.

Metrics are created on their first use, not at import, so a process that never counts (``celery
inspect ping``, ``digest stats``) leaves no file behind.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from time import perf_counter
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import mark_process_dead

#: The variable naming the shared directory (parsed for start-up checks in :mod:`digest.config` too).
VARIABLE = "DIGEST_METRICS_DIR"
NAMESPACE = "digest"

#: This process's metrics when no directory is set (single-process mode).
REGISTRY = CollectorRegistry(auto_describe=True)

_HOST = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()) or "host"
_lock = threading.Lock()
_made: Metrics | None = None

T = TypeVar("T")


def directory() -> str | None:
    """The shared directory of multi-process mode, or None (this process counts in memory)."""
    folder = os.environ.get(VARIABLE) or None
    return folder if folder and os.path.isdir(folder) else None


def process_id() -> str:
    """This process's name in the files it writes: host and pid (no ``_``, the files' separator)."""
    return f"{_HOST}-{os.getpid()}"


@dataclass(frozen=True)
class Metrics:
    digests: Counter
    smtp_seconds: Histogram
    batch_seconds: Histogram
    ingest_runs: Counter
    ingest_papers: Counter
    rcpt_refused: Counter


def _make() -> Metrics:
    folder = directory()
    if folder is not None:
        # prometheus-client reads the directory from this variable when it opens a process's file,
        # and decides between memory and files by the value class metrics are made with
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        values.ValueClass = values.MultiProcessValue(process_identifier=process_id)
    options = {"namespace": NAMESPACE, "registry": REGISTRY}
    return Metrics(
        digests=Counter(
            "digests",
            "Ledger rows by outcome: planned (rows created), sent (accepted by the SMTP server), skipped (nothing new, or no "
            "longer subscribed), failed (refused for good, or given up), deferred (back to pending for a later try)",
            ["outcome"],
            **options,
        ),
        smtp_seconds=Histogram(
            "smtp_send_seconds",
            "Seconds from one message's start on the SMTP connection to the server's final reply (connecting included)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            **options,
        ),
        batch_seconds=Histogram(
            "batch_seconds",
            "Seconds a send batch took: claim, compose, render, send and record its rows",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            **options,
        ),
        ingest_runs=Counter(
            "ingest_runs",
            "Ingest runs by source and outcome: ok (stored, an ingest_runs row), unchanged (nothing new to fetch), failed",
            ["source", "outcome"],
            **options,
        ),
        ingest_papers=Counter(
            "ingest_papers",
            "Papers read by ingest runs that stored them, by source and outcome: new, updated, skipped (malformed)",
            ["source", "outcome"],
            **options,
        ),
        rcpt_refused=Counter(
            "bounce_rcpt_refused",
            "Recipients the bounce listener refused at RCPT (not of the bounce domain), every one: the database keeps "
            "at most 10 a minute as forged events",
            **options,
        ),
    )


def metrics() -> Metrics:
    """This process's metric objects, made on first use."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _make()
    return _made


def count_digests(**outcomes: int) -> None:
    """``count_digests(sent=90, skipped=10)``: what one batch (or one plan) did to the ledger."""
    counter = metrics().digests
    for outcome, n in outcomes.items():
        if n:
            counter.labels(outcome).inc(n)


def count_ingest(source: str, outcome: str, new: int = 0, updated: int = 0, skipped: int = 0) -> None:
    made = metrics()
    made.ingest_runs.labels(source, outcome).inc()
    for name, n in (("new", new), ("updated", updated), ("skipped", skipped)):
        if n:
            made.ingest_papers.labels(source, name).inc(n)


def count_refused_recipient() -> None:
    metrics().rcpt_refused.inc()


def observe_batch(seconds: float) -> None:
    metrics().batch_seconds.observe(seconds)


def timed(outcomes: Iterable[T], observe: Callable[[float], None] | None = None) -> Iterator[T]:
    """Each item of ``outcomes`` (an SMTP transport's ``send_each``) passed on, and the seconds the
    iterator spent producing it observed: the time spent on the wire, not the caller's between
    two items. The iterator is closed when this one is."""
    observe = observe or metrics().smtp_seconds.observe
    iterator = iter(outcomes)
    try:
        while True:
            start = perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            observe(perf_counter() - start)
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def process_exited(pid: int) -> None:
    """Bookkeeping when a process that counted exits (a gunicorn worker, a Celery pool process):
    its live gauges' files go (we keep none today; its counters stay, part of the totals)."""
    folder = directory()
    if folder is not None:
        mark_process_dead(f"{_HOST}-{pid}", folder)
