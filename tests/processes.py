"""Real processes for the worker tests: Celery workers, a private Redis server, the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from support import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll until ``predicate()`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def digest_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "digest"), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@dataclass
class CeleryWorker:
    """``celery -A workers.app worker -Q …`` in its own process group, logging to a file.

    ``app="workers"`` and ``queues=None`` start it as the short form does: ``celery -A workers worker``.
    """

    env: dict[str, str]
    log_path: Path
    name: str = "w1"
    concurrency: int = 2
    app: str = "workers.app"
    queues: str | None = "digest.send,digest.default"
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def start(self) -> CeleryWorker:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                self.app,
                "worker",
                *(["-Q", self.queues] if self.queues else []),
                "-c",
                str(self.concurrency),
                "-n",
                f"{self.name}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes the pool children too
        )
        wait_for(lambda: b"ready." in self.log_path.read_bytes() or self.process.poll() is not None, 60, "celery worker start")
        assert self.process.poll() is None, self.log()
        return self

    def kill(self) -> None:
        """kill -9 the worker and its pool processes, as a crashed machine would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop and start."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), 10, "redis-server start")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
