"""What every response gets: security headers, the layout's context, friendly error pages.

No page ever shows a traceback: unexpected errors are logged and answered with a plain 500 page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

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
BUSY_RETRY_AFTER = 5  # seconds, in the 503's Retry-After


def database_busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked"/"busy": another writer (an import, a send run) held the lock
    longer than the busy timeout. Worth a retry, not a 500."""
    message = str(exc.orig or exc).lower()
    return "database is locked" in message or "database is busy" in message


def error_page(code: int, title: str | None = None, message: str | None = None) -> tuple[str, int]:
    default_title, default_message = ERRORS.get(code, ERRORS[500] if code >= 500 else ERRORS[400])
    page = render_template("error.html", code=code, title=title or default_title, message=message or default_message)
    return page, code


def register(app: Flask, settings: Settings) -> None:
    # ``{{ paper.title | readable }}``: LaTeX math as text (D$^2$Quant → D²Quant), as the email shows it
    app.add_template_filter(readable, "readable")

    @app.context_processor
    def layout() -> dict:
        return {"demo": settings.demo}

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"  # pages hold tokens, addresses, CSRF tokens
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

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - routed to http_error
            return http_error(exc)
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        try:
            return error_page(500)
        except Exception:  # the template itself failed: still no traceback
            return InternalServerError.description, 500
