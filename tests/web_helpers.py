"""Helpers for the web tests and for reading the mail they send; no tests and no fixtures here
(the ``app`` and ``client`` fixtures are in ``tests/web/conftest.py``).

The app is the real one from ``create_app`` with CSRF on, on a real database, sending mail
through a real SMTP server (aiosmtpd) whose captured messages the tests parse.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from support import free_port
from werkzeug.serving import make_server

from digest.config import Settings, SmtpSettings
from digest.db import upgrade
from digest.models import Subscriber
from digest.web import create_app

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
LINK_RE = re.compile(r"https?://\S+/(confirm|preferences|unsubscribe)/([A-Za-z0-9_.\-]+)")


def site_settings(tmp_path, smtp_server, port: int, name: str, **extra) -> Settings:
    """Settings for the app on a real server thread at ``port`` (browser tests): a migrated SQLite
    database ``name`` in ``tmp_path``, mail to ``smtp_server``; ``extra`` overrides."""
    url = f"sqlite:///{tmp_path}/{name}.sqlite3"
    upgrade(url)
    return Settings(
        database_url=url,
        secret_key="browser-test-secret-key",
        base_url=f"http://127.0.0.1:{port}",
        mail_from="Trending Papers <digest@example.org>",
        smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=10),
        data_dir=tmp_path,
        **extra,
    )


def text(response) -> str:
    """The page with HTML entities resolved, for assertions on what a reader sees."""
    return html.unescape(response.get_data(as_text=True))


def csrf_token(page: str | bytes) -> str:
    source = page.decode() if isinstance(page, bytes) else page
    match = CSRF_RE.search(source)
    assert match, "no CSRF token in the page"
    return match.group(1)


def form_post(client, path: str, data: dict, **kwargs):
    """GET the page for its CSRF token (and session cookie), then POST the form with it."""
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_token(page.data), **data}, **kwargs)


def subscribe(client, email: str, topics: str = "", frequency: str = "daily", tz: str = "UTC", **extra):
    return form_post(client, "/", {"email": email, "topics": topics, "frequency": frequency, "timezone": tz, "website": "", **extra})


def body_text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def body_html(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def mailed_link(message: EmailMessage, purpose: str) -> str:
    """The path (``/confirm/<token>``…) of the first link of that purpose in the text part."""
    for match in LINK_RE.finditer(body_text(message)):
        if match.group(1) == purpose:
            return urlsplit(match.group(0)).path
    raise AssertionError(f"no {purpose} link in:\n{body_text(message)}")


def subscriber(session, email: str) -> Subscriber | None:
    session.expire_all()
    return session.scalars(select(Subscriber).where(Subscriber.email == email)).first()


def strip_csrf(page: bytes) -> bytes:
    return CSRF_RE.sub('name="csrf_token" type="hidden" value=""', page.decode()).encode()


def old_token(settings, purpose: str, value: str, age: timedelta) -> str:
    """A correctly signed token whose timestamp is ``age`` in the past."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age.total_seconds())

    return URLSafeTimedSerializer(settings.secret_key, salt=f"digest.{purpose}", signer=PastSigner).dumps(value)


@contextmanager
def serving(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The real app (``create_app(settings)``) on a werkzeug server thread, for a browser; yields
    its ``http://127.0.0.1:<port>`` (``port``: one the settings' base URL already names)."""
    port = port or free_port()
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)
