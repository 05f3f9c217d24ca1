"""The sign-up form's live preview: what the filters being typed would match, as JSON.

Text reaches the page as segments, ``[["Scaling ", false], ["video", true], …]``: the script builds
text nodes and ``<mark>`` elements from them, never HTML.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from digest.mail.latex import readable
from digest.matching.explain import excerpt, highlight, topics_hints
from digest.matching.expression import terms_of
from digest.matching.topics import MAX_ERRORS_SHOWN, TopicsError, parse_filter, parse_topics
from digest.web import papers

LIVE_LIMIT = 10  # papers listed under the form


def live_preview(session: Session, topics: str, arxiv_limit: int = LIVE_LIMIT) -> dict:
    """``{"ok": false, "errors": [...]}`` for filters that don't parse (each with its line and,
    where the problem is at one place, its column); else the matching papers of the last days, the
    filters that match none of them and why, and hints on lines that match papers on any topic.

    Lines that name a category or a source (``cat:cs.CL``) are matched against arXiv's new papers of
    those days too (and of arXiv's latest announcement, if later): ``"arxiv": {"first_day",
    "last_day", "considered", "matched", "papers"}`` (at most ``arxiv_limit``, the digest's cap),
    there only when such a line is and arXiv announced papers on those days."""
    try:
        filters = parse_topics(topics)
    except TopicsError as exc:
        return {
            "ok": False,
            "errors": [
                {"line": e.line, "column": e.column, "message": f"Line {e.line}: {e.problem}"} for e in exc.errors[:MAX_ERRORS_SHOWN]
            ],
            "more_errors": max(0, len(exc.errors) - MAX_ERRORS_SHOWN),
        }
    if not filters:
        return {"ok": True, "filters": 0, "considered": 0, "matched": 0, "papers": [], "misses": [], "hints": []}
    result = papers.preview(session, filters, limit=LIVE_LIMIT, arxiv_limit=arxiv_limit)
    lines = _line_numbers(topics)
    out = {
        "ok": True,
        "filters": len(filters),
        "first_day": result.first_day.isoformat() if result.first_day else None,
        "last_day": result.last_day.isoformat() if result.last_day else None,
        "considered": result.considered,
        "matched": result.matched,
        "papers": [_paper(m) for m in result.matches],
        "misses": [{"line": lines.get(m.filter.key), "filter": m.filter.text, "reason": m.reason} for m in result.misses],
        # lines that find papers on any topic through stop words only ("a OR b"): kept, with a hint
        "hints": [{"line": line, "message": f"Line {line}: {hint}"} for line, hint in topics_hints(topics)],
    }
    if result.arxiv is not None:
        arxiv = result.arxiv
        out["arxiv"] = {
            "first_day": arxiv.first_day.isoformat(),
            "last_day": arxiv.last_day.isoformat(),
            "considered": arxiv.considered,
            "matched": arxiv.matched,
            "papers": [_paper(m, arxiv=True) for m in arxiv.matches],
        }
    return out


def _paper(match: papers.Match, arxiv: bool = False) -> dict:
    """A trending paper; or (``arxiv``) one of arXiv's new papers: its day is its announcement day,
    its link its arXiv page, and it has its categories, those the line asked for marked."""
    paper, filters = match.paper, match.filters
    card = papers.card(paper)
    title = highlight(filters, card["title"], "title")
    marked = any(m for _, m in title)
    day = paper.announced_on if arxiv else paper.daily_date
    out = {
        "title": title,
        "url": card["abs_url"] if arxiv else card["paper_url"],
        "upvotes": paper.upvotes,
        "day": day.isoformat() if day is not None else None,
        "authors": highlight(filters, card["authors"], "author"),
        "org": highlight(filters, card["org"], "org"),
        "matched": match.matched.text if match.matched is not None else None,
        # the abstract around its first highlighted word, when the title has none
        "excerpt": [] if marked else excerpt(highlight(filters, readable(paper.abstract or ""), "abstract")),
    }
    if arxiv:
        out["categories"] = _categories(filters, paper.categories or [])
    return out


def _categories(filters, categories: list[str]) -> list[tuple[str, bool]]:
    """``cs.CL, cs.LG`` as segments, each category a ``cat:`` term of ``filters`` matches marked."""
    wanted = [t for f in filters for t, negated in terms_of(f.expr) if t.field == "cat" and not negated]
    out: list[tuple[str, bool]] = []
    for code in categories:
        low = code.lower()
        if out:
            out.append((", ", False))
        out.append((code, any(low.startswith(t.words[0]) if t.op == "*" else low == t.words[0] for t in wanted)))
    return out


def _line_numbers(topics: str) -> dict[str, int]:
    """Each filter's (first) line, by key (parse_topics has accepted every line)."""
    out: dict[str, int] = {}
    for number, line in enumerate(topics.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if line.strip():
            out.setdefault(parse_filter(line).key, number)
    return out
