"""Signing operators in and out of the console, and the check every other console request passes.

The session (Flask's signed cookie, ``digest_session``: HttpOnly, SameSite=Lax, Secure when the base
URL is https) holds the operator's id, the nonce of this login and when it began. A request is the
operator's only while that nonce is the one stored on their row (:func:`~digest.models.operators.session_operator`),
the account is enabled and the login is younger than :data:`SESSION_HOURS`: a new login elsewhere,
``digest admin disable``, a new password or signing out ends it at its next request. Signing in
starts a new session (every key of the old one dropped, the CSRF token with them: no fixation).

Without a session a page (GET) redirects to the sign-in form and anything else is a 401. Signing
in is rate-limited per client address and per account (:data:`LOGIN_LIMIT`); a refused sign-in
does as much work whether the email has an account or not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from digest.config import Settings
from digest.db import session_scope
from digest.models.operators import MAX_PASSWORD, audit, authenticate, session_operator, start_session
from digest.web.site import error_page

SESSION_HOURS = 12  # a console login lasts at most this long
LOGIN_LIMIT = "5 per minute"  # sign-in attempts per client address, and per account
OPERATOR, NONCE, SINCE = "operator_id", "operator_nonce", "operator_since"


@dataclass(frozen=True)
class SignedIn:
    """The operator of this request (read once, at its start)."""

    id: int
    email: str


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD)])
    next = HiddenField()


def _settings() -> Settings:
    return current_app.config["DIGEST_SETTINGS"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def operator() -> SignedIn:
    """The signed-in operator (only inside the console, past :func:`require_operator`)."""
    return g.operator


def _end_session() -> None:
    for key in (OPERATOR, NONCE, SINCE):
        session.pop(key, None)


def require_operator():
    """Before every console request but the sign-in form: the operator, or a redirect / 401."""
    if request.endpoint == "admin.login":
        return None
    found = None
    since = session.get(SINCE)
    if isinstance(since, int | float) and time.time() - since < SESSION_HOURS * 3600:
        with session_scope(_settings()) as db:
            op = session_operator(db, session.get(OPERATOR), session.get(NONCE))
            found = SignedIn(op.id, op.email) if op is not None else None
    if found is None:
        _end_session()
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")), 303)
        return error_page(401, "Sign in first", "This part of the site is for the operators of the service. Sign in, then try again.")
    g.operator = found
    return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page of this site, never another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/admin") and "\\" not in target:
            return target
    return url_for("admin.dashboard")


def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    if request.method == "POST":
        if form.validate():
            email = form.email.data.strip().lower()
            with session_scope(_settings()) as db:
                op = authenticate(db, email, form.password.data)
                if op is not None:
                    nonce = start_session(op, _now())
                    audit(db, op.email, "login", details={"address": request.remote_addr})
                    signed_in = (op.id, nonce)
                else:
                    audit(db, email, "login_refused", details={"address": request.remote_addr})
                    signed_in = None
            if signed_in is not None:
                session.clear()  # a new session: nothing of the old one survives (its CSRF token neither)
                session[OPERATOR], session[NONCE], session[SINCE] = signed_in[0], signed_in[1], int(time.time())
                return redirect(safe_next(form.next.data), 303)
            form.password.errors.append("Wrong email or password, or the account is disabled.")
        status = 400
    return render_template("admin/login.html", form=form), status


def logout():
    """POST only (with the CSRF token): ends this login here and on the server."""
    op = operator()
    with session_scope(_settings()) as db:
        current = session_operator(db, op.id, session.get(NONCE))
        if current is not None:
            current.session_nonce = None
        audit(db, op.email, "logout")
    session.clear()
    return redirect(url_for("admin.login", signed_out=1), 303)
