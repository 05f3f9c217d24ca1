"""``digest demo``: the whole service in one process, on a machine that has only Python.

SQLite in the data folder, the packaged sample papers, a real SMTP mail catcher on localhost whose
mail is read at /outbox, the beat schedule run by an in-process scheduler, and the web app. Nothing
here is used in production: with ``DIGEST_BROKER_URL`` set the same jobs run on Celery workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import click
from werkzeug.serving import run_simple

from digest import queue
from digest.config import Settings, SmtpSettings
from digest.db import session_scope, upgrade
from digest.jobs import InProcessScheduler, scheduled_jobs, send_todays_digests
from digest.mail.catcher import MailCatcher
from digest.mail.transport import outbox_folder
from digest.models.instance import record_demo
from digest.papers.ingest import ingest_sample
from digest.web import create_app

log = logging.getLogger(__name__)


@dataclass
class Demo:
    settings: Settings
    catcher: MailCatcher
    scheduler: InProcessScheduler

    def stop(self) -> None:
        self.scheduler.stop()
        self.catcher.stop()


def prepare(settings: Settings, *, sample: bool = True, live: bool = False, echo=click.echo) -> Demo:
    """Migrate, load the sample papers, start the mail catcher and the in-process scheduler."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    with session_scope(settings) as session:  # CLI commands beside the demo read it (`digest send` mails its links)
        record_demo(session, settings.base_url, settings.demo_key)
    if sample:
        report = ingest_sample(settings)
        echo("sample papers: " + "; ".join(report.lines()))
    catcher = MailCatcher(outbox_folder(settings)).start()
    settings = settings.with_(smtp=SmtpSettings(host=catcher.host, port=catcher.port, timeout=10.0))
    scheduler = InProcessScheduler(scheduled_jobs(settings, queue.InProcess(settings), ingest=live))
    scheduler.start()
    return Demo(settings=settings, catcher=catcher, scheduler=scheduler)


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
