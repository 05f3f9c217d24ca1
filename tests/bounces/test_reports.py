"""Reading what comes back: each sample (samples/README.md) reads as its kind, with the recipient it
names and the server's words; whose mail it was comes from the bounce address alone; an address we
did not make is a forgery; and one report read twice has one key."""

from __future__ import annotations

import email
from datetime import datetime, timezone

import pytest
from digest_helpers import RENDER_SETTINGS
from relay import SAMPLE_NAMES, fill

from digest.bounces.reports import classify, delivered_to, read
from digest.mail import verp
from digest.models import EventKind

SETTINGS = RENDER_SETTINGS.with_(bounce_domain="bounces.example.org")
AT = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
DELIVERY = "Delivery_public_id_0001"
VERP = verp.digest_sender(SETTINGS, DELIVERY)
RCPT = "ann@example.net"
FBL = "fbl@bounces.example.org"

#: sample -> (kind, words its diagnostic must carry, the recipient it names)
EXPECTED = {
    "postfix-hard": (EventKind.hard, "5.1.1 smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected", RCPT),
    "postfix-returned": (EventKind.hard, "5.1.1 smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown", RCPT),
    "postfix-delayed": (EventKind.soft, "4.4.1 X-Postfix; connect to mx.example.net", RCPT),
    "exim-hard": (EventKind.hard, "550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown", RCPT),
    "gmail-hard": (EventKind.hard, "5.1.1 smtp; 550-5.1.1 The email account that you tried to reach does not exist", RCPT),
    "gmail-over-quota": (EventKind.soft, "4.2.2 smtp; 452-4.2.2 The email account that you tried to reach is over quota", RCPT),
    "outlook-hard": (EventKind.hard, "5.1.10 smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", RCPT),
    "yahoo-hard": (EventKind.hard, "554: delivery error: dd This user doesn't have a yahoo.com account", RCPT),
    "arf-yahoo": (EventKind.complaint, "feedback report: abuse (Yahoo!-Mail-Feedback/2.0)", RCPT),
    "arf-outlook": (EventKind.complaint, "feedback report: abuse (Hotmail FBL)", ""),  # the recipient redacted
    "autoreply-outlook": (EventKind.auto_reply, "auto-reply: Automatic reply: Trending papers for you", ""),
    "autoreply-vacation": (EventKind.auto_reply, "auto-reply: Re: Trending papers for you", ""),
    "autoreply-precedence": (EventKind.auto_reply, "auto-reply: Out of Office: Trending papers for you", ""),
}


def to_of(sample: str) -> str:
    """Where the sample's sender mails it: a feedback loop to its own address, the rest to the envelope sender."""
    return FBL if sample.startswith("arf") else VERP


def test_every_sample_has_its_expectation():
    assert sorted(EXPECTED) == SAMPLE_NAMES


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_sample_reads_as_its_kind_naming_the_digest_by_its_bounce_address(sample):
    kind, words, named = EXPECTED[sample]
    data = fill(sample, to=to_of(sample), verp=VERP, rcpt=RCPT)
    (event,) = read(SETTINGS, data, [to_of(sample)], AT)
    assert (event.kind, event.address, event.delivery, event.subscriber, event.at) == (kind, named, DELIVERY, None, AT)
    assert words in event.diagnostic


def test_a_report_is_about_the_message_its_bounce_address_names_whatever_address_it_quotes():
    other = verp.digest_sender(SETTINGS, "Another_delivery_000002")
    data = fill("postfix-hard", to=other, verp=VERP, rcpt=RCPT)  # quotes VERP's sender, came to the other
    (event,) = read(SETTINGS, data, [other], AT)
    assert event.delivery == "Another_delivery_000002"


def test_a_confirmation_bounce_names_the_subscriber():
    sender = verp.confirmation_sender(SETTINGS, "Subscriber_public_id_01")
    (event,) = read(SETTINGS, fill("exim-hard", to=sender, verp=sender, rcpt=RCPT), [sender], AT)
    assert (event.kind, event.delivery, event.subscriber) == (EventKind.hard, None, "Subscriber_public_id_01")


@pytest.mark.parametrize(
    ("recipient", "why"),
    [
        ("bounces+" + "A" * 39 + "@bounces.example.org", "bad bounce token"),
        ("bounces@bounces.example.org", "no bounce token"),
        (VERP.replace("bounces.example.org", "other.example.org"), "not for the bounce domain"),
    ],
    ids=["bad token", "missing token", "wrong domain"],
)
def test_a_report_to_an_address_we_did_not_make_is_forged_and_names_nobody(recipient, why):
    (event,) = read(SETTINGS, fill("postfix-hard", to=recipient, verp=VERP, rcpt=RCPT), [recipient], AT)
    assert (event.kind, event.delivery, event.subscriber, event.address) == (EventKind.forged, None, None, RCPT)
    assert why in event.diagnostic and "it reads as hard" in event.diagnostic


