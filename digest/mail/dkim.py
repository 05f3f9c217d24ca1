"""DKIM signatures (RFC 6376; Ed25519 by RFC 8463) on the bytes :func:`~digest.mail.mime.build_message`
made, and the keys behind them with their DNS records (``digest dkim keygen``).

A message is signed as it goes on the wire: its headers and body are read from the built bytes
(CRLF lines, as ``build_message`` writes them and the transports send them), canonicalised
relaxed/relaxed, and each key's ``DKIM-Signature`` field is put in front. Nothing is re-serialised.

The signing is ours, over OpenSSL (``cryptography``), not dkimpy's: dkimpy signs RSA in pure
Python (~11 ms a message here, 30 times a digest's render) and reads the whole message into lines
before canonicalising it (~1.5 ms, also for Ed25519). The tests verify every signature with dkimpy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from digest.config import DkimKey

#: The fields a signature covers, when the message has them: RFC 6376's recommended ones, and
#: RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to be signed for one-click.
SIGNED = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
    b"auto-submitted",
)
#: Signed once more (RFC 6376 8.15): a second copy added on the way (a replayed message with
#: another Subject or unsubscribe link) breaks the signature. Not Feedback-ID: some relays add theirs.
OVERSIGNED = (b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post")
ALGORITHMS = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
RSA_BITS = 2048

_FIELD_END = re.compile(rb"\r\n(?![ \t])")  # a line break that is not a fold
_WSP = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb"  +")


def relaxed_field(field: bytes) -> tuple[bytes, bytes]:
    """A header field (folds included, no final CRLF) as relaxed canonicalisation writes it
    (RFC 6376 3.4.2): its lower-case name, and ``name:value`` unfolded, each run of white space one
    space, none around the colon or at the end."""
    name, _, value = field.partition(b":")
    name = name.rstrip(b" \t").lower()
    value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:  # else the pattern would change nothing (most fields)
        value = _WSP.sub(b" ", value)
    return name, name + b":" + value.strip(b" ")


def relaxed_body(body: bytes) -> bytes:
    """The body as relaxed canonicalisation writes it (RFC 6376 3.4.4): no white space before a
    line's CRLF, each other run of it one space, no empty lines at the end, and a CRLF after the
    last line (dkimpy's reading: white space on a last line without CRLF stays, as one space).

    A pattern that starts with a class (``[ \\t]+``) is tried at each of a digest's thousands of
    spaces (~1 ms a message); tabs replaced first, a run of two or more spaces is a literal to
    search for, and the space it leaves before a line break one more: ~0.1 ms."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    body = _SPACES.sub(b" ", body).replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def _fold(words: Sequence[bytes], separator: bytes, width: int = 74) -> bytes:
    """``words`` joined by ``separator``, a fold (CRLF, tab) before a word that would pass ``width``."""
    lines, line = [], b""
    for word in words:
        if line and len(line) + len(separator) + len(word) > width:
            lines.append(line + separator.rstrip())
            line = word
        else:
            line = line + separator + word if line else word
    return b"\r\n\t".join([*lines, line])


class Signer:
    """Signs messages with the settings' DKIM keys (:attr:`Settings.dkim <digest.config.Settings.dkim>`,
    read once when they were loaded); with none, :meth:`sign` hands the bytes back as they are.

    What every signature of a key repeats (its tags up to ``t=``, and ``h=`` for each set of signed
    fields a message has: a digest's, a confirmation's) is written once, not per message."""

    def __init__(self, keys: Sequence[DkimKey]) -> None:
        self.keys = tuple(keys)
        self._heads = tuple(
            b"v=1; a=" + ALGORITHMS[key.algorithm] + b"; c=relaxed/relaxed;\r\n\td=" + key.domain.encode("ascii")
            + b"; s=" + key.selector.encode("ascii") + b"; t="
            for key in self.keys
        )  # fmt: skip
        self._h: dict[tuple[bytes, ...], bytes] = {}  # the names a message's signature covers -> h='s folded value

    def sign(self, message: bytes, now: float | None = None) -> bytes:
        """``message`` with a ``DKIM-Signature`` field in front for each key (RSA's first)."""
        if not self.keys:
            return message
        end = message.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError("not a message: no empty line after the header")
        fields: dict[bytes, list[bytes]] = {}  # name -> its canonical fields, top to bottom
        for field in _FIELD_END.split(message[:end]):
            name, canonical = relaxed_field(field)
            fields.setdefault(name, []).append(canonical)
        names = tuple(name for name in SIGNED if name in fields) + tuple(name for name in OVERSIGNED if name in fields)
        # each name in h= takes the lowest of its fields not taken yet (3.5); a name listed once more
        # than there are fields takes none, so a field added later breaks the signature
        headers = b"".join(fields[name].pop() + b"\r\n" for name in names if fields[name])
        listed = self._h.get(names) or self._h.setdefault(names, _fold(names, b":"))
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(message[end + 4 :])).digest())
        stamp = str(int(time.time() if now is None else now)).encode("ascii")
        rest = stamp + b";\r\n\th=" + listed + b";\r\n\tbh=" + body_hash + b";\r\n\tb="
        return b"".join(_signature(key, head + rest, headers) for key, head in zip(self.keys, self._heads)) + message


def _signature(key: DkimKey, tags: bytes, headers: bytes) -> bytes:
    """The ``DKIM-Signature`` field of ``key`` with ``tags`` (all but b='s value) over the signed
    fields ``headers`` (relaxed, in h='s order)."""
    _, unsigned = relaxed_field(b"DKIM-Signature: " + tags)  # hashed with b= empty, no CRLF (3.7)
    data = headers + unsigned
    if isinstance(key.private_key, rsa.RSAPrivateKey):
        signature = key.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:  # RFC 8463: Ed25519 signs the SHA-256 of the data
        signature = key.private_key.sign(hashlib.sha256(data).digest())
    encoded = base64.b64encode(signature)
    chunks = [encoded[i : i + 72] for i in range(0, len(encoded), 72)]
    return b"DKIM-Signature: " + tags + b"\r\n\t".join(chunks) + b"\r\n"


# ---------------------------------------------------------------- keys and their DNS records


@dataclass(frozen=True)
class NewKey:
    algorithm: str
    private_pem: bytes  # PKCS #8, unencrypted: what DIGEST_DKIM_KEY_FILE / _ED25519_KEY_FILE read
    public: str  # the DNS record's p=: base64 of the SubjectPublicKeyInfo (RSA), of the 32 bytes (Ed25519)


def generate_key(algorithm: str) -> NewKey:
    """A new private key: RSA-2048, or Ed25519."""
    if algorithm == "rsa":
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    elif algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown key type {algorithm!r}")
    return NewKey(
        algorithm,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        public_value(key),
    )


def public_value(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    """The key's ``p=`` (RFC 6376 3.6.1, RFC 8463 4)."""
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        der = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(der).decode("ascii")


def txt_value(algorithm: str, public: str) -> str:
    """The TXT record's text, ``v=DKIM1; k=rsa; p=…``."""
    return f"v=DKIM1; k={algorithm}; p={public}"


def dns_record(selector: str, domain: str, algorithm: str, public: str) -> str:
    """The zone-file line to publish: ``<selector>._domainkey.<domain>. IN TXT "…"``, the text cut
    into strings of at most 255 characters (a TXT string's limit; an RSA-2048 key is longer), which
    DNS joins back into one."""
    text = txt_value(algorithm, public)
    strings = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a new key file readable by its owner only (mode 0600); never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
