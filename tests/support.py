"""Test helpers that are not fixtures: capturing SMTP servers (one that misbehaves on request, one that
keeps the raw bytes), free ports, subprocess environments."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import threading
import time
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
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM's parameters: ["BODY=8BITMIME"]
    at: float = field(default_factory=time.monotonic)  # when its DATA was accepted

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1; ``fail_next`` queues replies such as "451 4.3.0 try later" for DATA.
    A 421 reply (from ``fail_next``, ``fail_rcpt`` or ``fail_domain``) closes the connection after
    it, as servers do (RFC 5321 3.8)."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    captured: list[Captured] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    fail_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply at RCPT
    fail_domain: dict[str, str] = field(default_factory=dict)  # domain -> reply at RCPT for every address there
    rcpts: list[tuple[str, float]] = field(default_factory=list)  # every RCPT asked for, and when
    connections: int = 0
    rcpt_delay: float = 0.0  # seconds each RCPT waits: makes a batch slow enough to interrupt
    pipelining: bool = False  # advertise PIPELINING (aiosmtpd reads pipelined commands either way)
    eight_bit: bool = True  # advertise 8BITMIME (aiosmtpd's default)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if not self.eight_bit:
            responses = [r for r in responses if r[4:] != "8BITMIME"]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        self.rcpts.append((address, time.monotonic()))
        reply = self.fail_rcpt.get(address) or self.fail_domain.get(address.rpartition("@")[2].lower())
        if reply:
            return self._closing(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_next:
                return self._closing(server, self.fail_next.pop(0))
            self.captured.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, list(envelope.mail_options)))
        return "250 Message accepted"

    @staticmethod
    def _closing(server, reply: str) -> str:
        """``reply``; after a 421, the connection closes once it is sent."""
        if reply.startswith("421"):
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply

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


@dataclass
class RawMessage:
    mail_from: bytes
    rcpt_tos: list[bytes]
    data: bytes  # exactly as received between DATA's 354 and the final "<CRLF>.<CRLF>" (dot-stuffed)


class RawSmtpServer:
    """Just enough SMTP on a bare socket (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; PIPELINING
    offered on request) to keep every byte a client sends: ``received`` is the whole conversation
    from the client side, ``messages`` each DATA as it came. aiosmtpd cannot be used for this:
    it reads lines with its own idea of line ends."""

    def __init__(self, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.messages: list[RawMessage] = []
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._threads: list[threading.Thread] = []

    def start(self) -> RawSmtpServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # stopped
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        envelope: tuple[bytes, list[bytes]] = (b"", [])

        def reply(*lines: str) -> None:
            conn.sendall(b"".join(f"{line}\r\n".encode() for line in lines))

        def more() -> bool:
            nonlocal buffer
            chunk = conn.recv(65536)
            self.received += chunk
            buffer += chunk
            return bool(chunk)

        with conn:
            conn.settimeout(30)
            reply("220 raw.test ESMTP")
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    if not more():
                        return
                    continue
                line, buffer = buffer[: end + 1], buffer[end + 1 :]
                verb, _, argument = line.rstrip(b"\r\n").partition(b":" if line[:4].upper() in (b"MAIL", b"RCPT") else b" ")
                verb = verb.strip().upper()
                if verb == b"EHLO":
                    reply("250-raw.test", *(["250-PIPELINING"] if self.pipelining else []), "250-8BITMIME", "250 SIZE 33554432")
                elif verb == b"HELO" or verb == b"NOOP":
                    reply("250 OK")
                elif verb == b"MAIL FROM":
                    envelope = (argument.strip(), [])
                    reply("250 OK")
                elif verb == b"RCPT TO":
                    envelope[1].append(argument.strip())
                    reply("250 OK")
                elif verb == b"DATA":
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    while (end := (b"\r\n" + buffer).find(b"\r\n.\r\n")) < 0:
                        if not more():
                            return
                    self.messages.append(RawMessage(envelope[0], envelope[1], buffer[: max(end, 0)]))
                    buffer = buffer[end + 3 :]
                    envelope = (b"", [])
                    reply("250 OK queued")
                elif verb == b"RSET":
                    envelope = (b"", [])
                    reply("250 OK")
                elif verb == b"QUIT":
                    reply("221 Bye")
                    return
                else:
                    reply("502 Command not implemented")


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
