"""`digest demo` as a newcomer meets it: one process, the site, the outbox, today's digest.

Runs the real command in a subprocess (SQLite in a temporary data folder, the packaged sample
papers, the built-in mail catcher) and drives it with headless Chromium: subscribe, read the
confirmation in /outbox, confirm from the mail, press "send today's digests now", read the digest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from processes import wait_for
from support import free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_server(tmp_path):
    port = free_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_DATA_DIR"] = str(tmp_path / "data")
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("digest")), "demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert process.poll() is None, (tmp_path / "demo.log").read_text()
            return False

    try:
        wait_for(up, 60, "digest demo to serve")
        yield base, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_demo_runs_the_whole_service_in_one_process(chromium, screenshot, demo_server):
    base, folder = demo_server
    assert (folder / "data" / "digest.sqlite3").exists()
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(base + "/")
    assert page.locator(".trending .paper-title").count() >= 3  # the sample papers are there
    page.fill("#email", "newcomer@example.org")
    page.fill("#topics", "")  # every trending paper
    page.click("button:has-text('Subscribe')")
    page.wait_for_url("**/check-your-inbox")

    page.click("a:has-text('Outbox')")
    assert "demo only" in page.locator("h1").inner_text().lower()
    page.click("td a")  # the newest mail: the confirmation
    screenshot(page, "demo-01-confirmation-in-outbox")
    frame = page.frame_locator("iframe.mail-frame")
    frame.locator("a.button").click()  # the link in the mail, opened in the whole window
    page.wait_for_url("**/confirm/**")
    page.click("button:has-text('Yes, start my digest')")
    assert page.locator("h1").inner_text() == "You're subscribed"

    page.goto(base + "/outbox/")
    page.click("button:has-text('Send the next digests now')")
    notice = page.locator(".notice-ok").inner_text()
    assert notice.startswith("Sent 1 digest"), notice
    screenshot(page, "demo-02-outbox-after-send")
    page.click("td a")  # the newest mail: the digest
    assert (
        page.locator("h1")
        .inner_text()
        .startswith(
            (
                "1 trending",
                "2 trending",
                "3 trending",
                "4 trending",
                "5 trending",
                "6 trending",
                "7 trending",
                "8 trending",
                "9 trending",
                "10 trending",
            )
        )
    )
    frame = page.frame_locator("iframe.mail-frame")
    titles = frame.locator("a[href^='https://huggingface.co/papers/']").all_inner_texts()
    assert len(titles) >= 1
    screenshot(page, "demo-03-digest-in-outbox")

    # pressing it again sends nothing twice
    page.goto(base + "/outbox/")
    page.click("button:has-text('Send the next digests now')")
    assert page.locator(".notice-ok").inner_text().startswith("Sent 0 digest")
    assert page.locator("tbody tr").count() == 2  # the confirmation and one digest
