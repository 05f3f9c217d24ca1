"""A send batch: claim ledger rows, compose their digests, render each, send all over one connection.

The ledger's state changes (claim, sent/skipped/failed/back to pending) live in
:mod:`digest.delivery.ledger`; this module decides them. A row is recorded as sent right after the
SMTP server accepted its message, so a crash mid-batch leaves the unsent rows to the next run and
never resends the sent ones. Transient trouble (a 4xx, a lost connection) puts rows back to
``pending`` (``SendReport.deferred``); a permanent 5xx for a recipient suppresses that subscriber,
keeping the reason. Composing costs the same few queries per batch whatever its size
(:func:`load_batch`).

With ``DIGEST_DOMAIN_RATE`` a batch is paced by recipient domain (:mod:`digest.delivery.pacing`):
a domain out of room waits, after the others went, if its turn is near, and a 4xx from a domain
holds it back; rows that cannot go yet are postponed (:func:`~digest.delivery.ledger.postpone`:
pending until a ``not_before``, no attempt counted). Without it, nothing of this runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import metrics
from digest.config import Settings
from digest.db import among, session_factory
from digest.delivery.compose import compose, load_filters
from digest.delivery.ledger import SentRecorder, claim, finish, postpone, suppress, waiting, write_items
from digest.delivery.pacing import DomainPacer, Pace, domain_of, pacer_for
from digest.mail.digest_email import DigestMailer, Reader, links_for, message_id
from digest.mail.transport import PermanentError, Transport, connection_trouble, make_transport
from digest.mail.verp import digest_sender
from digest.matching.profiles import decode_profiles
from digest.matching.select import FilterCache, Pick, Recipient
from digest.models import Delivery, DeliveryStatus, ReaderProfile, Subscriber, SubscriberState, sending_paused

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # ledger rows per send batch: one SMTP connection each
MAX_ATTEMPTS = 8  # a row refused with 4xx this many times is given up (failed, subscriber kept)
PACE_WAIT = 1.0  # pacing: a domain out of room this briefly is waited for, once the others went…
PACE_BUDGET = 30.0  # …for this long in all per batch (at most a quarter of DIGEST_CLAIM_TIMEOUT); else its rows are postponed


def chunks(ids: Sequence[int], size: int = BATCH_SIZE) -> Iterator[list[int]]:
    """``ids`` cut into send batches."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


# ---------------------------------------------------------------- reports


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    suppressed: int = 0
    deferred: list[int] = field(default_factory=list)
    not_before: datetime | None = None  # pacing: the last moment a deferred row waits for (no claim takes it before)
    previews: list = field(default_factory=list)  # dry run only: digest.delivery.run.Preview
    next_due: object = None  # dry run only, when no digest would be sent: digest.delivery.planning.NextDue
    already: int = 0  # dry run only: readers due by then whose digest of that period is in the ledger already
    confirmed: int = 0  # dry run only, when no digest would be sent and nobody is due later: active subscribers
    dry_run: bool = False

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.failed += other.failed
        self.suppressed += other.suppressed
        self.deferred += other.deferred
        self.wait_until(other.not_before)

    def wait_until(self, moment: datetime | None) -> None:
        if moment is not None and (self.not_before is None or moment > self.not_before):
            self.not_before = moment

    def line(self) -> str:
        if self.dry_run:
            would = sum(1 for p in self.previews if p.papers)
            return (
                f"dry run: {would} digest{'' if would == 1 else 's'} would be sent, "
                f"{len(self.previews) - would} skipped (nothing new); nothing was sent or written"
            )
        return (
            f"sent {self.sent}, skipped {self.skipped} (nothing new), failed {self.failed} "
            f"({self.suppressed} suppressed), deferred {len(self.deferred)}"
        )


# ---------------------------------------------------------------- composing a batch


@dataclass(frozen=True)
class Outgoing:
    """A claimed ledger row, with everything needed to render and send it."""

    delivery_id: int
    public_id: str
    subscriber_id: int
    subscriber_public_id: str
    active: bool
    period: str
    window: tuple[date, date]
    reader: Reader
    picks: list[Pick]

    @property
    def domain(self) -> str:
        return domain_of(self.reader.email)


