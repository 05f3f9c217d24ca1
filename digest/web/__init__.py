"""The subscription web app: sign-up with double opt-in, preferences, one-click unsubscribe.

    gunicorn 'digest.web:create_app()'     # production (settings from DIGEST_* variables)
    digest serve --port 8000               # Flask's development server

Mail goes through ``app.config["DIGEST_QUEUE"]`` (a :class:`digest.queue.Queue`), handed a
subscriber id after the sign-up transaction committed: in-process by default, or the
``digest.send_confirmation`` task for the workers with ``DIGEST_BROKER_URL`` set.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from digest import queue
from digest.config import DEMO_KEY_WARNING, ConfigError, Settings, load_settings
from digest.web import archive, feedback, feeds, metrics, outbox, site, views, webhooks
from digest.web.admin import views as console

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # the largest legitimate form is ~3 KB


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    """Limits per client address, counted in Redis (the broker) when one is configured, so every
    web process shares the counts. Without a broker they are counted per process: right for the
    demo (one process), a warning for anything else (``gunicorn -w 4`` would allow four times as
    much). The confirmation quota per mailbox is in the database and shared either way."""
    extra = settings.extra
    storage = extra.get("ratelimit_storage_uri") or settings.broker_url or "memory://"
    if storage == "memory://" and not settings.demo:
        log.warning("rate limits are counted per process (no DIGEST_BROKER_URL): several web processes multiply them")
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage,
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
    return request.endpoint == "static"


def create_app(settings: Settings | None = None, *, warn_demo_key: bool = True) -> Flask:
    """The app; on the public demo key it says so loudly on stderr (``digest demo``, which says
    it in its own words, passes ``warn_demo_key=False``)."""
    if settings is None:  # gunicorn 'digest.web:create_app()': one line naming the variable, no traceback
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"error: bad configuration: {exc}") from None
    if settings.demo_key and warn_demo_key:
        sys.stderr.write(DEMO_KEY_WARNING)  # one write: one block, even among other workers' output
        sys.stderr.flush()
    app = Flask(__name__)
    app.config.update(
        DIGEST_SETTINGS=settings,
        DIGEST_QUEUE=queue.for_settings(settings),
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        # the one session cookie: the forms' CSRF tokens and a console sign-in (digest/web/admin/auth.py).
        # Lax, not Strict: a reader who opens their preferences link from an email must get a
        # working form; every POST needs the CSRF token besides
        SESSION_COOKIE_NAME="digest_session",
        SESSION_COOKIE_HTTPONLY=True,
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

    csrf = CSRFProtect(app)
    limiter = make_limiter(app, settings)
    site.register(app, settings)  # first: the routes use its ``dbid`` converter
    views.register(app, limiter, csrf, settings)
    archive.register(app, limiter, settings)
    feeds.register(app, limiter, settings)  # /feed/<token>, /feed.atom, /archive/<day>
    feedback.register(app, limiter, csrf, settings)
    webhooks.register(app, limiter, csrf, settings)  # POST /webhooks/bounces/ses (off without DIGEST_SES_TOPIC_ARN)
    outbox.register(app, settings)  # demo mode only
    console.register(app, limiter, csrf, settings)  # the operators' console at /admin
    metrics.register(app, csrf, settings)  # GET /metrics for Prometheus: a bearer token, or this machine only
    return app
