"""The bounce listener: an SMTP server (aiosmtpd) for the bounce domain, whose MX points at it.

It takes mail only for ``*@DIGEST_BOUNCE_DOMAIN`` (anything else: 550, counted as forged), reads
each message and records what it reports (:mod:`digest.bounces.intake`) before it answers 250, so a
relay keeps a report it could not hand over (451 on a database error) and tries again. It answers
the same 250 for a forged report as for a real one.

A listener whose MX is public is offered junk for other domains all day: each recipient refused at
RCPT is counted (``digest_bounce_rcpt_refused_total`` on /metrics), but at most
:data:`REFUSED_ROWS_PER_MINUTE` a minute are stored as forged events (with their address and MAIL
FROM, for ``digest stats`` and the console); beyond that a minute's refusals are one log line, so a
flood costs neither the database's rows nor its writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timezone
from functools import partial

from aiosmtpd.controller import Controller

from digest.bounces.intake import receive, refused
from digest.config import Settings
from digest.metrics import count_refused_recipient

log = logging.getLogger(__name__)

MAX_MESSAGE = 10 * 1024 * 1024  # bytes: a report returning a digest is a few hundred KB at most
REFUSED_ROWS_PER_MINUTE = 10  # recipients refused at RCPT stored as forged events, per listener and minute


class RefusalTally:
    """Which refused recipients are stored: the first :data:`REFUSED_ROWS_PER_MINUTE` of each
    minute; the rest of that minute are counted and said in one log line when the next minute's
    first refusal comes."""

    def __init__(self, per_minute: int = REFUSED_ROWS_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self.minute: datetime | None = None
        self.stored = self.skipped = 0

    def store(self, at: datetime) -> bool:
        minute = at.replace(second=0, microsecond=0)
        if minute != self.minute:
            if self.skipped:
                log.warning(
                    "%d more recipients refused at RCPT in the minute from %s UTC (not stored one by one)",
                    self.skipped,
                    f"{self.minute:%H:%M}",
                )
            self.minute, self.stored, self.skipped = minute, 0, 0
        if self.stored < self.per_minute:
            self.stored += 1
            return True
        self.skipped += 1
        return False


class BounceHandler:
    """aiosmtpd's handler: RCPT for the bounce domain only; DATA read and recorded in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.refusals = RefusalTally()

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        domain = address.rpartition("@")[2].rstrip(".").lower()
        if domain == self.settings.bounce_domain:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        count_refused_recipient()
        now = _now()
        if self.refusals.store(now):  # the event loop's thread: no lock needed
            try:
                await self._in_thread(refused, self.settings, address, envelope.mail_from or "", now)
            except Exception:  # counting it is not worth a 4xx
                log.exception("cannot count a refused recipient")
        return f"550 5.1.1 <{address}>: this server takes mail for @{self.settings.bounce_domain} only"

    async def handle_DATA(self, server, session, envelope) -> str:
        try:
            recorded = await self._in_thread(receive, self.settings, envelope.content, list(envelope.rcpt_tos), _now())
        except Exception:
            log.exception("cannot record a report from %s", session.peer)
            return "451 4.3.0 cannot record this report now; try again later"
        for event, outcome in recorded:
            log.info("%s %s: %s", event.kind.value, outcome.value, event.diagnostic)
        return "250 OK"

    @staticmethod
    async def _in_thread(function, *args):
        return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start(settings: Settings, host: str, port: int) -> Controller:
    """The listener, started on ``host:port`` (its own thread); ``stop()`` it."""
    if settings.bounce_domain is None:
        raise ValueError("no DIGEST_BOUNCE_DOMAIN: the listener takes mail for that domain only")
    controller = Controller(
        BounceHandler(settings), hostname=host, port=port, server_hostname=settings.bounce_domain, data_size_limit=MAX_MESSAGE
    )
    controller.start()
    return controller


def serve(settings: Settings, host: str, port: int, stop: threading.Event) -> None:
    """Run the listener until ``stop`` is set (``digest bounces serve``)."""
    controller = start(settings, host, port)
    try:
        stop.wait()
    finally:
        controller.stop()
