"""The demo's mail catcher, readable in the browser at /outbox. Registered only in demo mode, and
answered only to this machine (loopback) while the public demo key is in use.

Every message the demo sends (confirmations, digests) goes over SMTP to the built-in catcher
(:mod:`digest.mail.catcher`), which files it in ``<data dir>/outbox``; this page lists and shows them.
A message's HTML is served from its own URL with its own Content-Security-Policy (inline styles,
no scripts) and shown in a sandboxed frame, so a hostile paper title can do nothing here either.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for

from digest.config import Settings
from digest.db import session_scope
from digest.jobs import send_todays_digests
from digest.mail.transport import outbox_folder
from digest.models import sending_paused

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
NAME = re.compile(r"^\d{20}-[0-9a-f]{8}\.eml$")
LIST_LIMIT = 200

# A message's HTML, in the outbox's frame or opened in a tab of its own: styles and images, never a
# script or a form (the `sandbox` directive holds in a tab too). Same-origin, so that the outbox page's
# own script (static/outbox.js) can read the email's height and size the frame to it.
FRAME_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'none'; "
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation",
    "X-Frame-Options": "SAMEORIGIN",
}

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8 or ::1 (also as ::ffff:127.x.x.x); anything unparsable is not."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@bp.before_request
def only_on_this_machine_with_the_demo_key():
    """On the public demo key, anyone could read every mail the demo caught (with its links):
    then only this machine may. A request a local reverse proxy forwarded from elsewhere is not
    from this machine (with DIGEST_TRUSTED_PROXIES, the address is the forwarded client's)."""
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    if not settings.demo_key:
        return
    forwarded = not settings.trusted_proxies and any(h in request.headers for h in FORWARDING_HEADERS)
    if forwarded or not is_loopback(request.remote_addr):
        abort(404)


def _folder() -> Path:
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    return outbox_folder(settings)


def _parse(path: Path, headers_only: bool = False) -> EmailMessage:
    parser = BytesParser(policy=policy.default)
    with path.open("rb") as f:
        return parser.parse(f, headersonly=headers_only)  # type: ignore[return-value]


def _message_path(name: str) -> Path:
    if not NAME.match(name):
        abort(404)
    path = _folder() / name
    if not path.is_file():
        abort(404)
    return path


def _summary(path: Path) -> dict:
    msg = _parse(path, headers_only=True)
    try:
        sent = parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    except (TypeError, ValueError):
        sent = None
    return {
        "name": path.name,
        "subject": str(msg["Subject"] or "(no subject)"),
        "to": str(msg["To"] or ""),
        "date": sent,
        "kind": "digest" if msg["List-Unsubscribe"] else "account",
    }


def list_messages(folder: Path, limit: int = LIST_LIMIT) -> tuple[list[dict], int]:
    """The newest ``limit`` messages first (file names start with the time they were filed), and how many there are."""
    if not folder.is_dir():
        return [], 0
    paths = sorted((p for p in folder.iterdir() if NAME.match(p.name)), key=lambda p: p.name, reverse=True)
    return [_summary(p) for p in paths[:limit]], len(paths)


@bp.get("/")
def index():
    messages, total = list_messages(_folder())
    with session_scope(current_app.config["DIGEST_SETTINGS"]) as session:
        pause = sending_paused(session)  # the page says why "send now" sends nothing
    return render_template("outbox.html", messages=messages, total=total, limit=LIST_LIMIT, pause=pause)


@bp.post("/send-now")
def send_now():
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    with session_scope(settings) as session:
        paused = sending_paused(session) is not None
    if paused:  # nothing is planned or sent: the page says so
        return redirect(url_for("outbox.index", paused=1), code=303)
    report = send_todays_digests(settings, datetime.now(timezone.utc))
    return redirect(url_for("outbox.index", sent=report.sent, skipped=report.skipped), code=303)


@bp.get("/<name>")
def show(name: str):
    msg = _parse(_message_path(name))
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    headers = [(k, str(v)) for k, v in msg.items() if k.lower() not in {"content-type", "mime-version"}]
    return render_template(
        "outbox_message.html",
        name=name,
        subject=str(msg["Subject"] or "(no subject)"),
        headers=headers,
        text=text.get_content() if text is not None else None,
        has_html=html is not None,
    )


@bp.get("/<name>/html")
def show_html(name: str):
    html = _parse(_message_path(name)).get_body(preferencelist=("html",))
    if html is None:
        abort(404)
    body = html.get_content()
    # links open in the whole window, not inside the frame
    body = re.sub(r"(<head[^>]*>)", r'\1<base target="_top">', body, count=1, flags=re.I)
    response = Response(body, mimetype="text/html")
    response.headers.update(FRAME_HEADERS)
    return response


@bp.get("/<name>/raw")
def raw(name: str):
    path = _message_path(name)
    return Response(path.read_bytes(), mimetype="text/plain; charset=utf-8")


def register(app, settings: Settings) -> None:
    if settings.demo:
        app.register_blueprint(bp)
