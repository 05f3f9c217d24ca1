"""``digest bounces process PATH``: the reports a relay dropped in a Maildir (or an mbox, or one
file) recorded as the listener records them, once however often the mailbox is read; and what an
operator then sees in ``digest subscribers show`` and ``digest stats``. Both SQLite and PostgreSQL."""

from __future__ import annotations

import json
import mailbox

from digest_helpers import AT, add_subscriber
from processes import digest_cli
from relay import fill
from sqlalchemy import select
from support import subprocess_env

from digest.delivery.run import send_due
from digest.models import Subscriber, SubscriberState

READERS = {  # reader -> what comes back about their digest
    "pat@example.net": "postfix-hard",
    "sam@example.net": "postfix-delayed",
    "cy@example.net": "arf-yahoo",
    "otto@example.net": "autoreply-outlook",
}


def sent_digests(session, bounce_settings, relay, make_paper) -> dict[str, str]:
    """Every reader's digest sent through the relay; reader -> its envelope sender (bounce address)."""
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    add_subscriber(session, "pat@example.net", ['"video diffusion"', "agents -robot"])
    for email in [*READERS, "una@example.net"]:
        if email != "pat@example.net":
            add_subscriber(session, email)
    session.commit()
    assert send_due(bounce_settings, AT, retry_delays=()).sent == 5
    return {c.rcpt_tos[0]: c.mail_from for c in relay.captured}


def stored(data: bytes, delivered_to: str) -> bytes:
    """The report as a mailbox keeps it: the delivery agent's Delivered-To on top."""
    return f"Delivered-To: {delivered_to}\r\n".encode() + data


