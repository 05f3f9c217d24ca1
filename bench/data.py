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
    daily_date: date | None  # None: a paper only arXiv announced (issue 22)
    ai_summary: str | None
    github_repo: str | None
    categories: tuple[str, ...] = ()  # arXiv categories, primary first (none: a paper arXiv never announced to us)
    announced_on: date | None = None  # the arXiv announcement day it was new on

    @property
    def sources(self) -> tuple[str, ...]:
        """As ``digest.matching.trending.sources`` says of the stored paper."""
        hf = ("hf",) if self.daily_date is not None else ()
        return (*hf, "arxiv") if self.announced_on is not None or self.categories else hf

    @property
    def day(self) -> date:
        return self.daily_date or self.announced_on

    def text(self) -> PaperText:
        return PaperText(self.title, self.abstract, self.authors, self.org, self.org_fullname, self.upvotes, self.categories, self.sources)


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
            published_at=datetime.combine(p.day, time(12), timezone.utc) - timedelta(days=2, seconds=p.id),
            categories=list(p.categories) or None,
            primary_category=p.categories[0] if p.categories else None,
            announced_on=p.announced_on,
            withdrawn=False,
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
    return sorted(papers, key=lambda p: (-p.upvotes, -p.day.toordinal(), p.id, p.arxiv_id))


# ---------------------------------------------------------------- arXiv as a second source (issue 22)

#: The categories the arXiv day is drawn from; the ingest bench's feed follows the first three.
ARXIV_CATEGORIES = ("cs.CL", "cs.LG", "cs.CV", "cs.AI", "stat.ML")
FOLLOWED = ("cs.CL", "cs.LG", "cs.CV")
ARXIV_PAPERS = 2_000  # a day's announcement of cs.CL+cs.LG+cs.CV, new and cross-lists (~what arXiv lists on a weekday)
ARXIV_SHARE = 0.3  # readers with 1-3 lines naming a category or a source
_TOPIC_CUES = {
    "cs.CL": re.compile(r"language|\btext|llm|token|translat|speech|dialog|question|retriev|reasoning|chat"),
    "cs.CV": re.compile(r"image|video|visual|vision|\b3d\b|pixel|segment|scene|camera|render|detect"),
    "cs.AI": re.compile(r"agent|planning|knowledge|tool|decision|game"),
    "stat.ML": re.compile(r"bayes|statistic|kernel|variational|gaussian|estimat|convergence"),
    "cs.LG": re.compile(r"learning|training|optimi|gradient|reinforcement|neural"),
}


def arxiv_categories(title: str, abstract: str, rng: random.Random) -> tuple[str, ...]:
    """A primary category and 0-2 cross-lists, drawn with weights from what the text is about
    (vision words lean to cs.CV, language words to cs.CL…); at least one of :data:`FOLLOWED`, as
    every paper of a cs.CL+cs.LG+cs.CV feed is (a cs.AI or stat.ML primary is a cross-list there)."""
    text = f"{title} {abstract}".lower()
    weights = {c: 1.0 + 3.0 * len(cue.findall(text)) ** 0.5 for c, cue in _TOPIC_CUES.items()}
    weights["cs.AI"] *= 0.5
    weights["stat.ML"] *= 0.3
    names = list(ARXIV_CATEGORIES)
    primary = rng.choices(names, [weights[c] for c in names])[0]
    rest = [c for c in names if c != primary]
    cross: list[str] = []
    for _ in range(rng.choices((0, 1, 2), (0.45, 0.35, 0.20))[0]):
        pick = rng.choices(rest, [weights[c] for c in rest])[0]
        rest.remove(pick)
        cross.append(pick)
    if primary not in FOLLOWED and not set(cross) & set(FOLLOWED):
        cross.append(max(FOLLOWED, key=lambda c: weights[c]))
    return (primary, *cross)


def make_arxiv_day(arxiv: int = ARXIV_PAPERS, trending: int = 60, seed: int = 31, day: date | None = None) -> list[BenchPaper]:
    """One day: ``trending`` Daily Papers papers of ``day`` (upvotes, organisations; half of them
    also announced on arXiv a few days before, so with categories and sources ("hf", "arxiv")) and
    ``arxiv`` papers only arXiv announced on ``day`` (no Daily Papers day, upvotes 0, categories
    from :func:`arxiv_categories`, sources ("arxiv",)). Texts from :func:`make_papers`' generator."""
    from dataclasses import replace

    day = day or date(2026, 3, 2)
    rng = random.Random(seed + 1)
    papers = make_papers(trending + arxiv, seed=seed, days=1, end=day)
    out = []
    for i, p in enumerate(papers):
        if i < trending:
            if rng.random() < 0.5:
                p = replace(p, categories=arxiv_categories(p.title, p.abstract, rng), announced_on=day - timedelta(days=rng.randint(1, 4)))
            out.append(p)
        else:
            out.append(
                replace(
                    p,
                    upvotes=0,
                    daily_date=None,
                    announced_on=day,
                    categories=arxiv_categories(p.title, p.abstract, rng),
                    org="",
                    org_fullname="",
                    ai_summary=None,
                    github_repo=None,
                )
            )
    return out


def _category(rng: random.Random) -> str:
    return rng.choices(ARXIV_CATEGORIES, (0.3, 0.3, 0.25, 0.1, 0.05))[0]


def make_scoped_filter(v: Vocabulary, rng: random.Random) -> str:
    """One line naming a category or a source (:attr:`digest.matching.topics.Filter.scoped`)."""
    r = rng.random()
    if r < 0.20:
        return f"cat:{_category(rng)}"
    if r < 0.50:
        return f"cat:{_category(rng)} {v.word(rng)}"  # cat:cs.CL diffusion
    if r < 0.55:
        return "cat:cs.*"
    if r < 0.65:
        return f"cat:cs.* {v.word(rng)}"
    if r < 0.80:
        return f"source:arxiv {v.word(rng)}"  # source:arxiv agents
    if r < 0.88:
        return f'cat:{_category(rng)} "{v.phrase(rng)}"'
    if r < 0.95:
        a, b = rng.sample(ARXIV_CATEGORIES[:3], 2)
        return f"(cat:{a} OR cat:{b}) {v.word(rng)}"
    return f"cat:{_category(rng)} {v.word(rng)} -{v.word(rng)}"


def add_arxiv_lines(
    subscribers: list[tuple[str, ...]], papers: list[BenchPaper], share: float = ARXIV_SHARE, seed: int = 5
) -> list[tuple[str, ...]]:
    """``share`` of the subscribers (drawn at random) get 1-3 more lines naming an arXiv category or
    a source (:func:`make_scoped_filter`), words from ``papers``' own vocabulary; the rest as they were."""
    rng = random.Random(seed)
    v = Vocabulary(papers)
    out = []
    for lines in subscribers:
        if rng.random() < share:
            extra = []
            for _ in range(rng.choices((1, 2, 3), (0.55, 0.30, 0.15))[0]):
                line = make_scoped_filter(v, rng)
                if line not in lines and line not in extra:
                    extra.append(line)
            lines = (*lines, *extra)
        out.append(lines)
    return out
