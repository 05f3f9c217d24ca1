"""The public demo key (``DIGEST_DEMO=true`` without ``DIGEST_SECRET_KEY``): anyone can forge its
links, so every way of starting the app says so on stderr, and /outbox, which shows every mail
caught with its links, answers only on this machine."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from processes import BIN, wait_for
from support import free_port
from web_helpers import csrf_token

from digest.config import DEMO_SECRET_KEY, Settings
from digest.web import create_app

WARNING = "WARNING: this server signs its links with the PUBLIC demo key."


@pytest.fixture
def demo_key_settings(sqlite_database, tmp_path):
    return Settings(database_url=sqlite_database("demo"), secret_key=DEMO_SECRET_KEY, demo=True, data_dir=tmp_path)


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DIGEST_")}
    return {**env, "DIGEST_DEMO": "true", "DIGEST_DATA_DIR": str(tmp_path / "data")}


def started(command: list[str], env: dict[str, str], port: int, tmp_path: Path) -> str:
    """Run ``command`` until it answers /healthz; its stderr."""
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log)
        try:

            def up() -> bool:
                assert process.poll() is None, log_path.read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                        return response.status == 200
                except OSError:
                    return False

            wait_for(up, 60, " ".join(command[:2]))
        finally:
            process.terminate()
            process.wait(20)
    return log_path.read_text()


def test_create_app_as_gunicorn_calls_it_warns_once_in_one_block(monkeypatch, tmp_path, capfd):
    for name in [n for n in __import__("os").environ if n.startswith("DIGEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIGEST_DEMO", "true")
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path))
    create_app()  # what `gunicorn 'digest.web:create_app()'` runs
    err = capfd.readouterr().err
    assert err.count(WARNING) == 1 and "DIGEST_SECRET_KEY" in err and "forge" in err
    block = err[err.index("!" * 78) : err.rindex("!" * 78)]
    assert WARNING in block and "\n\n" not in block

    monkeypatch.setenv("DIGEST_SECRET_KEY", "a-real-secret-key-0123456789")
    create_app()
    assert capfd.readouterr().err == ""


def test_digest_serve_on_the_demo_key_warns_on_stderr(tmp_path):
    port = free_port()
    err = started([str(BIN / "digest"), "serve", "--port", str(port)], demo_env(tmp_path), port, tmp_path)
    assert err.count(WARNING) == 1 and "/outbox answers only on this machine" in err


def test_digest_demo_says_its_links_are_forgeable_without_the_servers_warning(tmp_path):
    port = free_port()
    err = started([str(BIN / "digest"), "demo", "--no-sample", "--port", str(port)], demo_env(tmp_path), port, tmp_path)
    assert "public demo key, so anyone can forge them" in err and WARNING not in err


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_on_the_demo_key_the_outbox_answers_this_machine(demo_key_settings, address):
    client = create_app(demo_key_settings, warn_demo_key=False).test_client()
    assert client.get("/outbox/", environ_base={"REMOTE_ADDR": address}).status_code == 200


@pytest.mark.parametrize("address", ["203.0.113.5", "10.0.0.7", "::2", "2001:db8::1", "", "unknown"])
def test_on_the_demo_key_the_outbox_is_not_there_for_anyone_else(demo_key_settings, address):
    client = create_app(demo_key_settings, warn_demo_key=False).test_client()
    remote = {"environ_base": {"REMOTE_ADDR": address}}
    assert client.get("/outbox/", **remote).status_code == 404
    assert client.get("/outbox/00000000000000000001-0123abcd.eml/raw", **remote).status_code == 404
    token = csrf_token(client.get("/", **remote).data)  # the session's token, good for every form
    assert client.post("/outbox/send-now", data={"csrf_token": token}, **remote).status_code == 404


def test_on_the_demo_key_a_request_forwarded_by_a_local_proxy_is_not_from_this_machine(demo_key_settings):
    local_proxy = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}}
    client = create_app(demo_key_settings, warn_demo_key=False).test_client()
    assert client.get("/outbox/", headers={"X-Forwarded-For": "203.0.113.5"}, **local_proxy).status_code == 404
    trusting = create_app(demo_key_settings.with_(trusted_proxies=1), warn_demo_key=False).test_client()
    assert trusting.get("/outbox/", headers={"X-Forwarded-For": "203.0.113.5"}, **local_proxy).status_code == 404
    assert trusting.get("/outbox/", headers={"X-Forwarded-For": "127.0.0.1"}, **local_proxy).status_code == 200


def test_with_a_real_key_the_demo_outbox_answers_as_before(demo_key_settings):
    client = create_app(demo_key_settings.with_(secret_key="a-real-secret-key-0123456789")).test_client()
    assert client.get("/outbox/", environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200