def test_a_complaint_to_the_feedback_address_needs_a_bounce_address_of_ours_in_the_report():
    forged = fill("arf-yahoo", to=FBL, verp="someone@elsewhere.example", rcpt=RCPT)
    (event,) = read(SETTINGS, forged, [FBL], AT)
    assert event.kind is EventKind.forged and "the complaint quotes no bounce address of ours" in event.diagnostic
    bad = fill("arf-outlook", to=FBL, verp="bounces+" + "B" * 39 + "@bounces.example.org", rcpt=RCPT)
    assert read(SETTINGS, bad, [FBL], AT)[0].kind is EventKind.forged


def test_one_event_per_distinct_recipient_and_one_key_per_report_and_recipient():
    data = fill("postfix-hard", to=VERP, verp=VERP, rcpt=RCPT, message_id="report-1@relay.example")
    again = fill("postfix-hard", to=VERP, verp=VERP, rcpt=RCPT, message_id="report-1@relay.example")  # another date, same report
    other = verp.digest_sender(SETTINGS, "Another_delivery_000002")
    first = read(SETTINGS, data, [VERP, f"<{VERP}>", other], AT)  # the same recipient twice: one event
    assert [e.delivery for e in first] == [DELIVERY, "Another_delivery_000002"]
    assert read(SETTINGS, again, [VERP], AT)[0].report_key == first[0].report_key != first[1].report_key
    no_id = data.replace(b"Message-Id: <report-1@relay.example>\r\n", b"")
    assert b"Message-Id" not in no_id
    keys = {read(SETTINGS, no_id, [VERP], AT)[0].report_key, read(SETTINGS, no_id, [VERP], AT)[0].report_key}
    assert len(keys) == 1 and keys != {first[0].report_key}  # no Message-ID: the bytes' hash


def test_a_dsn_is_soft_for_a_full_mailbox_or_a_temporary_status_and_hard_otherwise():
    hard = fill("postfix-hard", to=VERP, verp=VERP, rcpt=RCPT)
    for status, kind in [
        ("5.1.1", EventKind.hard),
        ("5.2.2", EventKind.soft),
        ("5.3.4", EventKind.soft),
        ("4.4.7", EventKind.soft),
        ("5.7.1", EventKind.hard),
    ]:
        data = hard.replace(b"Status: 5.1.1", f"Status: {status}".encode())
        assert classify(email.message_from_bytes(data)).kind is kind, status


def test_a_plain_bounce_without_a_status_is_hard_unless_the_server_said_4xx():
    exim = fill("exim-hard", to=VERP, verp=VERP, rcpt=RCPT)
    assert classify(email.message_from_bytes(exim)).kind is EventKind.hard
    full = exim.replace(b"550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown", b"452 4.2.2 Mailbox full")
    finding = classify(email.message_from_bytes(full))
    assert (finding.kind, finding.diagnostic) == (EventKind.soft, "452 4.2.2 Mailbox full")


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "Precedence: auto_reply",
        "Subject: Out of Office",
    ],
)
def test_any_one_auto_reply_mark_makes_an_auto_reply(header):
    plain = b"From: ann@example.net\r\nTo: x@bounces.example.org\r\nSubject: Re: your digest\r\n\r\nThanks!\r\n"
    assert classify(email.message_from_bytes(plain)).kind is EventKind.other  # a reply by hand
    data = header.encode() + b"\r\n" + (plain.replace(b"Subject: Re: your digest\r\n", b"") if header.startswith("Subject") else plain)
    assert classify(email.message_from_bytes(data)).kind is EventKind.auto_reply
    assert classify(email.message_from_bytes(b"Auto-Submitted: no\r\n" + plain)).kind is EventKind.other


def test_a_bounce_that_is_also_marked_auto_submitted_is_still_a_bounce():
    data = fill("postfix-hard", to=VERP, verp=VERP, rcpt=RCPT)
    assert b"Auto-Submitted: auto-replied" in data  # as every MTA marks its bounces (RFC 3834 5)
    assert classify(email.message_from_bytes(data)).kind is EventKind.hard


def test_a_stored_message_is_read_as_delivered_to_its_delivery_headers_first():
    data = fill("postfix-hard", to=VERP, verp=VERP, rcpt=RCPT)
    assert delivered_to(email.message_from_bytes(data)) == [VERP]  # no delivery header: To
    stored = b"Delivered-To: other@bounces.example.org\r\nX-Original-To: x@y.example\r\n" + data
    assert delivered_to(email.message_from_bytes(stored)) == ["other@bounces.example.org"]
