"""``digest demo``: the whole service in one process, on a machine that has only Python.

SQLite in the data folder, the packaged sample papers, a sample arXiv announcement served by a local
server (made from the same sample papers: :mod:`digest.papers.sources.local_arxiv`), a real SMTP
mail catcher on localhost whose mail is read at /outbox, the beat schedule run by an in-process
scheduler, and the web app. Nothing here is used in production: with ``DIGEST_BROKER_URL`` set the
same jobs run on Celery workers. Nothing reaches the internet unless ``--live``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone

import click
from werkzeug.serving import run_simple

from digest import queue
from digest.config import Settings, SmtpSettings
from digest.db import session_scope, upgrade
from digest.jobs import InProcessScheduler, scheduled_jobs, send_todays_digests
from digest.mail.catcher import MailCatcher
from digest.mail.transport import outbox_folder
from digest.models import utcnow
from digest.models.instance import record_demo
from digest.papers.ingest import IngestReport, counted, ingest_arxiv, save
from digest.papers.items import SourceError, parse_items
from digest.papers.sources.arxiv import ArxivClient
from digest.papers.sources.daily_papers import sample_items
from digest.papers.sources.local_arxiv import ORIGIN, SAMPLE_CATEGORIES, ArxivServer, SampleAnnouncement, is_loopback, sample_announcement
from digest.web import create_app

log = logging.getLogger(__name__)


@dataclass
class Demo:
    settings: Settings
    catcher: MailCatcher
    scheduler: InProcessScheduler
    arxiv: ArxivServer | None = None  # the local server of the sample arXiv announcement

    def stop(self) -> None:
        self.scheduler.stop()
        self.catcher.stop()
        if self.arxiv is not None:
            self.arxiv.stop()


def prepare(settings: Settings, *, sample: bool = True, live: bool = False, echo=click.echo, today: date | None = None) -> Demo:
    """Migrate, load the sample papers and the sample arXiv announcement, start the mail catcher and
    the in-process scheduler. ``today`` (UTC today by default) dates the sample: its Daily Papers days
    are the days before, its arXiv announcement is of the latest of them.

    The scheduler gets ``settings`` as given: its arXiv job runs only with ``live`` (and then asks the
    arXiv of ``DIGEST_ARXIV_*``, at arXiv's pace); the local server is for the one ingest here. The
    demo's site and sends get the announcement's categories (its forms offer them as checkboxes)."""
    today = today or datetime.now(timezone.utc).date()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    with session_scope(settings) as session:  # CLI commands beside the demo read it (`digest send` mails its links)
        record_demo(session, settings.base_url, settings.demo_key)
    arxiv = None
    if sample:
        announcement = sample_announcement(today)
        report = ingest_daily_sample(settings, today, held_back=announcement.held_back)
        echo("sample papers: " + "; ".join(report.lines()))
        categories = settings.arxiv_categories or SAMPLE_CATEGORIES  # DIGEST_ARXIV_CATEGORIES, or the sample's
        arxiv = announcement.server(categories).start()
    try:
        if arxiv is not None:
            echo(ingest_sample_announcement(settings, announcement, arxiv, categories))
        catcher = MailCatcher(outbox_folder(settings)).start()
    except BaseException:
        if arxiv is not None:
            arxiv.stop()
        raise
    settings = settings.with_(smtp=SmtpSettings(host=catcher.host, port=catcher.port, timeout=10.0))
    scheduler = InProcessScheduler(scheduled_jobs(settings, queue.InProcess(settings), ingest=live))
    scheduler.start()
    if arxiv is not None:  # the site offers the sample's categories (the scheduler keeps DIGEST_ARXIV_*: only --live asks arXiv)
        settings = settings.with_(arxiv_categories=categories)
    return Demo(settings=settings, catcher=catcher, scheduler=scheduler, arxiv=arxiv)


@counted("sample")  # digest_ingest_runs_total, as ingest_sample's
def ingest_daily_sample(settings: Settings, today: date, *, held_back: frozenset[str] = frozenset()) -> IngestReport:
    """The packaged sample papers as Daily Papers days before ``today`` (what
    :func:`digest.papers.ingest.ingest_sample` stores), but for ``held_back``: the sample arXiv
    announcement alone has those, so the demo holds papers only arXiv announced. No paper is made
    up for it: they are sample papers with their real ids, kept out of the Daily Papers side."""
    started_at = utcnow()
    items = [item for item in sample_items(today) if item["paper"]["id"] not in held_back]
    report = save(settings, parse_items(items, latest=today), "packaged sample papers", started_at)
    if held_back:
        report.notes.append(f"{len(held_back)} held back for the sample arXiv announcement (arXiv-only papers)")
    return report


def ingest_sample_announcement(
    settings: Settings, announcement: SampleAnnouncement, server: ArxivServer, categories: tuple[str, ...]
) -> str:
    """Ingest the sample arXiv announcement once from the local ``server`` (started); one line saying
    what it is and what the ingest did. The local server is asked without arXiv's 3 s between
    requests (arXiv's own hosts always are: the demo's scheduler uses the default client)."""
    local = settings.with_(arxiv_categories=categories, arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)
    if not (is_loopback(local.arxiv_rss_url) and is_loopback(local.arxiv_api_url)):
        raise ValueError(f"the sample arXiv announcement is served locally, not at {local.arxiv_rss_url}")
    new, cross = announcement.counts(categories)
    about = (
        f"arXiv sample announcement ({ORIGIN}): {new} new, {cross} cross-lists in "
        f"{', '.join(categories)} of {server.day.isoformat()}, served at {server.rss_url}{'+'.join(categories)}"
    )
    try:
        report = ingest_arxiv(local, client=ArxivClient(local.mail_from, min_interval=0.0, deadline=60.0))
    except SourceError as exc:
        return f"{about}; ingest failed: {exc}"
    return f"{about}; ingest: " + "; ".join(report.lines())


def run(settings: Settings, host: str, port: int, *, sample: bool, live: bool, send_now: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mail.log"):  # migrations and the catcher's SMTP chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    demo = prepare(settings, sample=sample, live=live)
    try:
        if send_now:
            report = send_todays_digests(demo.settings, datetime.now(timezone.utc))
            click.echo(f"send now: {report.line()}")
        base = f"http://{host}:{port}"
        click.echo(
            f"\n  Trending Papers demo (SQLite: {demo.settings.database_url})\n"
            f"  site:    {base}/\n"
            f"  outbox:  {base}/outbox   every email the demo sends (demo only)\n"
            f"  mail catcher: SMTP on {demo.catcher.host}:{demo.catcher.port}\n"
            f"  Ctrl-C to stop.\n"
        )
        if demo.settings.demo_key:
            click.echo(
                "  Note: links are signed with the public demo key, so anyone can forge them; keep the demo\n"
                "  on this machine (/outbox answers only to 127.0.0.1 and ::1).\n",
                err=True,
            )
        run_simple(host, port, create_app(demo.settings, warn_demo_key=False), threaded=True, use_reloader=False)
    finally:
        demo.stop()
