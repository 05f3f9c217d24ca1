"""An address's one spelling and the limits mail servers set."""

from __future__ import annotations

import pytest

from digest.subscribers.addresses import normalize_email

LABEL = "d" * 63  # the longest name between two dots


@pytest.mark.parametrize(
    "raw, stored",
    [
        ("  Ann.Lee@Example.ORG ", "ann.lee@example.org"),
        ("x@bücher.de", "x@xn--bcher-kva.de"),
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
