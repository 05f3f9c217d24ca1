"""Progress on stderr (issue 24): a rich bar on a terminal, plain lines otherwise; the library
functions only take a callback."""

from __future__ import annotations

import io
import os
import subprocess
import time

from processes import BIN, ROOT
from support import subprocess_env

from digest.cli import progress as progress_module
from digest.cli.progress import Progress


def test_off_a_terminal_a_line_per_tenth_and_one_at_the_end():
    out = io.StringIO()
    with Progress("import", total=1000, tty=False, stream=out) as bar:
        for done in range(0, 1001, 50):
            bar.update(done, detail=f"{done:,} lines read")
    lines = out.getvalue().splitlines()
    assert [line.split(", ")[0] for line in lines] == [f"import: {n:,} lines read ({n // 10} %)" for n in range(100, 1001, 100)]


def test_without_a_total_a_line_every_few_seconds(monkeypatch):
    clock = iter(range(0, 1000, 4))  # each call: 4 s later
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(clock)))
    out = io.StringIO()
    with Progress("send", tty=False, stream=out) as bar:
        for done in range(1, 8):
            bar.update(done)
    assert out.getvalue().splitlines() == ["send: 3, 12.0 s", "send: 6, 24.0 s", "send: 7, 32.0 s"]


def test_a_failure_prints_no_final_line():
    out = io.StringIO()
    try:
        with Progress("ingest", total=3, tty=False, stream=out) as bar:
            bar.update(0)
            raise RuntimeError("the source is down")
    except RuntimeError:
        pass
    assert out.getvalue() == ""


def test_on_a_terminal_the_command_draws_a_rich_bar(settings, tmp_path):
    """`subscribers import` with its stderr on a pseudo-terminal: rich's bar, not the plain lines."""
    path = tmp_path / "list.csv"
    path.write_text("email,topics\n" + "".join(f"reader{i}@example.org,agents\n" for i in range(3000)))
    leader, follower = os.openpty()
    try:
        env = subprocess_env(settings, COLUMNS="100", TERM="xterm")
        started = time.monotonic()
        result = subprocess.run(
            [str(BIN / "digest"), "subscribers", "import", "--confirmed", str(path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
        )
        os.close(follower)
        follower = None
        drawn = b""
        while time.monotonic() - started < 130:
            try:
                block = os.read(leader, 65536)
            except OSError:
                break
            if not block:
                break
            drawn += block
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert result.returncode == 0 and result.stdout.startswith("imported 3000,")
    screen = drawn.decode("utf-8", "replace")
    assert "━" in screen and "import" in screen, screen[:500]  # rich's bar
    assert "import: " not in screen  # none of the plain lines
