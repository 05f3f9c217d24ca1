"""The pages: a few lines each over :mod:`digest.subscribers.subscriptions`, one transaction per request.

Mail is handed to ``app.config["DIGEST_QUEUE"]`` only after that transaction
committed, so a worker (or the in-process sender) always finds the row it is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import redis
from flask import Flask, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import text

from digest import tokens
from digest.config import Settings
from digest.db import engine_for, session_scope
from digest.delivery.schedule import zone
from digest.matching.topics import TopicsError, parse_topics
from digest.models import SubscriberState, UnsubscribeMethod
from digest.subscribers import subscriptions
from digest.subscribers.subscriptions import Confirmation
from digest.web import live, papers
from digest.web.forms import FREQUENCIES, HOURS, PreferencesForm, SubscribeForm
from digest.web.site import error_page
from digest.web.zones import timezone_choices

log = logging.getLogger(__name__)


def _settings() -> Settings:
    return current_app.config["DIGEST_SETTINGS"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def local_time(moment: datetime | None, tz_name: str) -> str:
    """``Monday 1 December, 07:00 (Europe/Berlin)``."""
    if moment is None:
        return ""
    local = moment.astimezone(zone(tz_name))
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M} ({tz_name})"


def bad_link(error: tokens.BadToken, what: str):
    title = "This link has expired" if error.expired else "This link doesn't work"
    if error.expired:
        message = f"{what} links work for {tokens.CONFIRM_MAX_AGE // 3600} hours. Subscribe again to get a fresh one."
    else:
        message = "It may have been copied incompletely, or it is no longer valid. Copy the whole link from the email, or subscribe again."
    return error_page(400, title, message)


# ------------------------------------------------------------------ subscribing


def home():
    settings = _settings()
    form = SubscribeForm()
    form.offer_categories(settings.arxiv_categories, request.form if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.website.data:  # the honeypot: people never see it, bots fill every field
            log.info("honeypot field filled in; nothing stored")
            return redirect(url_for("check_inbox"), 303)
        if form.validate():
            with session_scope(settings) as session:
                if form.unknown_papers(session):
                    subscriber_id, status = None, 400
                else:
                    subscriber = subscriptions.request_subscription(
                        session,
                        settings,
                        form.normalized_email,
                        form.filters,
                        form.frequency.data,
                        form.timezone.data,
                        _now(),
                        seeds=form.seed_ids,
                    )
                    subscriber_id, status = (subscriber.id if subscriber is not None else None), 303
            if subscriber_id is not None:  # committed: now the mail may go
                current_app.config["DIGEST_QUEUE"].send_confirmation(subscriber_id)
            if status == 303:
                return redirect(url_for("check_inbox"), 303)
        else:
            status = 400
    with session_scope(settings) as session:
        trending = papers.trending(session)
    return render_template("home.html", form=form, trending=trending, papers=papers), status


def check_inbox():
    """The same page whatever the address: new, pending, active, unsubscribed or a bot."""
    return render_template("check_inbox.html")


def confirm(token: str):
    """GET shows one button; the POST confirms (mail scanners follow links, they don't press buttons)."""
    settings = _settings()
    with session_scope(settings) as session:
        try:
            if request.method == "POST":
                subscriber, signup = subscriptions.peek_confirmation(session, settings, token)
                outcome = subscriptions.confirm(session, settings, token, _now())
            else:
                subscriber, signup = subscriptions.peek_confirmation(session, settings, token)
                outcome = Confirmation.already_confirmed if signup is None else None
        except tokens.BadToken as exc:
            return bad_link(exc, "Confirmation")
        asked = signup if outcome is None else None  # the request this page would confirm
        return render_template(
            "confirm.html",
            token=token,
            outcome=outcome,
            email=subscriber.email,
            next_digest=local_time(subscriber.next_due_at, subscriber.timezone),
            frequency=(asked or subscriber).frequency.value,
            topics=[line for line in asked.topics.split("\n") if line] if asked is not None else [],
            seeds=asked.seeds.split() if asked is not None else [],
            preferences_token=tokens.make_token(settings, "preferences", subscriber.public_id),
        )


# ------------------------------------------------------------------ preferences


def preferences(token: str):
    settings = _settings()
    with session_scope(settings) as session:
        try:
            subscriber = subscriptions.subscriber_for_link(session, settings, "preferences", token, lock=request.method == "POST")
        except tokens.BadToken as exc:
            return bad_link(exc, "Preferences")
        if subscriber is None:
            abort(404)
        editable = subscriber.state in (SubscriberState.active, SubscriberState.pending)
        saved = {
            "topics": subscriber.topics_text,
            "frequency": subscriber.frequency.value,
            "timezone": subscriber.timezone,
            "delivery_hour": str(subscriber.delivery_hour),
        }
        saved["seeds"] = "\n".join(subscriptions.seed_papers(session, subscriber))
        form = PreferencesForm(data=saved)  # a POST's values take precedence
        form.offer_categories(settings.arxiv_categories, request.form if request.method == "POST" and editable else None)
        status = 200
        filters = None
        if request.method == "POST" and not editable:
            status = 409  # a stale form: they unsubscribed since; the page says how to come back
        elif request.method == "POST":
            if form.validate() and not form.unknown_papers(session):
                filters = form.filters
                if request.form.get("action") != "preview":
                    subscriptions.update_preferences(
                        session,
                        subscriber,
                        form.filters,
                        form.frequency.data,
                        form.timezone.data,
                        int(form.delivery_hour.data),
                        _now(),
                        seeds=form.seed_ids,
                    )
                    flash("Your preferences are saved.")
                    return redirect(url_for("preferences", token=token), 303)
            else:
                status = 400
        elif editable:
            try:
                filters = parse_topics(subscriber.topics_text)
            except TopicsError:  # saved under an older filter language: no preview until fixed
                filters = None
        preview = papers.preview(session, filters, arxiv_limit=settings.arxiv_size) if filters is not None else None
        return (
            render_template(
                "preferences.html",
                token=token,
                form=form,
                subscriber=subscriber,
                editable=editable,
                previewing=request.method == "POST" and editable,
                preview=preview,
                papers=papers,
                next_digest=local_time(subscriber.next_due_at, subscriber.timezone),
                unsubscribe_token=tokens.make_token(settings, "unsubscribe", subscriber.public_id),
            ),
            status,
        )


# ------------------------------------------------------------------ unsubscribing


def unsubscribe_method() -> UnsubscribeMethod:
    """How this POST unsubscribes: RFC 8058's body, the page's button, or that button reached from
    the preferences page (``?via=preferences``)."""
    if request.form.get("List-Unsubscribe") == "One-Click":
        return UnsubscribeMethod.one_click
    return UnsubscribeMethod.preferences if request.args.get("via") == "preferences" else UnsubscribeMethod.link


def unsubscribe(token: str):
    """GET never unsubscribes: it shows one button. Any POST does, including RFC 8058 one-click
    (``List-Unsubscribe=One-Click``, urlencoded or multipart, no cookies, no CSRF token)."""
    settings = _settings()
    with session_scope(settings) as session:
        try:
            subscriber = subscriptions.subscriber_for_link(session, settings, "unsubscribe", token, lock=request.method == "POST")
        except tokens.BadToken as exc:
            return bad_link(exc, "Unsubscribe")
        done = subscriber is None or subscriber.state == SubscriberState.unsubscribed
        if request.method == "POST":
            if subscriber is not None:
                subscriptions.unsubscribe(session, subscriber, _now(), unsubscribe_method())
            done = True
        return render_template(
            "unsubscribe.html",
            token=token,
            via="preferences" if request.args.get("via") == "preferences" else None,
            done=done,
            email=subscriber.email if subscriber is not None else None,
            preferences_token=tokens.make_token(settings, "preferences", subscriber.public_id) if subscriber else None,
        )


# ------------------------------------------------------------------ operations


def healthz():
    """For load balancers: 200 when the database (and the broker, if configured) answer, else 503."""
    settings = _settings()
    report: dict[str, str] = {}
    healthy = True
    try:
        with engine_for(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc)
        report["database"] = f"error: {exc.__class__.__name__}"
        healthy = False
    if settings.broker_url is None:
        report["broker"] = "not configured"
    else:
        try:
            client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
            report["broker"] = "ok"
        except Exception as exc:
            log.warning("health check: broker unreachable: %s", exc)
            report["broker"] = f"error: {exc.__class__.__name__}"
            healthy = False
    response = jsonify(report)
    response.status_code = 200 if healthy else 503
    return response


# ------------------------------------------------------------------ the sign-up form's live preview

LIVE_PREVIEW_MAX_BYTES = 16 * 1024  # 2,000 characters of topics, JSON-escaped, with room to spare


def live_preview():
    """``POST {"topics": "…"}`` (JSON, the page's CSRF token in ``X-CSRFToken``): the papers of the
    last days the filters would match, words to highlight marked; or the filters' problems."""
    if request.content_length is None or request.content_length > LIVE_PREVIEW_MAX_BYTES:
        return jsonify(ok=False, error=f"Send at most {LIVE_PREVIEW_MAX_BYTES} bytes."), 413
    try:
        current_app.extensions["csrf"].protect()
    except CSRFError:
        return jsonify(ok=False, error="This form has expired: reload the page."), 400
    data = request.get_json(silent=True)
    topics = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(topics, str):
        return jsonify(ok=False, error='Send JSON: {"topics": "one filter per line"}.'), 400
    settings = _settings()
    with session_scope(settings) as session:
        return jsonify(live.live_preview(session, topics, arxiv_limit=settings.arxiv_size))


def register(app: Flask, limiter: Limiter, csrf: CSRFProtect, settings: Settings) -> None:
    extra = settings.extra
    subscribe_limit = extra.get("rate_limit_subscribe", "10 per minute; 50 per hour")
    link_limit = extra.get("rate_limit_links", "30 per minute; 300 per hour")
    # one-click unsubscribes come from mail providers' servers, many users behind one address
    unsubscribe_limit = extra.get("rate_limit_unsubscribe", "300 per minute")
    preview_limit = extra.get("rate_limit_preview", "60 per minute; 1000 per hour")  # debounced typing

    def limited(value: str, view, methods=None):
        return limiter.limit(value, methods=methods, override_defaults=False)(view)

    app.context_processor(lambda: {"frequencies": FREQUENCIES, "hours": HOURS, "timezones": timezone_choices()})
    csrf.exempt(confirm)  # the signed token in the URL is the credential
    csrf.exempt(unsubscribe)  # RFC 8058: mail providers post without cookies or CSRF token
    csrf.exempt(live_preview)  # checked in the view, to answer in JSON
    rule = app.add_url_rule
    rule("/", "home", limited(subscribe_limit, home, ["POST"]), methods=["GET", "POST"])
    rule("/check-your-inbox", "check_inbox", check_inbox)
    rule("/confirm/<token>", "confirm", limited(link_limit, confirm), methods=["GET", "POST"])
    rule("/preferences/<token>", "preferences", limited(link_limit, preferences), methods=["GET", "POST"])
    rule("/unsubscribe/<token>", "unsubscribe", limited(unsubscribe_limit, unsubscribe), methods=["GET", "POST"])
    rule("/preview", "live_preview", limited(preview_limit, live_preview), methods=["POST"])
    rule("/healthz", "healthz", limiter.exempt(healthz))
