"""Settings, read once from ``DIGEST_*`` environment variables and parsed strictly.

Every other module receives a :class:`Settings`; nothing else reads the environment.
A bad value raises :class:`ConfigError` naming the variable, and the CLI turns that
into a one-line message and exit status 2.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_SOURCE_URL = "https://huggingface.co/api/daily_papers"
DEFAULT_ARXIV_RSS_URL = "https://rss.arxiv.org/rss"
DEFAULT_ARXIV_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_DATA_DIR = Path("data")
DEFAULT_MAIL_FROM = "Trending Papers <digest@localhost>"
DEMO_SECRET_KEY = "demo-only-not-secret"
DEMO_KEY_WARNING = f"""
{"!" * 78}
WARNING: this server signs its links with the PUBLIC demo key.
Anyone can forge its confirm, preferences and unsubscribe links: sign up,
change or unsubscribe any address. /outbox answers only on this machine.
Fine for trying it out on your own machine, never for a site others reach:
set DIGEST_SECRET_KEY to a long random value, e.g. the output of
    python -c 'import secrets; print(secrets.token_urlsafe(32))'
and leave DIGEST_DEMO unset.
{"!" * 78}
"""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: str | None = None
    ssl: bool = False  # implicit TLS (smtps://)
    starttls: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key (:mod:`digest.mail.dkim`), read from its file and checked once, when the
    settings are loaded: every message is signed with the key object, never a file read or a parse."""

    algorithm: str  # "rsa" (rsa-sha256) or "ed25519" (ed25519-sha256, RFC 8463)
    selector: str
    domain: str  # the signing domain, d=
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(repr=False)


