"""Topic filters: parse the one-filter-per-line language and match it against papers.

``Filter.matches`` is the plain reference evaluation; :class:`digest.matching.corpus.Corpus` evaluates the
same filters over many papers at once with bitsets, memoised per filter and per term.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

MAX_LINE_CHARS = 200
MAX_TOPICS_CHARS = 2000
MAX_FILTERS = 20

FIELDS = ("title", "author", "org", "upvotes")
_WORD_RE = re.compile(r"[^\W_]+")
_UPVOTES_RE = re.compile(r"(>=|<=|>|<|=)?([0-9]{1,12})")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"'})
_SEP = ""  # separates independent texts (title/abstract, authors) in a token sequence


class FilterError(ValueError):
    """One problem on one line of topics."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        self.message = f"line {line}: {problem}"
        super().__init__(self.message)


class TopicsError(ValueError):
    """All problems found in a topics textarea."""

    def __init__(self, errors: list[FilterError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))


class _Problem(Exception):
    """A parse problem before its line number is known."""


def tokenize(text: str) -> tuple[str, ...]:
    """Casefolded, NFKC-normalised words (maximal runs of letters/digits)."""
    if text.isascii():  # NFKC leaves ASCII alone and casefold() is lower() on it
        return tuple(_WORD_RE.findall(text.lower()))
    norm = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return tuple(_WORD_RE.findall(norm))


@dataclass(frozen=True)
class PaperText:
    """What matching sees of a paper."""

    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    org: str = ""
    org_fullname: str = ""
    upvotes: int = 0


class Term(NamedTuple):
    """One condition: words in a field ("text", "title", "author", "org") or an upvotes comparison.

    A named tuple: built and hashed in C, and the matcher looks terms up by hash all the time.
    """

    field: str
    words: tuple[str, ...] = ()
    op: str = ""
    value: int = 0

    def render(self) -> str:
        """Canonical filter syntax for this term."""
        if self.field == "upvotes":
            return f"upvotes:{self.op}{self.value}"
        prefix = "" if self.field == "text" else f"{self.field}:"
        body = self.words[0] if len(self.words) == 1 else '"' + " ".join(self.words) + '"'
        return prefix + body


COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}


@dataclass(frozen=True, eq=False)
class Filter:
    """One compiled line. Equal when the normalised form (``key``) is equal."""

    text: str
    key: str
    branches: tuple[tuple[Term, ...], ...] = field(repr=False)  # OR of ANDs; () means everything
    excludes: tuple[Term, ...] = field(repr=False)  # none may match, whatever the branch

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Filter) and self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)

    def matches(self, paper: PaperText) -> bool:
        """Reference evaluation: tokenise the paper and check every term."""
        fields = paper_fields(paper)
        if any(_term_matches(t, fields, paper.upvotes) for t in self.excludes):
            return False
        if not self.branches:
            return True
        return any(all(_term_matches(t, fields, paper.upvotes) for t in b) for b in self.branches)


def paper_fields(paper: PaperText) -> dict[str, tuple[str, ...]]:
    """Token sequences per field; ``_SEP`` keeps phrases from spanning separate texts."""
    title = tokenize(paper.title)
    authors: tuple[str, ...] = ()
    for name in paper.authors:
        authors += (_SEP, *tokenize(name))
    return {
        "text": (*title, _SEP, *tokenize(paper.abstract)),
        "title": title,
        "author": authors,
        "org": (*tokenize(paper.org), _SEP, *tokenize(paper.org_fullname)),
    }


def _term_matches(term: Term, fields: dict[str, tuple[str, ...]], upvotes: int) -> bool:
    if term.field == "upvotes":
        return COMPARE[term.op](upvotes, term.value)
    haystack = " " + " ".join(fields[term.field]) + " "
    return " " + " ".join(term.words) + " " in haystack


# ---------------------------------------------------------------- parsing


# One item: optional "-", optional "field:", then a "quoted phrase" or a bare value (which runs to
# whitespace or a quote). A bare value that is empty right before a quote means an unclosed quote.
_ITEM = re.compile(r'\s*((-?)(?:([^\W\d_]+):)?(?:"([^"]*)"|([^\s"]*)))')


def _lex(line: str) -> list[tuple[bool, Term] | None]:
    """Split a line into ``None`` (OR) and ``(negated, term)`` items: one regex match per item."""
    items: list[tuple[bool, Term] | None] = []
    i, n = 0, len(line)
    while i < n:
        m = _ITEM.match(line, i)
        raw, negated, field_name, phrase, bare = m.groups()
        i = m.end()
        name = "text"
        if field_name is not None:
            name = field_name.lower()
            if name not in FIELDS:
                raise _Problem(f"unknown field '{field_name}:' (use title:, author:, org: or upvotes:)")
        if phrase is None and not bare and i < n and line[i] == '"':  # a quote never closed
            snippet = line[i : i + 30].rstrip()
            raise _Problem(f"unterminated quote after {snippet}{'…' if n - i > 30 else ''}")
        if not raw:
            break  # only whitespace was left
        if bare == "OR" and not (negated or field_name):
            items.append(None)
        else:
            items.append((bool(negated), _term(name, bare if phrase is None else phrase, phrase is not None, raw)))
    return items


