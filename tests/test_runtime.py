"""The processes that run the workers' code start with the collector tuned (digest/runtime.py): the
Celery app's, before its pool forks, and the ``digest`` command's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from digest.runtime import GC_THRESHOLDS

ROOT = Path(__file__).resolve().parents[1]


def _thresholds_after(code: str, **env: str) -> tuple[int, ...]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport gc; print(*gc.get_threshold())"],
        cwd=ROOT,
        env=os.environ | {"DIGEST_BROKER_URL": "redis://127.0.0.1:6379/15", "DIGEST_SECRET_KEY": "k" * 40} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return tuple(int(x) for x in out.stdout.split()[-3:])


def test_the_celery_app_tunes_the_collector_before_its_pool_forks():
    assert _thresholds_after("pass") != GC_THRESHOLDS  # a bare interpreter has CPython's own
    assert _thresholds_after("import workers.app") == GC_THRESHOLDS


def test_the_digest_command_tunes_the_collector():
    code = (
        "from click.testing import CliRunner\nfrom digest.cli import main\nassert CliRunner().invoke(main, ['db', '--help']).exit_code == 0"
    )
    assert _thresholds_after(code) == GC_THRESHOLDS
