"""Topic filters: parse the one-filter-per-line language and match it against papers.

A line is an expression: words (all required), ``OR`` (binds looser than the implicit AND; ``or``,
``and``, ``not`` are operators in any case — quote one to look for the word), parentheses,
exclusions (``-word``, ``-(…)``, ``NOT word``; an exclusion applies to the whole group or line it is
written in), ``"phrases"``, hyphenated words (``text-to-video``: the words in a row, or run together),
prefixes (``quantiz*``), fields (``title:``, ``author:``, ``org:``, ``upvotes:>=10``), and papers like
one the reader names (``like:2501.12345``: an arXiv id or link; the papers whose embedding is within
:data:`digest.matching.similar.LIKE_SIMILARITY` of that paper's). Words match their inflections
(stems, :mod:`digest.matching.words`), in phrases too.

``Filter.matches`` is the plain reference evaluation; :class:`digest.matching.corpus.Corpus` evaluates the
same filters over many papers at once with bitsets, memoised per filter and per term.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from digest.matching.expression import OPERATORS, And, Node, Term, all_of, any_of, evaluate, negation, term, terms_of
from digest.matching.paper_ids import paper_id
from digest.matching.words import (
    COMPOUND_RE,
    STEMMED_FIELDS,
    WORD_RE,
    Field,
    PaperText,
    normalize,
    paper_fields,
    stem_words,
    tokenize,
)

MAX_LINE_CHARS = 200
MAX_TOPICS_CHARS = 2000
MAX_FILTERS = 20
MAX_ERRORS_SHOWN = 20  # problems listed for one textarea (or one CSV row); the rest are counted

FIELDS = ("title", "author", "org", "upvotes", "like", "cat", "source")
SOURCES = {"hf": "hf", "huggingface": "hf", "arxiv": "arxiv"}  # source: values as written -> as matched
# An arXiv category: archive ("cs", "hep-th", "q-bio") and maybe a subject class ("CL", "mes-hall").
_CATEGORY_RE = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[a-z]+(?:-[a-z]+)*)?")
_ARCHIVE_RE = re.compile(r"([a-z]+(?:-[a-z]+)*)\.\*")
# Archives whose papers all sit in a subject class: "cat:cs" alone would match nothing.
_DIVIDED_ARCHIVES = frozenset({"cs", "math", "stat", "eess", "econ", "q-bio", "q-fin", "nlin", "physics", "cond-mat", "astro-ph"})
_UPVOTES_RE = re.compile(r"(>=|<=|>|<|=)?([0-9]{1,12})")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"'})


class FilterError(ValueError):
    """One problem on one line of topics."""

    def __init__(self, line: int, problem: str, column: int | None = None) -> None:
        self.line = line
        self.problem = problem
        self.column = column  # where on the line, counting from 1, when the problem is at one place
        self.message = f"line {line}: {problem}"
        super().__init__(self.message)


class TopicsError(ValueError):
    """All problems found in a topics textarea."""

    def __init__(self, errors: list[FilterError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))


class _Problem(Exception):
    """A parse problem before its line number is known; ``column`` counts from 0 in the stripped
    line, and ``{column}`` in the text becomes the column as the reader counts it."""

    def __init__(self, problem: str, column: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.column = column

    def located(self, indent: int) -> tuple[str, int | None]:
        """Problem text and column (from 1) on a line that started with ``indent`` blanks."""
        if self.column is None:
            return self.problem, None
        column = self.column + indent + 1
        return self.problem.replace("{column}", str(column)), column


def shown_errors(messages: Sequence[str], limit: int = MAX_ERRORS_SHOWN) -> list[str]:
    """The first ``limit`` messages, then one line counting the rest: a hostile textarea of
    thousands of bad lines gets a short answer, not one line per line."""
    if len(messages) <= limit:
        return list(messages)
    rest = len(messages) - limit
    return [*messages[:limit], f"…and {rest} more problem{'' if rest == 1 else 's'}"]


@dataclass(frozen=True, eq=False)
class Filter:
    """One compiled line: an expression over terms. Equal when the normalised form (``key``) is equal."""

    text: str
    key: str
    expr: Node = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Filter) and self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)

    @cached_property
    def scoped(self) -> bool:
        """Whether the line names a source or an arXiv category (``cat:``, ``source:``, not excluded):
        such a line is matched against every paper, arXiv's new ones too; any other line only against
        the trending (Hugging Face) papers, as before arXiv was a source."""
        if "cat:" not in self.key and "source:" not in self.key:
            return False
        return any(t.field in ("cat", "source") and not negated for t, negated in terms_of(self.expr))

    def matches(self, paper: PaperText) -> bool:
        """Reference evaluation: tokenise the paper and check every term."""
        return self.test(paper_fields(paper), paper.upvotes)

    def test(self, fields: dict[str, Field], upvotes: int) -> bool:
        """The reference evaluation on a paper's :func:`~digest.matching.words.paper_fields`: a line
        that is not :attr:`scoped` matches trending (Hugging Face) papers only."""
        if not self.scoped and "hf" not in fields["source"].words:
            return False
        return evaluate(self.expr, fields, upvotes)


# ---------------------------------------------------------------- parsing

# One token: "(" or "-(" (a group, maybe excluded), ")", or an item: optional "-", optional "field:",
# then a "quoted phrase" or a bare value, which runs to whitespace, a quote or a parenthesis (so a
# bare value that is empty right before a quote means an unclosed quote).
_TOKEN = re.compile(r'\s*(?:(-?\()|(\))|((-?)(?:([^\W\d_]+):)?(?:"([^"]*)"|([^\s"()]*))))')


def _lex(line: str, written: bool = False) -> tuple[list[tuple[str, int, object]], bool]:
    """``(kind, column, payload)``: kinds "(" (payload: excluded?), ")", "op" ("OR", "AND", "NOT") and
    "term" (payload: ``(excluded, term)``, and with ``written`` the item and its value as written);
    columns count from 0.
    And whether the line is flat: terms only, no operator or parenthesis."""
    tokens: list[tuple[str, int, object]] = []
    flat = True
    i, n = 0, len(line)
    while i < n:
        m = _TOKEN.match(line, i)
        group, close, raw, negated, field_name, phrase, bare = m.groups()
        i = m.end()
        if group is not None:
            tokens.append(("(", m.start(1), group == "-("))
            flat = False
            continue
        if close is not None:
            tokens.append((")", m.start(2), None))
            flat = False
            continue
        name = "text"
        if field_name is not None:
            name = field_name.lower()
            if name not in FIELDS:
                raise _Problem(f"unknown field '{field_name}:' (use title:, author:, org:, upvotes:, like:, cat: or source:)", m.start(3))
        if phrase is None and not bare and i < n and line[i] == '"':  # a quote never closed
            snippet = line[i : i + 30].rstrip()
            raise _Problem(f"unterminated quote after {snippet}{'…' if n - i > 30 else ''}", i)
        if not raw:
            break  # only whitespace was left
        if field_name is not None and phrase is None and not bare and i < n and line[i] == "(":
            raise _Problem(
                f"'{field_name}:' applies to one word or \"phrase\", not to parentheses (write ({name}:a OR {name}:b))", m.start(3)
            )
        if bare and len(bare) < 4 and not (negated or field_name) and bare.lower() in OPERATORS:
            tokens.append(("op", m.start(3), bare.upper()))
            flat = False
            continue
        value = bare if phrase is None else phrase
        try:
            found = _term(name, value, phrase is not None, raw)
        except _Problem as e:
            e.column = m.start(3)
            raise
        payload = (negated == "-", found, raw, value) if written else (negated == "-", found)
        tokens.append(("term", -1, payload))  # a term's column is never needed
    return tokens, flat


@lru_cache(maxsize=65536)
def _term(name: str, value: str, quoted: bool, raw: str) -> Term:
    """One term (cached: filters share their words; a problem is raised again, never cached)."""
    if not value and not quoted:
        what = {"upvotes": "a number", "like": "an arXiv id", "cat": "an arXiv category", "source": "arxiv or hf"}.get(
            name, 'a word or "phrase"'
        )
        raise _Problem(f"'{raw}' must be followed directly by {what}")
    if name == "cat":
        return _category(value, quoted, raw)
    if name == "source":
        found = None if quoted else SOURCES.get(value.lower())
        if found is None:
            raise _Problem(f"'{raw}': source: is arxiv (new on arXiv) or hf (trending on Hugging Face)")
        return term("source", (found,), stems=(found,))
    if name == "like":
        try:
            found = paper_id(value)
        except ValueError:
            found = None
        if quoted or found is None:
            raise _Problem(f"'{raw}': like: takes one paper's arXiv id or link, as in like:2501.12345") from None
        return term("like", (found,))
    if name == "upvotes":
        m = None if quoted else _UPVOTES_RE.fullmatch(value)
        if m is None:
            raise _Problem(f"bad upvotes value '{raw}' (use e.g. upvotes:>=10, >, <=, < or =)")
        return term("upvotes", op=m.group(1) or ">=", value=int(m.group(2)))
    if "*" in value:
        return _prefix(name, value, quoted, raw)
    norm = normalize(value)
    words = tuple(WORD_RE.findall(norm))
    if not words:
        if quoted and not value.strip():
            raise _Problem('empty phrase ""')
        raise _Problem(f"'{raw}' has no letters or digits to look for")
    stemmed = name in STEMMED_FIELDS
    stems = stem_words(words) if stemmed else words
    if not quoted and len(words) > 1 and COMPOUND_RE.fullmatch(norm):  # hyphenated: also run together
        joined = "".join(words)
        return term(name, words, "-", stems=stems, joined=stem_words((joined,))[0] if stemmed else joined)
    return term(name, words, stems=stems)


def _category(value: str, quoted: bool, raw: str) -> Term:
    """``cat:cs.CL`` (one category, matched exactly whatever its case) or ``cat:cs.*`` (an archive)."""
    norm = value.lower()
    archive = _ARCHIVE_RE.fullmatch(norm)
    if archive is not None and not quoted:
        return term("cat", (archive.group(1) + ".",), "*")
    if quoted or not _CATEGORY_RE.fullmatch(norm):
        raise _Problem(f"'{raw}': cat: takes one arXiv category, as in cat:cs.CL, or an archive, as in cat:cs.*")
    if norm in _DIVIDED_ARCHIVES:
        raise _Problem(f"'{raw}' names an archive: write cat:{norm}.* for all of it, or one category, as in cat:cs.CL")
    return term("cat", (norm,), stems=(norm,))


def _prefix(name: str, value: str, quoted: bool, raw: str) -> Term:
    if quoted:
        raise _Problem("'*' does not work inside quotes: a prefix is one unquoted word, as in quantiz*")
    head = value[:-1]
    if not value.endswith("*") or "*" in head:
        raise _Problem(f"'*' goes at the end of a word, as in quantiz* (found '{raw}')")
    words = tokenize(head)
    if len(words) != 1:
        raise _Problem(f"'{raw}': a * prefix works on one word, without spaces, hyphens or punctuation")
    if len(words[0]) < 2:
        raise _Problem(f"'{raw}' is too short a prefix (at least 2 letters or digits before the *)")
    return term(name, words, "*")


class _Group:
    """The line, or one pair of parentheses, while it is read: OR branches of parts, and the
    exclusions, which apply to the whole group."""

    __slots__ = ("branches", "excludes", "column", "excluded", "last", "last_at")

    def __init__(self, column: int | None, excluded: bool) -> None:
        self.branches: list[list[Node]] = [[]]
        self.excludes: list[Node] = []
        self.column = column  # of its "(", None for the line
        self.excluded = excluded  # written -( … ) or NOT ( … )
        self.last: str | None = None  # what came last: None (nothing yet), "part", "OR", "AND"
        self.last_at = 0

    def add(self, node: Node, excluded: bool) -> None:
        (self.excludes if excluded else self.branches[-1]).append(node)
        self.last = "part"

    def operator(self, op: str, at: int) -> None:
        if self.last is None:
            raise (
                _Problem(f"{op} at the start of the line (put it between words)", at)
                if self.column is None
                else _Problem(f"{op} right after '(' at column {{column}} (put it between words)", self.column)
            )
        if self.last != "part":
            if op == self.last == "OR":
                raise _Problem("OR twice in a row", at)
            raise _Problem(f"{op} right after {self.last} at column {{column}} (one operator between two words)", at)
        self.last, self.last_at = op, at
        if op == "OR":
            self.branches.append([])

    def close(self, at: int | None) -> Node:
        """The group's expression; ``at``: the column of its ")" (None: the end of the line)."""
        if self.last in ("OR", "AND"):
            if at is None:
                raise _Problem(f"{self.last} at the end of the line (put it between words)", self.last_at)
            raise _Problem(f"{self.last} right before ')' at column {{column}} (put it between words)", at)
        if self.last is None:
            if self.column is None:
                raise _Problem("empty filter")
            raise _Problem("empty parentheses '()' at column {column}", self.column)
        if len(self.branches) > 1 and not all(self.branches):
            scope = "the whole line" if self.column is None else "the whole group in parentheses"
            raise _Problem(f"each side of OR needs a word to look for (exclusions like -x apply to {scope})", self.column)
        parts = [any_of([all_of(b) for b in self.branches])] if self.branches[0] else []
        return all_of(parts + [negation(x) for x in self.excludes])


