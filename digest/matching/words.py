"""Words as matching sees them: tokens, their stems, hyphenated compounds, and a paper's fields.

A word matches its inflections: ``transformer`` ≈ ``transformers``, ``agent`` ≈ ``agents``, through the
Snowball English stemmer (PyStemmer), plus one rule of ours for acronym plurals the stemmer leaves
alone (``LLMs`` ≈ ``LLM``, ``GPUs`` ≈ ``GPU``). Titles and abstracts are stemmed; author and
organisation names are not (names don't inflect). A hyphenated compound also counts as its parts run
together, so ``pre-training`` ≈ ``pretraining``.

:func:`paper_fields` is what both evaluations see of a paper: ``Filter.matches`` (the reference) and
the :class:`~digest.matching.corpus.Corpus` index, which calls it once per paper when it is built.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import Stemmer

WORD_RE = re.compile(r"[^\W_]+")
# Hyphenated words; U+2011 becomes U+2010 under NFKC. Anchored at a word's start and possessive: without
# that, the engine retries from every letter of every word (4x slower on abstracts).
COMPOUND_RE = re.compile(r"(?<![^\W_])[^\W_]++(?:[-\u2010][^\W_]++)+")
SEP = ""  # separates independent texts (title/abstract, authors) in a token sequence
STEMMED_FIELDS = frozenset({"text", "title"})
# Words that say nothing about a paper's topic: the Snowball project's English stop-word list (the
# stemmer's own, snowballstem.org/algorithms/english/stop.txt), without its contractions ("don't"
# is two words here). A filter line that finds papers only through them matches papers on any
# topic ("a OR b" matched 59 of 61 sample papers through "a"): the forms say so
# (digest.matching.explain.common_words_hint); matching itself treats them as any other word.
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
    hers herself it its itself they them their theirs themselves what which who whom this that these
    those am is are was were be been being have has had having do does did doing would should could
    ought cannot a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some such no
    nor not only own same so than too very
    """.split()
)
_VOWELS = frozenset("aeiouy")


def normalize(text: str) -> str:
    """Casefolded, NFKC-normalised text (ASCII only lower-cased: NFKC leaves it alone)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def tokenize(text: str) -> tuple[str, ...]:
    """Casefolded, NFKC-normalised words (maximal runs of letters/digits)."""
    return tuple(WORD_RE.findall(normalize(text)))


def scan(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words of ``text``, and its hyphenated compounds run together (``pre-training`` → ``pretraining``)."""
    norm = normalize(text)
    words = tuple(WORD_RE.findall(norm))
    if not norm.isascii():
        norm = norm.replace("\u2010", "-")
    hyphen = norm.find("-")
    if hyphen == -1:
        return words, ()
    joined: list[str] = []
    while hyphen != -1:  # a compound has no space in it: the regex runs on the space-delimited chunks with a hyphen
        start, end = norm.rfind(" ", 0, hyphen) + 1, norm.find(" ", hyphen)
        end = len(norm) if end == -1 else end
        joined += ["".join(WORD_RE.findall(c)) for c in COMPOUND_RE.findall(norm, start, end)]
        hyphen = norm.find("-", end)
    return words, tuple(joined)


_local = threading.local()  # a Stemmer object must not be used by two threads at once


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def stem_words(words: Iterable[str]) -> tuple[str, ...]:
    """Each word's stem. Snowball leaves ``llms`` and ``gpus`` alone (no vowel before the ``s``, or an
    ``-us`` ending); an ``s`` after a vowel-less stem goes, so acronyms match their plurals."""
    words = tuple(words)
    out = []
    for word, stem in zip(words, _stemmer().stemWords(words)):
        if stem == word and len(word) > 2 and word[-1] == "s" and word[-2] != "s" and not _VOWELS.intersection(word[:-2]):
            stem = word[:-1]
        out.append(stem)
    return tuple(out)


class Stems(dict):
    """token → stem, each token stemmed once: one per index (the reference makes its own)."""

    def __missing__(self, word: str) -> str:
        stem = self[word] = stem_words((word,))[0]
        return stem


@dataclass(frozen=True)
class PaperText:
    """What matching sees of a paper."""

    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    org: str = ""
    org_fullname: str = ""
    upvotes: int = 0
    categories: tuple[str, ...] = ()  # arXiv categories, primary first (none for a paper arXiv never announced to us)
    sources: tuple[str, ...] = ("hf",)  # where it comes from: "hf" (Daily Papers), "arxiv" (an arXiv announcement)


class Field(NamedTuple):
    """One field of one paper, as terms are matched against it."""

    stems: tuple[str, ...]  # the words in order, stemmed where the field is; SEP between separate texts
    words: frozenset[str]  # what a single word matches: ``stems``, and the compounds run together (stemmed)
    raw: tuple[tuple[str, ...], ...]  # the words as written (casefolded), compounds run together: for prefixes


FIELDS = ("text", "title", "author", "org", "cat", "source")


def paper_fields(paper: PaperText, stems: Stems | None = None) -> dict[str, Field]:
    """Every field of ``paper``: ``text`` (title and abstract), ``title``, ``author``, ``org``, and
    ``cat`` (its arXiv categories, lower-cased) and ``source`` ("hf", "arxiv"), matched whole."""
    title, title_joined = scan(paper.title)
    abstract, abstract_joined = scan(paper.abstract)
    if stems is None:  # one paper on its own (the reference evaluation): its words stemmed in one call
        stems = Stems()
        new = tuple({*title, *title_joined, *abstract, *abstract_joined})
        stems.update(zip(new, stem_words(new)))
    get = stems.__getitem__
    title_stems = tuple(map(get, title))
    title_words = frozenset(title_stems).union(map(get, title_joined))
    abstract_stems = tuple(map(get, abstract))
    text_words = title_words.union(abstract_stems, map(get, abstract_joined))
    return {
        "text": Field((*title_stems, SEP, *abstract_stems), text_words, (title, title_joined, abstract, abstract_joined)),
        "title": Field(title_stems, title_words, (title, title_joined)),
        "author": _names(paper.authors),
        "org": _names((paper.org, paper.org_fullname)),
        "cat": _labels(c.lower() for c in paper.categories),
        "source": _labels(paper.sources),
    }


def _labels(labels: Iterable[str]) -> Field:
    """Labels matched whole (an arXiv category, a source), and by prefix (``cat:cs.*``)."""
    found = tuple(labels)
    return Field(found, frozenset(found), (found,))


def _names(names: Iterable[str]) -> Field:
    """Names, each its own text; not stemmed."""
    seq: list[str] = []
    raw: list[str] = []
    for name in names:
        words, joined = scan(name)
        seq.append(SEP)
        seq += words
        raw += words
        raw += joined
    return Field(tuple(seq), frozenset(raw), (tuple(raw),))
