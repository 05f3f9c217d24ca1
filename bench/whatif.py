"""The fixes the profiles point to, outside the files this benchmark may change, as monkeypatches.

NOT part of the product. ``apply()`` patches the running process so that the e2e stage (``python -m
bench e2e --what-if``) and ``python -m bench.profile_send N --what-if`` can show what each
proposed fix is worth before its owner makes it properly. Each patch keeps the function's contract;
see docs/benchmarks.md ("Profile findings") for the reasoning.

1. ``digest.ledger.record_sent``, two variants (``BENCH_WHAT_IF_LEDGER``):
   ``batched`` (default): sent rows recorded ``FLUSH_EVERY`` (20) at a time, one ``UPDATE … FROM
   unnest(…)`` and one multi-row INSERT of the items per flush, and before any other ledger write; a
   worker killed mid-batch can resend at most 20 digests (their SMTP accept not yet recorded).
   ``async``: per message as now, but the items in one multi-row INSERT and ``SET LOCAL
   synchronous_commit = off``: the commit no longer waits for the WAL flush. A crashed worker loses
   nothing; only a crash of the database server itself could forget the last few hundred ms of sends.
2. ``digest.compose.Corpus``: one per distinct candidate set per process (keyed by the papers' text and
   upvotes), instead of re-tokenising the same day's papers for every batch of 100.
3. ``digest.emails.PaperBlocks.get``: blocks kept per process (keyed by paper id and upvotes), not
   per batch.
4. ``digest.tokens._serializer`` and ``Settings.mail_from_address``: built once per secret / address
   (``parseaddr`` and itsdangerous' serializer construction ran per link and per message).
5. Optional, ``BENCH_WHAT_IF_BATCH=N``: ``digest.jobs.chunks`` cuts send batches of N rows (the
   per-batch queries, claim and SMTP connection are paid N/100 times less often).
"""

from __future__ import annotations

import functools

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _ledger()
    _corpus()
    _blocks()
    _tokens_and_settings()
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
    import os

    if os.environ.get("BENCH_WHAT_IF_LEDGER", "batched") == "batched":
        _ledger_batched()
    else:
        _ledger_async_commit()


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


def _ledger_async_commit() -> None:
    from sqlalchemy import insert, text, update

    from digest import deliver, ledger
    from digest.models import Delivery, DeliveryItem, DeliveryStatus

    def record_sent(session, delivery_id, subscriber_id, shown, mid, now) -> bool:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        moved = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.sending)
            .values(status=DeliveryStatus.sent, sent_at=now, message_id=mid, paper_count=len(shown), error=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved and shown:
            session.execute(
                insert(DeliveryItem),
                [
                    dict(delivery_id=delivery_id, paper_id=p.paper.id, subscriber_id=subscriber_id, position=i, matched_filter=p.matched)
                    for i, p in enumerate(shown)
                ],
            )
        session.commit()
        return bool(moved)

    ledger.record_sent = record_sent
    deliver.record_sent = record_sent


def _corpus() -> None:
    from digest import compose, topics

    cache: dict = {}

    def corpus(papers):
        key = tuple(papers)  # PaperText is frozen: text, authors, org and upvotes
        found = cache.get(key)
        if found is None:
            if len(cache) > 16:
                cache.clear()
            found = cache[key] = topics.Corpus(papers)
        return found

    compose.Corpus = corpus


def _blocks() -> None:
    from digest import emails

    shared: dict = {}
    original = emails.PaperBlocks.get

    def get(self, paper):
        key = (paper.id, paper.upvotes, paper.updated_at)
        block = shared.get(key)
        if block is None:
            if len(shared) > 5000:
                shared.clear()
            block = shared[key] = original(self, paper)
        return block

    emails.PaperBlocks.get = get


def _tokens_and_settings() -> None:
    from digest import config, tokens

    make = tokens._serializer
    serializers: dict = {}

    def serializer(settings, purpose):
        key = (settings.secret_key, purpose)
        found = serializers.get(key)
        if found is None:
            found = serializers[key] = make(settings, purpose)
        return found

    tokens._serializer = serializer
    original = config.Settings.mail_from_address.fget
    address = functools.lru_cache(maxsize=16)(lambda mail_from: original(_Stub(mail_from)))
    config.Settings.mail_from_address = property(lambda self: address(self.mail_from))


class _Stub:
    def __init__(self, mail_from: str) -> None:
        self.mail_from = mail_from
