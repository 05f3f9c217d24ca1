"""The benchmark's workload: M papers synthesised from real ones, N subscribers with realistic filters.

Real papers come from ``digest/papers/sample_data/papers.json`` (the API's shape) when it exists, otherwise
from the seed page ``../shared/seeds/*.txt`` (title, abstract, author count, organisation, upvotes).
Everything is drawn from a seeded ``random.Random``: the same arguments give the same workload.

Filters use the papers' own vocabulary, weighted so that popular topics are shared by many
subscribers (as on a real list): single words, hyphenated and quoted phrases, AND of two words,
``OR``, exclusions, ``title:``, ``author:``, ``org:`` and ``upvotes:`` terms; some subscribers have
no filters at all (they get every trending paper).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path

from digest.matching.topics import PaperText, tokenize

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_JSON = ROOT / "digest" / "papers" / "sample_data" / "papers.json"
SEEDS_DIR = ROOT.parent / "shared" / "seeds"

FIRST = (
    "Wei Yang Li Chen Hao Jun Ming Xin Yu Jie Anna Maria Lukas Sofia Ahmed Fatima Ivan Olga Kenji Yuki "
    "Priya Arjun Rahul Sara David Daniel Emma Noah Lucas Mateo Chloe Hugo Jonas Elena Marco Giulia Omar "
    "Leila Tomas Eva Minh Linh Seo-yeon Ji-ho Carlos Ana Pedro Ines Noor Zhang Aditi Kofi Amara"
).split()
LAST = (
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Luo Gao Kim Park Lee Choi "
    "Singh Kumar Sharma Patel Gupta Smith Johnson Brown Garcia Martinez Muller Schmidt Schneider Rossi "
    "Russo Dubois Martin Bernard Silva Santos Ivanov Petrov Kowalski Nowak Tanaka Suzuki Sato Nguyen Tran "
    "Okafor Mensah Haddad Cohen Levi Novak Horvath Jansen Berg Larsen"
).split()
ORGS = [
    ("inclusionAI", "inclusionAI"),
    ("amazon", "Amazon"),
    ("google", "Google"),
    ("deepmind", "Google DeepMind"),
    ("meta", "AI at Meta"),
    ("microsoft", "Microsoft"),
    ("nvidia", "NVIDIA"),
    ("openai", "OpenAI"),
    ("Qwen", "Qwen"),
    ("deepseek-ai", "DeepSeek"),
    ("allenai", "Ai2"),
    ("stanford", "Stanford University"),
    ("mit", "Massachusetts Institute of Technology"),
    ("tsinghua", "Tsinghua University"),
    ("huggingface", "Hugging Face"),
    ("apple", "Apple"),
    ("ByteDance", "ByteDance Seed"),
    ("mistralai", "Mistral AI"),
    ("salesforce", "Salesforce"),
    ("ibm", "IBM Research"),
]
STOPWORDS = set(
    """a an the and or of to in on for with by from as at is are was were be been being this that these
    those it its we our us they their them which who whom whose what when where while than then there
    here such can could may might will would should shall do does did done not no nor but if so also
    into onto over under between among across via per both each other more most less least many much
    few some any all only own same very just even however thus hence therefore whereas although though
    since because about above below up down out off again further once new show shows shown propose
    proposed present presents paper work works approach approaches method methods result results using
    use used based two one three first second well while yet within without toward towards often""".split()
)


@dataclass(frozen=True)
class SeedPaper:
    title: str
    abstract: str
    authors: tuple[str, ...]
    org: str
    org_fullname: str
    upvotes: int
    ai_summary: str | None = None
    github_repo: str | None = None


@dataclass(frozen=True)
class BenchPaper:
    """A synthesised paper: what matching sees plus what rendering and the database need."""

    id: int
    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    org: str
    org_fullname: str
    upvotes: int
    daily_date: date
    ai_summary: str | None
    github_repo: str | None

    def text(self) -> PaperText:
        return PaperText(self.title, self.abstract, self.authors, self.org, self.org_fullname, self.upvotes)


# ---------------------------------------------------------------- real papers


def _fake_author(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _from_api(path: Path) -> list[SeedPaper]:
    out = []
    for item in json.loads(path.read_text("utf-8")):
        p = item.get("paper", item)
        org = item.get("organization") or {}
        out.append(
            SeedPaper(
                title=" ".join(str(p.get("title") or item.get("title") or "").split()),
                abstract=" ".join(str(p.get("summary") or item.get("summary") or "").split()),
                authors=tuple(a.get("name", "") for a in p.get("authors") or () if a.get("name")),
                org=org.get("name") or "",
                org_fullname=org.get("fullname") or "",
                upvotes=int(p.get("upvotes") or 0),
                ai_summary=p.get("ai_summary"),
                github_repo=p.get("githubRepo"),
            )
        )
    return [s for s in out if s.title]


def _from_seed_page(text: str, rng: random.Random) -> list[SeedPaper]:
    """Title, abstract, then '• N authors' or 'org Org', then '·', then 'Mon D, YYYY [upvotes]'."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = []
    for k, line in enumerate(lines):
        if line != "·" or k < 3 or k + 1 >= len(lines):
            continue
        who, abstract, title = lines[k - 1], lines[k - 2], lines[k - 3]
        m = re.match(r"•\s*(\d+)\s+authors?", who)
        if m:
            authors = tuple(_fake_author(rng) for _ in range(int(m.group(1))))
            org = fullname = ""
        else:
            org, _, fullname = who.partition(" ")
            authors = tuple(_fake_author(rng) for _ in range(rng.randint(2, 12)))
        votes = re.search(r"\b\d{4}\s+(\d+)$|^[A-Z][a-z]{2} \d{1,2} (\d+)$", lines[k + 1])
        upvotes = int(next(g for g in votes.groups() if g)) if votes else 0
        out.append(SeedPaper(title, abstract, authors, org, fullname or org, upvotes))
    return out


