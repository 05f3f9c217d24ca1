"""Test helpers that are not fixtures: capturing SMTP servers (one that misbehaves on request), free ports,
subprocess environments."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol

from digest.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``fail_next`` queues replies such as "451 4.3.0 try later" for DATA."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    captured: list[Captured] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    fail_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply at RCPT
    connections: int = 0
    rcpt_delay: float = 0.0  # seconds each RCPT waits: makes a batch slow enough to interrupt
    pipelining: bool = False  # advertise PIPELINING (aiosmtpd reads pipelined commands either way)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        reply = self.fail_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_next:
                return self.fail_next.pop(0)
            self.captured.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def _factory(self):
        self.connections += 1
        return SMTPProtocol(self, hostname="smtp.test", ident="test-smtpd")

    def start(self) -> None:
        self._controller = Controller(self, hostname=self.host, port=self.port, server_hostname="smtp.test")
        self._controller.factory = self._factory
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return [c.message for c in self.captured]

    def to(self, address: str) -> list[EmailMessage]:
        return [c.message for c in self.captured if address in c.rcpt_tos]


class FaultySmtpServer(SmtpServer):
    """The capturing server, plus: refuse MAIL FROM, or hang after N messages until stopped."""

    refuse_sender: str | None = None
    hang_after: int | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hanging = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hang_after is not None and len(self.captured) >= self.hang_after:
            self.hanging.set()  # the test now stops the server under this message
            await asyncio.sleep(60)
        return await super().handle_DATA(server, session, envelope)


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess (CLI, celery worker) that should see the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATABASE_URL=settings.database_url,
        DIGEST_SECRET_KEY=settings.secret_key,
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_MAIL_FROM=settings.mail_from,
        DIGEST_DATA_DIR=str(settings.data_dir),
    )
    env.update(extra)
    return env
