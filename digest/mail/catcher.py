"""The demo's built-in mail catcher: a real SMTP server on localhost that files every message.

Demo only: ``digest demo`` starts it and points the service's SMTP settings at it, so mail takes
the same SMTP path as in production and lands in ``<data dir>/outbox`` for the /outbox page.
"""

from __future__ import annotations

import socket
from pathlib import Path

from aiosmtpd.controller import Controller

from digest.mail.transport import OutboxTransport


class _Filer:
    def __init__(self, folder: Path) -> None:
        self.outbox = OutboxTransport(folder)

    async def handle_DATA(self, server, session, envelope):
        self.outbox.send(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        return "250 OK: caught by the demo mail catcher"


class MailCatcher:
    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self.port = port or _free_port(host)
        self._controller = Controller(_Filer(folder), hostname=host, port=self.port, server_hostname="catcher.demo")

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