def load_batch(session: Session, settings: Settings, ids: Sequence[int], filters: FilterCache | None = None) -> list[Outgoing]:
    """The rows ``ids`` with their subscribers, taste profiles (joined to the rows) and picks: a fixed
    number of queries whatever the batch size.

    Columns, not ORM entities: a batch only reads them, and building 200 tracked objects cost
    more than the query.
    """
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.public_id,
            Delivery.period,
            Delivery.window_start,
            Delivery.window_end,
            Subscriber.id,
            Subscriber.public_id,
            Subscriber.state,
            Subscriber.email,
            Subscriber.frequency,
            Subscriber.timezone,
            Subscriber.delivery_hour,
            ReaderProfile.profile,  # the reader's taste, if they voted: read with their row, no query of its own
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .outerjoin(ReaderProfile, ReaderProfile.subscriber_id == Subscriber.id)
        .where(among(session, Delivery.id, ids))
        .order_by(Delivery.scheduled_for, Delivery.id)  # a subscriber's older digest first
    ).all()
    texts = load_filters(session, {row[5] for row in rows})
    recipients = [(row[0], Recipient(row[5], texts[row[5]], row[3], row[4])) for row in rows]
    profiles = decode_profiles((row[5], row[12]) for row in rows)
    picks = compose(session, recipients, settings.digest_size, filters, profiles, settings.arxiv_size)
    return [
        Outgoing(
            delivery_id=delivery_id,
            public_id=public_id,
            subscriber_id=subscriber_id,
            subscriber_public_id=subscriber_public_id,
            active=state == SubscriberState.active,
            period=period,
            window=(start, end),
            reader=Reader(email, frequency.value, zone, hour, texts[subscriber_id]),
            picks=picks[delivery_id],
        )
        for delivery_id, public_id, period, start, end, subscriber_id, subscriber_public_id, state, email, frequency, zone, hour, _ in rows
    ]


# ---------------------------------------------------------------- sending


@dataclass
class Built:
    """One rendered digest, ready to go: its row, its bytes, the picks it shows, its Message-ID."""

    item: Outgoing
    data: bytes
    shown: list[Pick]
    message_id: str