def real_papers(rng: random.Random) -> tuple[list[SeedPaper], str]:
    if SAMPLE_JSON.exists():
        papers = _from_api(SAMPLE_JSON)
        if papers:
            return papers, str(SAMPLE_JSON.relative_to(ROOT))
    papers = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        papers += _from_seed_page(path.read_text("utf-8"), rng)
    if not papers:
        raise SystemExit(f"no real papers found in {SAMPLE_JSON} or {SEEDS_DIR}")
    return papers, "../shared/seeds"


# ---------------------------------------------------------------- synthesis


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def make_papers(m: int, seed: int = 1, days: int = 7, end: date | None = None) -> list[BenchPaper]:
    """``m`` papers spread over ``days`` Daily Papers days ending at ``end``.

    Each is a real paper's title with sentences from two or three real abstracts, fresh authors
    (and sometimes an organisation), and heavy-tailed upvotes like the real list.
    """
    rng = random.Random(seed)
    real, _ = real_papers(rng)
    end = end or date(2026, 3, 2)
    out = []
    for i in range(m):
        base = real[i % len(real)]
        others = rng.sample(real, 2)
        sentences = _sentences(base.abstract)[:4] + [rng.choice(_sentences(o.abstract) or [o.abstract]) for o in others]
        title = base.title if i < len(real) else f"{base.title} {rng.choice(['v2', 'at Scale', 'Revisited', 'for Agents', 'in the Wild'])}"
        authors = base.authors if i < len(real) and base.authors else tuple(_fake_author(rng) for _ in range(rng.randint(1, 14)))
        if base.org and rng.random() < 0.7:
            org, fullname = base.org, base.org_fullname
        elif rng.random() < 0.3:
            org, fullname = rng.choice(ORGS)
        else:
            org = fullname = ""
        out.append(
            BenchPaper(
                id=i + 1,
                arxiv_id=f"26{(i // 99999) + 1:02d}.{i % 99999 + 1:05d}",
                title=title,
                abstract=" ".join(sentences),
                authors=authors,
                org=org,
                org_fullname=fullname,
                upvotes=min(int(rng.paretovariate(0.9) * 3) - 3 + rng.randint(0, 3), 900),
                daily_date=end - timedelta(days=i % days),
                ai_summary=rng.choice(_sentences(base.abstract) or [None]) if rng.random() < 0.5 else None,
                github_repo=f"https://github.com/lab{i % 97}/repo{i}" if rng.random() < 0.4 else None,
            )
        )
    return out