def _structure(tokens: list[tuple[str, int, object]], flat: bool) -> Node:
    """Tokens to an expression: AND binds tighter than OR; parentheses group; an exclusion (-x,
    NOT x) applies to the whole group (or line) it is written in."""
    if flat:  # no operator, no parenthesis (most lines): what the groups below build
        return all_of([p[1] for _, _, p in tokens if not p[0]] + [negation(p[1]) for _, _, p in tokens if p[0]])
    stack = [_Group(None, False)]
    not_at: int | None = None  # column of a NOT waiting for its word or group
    for kind, at, payload in tokens:
        group = stack[-1]
        if kind == "op":
            if payload == "NOT":
                if not_at is not None:
                    raise _Problem("NOT twice in a row at column {column}", at)
                not_at = at
                continue
            if not_at is not None:
                raise _Problem(f"NOT right before {payload} at column {{column}} (NOT goes before a word or a group)", not_at)
            group.operator(payload, at)
        elif kind == "(":
            if not_at is not None and payload:
                raise _Problem("NOT and '-' together at column {column} (use one of them)", not_at)
            stack.append(_Group(at, bool(payload) or not_at is not None))
            not_at = None
        elif kind == ")":
            if not_at is not None:
                raise _Problem("NOT right before ')' at column {column} (NOT goes before a word or a group)", not_at)
            if len(stack) == 1:
                raise _Problem("')' at column {column} has no '(' before it", at)
            stack.pop()
            stack[-1].add(group.close(at), group.excluded)
        else:
            excluded, found = payload
            if not_at is not None and excluded:
                raise _Problem("NOT and '-' together at column {column} (use one of them)", not_at)
            group.add(found, excluded or not_at is not None)
            not_at = None
    if not_at is not None:
        raise _Problem("NOT at the end of the line (put it before a word or a group)", not_at)
    if len(stack) > 1:
        raise _Problem("'(' at column {column} is never closed", stack[-1].column)
    return stack[0].close(None)