@dataclass
class SendBatch:
    """One batch's state while it is sent: the rows still held (released to ``pending`` if the batch
    stops early), the outcome counts, and the subscribers refused for good a moment ago."""

    session: Session
    settings: Settings
    attempts: dict[int, int]  # claimed row -> attempts, this one included
    now: datetime
    pace: Pace | None = None  # DIGEST_DOMAIN_RATE's pacing of this batch; None: none
    report: SendReport = field(default_factory=SendReport)
    held: set[int] = field(default_factory=set)
    suppressed: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.held = set(self.attempts)

    def finish(self, ids: Sequence[int], **values) -> int:
        """Move rows we hold to their outcome; they are no longer ours to release."""
        self.held.difference_update(ids)
        return finish(self.session, ids, **values)

    def fail(self, delivery_id: int, error: str) -> None:
        self.report.failed += self.finish([delivery_id], status=DeliveryStatus.failed, error=error)

    def skip_empty(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Finish the rows with nothing to send (no new paper, or no longer subscribed); the rest."""
        empty = [o.delivery_id for o in outgoing if o.active and not o.picks]
        gone = [o.delivery_id for o in outgoing if not o.active]
        self.report.skipped += self.finish(empty, status=DeliveryStatus.skipped, paper_count=0)
        self.report.skipped += self.finish(gone, status=DeliveryStatus.skipped, error="no longer subscribed")
        return [o for o in outgoing if o.active and o.picks]

    def build(self, outgoing: Sequence[Outgoing], eight_bit: bool = False) -> list[Built]:
        """Render every message; a row whose message cannot be built fails, the batch goes on.
        ``eight_bit``: the transport takes 8-bit text (``Transport.eight_bit``)."""
        mailer = DigestMailer(self.settings, eight_bit=eight_bit)
        built = []
        for item in outgoing:
            links = links_for(self.settings, item.subscriber_public_id, item.public_id)
            try:
                rendered, shown = mailer.render(item.picks, item.reader, item.window, links)
                data = mailer.message(rendered, item.reader.email, item.public_id, links, self.now)
            except Exception as exc:  # a bad address or template
                log.exception("cannot build digest %s", item.delivery_id)
                self.fail(item.delivery_id, f"cannot build message: {exc}")
                continue
            built.append(Built(item, data, shown, message_id(self.settings, item.public_id)))
        return built

    def hold_back(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Pacing: rows for a domain still held back since it deferred mail wait for its hold to end
        (postponed, never built); the rest."""
        if self.pace is None or not outgoing:
            return list(outgoing)
        held = self.pace.hold_back([(o.delivery_id, o.domain) for o in outgoing])
        return [o for o in outgoing if o.delivery_id not in held]

    def flush(self) -> None:
        """Pacing: write the rows postponed so far (a statement per moment)."""
        for not_before, why, ids in self.pace.take_postponed() if self.pace is not None else ():
            self.held.difference_update(ids)
            self.report.deferred += postpone(self.session, ids, not_before, why)
            self.report.wait_until(not_before)

    def wanted(self, built: Built) -> bool:
        """Asked just before a message goes out: a second digest of an address refused a moment ago
        does not."""
        if built.item.subscriber_id in self.suppressed:
            self.fail(built.item.delivery_id, "address suppressed")
            return False
        return True

    def send(self, built: list[Built], transport: Transport) -> str | None:
        """Write what each message contains, then send them all and record each outcome.

        Returns why it stopped early (connection trouble) or None.
        """
        contents = [(b.item.delivery_id, b.item.subscriber_id, b.shown) for b in built]
        write_items(self.session, contents, rewrite=[i for i, _, _ in contents if self.attempts[i] > 1])
        with SentRecorder(self.session) as recorder:
            if self.pace is None:
                return self._send(built, transport, recorder, lambda i: self.wanted(built[i]))
            return self._send_paced(built, transport, recorder)

    def _send(self, built: list[Built], transport: Transport, recorder: SentRecorder, wanted: Callable[[int], bool]) -> str | None:
        senders = [digest_sender(self.settings, b.item.public_id) for b in built]  # VERP: a bounce names its digest
        messages = [([b.item.reader.email], b.data) for b in built]
        for index, exc in transport.send_each(senders, messages, wanted):
            stop = self._outcome(built[index], exc, recorder)
            if stop is not None:
                return stop
        return None

    def _send_paced(self, built: list[Built], transport: Transport, recorder: SentRecorder) -> str | None:
        """Send in passes over one connection: each pass sends every message whose domain has room
        and leaves the others. A domain whose room comes within PACE_WAIT, while the batch has
        waited less than PACE_BUDGET, is waited for and gets another pass; the others' rows are
        postponed to when their domain has room, and so are a domain's rows once it deferred mail."""
        waited, budget = 0.0, min(PACE_BUDGET, self.settings.claim_timeout / 4)
        while built:
            decided: dict[int, bool | None] = {}
            full: dict[str, float] = {}  # domains out of room in this pass: seconds until they have
            stop = self._send(built, transport, recorder, partial(self._paced, built, decided, full))
            if stop is not None:
                return stop
            later = [b for i, b in enumerate(built) if decided.get(i, True) is None]
            again, pause = self.pace.again([(b.item.delivery_id, b.item.domain) for b in later], full, min(PACE_WAIT, budget - waited))
            built = [b for b in later if b.item.delivery_id in again]
            if built:
                time.sleep(pause)
                waited += pause
        return None

    def _paced(self, built: list[Built], decided: dict[int, bool | None], full: dict[str, float], index: int) -> bool:
        """:meth:`wanted`, paced: None in ``decided`` for a message its domain has no room for yet."""
        if index not in decided:
            item = built[index].item
            decided[index] = self.wanted(built[index]) and self.pace.room(item.delivery_id, item.domain, full)
        return bool(decided[index])

    def _outcome(self, built: Built, exc: Exception | None, recorder: SentRecorder) -> str | None:
        item = built.item
        if exc is None:
            recorder.record(item.delivery_id, built.message_id, len(built.shown), self.now)
            self.held.discard(item.delivery_id)
            self.report.sent += 1
            if self.pace is not None:
                self.pace.accepted(item.domain)
        elif isinstance(exc, PermanentError) and not connection_trouble(exc):
            log.warning("digest %s refused for good, suppressing subscriber %s: %s", item.delivery_id, item.subscriber_id, exc)
            self.held.discard(item.delivery_id)
            suppress(self.session, item.delivery_id, item.subscriber_id, str(exc))
            self.suppressed.add(item.subscriber_id)
            self.report.failed += 1
            self.report.suppressed += 1
        elif connection_trouble(exc):
            log.warning("SMTP trouble (%s); %d rows deferred", exc, len(self.held))
            return str(exc)
        else:
            hold = {}
            if self.pace is not None:  # the domain deferred it: held back, its other rows too
                hold["not_before"] = until = self.pace.refused(item.domain)
                log.warning("%s deferred digest %s (%s): held back until %s", item.domain, item.delivery_id, exc, f"{until:%H:%M:%S}")
            if self.attempts[item.delivery_id] >= MAX_ATTEMPTS:
                self.fail(item.delivery_id, f"gave up after {MAX_ATTEMPTS} attempts: {exc}")
            else:
                self.finish([item.delivery_id], status=DeliveryStatus.pending, error=str(exc), **hold)
                self.report.deferred.append(item.delivery_id)
                self.report.wait_until(hold.get("not_before"))
        return None


def send_deliveries(
    settings: Settings, ids: Sequence[int], now: datetime, *, transport: Transport | None = None, pacer: DomainPacer | None = None
) -> SendReport:
    """Claim, compose, render and send the ledger rows ``ids`` over one transport connection.

    ``pacer``: DIGEST_DOMAIN_RATE's (:func:`~digest.delivery.pacing.pacer_for`) unless given. With
    one, rows of ``ids`` still waiting for their ``not_before`` are reported deferred, so that a
    retry of this batch comes back for them. While sending is paused it claims nothing and
    reports nothing: the rows stay as they are, for the planner to hand out again once resumed.
    """
    pacer = pacer or pacer_for(settings)
    started = time.perf_counter()
    with session_factory(settings)() as session:
        if (pause := sending_paused(session)) is not None:  # nothing claimed: the rows stay pending, untouched
            log.info("batch of %d not sent: %s", len(ids), pause.line())
            return SendReport()
        ids = sorted(set(ids))
        attempts = claim(session, settings, ids, now)
        early = waiting(session, [i for i in ids if i not in attempts], now) if pacer is not None and len(attempts) < len(ids) else {}
        if not attempts:
            return SendReport(deferred=sorted(early), not_before=max(early.values(), default=None))
        batch = SendBatch(session, settings, attempts, now, Pace(pacer, now) if pacer is not None else None)
        batch.report.deferred += sorted(early)
        batch.report.wait_until(max(early.values(), default=None))
        trouble: str | None = "sender stopped by an unexpected error"
        own_transport = transport is None
        transport = transport or make_transport(settings)
        try:
            outgoing = load_batch(session, settings, sorted(attempts))
            session.commit()
            due = batch.hold_back(batch.skip_empty(outgoing))
            trouble = batch.send(batch.build(due, bool(due) and transport.eight_bit()), transport)
        finally:
            batch.flush()  # pacing's postponed rows
            if batch.held:  # claimed, not finished: back to pending for a later run
                finish(session, sorted(batch.held), status=DeliveryStatus.pending, error=trouble)
                batch.report.deferred += sorted(batch.held)
            if own_transport:
                transport.close()
            report = batch.report  # counted even when the batch stopped on an error: these rows moved
            metrics.count_digests(sent=report.sent, skipped=report.skipped, failed=report.failed, deferred=len(report.deferred))
            metrics.observe_batch(time.perf_counter() - started)
    log.info("batch of %d: %s", len(ids), batch.report.line())
    return batch.report
