"""Settings are parsed strictly: a bad value stops start-up with a message naming the variable."""

import subprocess
import sys

import pytest

from digest.config import DEMO_SECRET_KEY, ConfigError, load_settings

KEY = {"DIGEST_SECRET_KEY": "k" * 32}


def test_defaults_use_a_sqlite_file_in_the_data_folder():
    s = load_settings({**KEY, "DIGEST_DATA_DIR": "/tmp/x"})
    assert s.database_url == "sqlite:////tmp/x/digest.sqlite3"
    assert s.broker_url is None and s.smtp is None
    assert s.source_url == "https://huggingface.co/api/daily_papers"


def test_a_sqlite_url_may_set_how_long_a_write_waits_for_another_writer(tmp_path):
    from sqlalchemy import text

    from digest.db import engine_for

    url = load_settings({**KEY, "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite3?timeout=2.5"}).database_url
    with engine_for(url).connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2500
    engine_for(url).dispose()


def test_postgresql_url_gets_the_psycopg_driver():
    s = load_settings({**KEY, "DIGEST_DATABASE_URL": "postgresql://u:p@db:5432/digest"})
    assert s.database_url == "postgresql+psycopg://u:p@db:5432/digest"


@pytest.mark.parametrize(
    "url, host, port, ssl, starttls, user, password",
    [
        ("smtp://mail.example.org", "mail.example.org", 25, False, False, None, None),
        ("smtp://u%40x:p%3Aw@mail:2525?starttls=true", "mail", 2525, False, True, "u@x", "p:w"),
        ("smtps://u:p@mail", "mail", 465, True, False, "u", "p"),
        ("smtp://mail?starttls=true", "mail", 587, False, True, None, None),
    ],
)
def test_smtp_url_forms(url, host, port, ssl, starttls, user, password):
    smtp = load_settings({**KEY, "DIGEST_SMTP_URL": url}).smtp
    assert (smtp.host, smtp.port, smtp.ssl, smtp.starttls, smtp.username, smtp.password) == (host, port, ssl, starttls, user, password)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DIGEST_DATABASE_URL", "mysql://x/y"),
        ("DIGEST_DATABASE_URL", "not a url"),
        ("DIGEST_DATABASE_URL", "sqlite:///x.sqlite3?timeout=soon"),
        ("DIGEST_BROKER_URL", "amqp://guest@localhost//"),
        ("DIGEST_SMTP_URL", "http://mail"),
        ("DIGEST_SMTP_URL", "smtp://mail:notaport"),
        ("DIGEST_SMTP_URL", "smtps://mail?starttls=true"),
        ("DIGEST_SMTP_URL", "smtp://mail?tls=yes"),
        ("DIGEST_SOURCE_URL", "ftp://example.org/papers"),
        ("DIGEST_BASE_URL", "example.org"),
        ("DIGEST_MAIL_FROM", "no address here"),
        ("DIGEST_MAIL_FROM", "Bücher <digest@bücher.example>"),
        ("DIGEST_CLAIM_TIMEOUT", "ten"),
        ("DIGEST_CLAIM_TIMEOUT", "1"),
        ("DIGEST_DIGEST_SIZE", "500"),
        ("DIGEST_DEMO", "maybe"),
        ("DIGEST_SECRET_KEY", "short"),
        ("DIGEST_TRUSTED_PROXIES", "all"),
        ("DIGEST_TRUSTED_PROXIES", "9"),
        ("DIGEST_BOUNCE_DOMAIN", "bounces@example.org"),
        ("DIGEST_BOUNCE_DOMAIN", "localhost"),
        ("DIGEST_BOUNCE_DOMAIN", "bounces.bücher.example"),
        ("DIGEST_BOUNCE_DOMAIN", "-bounces.example.org"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(ConfigError) as info:
        load_settings({**KEY, variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")


def test_the_bounce_domain_is_read_as_dns_has_it_and_unset_leaves_mail_from_as_the_envelope_sender():
    assert load_settings({**KEY, "DIGEST_BOUNCE_DOMAIN": " Bounces.Example.org. "}).bounce_domain == "bounces.example.org"
    assert load_settings({**KEY, "DIGEST_BOUNCE_DOMAIN": "xn--bcher-kva.example"}).bounce_domain == "xn--bcher-kva.example"
    assert load_settings(KEY).bounce_domain is None


def test_refuses_to_run_without_a_secret_key_outside_demo_mode():
    with pytest.raises(ConfigError) as info:
        load_settings({})
    assert info.value.variable == "DIGEST_SECRET_KEY"
    assert load_settings({}, demo=True).secret_key == DEMO_SECRET_KEY


def test_cli_reports_a_bad_setting_in_one_line_without_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DIGEST_SECRET_KEY": "k" * 32, "DIGEST_SMTP_URL": "smtp://mail:port"}
    result = subprocess.run([sys.executable, "-m", "digest", "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert "DIGEST_SMTP_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_read_only_commands_run_without_a_secret_key_and_could_sign_nothing(settings):
    """`digest stats`, `send --dry-run` and `subscribers export` only read and make no link, so they
    run beside the demo without DIGEST_SECRET_KEY; every command that may sign still refuses."""
    from click.testing import CliRunner
    from support import subprocess_env

    from digest import tokens
    from digest.cli import main

    env = {**subprocess_env(settings), "DIGEST_SECRET_KEY": None}
    for args in (["stats"], ["send", "--dry-run"], ["subscribers", "export"]):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, (args, result.output)
        assert "DIGEST_SECRET_KEY" not in result.output
    for args in (["send"], ["subscribers", "import", "-"]):
        result = CliRunner().invoke(main, args, env=env, input="email\nann@example.org\n")
        assert result.exit_code == 2 and "DIGEST_SECRET_KEY: not set" in result.output, (args, result.output)

    read_only = load_settings({}, signs=False)
    assert read_only.secret_key == "" and not read_only.demo_key
    with pytest.raises(RuntimeError, match="signs no link"):
        tokens.make_token(read_only, "preferences", "x")
    assert load_settings({"DIGEST_DEMO": "true"}, signs=False).secret_key == DEMO_SECRET_KEY
