"""docker-compose.yml is checked by reading it (no Docker engine runs here)."""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

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


def test_compose_settings_parse_with_the_codes_own_parser(tmp_path):
    env = {k: v for k, v in SERVICES["worker"]["environment"].items()}
    assert env["DIGEST_METRICS_DIR"] == "/var/lib/digest/metrics"  # made by the Dockerfile; here, a folder of the test's
    env["DIGEST_METRICS_DIR"] = str(tmp_path)
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


# ---------------------------------------------------------------- the monitoring profile


def _mounted_files(service: dict) -> list[Path]:
    """The files and folders of this checkout a service mounts (``./…:/in/the/container``)."""
    return [ROOT / volume.split(":")[0] for volume in service.get("volumes", []) if volume.startswith("./")]


def test_monitoring_is_an_optional_profile_with_prometheus_and_grafana():
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["monitoring"], name
        mounted = _mounted_files(SERVICES[name])
        assert mounted and all(path.exists() for path in mounted), f"{name} mounts files this checkout lacks: {mounted}"
    for name in ("postgres", "redis", "web", "worker", "beat", "migrate", "mailpit"):
        assert "profiles" not in SERVICES[name], f"{name} must start without --profile"
    for name in ("web", "worker", "beat"):  # every process counts into one shared folder that web's /metrics reads
        assert SERVICES[name]["environment"]["DIGEST_METRICS_DIR"] == "/var/lib/digest/metrics"
        assert "metrics:/var/lib/digest/metrics" in SERVICES[name]["volumes"]
    assert "metrics" in COMPOSE["volumes"]
    assert "/var/lib/digest/metrics" in (ROOT / "Dockerfile").read_text()  # made in the image, owned by its user


def test_prometheus_scrapes_web_with_the_bearer_token():
    config = yaml.safe_load((ROOT / "deploy/monitoring/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["web:8000"]
    assert job["authorization"]["type"] == "Bearer"
    token_file = job["authorization"]["credentials_file"]
    command = " ".join(SERVICES["prometheus"]["command"])
    assert f"> {token_file}" in command and "$$DIGEST_METRICS_TOKEN" in command  # written from .env at start
    assert "DIGEST_METRICS_TOKEN" in (ROOT / ".env.example").read_text()


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard():
    root = ROOT / "deploy/monitoring/grafana"
    (source,) = yaml.safe_load((root / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((root / "provisioning/dashboards/digest.yml").read_text())["providers"]
    assert "/var/lib/grafana/dashboards" in " ".join(SERVICES["grafana"]["volumes"])
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((root / "dashboards/paper-digest.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}


def test_the_dashboards_queries_name_metrics_that_metrics_serves(settings, session, redis_url):
    """Every ``digest_…`` name in a panel's query is one /metrics serves (counters as ``…_total``,
    histograms as ``…_bucket`` / ``_sum`` / ``_count``), and every metric has a panel."""
    from digest.models import IngestRun
    from digest.web.metrics import exposition

    session.add(IngestRun(source="test", finished_at=datetime.now(timezone.utc), fetched=0, new=0, updated=0, skipped=0))
    session.commit()  # the last ingest's time is served once there was one
    text = exposition(settings.with_(broker_url=redis_url)).decode()
    served = set()
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # when a series began, in one process's registry: nothing to plot
            continue
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        served |= {family.name + suffix for suffix in suffixes}
    dashboard = json.loads((ROOT / "deploy/monitoring/grafana/dashboards/paper-digest.json").read_text())
    queried = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"\bdigest_[a-z_]+", t["expr"])}
    assert queried and queried <= served, f"queries name metrics /metrics does not serve: {queried - served}"
    families = {name.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for name in served}
    shown = {name.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for name in queried}
    assert families <= shown, f"metrics without a panel: {families - shown}"
