"""Checking an import's lines, apart from the database: here, or in a helper process.

What a CSV line must be to be imported (the address through
:func:`~digest.subscribers.addresses.normalize_email`, the filters through the filter language,
the frequency, time zone, delivery hour and state) is checked by :func:`check_csv_rows`, a
chunk at a time, into plain tuples. The module imports only what those checks need (no
SQLAlchemy, no numpy), so :class:`Checker` can run them in a helper process
(``python -m digest.subscribers.checks``) that starts in a tenth of a second: while the command
writes one chunk to the database, the helper checks the next (email_validator's work is most of
an import's CPU). Chunks go and come back in order over the helper's stdin and stdout; at most
``depth`` are in flight, so memory does not grow with the file.

A spreadsheet's formula cells (OWASP "CSV injection") are handled here too: :func:`neutralise`
(export) and :func:`restore` (import).
"""

from __future__ import annotations

import importlib
import pickle
import re
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from queue import Queue
from typing import Any

from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone
from digest.matching.expression import terms_of
from digest.matching.topics import TopicsError, parse_topics, shown_errors
from digest.subscribers.addresses import normalize_email

STATES = ("pending", "active", "unsubscribed", "suppressed")  # SubscriberState's values (not imported: SQLAlchemy)
FREQUENCIES = frozenset({"daily", "weekly"})  # Frequency's values

# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): export writes it with one
# more leading quote, import takes that quote off again. Cells already starting with quotes before
# such a character get one more too, so every value reads back exactly as it was.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def neutralise(cell: str) -> str:
    """``=1+2`` -> ``'=1+2``: shown as text by spreadsheets, never evaluated."""
    return "'" + cell if _FORMULA.match(cell) else cell


def restore(cell: str) -> str:
    """The inverse of :func:`neutralise`."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell, 1) else cell


#: A checked CSV line: (line number, address as stored, filter lines, frequency, time zone,
#: delivery hour, state or None, arXiv ids its ``like:`` terms name)
Checked = tuple[int, str, tuple[str, ...], str, str, int, "str | None", tuple[str, ...]]


def check_csv_row(line_no: int, row: dict[str, str]) -> Checked:
    """The row's values as the web form would take them; ValueError/TopicsError say what is wrong."""
    row = {name: restore(value) for name, value in row.items() if isinstance(name, str) and isinstance(value, str)}
    email = normalize_email(row.get("email") or "")
    filters = parse_topics(row.get("topics") or "")
    frequency = (row.get("frequency") or "daily").strip().lower()
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be daily or weekly, got {frequency!r}")
    tz = (row.get("timezone") or "UTC").strip()
    if not is_valid_timezone(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    hour_text = (row.get("delivery_hour") or "").strip()
    hour = DEFAULT_HOUR
    if hour_text:
        hour = int(hour_text) if hour_text.isascii() and hour_text.isdigit() else -1
        if not 0 <= hour <= 23:
            raise ValueError(f"delivery hour must be 0-23, got {hour_text!r}")
    state = (row.get("state") or "").strip().lower()
    if state and state not in STATES:
        raise ValueError(f"state must be {', '.join(STATES)} (or empty), got {state!r}")
    likes = {t.words[0] for f in filters if "like:" in f.key for t, _ in terms_of(f.expr) if t.field == "like"}  # as similar.like_ids
    return line_no, email, tuple(f.text for f in filters), frequency, tz, hour, state or None, tuple(sorted(likes))


def check_csv_rows(rows: list[tuple[int, dict[str, str]]]) -> tuple[int, list[Checked | str]]:
    """A chunk's lines checked: a :data:`Checked` tuple each, or the line's problem as the
    report shows it; with the chunk's last line number."""
    out: list[Checked | str] = []
    for line_no, row in rows:
        try:
            out.append(check_csv_row(line_no, row))
        except TopicsError as exc:
            out.append(f"line {line_no}: topics: " + "; ".join(shown_errors([e.message for e in exc.errors])))
        except ValueError as exc:
            out.append(f"line {line_no}: {exc}")
    return (rows[-1][0] if rows else 0), out


def _task(name: str) -> Callable:
    """``"module:function"``: the check a :class:`Checker` runs, found by name in either process."""
    module, _, function = name.partition(":")
    if not module.startswith("digest.subscribers."):
        raise ValueError(f"no check {name!r}")
    return getattr(importlib.import_module(module), function)


CSV = "digest.subscribers.checks:check_csv_rows"


# ---------------------------------------------------------------- the helper process

_FRAME = struct.Struct("<Q")


def _send(stream, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _receive(stream) -> Any:
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(header)
    return pickle.loads(stream.read(size))


def serve(stdin=None, stdout=None) -> None:
    """The helper: (task, chunk, arguments) in, ("ok", result) or ("error", traceback) out, until EOF."""
    stdin, stdout = stdin or sys.stdin.buffer, stdout or sys.stdout.buffer
    while True:
        try:
            name, rows, kwargs = _receive(stdin)
        except EOFError:
            return
        try:
            reply = ("ok", _task(name)(rows, **kwargs))
        except Exception:
            reply = ("error", traceback.format_exc())
        _send(stdout, reply)


class Checker:
    """Checks a file's chunks with the ``task`` check (``"module:function"``, e.g. :data:`CSV`), in
    the file's order.

    With ``parallel`` a helper process does it (started at once, so it is ready when the first
    chunk is); otherwise, or if the helper cannot start, this process. ``submit(chunk)`` returns
    the results now due to be written, oldest first (with a helper, a chunk is due once ``depth``
    more are in flight); ``drain()`` the rest.
    """

    def __init__(self, task: str, *, parallel: bool = False, depth: int = 2, **kwargs: Any) -> None:
        self.task, self.kwargs, self.depth = task, kwargs, depth
        self.check = _task(task)
        self.pending: deque = deque()  # results checked here, or None for one the helper has
        self.replies: Queue = Queue()
        self.helper: subprocess.Popen | None = None
        if parallel:
            try:
                self.helper = subprocess.Popen(
                    [sys.executable, "-m", "digest.subscribers.checks"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            except OSError:
                self.helper = None
            else:  # read its replies as they come: it never blocks on a full pipe while we write to it
                threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                self.replies.put(_receive(self.helper.stdout))
        except (EOFError, OSError, pickle.UnpicklingError):
            self.replies.put(("error", "the checking process ended"))

    def submit(self, rows: list) -> list:
        if self.helper is None:
            self.pending.append(self.check(rows, **self.kwargs))
        else:
            try:
                _send(self.helper.stdin, (self.task, rows, self.kwargs))
            except OSError as exc:  # it died (its stderr says why)
                raise RuntimeError(f"checking the file failed: the checking process ended ({exc})") from None
            self.pending.append(None)
        due = []
        while self.pending and (self.pending[0] is not None or len(self.pending) > self.depth):
            due.append(self._next())
        return due

    def drain(self) -> list:
        due = [self._next() for _ in range(len(self.pending))]
        return due

    def _next(self):
        item = self.pending.popleft()
        if item is not None:
            return item
        status, value = self.replies.get()
        if status != "ok":
            raise RuntimeError(f"checking the file failed: {value}")
        return value

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc) -> None:
        if self.helper is not None:
            try:
                self.helper.stdin.close()
            except OSError:
                pass
            try:
                self.helper.wait(timeout=10 if exc[0] is None else 1)
            except subprocess.TimeoutExpired:
                self.helper.kill()
                self.helper.wait()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle: it closes our stdin, we end
    serve()
