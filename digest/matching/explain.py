"""Why a filter matched a paper (the words to highlight), matched nothing (which part of it), or
matches papers on any topic (through stop words only: a hint on the forms, never an error).

Both follow the same rules as the matching itself (:mod:`digest.matching.words`): a word is found
by its stem, a prefix by the words as written, a hyphenated word as its parts in a row or run
together. Only terms outside an exclusion are highlighted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from digest.matching.corpus import Corpus
from digest.matching.expression import And, Node, Not, Or, Term, terms_of
from digest.matching.topics import Filter, FilterError, parse_filter, written_terms
from digest.matching.words import STEMMED_FIELDS, STOP_WORDS, stem_words, tokenize

_RUN_RE = re.compile(r"[^\W_]+")
_COMPOUND_RE = re.compile(r"(?<![^\W_])[^\W_]++(?:[-\u2010\u2011][^\W_]++)+")

Segments = list[tuple[str, bool]]  # the text cut into pieces, each highlighted or not


# ---------------------------------------------------------------- highlights


def highlight(filters: Sequence[Filter], text: str, field: str = "text") -> Segments:
    """``text`` (a title, an abstract or one name) cut into pieces, the words the filters look for
    marked. ``field``: "title" and "text" look for the terms on the title and on any text;
    "abstract" only those on any text; "author", "org" those fields' terms."""
    wanted = {"title": ("text", "title"), "text": ("text",), "abstract": ("text",)}.get(field, (field,))
    terms = {t for f in filters for t, negated in terms_of(f.expr) if not negated and t.field in wanted}
    if not terms or not text:
        return [(text, False)] if text else []
    stemmed = field in ("title", "text", "abstract")
    spans = _spans(text, terms, stemmed)
    out: Segments = []
    at = 0
    for start, end in spans:
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    if at < len(text):
        out.append((text[at:], False))
    return out


def _spans(text: str, terms: set[Term], stemmed: bool) -> list[tuple[int, int]]:
    """Merged (start, end) character spans of ``text`` that ``terms`` match."""
    words: list[tuple[int, int, str]] = []  # (start, end, word as written, casefolded)
    for m in _RUN_RE.finditer(text):
        words.extend((m.start(), m.end(), w) for w in tokenize(m.group()))
    compounds = [(m.start(), m.end(), "".join(tokenize(m.group()))) for m in _COMPOUND_RE.finditer(text)]
    raw = [w for _, _, w in words]
    joined = [c for _, _, c in compounds]
    if stemmed:
        stems, joined_stems = stem_words(raw), stem_words(joined)
    else:
        stems, joined_stems = tuple(raw), tuple(joined)
    found: list[tuple[int, int]] = []
    for t in terms:
        if t.op == "*":
            p = t.words[0]
            found += [(s, e) for s, e, w in words if w.startswith(p)]
            found += [(s, e) for (s, e, _), c in zip(compounds, joined) if c.startswith(p)]
            continue
        n = len(t.stems)
        for i in range(len(stems) - n + 1):
            if stems[i : i + n] == t.stems:
                found.append((words[i][0], words[i + n - 1][1]))
        target = t.stems[0] if n == 1 else t.joined if t.op == "-" else None  # a word, or a compound run together
        if target is not None:
            found += [(s, e) for (s, e, _), stem in zip(words, stems) if stem == target]
            found += [(s, e) for (s, e, _), c in zip(compounds, joined_stems) if c == target]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def excerpt(segments: Segments, width: int = 200) -> Segments:
    """About ``width`` characters of ``segments`` around the first highlighted piece, cut at spaces."""
    text = "".join(piece for piece, _ in segments)
    first, at = None, 0
    for piece, marked in segments:
        if marked:
            first = at
            break
        at += len(piece)
    if first is None:
        return []
    start = 0 if first < width // 3 else text.rfind(" ", 0, first - width // 4) + 1
    end = len(text) if len(text) - start <= width else text.find(" ", start + width)
    end = len(text) if end == -1 else end
    out: Segments = [("…", False)] if start else []
    at = 0
    for piece, marked in segments:
        lo, hi = max(at, start), min(at + len(piece), end)
        if lo < hi:
            out.append((text[lo:hi], marked))
        at += len(piece)
    if end < len(text):
        out.append(("…", False))
    return out


# ---------------------------------------------------------------- matched nothing

_UPVOTES = {">=": "at least", ">": "more than", "<=": "at most", "<": "fewer than", "=": "exactly"}


def why_nothing(corpus: Corpus, f: Filter, scope: str) -> str | None:
    """Which part of ``f`` matched nothing among the corpus's papers, in a sentence
    (``no paper in the last 7 days by Yann LeCun``); None when it matches something.
    ``scope`` says which papers these are ("in the last 7 days")."""
    if corpus.evaluate(f):
        return None
    return _Reasons(corpus, written_terms(f.text), scope).of(f.expr)


