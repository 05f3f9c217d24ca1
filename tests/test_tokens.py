"""Signed link tokens: the vote token's compact form, and vote links mailed before it still working."""

from __future__ import annotations

import pytest
from itsdangerous import Signer

from digest import tokens
from digest.config import Settings
from digest.models import new_public_id

SETTINGS = Settings(database_url="sqlite://", secret_key="test-secret-key-0123456789", base_url="https://digest.example.org")
OTHER_KEY = Settings(database_url="sqlite://", secret_key="another-secret-key-987654321", base_url="https://digest.example.org")


def test_a_vote_token_is_the_public_id_and_16_characters_of_its_signature():
    public_id = new_public_id()
    token = tokens.make_token(SETTINGS, "vote", public_id)
    assert token.startswith(public_id) and len(token) == len(public_id) + tokens.COMPACT_TAG_CHARS
    assert all(c.isalnum() or c in "-_" for c in token)  # a URL path part as it is
    assert tokens.read_token(SETTINGS, "vote", token) == public_id
    assert tokens.link(SETTINGS, "vote", public_id) == f"https://digest.example.org/vote/{token}"


def test_a_vote_link_in_the_older_form_still_reads():
    """Digests mailed before the compact form carry ``<public id>.<itsdangerous signature>``."""
    public_id = new_public_id()
    older = Signer(SETTINGS.secret_key, salt="digest.vote").sign(public_id).decode()
    assert tokens.read_token(SETTINGS, "vote", older) == public_id
    at = older.index(".") + 1  # the signature's first character: the last one also carries padding bits, which decoding ignores
    with pytest.raises(tokens.BadToken):
        tokens.read_token(SETTINGS, "vote", older[:at] + ("A" if older[at] != "A" else "B") + older[at + 1 :])


def test_a_vote_token_changed_anywhere_or_signed_otherwise_is_refused():
    public_id = new_public_id()
    token = tokens.make_token(SETTINGS, "vote", public_id)
    for i in range(len(token)):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(tokens.BadToken):
            tokens.read_token(SETTINGS, "vote", changed)
    refused = [
        token[:-1],  # cut short
        token[-tokens.COMPACT_TAG_CHARS :],  # a tag without a value
        tokens.make_token(OTHER_KEY, "vote", public_id),  # another secret
        new_public_id() + token[-tokens.COMPACT_TAG_CHARS :],  # another reader's id with this tag
        tokens.make_token(SETTINGS, "preferences", public_id),  # another purpose
        "",
    ]
    for bad in refused:
        with pytest.raises(tokens.BadToken):
            tokens.read_token(SETTINGS, "vote", bad)


@pytest.mark.parametrize("purpose", ["confirm", "preferences", "unsubscribe", "archive"])
def test_timed_tokens_are_what_the_serializer_makes_and_reads(purpose):
    """Made without the serializer's compression attempt, read with the serializer: the same token
    as ``URLSafeTimedSerializer.dumps`` gives for an id (within the same second), and the
    serializer's own tokens (compressed ones too) still read."""
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(SETTINGS.secret_key, salt=f"digest.{purpose}")
    for value in (new_public_id(), "Dlv-public-1", "ünïcode", "a" * 300):
        ours = tokens.make_token(SETTINGS, purpose, value)
        assert serializer.loads(ours) == value == tokens.read_token(SETTINGS, purpose, ours)
        library = serializer.dumps(value)
        assert tokens.read_token(SETTINGS, purpose, library) == value
        if len(value) < 50:  # compression never shortens a short id: the library's token is ours
            assert ours.split(".")[0] == library.split(".")[0] and len(ours) == len(library)
    with pytest.raises(tokens.BadToken):
        tokens.read_token(OTHER_KEY, purpose, tokens.make_token(SETTINGS, purpose, "x"))
    other = "preferences" if purpose != "preferences" else "unsubscribe"
    with pytest.raises(tokens.BadToken):
        tokens.read_token(SETTINGS, other, tokens.make_token(SETTINGS, purpose, "x"))
