"""The data model: papers and their vectors, subscribers with their topic filters, votes and taste
profiles, and the delivery ledger.

SQLAlchemy 2.0 typed models that work on PostgreSQL and SQLite. Every schema change is an
Alembic migration in ``alembic/versions``; server defaults are declared so Alembic sees them.

Split by subject: :mod:`~digest.models.base` (the base and shared column types),
:mod:`~digest.models.papers`, :mod:`~digest.models.subscribers`, :mod:`~digest.models.delivery`,
:mod:`~digest.models.taste`, :mod:`~digest.models.events` (what came back: bounces, complaints) and
:mod:`~digest.models.operators` (console accounts, the audit log);
every name is importable from ``digest.models`` as before.
"""

from digest.models.base import ID, NAMING, Base, UTCDateTime, new_public_id, utcnow
from digest.models.delivery import Delivery, DeliveryItem, DeliveryStatus
from digest.models.events import EventKind, MailEvent
from digest.models.instance import DemoRecord, InstanceSetting, Pause, demo_record, record_demo, sending_paused
from digest.models.operators import AuditEntry, Operator, audit
from digest.models.papers import IngestRun, Paper
from digest.models.subscribers import (
    ConfirmationQuota,
    Frequency,
    SignupRequest,
    Subscriber,
    SubscriberState,
    Suppression,
    TopicFilter,
    UnsubscribeMethod,
    address_hash,
)
from digest.models.taste import HalfFloats, PackedTerms, PaperVector, ReaderProfile, SparseVector, TermCount, Vote, VoteSource

__all__ = [
    "ID",
    "NAMING",
    "Base",
    "UTCDateTime",
    "new_public_id",
    "utcnow",
    "Delivery",
    "DeliveryItem",
    "DeliveryStatus",
    "EventKind",
    "MailEvent",
    "DemoRecord",
    "InstanceSetting",
    "demo_record",
    "record_demo",
    "Pause",
    "sending_paused",
    "AuditEntry",
    "Operator",
    "audit",
    "IngestRun",
    "Paper",
    "ConfirmationQuota",
    "Frequency",
    "SignupRequest",
    "Subscriber",
    "SubscriberState",
    "Suppression",
    "TopicFilter",
    "UnsubscribeMethod",
    "address_hash",
    "HalfFloats",
    "PackedTerms",
    "PaperVector",
    "ReaderProfile",
    "SparseVector",
    "TermCount",
    "Vote",
    "VoteSource",
]