class Vocabulary:
    """Words and phrases the papers actually use, weighted by how many papers use them."""

    def __init__(self, papers: list[BenchPaper]) -> None:
        words: Counter[str] = Counter()
        phrases: Counter[tuple[str, ...]] = Counter()
        raw_hyphenated: Counter[str] = Counter()
        for p in papers[: max(200, len(papers) // 5)]:
            tokens = tokenize(f"{p.title} {p.abstract}")
            # dict.fromkeys, not a set: tie order must not depend on string hashing
            words.update(dict.fromkeys((t for t in tokens if t not in STOPWORDS and len(t) > 2 and not t.isdigit()), 1))
            title = tokenize(p.title)
            phrases.update(dict.fromkeys((pair for pair in zip(title, title[1:]) if not STOPWORDS & set(pair)), 1))
            raw_hyphenated.update(re.findall(r"\b[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b", p.title))
        self.words = [w for w, _ in words.most_common(3000)]
        self.word_cum = list(accumulate(1 / (rank + 5) for rank in range(len(self.words))))  # Zipf-like
        self.phrases = [" ".join(p) for p, _ in phrases.most_common(600)]
        self.phrase_cum = list(accumulate(1 / (rank + 3) for rank in range(len(self.phrases))))
        self.hyphenated = [h for h, _ in raw_hyphenated.most_common(200)] or ["text-to-3D"]
        self.authors = [a for p in papers[:300] for a in p.authors[:3]]
        self.orgs = sorted({p.org for p in papers if p.org} | {o for o, _ in ORGS})

    def word(self, rng: random.Random) -> str:
        return rng.choices(self.words, cum_weights=self.word_cum)[0]

    def phrase(self, rng: random.Random) -> str:
        return rng.choices(self.phrases, cum_weights=self.phrase_cum)[0]


def make_filter(v: Vocabulary, rng: random.Random) -> str:
    """One filter line, in the proportions below."""
    r = rng.random()
    if r < 0.34:
        return v.word(rng)
    if r < 0.48:
        return f'"{v.phrase(rng)}"'
    if r < 0.53:
        return rng.choice(v.hyphenated)
    if r < 0.65:
        return f"{v.word(rng)} {v.word(rng)}"
    if r < 0.73:
        return " OR ".join(v.word(rng) for _ in range(rng.randint(2, 3)))
    if r < 0.80:
        return f"{v.word(rng)} -{v.word(rng)}"
    if r < 0.85:
        return f"title:{v.word(rng)}"
    if r < 0.90:
        return f'author:"{rng.choice(v.authors)}"'
    if r < 0.94:
        return f"org:{rng.choice(v.orgs)}"
    if r < 0.98:
        return f"{v.word(rng)} upvotes:>={rng.choice([5, 10, 20, 50])}"
    return f'"{v.phrase(rng)}" OR title:{v.word(rng)} -{v.word(rng)}'


EMPTY_SHARE = 0.08  # subscribers with no filters: they get every trending paper


def make_subscribers(n: int, papers: list[BenchPaper], seed: int = 2) -> list[tuple[str, ...]]:
    """Each subscriber's filter lines (1–6, most have 1–2; ``EMPTY_SHARE`` have none)."""
    rng = random.Random(seed)
    v = Vocabulary(papers)
    out = []
    for _ in range(n):
        if rng.random() < EMPTY_SHARE:
            out.append(())
            continue
        count = min(1 + int(rng.expovariate(1.1)), 6)
        lines = []
        for _ in range(count):
            line = make_filter(v, rng)
            if line not in lines:
                lines.append(line)
        out.append(tuple(lines))
    return out


def describe(subscribers: list[tuple[str, ...]]) -> dict:
    lines = [line for s in subscribers for line in s]
    return {
        "subscribers": len(subscribers),
        "without_filters": sum(1 for s in subscribers if not s),
        "filters": len(lines),
        "distinct_filters": len(set(lines)),
        "filters_per_subscriber": round(len(lines) / max(1, len(subscribers)), 2),
    }


def orm_papers(papers: list[BenchPaper]):
    """Transient ``digest.models.Paper`` objects (never added to a session), for matching and rendering."""
    from datetime import datetime, time, timezone

    from digest.models import Paper

    return [
        Paper(
            id=p.id,
            arxiv_id=p.arxiv_id,
            title=p.title,
            abstract=p.abstract,
            authors=list(p.authors),
            org_name=p.org or None,
            org_fullname=p.org_fullname or None,
            upvotes=p.upvotes,
            num_comments=p.id % 5,
            daily_date=p.daily_date,
            published_at=datetime.combine(p.daily_date, time(12), timezone.utc) - timedelta(days=2, seconds=p.id),
            ai_summary=p.ai_summary,
            github_repo=p.github_repo,
            github_stars=p.id * 37 % 4000 if p.github_repo else None,
            # what every recent API item carries, so that rendering shows a whole card
            thumbnail=f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{p.arxiv_id}.png",
            org_avatar=f"https://cdn-avatars.huggingface.co/v1/production/uploads/{p.org}.png" if p.org else None,
        )
        for p in papers
    ]


def ranked(papers: list[BenchPaper]) -> list[BenchPaper]:
    """Trending order, as ``digest.delivery.compose.rank_key`` sorts (upvotes, then the more recent day…)."""
    return sorted(papers, key=lambda p: (-p.upvotes, -p.daily_date.toordinal(), p.id, p.arxiv_id))
