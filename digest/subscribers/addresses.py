"""What an address is to us: the one spelling it is stored in (:func:`normalize_email`, which refuses
what mail servers refuse)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254  # RFC 5321 4.5.3.1.3: a path of 256 octets, less its angle brackets
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1


def normalize_email(raw: str) -> str:
    """The address as stored: syntax-checked (no DNS), ASCII (IDN domains in punycode), lower-case,
    within RFC 5321's limits (mail servers refuse longer ones: we never mail them).

    The whole address is lower-cased so that ``Ann@x.org`` and ``ann@x.org`` are one subscriber.
    Raises ``ValueError`` with a message fit to show next to the field (or beside an import's line).
    """
    value = raw.strip()
    if not value:
        raise ValueError("Enter your email address.")
    if len(value) > MAX_EMAIL_LENGTH:  # before the parser, which then never sees a huge value
        raise ValueError(f"This address is {len(value)} characters long; mail servers accept at most {MAX_EMAIL_LENGTH}.")
    try:
        # also refuses a domain name over 63 characters between dots, and (IDN) an address over
        # 254 octets once its domain is in punycode; the local part's limit is ours to check
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    address = (result.ascii_email or result.normalized).lower()
    local = address.rpartition("@")[0]  # ASCII (no SMTPUTF8): characters are octets
    if len(local) > MAX_LOCAL_PART_LENGTH:
        raise ValueError(f"The part before @ is {len(local)} characters long; mail servers accept at most {MAX_LOCAL_PART_LENGTH}.")
    return address
