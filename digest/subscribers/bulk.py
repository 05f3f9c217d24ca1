"""What an import writes, a chunk of checked rows at a time, in a few set-based statements.

``digest subscribers import`` (CSV) and ``import --full`` (the JSON lines of ``export --full``)
read and check their lines one by one, then hand :func:`write_chunk` a few hundred
:class:`Entry` at once. Per chunk: one query for the addresses already here, one for the
addresses remembered as ones that left (:class:`~digest.models.Suppression`), one
``INSERT … ON CONFLICT (email) DO NOTHING RETURNING id, email`` for the new subscribers (a row
a concurrent sign-up made first is "already present"), then one executemany each for their
filters, sign-up requests, votes and remembered opt-outs, and the confirmation quota of the
mailboxes to mail. The caller commits after each chunk.

The rules are those of the row-at-a-time import it replaces: an address already here is never
changed; an address that left (even one whose row was purged) is never brought back; a line
that repeats an address of an earlier line is "already present". That last rule needs to know
which addresses earlier chunks met that left no row here (those that left, and the opt-outs a
file carries): :class:`Seen` keeps them in a private temporary SQLite file, so memory stays
flat whatever the file's size.
"""

from __future__ import annotations

import enum
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db import among
from digest.delivery.schedule import DEFAULT_HOUR, next_slot
from digest.matching.profiles import refresh_profile
from digest.matching.similar import known_ids
from digest.models import (
    ConfirmationQuota,
    Frequency,
    SignupRequest,
    Subscriber,
    SubscriberState,
    Suppression,
    TopicFilter,
    UnsubscribeMethod,
    Vote,
    VoteSource,
    address_hash,
    new_public_id,
)
from digest.subscribers.addresses import mailbox_hash
from digest.subscribers.subscriptions import count_confirmation

CHUNK = 500  # rows per transaction on SQLite: its one writer is never held for long
CHUNK_POSTGRESQL = 2000  # on PostgreSQL, where an import locks only its own new rows: fewer round trips and commits


def chunk_for(database_url: str) -> int:
    """Rows per transaction of an import into this database."""
    return CHUNK_POSTGRESQL if database_url.startswith("postgresql") else CHUNK


LEFT_STATES = (SubscriberState.unsubscribed, SubscriberState.suppressed)


def dialect_insert(session: Session):
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]


@dataclass(slots=True)
class Request:
    """A sign-up waiting for its confirmation link (:class:`~digest.models.SignupRequest`)."""

    topics: str
    seeds: str
    frequency: Frequency
    timezone: str
    requested_at: datetime
    nonce: str | None = None  # None: a new one (every link mailed for an older one is dead)


@dataclass(slots=True)
class Signal:
    """A vote or a seed, by arXiv id: attached if this instance stores the paper."""

    arxiv_id: str
    vote: int
    source: VoteSource
    at: datetime


@dataclass(slots=True)
class Entry:
    """One checked line: the subscriber it becomes, or (``row=False``) only an opt-out to remember."""

    line: int
    email: str
    state: SubscriberState
    filters: Sequence[str] = ()
    frequency: Frequency = Frequency.daily
    timezone: str = "UTC"
    delivery_hour: int = DEFAULT_HOUR
    public_id: str | None = None  # None: a new one
    created_at: datetime | None = None  # None: now
    confirmed_at: datetime | None = None  # active: None means now
    unsubscribed_at: datetime | None = None
    suppressed_reason: str | None = None
    unsubscribe_method: UnsubscribeMethod | None = None
    request: Request | None = None
    mail: bool = False  # count a confirmation in the mailbox's quota and hand the id to be mailed
    signals: Sequence[Signal] = ()
    row: bool = True  # False: no subscriber row, only the address remembered as one that left
    remembered: str = ""  # the Suppression's reason, for a left state or row=False
    remembered_at: datetime | None = None  # since when (None: now)


