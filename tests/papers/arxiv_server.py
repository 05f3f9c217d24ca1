"""The tests' local arXiv server: the package's own (:mod:`digest.papers.sources.local_arxiv`, which the
demo serves its sample announcement with), under the names these tests use."""

from __future__ import annotations

from digest.papers.sources.local_arxiv import ArxivPaper as Paper
from digest.papers.sources.local_arxiv import ArxivServer, Request, api_entry, api_error_entry, api_feed, rss_feed, rss_item

__all__ = ["ArxivServer", "Paper", "Request", "api_entry", "api_error_entry", "api_feed", "rss_feed", "rss_item"]
