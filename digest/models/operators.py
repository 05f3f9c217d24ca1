"""Who runs the instance: operator accounts for the console (/admin), and the audit log of what they
(and the command line) did.

An operator signs in with an email and a password, stored hashed with scrypt (Werkzeug's
``generate_password_hash``: salted, memory-hard) and checked in constant time. ``session_nonce``
is the current login's: a new login replaces it, so a session cookie of an earlier login, a
disabled account's or one logged out is refused on its next request.

Every action is one :class:`AuditEntry`, written by :func:`audit` in the transaction of the action
itself (it is there if and only if the action happened). The entry keeps the operator's email as
text, never a foreign key: it outlives the account.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, false, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from digest.models.base import Base, Created, IntPK, utcnow

MIN_PASSWORD = 12  # characters; a console that can stop every mail deserves a real one
MAX_PASSWORD = 1024  # hashing is deliberately slow: no megabyte passwords
CLI = "cli"  # the operator of an action taken on the command line


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[IntPK]
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-case
    password_hash: Mapped[str] = mapped_column(String(255))
    session_nonce: Mapped[str | None] = mapped_column(String(64))  # the current login's; None: signed out
    created_at: Mapped[Created]
    last_login_at: Mapped[datetime | None]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuditEntry(Base):
    """One action: who (an operator's email, or ``cli``), what, on what, when, and its details."""

    __tablename__ = "audit_log"

    id: Mapped[IntPK]
    at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    operator: Mapped[str] = mapped_column(String(254))  # kept as text: the entry outlives the account
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(254))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class PasswordError(ValueError):
    pass


def check_password(password: str) -> str:
    """The password, if it may be one (long enough, not absurdly long); else :class:`PasswordError`."""
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordError(f"the password must have at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise PasswordError("the password is only spaces")
    return password


def hash_password(password: str) -> str:
    return generate_password_hash(check_password(password), method="scrypt")


# a hash to check against when the email is nobody's, so that an unknown address takes as long as a known one
_NOBODY = generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


def by_email(session: Session, email: str) -> Operator | None:
    return session.scalars(select(Operator).where(Operator.email == email.strip().lower())).first()


def create_operator(session: Session, email: str, password: str) -> Operator:
    """A new account (the caller commits); ValueError if the email has one already."""
    email = email.strip().lower()
    if by_email(session, email) is not None:
        raise ValueError(f"{email} has an account already")
    operator = Operator(email=email, password_hash=hash_password(password), disabled=False)
    session.add(operator)
    session.flush()
    return operator


def authenticate(session: Session, email: str, password: str) -> Operator | None:
    """The enabled operator with this email and password, else None; the same work either way."""
    operator = by_email(session, email) if len(email) <= 254 else None
    password = password[:MAX_PASSWORD]
    good = check_password_hash(operator.password_hash if operator is not None else _NOBODY, password)
    return operator if good and operator is not None and not operator.disabled else None


def start_session(operator: Operator, now: datetime) -> str:
    """A new login: its nonce (every earlier session of this operator ends)."""
    operator.session_nonce = secrets.token_urlsafe(24)
    operator.last_login_at = now
    return operator.session_nonce


def session_operator(session: Session, operator_id: object, nonce: object) -> Operator | None:
    """The operator a console session names, if that session is still the operator's current one
    and the account is enabled; else None (the session is over)."""
    if not isinstance(operator_id, int) or not isinstance(nonce, str) or not nonce:
        return None
    operator = session.get(Operator, operator_id)
    if operator is None or operator.disabled or not operator.session_nonce:
        return None
    return operator if hmac.compare_digest(operator.session_nonce, nonce) else None


def audit(session: Session, operator: str, action: str, target: str | None = None, details: dict[str, Any] | None = None) -> AuditEntry:
    """Record an action, in the caller's transaction (the caller commits it with the action)."""
    entry = AuditEntry(operator=operator[:254], action=action[:64], target=target[:254] if target else target, details=details or None)
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int


def audit_log(session: Session, *, limit: int = 100, before: int | None = None) -> AuditPage:
    """The newest ``limit`` entries (older than entry ``before``), newest first, and how many there are."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    total = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    return AuditPage(list(session.scalars(query)), total)
