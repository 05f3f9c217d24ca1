"""Email templates: ``email_templates/<name>/{subject.txt, body.txt, body.html}`` over ``_base``.

CSS is inlined by premailer ONCE per template, when the template is first loaded: the HTML
template's source (with its base flattened in) goes through premailer and the result is compiled
by Jinja. Per recipient there is only a Jinja render of pre-inlined HTML.

HTML templates render ASCII (every other character as a character reference, which an HTML reader
reads as the same character), so that the message can carry them 7bit without a per-recipient
encoding (:func:`digest.mail.mime.ascii_html`): the compiled source is made ASCII once, and the
values a template prints on the way out.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jinja2
from markupsafe import Markup, escape
from premailer import Premailer

from digest.mail.mime import MessageSpec, ascii_html, build_message, one_line
from digest.resources import resource_path

TEMPLATES_DIR = resource_path("email_templates")

_EXTENDS = re.compile(r"{%-?\s*extends\s+[\"']([^\"']+)[\"']\s*-?%}")
_BLOCK = re.compile(r"{%-?\s*block\s+(\w+)\s*-?%}(.*?){%-?\s*endblock(?:\s+\w+)?\s*-?%}", re.S)
_ENCODED_EXPR = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.S)
_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S)
_SPACES = re.compile(r"\s+")
_CSS_PUNCTUATION = re.compile(r" ?([{};,]) ?")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str

    def message(
        self,
        sender: Address,
        to: str,
        message_id: str,
        headers: dict[str, str] | None = None,
        date: float | None = None,
        eight_bit: bool = False,
    ) -> bytes:
        """This email as MIME bytes from ``sender`` to ``to`` (every email we send is auto-generated);
        ``eight_bit``: its text part may go 8bit (:attr:`~digest.mail.mime.MessageSpec.eight_bit`)."""
        return build_message(
            MessageSpec(
                from_name=sender.display_name,
                from_address=sender.addr_spec,
                to_address=to,
                subject=self.subject,
                text=self.text,
                html=self.html,
                message_id=message_id,
                headers={**(headers or {}), "Auto-Submitted": "auto-generated"},
                date=date,
                eight_bit=eight_bit,
            )
        )


def flatten(loader: jinja2.BaseLoader, env: jinja2.Environment, name: str) -> str:
    """Resolve ``{% extends %}`` by substituting the child's blocks into its base's source."""
    source, _, _ = loader.get_source(env, name)
    parent = _EXTENDS.search(source)
    if not parent:
        return source
    blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(source)}
    base = flatten(loader, env, parent.group(1))
    return _BLOCK.sub(lambda m: blocks.get(m.group(1), m.group(2)), base)


def inline_css(source: str) -> str:
    html = Premailer(
        source,
        remove_classes=False,
        # only what cannot be inlined stays in <style>: the media queries (dark mode, phone width),
        # made !important so that they win over the inline styles; every other rule is inlined, and
        # repeating it in each message would cost ~2 KB per recipient. Comments are kept as they
        # are: Outlook's conditional comments (<!--[if mso]>, the ghost table around the column)
        # pass through, and their markup carries its own attributes (nothing is inlined into it)
        keep_style_tags=False,
        strip_important=False,
        # keep the images' width/height attributes (what a client lays out before, or without, the
        # image) instead of premailer's copies of their CSS ("100%", "auto"); and no bgcolor/align
        # copied from CSS onto every element (spans, images, divs): the frame's tables carry the
        # attributes Outlook needs in the templates, the rest is CSS every client reads
        disable_basic_attributes=["width", "height", "valign", "bgcolor", "align"],
        cssutils_logging_level=50,
        disable_validation=True,
        allow_network=False,
    ).transform()
    # premailer URL-quotes attribute values: give Jinja back its expressions; its serialiser writes
    # entities (&middot;) as characters: give them back as references
    html = _STYLE.sub(lambda m: m.group(1) + _compact_css(m.group(2)) + m.group(3), html)
    return ascii_html(_ENCODED_EXPR.sub(lambda m: unquote(m.group(0)), html))


def _compact_css(css: str) -> str:
    """A stylesheet without the indentation and line breaks premailer writes it with: every message
    carries it (half a kilobyte less of each)."""
    return _CSS_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", css)).strip()


def _render(template: jinja2.Template, variables: dict[str, Any]) -> str:
    """``template.render(variables)`` for ``variables`` that already hold the globals: the context
    is made on ``variables`` itself, where ``Template.render`` copies them into a new dict with the
    globals (a ``ChainMap``, walked twice: once for the copy, once for the context's set of their
    names) for each of an email's three templates."""
    environment = template.environment
    context = environment.context_class(environment, variables, template.name, template.blocks)
    try:
        return environment.concat(template.root_render_func(context))  # type: ignore[attr-defined]
    except Exception:
        environment.handle_exception()  # raises, with the template's lines in the traceback, as render does
        raise


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _finalize_html(value: Any) -> Any:
    """A printed value as HTML autoescaping prints it, with non-ASCII characters as references."""
    if value is None:
        return ""
    if isinstance(value, str) and not value.isascii():
        return Markup(ascii_html(value if isinstance(value, Markup) else escape(value)))
    return value


class EmailTemplates:
    """Compiled email templates; thread-safe, built once per process."""

    def __init__(self, folder: Path = TEMPLATES_DIR) -> None:
        self.loader = jinja2.FileSystemLoader(str(folder))
        # auto_reload off: templates do not change under a running process, and with it on every
        # render of a template that extends another stats the base's file (a syscall per email)
        common = dict(loader=self.loader, undefined=jinja2.StrictUndefined, auto_reload=False)
        self.html_env = jinja2.Environment(autoescape=True, finalize=_finalize_html, **common)
        self.text_env = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, finalize=_finalize, **common)
        self._globals = {**self.text_env.globals, **self.html_env.globals}  # what every render adds to its context
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per key and process (premailer costs milliseconds; never per email)."""
        compiled = self._cache.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._cache.get(key)
                if compiled is None:
                    compiled = self._cache[key] = build()
        return compiled

    def _compile(self, name: str) -> tuple[jinja2.Template, jinja2.Template, jinja2.Template]:
        return self._cached(
            name,
            lambda: (
                self.text_env.get_template(f"{name}/subject.txt"),
                self.text_env.get_template(f"{name}/body.txt"),
                self.html_env.from_string(inline_css(flatten(self.loader, self.html_env, f"{name}/body.html"))),
            ),
        )

    def fragment(self, path: str, start: str, end: str) -> jinja2.Template:
        """The part of ``path`` (a template extending ``_base``) between the markers ``start`` and
        ``end``, with the base's stylesheet inlined into it: a block many emails share."""

        def build() -> jinja2.Template:
            source = inline_css(flatten(self.loader, self.html_env, path))
            return self.html_env.from_string(source.split(start, 1)[1].split(end, 1)[0].strip())

        return self._cached(f"{path}#{start}", build)

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Subject, text and HTML of one email, from one context: the three templates share one
        copy of it with the environments' globals, which rendering does not change."""
        subject, text, html = self._compile(name)
        variables = {**self._globals, **context}
        return Rendered(one_line(_render(subject, variables)), _render(text, variables).strip() + "\n", _render(html, variables))


_default: EmailTemplates | None = None


def templates() -> EmailTemplates:
    global _default
    if _default is None:
        _default = EmailTemplates()
    return _default
