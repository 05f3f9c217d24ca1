"""The VERP envelope sender: short enough for RFC 5321, naming exactly what was sent, and nothing
for an address we did not make."""

from __future__ import annotations

import pytest
from digest_helpers import RENDER_SETTINGS

from digest import tokens
from digest.mail import verp
from digest.models import new_public_id

SETTINGS = RENDER_SETTINGS.with_(bounce_domain="bounces.example.org")


def test_a_digest_bounce_address_fits_rfc_5321s_local_part_and_names_its_delivery():
    public_id = new_public_id()
    address = verp.digest_sender(SETTINGS, public_id)
    local, _, domain = address.rpartition("@")
    assert len(public_id) == 22 and len(local) == 47  # bounces+ (8), d (1), the public id (22), the HMAC tag (16)
    assert local.startswith("bounces+") and domain == "bounces.example.org"
    assert verp.read(SETTINGS, address) == verp.Named(delivery=public_id)
    widest = verp.confirmation_sender(SETTINGS, "x" * 32)  # the public_id column's width
    assert len(widest.rpartition("@")[0]) == 57 <= verp.MAX_LOCAL_PART
    assert verp.read(SETTINGS, widest) == verp.Named(subscriber="x" * 32)


def test_a_confirmation_bounce_address_names_the_subscriber_not_a_delivery():
    address = verp.confirmation_sender(SETTINGS, "sub_public_id_0123456789")
    assert verp.read(SETTINGS, address) == verp.Named(subscriber="sub_public_id_0123456789")
    with pytest.raises(verp.NotOurs, match="bad bounce token"):
        verp.read(SETTINGS, address.upper())  # a local part is case-sensitive (RFC 5321): relays keep it as it is


def test_without_a_bounce_domain_every_message_goes_out_from_mail_from_as_before():
    assert verp.digest_sender(RENDER_SETTINGS, new_public_id()) == "digest@example.org"
    assert verp.confirmation_sender(RENDER_SETTINGS, new_public_id()) == "digest@example.org"
    with pytest.raises(verp.NotOurs, match="no DIGEST_BOUNCE_DOMAIN"):
        verp.read(RENDER_SETTINGS, "bounces+x@bounces.example.org")


def test_an_address_we_did_not_make_names_nothing_and_says_why():
    good = verp.digest_sender(SETTINGS, "d" * 22)
    local = good.rpartition("@")[0]
    cases = {
        local + "@other.example.org": "not for the bounce domain",
        "bounces@bounces.example.org": "no bounce token",
        "postmaster@bounces.example.org": "no bounce token",
        local[:-1] + ("A" if local[-1] != "A" else "B") + "@bounces.example.org": "bad bounce token",  # its tag changed
        local.replace("+d", "+s", 1) + "@bounces.example.org": "bad bounce token",  # a delivery's token passed off as a subscriber's
        "bounces+" + tokens.make_token(SETTINGS, "vote", "d" + "d" * 22) + "@bounces.example.org": "bad bounce token",  # another purpose
        verp.digest_sender(SETTINGS.with_(secret_key="another-secret-key-987654"), "d" * 22): "bad bounce token",  # another key
    }
    for address, why in cases.items():
        with pytest.raises(verp.NotOurs, match=why):
            verp.read(SETTINGS, address)
    assert verp.read(SETTINGS, f"<{local}@BOUNCES.example.org>") == verp.Named(delivery="d" * 22)  # the domain in any case
