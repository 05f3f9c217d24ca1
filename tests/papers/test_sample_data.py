"""The packaged sample papers carry their real arXiv ids (``digest/papers/sample_data/arxiv_ids.json``,
each looked up by title, with the page it was found on) and the thumbnail the Daily Papers API gives for
that id, so the demo's Paper page, arXiv and PDF links open the paper its card shows. A paper whose id
was not confirmed gets none invented: the sample leaves it out, as the script refuses to make one up."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.models import Paper
from digest.papers.ingest import ingest_sample
from digest.web.papers import card

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "digest" / "papers" / "sample_data"
THUMBNAIL = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{}.png"


def looked_up() -> list[dict]:
    return json.loads((SAMPLE / "arxiv_ids.json").read_text("utf-8"))["papers"]


def known_ids() -> dict[str, str]:
    return {entry["title"]: entry["arxiv_id"] for entry in looked_up() if entry["arxiv_id"]}


def test_every_sample_paper_carries_the_id_looked_up_for_its_title_and_that_ids_thumbnail():
    entries = looked_up()
    packaged = json.loads((SAMPLE / "papers.json").read_text("utf-8"))
    assert len({e["title"] for e in entries}) == len(entries) == 61  # every paper of the seed page, once
    for entry in entries:
        if entry["arxiv_id"] is None:
            assert entry["reason"], entry["title"]  # why no id: never a guess
        else:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", entry["arxiv_id"]), entry
            assert entry["evidence"].startswith(("https://", "http://")), entry  # where title and id were found
    known = known_ids()
    assert {it["title"] for it in packaged} == set(known)  # a title without a confirmed id is left out
    for it in packaged:
        arxiv_id = known[it["title"]]
        assert it["paper"]["id"] == arxiv_id and it["thumbnail"] == THUMBNAIL.format(arxiv_id), it["title"]
    assert len({it["paper"]["id"] for it in packaged}) == len(packaged)


def test_the_demo_cards_link_each_papers_own_pages_and_show_its_thumbnail(settings):
    """Through the parser, the database and the card (the one the email and the pages use)."""
    ingest_sample(settings, today=date(2026, 11, 29))
    known = known_ids()
    with session_scope(settings) as session:
        views = {paper.title: (paper.arxiv_id, card(paper)) for paper in session.scalars(select(Paper))}
    assert len(views) == len(known) == 61
    for title, (arxiv_id, view) in views.items():
        assert arxiv_id == known[title]
        assert view["paper_url"] == f"https://huggingface.co/papers/{arxiv_id}"
        assert view["abs_url"] == f"https://arxiv.org/abs/{arxiv_id}" and view["pdf_url"] == f"https://arxiv.org/pdf/{arxiv_id}"
        assert view["thumbnail"] == THUMBNAIL.format(arxiv_id)


def test_a_paper_whose_id_was_not_found_gets_no_invented_one(tmp_path, seeds):
    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    doc = json.loads((SAMPLE / "arxiv_ids.json").read_text("utf-8"))
    title = doc["papers"][5]["title"]
    doc["papers"][5] = {"title": title, "arxiv_id": None, "reason": "no page shows this title with an id"}
    ids = tmp_path / "arxiv_ids.json"
    ids.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(SystemExit, match=re.escape(title)):
        script.build(seeds, ids)
