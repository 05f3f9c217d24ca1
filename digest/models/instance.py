"""What an instance records about itself: that its database was made by ``digest demo`` and the
base URL that demo serves, so that CLI commands run beside it (``send``, ``subscribers import``,
``explain``) mail links the demo answers, without being told again; and whether sending is paused
(``digest pause``, the console), since when and by whom.

One row per key in ``instance_settings``; read and written with a session by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.models.base import Base, utcnow

DEMO = "demo"
DEMO_BASE_URL = "demo.base_url"
DEMO_PUBLIC_KEY = "demo.public_key"
PAUSED = "sending.paused"  # present while sending is paused: {"since": ISO-8601, "by": who}


class InstanceSetting(Base):
    __tablename__ = "instance_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class DemoRecord:
    """The demo that made this database: the base URL its links use, and whether it signs them
    with the public demo key (else with a DIGEST_SECRET_KEY of its own, which is never stored)."""

    base_url: str
    public_key: bool


def record_demo(session: Session, base_url: str, public_key: bool) -> None:
    """Mark the database as the demo's (each start of ``digest demo`` records its base URL again)."""
    values = {DEMO: "true", DEMO_BASE_URL: base_url, DEMO_PUBLIC_KEY: "true" if public_key else "false"}
    stored = {row.key: row for row in session.scalars(select(InstanceSetting).where(InstanceSetting.key.in_(values)))}
    for key, value in values.items():
        if key in stored:
            stored[key].value = value
        else:
            session.add(InstanceSetting(key=key, value=value))


def demo_record(session: Session) -> DemoRecord | None:
    """The demo record of this database; None for a database ``digest demo`` did not make."""
    values = dict(session.execute(select(InstanceSetting.key, InstanceSetting.value).where(InstanceSetting.key.like("demo%"))).all())
    if values.get(DEMO) != "true" or not values.get(DEMO_BASE_URL):
        return None
    return DemoRecord(values[DEMO_BASE_URL], values.get(DEMO_PUBLIC_KEY) == "true")


@dataclass(frozen=True)
class Pause:
    """Sending is paused: planning plans nothing and send batches send nothing until it is resumed."""

    since: datetime
    by: str

    def line(self) -> str:
        return f"sending is PAUSED since {self.since:%Y-%m-%d %H:%M} UTC by {self.by}"


def sending_paused(session: Session) -> Pause | None:
    """The pause in force, or None: one read by primary key (a send batch asks it once)."""
    value = session.scalar(select(InstanceSetting.value).where(InstanceSetting.key == PAUSED))
    if value is None:
        return None
    try:
        data = json.loads(value)
        return Pause(datetime.fromisoformat(data["since"]), str(data["by"]))
    except (ValueError, KeyError, TypeError):  # written by hand: still paused
        return Pause(datetime.fromisoformat("1970-01-01T00:00:00+00:00"), "unknown")


def pause_sending(session: Session, by: str, now: datetime) -> Pause | None:
    """Pause sending; returns the pause in force before (None: it was running, now paused; the
    caller commits). An existing pause keeps its moment and author."""
    before = sending_paused(session)
    if before is None:
        try:
            with session.begin_nested():
                session.add(InstanceSetting(key=PAUSED, value=json.dumps({"since": now.isoformat(), "by": by})))
        except IntegrityError:  # another operator paused it this very moment
            return sending_paused(session)
    return before


def resume_sending(session: Session) -> Pause | None:
    """Resume sending; returns the pause it ended (None: it was not paused). The caller commits."""
    before = sending_paused(session)
    if before is not None:
        session.execute(delete(InstanceSetting).where(InstanceSetting.key == PAUSED))
    return before
