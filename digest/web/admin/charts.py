"""The console's charts and tables: what :mod:`digest.web.admin.series` reads, drawn
(:mod:`digest.web.admin.svg`) and captioned, each with its data as a table.

``dashboard_charts(session, settings, now)`` and ``dashboard_tables(session, settings, now)`` are
all a page needs; ``admin/_charts.html`` renders both (each chart a ``<figure>`` with its drawing,
a one-line caption and its data table in a ``<details>``). Every per-day series covers the last
:data:`~digest.web.admin.series.DAYS` UTC days up to ``now``'s, today included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.models import IngestRun
from digest.web.admin import series as data
from digest.web.admin.svg import Series, bar_chart, line_chart

Row = tuple


@dataclass(frozen=True)
class Chart:
    """One figure: ``svg`` an inline ``<svg role="img">`` with its ``<title>``, ``caption`` its
    headline in one line, ``rows`` its data (a header row first): one row per bar or point."""

    id: str
    title: str
    svg: Markup
    caption: str
    rows: list[Row]


@dataclass(frozen=True)
class Table:
    """One table: ``rows`` with a header row first; ``note`` says what it counts, if needed."""

    id: str
    title: str
    rows: list[Row]
    note: str = ""


def dashboard_charts(session: Session, settings: Settings, now: datetime) -> list[Chart]:
    """Every chart of the dashboard, as of ``now``: a handful of aggregate queries in all (the
    ledger's per-minute counts are kept on the session for :func:`dashboard_tables` after it)."""
    data.forget(session)
    data.no_jit(session)
    window = data.Window.ending(now)
    people = data.subscriber_days(session, window)
    minutes = data.delivery_minutes(session, settings, window.since)
    runs = data.detect_runs(minutes)
    by_day = data.outcomes_by_day(minutes, window)
    return [
        subscribers_chart(people),
        signups_chart(people),
        unsubscribes_chart(people),
        deliveries_chart(by_day, window),
        runs_chart(runs),
        send_rate_chart(runs),
        bounces_chart(data.mail_events_by_day(session, window), window),
        votes_chart(data.votes_by_day(session, window), window),
        learned_order_chart(data.learned_order(session, window), by_day, window),
        ingests_chart(data.ingest_runs(session)),
    ]


def dashboard_tables(session: Session, settings: Settings, now: datetime) -> list[Table]:
    """The dashboard's tables: ingest runs, top filters, the papers sent most, the queue."""
    data.no_jit(session)
    window = data.Window.ending(now)
    runs = data.detect_runs(data.delivery_minutes(session, settings, window.since))
    last = runs[-1] if runs else None
    return [
        ingests_table(data.ingest_runs(session)),
        Table(
            "top-filters",
            "Top filters",
            [("filter", "active readers"), *((text, n) for text, n in data.top_filters(session))],
            "The filter lines active readers hold, most held first.",
        ),
        Table(
            "most-sent",
            "Papers sent most in the last run",
            [
                ("paper", "arXiv id", "Daily Papers day", "upvotes", "digests"),
                *(
                    (p.title, p.arxiv_id, p.daily_date.isoformat() if p.daily_date else "", p.upvotes, n)
                    for p, n in data.most_sent(session, last)
                ),
            ],
            f"In the {last.counts['sent']:,} digests of the run that started {minute_label(last.started)} UTC."
            if last and last.started
            else "No send run yet.",
        ),
        queue_table(data.queue_depth(session, settings, now), settings),
    ]


# ---------------------------------------------------------------- formatting


def count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    share = 100 * part / whole
    return f"{share:.1f} %" if 0 < share < 10 else f"{share:.0f} %"


def duration(span: timedelta) -> str:
    """A span as people read it: 3 min 12 s, 45 s, 0.4 s, 1 h 02 min."""
    seconds = span.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:.1f}/s"


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def minute_label(moment: datetime) -> str:
    return f"{moment:%b} {moment.day} {moment:%H:%M}"


def _table(header: Row, labels: list[str], columns: list[list]) -> list[Row]:
    return [header, *(tuple([label, *(c[i] for c in columns)]) for i, label in enumerate(labels))]


# ---------------------------------------------------------------- subscribers


STATE_COLOURS = {"pending": "warn", "active": "accent", "unsubscribed": "muted", "suppressed": "danger"}
METHOD_COLOURS = {
    "one_click": "accent",
    "link": "ok",
    "preferences": "brown",
    "complaint": "danger",
    "bounce": "warn",
    "admin": "purple",
    "import": "teal",
    data.UNKNOWN: "muted",
}


