"""What every request and response gets: what a client can send checked at the edge, security
headers, the layout's context, friendly error pages.

No page ever shows a traceback: unexpected errors are logged and answered with a plain 500 page.
Nothing a client sends is one: a database id in a URL is a ``<dbid:…>`` (past 64 bits: 404 before
the view runs), a JSON body nested past the recursion limit or holding a lone surrogate is bad JSON
(400), and a number out of the database's range that gets to a query anyway is a 400, not a 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter, Map

from digest.config import Settings
from digest.mail.latex import readable

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",  # paper thumbnails and organisation logos are hosted images (https only)
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # links carry tokens: never hand them to another site
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

ERRORS = {
    400: ("Something in that request didn't work", "Go back, check what you entered and try again."),
    404: ("Page not found", "There is nothing at this address. The link may be mistyped or out of date."),
    405: ("That doesn't work here", "This page can't handle that kind of request."),
    409: ("That can't be done now", "Reload the page and try again."),
    413: ("That's more than we accept", "What you sent is too large. Shorten it and try again."),
    429: (
        "Slow down a little",
        "There have been too many requests from your network in a short time. Wait a minute, then try again.",
    ),
    500: ("Something went wrong on our side", "We have logged the problem. Please try again in a few minutes."),
    503: ("We're busy, try again in a moment", "The service is in the middle of a large job. Wait a few seconds, then send that again."),
}
#: The topics field's placeholder: what a line can be. The demo's matches its packaged sample papers
#: (LLM activations, quantization, scaling, interpretability), so that a newcomer who types what it
#: shows gets a digest, not "no new matching papers".
TOPICS_EXAMPLE = 'diffusion video\n"large language model" -survey\nauthor:"Yann LeCun"'
DEMO_TOPICS_EXAMPLE = 'quantization\n"activation steering"\ninterpretability -survey'
BUSY_RETRY_AFTER = 5  # seconds, in the 503's Retry-After


def database_busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked"/"busy": another writer (an import, a send run) held the lock
    longer than the busy timeout. Worth a retry, not a 500."""
    message = str(exc.orig or exc).lower()
    return "database is locked" in message or "database is busy" in message


MAX_DATABASE_ID = 2**63 - 1  # BIGINT on PostgreSQL, INTEGER on SQLite
NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # the SQLSTATE of PostgreSQL's NumericValueOutOfRange


class DatabaseId(IntegerConverter):
    """``<dbid:paper_id>``: a row id as the database can hold one, 1 to 2**63 - 1, in at most 19
    digits; anything else matches no route (404). Past 64 bits, the query would fail in the driver
    (SQLite's OverflowError, PostgreSQL's NumericValueOutOfRange)."""

    regex = r"\d{1,19}"

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_DATABASE_ID)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested past the recursion limit (``[[[…]]]`` 5,000 deep)
    or holding a lone surrogate (``"\\ud800"``, which no UTF-8 page can show again) is bad JSON:
    a ValueError, as for any other, which ``request.get_json`` answers with a 400 (``silent=True``:
    None). Flask-WTF reads a JSON body as the form's data through the same call."""

    def loads(self, s: str | bytes, **kwargs) -> object:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        pending = [value]
        while pending:  # not recursive: the value may be nested just short of the limit
            item = pending.pop()
            if isinstance(item, str):
                item.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, a ValueError
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
        return value


def out_of_range(exc: Exception) -> bool:
    """A number too large for the database, refused by the driver: SQLite's OverflowError when it
    binds it, PostgreSQL's NumericValueOutOfRange. Our own values come from the database and fit,
    so this one came from the client; the routes check theirs first, this is the net."""
    if isinstance(exc, DataError):
        return getattr(exc.orig, "sqlstate", None) == NUMERIC_VALUE_OUT_OF_RANGE
    return isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc)


def error_page(code: int, title: str | None = None, message: str | None = None) -> tuple[str, int]:
    default_title, default_message = ERRORS.get(code, ERRORS[500] if code >= 500 else ERRORS[400])
    page = render_template("error.html", code=code, title=title or default_title, message=message or default_message)
    return page, code


def register(app: Flask, settings: Settings) -> None:
    """Before the routes: they use the ``dbid`` converter."""
    app.url_map.converters["dbid"] = DatabaseId
    app.json = JSONProvider(app)
    # ``{{ paper.title | readable }}``: LaTeX math as text (D$^2$Quant → D²Quant), as the email shows it
    app.add_template_filter(readable, "readable")

    @app.context_processor
    def layout() -> dict:
        return {"demo": settings.demo, "topics_example": DEMO_TOPICS_EXAMPLE if settings.demo else TOPICS_EXAMPLE}

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"  # pages hold tokens, addresses, CSRF tokens; the feeds set their own
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_page(
            400,
            "This form has expired",
            "For your safety, forms only work in the browser session that loaded them, with cookies on. Reload the page and send it again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        body, code = error_page(exc.code)
        response = app.make_response((body, code))
        if code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    def operational_error(exc: OperationalError):
        if not database_busy(exc):
            return unexpected(exc)
        log.warning("database busy on %s %s: answered 503", request.method, request.path)
        response = app.make_response(error_page(503))
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return response

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    def number_out_of_range(exc: Exception):
        if not out_of_range(exc):
            return unexpected(exc)
        log.warning("a number out of the database's range on %s %s: answered 400", request.method, request.path)
        return error_page(400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - routed to http_error
            return http_error(exc)
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        try:
            return error_page(500)
        except Exception:  # the template itself failed: still no traceback
            return InternalServerError.description, 500
