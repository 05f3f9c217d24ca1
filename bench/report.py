"""One result row per measured figure; a rich table on the terminal and JSON on disk."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One figure, its baseline and (where the issue sets one) its target.

    ``ratio`` is always "how many times better than the baseline" (>1 is better): baseline time /
    our time for durations, our rate / baseline rate for rates.
    """

    stage: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    detail: dict = field(default_factory=dict)


def faster(stage: str, metric: str, seconds: float, baseline_seconds: float | None, **kw) -> Row:
    ratio = baseline_seconds / seconds if baseline_seconds and seconds else None
    return Row(stage, metric, seconds, "s", baseline_seconds, ratio=ratio, **kw)


def rate(stage: str, metric: str, per_s: float, unit: str, baseline_per_s: float | None, **kw) -> Row:
    ratio = per_s / baseline_per_s if baseline_per_s else None
    return Row(stage, metric, per_s, unit, baseline_per_s, ratio=ratio, **kw)


def machine() -> dict:
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    for name, cmd in (("postgresql", ["psql", "--version"]), ("redis", ["redis-server", "--version"])):
        try:
            info[name] = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=RESULTS_DIR.parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "s" and value < 1:
        text = f"{value:.3f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def print_table(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name, justify in (
        ("stage", "left"),
        ("figure", "left"),
        ("ours", "right"),
        ("baseline", "right"),
        ("× baseline", "right"),
        ("target", "left"),
        ("met", "center"),
    ):
        table.add_column(name, justify=justify)
    for r in rows:
        met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[r.met]
        base = f"{_fmt(r.baseline, r.unit)}" + (f" ({r.baseline_label})" if r.baseline_label else "")
        table.add_row(
            r.stage,
            r.metric + (f"\n[dim]{r.note}[/]" if r.note else ""),
            _fmt(r.value, r.unit),
            base if r.baseline is not None else "—",
            f"{r.ratio:,.2f}×" if r.ratio is not None else "—",
            r.target,
            met,
        )
    Console(width=max(140, Console().width)).print(table)


def write_json(rows: list[Row], args: dict, path: Path | None = None) -> Path:
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else {}
    rows_out = [asdict(r) for r in rows]
    stages = {r["stage"] for r in rows_out}
    # a run of some stages keeps the other stages' last figures
    kept = [r for r in previous.get("rows", []) if r["stage"] not in stages]
    order = ("matching", "render", "smtp", "e2e", "memory")
    rank = lambda r: order.index(r["stage"].split()[0]) if r["stage"].split()[0] in order else len(order)  # noqa: E731
    doc = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": args,
        "rows": sorted(kept + rows_out, key=rank),
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path
