"""How far a long command is, on stderr: a rich progress bar on a terminal, plain lines otherwise.

The library functions know nothing of it: they take a callback (``progress=``) and the command
hands them :meth:`Progress.update` (or a small adapter). Plain lines (a log, cron's mail, a pipe)
come at each tenth of the way and at least every :data:`EVERY` seconds when the total is unknown,
then once at the end, so a log shows that the command moves without a line per row.
"""

from __future__ import annotations

import sys
import time
from typing import IO

EVERY = 10.0  # seconds between plain lines when no total is known (or the next tenth is far)
STEPS = 10  # plain lines: one per tenth of the total


class Progress:
    """``with Progress("import", total=size, unit="bytes") as bar: bar.update(done, detail="1,000 lines")``.

    ``tty`` (default: whether stderr is a terminal) picks the rich bar; ``describe`` turns
    (completed, total, detail) into the plain line's words after ``what: ``.
    """

    def __init__(self, what: str, total: int | None = None, *, tty: bool | None = None, stream: IO[str] | None = None) -> None:
        self.what = what
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.completed = 0
        self.detail = ""
        self._bar = None
        self._task = None
        self._last_line = self.started
        self._last_step = 0
        self._printed = (-1, "", "")

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
            )
            self._bar = Progress(*columns, console=Console(file=self.stream, force_terminal=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total, detail="")
        return self

    def update(self, completed: int, *, total: int | None = None, detail: str = "", what: str | None = None) -> None:
        """Where it is now: ``completed`` of ``total`` (a new total or label starts a new stage)."""
        if what is not None and what != self.what:
            self.what, self._last_step = what, 0
        if total is not None:
            self.total = total
        self.completed, self.detail = completed, detail
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=self.total, detail=detail, description=self.what)
            return
        now = time.monotonic()
        step = int(STEPS * completed / self.total) if self.total else 0
        if step > self._last_step or now - self._last_line >= EVERY:
            self._last_step = max(step, self._last_step)
            self._line(now)

    def _line(self, now: float) -> None:
        if self._printed == (self.completed, self.what, self.detail):
            return
        self._printed = (self.completed, self.what, self.detail)
        self._last_line = now
        share = f" ({100 * self.completed / self.total:.0f} %)" if self.total else ""
        detail = self.detail or (f"{self.completed:,} of {self.total:,}" if self.total else f"{self.completed:,}")
        print(f"{self.what}: {detail}{share}, {now - self.started:.1f} s", file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif exc[0] is None and (self.completed or self.detail):
            self._line(time.monotonic())
