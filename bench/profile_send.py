"""Profile what a send worker does, in this process: ``python -m bench.profile_send [N]``.

Fills the bench database with N due subscribers (as the e2e stage does), plans in-process, then runs
``digest.delivery.batch.send_deliveries`` over the planned rows in batches of 100 — exactly what the
``digest.send_batch`` task runs — under pyinstrument, against ``smtp-sink``. Prints the profile and
the rate.
``--profiles=0.3`` gives that share of the subscribers a taste profile (as ``bench e2e --profiles``);
``--arxiv=2000`` stores that many arXiv papers on each of the readers' window days through
``ingest_arxiv`` and gives 30 % of the readers lines naming a category or a source (as ``bench e2e --arxiv``).
``--plain`` skips pyinstrument (whose per-call hook inflates call-heavy code) for a sampling
profiler: ``py-spy record -f raw -o out.txt -- python -m bench.profile_send 3000 --plain``, then
``python -m bench.spy out.txt``. (For a live Celery worker: ``py-spy record --pid <worker child pid>``.)
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone


def main(n: int = 3000, plain: bool = False, profiles: float = 0.0, arxiv: int = 0) -> None:
    from pyinstrument import Profiler

    from bench.e2e import fresh_database, populate, run_moment, settings_env
    from bench.smtp import smtp_sink
    from digest.config import load_settings
    from digest.db import session_scope
    from digest.delivery.batch import chunks

    at = run_moment()
    fresh_database()
    populate(n, at, profiles=profiles, arxiv=arxiv)
    with smtp_sink() as port:
        settings = load_settings(settings_env(port))
        from digest.delivery.batch import send_deliveries
        from digest.delivery.planning import plan

        t0 = time.perf_counter()
        with session_scope(settings) as session:
            ids = plan(session, settings, at)
        plan_s = time.perf_counter() - t0
        profiler = Profiler(interval=0.0005)
        if not plain:
            profiler.start()
        t0, cpu0 = time.perf_counter(), time.process_time()
        sent = 0
        for batch in chunks(ids):
            sent += send_deliveries(settings, batch, datetime.now(timezone.utc)).sent
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if not plain:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    print(
        f"planned {len(ids)} in {plan_s:.2f} s; sent {sent} in {seconds:.2f} s = {sent / seconds:,.0f}/s on one process, "
        f"{cpu:.2f} s of its CPU ({1e6 * cpu / len(ids):,.0f} µs a digest)"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    share = next((float(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--profiles=")), 0.0)
    arxiv = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--arxiv=")), 0)
    main(int(args[0]) if args else 3000, plain="--plain" in sys.argv, profiles=share, arxiv=arxiv)
