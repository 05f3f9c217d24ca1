"""What a filter line compiles to: terms combined with AND, OR and NOT, in one canonical form, and
the reference evaluation of it on one paper.

The canonical form: nested ANDs (ORs) flattened, duplicates dropped, parts sorted by their
rendering; ``-(-x)`` is ``x``. Each node carries its rendering (``text``), which the parser reads
back to the same node: a filter's key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from digest.matching.words import Field

OPERATORS = frozenset({"or", "and", "not"})  # operators in any case, when written bare

COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
}


class Term(NamedTuple):
    """One condition: words in a field ("text", "title", "author", "org"), an upvotes comparison, or
    papers like one paper ("like": ``words`` is its arXiv id).

    ``words`` as written (casefolded), ``stems`` what is matched (see :mod:`digest.matching.words`).
    ``op``: ``""`` a word or a phrase; ``"-"`` a hyphenated word (its parts as a phrase, or run
    together: ``joined``); ``"*"`` a prefix of a word; for upvotes the comparison. ``text``: the
    canonical rendering, made once by :func:`term` (like every node, a term carries it).
    A named tuple: built and hashed in C, and the matcher looks terms up by hash all the time.
    """

    field: str
    words: tuple[str, ...] = ()
    op: str = ""
    value: int = 0
    stems: tuple[str, ...] = ()
    joined: str = ""
    text: str = ""

    def render(self) -> str:
        """Canonical filter syntax for this term."""
        return self.text


def term(field: str, words: tuple[str, ...] = (), op: str = "", value: int = 0, stems: tuple[str, ...] = (), joined: str = "") -> Term:
    """A term with its rendering."""
    if field == "upvotes":
        text = f"upvotes:{op}{value}"
    else:
        prefix = "" if field == "text" else f"{field}:"
        if op == "*":
            text = f"{prefix}{words[0]}*"
        elif op == "-":
            text = prefix + "-".join(words)
        elif len(words) == 1 and not (field == "text" and words[0] in OPERATORS):
            text = prefix + words[0]
        else:
            text = prefix + '"' + " ".join(words) + '"'
    return Term(field, words, op, value, stems, joined, text)


# Named tuples too (built in C). Two nodes are equal when their texts are: a canonical text reads
# back to one node only, so the tuples of different kinds never compare equal.


class And(NamedTuple):
    children: tuple[Node, ...]
    text: str  # the canonical rendering


class Or(NamedTuple):
    children: tuple[Node, ...]
    text: str


class Not(NamedTuple):
    child: Node
    text: str


Node = Term | And | Or | Not


def evaluate(node: Node, fields: dict[str, Field], upvotes: int) -> bool:
    """The reference evaluation on one paper's :func:`~digest.matching.words.paper_fields`."""
    kind = type(node)
    if kind is Term:
        return term_matches(node, fields, upvotes)
    if kind is And:
        return all(evaluate(c, fields, upvotes) for c in node.children)
    if kind is Or:
        return any(evaluate(c, fields, upvotes) for c in node.children)
    return not evaluate(node.child, fields, upvotes)


def term_matches(term: Term, fields: dict[str, Field], upvotes: int) -> bool:
    """One term on one paper. ``like:`` needs the papers' embeddings, which a paper's text does not
    carry: only :class:`~digest.matching.corpus.Corpus` (given them) finds papers for it; here it
    matches nothing."""
    if term.field == "like":
        return False
    if term.field == "upvotes":
        return COMPARE[term.op](upvotes, term.value)
    f = fields[term.field]
    if term.op == "*":
        return any(w.startswith(term.words[0]) for part in f.raw for w in part)
    if len(term.stems) == 1:
        found = term.stems[0] in f.words
    else:
        found = " " + " ".join(term.stems) + " " in " " + " ".join(f.stems) + " "
    return found or (term.op == "-" and term.joined in f.words)


def terms_of(node: Node, negated: bool = False) -> list[tuple[Term, bool]]:
    """Every term of an expression, with whether it sits under an odd number of NOTs."""
    kind = type(node)
    if kind is Term:
        return [(node, negated)]
    if kind is Not:
        return terms_of(node.child, not negated)
    return [pair for c in node.children for pair in terms_of(c, negated)]


# ---------------------------------------------------------------- the canonical form


def _in_and(node: Node) -> str:
    """How a part reads inside an AND: an OR in parentheses."""
    return f"({node.text})" if type(node) is Or else node.text


def _in_or(node: Node) -> str:
    """How a branch reads inside an OR: in parentheses if it is an exclusion or holds one (an
    exclusion beside OR applies to the whole line)."""
    kind = type(node)
    if kind is Not or (kind is And and any(type(c) is Not for c in node.children)):
        return f"({node.text})"
    return node.text


def all_of(nodes: Sequence[Node]) -> Node:
    """AND of ``nodes`` (at least one), canonical."""
    if len(nodes) == 1:
        return nodes[0]
    if len(nodes) == 2 and type(nodes[0]) is not And and type(nodes[1]) is not And:  # "agents -survey": the usual case
        (a, b), (ka, kb) = nodes, map(_in_and, nodes)
        if ka == kb:
            return a
        return And((a, b), f"{ka} {kb}") if ka < kb else And((b, a), f"{kb} {ka}")
    parts: dict[str, Node] = {}  # by rendering: equal renderings are equal nodes
    for node in nodes:
        kind = type(node)
        if kind is And:
            for part in node.children:
                parts[_in_and(part)] = part
        else:
            parts[f"({node.text})" if kind is Or else node.text] = node
    if len(parts) == 1:
        return next(iter(parts.values()))
    keys = sorted(parts)
    return And(tuple(map(parts.__getitem__, keys)), " ".join(keys))


def any_of(nodes: Sequence[Node]) -> Node:
    """OR of ``nodes`` (at least one), canonical."""
    if len(nodes) == 1:
        return nodes[0]
    parts: dict[str, Node] = {}
    for node in nodes:
        for part in node.children if type(node) is Or else (node,):
            parts[_in_or(part)] = part
    if len(parts) == 1:
        return next(iter(parts.values()))
    keys = sorted(parts)
    return Or(tuple(map(parts.__getitem__, keys)), " OR ".join(keys))


def negation(node: Node) -> Node:
    kind = type(node)
    if kind is Not:
        return node.child
    return Not(node, "-" + (node.text if kind is Term else f"({node.text})"))
