"""The fixes the profiles point to, outside the files this benchmark may change, as monkeypatches.

NOT part of the product. ``apply()`` patches the running process so that the e2e stage (``python -m
bench e2e --what-if``) and ``python -m bench.profile_send N --what-if`` can show what each
proposed fix is worth before its owner makes it properly. Each patch keeps the function's contract;
see docs/benchmarks.md ("Profile findings") for the reasoning.

1. ``digest.ledger.record_sent``: sent rows recorded ``FLUSH_EVERY`` (20) at a time, one ``UPDATE …
   FROM unnest(…)`` and one multi-row INSERT of the items per flush, and before any other ledger
   write; a worker killed mid-batch can resend at most 20 digests (their SMTP accept not yet
   recorded). Not adopted: the product keeps one (asynchronous) commit per message.

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
    _ledger_batched()


def _ledger_batched() -> None:
    """Sent rows recorded ``FLUSH_EVERY`` at a time: one UPDATE … FROM unnest(…) and one INSERT."""
    from sqlalchemy import insert, text

    from digest import deliver, ledger
    from digest.models import DeliveryItem

    statement = text(
        "UPDATE deliveries AS d SET status = 'sent', sent_at = :now, message_id = v.mid, paper_count = v.n, error = NULL "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:mids AS text[]), CAST(:ns AS int[])) AS v(id, mid, n) "
        "WHERE d.id = v.id AND d.status = 'sending' RETURNING d.id"
    )

    def flush(session) -> None:
        buffer = session.info.pop("bench_sent", [])
        if not buffer:
            return
        now = buffer[0][4]
        moved = set(
            session.scalars(
                statement, {"now": now, "ids": [b[0] for b in buffer], "mids": [b[3] for b in buffer], "ns": [len(b[2]) for b in buffer]}
            )
        )
        items = [
            dict(delivery_id=d, paper_id=p.paper.id, subscriber_id=s, position=i, matched_filter=p.matched)
            for d, s, shown, _, _ in buffer
            if d in moved
            for i, p in enumerate(shown)
        ]
        if items:
            session.execute(insert(DeliveryItem), items)
        session.commit()

    def record_sent(session, delivery_id, subscriber_id, shown, mid, now) -> bool:
        session.info.setdefault("bench_sent", []).append((delivery_id, subscriber_id, list(shown), mid, now))
        if len(session.info["bench_sent"]) >= FLUSH_EVERY:
            flush(session)
        return True

    original_send_batch = deliver._send_batch

    def send_batch(session, *args, **kwargs):
        try:
            return original_send_batch(session, *args, **kwargs)
        finally:
            flush(session)

    original_finish = ledger.finish

    def finish(session, ids, **values):  # keep the order of writes: recorded sends first
        flush(session)
        return original_finish(session, ids, **values)

    ledger.record_sent = deliver.record_sent = record_sent
    ledger.finish = deliver.finish = finish
    deliver._send_batch = send_batch