def subscribers_chart(people: data.SubscriberDays) -> Chart:
    days = people.window.days
    states = [Series(state, [people.states[d][state] for d in days], STATE_COLOURS[state]) for state in data.STATES]
    last, first = people.states[days[-1]], people.states[days[0]]
    grew = last["active"] - first["active"]
    caption = (
        f"today: {last['active']:,} active, {last['pending']:,} pending, {last['unsubscribed']:,} unsubscribed, "
        f"{last['suppressed']:,} suppressed; active {grew:+,} since {day_label(days[0])}"
    )
    description = caption + ". A state's past days are rebuilt from each subscriber's sign-up, confirmation and leaving times."
    svg = bar_chart("subscribers", "Subscribers by state", description, [day_label(d) for d in days], states)
    rows = _table(("day", *data.STATES), [d.isoformat() for d in days], [s.values for s in states])
    return Chart("subscribers", "Subscribers by state", svg, caption, rows)


def signups_chart(people: data.SubscriberDays) -> Chart:
    days = people.window.days
    signups = [people.signups[d] for d in days]
    confirmations = [people.confirmations[d] for d in days]
    unsubscribes = [sum(people.unsubscribes[d].values()) for d in days]
    one_click = [people.unsubscribes[d]["one_click"] for d in days]
    left, clicked = sum(unsubscribes), sum(one_click)
    share = f"{clicked:,} by one-click ({percent(clicked, left)})" if data.has_method_column() else "how, not recorded"
    caption = (
        f"{data.DAYS} days: {count(sum(signups), 'sign-up')}, {count(sum(confirmations), 'confirmation')}, "
        f"{count(left, 'unsubscribe')}, {share}"
    )
    series = [
        Series("sign-ups", signups, "accent"),
        Series("confirmations", confirmations, "ok"),
        Series("unsubscribes", unsubscribes, "danger"),
    ]
    svg = bar_chart(
        "signups", "Sign-ups, confirmations and unsubscribes per day", caption, [day_label(d) for d in days], series, stacked=False
    )
    rows = _table(
        ("day", "sign-ups", "confirmations", "unsubscribes", "one-click"),
        [d.isoformat() for d in days],
        [signups, confirmations, unsubscribes, one_click],
    )
    return Chart("signups", "Sign-ups, confirmations and unsubscribes per day", svg, caption, rows)


def unsubscribes_chart(people: data.SubscriberDays) -> Chart:
    days = people.window.days
    methods = people.methods
    columns = [[people.unsubscribes[d][m] for d in days] for m in methods]
    totals = {m: sum(c) for m, c in zip(methods, columns)}
    left = sum(totals.values())
    parts = ", ".join(f"{totals[m]:,} {m.replace('_', '-')} ({percent(totals[m], left)})" for m in methods if totals[m])
    caption = f"{data.DAYS} days: {count(left, 'unsubscribe')}" + (f": {parts}" if parts else "")
    series = [Series(m.replace("_", "-"), c, METHOD_COLOURS.get(m, "navy")) for m, c in zip(methods, columns)]
    svg = bar_chart("unsubscribes", "Unsubscribes by method", caption, [day_label(d) for d in days], series)
    rows = _table(("day", *methods), [d.isoformat() for d in days], columns)
    return Chart("unsubscribes", "Unsubscribes by method", svg, caption, rows)


# ---------------------------------------------------------------- deliveries


OUTCOME_COLOURS = {"sent": "accent", "skipped": "light", "failed": "danger", "deferred": "warn"}


def _outcome_series(counts: list[Counter]) -> list[Series]:
    return [Series(o, [c[o] for c in counts], OUTCOME_COLOURS[o]) for o in data.OUTCOMES]


def deliveries_chart(by_day: dict[date, Counter], window: data.Window) -> Chart:
    days = window.days
    series = _outcome_series([by_day[d] for d in days])
    totals = {s.name: sum(s.values) for s in series}
    caption = f"{data.DAYS} days: " + ", ".join(f"{totals[o]:,} {o}" for o in data.OUTCOMES)
    description = caption + ". Each digest on the day of its send (or of its last try)."
    svg = bar_chart("deliveries", "Digests per day", description, [day_label(d) for d in days], series)
    rows = _table(("day", *data.OUTCOMES), [d.isoformat() for d in days], [s.values for s in series])
    return Chart("deliveries", "Digests per day", svg, caption, rows)


