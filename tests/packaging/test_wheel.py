"""The wheel is the product: built from this checkout, installed into a fresh virtualenv, run
outside the checkout. It must carry its migrations and email templates (alembic/ and
email_templates/ are top-level folders of the project, not of the package)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from papers_api import item
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "wheel-test-secret-0123456789"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project's wheel installed in a new virtualenv; returns its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(work / "dist"), str(ROOT)],
        check=True,
        timeout=600,
    )
    [wheel] = (work / "dist").glob("paper_digest-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(wheel)], check=True, timeout=900
    )
    return bin_dir


@pytest.fixture
def empty_postgres(postgres_url) -> str:
    """A database with no tables at all, on the test PostgreSQL server."""
    url = make_url(postgres_url)
    name = f"{url.database}_wheel"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(bin_dir: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(bin_dir / "digest"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"digest {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_an_installed_wheel_migrates_an_empty_database_and_sends_a_digest(installed, empty_postgres, smtp_server, tmp_path):
    now = datetime.now(timezone.utc)
    yesterday = (now - timedelta(days=1)).date().isoformat()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DIGEST_DATABASE_URL": empty_postgres,
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
    }
    # run outside the checkout: nothing may be found there
    migrated = run(installed, tmp_path, env, "db", "upgrade")
    assert "database at revision" in migrated.stdout
    papers = tmp_path / "papers.json"
    papers.write_text(
        json.dumps(
            [
                item("2611.00001", "Diffusion models for video", upvotes=40, day=yesterday),
                item("2611.00002", "A survey of graph networks", upvotes=9, day=yesterday),
            ]
        )
    )
    run(installed, tmp_path, env, "ingest", "--file", str(papers))
    people = tmp_path / "people.csv"
    people.write_text("email,topics,frequency,timezone\nann@example.org,diffusion,daily,UTC\n")
    run(installed, tmp_path, env, "subscribers", "import", str(people), "--confirmed")

    sent = run(installed, tmp_path, env, "send", "--at", (now + timedelta(days=1)).isoformat())

    assert "sent 1," in sent.stdout
    [message] = smtp_server.to("ann@example.org")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Diffusion models for video" in html and "A survey of graph networks" not in html
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
