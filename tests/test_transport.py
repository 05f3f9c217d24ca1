"""The SMTP transport's own shortcuts give exactly what smtplib would."""

import smtplib

from hypothesis import given
from hypothesis import strategies as st

from digest.transport import _PLAIN_ADDRESS, _quoteaddr

_ATOM = st.text(alphabet="abcXYZ019_+-", min_size=1, max_size=6)
_LABEL = st.text(alphabet="abcXYZ019-", min_size=1, max_size=6)
PLAIN = st.builds(
    lambda local, domain: ".".join(local) + "@" + ".".join(domain),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
)


@given(PLAIN)
def test_plain_addresses_take_the_shortcut_and_quote_as_smtplib_does(address):
    assert _PLAIN_ADDRESS.fullmatch(address)
    assert _quoteaddr(address) == smtplib.quoteaddr(address) == f"<{address}>"


@given(st.text(max_size=30))
def test_any_other_string_quotes_as_smtplib_does(text):
    assert _quoteaddr(text) == smtplib.quoteaddr(text)


def test_addresses_needing_the_parser_do_not_take_the_shortcut():
    for address in ('"a b"@example.org', "Ann <ann@example.org>", "a..b@example.org", "ann@example.org (Ann)", "<ann@example.org>"):
        assert not _PLAIN_ADDRESS.fullmatch(address)
        assert _quoteaddr(address) == smtplib.quoteaddr(address)