_PLAIN = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")  # ASCII words, one space apart
# One item, not excluded: field:"phrase", field:word, "phrase", word (no smart quote, no parenthesis);
# "field:" taken whenever it is there (possessive), as the lexer takes it.
_SINGLE = re.compile(r'(?:([^\W\d_]+):)?+(?:"([^"]*)"|(?!-)([^\s"()\u201c-\u201f]+))')


@lru_cache(maxsize=65536)
def _word(word: str) -> Term:
    return term("text", (word,), stems=stem_words((word,)))


@lru_cache(maxsize=65536)
def _parse(text: str) -> Filter:
    """Parse one stripped, non-blank line (cached: subscribers share filters)."""
    if not text.isprintable():  # the per-character look only when there is something unusual
        control = next((ch for ch in text if unicodedata.category(ch) == "Cc"), None)
        if control is not None:  # NUL, escape codes, vertical tabs…: never stored (tabs are spaces by now)
            raise _Problem(f"control characters are not allowed (found U+{ord(control):04X}); type the filter as plain text")
    if len(text) > MAX_LINE_CHARS:
        raise _Problem(f"filter is too long ({len(text)} characters, at most {MAX_LINE_CHARS})")
    if _PLAIN.fullmatch(text) and OPERATORS.isdisjoint(words := text.lower().split()):
        # Plain words ("agents", "video diffusion"; 38 % of the distinct filters in the bench mix):
        # all of them required, each one token, in sorted order — what the general path below
        # builds, in 40 % of its time (tests/test_topics.py checks both give the same Filter).
        words = sorted(set(words))
        if len(words) == 1:
            return Filter(text=text, key=words[0], expr=_word(words[0]))
        key = " ".join(words)
        return Filter(text=text, key=key, expr=And(tuple(map(_word, words)), key))
    single = _SINGLE.fullmatch(text) if " " not in text or text[-1] == '"' else None  # a space only in quotes
    if single is not None:
        # One item ('"world model"', "title:x", 'author:"…"', "text-to-video"; 33 % of the bench mix):
        # its cached term is the filter. Anything the item has wrong, the general path reports.
        field_name, phrase, bare = single.groups()
        name = "text" if field_name is None else field_name.lower()
        if (field_name is None or name in FIELDS) and not (field_name is None and bare is not None and bare.lower() in OPERATORS):
            try:
                found = _term(name, bare if phrase is None else phrase, phrase is not None, text)
            except _Problem:
                pass
            else:
                return Filter(text=text, key=found.text, expr=found)
    return _parse_general(text)


