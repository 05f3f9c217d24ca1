"""Mail transports behind one small interface, chosen by configuration.

- :class:`SmtpTransport`: one connection reused for many messages (STARTTLS, SSL, AUTH from
  ``DIGEST_SMTP_URL``); it reconnects once when the server dropped the connection between messages,
  and after a 421 for one message (the server closes the connection as it says so: RFC 5321 3.8),
  so that one domain's "try again later" refuses that message, not the rest of the batch.
- :class:`OutboxTransport`: writes ``.eml`` files into ``<data dir>/outbox`` when no SMTP server is
  configured (development and the demo's mail catcher read them there).

``send`` raises :class:`TransientError` (4xx, connection trouble: try again later) or
:class:`PermanentError` (5xx for this recipient: do not try again); ``send_each`` sends a batch as
one stream and yields each message's outcome (pipelined, :mod:`digest.mail.pipelining`, when the server
offers it). Its ``sender`` is one envelope sender for every message, or one per message (each
digest's VERP address, :mod:`digest.mail.verp`).
"""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from digest import metrics
from digest.config import Settings, SmtpSettings
from digest.mail import pipelining


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Worth retrying later: 4xx replies, refused or dropped connections, timeouts."""


class PermanentError(DeliveryError):
    """The server refused this recipient or message for good (5xx)."""


class Transport(Protocol):
    def send(self, sender: str, recipients: list[str], data: bytes) -> None: ...

    def eight_bit(self) -> bool: ...

    def send_each(
        self, sender: str | Sequence[str], messages: Sequence[tuple[list[str], bytes]], wanted: Callable[[int], bool] = ...
    ) -> Iterator[tuple[int, DeliveryError | None]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc) -> None: ...


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


def _classify(code: int, message: bytes | str, what: str) -> DeliveryError:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    error = f"{what}: {code} {text}".strip()
    return PermanentError(error) if 500 <= code < 600 else TransientError(error)


# Permanent refusals that say nothing about the recipient: never suppress anyone over them.
_SERVER_PROBLEMS = (
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
)


def connection_trouble(error: BaseException) -> bool:
    """True when the server or the connection (not this message) is the problem: stop sending."""
    cause = error.__cause__
    if isinstance(cause, _SERVER_PROBLEMS):
        return True
    return not isinstance(cause, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused))


def senders_of(sender: str | Sequence[str], messages: Sequence) -> Sequence[str]:
    """``send_each``'s ``sender`` as one envelope sender per message."""
    if isinstance(sender, str):
        return [sender] * len(messages)
    if len(sender) != len(messages):
        raise ValueError(f"{len(sender)} envelope senders for {len(messages)} messages")
    return sender


def _one_by_one(send, senders, messages, wanted) -> Iterator[tuple[int, DeliveryError | None]]:
    """``send_each`` for a transport without pipelining: ``send`` each message in turn."""
    for index, (recipients, data) in enumerate(messages):
        if not wanted(index):
            continue
        try:
            send(senders[index], recipients, data)
        except DeliveryError as exc:
            yield index, exc
            if connection_trouble(exc):
                return
        except OSError as exc:  # the outbox's disk
            error = TransientError(f"cannot write the message: {exc}")
            error.__cause__ = exc
            yield index, error
            return
        else:
            yield index, None