def test_a_maildir_is_recorded_once_however_often_it_is_read(session, bounce_settings, relay, make_paper, tmp_path):
    senders = sent_digests(session, bounce_settings, relay, make_paper)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for reader, sample in READERS.items():
        to = "fbl@bounces.example.org" if sample.startswith("arf") else senders[reader]
        box.add(stored(fill(sample, to=to, verp=senders[reader], rcpt=reader), to))
    # a report to another domain's address, delivered to this mailbox all the same
    box.add(
        stored(
            fill("postfix-hard", to="bounces@other.example.org", verp=senders["una@example.net"], rcpt="una@example.net"),
            "bounces@other.example.org",
        )
    )
    env = subprocess_env(bounce_settings, DIGEST_BOUNCE_DOMAIN="bounces.example.org")

    first = digest_cli(env, "bounces", "process", str(tmp_path / "Maildir"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "processed 5 messages: hard 1, soft 1, complaints 1, auto-replies 1, other 0, forged 1, duplicates 0; suppressed 1, unsubscribed 1"
    )
    assert {m.get_subdir() + ":" + m.get_flags() for m in box} == {"cur:S"}  # marked read, as a mail client does
    again = digest_cli(env, "bounces", "process", str(tmp_path / "Maildir"))
    assert again.stdout.strip() == (
        "processed 0 messages: hard 0, soft 0, complaints 0, auto-replies 0, other 0, forged 0, duplicates 0; suppressed 0, unsubscribed 0"
        "; 5 already read (marked S), left alone: --all reads them again"
    )
    session.expire_all()
    states = dict(session.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {
        "pat@example.net": SubscriberState.suppressed,
        "sam@example.net": SubscriberState.active,
        "cy@example.net": SubscriberState.unsubscribed,
        "otto@example.net": SubscriberState.active,
        "una@example.net": SubscriberState.active,  # the forged report changed nothing
    }

    shown = digest_cli(env, "subscribers", "show", "Pat@Example.net")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        "pat@example.net: suppressed (hard bounce: 5.1.1 smtp; 550 5.1.1 <pat@example.net>: "
        "Recipient address rejected: User unknown in virtual mailbox table)"
    )
    assert "remembered as one that left (bounced)" in lines[2]
    assert lines[3] == 'filters: "video diffusion"; agents -robot'
    assert lines[4] == "last digests (at most 5, newest first):"
    assert lines[5].split()[:5] == ["2026-11-30", "sent", "1", "papers", "sent"]  # then when it was sent
    assert lines[6] == "events (1, newest first):"
    assert lines[7].split()[3:8] == ["hard", "digest", "2026-11-30", "pat@example.net", "5.1.1"]
    assert digest_cli(env, "subscribers", "show", "nobody@example.net").stderr.strip() == "error: no subscriber nobody@example.net"

    stats = digest_cli(env, "stats")
    assert "came back (since the start): hard 1, soft 1, complaint 1, auto_reply 1, delivered 0, other 0, forged 1" in stats.stdout
    counts = json.loads(digest_cli(env, "stats", "--json").stdout)["mail_events"]
    assert counts == {"hard": 1, "soft": 1, "complaint": 1, "auto_reply": 1, "delivered": 0, "other": 0, "forged": 1}

    box.add(
        stored(
            fill("postfix-hard", to=senders["pat@example.net"], verp=senders["pat@example.net"], rcpt="pat@example.net"),
            senders["pat@example.net"],
        )
    )
    later = digest_cli(env, "bounces", "process", str(tmp_path / "Maildir"))  # only what came since: pat's second bounce
    assert later.stdout.strip() == (
        "processed 1 message: hard 1, soft 0, complaints 0, auto-replies 0, other 0, forged 0, duplicates 0; suppressed 0, unsubscribed 0"
        "; 5 already read (marked S), left alone: --all reads them again"
    )
    every = digest_cli(env, "bounces", "process", "--all", str(tmp_path / "Maildir"))
    assert every.stdout.strip() == (
        "processed 6 messages: hard 0, soft 0, complaints 0, auto-replies 0, other 0, forged 0, duplicates 6; suppressed 0, unsubscribed 0"
    )


def test_an_mbox_and_a_single_file_are_read_as_well(session, bounce_settings, relay, make_paper, tmp_path):
    senders = sent_digests(session, bounce_settings, relay, make_paper)
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    box.add(
        stored(
            fill("exim-hard", to=senders["pat@example.net"], verp=senders["pat@example.net"], rcpt="pat@example.net"),
            senders["pat@example.net"],
        )
    )
    box.add(fill("gmail-over-quota", to=senders["sam@example.net"], verp=senders["sam@example.net"], rcpt="sam@example.net"))  # To: only
    box.flush()
    (tmp_path / "one.eml").write_bytes(
        fill("yahoo-hard", to=senders["otto@example.net"], verp=senders["otto@example.net"], rcpt="otto@example.net")
    )
    env = subprocess_env(bounce_settings, DIGEST_BOUNCE_DOMAIN="bounces.example.org")

    mbox = digest_cli(env, "bounces", "process", str(tmp_path / "bounces.mbox"))
    assert mbox.stdout.strip().startswith("processed 2 messages: hard 1, soft 1, complaints 0"), mbox.stderr
    one = digest_cli(env, "bounces", "process", str(tmp_path / "one.eml"))
    assert one.stdout.strip().startswith("processed 1 message: hard 1, soft 0"), one.stderr
    session.expire_all()
    states = dict(session.execute(select(Subscriber.email, Subscriber.state)).all())
    assert (states["pat@example.net"], states["sam@example.net"], states["otto@example.net"]) == (
        SubscriberState.suppressed,
        SubscriberState.active,
        SubscriberState.suppressed,
    )


def test_process_says_what_is_wrong_in_one_line(settings, tmp_path):
    (tmp_path / "plain-folder").mkdir()
    env = subprocess_env(settings, DIGEST_BOUNCE_DOMAIN="bounces.example.org")
    not_maildir = digest_cli(env, "bounces", "process", str(tmp_path / "plain-folder"))
    assert (not_maildir.returncode, not_maildir.stderr.strip()) == (
        1,
        f"error: {tmp_path / 'plain-folder'} is a folder but not a Maildir (it has no cur/ or new/)",
    )
    unset = digest_cli(subprocess_env(settings), "bounces", "process", str(tmp_path / "plain-folder"))
    assert unset.returncode == 1 and "no DIGEST_BOUNCE_DOMAIN" in unset.stderr
    bad = digest_cli(subprocess_env(settings, DIGEST_BOUNCE_DOMAIN="not a domain"), "bounces", "process", str(tmp_path))
    assert bad.returncode == 2 and "DIGEST_BOUNCE_DOMAIN" in bad.stderr


def test_subscribers_show_finds_the_subscriber_by_the_mailbox_an_address_reaches(session, settings):
    """An operator pastes the address a complaint or a reader's own message names: another spelling
    of a stored one (Gmail's dots, googlemail.com, a +tag, capitals) finds it, and says which it
    shows; an address two stored ones share a mailbox with names both; another mailbox none."""
    add_subscriber(session, "jsmith@gmail.com", ["agents"])
    add_subscriber(session, "ann@corp.example.org")
    add_subscriber(session, "ann+news@corp.example.org")
    add_subscriber(session, "j.smith@corp.example.org")
    session.commit()
    env = subprocess_env(settings)

    for spelling in ("J.Smith@googlemail.com", "j.smith+digest@gmail.com", "JSMITH@GMAIL.COM"):
        shown = digest_cli(env, "subscribers", "show", spelling)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        if spelling.lower() == "jsmith@gmail.com":
            assert lines[0].startswith("jsmith@gmail.com: active")  # the stored spelling: no note
        else:
            assert lines[0] == f"(no subscriber spelled {spelling}: jsmith@gmail.com reaches the same mailbox)"
            assert lines[1].startswith("jsmith@gmail.com: active")
        assert "filters: agents" in shown.stdout

    # dots count outside Gmail: j.smith@corp and jsmith@corp are two people, and jsmith@corp is no one
    shown = digest_cli(env, "subscribers", "show", "jsmith@corp.example.org")
    assert shown.returncode == 1 and shown.stderr.strip() == "error: no subscriber jsmith@corp.example.org"
    # a stored address is shown as itself, even where another shares its mailbox
    assert digest_cli(env, "subscribers", "show", "ann@corp.example.org").stdout.startswith("ann@corp.example.org: active")
    both = digest_cli(env, "subscribers", "show", "ann+other@corp.example.org")
    assert both.returncode == 1
    assert both.stderr.strip() == (
        "error: no subscriber ann+other@corp.example.org; the same mailbox: ann+news@corp.example.org, ann@corp.example.org (show one of them)"
    )
