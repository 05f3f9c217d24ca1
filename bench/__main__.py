"""``python -m bench {all,matching,render,smtp,e2e,memory,ranking,neighbours,arxiv-ingest,import} [--quick]``: run stages, print a table, write JSON.

Each stage measures ours and its baseline in the same run; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from bench.report import Row, print_table, write_json

STAGES = ("matching", "render", "smtp", "e2e", "memory", "ranking", "neighbours", "arxiv-ingest", "import")

# (quick, full) sizes per stage
SIZES = {
    "matching": {
        "n": (100_000, 100_000),
        "m": (1_000, 1_000),
        "sample": (200, 2_000),
        "literal": (20, 100),
        "repeat": (1, 3),
        "arxiv": (2_000, 2_000),
    },
    "render": {"emails": (2_000, 10_000)},
    "smtp": {"messages": (2_000, 20_000), "connections": ((1, 4), (1, 4, 8))},
    "e2e": {"subscribers": (10_000, 100_000)},
    "memory": {"subscribers": (50_000, 1_000_000)},
    "ranking": {"readers": (300, 1_000)},
    "import": {"rows": (100_000, 100_000)},
}


def _size(stage: str, key: str, quick: bool, override=None):
    return override if override is not None else SIZES[stage][key][0 if quick else 1]


def run_stage(stage: str, args) -> list[Row]:
    q = args.quick
    if stage == "matching":
        from bench import matching

        rows = []
        if not args.arxiv_only:
            rows += matching.run(
                _size(stage, "n", q, args.subscribers),
                _size(stage, "m", q, args.papers),
                sample=_size(stage, "sample", q),
                literal_sample=_size(stage, "literal", q),
                repeat=_size(stage, "repeat", q),
            )
        arxiv = _size(stage, "arxiv", q, args.arxiv)
        if arxiv:  # issue 22: a day of arXiv papers beside the trending ones
            rows += matching.run_arxiv(
                _size(stage, "n", q, args.subscribers),
                arxiv,
                sample=_size(stage, "sample", q),
                literal_sample=_size(stage, "literal", q),
                repeat=_size(stage, "repeat", q),
            )
        return rows
    if stage == "render":
        from bench import rendering

        return rendering.run(_size(stage, "emails", q, args.emails), repeat=2 if q else 3)
    if stage == "smtp":
        from bench import smtp

        return smtp.run(_size(stage, "messages", q, args.messages), _size(stage, "connections", q), repeat=2 if q else 3)
    if stage == "e2e":
        from bench import e2e

        if args.dkim:
            kinds = ("rsa", "ed25519") if args.dkim == "both" else (args.dkim,)
            return e2e.run_e2e_dkim(
                _size(stage, "subscribers", q, args.subscribers), kinds, workers=args.workers, profiles=args.profiles, pairs=args.pairs
            )
        if args.arxiv:
            return e2e.run_e2e_arxiv(
                _size(stage, "subscribers", q, args.subscribers),
                args.arxiv,
                workers=args.workers,
                profiles=args.profiles,
                naive=not args.no_naive,
                pairs=args.pairs,
            )
        return e2e.run_e2e(
            _size(stage, "subscribers", q, args.subscribers), workers=args.workers, profiles=args.profiles, naive=not args.no_naive
        )
    if stage == "memory":
        from bench import e2e

        return e2e.run_memory(_size(stage, "subscribers", q, args.subscribers), workers=args.workers, quick=q, profiles=args.profiles)
    if stage == "ranking":
        from bench import ranking, relevance

        readers = _size(stage, "readers", q, args.readers)
        if args.real_only:
            return relevance.run(readers, ("real",))
        return ranking.run(readers) + relevance.run(readers)
    if stage == "arxiv-ingest":
        from bench import arxiv_ingest

        return arxiv_ingest.run(args.arxiv or 2_000)
    if stage == "import":
        from bench import imports

        return imports.run(_size(stage, "rows", q, args.rows))
    if stage == "neighbours":
        from bench import neighbours

        return neighbours.run()
    raise SystemExit(f"unknown stage {stage!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("stages", nargs="+", choices=("all", *STAGES), help="stages to run, or all")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes in all)")
    parser.add_argument("--subscribers", type=int, help="override N for matching / e2e / memory")
    parser.add_argument("--papers", type=int, help="override M for matching")
    parser.add_argument(
        "--arxiv",
        type=int,
        help="matching: arXiv-only papers of the issue-22 day beside 60 trending ones (default 2,000; 0 skips it); "
        "e2e: ingest an announcement of that many papers through ingest_arxiv and give 30%% of readers cat:/source: lines",
    )
    parser.add_argument("--pairs", type=int, default=1, help="e2e --arxiv / --dkim: pairs of runs without and with it (order alternating)")
    parser.add_argument(
        "--dkim",
        choices=("rsa", "ed25519", "both"),
        help="e2e: pairs of runs unsigned and signed with keys from `digest dkim keygen`, signatures sampled and verified with dkimpy",
    )
    parser.add_argument("--arxiv-only", action="store_true", help="matching: only the arXiv day (issue 22), not the 1,000-paper rows")
    parser.add_argument("--readers", type=int, help="override the simulated readers of ranking")
    parser.add_argument("--real-only", action="store_true", help="ranking: only the vote protocol on the real papers (issue 21; ~1 minute)")
    parser.add_argument("--rows", type=int, help="import: rows of the generated CSV (default 100,000; 1,000,000 for the memory check)")
    parser.add_argument("--emails", type=int, help="override the number of digests rendered")
    parser.add_argument("--messages", type=int, help="override the number of SMTP messages per run")
    parser.add_argument(
        "--workers",
        type=int,
        default=(os.cpu_count() or 1) + 1,
        help="Celery worker processes (default: one per core plus one, since a sender waits on SMTP and PostgreSQL part of the time)",
    )
    parser.add_argument(
        "--profiles",
        type=float,
        default=0.0,
        help="e2e / memory: the share of subscribers with votes and a taste profile (0-1; default 0, as the figures before issue 14)",
    )
    parser.add_argument("--no-naive", action="store_true", help="e2e: skip the naive cron script baseline (its ~20 s)")
    parser.add_argument("--json", type=Path, help="where to write results (default bench/results/latest.json)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the stages stop the workers and the sink they started
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    stages = STAGES if "all" in args.stages else tuple(s for s in STAGES if s in args.stages)

    rows: list[Row] = []
    started = time.perf_counter()
    for stage in stages:
        t0 = time.perf_counter()
        try:
            rows += run_stage(stage, args)
        except Exception as exc:  # one broken stage must not lose the others' figures
            import traceback

            traceback.print_exc()
            rows.append(Row(stage, "stage failed", float("nan"), "", note=f"{type(exc).__name__}: {exc}"[:300]))
        print(f"[{stage} done in {time.perf_counter() - t0:.0f} s]", flush=True)
    path = write_json(
        rows,
        {"stages": list(stages), "quick": args.quick}
        | {k: v for k, v in vars(args).items() if k not in ("stages", "json") and v is not None},
        args.json,
    )
    print_table(rows, f"digest benchmarks ({'quick' if args.quick else 'full'}, {time.perf_counter() - started:.0f} s)")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