def runs_chart(runs: list[data.Run]) -> Chart:
    shown = runs[-data.RUNS_SHOWN :]
    series = _outcome_series([r.counts for r in shown])
    gap = f"a run: sends with no pause over {data.RUN_GAP_MINUTES} min"
    if shown:
        caption = f"{count(len(runs), 'run')} in {data.DAYS} days ({gap}); the last {len(shown)} shown"
    else:
        caption = f"no send run in {data.DAYS} days ({gap})"
    labels = [minute_label(data.minute_of(r.first_minute)) for r in shown]
    svg = bar_chart("runs", "Digests per send run", caption, labels, series, empty="No send run yet")
    rows = [
        ("run started (UTC)", *data.OUTCOMES, "duration (s)"),
        *(
            (
                r.started.strftime("%Y-%m-%d %H:%M:%S") if r.started else "",
                *(r.counts[o] for o in data.OUTCOMES),
                round(r.duration.total_seconds(), 1),
            )
            for r in shown
        ),
    ]
    return Chart("runs", "Digests per send run", svg, caption, rows)


def send_rate_chart(runs: list[data.Run]) -> Chart:
    if not runs:
        caption = f"no send run in {data.DAYS} days"
        svg = line_chart("send-rate", "Send rate during the last run", caption, [], [], empty="No send run yet")
        return Chart("send-rate", "Send rate during the last run", svg, caption, [("minute (UTC)", "sent")])
    last = runs[-1]
    minutes = last.minutes()
    sent = last.counts["sent"]
    caption = f"last run: {count(sent, 'sent', 'sent')} in {duration(last.duration)}, {rate(last.rate)}"
    started = f"started {minute_label(last.started)} UTC" if last.started else ""
    svg = line_chart(
        "send-rate",
        "Send rate during the last run",
        f"{caption}; {started}",
        [f"{m:%H:%M}" for m, _ in minutes],
        [Series("sent per minute", [n for _, n in minutes], "accent")],
        unit="per minute",
    )
    rows = [("minute (UTC)", "sent"), *((m.strftime("%Y-%m-%d %H:%M"), n) for m, n in minutes)]
    return Chart("send-rate", "Send rate during the last run", svg, caption, rows)


# ---------------------------------------------------------------- what came back, votes, taste


def bounces_chart(by_day: dict[date, Counter], window: data.Window) -> Chart:
    days = window.days
    kinds = [("hard", "hard bounces", "danger"), ("soft", "soft bounces", "warn"), ("complaint", "complaints", "purple")]
    series = [Series(name, [by_day[d][kind] for d in days], colour) for kind, name, colour in kinds]
    caption = f"{data.DAYS} days: " + ", ".join(f"{sum(s.values):,} {s.name}" for s in series)
    svg = bar_chart("bounces", "Bounces and complaints per day", caption, [day_label(d) for d in days], series)
    rows = _table(("day", *(kind for kind, _, _ in kinds)), [d.isoformat() for d in days], [s.values for s in series])
    return Chart("bounces", "Bounces and complaints per day", svg, caption, rows)


def votes_chart(by_day: dict[date, Counter], window: data.Window) -> Chart:
    days = window.days
    series = [
        Series("more like this", [by_day[d]["more"] for d in days], "ok"),
        Series("less like this", [by_day[d]["less"] for d in days], "danger"),
    ]
    more, less = (sum(s.values) for s in series)
    caption = f"{data.DAYS} days: {count(more + less, 'vote')}, {more:,} more like this, {less:,} less"
    svg = bar_chart("votes", "Votes per day", caption, [day_label(d) for d in days], series)
    rows = _table(("day", "more", "less"), [d.isoformat() for d in days], [s.values for s in series])
    return Chart("votes", "Votes per day", svg, caption, rows)


