"""Where papers come from: one module per source, side by side, each a client that fetches and
parses its feed and hands ingest (:mod:`digest.papers.ingest`) what it read, never touching the
database itself.

- :mod:`~digest.papers.sources.daily_papers`: Hugging Face Daily Papers, the trending papers (a
  :class:`~digest.papers.items.Batch` of :class:`~digest.papers.items.PaperRecord`, one day at a time);
- :mod:`~digest.papers.sources.arxiv`: arXiv's daily announcement (RSS) and its API (Atom), for the
  categories an operator configures (:func:`digest.papers.ingest.ingest_arxiv`; the digest's arXiv section is still to come, issue 22).

Both clients share :mod:`~digest.papers.sources.http` (what is worth another try, ``Retry-After``).
A third source (bioRxiv, OpenReview) is one more module here.
"""
