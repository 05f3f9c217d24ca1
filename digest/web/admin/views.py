"""The console's pages: the dashboard, a subscriber, the actions, the audit log.

Each action is a POST (with the CSRF token every form here carries) that changes one thing and
writes its :class:`~digest.models.operators.AuditEntry` in the same transaction, then redirects
to a page saying what happened. Every page shows whether sending is paused.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, Flask, current_app, flash, g, redirect, render_template, request, url_for
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from jinja2 import TemplateNotFound
from sqlalchemy import func, select

from digest import stats as instance_stats
from digest.config import Settings
from digest.db import session_scope
from digest.models import Paper, Subscriber, Vote, sending_paused
from digest.models.instance import pause_sending, resume_sending
from digest.models.operators import audit, audit_log
from digest.subscribers.addresses import normalize_email
from digest.subscribers.show import show
from digest.subscribers.suppression import restorable, restore_address, suppress_address
from digest.web.admin import auth

try:  # the dashboard's charts (digest/web/admin/charts.py); the console works without them
    from digest.web.admin import charts
except ImportError:  # pragma: no cover - only while that module is not there
    charts = None

log = logging.getLogger(__name__)

AUDIT_PAGE = 100
LAST_VOTES = 20
MATCHES = 20  # subscribers listed for a part of an address
INGEST_TASK = "digest.ingest"


def _settings() -> Settings:
    return current_app.config["DIGEST_SETTINGS"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def layout() -> dict:
    """Every console page: who is signed in, and whether sending is paused (the banner)."""
    with session_scope(_settings()) as db:
        paused = sending_paused(db)
    return {"pause": paused, "operator": getattr(g, "operator", None)}


# ---------------------------------------------------------------- the dashboard


def _charts(settings: Settings, now: datetime) -> tuple[list, list, str | None]:
    """The charts and tables of :mod:`digest.web.admin.charts`, and None; or why there are none.
    A chart that fails is logged and left out: the dashboard (where sending is paused) stays up."""
    if charts is None:
        return [], [], "The charts are not available in this installation."
    try:
        current_app.jinja_env.get_template("admin/_charts.html")
    except TemplateNotFound:
        return [], [], "The charts are not available in this installation."
    try:
        with session_scope(settings) as db:
            return charts.dashboard_charts(db, settings, now), charts.dashboard_tables(db, settings, now), None
    except Exception:
        log.exception("the dashboard's charts failed")
        return [], [], "The charts could not be drawn this time (the error is in the log)."


def dashboard():
    settings, now = _settings(), _now()
    with session_scope(settings) as db:
        numbers = instance_stats.stats(db, now)
    drawn, tables, missing = _charts(settings, now)
    return render_template("admin/dashboard.html", stats=numbers, charts=drawn, tables=tables, charts_missing=missing, now=now)


# ---------------------------------------------------------------- a subscriber


def _email_arg(value: str | None) -> str | None:
    """An address as stored (lower-case, IDN in punycode), or None if it cannot be one."""
    try:
        return normalize_email(value or "")
    except ValueError:
        return None


def subscribers():
    query = (request.args.get("email") or "").strip()[:254]
    view = votes = verdict = None
    matches: list[Subscriber] = []
    with session_scope(_settings()) as db:
        if query:
            email = _email_arg(query)
            view = show(db, email) if email else None
            if view is None:
                pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                matches = list(
                    db.scalars(
                        select(Subscriber).where(Subscriber.email.like(pattern, escape="\\")).order_by(Subscriber.email).limit(MATCHES)
                    )
                )
            else:
                votes = db.execute(
                    select(Vote.vote, Vote.source, Vote.created_at, Paper.arxiv_id, Paper.title)
                    .join(Paper, Paper.id == Vote.paper_id)
                    .where(Vote.subscriber_id == view.subscriber.id)
                    .order_by(Vote.created_at.desc(), Paper.id.desc())
                    .limit(LAST_VOTES)
                ).all()
                vote_count = db.scalar(select(func.count()).select_from(Vote).where(Vote.subscriber_id == view.subscriber.id)) or 0
                verdict = restorable(view.subscriber)
                votes = (votes, vote_count)
        return render_template("admin/subscriber.html", query=query, view=view, votes=votes, verdict=verdict, matches=matches)


def _address_action(action: str, apply) -> object:
    email = _email_arg(request.form.get("email"))
    if email is None:
        flash("That is not an email address.", "error")
        return redirect(url_for("admin.subscribers"), 303)
    op = auth.operator()
    with session_scope(_settings()) as db:
        outcome = apply(db, email, op)
        audit(db, op.email, action, email, {"changed": outcome.changed, "outcome": outcome.message})
    flash(outcome.message, "ok" if outcome.changed else "warn")
    return redirect(url_for("admin.subscribers", email=email), 303)


def suppress():
    return _address_action("suppress", lambda db, email, op: suppress_address(db, email, op.email, _now()))


def restore():
    return _address_action("restore", lambda db, email, op: restore_address(db, email, _now()))


# ---------------------------------------------------------------- actions


def actions():
    settings = _settings()
    return render_template("admin/actions.html", queued=bool(settings.broker_url), source=settings.source_url)


def pause():
    op = auth.operator()
    with session_scope(_settings()) as db:
        before = pause_sending(db, op.email, _now())
        if before is None:
            audit(db, op.email, "pause")
    flash(
        "Sending is paused: nothing is planned or sent until you resume it." if before is None else f"Already paused: {before.line()}.",
        "ok",
    )
    return redirect(_back(), 303)


def resume():
    op = auth.operator()
    with session_scope(_settings()) as db:
        ended = resume_sending(db)
        if ended is not None:
            audit(db, op.email, "resume", details={"paused_since": ended.since.isoformat(), "paused_by": ended.by})
    flash("Sending resumed: the next planning run sends what is due." if ended is not None else "Sending was not paused.", "ok")
    return redirect(_back(), 303)


def _back() -> str:
    """The console page the form was on (``back``), else the dashboard."""
    target = request.form.get("back", "")
    return target if target in {url_for("admin.dashboard"), url_for("admin.actions")} else url_for("admin.dashboard")


def ingest():
    """Run the ingest job now: in this request without a broker, else as a task for the workers."""
    from digest import jobs
    from digest.queue import celery_client

    settings, op = _settings(), auth.operator()
    details: dict[str, object]
    if settings.broker_url:
        try:
            celery_client(settings).send_task(INGEST_TASK, kwargs={"force": True})
            details, message, kind = {"queued": True}, "Ingest queued for the workers: its run appears below when it is done.", "ok"
        except Exception as exc:  # the broker refuses
            details, message, kind = {"error": f"{exc.__class__.__name__}: {exc}"}, f"The broker refused the task: {exc}", "error"
    else:
        try:
            report = jobs.run_ingest(settings, _now())
            details, message, kind = {"report": report.lines()}, "Ingest done: " + "; ".join(report.lines()), "ok"
        except Exception as exc:  # the source is down, or answers nonsense: said, and in the log
            log.warning("ingest from the console failed: %s", exc, exc_info=True)
            details, message, kind = (
                {"error": f"{exc.__class__.__name__}: {exc}"},
                f"Ingest failed: {exc.__class__.__name__}: {exc}",
                "error",
            )
    with session_scope(settings) as db:
        audit(db, op.email, "ingest", settings.source_url[:254], details)
    flash(message[:2000], kind)
    return redirect(url_for("admin.actions"), 303)


# ---------------------------------------------------------------- the audit log


def audit_page():
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    with session_scope(_settings()) as db:
        page = audit_log(db, limit=AUDIT_PAGE, before=before_id)
        return render_template("admin/audit.html", page=page, page_size=AUDIT_PAGE)


def register(app: Flask, limiter: Limiter, csrf: CSRFProtect, settings: Settings) -> None:
    """The console at /admin, sign-in rate-limited per client address and per account."""
    login_limit = settings.extra.get("rate_limit_admin_login", auth.LOGIN_LIMIT)

    def account() -> str:
        return "admin-login:" + (request.form.get("email") or "").strip().lower()[:254]

    login = limiter.limit(login_limit, methods=["POST"], override_defaults=False)(auth.login)
    login = limiter.limit(login_limit, key_func=account, methods=["POST"], override_defaults=False, scope="admin-login-account")(login)
    bp = Blueprint("admin", __name__, url_prefix="/admin")  # one per app: the tests make many
    bp.before_request(auth.require_operator)
    bp.context_processor(layout)
    rule = bp.add_url_rule
    rule("/login", "login", login, methods=["GET", "POST"])
    rule("/logout", "logout", auth.logout, methods=["POST"])
    rule("/", "dashboard", dashboard)
    rule("/subscribers", "subscribers", subscribers)
    rule("/subscribers/suppress", "suppress", suppress, methods=["POST"])
    rule("/subscribers/restore", "restore", restore, methods=["POST"])
    rule("/actions", "actions", actions)
    rule("/pause", "pause", pause, methods=["POST"])
    rule("/resume", "resume", resume, methods=["POST"])
    rule("/ingest", "ingest", ingest, methods=["POST"])
    rule("/audit", "audit", audit_page)
    app.register_blueprint(bp)
    if not settings.base_url.startswith("https://") and not settings.demo:
        log.warning("the console's session cookie is not Secure: DIGEST_BASE_URL is not https")
