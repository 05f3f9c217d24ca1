"""The console in a real headless Chromium: an operator made by the command line signs in, reads the
dashboard (each chart's SVG there, the digests chart counting what the ledger sent), pauses sending
from the page (the banner shows, a real send run then sends nothing, the audit log has the row),
resumes (the digests go), looks a reader up, and signs out; a stranger is sent to the sign-in form
and a form with a forged CSRF token is refused.

Screenshots go to the test's tmp dir (and ``tests/artifacts/``); with ``DIGEST_UPDATE_SCREENSHOTS=1``
the dashboard's is also copied to ``docs/screenshots/admin-dashboard.png``, the README's picture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from digest_helpers import add_subscriber
from processes import BIN, ROOT
from sqlalchemy import func, select
from support import free_port, subprocess_env
from web_helpers import serving, site_settings

from digest.db import engine_for, session_scope
from digest.delivery.run import send_due
from digest.models import (
    AuditEntry,
    Delivery,
    DeliveryStatus,
    EventKind,
    IngestRun,
    MailEvent,
    Subscriber,
    SubscriberState,
    UnsubscribeMethod,
    Vote,
)
from digest.subscribers.subscriptions import unsubscribe

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "ops@example.org", "a long console password"
README_PICTURE = ROOT / "docs" / "screenshots" / "admin-dashboard.png"


@pytest.fixture
def console_site(tmp_path, smtp_server, make_paper):
    """The app on a real server thread, with what a week of service leaves: papers, readers, an
    ingest run, a send run over the real SMTP server, a vote, a soft bounce, a one-click unsubscribe;
    and an operator account made by ``digest admin create``."""
    port = free_port()
    settings = site_settings(tmp_path, smtp_server, port, "console")
    now = datetime.now(timezone.utc)
    today = now.date()
    with session_scope(settings) as session:
        papers = [
            make_paper(f"2611.{n:05d}", f"{topic} on day {age}", upvotes=100 - n, day=today - timedelta(days=age), session=session)
            for n, (topic, age) in enumerate(
                [("Video diffusion", 2), ("Agents that use tools", 2), ("Video diffusion", 1), ("Agents that use tools", 1)]
            )
        ]
        session.add(
            IngestRun(
                source="https://huggingface.co/api/daily_papers",
                started_at=now - timedelta(hours=2),
                finished_at=now - timedelta(hours=2),
                fetched=4,
                new=4,
            )
        )
        readers = [  # at midnight UTC: yesterday's digests (of the day before) went out in the run below; today's are due now
            add_subscriber(session, email, filters, hour=0, due=now - timedelta(days=1))
            for email, filters in (("alice@example.org", ["video"]), ("bob@example.org", ["agents"]), ("carol@example.org", []))
        ]
        left = add_subscriber(session, "dave@example.org", due=None)
        add_subscriber(session, "erin@example.org", state=SubscriberState.pending, due=None)
        unsubscribe(session, left, now - timedelta(days=1), UnsubscribeMethod.one_click)
        session.add(Vote(subscriber_id=readers[0].id, paper_id=papers[1].id, vote=-1))  # a paper her filters leave out anyway
    report = send_due(settings, now - timedelta(days=1), retry_delays=())  # yesterday's run (sent now, as the ledger records it)
    assert report.sent == 3, report.line()
    with session_scope(settings) as session:
        bob = session.scalars(select(Subscriber).where(Subscriber.email == "bob@example.org")).one()
        session.add(MailEvent(kind=EventKind.soft, subscriber_id=bob.id, address=bob.email, diagnostic="452 4.2.2 mailbox full"))
        due = session.scalars(select(Subscriber.next_due_at).where(Subscriber.state == SubscriberState.active)).all()
        assert len(due) == 3 and max(due) <= now  # today's digests are due now
    made = subprocess.run(
        [str(BIN / "digest"), "admin", "create", EMAIL, "--password-stdin"],
        env=subprocess_env(settings),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    smtp_server.captured.clear()
    with serving(settings, port):
        yield settings
    engine_for(settings.database_url).dispose()


def test_an_operator_signs_in_reads_the_dashboard_pauses_and_resumes(chromium, screenshot, console_site, smtp_server, tmp_path):
    settings = console_site
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shoot(page, name: str) -> Path:
        """A full-page screenshot in the test's tmp dir (and tests/artifacts/, beside the others)."""
        return Path(shutil.copy(screenshot(page, name), shots / f"{name}.png"))

    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and r.request.resource_type != "document" else None
    )

    # no session: every console page sends you to the sign-in form, and back after it
    page.goto(settings.base_url + "/admin/audit")
    assert page.url.startswith(settings.base_url + "/admin/login?next=")
    page.fill("#email", EMAIL)
    page.fill("#password", "not the password")
    page.click("button:has-text('Sign in')")
    assert "Wrong email or password" in page.locator("#password-error").inner_text()
    shoot(page, "admin-01-sign-in-refused")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    assert page.url == settings.base_url + "/admin/audit"
    cookie = next(c for c in context.cookies() if c["name"] == "digest_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # the dashboard: the figures, and each chart drawn from the tables
    page.click("nav >> text=Dashboard")
    assert page.locator("h1").inner_text() == "Dashboard"
    with session_scope(settings) as session:
        sent = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.sent))
    assert sent == 3
    charts = _charts(settings)
    if charts is not None:  # the charts module (digest/web/admin/charts.py) is there
        assert len(charts) >= 5
        for chart in charts:
            figure = page.locator(f"#chart-{chart.id}")
            assert figure.locator("svg").count() == 1, chart.id
            assert figure.locator("svg").bounding_box()["height"] > 50, chart.id
        deliveries = next(c for c in charts if c.id == "deliveries")
        column = list(deliveries.rows[0]).index("sent")
        assert sum(row[column] for row in deliveries.rows[1:]) == sent  # the chart counts what the ledger sent
        shown = page.locator("#chart-deliveries table tbody tr")
        cells = [shown.nth(i).locator("th, td").all_text_contents() for i in range(shown.count())]  # in a closed <details>
        assert sum(int(row[column].replace(",", "")) for row in cells) == sent  # and so does the page's table
    # the header's brand and sign-out keep the page's side margins (its padding once zeroed them)
    brand, main_title = page.locator(".site-header .brand").bounding_box(), page.locator("main h1").bounding_box()
    signout = page.locator(".admin-signout button").bounding_box()
    assert abs(brand["x"] - main_title["x"]) <= 1 and brand["x"] >= 12
    assert page.viewport_size["width"] - (signout["x"] + signout["width"]) >= 12
    dashboard = shoot(page, "admin-02-dashboard")
    if os.environ.get("DIGEST_UPDATE_SCREENSHOTS") == "1":
        README_PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(dashboard, README_PICTURE)

    # pause from the console: the banner, on every page
    page.click("button:has-text('Pause sending')")
    banner = page.locator("#paused-banner")
    assert "Sending is paused" in banner.inner_text() and EMAIL in banner.inner_text()
    shoot(page, "admin-03-paused")
    report = send_due(settings, datetime.now(timezone.utc), retry_delays=())  # the next run
    assert report.sent == 0 and smtp_server.messages == []
    page.click("nav >> text=Audit log")
    assert page.locator("#paused-banner").is_visible()
    first = page.locator("table.audit-log tbody tr").first.inner_text()
    assert "pause" in first and EMAIL in first
    with session_scope(settings) as session:
        rows = [(e.operator, e.action) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert rows == [("cli", "operator_create"), (EMAIL, "login_refused"), (EMAIL, "login"), (EMAIL, "pause")]
    shoot(page, "admin-04-audit-log")

    # a reader looked up
    page.click("nav >> text=Subscribers")
    page.fill("#lookup", "bob@example.org")
    page.click("button:has-text('Look up')")
    page.wait_for_load_state()
    assert "452 4.2.2 mailbox full" in page.inner_text("main") and "agents" in page.inner_text("main")
    shoot(page, "admin-05-subscriber")

    # a forged CSRF token is refused, and nothing changes
    page.click("nav >> text=Actions")
    page.wait_for_load_state()  # the click only waits for the navigation to commit: forge the new page's token
    page.evaluate("document.querySelector('#paused-banner input[name=csrf_token]').value = 'forged'")
    page.click("#paused-banner button:has-text('Resume sending')")
    assert page.locator("h1").inner_text() == "This form has expired"
    page.go_back()
    page.reload()
    assert page.locator("#paused-banner").is_visible()

    # resume: the digests go
    page.click("#paused-banner button:has-text('Resume sending')")
    assert page.locator("#paused-banner").count() == 0
    assert "Sending resumed" in page.locator(".notice-ok").inner_text()
    report = send_due(settings, datetime.now(timezone.utc), retry_delays=())
    assert report.sent == 3
    assert sorted(m["To"] for m in smtp_server.messages) == ["alice@example.org", "bob@example.org", "carol@example.org"]

    page.click("button:has-text('Sign out')")
    assert "You are signed out" in page.inner_text("main")
    page.goto(settings.base_url + "/admin/")
    assert "/admin/login" in page.url
    assert problems == []
    context.close()

    # a stranger's browser: nothing of the console, not even whether sending is paused
    stranger = chromium.new_context()
    other = stranger.new_page()
    for path in ("/admin/", "/admin/subscribers?email=bob@example.org", "/admin/audit"):
        other.goto(settings.base_url + path)
        assert other.locator("h1").inner_text() == "Sign in to the console", path
    stranger.close()


def _charts(settings):
    try:
        from digest.web.admin import charts
    except ImportError:
        return None
    with session_scope(settings) as session:
        return charts.dashboard_charts(session, settings, datetime.now(timezone.utc))
