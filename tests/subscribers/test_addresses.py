"""An address's one spelling, the limits mail servers set, and the mailbox it reaches."""

from __future__ import annotations

import hashlib

import pytest

from digest.subscribers.addresses import mailbox_hash, mailbox_key, normalize_email

LABEL = "d" * 63  # the longest name between two dots


@pytest.mark.parametrize(
    "raw, stored",
    [
        ("  Ann.Lee@Example.ORG ", "ann.lee@example.org"),
        ("x@bücher.de", "x@xn--bcher-kva.de"),
        ("Ann.Lee+News@GoogleMail.com", "ann.lee+news@googlemail.com"),  # stored as typed: it is where mail goes
    ],
)
def test_addresses_are_normalised_to_one_spelling(raw, stored):
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "no-at-sign",
        "a@b",
        "a@localhost",
        "a@example.org\r\nBcc: victim@example.org",
        "a@example.org\nX: y",
        "ü@example.org",
        "a" * 250 + "@example.org",
        f"a@{'d' * 64}.org",  # a domain label over 63
    ],
)
def test_malformed_or_header_injecting_addresses_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_email(raw)


# ---------------------------------------------------------------- RFC 5321's limits


def test_a_local_part_of_64_octets_is_taken_and_one_of_65_refused_naming_both_numbers():
    assert normalize_email("a" * 64 + "@example.org") == "a" * 64 + "@example.org"
    with pytest.raises(ValueError, match=r"^The part before @ is 65 characters long; mail servers accept at most 64\.$"):
        normalize_email("a" * 65 + "@example.org")
    with pytest.raises(ValueError, match="is 70 characters long"):
        normalize_email("A" * 70 + "@Example.org")


def test_an_address_of_254_octets_is_taken_and_one_of_255_refused_naming_both_numbers():
    longest = "a" * 64 + "@" + ".".join([LABEL, LABEL, "d" * 57, "org"])
    assert len(longest) == 254 and normalize_email(longest) == longest
    with pytest.raises(ValueError, match=r"^This address is 255 characters long; mail servers accept at most 254\.$"):
        normalize_email("b" + longest)


def test_an_international_domain_counts_in_the_ascii_form_mail_servers_see():
    typed = "a" * 64 + "@" + ".".join([LABEL, LABEL, "bücherbücherbücher", "d" * 32, "org"])
    assert len(typed) == 248  # as typed it fits; in punycode (xn--bcherbcherbcher-zvbff) it is 255 long
    with pytest.raises(ValueError, match="too long"):
        normalize_email(typed)


# ---------------------------------------------------------------- which mailbox


@pytest.mark.parametrize(
    "addresses",
    [
        # Gmail: dots and +tags ignored, googlemail.com is gmail.com
        ["annlee@gmail.com", "ann.lee@gmail.com", "a.n.n.l.e.e@googlemail.com", "annlee+news@gmail.com", "Ann.Lee+x.y@GoogleMail.com"],
        # any domain: a +tag is the same mailbox; case never counts
        ["ann@example.org", "ann+news@example.org", "ann+a+b@example.org", "ANN@Example.ORG"],
        ["jean.luc@outlook.com", "jean.luc+shop@outlook.com"],
    ],
)
def test_variants_of_one_mailbox_have_one_key(addresses):
    assert len({mailbox_key(a) for a in addresses}) == 1


@pytest.mark.parametrize(
    "a, b",
    [
        ("j.smith@corp.example.org", "jsmith@corp.example.org"),  # dots count outside Gmail
        ("jean.luc@outlook.com", "jeanluc@outlook.com"),
        ("ann@gmail.com", "ann@gmail.com.example.org"),
        ("ann@gmail.com", "ann@example.org"),
        ("ann-news@yahoo.com", "ann@yahoo.com"),  # "-" is part of names: not a subaddress
        ("ann@googlemail.com", "ann@googlemail.com.au"),
    ],
)
def test_different_mailboxes_keep_different_keys(a, b):
    assert mailbox_key(a) != mailbox_key(b)


def test_a_local_part_that_is_all_tag_is_kept_whole():
    assert mailbox_key("+news@example.org") == "+news@example.org"


def test_the_quota_key_of_an_address_without_dots_is_the_one_rows_already_stored_use():
    """Stored quota windows keep counting across the change for every address but dotted ones
    outside Gmail and googlemail ones (their old windows end within a day)."""
    assert mailbox_hash("ann+news@example.org") == hashlib.sha256(b"ann@example.org").hexdigest()
