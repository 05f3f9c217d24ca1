"""Papers a reader names (seed papers, ``like:``): every form of id or link copied from a browser
reads to the id the papers table keys on; anything else is refused with what is accepted."""

from __future__ import annotations

import pytest

from digest.matching.paper_ids import MAX_SEEDS, paper_id, paper_ids
from digest.matching.topics import FilterError, parse_filter


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2501.12345", "2501.12345"),
        (" 2501.12345v3 ", "2501.12345"),
        ("arXiv:2501.12345", "2501.12345"),
        ("0704.0001", "0704.0001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("math.gt/0309136v2", "math.GT/0309136"),
        ("https://arxiv.org/abs/2501.12345v1", "2501.12345"),
        ("http://export.arxiv.org/abs/2501.12345", "2501.12345"),
        ("https://arxiv.org/pdf/2501.12345.pdf", "2501.12345"),
        ("arxiv.org/html/2501.12345v2/", "2501.12345"),
        ("https://www.arxiv.org/abs/hep-th/9901001", "hep-th/9901001"),
        ("https://huggingface.co/papers/2501.12345", "2501.12345"),
        ("https://huggingface.co/papers/2501.12345#community", "2501.12345"),
        ("hf.co/papers/2501.12345?utm=x", "2501.12345"),
    ],
)
def test_ids_and_links_read_to_the_arxiv_id(written, expected):
    assert paper_id(written) == expected


@pytest.mark.parametrize(
    "written", ["", "12345", "2501.123", "2501.1234567", "https://example.org/abs/2501.12345", "https://arxiv.org/list/cs.LG", "twenty"]
)
def test_anything_else_is_refused_saying_what_is_accepted(written):
    with pytest.raises(ValueError, match="is not an arXiv id or a paper link \\(use e.g. 2501.12345"):
        paper_id(written)


def test_a_form_lists_ids_once_in_order_and_every_problem():
    ids, problems = paper_ids("2501.00002, https://arxiv.org/abs/2501.00001\n\n2501.00002v2; nope\tarXiv:2501.00003")
    assert ids == ["2501.00002", "2501.00001", "2501.00003"]
    assert problems == [
        "'nope' is not an arXiv id or a paper link (use e.g. 2501.12345, https://arxiv.org/abs/2501.12345 or https://huggingface.co/papers/2501.12345)"
    ]
    ids, problems = paper_ids(" ".join(f"2501.{i:05d}" for i in range(MAX_SEEDS + 1)))
    assert len(ids) == MAX_SEEDS + 1 and problems == [f"at most {MAX_SEEDS} papers (found {MAX_SEEDS + 1})"]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("like:2501.12345", "like:2501.12345"),
        ("LIKE:https://arxiv.org/abs/2501.12345v2", "like:2501.12345"),
        ("agents like:hf.co/papers/2501.12345", "agents like:2501.12345"),
        ("like:2501.12345 OR like:2501.00001", "like:2501.00001 OR like:2501.12345"),
        ("video -like:2501.12345", "-like:2501.12345 video"),
    ],
)
def test_like_reads_any_form_of_the_id_to_one_canonical_filter(line, key):
    assert parse_filter(line).key == key


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("like:", "'like:' must be followed directly by an arXiv id"),
        ("like:transformers", "'like:transformers': like: takes one paper's arXiv id or link, as in like:2501.12345"),
        ('like:"2501.12345"', "like: takes one paper's arXiv id or link"),
        ("video like:2501", "'like:2501': like: takes one paper's arXiv id or link"),
    ],
)
def test_a_malformed_like_is_a_clear_error(line, problem):
    with pytest.raises(FilterError) as caught:
        parse_filter(line)
    assert problem in caught.value.problem