class _Reasons:
    def __init__(self, corpus: Corpus, written: dict[Term, tuple[str, str]], scope: str) -> None:
        self.corpus, self.written, self.scope = corpus, written, scope
        self.order = {t: i for i, t in enumerate(written)}

    def in_order(self, nodes) -> list[Node]:
        """Parts in the order the reader wrote them (the normal form sorts them)."""
        return sorted(nodes, key=lambda node: min(self.order.get(t, len(self.order)) for t, _ in terms_of(node)))

    def shown(self, node: Node) -> str:
        """A part as the reader wrote it (a term) or in the normal form (a group)."""
        if type(node) is Term and node in self.written:
            return f"“{self.written[node][0]}”"
        return f"“{node.text}”"

    def count(self, node: Node) -> str:
        n = self.corpus.bits(node).bit_count()
        return f"{n} paper{'' if n == 1 else 's'}"

    def of(self, node: Node) -> str:
        """Why ``node`` matches no paper (it matches none)."""
        kind = type(node)
        if kind is Term:
            return self.term(node)
        if kind is Or:
            return "; ".join(self.of(c) for c in self.in_order(node.children))
        if kind is Not:
            return f"every paper {self.scope} matches {self.shown(node.child)}, which this line excludes"
        assert kind is And
        children = self.in_order(node.children)
        wanted = [c for c in children if type(c) is not Not]
        empty = [self.of(c) for c in wanted if not self.corpus.bits(c)]
        if empty:
            return "; ".join(empty)
        bits = self.corpus.bits(And(tuple(wanted), ""))  # no parts: every paper
        if not bits:
            parts = [f"{self.shown(c)} ({self.count(c)})" for c in wanted]
            listed = ", ".join(parts[:-1]) + " and " + parts[-1]
            return f"{listed} are never in the same paper {self.scope}"
        excluding = [c.child for c in children if type(c) is Not and bits & ~self.corpus.bits(c)]
        what = " or ".join(self.shown(c) for c in excluding)  # each paper matches at least one of them
        if not wanted:
            return f"every paper {self.scope} matches {what}, which this line excludes"
        n = bits.bit_count()
        papers = "the paper" if n == 1 else f"all {n} papers"
        matching = " ".join(self.shown(c) for c in wanted)
        return f"{papers} {self.scope} matching {matching} also {'matches' if n == 1 else 'match'} {what}, which this line excludes"

    def term(self, t: Term) -> str:
        scope = self.scope
        value = self.written[t][1] if t in self.written else " ".join(t.words)
        if t.field == "upvotes":
            return f"no paper {scope} has {_UPVOTES[t.op]} {t.value} upvotes"
        if t.field == "like":
            return f"no paper {scope} is close enough to {t.words[0]} (or we don't have that paper yet)"
        if t.field == "cat":
            return f"no paper {scope} is in {value if t.op != '*' else t.words[0] + '*'}"
        if t.field == "source":
            return f"no paper {scope} " + ("is new on arXiv" if t.words[0] == "arxiv" else "is trending on Hugging Face")
        if t.op == "*":
            start = f"“{t.words[0]}”"
            return {
                "text": f"no paper {scope} has a word starting with {start}",
                "title": f"no paper {scope} has a word starting with {start} in its title",
                "author": f"no paper {scope} has an author with a name starting with {start}",
                "org": f"no paper {scope} comes from an organisation with a name starting with {start}",
            }[t.field]
        return {
            "text": f"no paper {scope} mentions “{value}”",
            "title": f"no paper {scope} has “{value}” in its title",
            "author": f"no paper {scope} by {value}",
            "org": f"no paper {scope} from {value}",
        }[t.field]


# ---------------------------------------------------------------- matches papers on any topic


def stop_word_terms(node: Node) -> list[Term]:
    """The stop words (:data:`~digest.matching.words.STOP_WORDS`) through which ``node`` finds papers
    on any topic, or [] when it does not: a single word looked for in the text or the title that
    is one; an AND whose every part (exclusions aside) is such; an OR with a branch that is such.
    Phrases, prefixes, names, upvotes and ``like:`` never count: they say what the reader wants."""
    kind = type(node)
    if kind is Term:
        plain = node.field in STEMMED_FIELDS and not node.op and len(node.words) == 1
        return [node] if plain and node.words[0] in STOP_WORDS else []
    if kind is Not:
        return []
    if kind is Or:
        return [t for c in node.children for t in stop_word_terms(c)]
    wanted = [stop_word_terms(c) for c in node.children if type(c) is not Not]
    return [t for terms in wanted for t in terms] if wanted and all(wanted) else []


_KEPT = "It is kept as written; add a word that names yours."


def common_words_hint(f: Filter) -> str | None:
    """A sentence for a line that finds papers on any topic through stop words only ("a OR b"); None
    for any other line. A hint, not an error: the line is kept as written."""
    terms = list(dict.fromkeys(stop_word_terms(f.expr)))
    if not terms:
        return None
    written = written_terms(f.text)
    names = ", ".join(f"“{written[t][1] if t in written else t.words[0]}”" for t in terms)
    what = "is a stop word (a very common word that says" if len(terms) == 1 else "are stop words (very common words that say"
    return f"{names} {what} nothing about a topic): this line matches papers on any topic. {_KEPT}"


def topics_hints(topics: str) -> list[tuple[int, str]]:
    """(line number, :func:`common_words_hint`) for each line of a topics textarea that has one, at
    the first line of each filter; lines that don't parse are left to the errors."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(topics.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            f = parse_filter(line)
        except FilterError:
            continue
        if f.key not in seen:
            seen.add(f.key)
            if (hint := common_words_hint(f)) is not None:
                out.append((number, hint))
    return out
