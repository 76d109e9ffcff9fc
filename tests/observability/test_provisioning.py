"""The compose monitoring stack as files (no Docker engine runs here): Prometheus scrapes the
app's /metrics, Grafana gets the data source and the dashboard, and every dashboard query
names a metric the app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.urls import resolve

from fitness.observability import catalog

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "fitness.json"
#: A metric name in a PromQL expression (label names and values, functions and keywords excluded below).
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_WORDS = {
    "sum", "rate", "histogram_quantile", "clamp_min", "min", "max", "avg", "by", "without", "le", "status",
    "method", "span", "queue", "outcome", "version", "view", "e", "increase",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def host_path(volume: str) -> tuple[Path, str]:
    source, target = volume.split(":")[:2]
    return (DOCKER / source).resolve(), target


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    without_labels = re.sub(r"\{[^}]*\}", "", without_ranges)
    without_groups = re.sub(r"\b(by|without)\s*\([^)]*\)", "", without_labels)
    return {w for w in IDENTIFIER.findall(without_groups) if w not in PROMQL_WORDS}


def test_every_dashboard_query_names_an_exported_metric():
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= catalog.EXPORTED, f"{expr!r} names {names - catalog.EXPORTED}, not exported"


def test_the_dashboard_covers_what_the_issue_asks():
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    for name in (
        catalog.SESSIONS_TOTAL,  # uploads and counts per minute, failure rate
        f"{catalog.COUNTING_SECONDS}_bucket",  # p50 / p95
        catalog.QUEUE_MESSAGES,
        catalog.WEBHOOK_DELIVERIES_TOTAL,
        catalog.LIVE_EXACT,
        catalog.LIVE_WITHIN_1,
        catalog.LIVE_COUNT_MAE,
    ):
        assert name in used, name
    text = DASHBOARD.read_text()
    assert "histogram_quantile(0.5," in text
    assert "histogram_quantile(0.95," in text


def test_the_metric_name_parser_sees_unknown_names():
    assert metric_names('sum by (le) (rate(fitness_nope_bucket{span="worker"}[5m]))') == {"fitness_nope_bucket"}


def test_prometheus_scrapes_the_web_service_metrics_path(compose):
    services = compose["services"]
    prometheus = services["prometheus"]
    config_file = next(host for host, target in map(host_path, prometheus["volumes"]) if target.endswith(".yml"))
    config = yaml.safe_load(config_file.read_text())
    (job,) = config["scrape_configs"]
    assert resolve(job["metrics_path"]).url_name == "metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services
    assert host == "web"
    assert f"gunicorn fitness.wsgi:application --bind 0.0.0.0:{port}" in services["web"]["command"]
    # The bearer token: written from FITNESS_METRICS_TOKEN to the file the config reads.
    assert job["authorization"]["credentials_file"] in prometheus["entrypoint"][-1]
    assert "FITNESS_METRICS_TOKEN" in prometheus["environment"]
    assert "FITNESS_METRICS_TOKEN" in services["web"]["environment"]
    assert host in services["web"]["environment"]["DJANGO_ALLOWED_HOSTS"]


def test_grafana_provisions_the_data_source_and_the_dashboard(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(map(host_path, grafana["volumes"][:2]))
    provisioning = next(host for host, target in mounts.items() if target == "/etc/grafana/provisioning")
    dashboards_dir = next(host for host, target in mounts.items() if target == "/var/lib/grafana/dashboards")
    assert (dashboards_dir / DASHBOARD.name).is_file()

    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]

    (provider,) = yaml.safe_load((provisioning / "dashboards" / "fitness.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].endswith(DASHBOARD.name)

    dashboard = json.loads(DASHBOARD.read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    uids |= {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]}
    assert uids == {source["uid"]}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_web_sums_its_gunicorn_workers_http_metrics(compose):
    web = compose["services"]["web"]
    assert web["environment"]["PROMETHEUS_MULTIPROC_DIR"] in web["tmpfs"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in compose["services"]["worker"]["environment"]
