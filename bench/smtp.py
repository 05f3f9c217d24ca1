"""Stage (c): SMTP delivery, messages per second, against Postfix's ``smtp-sink`` on loopback.

Three senders against the same sink, the same number of connections, the same message size:

- ours: ``SmtpTransport.send_each``, as a send batch sends (one persistent connection per sender
  process, many messages each; with PIPELINING each message's end goes out with the next envelope),
  sending real digests built by the render stage;
- baseline: the same messages, a new SMTP connection per message (connect, EHLO, send, QUIT);
- reference: Postfix's ``smtp-source`` (C) with ``-d`` (messages over the same connection) and
  without (a connection per message, how ``docs/reference/performance.md`` ran it), ``-l`` set so
  its messages are as large as ours.

With C connections, ours and the baseline run C processes (one connection each): a connection is
what a Celery worker process holds while it sends a batch.
"""

from __future__ import annotations

import multiprocessing
import shutil
import smtplib
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from bench.report import Row, rate
from digest.config import SmtpSettings
from digest.mail.transport import SmtpTransport

SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SENDER = "digest@papers.example.org"
SOURCE_HEADERS = 150  # about what smtp-source adds to its -l payload (From, To, Date, Message-Id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_sink(port: int | None = None, dump: Path | None = None):
    """A running ``smtp-sink`` on 127.0.0.1; yields its port. ``dump``: a folder (writable by
    anyone: the sink runs as nobody) where it writes each message it accepts to a file of its own."""
    if not Path(SINK).exists():
        raise RuntimeError(f'{SINK} not found: apt-get install -y postfix ("No configuration")')
    port = port or free_port()
    keep = ["-d", f"{dump}/m."] if dump is not None else []
    proc = subprocess.Popen([SINK, "-u", "nobody", *keep, f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"smtp-sink did not start: {proc.stderr.read().decode(errors='replace')}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ours(port: int, messages: list[bytes], count: int, offset: int, barrier) -> None:
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port), local_hostname="papers.example.org")
    stream = [([f"reader{offset + k}@example.org"], messages[(offset + k) % len(messages)]) for k in range(count)]
    barrier.wait()
    for _, error in transport.send_each(SENDER, stream):  # as a send batch sends: one stream
        if error is not None:
            raise error
    transport.close()


def _per_message(port: int, messages: list[bytes], count: int, offset: int, barrier) -> None:
    barrier.wait()
    for k in range(count):
        with smtplib.SMTP("127.0.0.1", port, local_hostname="papers.example.org") as smtp:
            smtp.sendmail(SENDER, [f"reader{offset + k}@example.org"], messages[(offset + k) % len(messages)])


def _parallel(target, port: int, messages: list[bytes], total: int, connections: int) -> float:
    """Wall seconds for ``connections`` processes to send ``total`` messages between them."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(connections + 1)
    share = [total // connections + (1 if i < total % connections else 0) for i in range(connections)]
    offsets = [sum(share[:i]) for i in range(connections)]
    procs = [ctx.Process(target=target, args=(port, messages, share[i], offsets[i], barrier)) for i in range(connections)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"a sender process failed: exit codes {[p.exitcode for p in procs]}")
    return seconds


def _smtp_source(port: int, total: int, connections: int, size: int, persistent: bool) -> float:
    args = [SOURCE, "-s", str(connections), "-m", str(total), "-l", str(max(1, size - SOURCE_HEADERS))]
    args += ["-d"] if persistent else []
    args += ["-M", "papers.example.org", "-f", SENDER, "-t", "reader@example.org", f"127.0.0.1:{port}"]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    return time.perf_counter() - t0


def run(total: int, connection_counts=(1, 4), *, repeat: int = 3, baseline_share: float = 0.25, log=print) -> list[Row]:
    """Each sender ``repeat`` times, interleaved, best kept: the machine is shared, so the best run
    of each is the least disturbed one, and interleaving spreads any disturbance over all four."""
    from bench.rendering import sample_messages

    messages = sample_messages(500)
    size = sum(map(len, messages)) // len(messages)
    base_total = max(200, int(total * baseline_share))
    rows = []
    with smtp_sink() as port:
        _parallel(_ours, port, messages, 200, 1)  # warm up
        for c in connection_counts:
            runs = [
                (
                    _parallel(_ours, port, messages, total, c),
                    _parallel(_per_message, port, messages, base_total, c),
                    _smtp_source(port, total, c, size, persistent=True),
                    _smtp_source(port, total, c, size, persistent=False),
                )
                for _ in range(repeat)
            ]
            ours_s, base_s, src_s, src_new_s = (min(r[k] for r in runs) for k in range(4))
            ours_r, base_r = total / ours_s, base_total / base_s
            src_r, src_new_r = total / src_s, total / src_new_s
            log(
                f"smtp: {c} conn: ours {ours_r:,.0f}/s, new connection per message {base_r:,.0f}/s, "
                f"smtp-source -d {src_r:,.0f}/s, smtp-source (connection per message) {src_new_r:,.0f}/s"
            )
            share = ours_r / src_r
            rows.append(
                rate(
                    "smtp",
                    f"SmtpTransport, {c} connection{'s' if c > 1 else ''}, msgs/s",
                    ours_r,
                    "msg/s",
                    base_r,
                    baseline_label="new connection per message",
                    target="≥ 0.5 × smtp-source",
                    met=share >= 0.5,
                    note=f"smtp-source -d {src_r:,.0f}/s → ours = {share:.2f}×; smtp-source reconnecting {src_new_r:,.0f}/s; "
                    f"{size / 1024:.0f} KiB messages",
                    detail={
                        "connections": c,
                        "messages": total,
                        "message_bytes_mean": size,
                        "ours_seconds": ours_s,
                        "runs_seconds_ours_baseline_source_source_reconnect": runs,
                        "baseline_messages": base_total,
                        "baseline_seconds": base_s,
                        "smtp_source_persistent_per_s": src_r,
                        "smtp_source_reconnect_per_s": src_new_r,
                        "ours_vs_smtp_source": share,
                        "ours_vs_smtp_source_reconnect": ours_r / src_new_r,
                    },
                )
            )
    return rows
