"""What an instance records about itself: today, that its database was made by ``digest demo`` and
the base URL that demo serves, so that CLI commands run beside it (``send``, ``subscribers
import``, ``explain``) mail links the demo answers, without being told again.

One row per key in ``instance_settings``; read and written with a session by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from digest.models.base import Base, utcnow

DEMO = "demo"
DEMO_BASE_URL = "demo.base_url"
DEMO_PUBLIC_KEY = "demo.public_key"


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