class Outcome(enum.Enum):
    created = "created"
    present = "present"  # here already, or an earlier line of the file had it
    left = "left"  # remembered here as one that left: not brought back
    remembered = "remembered"  # row=False: its opt-out is remembered now (no row)


@dataclass
class ChunkResult:
    outcomes: list[tuple[Entry, Outcome]] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # ids to mail once committed
    attached: int = 0  # votes and seeds stored
    missing: list[str] = field(default_factory=list)  # arXiv ids of votes and seeds not stored here (one per signal)
    public_ids_taken: int = 0  # a carried public id already in use here: the row got a new one


class Seen:
    """The addresses earlier chunks met that left no subscriber row here, in a private temporary
    SQLite file (deleted when closed): a later line with one of them is "already present", as a
    line repeating an imported address is. Opened at the first such address."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None

    def add(self, emails: Iterable[str]) -> None:
        emails = [(e,) for e in emails]
        if not emails:
            return
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a temporary on-disk database of this connection only
            self._db.execute("CREATE TABLE seen (email TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", emails)

    def among(self, emails: Sequence[str]) -> set[str]:
        if self._db is None or not emails:
            return set()
        found: set[str] = set()
        for i in range(0, len(emails), 500):
            part = emails[i : i + 500]
            found.update(e for (e,) in self._db.execute(f"SELECT email FROM seen WHERE email IN ({','.join('?' * len(part))})", part))
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@lru_cache(maxsize=4096)
def _next_slot(frequency: str, tz: str, hour: int, now: datetime) -> datetime:
    return next_slot(frequency, tz, hour, after=now)


def write_chunk(session: Session, entries: Sequence[Entry], now: datetime, seen: Seen) -> ChunkResult:
    """Write ``entries`` (in file order) in a few statements; the caller commits."""
    result = ChunkResult()
    outcome: dict[int, Outcome] = {}  # index in entries -> outcome
    first: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.email in first:
            outcome[i] = Outcome.present  # an earlier line of this chunk has it
        else:
            first[e.email] = i
    for email in seen.among(list(first)):
        outcome[first.pop(email)] = Outcome.present  # an earlier chunk met it and left no row
    hashes = {address_hash(email): email for email in first}
    left = (
        {hashes[h] for h in session.scalars(select(Suppression.address_hash).where(among(session, Suppression.address_hash, list(hashes))))}
        if hashes
        else set()
    )
    # An address here is "present" even if it also left (an unsubscribed row). Only those that left
    # and the opt-outs a file carries (no row to insert) are looked up here: for the others, the
    # INSERT … ON CONFLICT DO NOTHING below says which were here already.
    look = left | {email for email, i in first.items() if not entries[i].row}
    for email in session.scalars(select(Subscriber.email).where(among(session, Subscriber.email, list(look)))) if look else ():
        outcome[first.pop(email)] = Outcome.present
    for email in left & first.keys():
        outcome[first.pop(email)] = Outcome.left
    fresh = sorted(first.values())  # indexes of the entries to write, in file order
    insert = dialect_insert(session)

    remember = [i for i in fresh if not entries[i].row]
    rows = [i for i in fresh if entries[i].row]
    suppressions = [_suppression(entries[i], now) for i in remember]
    for i in remember:
        outcome[i] = Outcome.remembered

    ids: dict[str, int] = {}
    if rows:
        wanted = [entries[i].public_id for i in rows if entries[i].public_id]
        taken = set(session.scalars(select(Subscriber.public_id).where(among(session, Subscriber.public_id, wanted)))) if wanted else set()
        values = []
        for i in rows:
            e = entries[i]
            public_id = e.public_id
            if not public_id or public_id in taken:
                result.public_ids_taken += bool(public_id)
                public_id = new_public_id()
            taken.add(public_id)  # a file that repeats one: the later row gets a new one
            active = e.state == SubscriberState.active
            values.append(
                {
                    "public_id": public_id,
                    "email": e.email,
                    "state": e.state,
                    "frequency": e.frequency,
                    "timezone": e.timezone,
                    "delivery_hour": e.delivery_hour,
                    "created_at": e.created_at or now,
                    "confirmed_at": (e.confirmed_at or now) if active else e.confirmed_at,
                    "unsubscribed_at": e.unsubscribed_at,
                    "suppressed_reason": e.suppressed_reason,
                    "unsubscribe_method": e.unsubscribe_method,
                    "next_due_at": _next_slot(e.frequency.value, e.timezone, e.delivery_hour, now) if active else None,
                }
            )
        ids = _insert_subscribers(session, values)
    created = [i for i in rows if entries[i].email in ids]
    for i in rows:
        outcome[i] = Outcome.created if entries[i].email in ids else Outcome.present  # not returned: a concurrent sign-up made it

    filters = [
        {"subscriber_id": ids[entries[i].email], "position": position, "text": text}
        for i in created
        for position, text in enumerate(entries[i].filters)
    ]
    if filters:
        _insert_filters(session, filters)
    requests = [
        {
            "subscriber_id": ids[entries[i].email],
            "nonce": entries[i].request.nonce or secrets.token_urlsafe(12),
            "topics": entries[i].request.topics,
            "seeds": entries[i].request.seeds,
            "frequency": entries[i].request.frequency,
            "timezone": entries[i].request.timezone,
            "requested_at": entries[i].request.requested_at,
        }
        for i in created
        if entries[i].request is not None
    ]
    if requests:
        session.execute(insert(SignupRequest.__table__), requests)
    suppressions += [_suppression(entries[i], now) for i in created if entries[i].state in LEFT_STATES or entries[i].remembered]
    if suppressions:
        session.execute(insert(Suppression.__table__).on_conflict_do_nothing(), suppressions)
    _signals(session, [(ids[entries[i].email], entries[i].signals) for i in created if entries[i].signals], now, result)
    result.to_confirm = _take_slots(session, [(ids[entries[i].email], entries[i].email) for i in created if entries[i].mail], now)

    seen.add(entries[i].email for i, o in outcome.items() if o in (Outcome.left, Outcome.remembered))
    result.outcomes = [(e, outcome[i]) for i, e in enumerate(entries)]
    return result


def chunk_done(session: Session, result: ChunkResult, report, commit_every: int | None, committed) -> None:
    """After a chunk of an import (plain or ``--full``): with ``commit_every``, commit it and hand
    ``committed`` the ids that need a confirmation now; without, keep them on the report (the
    caller's transaction goes on)."""
    if commit_every:
        session.commit()
        if committed is not None:
            committed(result.to_confirm)
        report.confirmations += len(result.to_confirm)
    else:
        report.to_confirm += result.to_confirm


def _suppression(e: Entry, now: datetime) -> dict:
    return {"address_hash": address_hash(e.email), "reason": e.remembered or e.state.value, "created_at": e.remembered_at or now}


_COLUMNS = (
    "public_id",
    "email",
    "state",
    "frequency",
    "timezone",
    "delivery_hour",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "suppressed_reason",
    "unsubscribe_method",
    "next_due_at",
)
_TYPES = ("text", "text", "text", "text", "text", "smallint", "timestamptz", "timestamptz", "timestamptz", "text", "text", "timestamptz")
# PostgreSQL: a chunk's rows as one array per column, in one statement (no temporary table, no
# per-row parameters); WITH ORDINALITY keeps the file's order, so ids follow it.
_UNNEST_SUBSCRIBERS = (
    f"INSERT INTO subscribers ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} "
    f"FROM unnest({', '.join(f'%b::{t}[]' for t in _TYPES)}) WITH ORDINALITY AS row({', '.join(_COLUMNS)}, n) ORDER BY n "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email"
)
_UNNEST_FILTERS = "INSERT INTO topic_filters (subscriber_id, position, text) SELECT * FROM unnest(%b::bigint[], %b::smallint[], %b::text[])"


def _raw(session: Session):
    """The psycopg connection under the session, in the session's transaction."""
    return session.connection().connection.dbapi_connection


def _text(value):
    return value.value if isinstance(value, enum.Enum) else value


def _insert_subscribers(session: Session, values: list[dict]) -> dict[str, int]:
    """``INSERT … ON CONFLICT (email) DO NOTHING RETURNING id, email``: the ids of the rows made
    (an address a concurrent sign-up made first is not among them)."""
    if session.get_bind().dialect.name != "postgresql":
        stmt = (
            sqlite.insert(Subscriber.__table__).on_conflict_do_nothing(index_elements=["email"]).returning(Subscriber.id, Subscriber.email)
        )
        return {email: sid for sid, email in session.execute(stmt, values)}
    with _raw(session).cursor(binary=True) as cursor:
        cursor.execute(_UNNEST_SUBSCRIBERS, [[_text(row[c]) for row in values] for c in _COLUMNS])
        return {email: sid for sid, email in cursor.fetchall()}


def _insert_filters(session: Session, rows: list[dict]) -> None:
    """The new subscribers' filter lines: one statement of arrays on PostgreSQL, an executemany elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(sqlite.insert(TopicFilter.__table__), rows)
        return
    with _raw(session).cursor(binary=True) as cursor:
        cursor.execute(_UNNEST_FILTERS, [[r["subscriber_id"] for r in rows], [r["position"] for r in rows], [r["text"] for r in rows]])


def _signals(session: Session, readers: list[tuple[int, Sequence[Signal]]], now: datetime, result: ChunkResult) -> None:
    """Votes and seeds of new subscribers, attached by arXiv id (one query for the chunk's papers),
    then each reader's profile fitted from them."""
    if not readers:
        return
    papers = known_ids(session, {s.arxiv_id for _, signals in readers for s in signals})
    rows = []
    voted = []
    for subscriber_id, signals in readers:
        by_paper: dict[int, dict] = {}
        for s in signals:
            paper_id = papers.get(s.arxiv_id)
            if paper_id is None:
                result.missing.append(s.arxiv_id)
                continue
            by_paper[paper_id] = {  # one row per reader and paper: the later signal wins, as a second vote does
                "subscriber_id": subscriber_id,
                "paper_id": paper_id,
                "vote": s.vote,
                "source": s.source,
                "created_at": s.at,
            }
        if by_paper:
            rows += by_paper.values()
            voted.append(subscriber_id)
    if rows:
        session.execute(dialect_insert(session)(Vote.__table__), rows)
        result.attached += len(rows)
    for subscriber_id in voted:
        refresh_profile(session, subscriber_id, now)


def _take_slots(session: Session, readers: list[tuple[int, str]], now: datetime) -> list[int]:
    """Count each reader's confirmation mail in their mailbox's quota (the rows made if missing,
    then locked: the same rule as a sign-up's, :func:`~digest.subscribers.subscriptions.count_confirmation`);
    the ids that may be mailed now. The others wait for their mailbox's next window."""
    if not readers:
        return []
    keys = {subscriber_id: mailbox_hash(email) for subscriber_id, email in readers}
    distinct = sorted(set(keys.values()))
    session.execute(
        dialect_insert(session)(ConfirmationQuota.__table__).on_conflict_do_nothing(),
        [{"mailbox_hash": key, "window_start": now, "sent": 0} for key in distinct],
    )
    quotas = {
        q.mailbox_hash: q
        for q in session.scalars(
            select(ConfirmationQuota)
            .where(among(session, ConfirmationQuota.mailbox_hash, distinct))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    return [subscriber_id for subscriber_id, _ in readers if count_confirmation(quotas[keys[subscriber_id]], subscriber_id, now)]
