#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has only Python 3.11+.

    python3 dev.py demo     # the service on its embedded default, at http://127.0.0.1:8000
    python3 dev.py test     # the test suite
    python3 dev.py lint     # ruff (lint + format check) and the import contracts (lint-imports)
    python3 dev.py digest … # any `digest` CLI command inside the project's virtualenv

It creates ``.venv`` beside this file (or at ``$DIGEST_VENV``) and installs the project into it from
pyproject.toml (again only when pyproject.toml changed), then runs the command there: ``demo`` and
``digest`` need only the project; ``test`` and ``lint`` add its test extras (pytest, hypothesis,
playwright, ruff…) to the same virtualenv the first time they run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("DIGEST_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv(extras: str = "") -> None:
    """Install the project (with ``extras``, e.g. "test") unless this pyproject.toml is installed so already.

    A stamp file per pyproject.toml and extras says what is installed; the plain project is part of
    every install, so ``demo`` never re-installs after ``test``, and ``test`` only adds its extras.
    """
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    version = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{version}-{extras or 'project'}"
    if stamp.exists() or (not extras and any(VENV.glob(f".installed-{version}-*"))):
        return
    if not (BIN / "python").exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    what = f"the project[{extras}]" if extras else "the project"
    print(f"installing {what} into {VENV} (first run only)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["-e", f"{ROOT}[{extras}]" if extras else str(ROOT)], check=True)
    for old in VENV.glob(".installed-*"):
        if not old.name.startswith(f".installed-{version}-"):
            old.unlink()  # made from an older pyproject.toml
    stamp.touch()


def ensure_npm_tools() -> None:
    """The npm tools some tests use (doiuse-email, the caniemail check), at their lockfile's
    versions, when npm is here and they are not installed from this lockfile yet; without npm those
    tests skip saying so."""
    folder = ROOT / "tests" / "mail" / "caniemail"
    lock, installed = folder / "package-lock.json", folder / "node_modules" / ".package-lock.json"
    if not lock.exists() or not shutil.which("npm"):
        return
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    print(f"installing the npm tools of {folder.relative_to(ROOT)} (npm ci)", flush=True)
    subprocess.run(["npm", "ci", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error"], check=False)


def run(argv: list[str]) -> int:
    os.chdir(ROOT)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        ensure_venv("test")
        ensure_npm_tools()
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest])
    if command == "lint":
        ensure_venv("test")
        checks = [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["lint-imports"]]
        return max(subprocess.call([str(BIN / tool), *args]) for tool, *args in checks)
    if command in {"demo", "digest"}:
        ensure_venv()
    if command == "demo":
        return subprocess.call([str(BIN / "digest"), "demo", *rest])
    if command == "digest":
        return subprocess.call([str(BIN / "digest"), *rest])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(run(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        sys.exit(f"set-up failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}")
    except KeyboardInterrupt:
        sys.exit(130)
