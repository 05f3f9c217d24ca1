"""docker-compose.yml is checked by reading it (no Docker engine runs here)."""

from pathlib import Path

import yaml

from digest.config import VARIABLES, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_has_every_service_of_the_stack():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "mailpit"} <= set(SERVICES)


def test_app_services_only_use_variables_the_settings_read():
    for name in ("migrate", "web", "worker", "beat"):
        env = SERVICES[name]["environment"]
        unknown = {k for k in env if k.startswith("DIGEST_")} - set(VARIABLES)
        assert not unknown, f"{name} sets variables the code never reads: {unknown}"
        assert {"DIGEST_DATABASE_URL", "DIGEST_BROKER_URL", "DIGEST_SMTP_URL", "DIGEST_SECRET_KEY"} <= set(env)


def test_compose_settings_parse_with_the_codes_own_parser():
    env = {k: v for k, v in SERVICES["worker"]["environment"].items()}
    env["DIGEST_SECRET_KEY"] = "x" * 32  # the compose file interpolates it from .env
    env["DIGEST_BASE_URL"] = "http://localhost:8000"
    env["DIGEST_MAIL_FROM"] = "Trending Papers <digest@example.org>"
    settings = load_settings(env)
    assert settings.database_url.startswith("postgresql+psycopg://digest:digest@postgres")
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.smtp.host == "mailpit" and settings.smtp.port == 1025


def test_commands_point_at_real_entry_points():
    assert SERVICES["migrate"]["command"] == ["digest", "db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert "digest.web:create_app()" in SERVICES["web"]["command"]
    assert SERVICES["worker"]["command"][:3] == ["celery", "-A", "workers.app"]
    assert SERVICES["beat"]["command"][:4] == ["celery", "-A", "workers.app", "beat"]
    import importlib

    assert callable(importlib.import_module("digest.web").create_app)


def test_worker_scales_without_fixed_names_or_ports():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_services_have_health_checks_and_wait_for_dependencies():
    for name in ("postgres", "redis", "web", "mailpit"):
        assert "healthcheck" in SERVICES[name], name
    for name in ("web", "worker", "beat"):
        deps = SERVICES[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_example_env_file_names_only_known_variables():
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line.lstrip("# ").startswith("DIGEST_")
    }
    assert names and names <= set(VARIABLES)
