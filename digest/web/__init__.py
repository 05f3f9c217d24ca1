"""The subscription web app: sign-up with double opt-in, preferences, one-click unsubscribe.

    gunicorn 'digest.web:create_app()'     # production (settings from DIGEST_* variables)
    digest serve --port 8000               # Flask's development server

``app.config["DIGEST_ENQUEUE_CONFIRMATION"]`` is the one hook for mail: a callable taking a
subscriber id, called after the sign-up transaction committed. The default sends in-process;
with ``DIGEST_BROKER_URL`` set it enqueues ``digest.send_confirmation`` for the workers.
"""

from __future__ import annotations

import logging
from typing import Callable

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from digest.config import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # the largest legitimate form is ~3 KB


def send_in_process(settings: Settings) -> Callable[[int], None]:
    """The default confirmation hook: send now, in this process; never fail the request over mail."""
    from digest.subscriptions import send_confirmation

    def enqueue(subscriber_id: int) -> None:
        try:
            send_confirmation(settings, subscriber_id)
        except Exception:  # the page must not differ: log it, the user can ask again
            log.exception("could not send the confirmation to subscriber %s", subscriber_id)

    return enqueue


def send_via_queue(settings: Settings) -> Callable[[int], None]:
    """With a broker: enqueue ``digest.send_confirmation`` for a worker; the request never waits on SMTP.

    Called after the sign-up transaction committed, so the worker always finds the row. The task
    is sent by name from a Celery client built from these settings (the web process imports no
    task code). If the broker cannot take it (Redis down), send in-process rather than lose it.
    """
    fallback = send_in_process(settings)
    client = None

    def enqueue(subscriber_id: int) -> None:
        nonlocal client
        from workers.factory import make_celery

        try:
            client = client or make_celery(settings)
            client.send_task(
                "digest.send_confirmation",
                args=(subscriber_id,),
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
            )
        except Exception:
            log.warning("broker unavailable: sending the confirmation to subscriber %s in-process", subscriber_id)
            fallback(subscriber_id)

    return enqueue


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    """Limits per client address; Redis (the broker) when configured so all workers share counts."""
    extra = settings.extra
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=extra.get("ratelimit_storage_uri") or settings.broker_url or "memory://",
        strategy="moving-window",
        default_limits=[extra.get("rate_limit_default", "300 per minute")],
        key_prefix=extra.get("ratelimit_key_prefix", "digest-web"),
        swallow_errors=True,  # Redis down: serve without limits rather than fail
        in_memory_fallback_enabled=True,
        headers_enabled=False,
    )
    limiter.request_filter(lambda: _is_static())
    return limiter


def _is_static() -> bool:
    from flask import request

    return request.endpoint == "static"


def create_app(settings: Settings | None = None) -> Flask:
    if settings is None:  # gunicorn 'digest.web:create_app()': one line naming the variable, no traceback
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"error: bad configuration: {exc}") from None
    app = Flask(__name__)
    app.config.update(
        DIGEST_SETTINGS=settings,
        DIGEST_ENQUEUE_CONFIRMATION=send_via_queue(settings) if settings.broker_url else send_in_process(settings),
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_NAME="digest_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # valid for the browser session: no "form expired" after lunch
        # Referrer-Policy: no-referrer (tokens are in URLs) means browsers send no Referer,
        # so Flask-WTF's HTTPS Referer check would refuse every form; the token and SameSite stay.
        WTF_CSRF_SSL_STRICT=False,
    )
    proxies = settings.trusted_proxies
    if proxies:  # behind N reverse proxies: take the client address from X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    from digest.web import archive, outbox, site, views

    csrf = CSRFProtect(app)
    limiter = make_limiter(app, settings)
    views.register(app, limiter, csrf, settings)
    archive.register(app, limiter, settings)
    site.register(app, settings)
    outbox.register(app, settings)  # demo mode only
    return app
