"""Amazon SES's bounce, complaint and delivery notifications, as Amazon SNS posts them to
``POST /webhooks/bounces/ses`` (:mod:`digest.web.webhooks`): checked, then recorded one event per
recipient by :func:`digest.bounces.events.record`, as the listener records a report.

Checked as AWS's "Verifying the signatures of Amazon SNS messages" says
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): the message's
``TopicArn`` must be one of ``DIGEST_SES_TOPIC_ARN`` (so a stranger's topic cannot post here); its
``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com[.cn]/….pem``, anything else is
refused without a fetch; the certificate is fetched from there (a timeout, a size cap, kept per URL
in the process) and the signature checked with cryptography — ``SignatureVersion`` 1 is
SHA1withRSA, 2 SHA256withRSA — over the documented keys in the documented order. A message that
fails (another topic, a certificate elsewhere, a bad or missing signature) changes nothing and is
counted as forged. A ``SubscriptionConfirmation`` that verifies is confirmed by a GET of its
``SubscribeURL`` (the same host rule). No Python library for this is maintained and installable
here (aws-sns-message-validator, last released in 2022, checks SHA1 only and fetches with no
timeout or cap; aws-sns-verifier needs Python 3.13), so the check is written out below.

Whose mail a notification reports: the envelope sender SES names (``mail.source``), our VERP
address when ``DIGEST_BOUNCE_DOMAIN`` is set (:mod:`digest.mail.verp`); else a digest's Message-ID
(``digest.<delivery>@<mail domain>``, :func:`digest.mail.digest_email.message_id`); else the
recipient's address. Each event is stored once per SES message, feedback id and recipient, so a
notification SNS delivers twice counts once.

For the tests only, two entries of ``Settings.extra`` (no environment variable reaches them):
``ses_trusted_host``, a regular expression for ``host[:port]`` in place of AWS's hosts, and
``ses_tls_verify``, an ``ssl.SSLContext`` that trusts the test's own CA. HTTPS stays required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy.exc import SQLAlchemyError

from digest.bounces.events import Event, record
from digest.bounces.reports import COMPLAINTS
from digest.config import Settings
from digest.db import session_scope
from digest.mail import verp
from digest.mail.digest_email import message_id
from digest.models import EventKind

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024  # bytes: an SNS message is at most 256 KB, and JSON escapes it
MAX_FETCH = 64 * 1024  # bytes: a signing certificate is ~2 KB, a ConfirmSubscription answer less
FETCH_TIMEOUT = 10.0  # seconds
MAX_KEYS = 32  # signing certificates kept per process (AWS has one per region at a time)
AWS_HOST = r"sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?"  # no port, no user: the whole host[:port]
#: The keys each message type signs, in the order they are signed ("Subject" only when present).
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
BOUNCE_KINDS = {"Permanent": EventKind.hard, "Transient": EventKind.soft}  # Undetermined, anything else: soft

_keys: dict[str, rsa.RSAPublicKey] = {}  # SigningCertURL -> its certificate's key
_keys_lock = threading.Lock()


@dataclass(frozen=True)
class Reply:
    """What the webhook answers: SNS retries a 5xx (and a timeout), not a 4xx."""

    status: int
    text: str


class Refused(Exception):
    """Not a message SNS sent us: another topic, a certificate elsewhere, a bad signature."""


class Unavailable(Exception):
    """A fetch that failed on the way (a timeout, AWS's 5xx): worth SNS's next try."""


def receive(settings: Settings, body: bytes, at: datetime) -> Reply:
    """Check one SNS message and do what it asks: record a notification's events, confirm a
    subscription. Never raises for what a client sent."""
    if not settings.ses_topic_arns:
        return Reply(404, "not found")
    message = _sns_message(body)
    if message is None:
        return Reply(400, "not an SNS message")
    try:
        if message["TopicArn"] not in settings.ses_topic_arns:
            raise Refused(f"topic {message['TopicArn']} is not one of DIGEST_SES_TOPIC_ARN")
        verify(settings, message)
        if message["Type"] == "SubscriptionConfirmation":
            return _confirm(settings, message)
    except Refused as exc:
        _count_forged(settings, message, body, str(exc), at)
        return Reply(403, f"refused: {exc}")
    except Unavailable as exc:
        log.warning("SNS message %s not taken now: %s", message["MessageId"], exc)
        return Reply(503, "cannot check this message now; try again later")
    if message["Type"] == "UnsubscribeConfirmation":
        log.info("SNS says the webhook's subscription to %s ended", message["TopicArn"])
        return Reply(200, "noted")
    events = notification_events(settings, message, at)
    try:
        with session_scope(settings) as session:
            outcomes = [record(session, event) for event in events]
    except SQLAlchemyError:
        log.exception("cannot record SNS message %s", message["MessageId"])
        return Reply(503, "cannot record this notification now; try again later")
    for event, outcome in zip(events, outcomes):
        log.info("SES %s %s: %s", event.kind.value, outcome.value, event.diagnostic)
    return Reply(200, "recorded: " + (", ".join(f"{e.kind.value} {o.value}" for e, o in zip(events, outcomes)) or "nothing"))


def _sns_message(body: bytes) -> dict | None:
    """The body as an SNS message: a JSON object of a known ``Type`` whose signed keys are strings."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep
        return None
    if not isinstance(message, dict) or message.get("Type") not in SIGNED:
        return None
    signed = SIGNED[message["Type"]]
    if not all(isinstance(message.get(key), str) for key in signed if key != "Subject"):
        return None
    if not isinstance(message.get("Subject", ""), str):
        return None
    return message


# ---------------------------------------------------------------- the signature


def string_to_sign(message: dict) -> bytes:
    """Each signed key present, then its value, each on its own line, in the documented order."""
    return "".join(f"{key}\n{message[key]}\n" for key in SIGNED[message["Type"]] if key in message).encode()


def verify(settings: Settings, message: dict) -> None:
    """Raise :class:`Refused` unless ``message`` is signed by the certificate of an SNS host."""
    version = message.get("SignatureVersion")
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise Refused("SignatureVersion is neither 1 nor 2")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Refused("the Signature is not base64") from None
    if not signature:
        raise Refused("no Signature")
    key = _signing_key(settings, message.get("SigningCertURL"))
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Refused("the signature does not verify") from None


def trusted(settings: Settings, url: object) -> bool:
    """Whether ``url`` is ``https://`` on an SNS host (no user, no port), as httpx would reach it."""
    if not isinstance(url, str):
        return False
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if parsed.scheme != "https" or parsed.userinfo:
        return False
    where = parsed.host + (f":{parsed.port}" if parsed.port is not None else "")
    return re.fullmatch(settings.extra.get("ses_trusted_host", AWS_HOST), where) is not None


def _signing_key(settings: Settings, url: object) -> rsa.RSAPublicKey:
    if not trusted(settings, url) or not httpx.URL(str(url)).path.endswith(".pem"):
        raise Refused(f"the SigningCertURL is not an SNS certificate: {str(url)[:200]}")
    url = str(url)
    with _keys_lock:
        key = _keys.get(url)
    if key is not None:
        return key
    status, pem = _get(settings, url)
    if status != 200:
        raise Refused(f"the SigningCertURL answered {status}")
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise Refused("the SigningCertURL is not a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("the signing certificate's key is not RSA")
    with _keys_lock:
        if len(_keys) >= MAX_KEYS:
            _keys.clear()
        _keys[url] = key
    return key


def _get(settings: Settings, url: str) -> tuple[int, bytes]:
    """(status, at most :data:`MAX_FETCH` bytes) of a GET of ``url``, which :func:`trusted` passed;
    :class:`Unavailable` on a network failure, a timeout, a 429 or a 5xx."""
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT, verify=settings.extra.get("ses_tls_verify", True), follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 429 or response.status_code >= 500:
                raise Unavailable(f"{response.url.host} answered {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FETCH:
                    raise Refused(f"{response.url.host} sent more than {MAX_FETCH} bytes")
            return response.status_code, bytes(data)
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach {httpx.URL(url).host}: {exc.__class__.__name__} {str(exc)[:200]}") from None


def _confirm(settings: Settings, message: dict) -> Reply:
    """Confirm the subscription a verified ``SubscriptionConfirmation`` asks for."""
    url = message["SubscribeURL"]
    if not trusted(settings, url):
        raise Refused(f"the SubscribeURL is not on an SNS host: {url[:200]}")
    status, _ = _get(settings, url)
    if status != 200:  # an old confirmation (its token lasts three days): the operator asks SNS again
        raise Unavailable(f"confirming the subscription to {message['TopicArn']}: SNS answered {status}")
    log.info("confirmed the webhook's subscription to SNS topic %s", message["TopicArn"])
    return Reply(200, "subscription confirmed")


def _count_forged(settings: Settings, message: dict, body: bytes, why: str, at: datetime) -> None:
    claims = f"an SNS {message['Type']} from {message['TopicArn']}"
    if message["Type"] == "Notification":
        found = _recipients(_notification(message))
        claims += f" ({found[0][0].value} for {', '.join(address for _, address, _ in found[:3])})" if found else ""
    event = Event(EventKind.forged, at, hashlib.sha256(b"ses forged\n" + body).hexdigest(), diagnostic=f"{why}; {claims}")
    try:
        with session_scope(settings) as session:
            record(session, event)
    except SQLAlchemyError:  # counting it is not worth a 5xx
        log.exception("cannot count a forged SNS message")


# ---------------------------------------------------------------- what SES reports


def notification_events(settings: Settings, message: dict, at: datetime) -> list[Event]:
    """One event per recipient of the SES notification a verified SNS ``Notification`` carries;
    none for another kind of notification (SES's Send, Reject, Open…) or another message."""
    notification = _notification(message)
    mail = _dict(notification.get("mail"))
    named = _named(settings, mail)
    mail_id = _str(mail.get("messageId")) or message["MessageId"]
    return [
        Event(
            kind,
            at,
            hashlib.sha256(f"ses\n{mail_id}\n{feedback_id}\n{address.lower()}".encode()).hexdigest(),
            address,
            diagnostic,
            delivery=named.delivery,
            subscriber=named.subscriber,
        )
        for kind, address, (feedback_id, diagnostic) in _recipients(notification)
    ]


def _notification(message: dict) -> dict:
    try:
        notification = json.loads(message["Message"])
    except (ValueError, RecursionError):
        return {}
    return notification if isinstance(notification, dict) else {}


def _recipients(notification: dict) -> list[tuple[EventKind, str, tuple[str, str]]]:
    """(kind, recipient, (feedback id, diagnostic)) for each recipient a notification names: the
    ``notificationType`` of an identity's notifications, or the ``eventType`` of a configuration set's."""
    what = notification.get("notificationType") or notification.get("eventType")
    found: list[tuple[EventKind, str, tuple[str, str]]] = []
    if what == "Bounce":
        bounce = _dict(notification.get("bounce"))
        bounce_type, sub_type = _str(bounce.get("bounceType")), _str(bounce.get("bounceSubType"))
        kind = BOUNCE_KINDS.get(bounce_type, EventKind.soft)
        for recipient in _dicts(bounce.get("bouncedRecipients")):
            said = " ".join(p for p in (_str(recipient.get("status")), _str(recipient.get("diagnosticCode"))) if p)
            diagnostic = f"SES {bounce_type or 'bounce'}/{sub_type or '-'}" + (f": {said}" if said else "")
            found.append((kind, _address(recipient.get("emailAddress")), (_str(bounce.get("feedbackId")), diagnostic)))
    elif what == "Complaint":
        complaint = _dict(notification.get("complaint"))
        feedback_type = _str(complaint.get("complaintFeedbackType")).strip().lower()
        kind = EventKind.complaint if not feedback_type or feedback_type in COMPLAINTS else EventKind.other
        agent = _str(complaint.get("userAgent"))
        diagnostic = f"SES complaint: {feedback_type or 'no feedback type'}" + (f" ({agent})" if agent else "")
        for recipient in _dicts(complaint.get("complainedRecipients")):
            found.append((kind, _address(recipient.get("emailAddress")), (_str(complaint.get("feedbackId")), diagnostic)))
    elif what == "Delivery":
        delivery = _dict(notification.get("delivery"))
        diagnostic = f"SES delivery: {_str(delivery.get('smtpResponse')) or 'delivered'}"
        recipients = delivery.get("recipients")
        for recipient in recipients if isinstance(recipients, list) else []:
            found.append((EventKind.delivered, _address(recipient), ("delivery", diagnostic)))
    return [(kind, address, rest) for kind, address, rest in found if address]


def _named(settings: Settings, mail: dict) -> verp.Named:
    """What the sent message's envelope sender, else its Message-ID, names (nothing: the address decides)."""
    try:
        return verp.read(settings, _address(mail.get("source")))
    except verp.NotOurs:
        pass
    given = _str(_dict(mail.get("commonHeaders")).get("messageId")).strip().strip("<>")
    local = given.partition("@")[0]
    if local.startswith("digest.") and message_id(settings, local.removeprefix("digest.")) == given:
        return verp.Named(delivery=local.removeprefix("digest."))
    return verp.Named()


def _address(value: object) -> str:
    return parseaddr(value)[1].strip() if isinstance(value, str) else ""


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