@lru_cache(maxsize=65536)
def _term(name: str, value: str, quoted: bool, raw: str) -> Term:
    """One term (cached: filters share their words; a problem is raised again, never cached)."""
    if not value and not quoted:
        what = "a number" if name == "upvotes" else 'a word or "phrase"'
        raise _Problem(f"'{raw}' must be followed directly by {what}")
    if name == "upvotes":
        m = None if quoted else _UPVOTES_RE.fullmatch(value)
        if m is None:
            raise _Problem(f"bad upvotes value '{raw}' (use e.g. upvotes:>=10, >, <=, < or =)")
        return Term("upvotes", op=m.group(1) or ">=", value=int(m.group(2)))
    words = tokenize(value)
    if not words:
        if quoted and not value.strip():
            raise _Problem('empty phrase ""')
        raise _Problem(f"'{raw}' has no letters or digits to look for")
    return Term(name, words)


def _structure(items: list[tuple[bool, Term] | None]) -> tuple[list[list[Term]], list[Term]]:
    """Group lexed items into OR branches and line-wide exclusions."""
    branches: list[list[Term]] = [[]]
    excludes: list[Term] = []
    for k, item in enumerate(items):
        if item is None:
            if k == 0:
                raise _Problem("OR at the start of the line (put it between words)")
            if items[k - 1] is None:
                raise _Problem("OR twice in a row")
            if k == len(items) - 1:
                raise _Problem("OR at the end of the line (put it between words)")
            branches.append([])
        elif item[0]:
            excludes.append(item[1])
        else:
            branches[-1].append(item[1])
    if len(branches) > 1 and not all(branches):
        raise _Problem("each side of OR needs a word to look for (exclusions like -x apply to the whole line)")
    return [b for b in branches if b], excludes


def _canonical(terms: Sequence[Term]) -> tuple[str, tuple[Term, ...]]:
    """Deduplicated, sorted by rendering; with the renderings joined (each rendered once)."""
    if len(terms) < 2:  # the usual case: a branch of one term, or no exclusions
        return (terms[0].render(), (terms[0],)) if terms else ("", ())
    rendered = {t.render(): t for t in terms}
    keys = sorted(rendered)
    return " ".join(keys), tuple(rendered[k] for k in keys)


_PLAIN = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")  # ASCII words, one space apart


@lru_cache(maxsize=65536)
def _parse(text: str) -> Filter:
    """Parse one stripped, non-blank line (cached: subscribers share filters)."""
    if len(text) > MAX_LINE_CHARS:
        raise _Problem(f"filter is too long ({len(text)} characters, at most {MAX_LINE_CHARS})")
    if _PLAIN.fullmatch(text) and "OR" not in text.split():
        # Plain words ("agents", "video diffusion"; 38 % of the distinct filters in the bench mix):
        # all of them required, each one token, in sorted order — what the general path below
        # builds, in 40 % of its time (tests/test_topics.py checks both give the same Filter).
        words = sorted(set(text.lower().split()))
        return Filter(text=text, key=" ".join(words), branches=(tuple(Term("text", (w,)) for w in words),), excludes=())
    return _parse_general(text)


def _parse_general(text: str) -> Filter:
    raw_branches, raw_excludes = _structure(_lex(text.translate(_SMART_QUOTES)))
    if not raw_branches and not raw_excludes:
        raise _Problem("empty filter")
    by_key = dict(map(_canonical, raw_branches))
    branch_keys = sorted(by_key)
    branches = tuple(by_key[k] for k in branch_keys)
    excludes = _canonical(raw_excludes)[1]
    key = " ".join([" OR ".join(branch_keys), *("-" + t.render() for t in excludes)]).strip()
    return Filter(text=text, key=key, branches=branches, excludes=excludes)


def parse_filter(line: str) -> Filter:
    """Parse one filter line; raises FilterError (line 1)."""
    text = line.strip()
    if not text:
        raise FilterError(1, "empty filter")
    try:
        return _parse(text)
    except _Problem as e:
        raise FilterError(1, str(e)) from None


def parse_topics(text: str) -> list[Filter]:
    """Parse a textarea (one filter per line); raises TopicsError listing every problem."""
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    errors: list[FilterError] = []
    content = norm.strip()
    if len(content) > MAX_TOPICS_CHARS:
        at = norm[: len(norm) - len(norm.lstrip()) + MAX_TOPICS_CHARS + 1].count("\n") + 1
        errors.append(FilterError(at, f"topics are too long ({len(content)} characters, at most {MAX_TOPICS_CHARS} in all)"))
    filters: list[Filter] = []
    seen: set[str] = set()
    count = 0
    for number, line in enumerate(norm.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        count += 1
        if count == MAX_FILTERS + 1:
            errors.append(FilterError(number, f"too many filters (at most {MAX_FILTERS}, one per line)"))
        try:
            f = _parse(stripped)
        except _Problem as e:
            errors.append(FilterError(number, str(e)))
            continue
        if f.key not in seen:
            seen.add(f.key)
            filters.append(f)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise TopicsError(errors)
    return filters


def format_topics(filters: list[Filter]) -> str:
    """The textarea text for these filters."""
    return "\n".join(f.text for f in filters)
