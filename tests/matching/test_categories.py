"""arXiv categories and sources in filter lines: ``cat:cs.CL`` (exact, any case), ``cat:cs.*`` (an
archive), ``source:arxiv`` / ``source:hf``; a line that names neither reaches the trending papers
only, as it did before arXiv was a source."""

from __future__ import annotations

import pytest

from digest.matching.corpus import Corpus, iter_bits
from digest.matching.topics import FilterError, parse_filter
from digest.matching.words import PaperText

TRENDING = PaperText("Diffusion for text", "A diffusion language model.", categories=("cs.CL", "cs.LG"), sources=("hf", "arxiv"))
HF_ONLY = PaperText("Video diffusion", "Diffusion for video.")  # Hugging Face only: no categories known
NEW_CL = PaperText("Parsing with diffusion", "Diffusion parsers.", categories=("cs.CL",), sources=("arxiv",))
NEW_CV = PaperText("Diffusion for images", "Image diffusion.", categories=("cs.CV", "cs.LG"), sources=("arxiv",))
NEW_ML = PaperText("Kernels", "Kernel methods.", categories=("stat.ML",), sources=("arxiv",))
PAPERS = [TRENDING, HF_ONLY, NEW_CL, NEW_CV, NEW_ML]


def found(line: str) -> list[int]:
    f = parse_filter(line)
    corpus = list(iter_bits(Corpus(PAPERS).evaluate(f)))
    assert corpus == [i for i, p in enumerate(PAPERS) if f.matches(p)]  # the index and the reference agree
    return corpus


@pytest.mark.parametrize(
    "line, expected",
    [
        ("diffusion", [0, 1]),  # names neither: the trending papers only, as before arXiv
        ("cat:cs.CL", [0, 2]),  # primary or cross-list, from either source
        ("cat:CS.cl", [0, 2]),  # any case
        ("cat:cs.LG", [0, 3]),  # a cross-list
        ("cat:cs.*", [0, 2, 3]),  # an archive
        ("cat:stat.*", [4]),
        ("cat:cs.CL diffusion", [0, 2]),
        ("cat:cs.CL parsers", [2]),
        ("source:arxiv", [0, 2, 3, 4]),
        ("source:arxiv image", [3]),
        ("source:hf", [0, 1]),
        ("cat:cs.CV OR cat:stat.ML", [3, 4]),
        ("cat:cs.* -cat:cs.CV", [0, 2]),
        ("diffusion -cat:cs.CL", [1]),  # an excluded category does not name one: trending papers only
        ("cat:hep-th", []),
    ],
)
def test_category_and_source_lines_match_what_they_name(line, expected):
    assert found(line) == expected


@pytest.mark.parametrize(
    "line, problem",
    [
        ("cat:cs", "names an archive: write cat:cs.* for all of it"),
        ("cat:cs.CL.x", "cat: takes one arXiv category"),
        ('cat:"cs.CL"', "cat: takes one arXiv category"),
        ("cat:c*", "cat: takes one arXiv category"),
        ("cat:", "must be followed directly by an arXiv category"),
        ("source:biorxiv", "source: is arxiv (new on arXiv) or hf (trending on Hugging Face)"),
        ("sauce:arxiv", "use title:, author:, org:, upvotes:, like:, cat: or source:"),
    ],
)
def test_bad_category_and_source_terms_say_what_to_write(line, problem):
    with pytest.raises(FilterError) as error:
        parse_filter(line)
    assert problem in error.value.message


def test_scoped_lines_are_the_ones_naming_a_category_or_source_not_excluding_one():
    assert parse_filter("cat:cs.CL").scoped and parse_filter("agents source:arxiv").scoped
    assert parse_filter("(cat:cs.CL OR cat:cs.LG) diffusion").scoped
    assert not parse_filter("agents").scoped and not parse_filter("agents -cat:cs.CV").scoped
    assert parse_filter("cat:CS.CL").key == parse_filter("cat:cs.cl").key == "cat:cs.cl"  # one filter, one memo entry
    assert parse_filter("cat:cs.CL").text == "cat:cs.CL"  # shown as written


def test_no_filters_means_every_trending_paper_not_every_arxiv_paper():
    assert list(iter_bits(Corpus(PAPERS).match_any([]))) == [0, 1]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("cat:cs.RO", "no paper this week is in cs.RO"),
        ("cat:math.*", "no paper this week is in math.*"),
        ("cat:cs.CV parsers", "“cat:cs.CV” (1 paper) and “parsers” (1 paper) are never in the same paper this week"),
    ],
)
def test_a_category_line_that_matches_nothing_says_why(line, reason):
    from digest.matching.explain import why_nothing

    assert why_nothing(Corpus(PAPERS), parse_filter(line), "this week") == reason