def _parse_general(text: str) -> Filter:
    expr = None
    if text.isascii() and '"' not in text and "(" not in text and ")" not in text:  # isascii: a flag, no scan
        expr = _items(text)
    if expr is None:
        expr = _structure(*_lex(text if text.isascii() else text.translate(_SMART_QUOTES)))
    return Filter(text=text, key=expr.text, expr=expr)


def _items(text: str) -> Node | None:
    """An ASCII line of items between spaces, maybe OR'ed ("agents -survey", "a OR b upvotes:>=5"; 85 %
    of the lines the general path gets in the bench mix), without the lexer; what the lexer and
    :func:`_structure` build. None for anything else (AND, NOT, a problem): the lexer reads it, and
    says where a problem is."""
    branches: list[list[Node]] = [[]]
    excludes: list[Node] = []
    after_or = True  # at the start, or right after OR
    for item in text.split():
        if len(item) < 4 and item.lower() in OPERATORS:
            if item.lower() != "or" or after_or:
                return None
            branches.append([])
            continue
        after_or = False
        excluded = item[0] == "-"
        body = item[1:] if excluded else item
        head, colon, value = body.partition(":")
        if colon and head.isalpha():  # the lexer's [^\W\d_]+ on ASCII: letters
            name = head.lower()
            if name not in FIELDS:
                return None
        else:
            name, value = "text", body
        if not value:
            return None
        try:
            found = _term(name, value, False, item)
        except _Problem:
            return None
        (excludes if excluded else branches[-1]).append(found)
    if after_or or (len(branches) > 1 and not all(branches)):
        return None
    parts = [any_of([all_of(b) for b in branches])] if branches[0] else []
    return all_of(parts + [negation(x) for x in excludes])


def written_terms(text: str) -> dict[Term, tuple[str, str]]:
    """Each term of a valid filter line as the reader wrote it: the item (``author:"Yann LeCun"``)
    and its value (``Yann LeCun``), the first time the term is written."""
    out: dict[Term, tuple[str, str]] = {}
    for kind, _, payload in _lex(text.translate(_SMART_QUOTES), written=True)[0]:
        if kind == "term":
            excluded, found, item, value = payload
            out.setdefault(found, (item[1:] if excluded else item, value))
    return out


def parse_filter(line: str) -> Filter:
    """Parse one filter line; raises FilterError (line 1). A tab counts as a space."""
    text = line.replace("\t", " ").strip()
    if not text:
        raise FilterError(1, "empty filter")
    try:
        return _parse(text)
    except _Problem as e:
        raise FilterError(1, *e.located(len(line) - len(line.lstrip()))) from None


def parse_topics(text: str) -> list[Filter]:
    """Parse a textarea (one filter per line, a tab counts as a space); raises TopicsError listing
    every problem (show them with :func:`shown_errors`)."""
    norm = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
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
            errors.append(FilterError(number, *e.located(len(line) - len(line.lstrip()))))
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
