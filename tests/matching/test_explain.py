"""Why a filter matched (the words to highlight) or matched nothing (which part of it)."""

from __future__ import annotations

import pytest

from digest.matching.corpus import Corpus
from digest.matching.explain import common_words_hint, excerpt, highlight, topics_hints, why_nothing
from digest.matching.topics import PaperText, parse_filter, parse_topics

SCOPE = "in the last 7 days"


def marked(filters: str, text: str, field: str = "title") -> list[str]:
    return [piece for piece, on in highlight(parse_topics(filters), text, field) if on]


# ---------------------------------------------------------------- highlights


def test_words_are_marked_in_any_of_their_forms_and_case():
    assert marked("transformer llm", "Transformers and LLMs: an LLM transformer") == ["Transformers", "LLMs", "LLM", "transformer"]


def test_a_phrase_is_marked_only_where_its_words_are_in_a_row():
    assert marked('"world model"', "World models, a model of the world") == ["World models"]


def test_prefixes_and_hyphenated_words_are_marked_as_written():
    assert marked("quantiz*", "Quantized weights and quantization") == ["Quantized", "quantization"]
    assert marked("pre-training", "Pre-training, pre training and pretraining") == ["Pre-training", "pre training", "pretraining"]
    assert marked("pretraining", "Pre-training and pretrained models") == ["Pre-training", "pretrained"]


def test_excluded_words_and_other_fields_are_not_marked():
    assert marked("video -survey", "A video survey") == ["video"]
    assert marked("title:video author:video", "video") == ["video"]
    assert marked("title:video", "video", "abstract") == []  # title: looks at titles only
    assert marked('author:"yann lecun"', "Léon Bottou, Yann LeCun", "author") == ["Yann LeCun"]


def test_unmarked_text_comes_back_whole_and_in_order():
    segments = highlight(parse_topics("diffusion"), "Video diffusion, again diffusion.", "title")
    assert segments == [("Video ", False), ("diffusion", True), (", again ", False), ("diffusion", True), (".", False)]
    assert "".join(p for p, _ in segments) == "Video diffusion, again diffusion."
    assert highlight(parse_topics("robot"), "Video diffusion", "title") == [("Video diffusion", False)]
    assert highlight([], "", "title") == []


def test_an_excerpt_is_cut_around_the_first_marked_word():
    text = "Lorem ipsum dolor sit amet. " * 20 + "We study diffusion here. " + "More text follows. " * 20
    cut = excerpt(highlight(parse_topics("diffusion"), text, "abstract"), width=80)
    assert cut[0] == ("…", False) and cut[-1] == ("…", False) and ("diffusion", True) in cut
    assert len("".join(p for p, _ in cut)) < 100
    assert excerpt(highlight(parse_topics("robot"), text, "abstract")) == []


# ---------------------------------------------------------------- matched nothing

PAPERS = [
    PaperText("Video diffusion survey", "Diffusion models for video.", ("Lena Hoffmann",), "nvidia", "NVIDIA", 212),
    PaperText("Robot policies", "An embodied agent.", ("Ana Souza",), "google", "Google", 40),
]


@pytest.mark.parametrize(
    "line, reason",
    [
        ('author:"Yann LeCun"', "no paper in the last 7 days by Yann LeCun"),
        ("org:OpenAI", "no paper in the last 7 days from OpenAI"),
        ("title:agent", "no paper in the last 7 days has “agent” in its title"),
        ("quantum", "no paper in the last 7 days mentions “quantum”"),
        ("video quantum robots", "no paper in the last 7 days mentions “quantum”"),
        ("quantiz*", "no paper in the last 7 days has a word starting with “quantiz”"),
        ("upvotes:>=500", "no paper in the last 7 days has at least 500 upvotes"),
        ("video robot", "“video” (1 paper) and “robot” (1 paper) are never in the same paper in the last 7 days"),
        ("video -survey", "the paper in the last 7 days matching “video” also matches “survey”, which this line excludes"),
        ("(gan OR vae) video", "no paper in the last 7 days mentions “gan”; no paper in the last 7 days mentions “vae”"),
        ("-video -robot", "every paper in the last 7 days matches “video” or “robot”, which this line excludes"),
    ],
)
def test_a_line_that_matches_nothing_says_which_part(line, reason):
    assert why_nothing(Corpus(PAPERS), parse_filter(line), SCOPE) == reason


def test_a_line_that_matches_something_has_no_reason():
    assert why_nothing(Corpus(PAPERS), parse_filter("robots"), SCOPE) is None


# ---------------------------------------------------------------- lines that match papers on any topic


@pytest.mark.parametrize(
    "line, words",
    [
        ("a or b", "“a” is a stop word"),  # "b" is not one: "a" alone lets every paper in
        ("The", "“The” is a stop word"),
        ("the OR of", "“of”, “the” are stop words"),
        ('"and" -video', "“and” is a stop word"),  # exclusions narrow, they name no topic
        ("(a OR video) -robot", "“a” is a stop word"),
        ("title:the", "“the” is a stop word"),
    ],
)
def test_a_line_that_finds_papers_through_stop_words_only_gets_a_hint(line, words):
    hint = common_words_hint(parse_filter(line))
    assert hint is not None and hint.startswith(words)
    assert "this line matches papers on any topic" in hint and "It is kept as written" in hint


@pytest.mark.parametrize(
    "line",
    ["video", "a video", "video OR (a diffusion)", '"of the"', "state-of-the-art", "author:a", "a upvotes:>=10", "b", "th*"],
)
def test_a_line_with_a_word_that_names_a_topic_gets_no_hint(line):
    assert common_words_hint(parse_filter(line)) is None


def test_hints_name_the_first_line_of_each_filter_and_leave_bad_lines_to_the_errors():
    hints = topics_hints('video\r\na OR b\n\nauthor:"x\nA or B\nthe')
    assert [line for line, _ in hints] == [2, 6]
    assert hints[0][1].startswith("“a” is a stop word (a very common word that says nothing about a topic)")
