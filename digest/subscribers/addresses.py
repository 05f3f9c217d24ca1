"""What an address is to us: the one spelling it is stored in (:func:`normalize_email`, which refuses
what mail servers refuse) and the mailbox it reaches (:func:`mailbox_key`, for the confirmation quota)."""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254  # RFC 5321 4.5.3.1.3: a path of 256 octets, less its angle brackets
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1

_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}  # one mailbox under either name (Google's own word)
_DOTS_IGNORED = {"gmail.com"}  # Gmail only: Google Workspace domains and everyone else keep their dots


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


def mailbox_key(address: str) -> str:
    """Which mailbox a stored address (:func:`normalize_email`) reaches, as far as the confirmation
    quota is concerned: its variants share one key, distinct mailboxes keep theirs.

    - Case is ignored everywhere (RFC 5321 lets local parts be case-sensitive; no mailbox
      provider in use makes them so).
    - ``googlemail.com`` is ``gmail.com``.
    - Dots in the local part are ignored on Gmail only (``a.nn@gmail.com`` is ``ann@gmail.com``).
      Everywhere else they are kept: ``j.smith@corp.example.org`` and ``jsmith@corp.example.org``
      are two people.
    - A ``+tag`` is dropped on every domain (``ann+news@x.org`` is ``ann@x.org``). Gmail, Outlook.com,
      iCloud, Fastmail and Proton deliver ``+`` subaddresses to the base mailbox, and so do
      the custom domains hosted by Google Workspace and Microsoft 365 and Postfix/Exim set up with
      ``+`` as their recipient delimiter, so a list of providers would leave most company mailboxes
      open to one confirmation per tag. Where ``+`` is part of a real name the cost is small: two
      rare mailboxes share a quota, and a request over it is mailed a day later, never dropped.
    - Other provider conventions are not merged: Yahoo's ``base-keyword`` addresses have a base
      unlike the account's name, and ``-`` is part of many real names (``jean-luc``).
    """
    local, _, domain = address.lower().rpartition("@")
    domain = _DOMAIN_ALIASES.get(domain, domain)
    local = local.partition("+")[0] or local  # "+x@..." has nothing before its tag: kept whole
    if domain in _DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def domain_spellings(domain: str) -> list[str]:
    """The domain names one mailbox domain goes by (``gmail.com``: also ``googlemail.com``)."""
    domain = _DOMAIN_ALIASES.get(domain, domain)
    return [domain, *(alias for alias, name in _DOMAIN_ALIASES.items() if name == domain)]


def mailbox_hash(address: str) -> str:
    """The quota's key (:class:`~digest.models.ConfirmationQuota`): SHA-256 of :func:`mailbox_key`,
    so the table never holds an address in clear."""
    return hashlib.sha256(mailbox_key(address).encode()).hexdigest()