class SmtpTransport(_Closing):
    """A persistent SMTP session; many messages per connection."""

    def __init__(self, config: SmtpSettings, local_hostname: str | None = None) -> None:
        self.config = config
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        # only when TLS is used: building a default context loads the CA store (~30 ms a connection)
        context = ssl.create_default_context() if c.ssl or c.starttls else None
        try:
            if c.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, local_hostname=self.local_hostname, timeout=c.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, local_hostname=self.local_hostname, timeout=c.timeout)
                if c.starttls:
                    smtp.starttls(context=context)
            if c.username:
                smtp.login(c.username, c.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _classify(exc.smtp_code, exc.smtp_error, "SMTP login refused") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to SMTP server {c.host}:{c.port}: {exc}") from exc
        self.connections_opened += 1
        return smtp

    def eight_bit(self) -> bool:
        """Whether the server takes 8-bit content (8BITMIME, RFC 6152), so that a message's text part
        may go as its UTF-8 (:func:`digest.mail.mime.build_message`): asked of the connection the
        messages will use (made now if need be). False when the server cannot be reached: the send
        then says why."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.ehlo_or_helo_if_needed()
        except DeliveryError:
            return False
        except (OSError, smtplib.SMTPException):  # a connection that is gone: the send makes a new one
            self.close()
            return False
        return bool(pipelining.mail_options(self._smtp))

    @staticmethod
    def _unsendable(smtp: smtplib.SMTP, data: bytes) -> DeliveryError | None:
        """An error for an 8-bit message on a connection without 8BITMIME (the server is not the one
        :meth:`eight_bit` asked): connection trouble, so the batch stops and its rows wait for the
        next run, which builds them for this server."""
        if pipelining.mail_options(smtp) or data.isascii():
            return None
        return TransientError("the SMTP server does not take 8-bit mail (no 8BITMIME) any more; the message waits")

    def send(self, sender: str, recipients: list[str], data: bytes) -> None:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._smtp.ehlo_or_helo_if_needed()
                unsendable = self._unsendable(self._smtp, data)
                if unsendable is not None:
                    raise unsendable
                refused = pipelining.sendmail(self._smtp, sender, recipients, data)
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if attempt == 2:
                    raise self._error(exc) from exc
                continue  # an idle connection timed out: reconnect once
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                self._reset()  # the transaction this message opened
                raise self._error(exc) from exc
            except OSError as exc:  # smtplib's other errors included
                raise self._error(exc) from exc
            if refused:  # only possible with several recipients
                code, message = next(iter(refused.values()))
                raise _classify(code, message, "recipient refused")
            return

    def send_each(
        self, sender: str | Sequence[str], messages: Sequence[tuple[list[str], bytes]], wanted: Callable[[int], bool] = lambda i: True
    ) -> Iterator[tuple[int, DeliveryError | None]]:
        """Send ``messages`` in order over this connection: yields ``(index, None)`` for each one the
        server accepted and ``(index, error)`` for each one refused (the error :meth:`send` would
        raise), as soon as its final reply is read. ``sender``: the envelope sender of every message,
        or of each (:func:`senders_of`).

        ``wanted(index)`` is asked just before a message is started; one not wanted is skipped.
        After connection trouble (:func:`connection_trouble`) nothing more is sent. A message refused
        with 421 is a refusal like another 4xx: the next message goes over a new connection.

        With PIPELINING, the end of one message's data and the next message's envelope go out in one
        write (RFC 2920 lets message content open a group): one round trip a message instead of two.
        A next message to the same recipients waits for this one's outcome (the caller may not want
        it any more).

        The seconds each outcome took on the wire are observed (``digest_smtp_send_seconds``).
        """
        return metrics.timed(self._send_each(sender, messages, wanted))

    def _send_each(
        self, sender: str | Sequence[str], messages: Sequence[tuple[list[str], bytes]], wanted: Callable[[int], bool]
    ) -> Iterator[tuple[int, DeliveryError | None]]:
        senders = senders_of(sender, messages)
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            offered = pipelining.offered(self._smtp)
        except (DeliveryError, OSError, smtplib.SMTPException) as exc:
            first = next((i for i in range(len(messages)) if wanted(i)), None)
            if first is not None:
                yield first, exc if isinstance(exc, DeliveryError) else self._error(exc)
            return
        if not offered or any(pipelining.envelope(s, recipients) is None for s, (recipients, _) in zip(senders, messages)):
            yield from _one_by_one(self.send, senders, messages, wanted)
            return
        outstanding = False  # an envelope sent whose replies are unread: the connection is mid-command
        try:
            for index, error, outstanding in self._pipelined(senders, messages, wanted):  # noqa: B007 - read in finally
                yield index, error
            outstanding = False
        finally:
            if outstanding and self._smtp is not None:  # stopped early by the caller: drop, never QUIT
                self._smtp.close()
                self._smtp = None

    def _pipelined(self, senders, messages, wanted) -> Iterator[tuple[int, DeliveryError | None, bool]]:
        """:meth:`send_each` over a PIPELINING server; also yields whether an envelope is outstanding."""
        n = len(messages)

        def after(i: int) -> int | None:
            return next((j for j in range(i, n) if wanted(j)), None)

        smtp = self._smtp
        current, ready, reset, first = after(0), False, b"", True
        while current is not None:
            recipients, data = messages[current]
            if not ready and smtp.sock is None:  # closed after a 421 for the message before
                failure = self._reopen()
                if failure is not None:
                    yield current, failure, False
                    return
                smtp, reset = self._smtp, b""
            if not ready:
                unsendable = self._unsendable(smtp, data)
                if unsendable is not None:
                    yield current, unsendable, False
                    return
            try:
                if not ready:
                    smtp.send(reset + pipelining.envelope(senders[current], recipients, pipelining.mail_options(smtp)))
                    if reset:
                        smtp.getreply()
                    reset = b""
                pipelining.envelope_replies(smtp, senders[current], recipients)
            except smtplib.SMTPServerDisconnected as exc:
                error, gone = self._error(exc), True
            except smtplib.SMTPException as exc:  # envelope refused (SMTPException is an OSError: first)
                error, gone = self._error(exc), False
            except OSError as exc:
                error, gone = self._error(exc), True
            else:
                error = None
            if error is not None:
                if gone and first:  # an idle connection the server had closed: reconnect once
                    first = False
                    failure = self._reopen()
                    if failure is not None:
                        yield current, failure, False
                        return
                    smtp = self._smtp
                    continue
                yield current, error, False
                if gone or connection_trouble(error):
                    return
                current, ready, reset = after(current + 1), False, b"RSET\r\n"  # a transaction may be open
                continue
            first = False
            # the next wanted message, to go out with this one's end; one to the same recipients is
            # decided (wanted or not) only after this one's outcome
            following, j = None, current + 1
            while j < n and not set(messages[j][0]) & set(recipients):
                if wanted(j):
                    following = j
                    break
                j += 1
            if following is not None and self._unsendable(smtp, messages[following][1]) is not None:
                following, j = None, following  # not pipelined: its turn comes with a check of its own
            pipelined = following is not None
            try:
                smtp.send(
                    pipelining.content(data)
                    + (pipelining.envelope(senders[following], messages[following][0], pipelining.mail_options(smtp)) if pipelined else b"")
                )
                pipelining.data_reply(smtp)
            except smtplib.SMTPResponseException as exc:  # this message refused; the next envelope stands…
                error = self._error(exc)
                closed = smtp.sock is None  # …unless it was a 421: then it goes again, on a new connection
                yield current, error, pipelined and not closed
                if connection_trouble(error):
                    return
                if closed:
                    current, ready = (following if pipelined else after(j)), False
                    continue
            except (OSError, smtplib.SMTPException) as exc:
                yield current, self._error(exc), False
                return
            else:
                yield current, None, pipelined
            current, ready = (following, True) if pipelined else (after(j), False)

    def _reopen(self) -> DeliveryError | None:
        """A new connection in place of one the server closed; the error if none can be made."""
        try:
            self._smtp = self._connect()
            self._smtp.ehlo_or_helo_if_needed()
        except DeliveryError as failure:
            return failure
        except OSError as failure:  # smtplib's errors included
            return self._error(failure)
        return None

    def _error(self, exc: BaseException) -> DeliveryError:
        """The :class:`DeliveryError` for an ``smtplib`` or socket error, with ``exc`` as its cause
        (what :meth:`send` raises and :meth:`send_each` yields); drops a connection that is gone."""
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            self._smtp = None
            error: DeliveryError = TransientError(f"SMTP server closed the connection: {exc}")
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, message = next(iter(exc.recipients.values()))
            error = _classify(code, message, "recipient refused")
        elif isinstance(exc, smtplib.SMTPResponseException):
            error = _classify(exc.smtp_code, exc.smtp_error, "message refused")
        else:
            self.close()
            error = TransientError(f"SMTP error: {exc}")
        error.__cause__ = exc
        return error

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


class OutboxTransport(_Closing):
    """Writes each message as an ``.eml`` file; the demo's /outbox page lists them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def eight_bit(self) -> bool:
        """Files carry 8-bit text as well as the mail catcher's SMTP does."""
        return True

    def send_each(
        self, sender: str | Sequence[str], messages: Sequence[tuple[list[str], bytes]], wanted: Callable[[int], bool] = lambda i: True
    ) -> Iterator[tuple[int, DeliveryError | None]]:
        return _one_by_one(self.send, senders_of(sender, messages), messages, wanted)

    def send(self, sender: str, recipients: list[str], data: bytes) -> None:
        """File ``data`` as a mailbox's last hop does (RFC 5321 4.4): a ``Return-Path`` field with
        the envelope sender first, where the message's bounces would go (with DIGEST_BOUNCE_DOMAIN,
        its VERP address). No signature covers that field."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(b"Return-Path: <" + sender.encode("utf-8") + b">\r\n" + data)
        tmp.rename(self.folder / name)  # readers never see half a file


def outbox_folder(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


def make_transport(settings: Settings) -> SmtpTransport | OutboxTransport:
    if settings.smtp is None:
        return OutboxTransport(outbox_folder(settings))
    return SmtpTransport(settings.smtp, local_hostname=settings.mail_domain)