def learned_order_chart(learned: data.LearnedOrder, by_day: dict[date, Counter], window: data.Window) -> Chart:
    days = window.days
    sent = [by_day[d]["sent"] for d in days]
    tasted = [by_day[d]["tasted"] for d in days]
    examined = [learned.days.get(d, (0, 0))[0] for d in days]
    moved = [learned.days.get(d, (0, 0))[1] for d in days]
    # of the day's digests sent: the share moved among those examined, times the share that went to
    # readers with a profile (the others are in trending order); exactly moved / sent when all are read
    estimate = [m / e * t if e else 0.0 for m, e, t in zip(moved, examined, tasted)]
    share = [round(100 * x / s, 1) if s else 0 for x, s in zip(estimate, sent)]
    all_sent, all_moved = sum(sent), round(sum(estimate))
    sampled = f"; estimated from the digests of 1 in {learned.every} readers with a taste profile" if learned.every > 1 else ""
    caption = (
        f"{data.DAYS} days: the first paper differs from trending in {all_moved:,} of {count(all_sent, 'digest')} sent "
        f"({percent(all_moved, all_sent)}); {sum(tasted):,} went to readers with a taste profile{sampled}"
    )
    description = caption + ". Today's upvotes rank the papers a digest showed; the first it showed is compared."
    svg = line_chart(
        "learned-order",
        "How often the learned order moved the first paper",
        description,
        [day_label(d) for d in days],
        [Series("moved, % of digests sent", share, "warn")],
        unit="%",
    )
    rows = _table(
        ("day", "digests sent", "to readers with a taste profile", "examined", "first paper moved", "moved (% of sent)"),
        [d.isoformat() for d in days],
        [sent, tasted, examined, moved, share],
    )
    return Chart("learned-order", "How often the learned order moved the first paper", svg, caption, rows)


# ---------------------------------------------------------------- ingests and the queue


def _source(source: str) -> str:
    return source if len(source) <= 80 else source[:79] + "…"


def ingests_chart(runs: list[IngestRun]) -> Chart:
    shown = list(reversed(runs))  # oldest first, left to right
    unchanged = [max(r.fetched - r.new - r.updated - r.skipped, 0) for r in shown]
    series = [
        Series("new", [r.new for r in shown], "accent"),
        Series("updated", [r.updated for r in shown], "ok"),
        Series("unchanged", unchanged, "light"),
        Series("skipped", [r.skipped for r in shown], "danger"),
    ]
    if runs:
        r = runs[0]
        caption = f"last ingest {minute_label(r.started_at)} UTC: {r.fetched:,} fetched, {r.new:,} new, {r.updated:,} updated, {r.skipped:,} skipped"
    else:
        caption = "no ingest yet"
    svg = bar_chart("ingests", "Ingest runs", caption, [minute_label(r.started_at) for r in shown], series, empty="No ingest yet")
    rows = [
        ("started (UTC)", "source", "fetched", "new", "updated", "unchanged", "skipped"),
        *(
            (r.started_at.strftime("%Y-%m-%d %H:%M:%S"), _source(r.source), r.fetched, r.new, r.updated, u, r.skipped)
            for r, u in zip(shown, unchanged)
        ),
    ]
    return Chart("ingests", "Ingest runs", svg, caption, rows)


def ingests_table(runs: list[IngestRun]) -> Table:
    with_errors = "error" in IngestRun.__table__.c  # if the schema records why an ingest failed
    errors = [getattr(r, "error", None) for r in runs]
    header = (
        "started (UTC)",
        "took",
        "source",
        "fetched",
        "new",
        "updated",
        "skipped (malformed items)",
        *(("error",) if with_errors else ()),
    )
    rows = [header]
    for r, error in zip(runs, errors):
        took = duration(r.finished_at - r.started_at) if r.finished_at and r.started_at else ""
        row = (r.started_at.strftime("%Y-%m-%d %H:%M:%S"), took, _source(r.source), r.fetched, r.new, r.updated, r.skipped)
        rows.append((*row, error or "") if with_errors else row)
    return Table(
        "ingests",
        "Ingest runs",
        rows,
        "Newest first. Each row is a completed ingest; items the source sent malformed are skipped and counted.",
    )


def queue_table(depth: data.QueueDepth, settings: Settings) -> Table:
    oldest = depth.oldest_stuck.strftime("%Y-%m-%d %H:%M:%S UTC") if depth.oldest_stuck else ""
    return Table(
        "queue",
        "Queue depth",
        [
            ("ledger rows", "count", "since"),
            ("pending, ready to send", depth.ready, ""),
            ("pending, held for their domain (not_before)", depth.waiting, ""),
            ("claimed by a sender", depth.claimed, ""),
            (f"stuck past DIGEST_CLAIM_TIMEOUT ({settings.claim_timeout:,} s): claimable again", depth.stuck, oldest),
        ],
        "Rows waiting for a sender or held by one, by the ledger's claimable rule.",
    )
