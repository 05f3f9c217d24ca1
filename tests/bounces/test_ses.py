"""``POST /webhooks/bounces/ses``: Amazon SES notifications (``samples/ses/``) wrapped in SNS messages
signed as SNS signs them, by a certificate made here, and posted to the real app.

SNS's certificate is fetched from a real local HTTPS server (``FakeSns``) standing in for
``sns.<region>.amazonaws.com``, with a server certificate from a CA made here too. The app is
pointed at it by two test-only entries of ``Settings.extra`` (``ses_trusted_host``: the local
``127.0.0.1:<port>`` in place of AWS's host pattern; ``ses_tls_verify``: an SSL context trusting the
test CA), which no environment variable reaches: HTTPS, the host check, the fetch, the cache and the
signature check all run as in production (whose AWS-only rule is checked on its own below).
The string each test signs is written here from AWS's documentation, not taken from the code.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from digest_helpers import AT, DAY, add_subscriber
from sqlalchemy import func, select

from digest.bounces import ses
from digest.config import ConfigError, Settings, load_settings
from digest.delivery.run import send_due
from digest.models import Delivery, EventKind, MailEvent, Subscriber, SubscriberState
from digest.web import create_app

SAMPLES = Path(__file__).parent / "samples" / "ses"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
CERT_PATH = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
#: The keys SNS signs, in its order ("Verifying the signatures of Amazon SNS messages").
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


# ---------------------------------------------------------------- certificates and the local SNS


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(cn: str, key, issuer: x509.Name, issuer_key, *, ca: bool = False, ip: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        no = False
        usage = x509.KeyUsage(no, no, no, no, no, key_cert_sign=True, crl_sign=True, encipher_only=no, decipher_only=no)
        builder = builder.add_extension(usage, critical=True)  # a CA that signs certificates, nothing else
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _self_signed(cn: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and its self-signed certificate, as SNS's signing certificates are RSA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _pem(_certificate(cn, key, _name(cn), key))


@dataclass
class Pki:
    ca_pem: bytes
    server_cert: Path
    server_key: Path
    signing_key: rsa.RSAPrivateKey  # SNS's, as the test plays it
    signing_pem: bytes
    impostor_key: rsa.RSAPrivateKey  # someone else's

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Test CA for the SES webhook", ca_key, _name("Test CA for the SES webhook"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ip="127.0.0.1")
    (folder / "server.pem").write_bytes(_pem(server) + _pem(ca))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    signing_key, signing_pem = _self_signed("sns.amazonaws.com")
    impostor_key, _ = _self_signed("sns.amazonaws.com")
    return Pki(_pem(ca), folder / "server.pem", folder / "server.key", signing_key, signing_pem, impostor_key)


@dataclass
class FakeSns:
    """A local HTTPS server in SNS's place: its signing certificate at ``CERT_PATH`` (and ``files``),
    ``?Action=ConfirmSubscription`` answered as SNS answers it; every request's path kept."""

    pki: Pki
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if self.path.startswith("/?Action=ConfirmSubscription&"):
                    body, status = b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult/></ConfirmSubscriptionResponse>", 200
                else:
                    body, status = owner.files.get(self.path, b"not found"), 200 if self.path in owner.files else 404
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.files.setdefault(CERT_PATH, self.pki.signing_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"https://{self.netloc}{path}"


@pytest.fixture
def sns(pki):
    server = FakeSns(pki)
    server.start()
    yield server
    server.stop()


def ses_webhook(settings: Settings, sns: FakeSns, pki: Pki) -> Settings:
    """``settings`` with the webhook on for ``TOPIC``, trusting the local SNS (test-only entries)."""
    extra = {**settings.extra, "ses_trusted_host": re.escape(sns.netloc), "ses_tls_verify": pki.client_context()}
    return settings.with_(ses_topic_arns=(TOPIC,), extra=extra)


@pytest.fixture
def ses_settings(bounce_settings, sns, pki) -> Settings:
    return ses_webhook(bounce_settings, sns, pki)


# ---------------------------------------------------------------- SNS messages


def sign(message: dict, key: rsa.RSAPrivateKey, version: str = "1") -> dict:
    """``message`` signed as SNS signs: each signed key present and its value, one per line."""
    keys = NOTIFICATION_KEYS if message["Type"] == "Notification" else CONFIRMATION_KEYS
    text = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()
    signature = key.sign(text, padding.PKCS1v15(), hashes.SHA1() if version == "1" else hashes.SHA256())
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def ses_notification(
    sample: str, *, rcpt: str, source: str, message_id: str = "a7c1e5b0.confirmation@example.org", feedback_id: str | None = None
) -> str:
    mail = Template((SAMPLES / "mail.json").read_text()).substitute(
        source=source, rcpt=rcpt, message_id=message_id, ses_message_id=f"0102019{uuid.uuid4().hex}-000000"
    )
    text = Template((SAMPLES / f"{sample}.json").read_text()).substitute(
        mail=mail, rcpt=rcpt, feedback_id=feedback_id or f"0102019{uuid.uuid4().hex}-000000"
    )
    return json.dumps(json.loads(text))  # as SES publishes it: compact JSON in SNS's Message


def notification(sns: FakeSns, message: str, *, topic: str = TOPIC, cert_url: str | None = None) -> dict:
    """An SNS Notification carrying ``message``, not yet signed."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-11-30T07:00:05.012Z",
        "SigningCertURL": cert_url or sns.url(CERT_PATH),
        "UnsubscribeURL": sns.url(f"/?Action=Unsubscribe&SubscriptionArn={topic}:7f1c"),
    }


def post(client, message: dict | bytes | str):
    body = message if isinstance(message, (bytes, str)) else json.dumps(message)
    kind = message.get("Type", "") if isinstance(message, dict) else ""
    # as SNS posts: text/plain, the type in a header; no cookie, no CSRF token
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": str(kind)}
    return client.post("/webhooks/bounces/ses", data=body, headers=headers)


def states(session) -> dict[str, SubscriberState]:
    session.expire_all()
    return dict(session.execute(select(Subscriber.email, Subscriber.state)).all())


def events(session) -> list[tuple[EventKind, str, int | None]]:
    session.expire_all()
    return session.execute(select(MailEvent.kind, MailEvent.address, MailEvent.delivery_id).order_by(MailEvent.id)).all()


def forged_count(session) -> int:
    return session.scalar(select(func.count()).select_from(MailEvent).where(MailEvent.kind == EventKind.forged))


READERS = ("pat@example.net", "sam@example.net", "cy@example.net")


def sent_digests(session, settings: Settings, relay, make_paper) -> dict[str, str]:
    """A digest sent to each reader through the relay; reader -> its envelope sender (bounce address)."""
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    for email in READERS:
        add_subscriber(session, email)
    session.commit()
    assert send_due(settings, AT, retry_delays=()).sent == len(READERS)
    return {c.rcpt_tos[0]: c.mail_from for c in relay.captured}


# ---------------------------------------------------------------- what a notification does


def test_a_permanent_bounce_suppresses_the_reader_whose_digest_it_names(session, ses_settings, relay, sns, pki, make_paper):
    senders = sent_digests(session, ses_settings, relay, make_paper)
    assert senders["pat@example.net"].startswith("bounces+")
    message = ses_notification("bounce-permanent", rcpt="pat@example.net", source=senders["pat@example.net"])
    client = create_app(ses_settings).test_client()

    reply = post(client, sign(notification(sns, message), pki.signing_key, "1"))

    assert (reply.status_code, reply.text) == (200, "recorded: hard suppressed\n")
    assert states(session) == {
        "pat@example.net": SubscriberState.suppressed,
        "sam@example.net": SubscriberState.active,
        "cy@example.net": SubscriberState.active,
    }
    pats_digest = session.scalar(select(Delivery.id).join(Subscriber).where(Subscriber.email == "pat@example.net"))
    assert events(session) == [(EventKind.hard, "pat@example.net", pats_digest)]
    reason = session.scalar(select(Subscriber.suppressed_reason).where(Subscriber.email == "pat@example.net"))
    assert "SES Permanent/General: 5.1.1 smtp; 550 5.1.1" in reason
    relay.captured.clear()
    make_paper("2611.00002", "Agents for science", day=DAY + dt.timedelta(days=1), upvotes=70, session=session)
    session.commit()
    assert send_due(ses_settings, AT + dt.timedelta(days=1), retry_delays=()).sent == 2  # the next send skips pat
    assert sorted(c.rcpt_tos[0] for c in relay.captured) == ["cy@example.net", "sam@example.net"]


@pytest.mark.parametrize(
    ("sample", "kind", "outcome", "state"),
    [
        ("bounce-transient", EventKind.soft, "transient", SubscriberState.active),
        ("bounce-undetermined", EventKind.soft, "transient", SubscriberState.active),
        ("complaint", EventKind.complaint, "unsubscribed", SubscriberState.unsubscribed),
        ("delivery", EventKind.delivered, "ignored", SubscriberState.active),
    ],
)
def test_each_kind_of_notification_does_what_the_rules_say(session, ses_settings, sns, pki, sample, kind, outcome, state):
    add_subscriber(session, "pat@example.net")
    add_subscriber(session, "sam@example.net")
    session.commit()
    # sent from DIGEST_MAIL_FROM's address (no VERP token): the recipient's address says whose it is
    message = ses_notification(sample, rcpt="Pat@Example.net", source="digest@example.org")

    reply = post(create_app(ses_settings).test_client(), sign(notification(sns, message), pki.signing_key, "2"))

    assert (reply.status_code, reply.text) == (200, f"recorded: {kind.value} {outcome}\n")
    assert states(session) == {"pat@example.net": state, "sam@example.net": SubscriberState.active}
    pats = session.scalar(select(Subscriber.id).where(Subscriber.email == "pat@example.net"))
    assert session.execute(select(MailEvent.kind, MailEvent.address, MailEvent.subscriber_id)).all() == [(kind, "Pat@Example.net", pats)]


def test_without_a_bounce_domain_the_digests_message_id_names_it(session, ses_settings, relay, sns, pki, make_paper):
    settings = ses_settings.with_(bounce_domain=None)
    senders = sent_digests(session, settings, relay, make_paper)
    assert senders["sam@example.net"] == "digest@example.org"
    sams = next(c for c in relay.captured if c.rcpt_tos == ["sam@example.net"])
    message = ses_notification(
        "bounce-permanent", rcpt="someone-else@example.net", source="digest@example.org", message_id=sams.message["Message-ID"].strip("<>")
    )

    reply = post(create_app(settings).test_client(), sign(notification(sns, message), pki.signing_key))

    assert reply.status_code == 200, reply.text
    assert states(session)["sam@example.net"] == SubscriberState.suppressed
    sams_digest = session.scalar(select(Delivery.id).join(Subscriber).where(Subscriber.email == "sam@example.net"))
    assert events(session) == [(EventKind.hard, "someone-else@example.net", sams_digest)]


def test_a_notification_sns_delivers_twice_is_stored_once(session, ses_settings, sns, pki):
    add_subscriber(session, "sam@example.net")
    session.commit()
    client = create_app(ses_settings).test_client()
    message = sign(
        notification(sns, ses_notification("bounce-transient", rcpt="sam@example.net", source="digest@example.org")), pki.signing_key
    )

    first, again = post(client, message), post(client, message)

    assert (first.text, again.text) == ("recorded: soft transient\n", "recorded: soft duplicate\n")
    assert events(session) == [(EventKind.soft, "sam@example.net", None)]
    assert sns.requests == [CERT_PATH]  # the certificate was fetched once and kept


def test_a_forged_notification_changes_nothing_and_is_counted(session, ses_settings, sns, pki):
    add_subscriber(session, "pat@example.net")
    session.commit()
    client = create_app(ses_settings).test_client()
    bounce = ses_notification("bounce-permanent", rcpt="pat@example.net", source="digest@example.org")
    genuine = sign(notification(sns, bounce), pki.signing_key)
    other_topic = "arn:aws:sns:eu-west-1:210987654321:ses-bounces"
    forged = {
        "tampered after signing": {**genuine, "Message": bounce.replace("pat@example.net", "sam@example.net")},
        "signed by another key": sign(notification(sns, bounce), pki.impostor_key),
        "SHA1 signature said to be SHA256": {**genuine, "SignatureVersion": "2"},
        "no signature": {k: v for k, v in genuine.items() if k != "Signature"},
        "certificate on another host": sign(
            notification(sns, bounce, cert_url=f"https://sns.eu-west-1.amazonaws.com.example.net{CERT_PATH}"), pki.signing_key
        ),
        "certificate over plain HTTP": sign(notification(sns, bounce, cert_url=f"http://{sns.netloc}{CERT_PATH}"), pki.signing_key),
        "certificate that is not a .pem": sign(notification(sns, bounce, cert_url=sns.url("/?Action=GetCertificate")), pki.signing_key),
        "a stranger's topic": sign(notification(sns, bounce, topic=other_topic), pki.signing_key),
    }

    for why, message in forged.items():
        reply = post(client, message)
        assert reply.status_code == 403, why
        assert reply.text.startswith("refused: "), why

    assert states(session) == {"pat@example.net": SubscriberState.active}
    assert forged_count(session) == len(forged)
    assert {kind for kind, _, _ in events(session)} == {EventKind.forged}
    assert sns.requests == [CERT_PATH]  # only the real certificate's URL was ever fetched
    diagnostics = session.scalars(select(MailEvent.diagnostic)).all()
    assert any("is not one of DIGEST_SES_TOPIC_ARN" in d and "hard for pat@example.net" in d for d in diagnostics)
    assert post(client, genuine).status_code == 200  # and the real one still goes through
    assert states(session) == {"pat@example.net": SubscriberState.suppressed}


def test_a_subscription_is_confirmed_by_fetching_its_subscribe_url(session, ses_settings, sns, pki):
    client = create_app(ses_settings).test_client()
    subscribe = sns.url(f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425c464d")
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425c464d",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-11-30T06:59:00.000Z",
        "SigningCertURL": sns.url(CERT_PATH),
    }

    forged = post(client, sign(confirmation, pki.impostor_key, "2"))
    assert forged.status_code == 403 and sns.requests == [CERT_PATH]  # verified before anything is confirmed
    elsewhere = post(
        client, sign({**confirmation, "SubscribeURL": "https://evil.example.net/?Action=ConfirmSubscription"}, pki.signing_key, "2")
    )
    assert elsewhere.status_code == 403 and sns.requests == [CERT_PATH]
    reply = post(client, sign(confirmation, pki.signing_key, "2"))

    assert (reply.status_code, reply.text) == (200, "subscription confirmed\n")
    assert sns.requests == [CERT_PATH, subscribe.removeprefix(f"https://{sns.netloc}")]
    ended = {**confirmation, "Type": "UnsubscribeConfirmation", "Message": "You have chosen to deactivate subscription."}
    assert post(client, sign(ended, pki.signing_key)).text == "noted\n"
    assert len(sns.requests) == 2  # an unsubscribe confirmation is only logged
    assert forged_count(session) == 2 and events(session) == [(EventKind.forged, "", None)] * 2


def test_garbage_never_gets_a_server_error(session, ses_settings, sns, pki):
    add_subscriber(session, "pat@example.net")
    session.commit()
    sns.files["/junk.pem"] = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    sns.files["/huge.pem"] = b"A" * (ses.MAX_FETCH + 1)
    client = create_app(ses_settings).test_client()
    bounce = ses_notification("bounce-permanent", rcpt="pat@example.net", source="digest@example.org")
    good = sign(notification(sns, bounce), pki.signing_key)
    bodies = [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b"1" * 10_000,
        b"[]",
        b"{}",
        b'{"Type": "Notification"}',
        json.dumps({**good, "Message": 42}),
        json.dumps({**good, "TopicArn": None}),
        json.dumps({**good, "Subject": ["a"]}),
        json.dumps({**good, "Type": "Bounce"}),
        json.dumps({**good, "Signature": "***"}),
        json.dumps({**good, "Signature": "é"}),
        json.dumps({**good, "Signature": 7}),
        json.dumps({**good, "SignatureVersion": "3"}),
        json.dumps({**good, "SignatureVersion": ["1"]}),
        json.dumps({**good, "SigningCertURL": 7}),
        json.dumps({**good, "SigningCertURL": "https://[::1"}),
        json.dumps({**good, "SigningCertURL": f"https://user@{sns.netloc}{CERT_PATH}"}),
        json.dumps({**good, "SigningCertURL": sns.url("/missing.pem")}),
        json.dumps({**good, "SigningCertURL": sns.url("/junk.pem")}),
        json.dumps({**good, "SigningCertURL": sns.url("/huge.pem")}),
        json.dumps(sign(notification(sns, "not SES's JSON"), pki.signing_key)),  # signed, but carries nothing of SES
        json.dumps(sign(notification(sns, '{"notificationType": "Bounce", "bounce": [], "mail": 3}'), pki.signing_key)),
        json.dumps(sign(notification(sns, '{"notificationType": "Bounce", "bounce": {"bouncedRecipients": [1, {}]}}'), pki.signing_key)),
        b"{" + b" " * (ses.MAX_BODY + 1) + b"}",
    ]

    answers = [post(client, body).status_code for body in bodies]

    assert all(code < 500 for code in answers), answers
    assert answers[:8] == [400] * 8 and answers[-1] == 413
    assert answers[-4:-1] == [200, 200, 200]  # authentic, so taken; nothing in them to record
    assert states(session) == {"pat@example.net": SubscriberState.active}
    assert {kind for kind, _, _ in events(session)} <= {EventKind.forged}


def test_the_webhook_is_off_without_a_topic(session, bounce_settings, sns, pki):
    settings = ses_webhook(bounce_settings, sns, pki).with_(ses_topic_arns=())
    client = create_app(settings).test_client()
    message = sign(
        notification(sns, ses_notification("bounce-permanent", rcpt="pat@example.net", source="digest@example.org")), pki.signing_key
    )

    assert post(client, message).status_code == 404
    assert client.get("/webhooks/bounces/ses").status_code == 405
    assert sns.requests == [] and events(session) == []


def test_the_webhook_is_rate_limited(session, ses_settings, sns, pki):
    settings = ses_settings.with_(extra={**ses_settings.extra, "rate_limit_webhooks": "2 per minute"})
    client = create_app(settings).test_client()
    codes = [post(client, b"{}").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


# ---------------------------------------------------------------- production's rules


def test_only_sns_hosts_over_https_are_trusted_in_production():
    settings = Settings(database_url="sqlite://")  # no test entries: AWS's rule
    for url in (
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=y",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a.pem",
        "https://SNS.ap-southeast-2.amazonaws.com:443/SimpleNotificationService-a.pem",  # the default port
    ):
        assert ses.trusted(settings, url), url
    for url in (
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-a.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/a.pem",
        "https://sns.us-east-1.amazonaws.com\\@evil.example/a.pem",
        "https://user@sns.us-east-1.amazonaws.com/a.pem",
        "https://sns.us-east-1.amazonaws.com:8443/a.pem",
        "https://s3.us-east-1.amazonaws.com/a.pem",
        "https://sns.amazonaws.com.evil.example/a.pem",
        "https://127.0.0.1/a.pem",
        "ftp://sns.us-east-1.amazonaws.com/a.pem",
        "",
        None,
    ):
        assert not ses.trusted(settings, url), url


def test_topic_arns_are_read_from_the_environment_strictly():
    env = {"DIGEST_SECRET_KEY": "x" * 32}
    assert load_settings(env).ses_topic_arns == ()
    both = f"{TOPIC}, arn:aws-cn:sns:cn-north-1:123456789012:bounces-cn ,"
    assert load_settings({**env, "DIGEST_SES_TOPIC_ARN": both}).ses_topic_arns == (
        TOPIC,
        "arn:aws-cn:sns:cn-north-1:123456789012:bounces-cn",
    )
    for bad in ("ses-bounces", "arn:aws:sqs:eu-west-1:123456789012:q", "arn:aws:sns:eu-west-1:1234:t", f"{TOPIC}:extra"):
        with pytest.raises(ConfigError, match="DIGEST_SES_TOPIC_ARN"):
            load_settings({**env, "DIGEST_SES_TOPIC_ARN": bad})
