"""A paper named by a reader: an arXiv id, or an arXiv or Hugging Face paper link, read to the id the
papers table keys on (``2501.12345``, without a version).

Used by the seed papers of the sign-up and preferences forms and by the ``like:`` filter term. What
it reads (every form a reader copies from a browser)::

    2501.12345   2501.12345v2   arXiv:2501.12345   hep-th/9901001
    https://arxiv.org/abs/2501.12345v1   https://arxiv.org/pdf/2501.12345.pdf   arxiv.org/html/2501.12345
    https://huggingface.co/papers/2501.12345   hf.co/papers/2501.12345#community
"""

from __future__ import annotations

import re

MAX_SEEDS = 20  # seed papers one reader may name on a form

# new style (since April 2007): YYMM.NNNN (to 2014) or YYMM.NNNNN; old style: archive[.SUB]/YYMMNNN
ID = r"(?:\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})"
_ID_RE = re.compile(rf"(?:arxiv:)?({ID})(?:v\d+)?", re.IGNORECASE)
_LINK_RE = re.compile(
    rf"(?:https?://)?(?:www\.|export\.)?"
    rf"(?:arxiv\.org/(?:abs|pdf|html)/({ID})(?:v\d+)?(?:\.pdf)?|(?:huggingface\.co|hf\.co)/papers/({ID})(?:v\d+)?)"
    rf"/?(?:[?#].*)?",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"[\s,;]+")

EXAMPLE = "2501.12345, https://arxiv.org/abs/2501.12345 or https://huggingface.co/papers/2501.12345"


def _canonical(found: str) -> str:
    """Old-style ids keep their archive's case rules (lowercase archive, uppercase subject class)."""
    if "/" not in found:
        return found
    archive, number = found.split("/")
    head, dot, subject = archive.partition(".")
    return f"{head.lower()}{dot}{subject.upper()}/{number}"


def paper_id(text: str) -> str:
    """The arXiv id ``text`` names; ValueError (saying what is accepted) for anything else."""
    value = text.strip()
    m = _ID_RE.fullmatch(value)
    if m is not None:
        return _canonical(m.group(1))
    m = _LINK_RE.fullmatch(value)
    if m is not None:
        return _canonical(m.group(1) or m.group(2))
    shown = value if len(value) <= 60 else value[:60] + "…"
    raise ValueError(f"'{shown}' is not an arXiv id or a paper link (use e.g. {EXAMPLE})")


def paper_ids(text: str) -> tuple[list[str], list[str]]:
    """The ids named in a form's text (one or more per line, split by spaces, commas or semicolons),
    without repeats, in order; and a message per item that names no paper, and one if there are
    more than :data:`MAX_SEEDS`."""
    ids: list[str] = []
    problems: list[str] = []
    for item in _SPLIT_RE.split(text.strip()):
        if not item:
            continue
        try:
            found = paper_id(item)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if found not in ids:
            ids.append(found)
    if len(ids) > MAX_SEEDS:
        problems.append(f"at most {MAX_SEEDS} papers (found {len(ids)})")
    return ids, problems
