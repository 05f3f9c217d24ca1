#!/usr/bin/env python3
"""Turn the saved Daily Papers page (``../shared/seeds/*.txt``) into ``digest/papers/sample_data/papers.json``.

The page shows, per paper: title, abstract, then either "• N authors" or the organisation
("inclusionAI inclusionAI"), a "·", and the arXiv date with the upvote count after it
("Nov 14, 2023 3"); a few papers show no such lines. This writes the items in the API's shape
(see ``../shared/reference/papers-api.md``) with what the page gives, and fills what it does not:

- arXiv ids: the paper's real id, from ``digest/papers/sample_data/arxiv_ids.json`` (each looked up
  by the paper's exact title in public pages, with the page where title and id were found). Each item
  carries the thumbnail URL the Daily Papers API gives for that id, so the demo's Paper page, arXiv
  and PDF links and its card images are the paper's own. A title that file gives no id for
  (``"arxiv_id": null``) stops the script: the cards build their links from the id, so the sample
  would have to invent one, and it never does;
- authors: the page gives no names, only a count ("• 6 authors"), so the sample says just that:
  one entry named "6 authors" (the pages and the digest show "6 authors"). Where the page shows an
  organisation or nothing instead, the paper has no authors listed. Never an invented name;
- upvotes: the number the page shows after the date, 0 where it shows none;
- Daily Papers days: the page's day and the two before it, round-robin in page order
  (:func:`digest.papers.sources.daily_papers.sample_items` moves them to the last days before "today").

Nothing is random: running it again gives the same file. The output is committed, so the package
never needs ``../shared`` at run time.

    .venv/bin/python scripts/make_sample_data.py [--seeds DIR] [--ids FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
OUT = ROOT / "digest" / "papers" / "sample_data" / "papers.json"
IDS = ROOT / "digest" / "papers" / "sample_data" / "arxiv_ids.json"
THUMBNAIL = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{}.png"  # as the API gives
DAYS = 3  # Daily Papers days the sample is spread over

MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
DATE_LINE = re.compile(r"(?P<mon>[A-Z][a-z]{2}) (?P<day>\d{1,2})(?:, (?P<year>\d{4}))?(?: (?P<upvotes>\d+))?")
AUTHORS_LINE = re.compile(r"•\s*(?P<n>\d+) authors?")


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def parse_page(text: str) -> tuple[date, list[dict]]:
    """The page's day and, per paper: title, abstract, authors (count) or org, arXiv date, upvotes."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    start = lines.index("byAK and the research community") + 1
    page_day = _parse_date(lines[start], None)
    page = page_day["date"]
    entries, i = [], start + 1
    while i + 1 < len(lines):
        entry = {"title": lines[i], "abstract": lines[i + 1], "authors": None, "org": None}
        i += 2
        if i + 2 < len(lines) and lines[i + 1] == "·":
            meta, when = lines[i], _parse_date(lines[i + 2], page)
            i += 3
            if m := AUTHORS_LINE.fullmatch(meta):
                entry["authors"] = int(m.group("n"))
            else:
                name, _, fullname = meta.partition(" ")
                entry["org"] = {"name": name, "fullname": fullname or name}
            entry.update(published=when["date"], upvotes=when["upvotes"])
        else:
            entry.update(published=None, upvotes=0)
        entries.append(entry)
    return page, entries


def _parse_date(line: str, page: date | None) -> dict:
    m = DATE_LINE.fullmatch(line)
    if not m:
        raise ValueError(f"not a date line: {line!r}")
    year = int(m.group("year") or (page.year if page else 2026))
    return {"date": date(year, MONTHS[m.group("mon")], int(m.group("day"))), "upvotes": int(m.group("upvotes") or 0)}


def author_count(count: int | None) -> str:
    """What the sample says instead of names it does not have: "6 authors"."""
    return f"{count} author{'' if count == 1 else 's'}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_ids(path: Path) -> dict[str, str | None]:
    """Title -> real arXiv id (None where none was confirmed), from ``arxiv_ids.json``."""
    papers = json.loads(path.read_text("utf-8"))["papers"]
    ids = {p["title"]: p["arxiv_id"] for p in papers}
    if len(ids) != len(papers):
        raise SystemExit(f"{path}: a title is listed twice")
    return ids


def to_item(entry: dict, position: int, page: date, arxiv_id: str) -> dict:
    title = entry["title"]
    h = _hash(title)
    daily = page - timedelta(days=position % DAYS)
    published = entry["published"] or daily - timedelta(days=1 + h % 20)

    authors = []  # the page names an organisation, or nothing: no author is known
    if entry["authors"] is not None:  # the page counts them: the sample says the count, never a name
        authors = [
            {
                "_id": hashlib.sha256(f"{arxiv_id}/authors".encode()).hexdigest()[:24],
                "name": author_count(entry["authors"]),
                "hidden": False,
            }
        ]
    published_at = datetime.combine(published, time(h % 24, h // 24 % 60, h // 1440 % 60), timezone.utc)
    submitted_at = datetime.combine(daily, time(h // 7 % 18 + 1, h // 11 % 60, h // 13 % 60), timezone.utc)
    paper = {
        "id": arxiv_id,
        "authors": authors,
        "publishedAt": _iso(min(published_at, submitted_at)),
        "submittedOnDailyAt": _iso(submitted_at),
        "title": title,
        "summary": entry["abstract"],
        "upvotes": entry["upvotes"],
    }
    item = {
        "paper": paper,
        "publishedAt": paper["submittedOnDailyAt"],
        "title": title,
        "summary": entry["abstract"],
        "thumbnail": THUMBNAIL.format(arxiv_id),
        "numComments": 0,
        "isAuthorParticipating": False,
    }
    if entry["org"]:
        item["organization"] = entry["org"]
    return item


def build(seeds: Path, ids: Path = IDS) -> list[dict]:
    known = load_ids(ids)
    pages = [parse_page(path.read_text("utf-8")) for path in sorted(seeds.glob("*.txt"))]
    titles = [entry["title"] for _, entries in pages for entry in entries]
    if missing := [t for t in titles if known.get(t) is None]:
        raise SystemExit(
            f"{ids} gives no arXiv id for {len(missing)} of the page's papers ({'; '.join(missing)}): the cards "
            "build their arXiv, PDF and Paper page links from the id, so the sample would have to invent one"
        )
    if len({known[t] for t in titles}) != len(titles):
        raise SystemExit(f"{ids}: two papers of the page have the same arXiv id")
    items = []
    for page, entries in pages:
        items += [to_item(entry, len(items) + k, page, known[entry["title"]]) for k, entry in enumerate(entries)]
    # the API lists a day's papers by upvotes
    items.sort(key=lambda it: (it["paper"]["submittedOnDailyAt"][:10], -it["paper"]["upvotes"]))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=Path, default=SEEDS, help=f"folder of saved pages (default {SEEDS})")
    parser.add_argument("--ids", type=Path, default=IDS, help=f"the papers' arXiv ids, by title (default {IDS})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON file to write (default {OUT})")
    args = parser.parse_args(argv)
    items = build(args.seeds, args.ids)

    sys.path.insert(0, str(ROOT))
    from digest.papers.sources.daily_papers import parse_items

    batch = parse_items(items)  # the sample must pass the same validation as the live API
    if batch.skipped or len(batch.records) != len(items):
        raise SystemExit(f"sample data fails validation: {dict(batch.skipped)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", "utf-8")
    days = sorted({it["paper"]["submittedOnDailyAt"][:10] for it in items})
    print(f"wrote {len(items)} papers on {', '.join(days)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
