"""The fixes the profiles point to, outside the files this benchmark may change, as monkeypatches.

NOT part of the product. ``apply()`` patches the running process so that the e2e stage (``python -m
bench e2e --what-if``) and ``python -m bench.profile_send N --what-if`` can show what each
proposed fix is worth before its owner makes it properly. Each patch keeps the function's contract;
see docs/benchmarks.md ("Profile findings") for the reasoning.

1. ``digest.ledger.SentLog.record``: sent rows recorded ``FLUSH_EVERY`` (20) at a time, one
   ``UPDATE … FROM unnest(…)`` per flush; a worker killed mid-batch can resend up to 20 digests
   (their SMTP accept not yet recorded). Not adopted: the product keeps one (asynchronous)
   autocommitted UPDATE per message.

The other proposals measured here first (the ``synchronous_commit`` variant of 1, the Corpus and
paper blocks kept per process, serializers and the sender built once) are now in the product.
2. Optional, ``BENCH_WHAT_IF_BATCH=N``: ``digest.jobs.chunks`` cuts send batches of N rows (the
   per-batch queries, claim and SMTP connection are paid N/100 times less often).
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _ledger()
    _batch_size()


def _batch_size() -> None:
    """``BENCH_WHAT_IF_BATCH=N``: send batches of N ledger rows instead of ``jobs.BATCH_SIZE``."""
    import os

    size = int(os.environ.get("BENCH_WHAT_IF_BATCH") or 0)
    if not size:
        return
    from digest import jobs

    original = jobs.chunks
    jobs.chunks = lambda ids, _size=None: original(ids, size)


FLUSH_EVERY = 20  # sent rows recorded together (batched ledger); at most this many resent after a worker crash


def _ledger() -> None:
    """``SentLog.record`` buffers; every ``FLUSH_EVERY`` records, and when the log closes, one
    ``UPDATE … FROM unnest(…)`` marks them all (the items are written per batch by the product)."""
    from sqlalchemy import text

    from digest import ledger

    statement = text(
        "UPDATE deliveries AS d SET status = 'sent', sent_at = :now, message_id = v.mid, paper_count = v.n, error = NULL "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:mids AS text[]), CAST(:ns AS int[])) AS v(id, mid, n) "
        "WHERE d.id = v.id AND d.status = 'sending'"
    )

    def flush(log) -> None:
        buffer = log.__dict__.pop("bench_buffer", [])
        if buffer:
            log.connection.execute(
                statement,
                {"now": buffer[0][3], "ids": [b[0] for b in buffer], "mids": [b[1] for b in buffer], "ns": [b[2] for b in buffer]},
            )

    def record(self, delivery_id, message_id, paper_count, now) -> bool:
        self.__dict__.setdefault("bench_buffer", []).append((delivery_id, message_id, paper_count, now))
        if len(self.bench_buffer) >= FLUSH_EVERY:
            flush(self)
        return True

    original_exit = ledger.SentLog.__exit__

    def exit_(self, *exc_info):
        try:
            flush(self)
        finally:
            original_exit(self, *exc_info)

    ledger.SentLog.record = record
    ledger.SentLog.__exit__ = exit_