@functools.lru_cache(maxsize=16)
def _address(mail_from: str) -> Address:
    """Parsed once per value: the sender is needed for every message."""
    name, addr = parseaddr(mail_from)
    user, _, domain = addr.partition("@")
    return Address(display_name=name, username=user, domain=domain)


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str | None = None
    smtp: SmtpSettings | None = None  # None: mail goes to the in-process outbox (demo)
    source_url: str = DEFAULT_SOURCE_URL
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = DEMO_SECRET_KEY
    mail_from: str = DEFAULT_MAIL_FROM
    demo: bool = False
    claim_timeout: int = 600
    digest_size: int = 10
    data_dir: Path = DEFAULT_DATA_DIR
    trusted_proxies: int = 0  # reverse proxies in front of the web app (X-Forwarded-For hops to trust)
    arxiv_size: int = 10  # papers in a digest's "New on arXiv" section at most
    arxiv_categories: tuple[str, ...] = ()  # arXiv categories whose daily announcement is ingested; () = arXiv off
    arxiv_rss_url: str = DEFAULT_ARXIV_RSS_URL
    arxiv_api_url: str = DEFAULT_ARXIV_API_URL
    bounce_domain: str | None = None  # VERP envelope senders bounces+<token>@ this domain; None: DIGEST_MAIL_FROM's address
    dkim: tuple[DkimKey, ...] = ()  # every message is signed with each of these keys; () = unsigned
    ses_topic_arns: tuple[str, ...] = ()  # SNS topics whose SES notifications POST /webhooks/bounces/ses takes; () = webhook off
    domain_rate: int | None = None  # messages a second per recipient domain, and a 4xx slows that domain; None = no pacing
    metrics_dir: Path | None = None  # every process's counters, added up by /metrics (digest.metrics); None: per process
    metrics_token: str | None = None  # /metrics wants "Authorization: Bearer <this>"; None: no token
    metrics_allow: tuple[IPNetwork, ...] | None = None  # who may scrape /metrics; None: loopback without a token, anyone with one
    extra: dict = field(default_factory=dict)  # per-test overrides (e.g. rate limits)

    @property
    def mail_from_address(self) -> Address:
        return _address(self.mail_from)

    @property
    def mail_domain(self) -> str:
        return self.mail_from_address.domain or "localhost"

    @property
    def demo_key(self) -> bool:
        """Links are signed with the public demo key: anyone can forge them."""
        return self.secret_key == DEMO_SECRET_KEY

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def _bool(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(variable, f"expected true/false, got {raw!r}")


def _int(variable: str, raw: str, minimum: int, maximum: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(variable, f"expected a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(variable, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _http_url(variable: str, raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(variable, f"expected an http(s) URL, got {raw!r}")
    return raw.strip().rstrip("/")


#: An arXiv category as its listings name it: ``cs.CL``, ``math.AG``, ``hep-th``, ``astro-ph.GA``, ``q-bio.NC``.
ARXIV_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]{2,})?")


def parse_arxiv_categories(variable: str, raw: str) -> tuple[str, ...]:
    """``cs.CL,cs.LG`` → ``("cs.CL", "cs.LG")``, in the given order, each once."""
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        if not ARXIV_CATEGORY.fullmatch(name):
            raise ConfigError(variable, f"{name!r} is not an arXiv category (like cs.CL, math.AG or hep-th)")
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_database_url(variable: str, raw: str) -> str:
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(variable, f"not a database URL: {raw!r}") from None
    backend = url.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(variable, f"only sqlite and postgresql are supported, got {backend!r}")
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and "timeout" in url.query:  # seconds a write waits for another writer
        try:
            if not 0 <= float(url.query["timeout"]) <= 600:  # type: ignore[arg-type]
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(variable, f"?timeout= must be seconds between 0 and 600, got {url.query['timeout']!r}") from None
    return url.render_as_string(hide_password=False)


def parse_broker_url(variable: str, raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(variable, f"expected redis://host:port/db, got {raw!r}")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(variable, f"bad port in {raw!r}") from None
    return raw.strip()


def parse_smtp_url(variable: str, raw: str) -> SmtpSettings:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ConfigError(variable, f"expected smtp://user:pass@host:port or smtps://…, got {raw!r}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(variable, f"bad port in {raw!r}") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ConfigError(variable, f"unknown option(s) {', '.join(sorted(unknown))}")
    ssl = parts.scheme == "smtps"
    starttls = _bool(variable, query.get("starttls", "false"))
    if ssl and starttls:
        raise ConfigError(variable, "smtps:// already uses TLS; drop starttls=true")
    timeout = float(_int(variable, query.get("timeout", "30"), 1, 600))
    return SmtpSettings(
        host=parts.hostname,
        port=port or (465 if ssl else 587 if starttls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=ssl,
        starttls=starttls,
        timeout=timeout,
    )


def _mail_from(variable: str, raw: str) -> str:
    name, addr = parseaddr(raw)
    if "@" not in addr or "\n" in raw or "\r" in raw:
        raise ConfigError(variable, f"expected 'Name <address@domain>', got {raw!r}")
    if not addr.isascii():  # it goes into From:, Message-ID and the envelope as it is (the name may be anything)
        raise ConfigError(variable, f"the address must be ASCII (an international domain in punycode, xn--…), got {addr!r}")
    return raw.strip()


#: A DKIM selector: a domain name's labels (RFC 6376 3.1), e.g. ``s1`` or ``2026.rsa``.
DNS_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
#: The variables that name each kind of DKIM key, and their selectors.
DKIM_VARIABLES = {
    "rsa": ("DIGEST_DKIM_KEY_FILE", "DIGEST_DKIM_SELECTOR"),
    "ed25519": ("DIGEST_DKIM_ED25519_KEY_FILE", "DIGEST_DKIM_ED25519_SELECTOR"),
}
_KINDS = {"rsa": rsa.RSAPrivateKey, "ed25519": ed25519.Ed25519PrivateKey}
_KIND_LABELS = {rsa.RSAPrivateKey: "an RSA key", ed25519.Ed25519PrivateKey: "an Ed25519 key"}
MIN_RSA_BITS = 1024  # RFC 8301: verifiers ignore shorter keys; `digest dkim keygen` makes 2048


def dkim_domain(env: Mapping[str, str] | None = None) -> str:
    """The DKIM signing domain: ``DIGEST_DKIM_DOMAIN``, else the domain of ``DIGEST_MAIL_FROM``."""
    env = os.environ if env is None else env
    raw = env.get("DIGEST_DKIM_DOMAIN") or ""
    if not raw:
        return _address(_mail_from("DIGEST_MAIL_FROM", env.get("DIGEST_MAIL_FROM") or DEFAULT_MAIL_FROM)).domain.lower()
    domain = raw.strip().rstrip(".").lower()
    if not DNS_NAME.fullmatch(domain):
        raise ConfigError("DIGEST_DKIM_DOMAIN", f"expected a domain name (an international one in punycode, xn--…), got {raw!r}")
    return domain


def read_dkim_key(variable: str, path: str, algorithm: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The private key in the file ``path``: PEM (PKCS #8 or PKCS #1, as `digest dkim keygen` and
    openssl write it), or for Ed25519 also the base64 of its 32 bytes (as dkimpy's dknewkey writes it)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(variable, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(variable, f"{path} is encrypted; DKIM keys are read without a password") from None
    except (ValueError, UnsupportedAlgorithm):
        key = _raw_ed25519(data)
        if key is None:
            raise ConfigError(variable, f"{path} holds no private key (expected PEM, as `digest dkim keygen` writes)") from None
    if not isinstance(key, _KINDS[algorithm]):
        found = next((label for kind, label in _KIND_LABELS.items() if isinstance(key, kind)), f"an {type(key).__name__}")
        rsa_variable, ed25519_variable = DKIM_VARIABLES["rsa"][0], DKIM_VARIABLES["ed25519"][0]
        raise ConfigError(
            variable,
            f"{path} holds {found}, not {_KIND_LABELS[_KINDS[algorithm]]} ({rsa_variable} takes an RSA key, {ed25519_variable} an Ed25519 key)",
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigError(
            variable, f"{path} holds a {key.key_size}-bit RSA key; receivers ignore keys under {MIN_RSA_BITS} bits (use 2048)"
        )
    return key


def _raw_ed25519(data: bytes) -> ed25519.Ed25519PrivateKey | None:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return None
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw) if len(raw) == 32 else None


def parse_dkim(env: Mapping[str, str]) -> tuple[DkimKey, ...]:
    """The DKIM keys the environment names (none, one, or an RSA and an Ed25519 key: two signatures)."""
    keys: list[tuple[str, str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey]] = []
    for algorithm, (file_variable, selector_variable) in DKIM_VARIABLES.items():
        path, selector = env.get(file_variable) or None, (env.get(selector_variable) or "").strip() or None
        if path is None and selector is None:
            continue
        if path is None:
            raise ConfigError(file_variable, f"not set, but {selector_variable} is: set both, or neither")
        if selector is None:
            raise ConfigError(
                selector_variable, f"not set, but {file_variable} is: the name of the key's DNS record, <selector>._domainkey.<domain>"
            )
        if not DNS_NAME.fullmatch(selector):
            raise ConfigError(selector_variable, f"expected letters, digits and hyphens (dot-separated), got {selector!r}")
        if any(other.lower() == selector.lower() for _, other, _ in keys):
            raise ConfigError(selector_variable, "the same as DIGEST_DKIM_SELECTOR; each key needs its own selector (one DNS record each)")
        keys.append((algorithm, selector, read_dkim_key(file_variable, path, algorithm)))
    domain = dkim_domain(env) if keys else ""
    return tuple(DkimKey(algorithm, selector, domain, key) for algorithm, selector, key in keys)


SNS_TOPIC_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:sns:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}")


def parse_topic_arns(variable: str, raw: str) -> tuple[str, ...]:
    """``arn:aws:sns:eu-west-1:123456789012:ses-bounces, …`` → the SNS topics the SES webhook takes
    notifications from (exact, case-sensitive, as SNS writes ``TopicArn``)."""
    arns = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for arn in arns:
        if not SNS_TOPIC_ARN.fullmatch(arn):
            raise ConfigError(variable, f"expected SNS topic ARNs such as arn:aws:sns:eu-west-1:123456789012:ses-bounces, got {arn!r}")
    return arns


def parse_bounce_domain(variable: str, raw: str) -> str:
    """``Bounces.Example.org.`` → ``bounces.example.org``: the domain of the VERP envelope senders,
    whose MX is the bounce listener (``digest bounces serve``)."""
    domain = raw.strip().rstrip(".").lower()
    if "@" in domain:
        raise ConfigError(variable, f"expected a domain, not an address: {raw!r} (the address is bounces+<token>@ that domain)")
    if not (DNS_NAME.fullmatch(domain) and "." in domain and len(domain) <= 253):
        raise ConfigError(
            variable, f"expected a domain name such as bounces.example.org (an international one in punycode, xn--…), got {raw!r}"
        )
    return domain


def parse_metrics_dir(variable: str, raw: str) -> Path:
    """The directory every process of the service writes its counters to (``digest.metrics``)."""
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError(variable, f"{raw!r} is not a directory; create it (empty) and give every process of the service write access")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(variable, f"{raw!r} is not writable by this process")
    return path


def parse_metrics_token(variable: str, raw: str) -> str:
    """A bearer token for /metrics: printable ASCII without spaces (an HTTP header carries it), 16+ characters."""
    if not re.fullmatch(r"[\x21-\x7e]+", raw):
        raise ConfigError(
            variable,
            "use printable ASCII characters without spaces (e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        )
    if len(raw) < 16:
        raise ConfigError(variable, "too short; use at least 16 random characters")
    return raw


def parse_networks(variable: str, raw: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses or networks (``127.0.0.1, 10.0.0.0/8, ::1``)."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                variable, f"expected addresses or networks such as 127.0.0.1 or 10.0.0.0/8, separated by commas; got {part!r}"
            ) from None
    if not networks:
        raise ConfigError(variable, "no address or network given")
    return tuple(networks)


def load_settings(env: Mapping[str, str] | None = None, *, demo: bool | None = None, signs: bool = True) -> Settings:
    """Read every ``DIGEST_*`` variable once; raise :class:`ConfigError` on the first bad one.

    ``signs=False`` is for commands that only read and make no link (``digest stats``,
    ``send --dry-run``, ``subscribers export``): they run without ``DIGEST_SECRET_KEY``, and
    their settings carry no key at all (:mod:`digest.tokens` refuses to sign with none).
    """
    env = os.environ if env is None else env
    get = lambda name: env.get(name) or None  # noqa: E731 - empty counts as unset
    is_demo = _bool("DIGEST_DEMO", env.get("DIGEST_DEMO", "")) if demo is None else demo

    data_dir = Path(get("DIGEST_DATA_DIR") or DEFAULT_DATA_DIR)
    database_url = (
        parse_database_url("DIGEST_DATABASE_URL", get("DIGEST_DATABASE_URL"))
        if get("DIGEST_DATABASE_URL")
        else f"sqlite:///{(data_dir / 'digest.sqlite3').as_posix()}"
    )
    secret_key = get("DIGEST_SECRET_KEY")
    if secret_key is None and not signs and not is_demo:
        secret_key = ""
    elif secret_key is None:
        if not is_demo:
            raise ConfigError(
                "DIGEST_SECRET_KEY",
                "not set; set a long random value (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
                "or run `digest demo` for the demo mode",
            )
        secret_key = DEMO_SECRET_KEY
    elif len(secret_key) < 16:
        raise ConfigError("DIGEST_SECRET_KEY", "too short; use at least 16 random characters")

    return Settings(
        database_url=database_url,
        broker_url=parse_broker_url("DIGEST_BROKER_URL", get("DIGEST_BROKER_URL")) if get("DIGEST_BROKER_URL") else None,
        smtp=parse_smtp_url("DIGEST_SMTP_URL", get("DIGEST_SMTP_URL")) if get("DIGEST_SMTP_URL") else None,
        source_url=_http_url("DIGEST_SOURCE_URL", get("DIGEST_SOURCE_URL") or DEFAULT_SOURCE_URL),
        base_url=_http_url("DIGEST_BASE_URL", get("DIGEST_BASE_URL") or "http://127.0.0.1:8000"),
        secret_key=secret_key,
        mail_from=_mail_from("DIGEST_MAIL_FROM", get("DIGEST_MAIL_FROM") or DEFAULT_MAIL_FROM),
        demo=is_demo,
        claim_timeout=_int("DIGEST_CLAIM_TIMEOUT", get("DIGEST_CLAIM_TIMEOUT") or "600", 10, 86400),
        digest_size=_int("DIGEST_DIGEST_SIZE", get("DIGEST_DIGEST_SIZE") or "10", 1, 50),
        data_dir=data_dir,
        trusted_proxies=_int("DIGEST_TRUSTED_PROXIES", get("DIGEST_TRUSTED_PROXIES") or "0", 0, 5),
        arxiv_size=_int("DIGEST_ARXIV_SIZE", get("DIGEST_ARXIV_SIZE") or "10", 1, 50),
        arxiv_categories=parse_arxiv_categories("DIGEST_ARXIV_CATEGORIES", get("DIGEST_ARXIV_CATEGORIES") or ""),
        arxiv_rss_url=_http_url("DIGEST_ARXIV_RSS_URL", get("DIGEST_ARXIV_RSS_URL") or DEFAULT_ARXIV_RSS_URL) + "/",
        arxiv_api_url=_http_url("DIGEST_ARXIV_API_URL", get("DIGEST_ARXIV_API_URL") or DEFAULT_ARXIV_API_URL),
        bounce_domain=parse_bounce_domain("DIGEST_BOUNCE_DOMAIN", get("DIGEST_BOUNCE_DOMAIN")) if get("DIGEST_BOUNCE_DOMAIN") else None,
        dkim=parse_dkim(env),
        ses_topic_arns=parse_topic_arns("DIGEST_SES_TOPIC_ARN", get("DIGEST_SES_TOPIC_ARN") or ""),
        domain_rate=_int("DIGEST_DOMAIN_RATE", get("DIGEST_DOMAIN_RATE"), 1, 10000) if get("DIGEST_DOMAIN_RATE") else None,
        metrics_dir=parse_metrics_dir("DIGEST_METRICS_DIR", get("DIGEST_METRICS_DIR")) if get("DIGEST_METRICS_DIR") else None,
        metrics_token=parse_metrics_token("DIGEST_METRICS_TOKEN", get("DIGEST_METRICS_TOKEN")) if get("DIGEST_METRICS_TOKEN") else None,
        metrics_allow=parse_networks("DIGEST_METRICS_ALLOW", get("DIGEST_METRICS_ALLOW")) if get("DIGEST_METRICS_ALLOW") else None,
    )


#: The variables :func:`load_settings` reads: docs and docker-compose are checked against this.
VARIABLES = (
    "DIGEST_DATABASE_URL",
    "DIGEST_BROKER_URL",
    "DIGEST_SMTP_URL",
    "DIGEST_SOURCE_URL",
    "DIGEST_BASE_URL",
    "DIGEST_SECRET_KEY",
    "DIGEST_MAIL_FROM",
    "DIGEST_DEMO",
    "DIGEST_CLAIM_TIMEOUT",
    "DIGEST_DIGEST_SIZE",
    "DIGEST_DATA_DIR",
    "DIGEST_TRUSTED_PROXIES",
    "DIGEST_ARXIV_CATEGORIES",
    "DIGEST_ARXIV_RSS_URL",
    "DIGEST_ARXIV_API_URL",
    "DIGEST_BOUNCE_DOMAIN",
    "DIGEST_DKIM_KEY_FILE",
    "DIGEST_DKIM_SELECTOR",
    "DIGEST_DKIM_ED25519_KEY_FILE",
    "DIGEST_DKIM_ED25519_SELECTOR",
    "DIGEST_DKIM_DOMAIN",
    "DIGEST_SES_TOPIC_ARN",
    "DIGEST_DOMAIN_RATE",
    "DIGEST_METRICS_DIR",
    "DIGEST_METRICS_TOKEN",
    "DIGEST_METRICS_ALLOW",
)
