"""An instance's whole list, moved with what each person agreed to: ``digest subscribers export --full``
and ``import --full``.

The format is JSON lines (UTF-8): a first line naming the format and its version, then one object
per subscriber, then one per address remembered as one that left. JSON lines rather than CSV
because a subscriber carries lists (filters, seed papers, votes, a waiting sign-up with its own
filters and seeds) that a CSV cell would have to encode in a format of its own; each line stands
alone, so both commands stream the file (memory does not grow with it) and a bad line is
reported by its number while the others are imported.

    {"format": "paper-digest subscribers", "version": 1, "exported_at": "2026-12-07T05:00:00+00:00"}
    {"email": "ann@example.org", "public_id": "…", "state": "active", "created_at": "…", "confirmed_at": "…",
     "unsubscribed_at": null, "suppressed_reason": null, "unsubscribe_method": null, "remembered": null,
     "frequency": "daily", "timezone": "Europe/Berlin", "delivery_hour": 7, "filters": ["diffusion"],
     "seeds": [{"paper": "2611.00001", "at": "…"}], "votes": [{"paper": "2611.00002", "vote": -1, "at": "…"}],
     "request": null}
    {"left": "<SHA-256 of an address>", "reason": "unsubscribed", "at": "…"}

``request`` is the sign-up waiting for its confirmation link (a pending subscriber's, or a new
sign-up of one who had left): its nonce, filters, seeds, frequency, time zone and when.
``remembered`` (``{"reason": "unsubscribed", "at": "…"}``) says that the address is remembered as
one that left, why and since when; the ``left`` lines are every such address, those whose row the
purge deleted too (only a hash is kept of them).

What ``import --full`` does with each state:

- **active** stays active (they confirmed where the list comes from), with its dates, filters,
  delivery hour, seed papers and votes; its next digest is its next slot from now.
- **pending** stays pending with its waiting sign-up, and is mailed nothing: they never confirmed,
  and an instance they never heard of does not write to them unless the operator asks
  (``--mail-pending``: each is mailed a confirmation link, within the mailbox quota). Unmailed,
  the hourly purge forgets them a week after their sign-up, as it would have where they come from.
- **unsubscribed** and **suppressed** are stored as they are and remembered as ones that left:
  never mailed, never brought back by a later import, only by their own new confirmation. Even a
  line that fails its checks keeps that: its address is remembered, and the line is reported.

An address already here is left exactly as it is, and one remembered here as one that left is
not brought back, whatever the file says (the rules of every import). Votes and seed papers
attach by arXiv id to the papers this instance stores; those it lacks are counted and named in
the report (ingest those days first, e.g. ``digest ingest --days 30``, to keep them all). Public
ids travel (so links already mailed keep working where the secret key is the same), unless one
is taken here. Fields the import does not know are listed in the report, never dropped silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import among
from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone
from digest.matching.topics import TopicsError, parse_topics, shown_errors
from digest.models import (
    Frequency,
    Paper,
    SignupRequest,
    Subscriber,
    SubscriberState,
    Suppression,
    TopicFilter,
    UnsubscribeMethod,
    Vote,
    VoteSource,
    address_hash,
)
from digest.subscribers.addresses import normalize_email
from digest.subscribers.bulk import CHUNK, LEFT_STATES, Entry, Outcome, Request, Seen, Signal, chunk_done, dialect_insert, write_chunk
from digest.subscribers.checks import Checker

FORMAT = "paper-digest subscribers"
VERSION = 1
MAX_LINE = 1 << 20  # characters of one line (a subscriber with 20 filters and 1,000 votes takes ~100 KB)
MISSING_SHOWN = 20  # arXiv ids of papers not stored here named in the report; the rest are counted
SUBSCRIBER_FIELDS = (
    "email",
    "public_id",
    "state",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "suppressed_reason",
    "unsubscribe_method",
    "remembered",
    "frequency",
    "timezone",
    "delivery_hour",
    "filters",
    "seeds",
    "votes",
    "request",
)
LEFT_FIELDS = ("left", "reason", "at")
REQUEST_FIELDS = ("nonce", "filters", "seeds", "frequency", "timezone", "requested_at")
_HASH = re.compile(r"[0-9a-f]{64}")
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


# ---------------------------------------------------------------- export


@dataclass
class ExportCounts:
    subscribers: int = 0
    left: int = 0


def export_full(session: Session, stream: IO[str], now: datetime, page: int = 1000) -> ExportCounts:
    """Write the whole list (see the module's docstring), a page of subscribers at a time (keyset
    on id, five queries a page): memory does not grow with the list."""
    counts = ExportCounts()
    stream.write(json.dumps({"format": FORMAT, "version": VERSION, "exported_at": _iso(now)}) + "\n")
    last = 0
    while True:
        subscribers = session.scalars(select(Subscriber).where(Subscriber.id > last).order_by(Subscriber.id).limit(page)).all()
        if not subscribers:
            break
        ids = [s.id for s in subscribers]
        filters: dict[int, list[str]] = {}
        for subscriber_id, text in session.execute(
            select(TopicFilter.subscriber_id, TopicFilter.text)
            .where(among(session, TopicFilter.subscriber_id, ids))
            .order_by(TopicFilter.subscriber_id, TopicFilter.position)
        ):
            filters.setdefault(subscriber_id, []).append(text)
        requests = {
            r.subscriber_id: r for r in session.scalars(select(SignupRequest).where(among(session, SignupRequest.subscriber_id, ids)))
        }
        signals: dict[int, dict[str, list]] = {}
        for row in session.execute(
            select(Vote.subscriber_id, Paper.arxiv_id, Vote.vote, Vote.source, Vote.created_at)
            .join(Paper, Paper.id == Vote.paper_id)
            .where(among(session, Vote.subscriber_id, ids))
            .order_by(Vote.subscriber_id, Vote.created_at, Paper.arxiv_id)  # not paper ids: another instance numbers them otherwise
        ):
            mine = signals.setdefault(row.subscriber_id, {"seeds": [], "votes": []})
            if row.source == VoteSource.seed:
                mine["seeds"].append({"paper": row.arxiv_id, "at": _iso(row.created_at)})
            else:
                mine["votes"].append({"paper": row.arxiv_id, "vote": row.vote, "at": _iso(row.created_at)})
        hashes = {address_hash(s.email): s.id for s in subscribers}
        remembered = {
            hashes[h]: {"reason": reason, "at": _iso(at)}
            for h, reason, at in session.execute(
                select(Suppression.address_hash, Suppression.reason, Suppression.created_at).where(
                    among(session, Suppression.address_hash, list(hashes))
                )
            )
        }
        for s in subscribers:
            request = requests.get(s.id)
            mine = signals.get(s.id, {"seeds": [], "votes": []})
            line = {
                "email": s.email,
                "public_id": s.public_id,
                "state": s.state.value,
                "created_at": _iso(s.created_at),
                "confirmed_at": _iso(s.confirmed_at),
                "unsubscribed_at": _iso(s.unsubscribed_at),
                "suppressed_reason": s.suppressed_reason,
                "unsubscribe_method": s.unsubscribe_method.value if s.unsubscribe_method else None,
                "remembered": remembered.get(s.id),
                "frequency": s.frequency.value,
                "timezone": s.timezone,
                "delivery_hour": s.delivery_hour,
                "filters": filters.get(s.id, []),
                "seeds": mine["seeds"],
                "votes": mine["votes"],
                "request": None
                if request is None
                else {
                    "nonce": request.nonce,
                    "filters": [t for t in request.topics.split("\n") if t],
                    "seeds": request.seeds.split(),
                    "frequency": request.frequency.value,
                    "timezone": request.timezone,
                    "requested_at": _iso(request.requested_at),
                },
            }
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")
            counts.subscribers += 1
        last = ids[-1]
        session.expunge_all()
    after = ""
    while True:
        rows = session.execute(
            select(Suppression.address_hash, Suppression.reason, Suppression.created_at)
            .where(Suppression.address_hash > after)
            .order_by(Suppression.address_hash)
            .limit(5 * page)
        ).all()
        if not rows:
            break
        for h, reason, at in rows:
            stream.write(json.dumps({"left": h, "reason": reason, "at": _iso(at)}) + "\n")
            counts.left += 1
        after = rows[-1][0]
    return counts


# ---------------------------------------------------------------- import


@dataclass
class FullReport:
    created: Counter = field(default_factory=Counter)  # state value -> rows imported
    unchanged: int = 0
    left: int = 0
    errors: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # without commit_every: ids to mail once the caller commits
    confirmations: int = 0  # with commit_every: ids handed to `committed`
    stopped: str | None = None
    mail_pending: bool = False
    opted_out: int = 0  # a line that failed its checks, whose opt-out is remembered all the same
    remembered_added: int = 0  # "left" lines new here
    remembered_known: int = 0  # "left" lines remembered here already
    attached: int = 0  # votes and seeds stored
    missing: int = 0  # votes and seeds on papers not stored here
    missing_papers: list[str] = field(default_factory=list)  # the first MISSING_SHOWN of those papers
    missing_more: set[str] = field(default_factory=set, repr=False)  # (bounded) to count distinct papers past those
    public_ids_taken: int = 0
    ignored: Counter = field(default_factory=Counter)  # field -> lines that had it
    lines_read: int = 0

    @property
    def imported(self) -> int:
        return sum(self.created.values())

    def lines(self) -> list[str]:
        states = ", ".join(f"{s.value} {self.created[s.value]}" for s in SubscriberState)
        out = [
            f"imported {self.imported} ({states}), already present {self.unchanged}, "
            f"left before (not re-subscribed) {self.left}, rejected {len(self.errors)}"
        ]
        if self.created[SubscriberState.pending.value]:
            mailed = (
                "each mailed a confirmation link" if self.mail_pending else "none mailed (--mail-pending mails them a confirmation link)"
            )
            out.append(f"  pending: kept pending, {mailed}")
        out.append(
            f"addresses remembered as ones that left: {self.remembered_added} added, {self.remembered_known} remembered here already"
            + (f", {self.opted_out} more from lines rejected below" if self.opted_out else "")
        )
        out.append(f"votes and seeds attached {self.attached}")
        if self.missing:
            papers = len(self.missing_papers) + len(self.missing_more)
            named = ", ".join(self.missing_papers) + (", …" if self.missing_more else "")
            out.append(
                f"  not attached {self.missing}: on {papers} paper{'' if papers == 1 else 's'} this instance does not store ({named}); "
                "ingest those days first (digest ingest --days N) to keep them"
            )
        if self.public_ids_taken:
            out.append(f"public ids already in use here: {self.public_ids_taken} rows got new ones (links mailed before do not reach them)")
        if self.ignored:
            out.append(
                "fields not applied: " + ", ".join(f"{name} (on {n} line{'' if n == 1 else 's'})" for name, n in self.ignored.items())
            )
        return out + [f"  {e}" for e in self.errors]


@dataclass(slots=True)
class Left:
    """A ``left`` line: an address (its hash) remembered as one that left."""

    hash: str
    reason: str
    at: datetime


class _Bad(ValueError):
    pass


def _when(value: Any, name: str, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{name} must be an ISO 8601 date and time, got {value!r}"[:200])
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{name} must be an ISO 8601 date and time, got {value!r}"[:200]) from None
    if at.tzinfo is None:
        raise _Bad(f"{name} has no time zone: {value!r}"[:200])
    return at.astimezone(timezone.utc)


def _text(value: Any, name: str, pattern: re.Pattern | None = None, limit: int = 1000) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or (pattern is not None and not pattern.fullmatch(value)):
        raise _Bad(f"{name}: not a valid value: {value!r}"[:200])
    return value


def _preferences(frequency: Any, tz: Any, name: str = "") -> tuple[Frequency, str]:
    frequency = Frequency.daily.value if frequency is None else frequency
    if frequency not in {f.value for f in Frequency}:
        raise _Bad(f"{name}frequency must be daily or weekly, got {frequency!r}"[:200])
    tz = "UTC" if tz is None else tz
    if not isinstance(tz, str) or not is_valid_timezone(tz):
        raise _Bad(f"{name}unknown time zone {tz!r}"[:200])
    return Frequency(frequency), tz


def _filters(value: Any, name: str = "filters") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _Bad(f"{name} must be a list of filter lines")
    try:
        return [f.text for f in parse_topics("\n".join(value))]
    except TopicsError as exc:
        raise _Bad(f"{name}: " + "; ".join(shown_errors([e.message for e in exc.errors]))) from None


def _papers(value: Any, name: str, source: VoteSource, now: datetime) -> list[Signal]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{name} must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("paper"), str) or not 0 < len(item["paper"]) <= 32:
            raise _Bad(f"{name}: each needs a paper (an arXiv id), got {item!r}"[:200])
        vote = 1 if source == VoteSource.seed else item.get("vote")
        if vote not in (1, -1) or isinstance(vote, bool):
            raise _Bad(f"{name}: a vote is 1 or -1, got {vote!r}"[:200])
        out.append(Signal(item["paper"], vote, source, _when(item.get("at"), f"{name}: at") or now))
    return out


def _request(value: Any, created_at: datetime) -> Request | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("request must be an object or null")
    frequency, tz = _preferences(value.get("frequency"), value.get("timezone"), "request: ")
    seeds = value.get("seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(s, str) and 0 < len(s) <= 32 and not s.isspace() for s in seeds):
        raise _Bad("request: seeds must be a list of arXiv ids")
    return Request(
        topics="\n".join(_filters(value.get("filters"), "request: filters")),
        seeds="\n".join(s.strip() for s in seeds),
        frequency=frequency,
        timezone=tz,
        requested_at=_when(value.get("requested_at"), "request: requested_at") or created_at,
        nonce=_text(value.get("nonce"), "request: nonce", _NONCE),
    )


def _subscriber(line_no: int, obj: dict, now: datetime, mail_pending: bool) -> Entry:
    email = normalize_email(obj.get("email") if isinstance(obj.get("email"), str) else "")
    state = obj.get("state")
    if state not in {s.value for s in SubscriberState}:
        raise _Bad(f"state must be {', '.join(s.value for s in SubscriberState)}, got {state!r}"[:200])
    state = SubscriberState(state)
    frequency, tz = _preferences(obj.get("frequency"), obj.get("timezone"))
    hour = obj.get("delivery_hour", DEFAULT_HOUR)
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise _Bad(f"delivery hour must be 0-23, got {hour!r}"[:200])
    method = obj.get("unsubscribe_method")
    if method is not None and method not in {m.value for m in UnsubscribeMethod}:
        raise _Bad(f"unsubscribe_method: unknown {method!r}"[:200])
    created_at = _when(obj.get("created_at"), "created_at") or now
    request = _request(obj.get("request"), created_at)
    entry = Entry(
        line_no,
        email,
        state,
        filters=_filters(obj.get("filters")),
        frequency=frequency,
        timezone=tz,
        delivery_hour=hour,
        public_id=_text(obj.get("public_id"), "public_id", _PUBLIC_ID),
        created_at=created_at,
        confirmed_at=_when(obj.get("confirmed_at"), "confirmed_at"),
        unsubscribed_at=_when(obj.get("unsubscribed_at"), "unsubscribed_at"),
        suppressed_reason=_text(obj.get("suppressed_reason"), "suppressed_reason"),
        unsubscribe_method=UnsubscribeMethod(method) if method else None,
        signals=_papers(obj.get("seeds"), "seeds", VoteSource.seed, now) + _papers(obj.get("votes"), "votes", VoteSource.vote, now),
    )
    remembered = obj.get("remembered")
    if remembered is not None:
        if not isinstance(remembered, dict):
            raise _Bad("remembered must be an object (reason, at) or null")
        entry.remembered = _text(remembered.get("reason"), "remembered: reason", limit=32) or state.value
        entry.remembered_at = _when(remembered.get("at"), "remembered: at")
    if state == SubscriberState.pending:
        # their sign-up waits for its link as it did; mailed only if the operator asks, with a new link
        entry.request = request or Request("\n".join(entry.filters), "", frequency, tz, created_at)
        if mail_pending:
            entry.request.requested_at, entry.request.nonce, entry.mail = now, None, True
    else:
        entry.request = request  # a new sign-up of one who left waits for their own confirmation; never mailed from here
    if state in LEFT_STATES and entry.unsubscribe_method is None:
        entry.unsubscribe_method = UnsubscribeMethod.imported
    return entry


def _left(obj: dict, now: datetime) -> Left:
    h = obj.get("left")
    if not isinstance(h, str) or not _HASH.fullmatch(h):
        raise _Bad(f"left: not the SHA-256 of an address: {h!r}"[:200])
    return Left(h, _text(obj.get("reason"), "reason", limit=32) or "unsubscribed", _when(obj.get("at"), "at") or now)


def check_lines(lines: list[tuple[int, str | None]], *, now: datetime, mail_pending: bool) -> tuple[int, list]:
    """A chunk's lines: an :class:`Entry`, a :class:`Left`, or the line's problem (a str); a line
    that fails its checks but says the person left also gives an Entry that only remembers that.
    Each item that is not an error comes with the fields it did not apply."""
    out: list = []
    for line_no, text in lines:
        if text is None:
            out.append(f"line {line_no}: longer than {MAX_LINE:,} characters")
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            out.append(f"line {line_no}: not JSON ({exc})"[:300])
            continue
        if not isinstance(obj, dict):
            out.append(f"line {line_no}: not a JSON object")
            continue
        known = LEFT_FIELDS if "left" in obj else SUBSCRIBER_FIELDS
        ignored = tuple(name for name in obj if name not in known)
        if isinstance(obj.get("request"), dict):
            ignored += tuple(f"request.{name}" for name in obj["request"] if name not in REQUEST_FIELDS)
        try:
            out.append((_left(obj, now) if "left" in obj else _subscriber(line_no, obj, now, mail_pending), ignored))
        except ValueError as exc:  # _Bad, or the address's own check
            out.append(f"line {line_no}: {exc}")
            email, state = obj.get("email"), obj.get("state")
            if isinstance(email, str) and email.strip() and state in {s.value for s in LEFT_STATES}:
                # whatever else is wrong, the opt-out is kept: the address as it was stored there
                out.append((Entry(line_no, email.strip(), SubscriberState(state), row=False, remembered=state), ()))
    return (lines[-1][0] if lines else 0), out


def _read_lines(stream: IO[str]) -> Iterator[tuple[int, str | None]]:
    """(line number, text) from line 2 on; None for a line over MAX_LINE (read past, not kept)."""
    for line_no in range(2, 1 << 62):
        text = stream.readline(MAX_LINE)
        if not text:
            return
        if len(text) == MAX_LINE and not text.endswith("\n"):
            while (more := stream.readline(MAX_LINE)) and not more.endswith("\n"):
                pass
            text = None
        yield line_no, text


def import_full(
    session: Session,
    stream: IO[str],
    now: datetime,
    *,
    mail_pending: bool = False,
    commit_every: int | None = None,
    committed: Callable[[list[int]], None] | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool = False,
) -> FullReport:
    """Import what :func:`export_full` wrote (see the module's docstring for what each state
    becomes). Commits, confirmations, progress and ``parallel`` as
    :func:`digest.subscribers.lists.import_csv`. Raises ValueError for a file that is not one."""
    try:
        first = stream.readline(MAX_LINE)
        header = json.loads(first) if first.strip() else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"line 1: not a file `digest subscribers export --full` wrote (its first line names the format {FORMAT!r})")
    if header.get("version") != VERSION:
        raise ValueError(f"line 1: format version {header.get('version')!r}; this version of digest reads version {VERSION}")
    report = FullReport(mail_pending=mail_pending)
    seen = Seen()
    chunk_size = commit_every or CHUNK
    insert = dialect_insert(session)

    def write(checked: tuple[int, list]) -> None:
        last_line, items = checked
        entries, left = [], []
        for item in items:
            if isinstance(item, str):
                report.errors.append(item)
                continue
            item, ignored = item
            report.ignored.update(ignored)
            (left if isinstance(item, Left) else entries).append(item)
        result = write_chunk(session, entries, now, seen)
        for entry, outcome in result.outcomes:
            if outcome is Outcome.created:
                report.created[entry.state.value] += 1
            elif outcome is Outcome.present:
                report.unchanged += 1
            elif outcome is Outcome.left:
                report.left += 1
            else:
                report.opted_out += 1
        report.attached += result.attached
        report.public_ids_taken += result.public_ids_taken
        for arxiv_id in result.missing:
            report.missing += 1
            if arxiv_id in report.missing_papers or arxiv_id in report.missing_more:
                continue
            if len(report.missing_papers) < MISSING_SHOWN:
                report.missing_papers.append(arxiv_id)
            elif len(report.missing_more) < 100_000:  # a count past that would need memory that grows with the file
                report.missing_more.add(arxiv_id)
        if left:
            rows = {item.hash: {"address_hash": item.hash, "reason": item.reason, "created_at": item.at} for item in left}
            added = session.scalars(
                insert(Suppression.__table__).on_conflict_do_nothing().returning(Suppression.address_hash), list(rows.values())
            ).all()
            report.remembered_added += len(added)
            report.remembered_known += len(left) - len(added)
        chunk_done(session, result, report, commit_every, committed)
        if progress is not None:
            progress(last_line or report.lines_read)

    lines: list[tuple[int, str | None]] = []
    with Checker(f"{__name__}:check_lines", parallel=parallel, now=now, mail_pending=mail_pending) as checker:
        try:
            for line_no, text in _read_lines(stream):
                report.lines_read = line_no
                lines.append((line_no, text))
                if len(lines) >= chunk_size:
                    for checked in checker.submit(lines):
                        write(checked)
                    lines = []
            for checked in [*checker.submit(lines), *checker.drain()]:
                write(checked)
        except UnicodeDecodeError as exc:
            for checked in [*checker.submit(lines), *checker.drain()]:
                write(checked)
            report.stopped = f"line {report.lines_read + 1}: not UTF-8 text ({exc.reason}) at or shortly after this line"
        finally:
            seen.close()
    session.flush()
    return report
