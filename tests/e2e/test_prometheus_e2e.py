"""The chart's alerts on real parts: a real Prometheus scrapes a real routectl process (the chart's RBAC
on a real kube-apiserver, moto as the cloud) every second and evaluates the chart's own rules, rendered
by helm with every `for:` shortened through values. It scrapes as the chart's ServiceMonitor does: HTTPS,
with a token of the scraper the chart's values bind to the metrics-reader role, which routectl has the
API server review (TokenReview, SubjectAccessReview) on every scrape.

A healthy run fires no alert, every rule evaluates without error, every dashboard query runs, and
`promtool check metrics` finds nothing to lint in the live /metrics; the cloud answering
`UnauthorizedOperation` (an EC2 fault proxy in front of moto) fires `RoutectlCloudPermissionDenied`;
tables at their quota fire `RoutectlRouteTableCapacityLow`. Each scenario is bounded (about a minute).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.chart.chartlib import CHART, EXAMPLES, MONITORING_API, Helm, Manifest, chart_values, locate, one
from tests.e2e.faultproxy import Ec2FaultProxy
from tests.e2e.prometheus_server import PrometheusServer
from tests.e2e.test_controller_e2e import Cloud, add_nodes, new_cloud, setup_for, wait_routed
from tests.monitoring.prom import PromTools, require, write_rules
from tests.support.apiserver import ControlPlane
from tests.support.cluster import Installed, Kube, cleaned
from tests.support.routectl_proc import Routectl, RoutectlRunner, Setup, denials, denials_checked, eventually

FOR = "10s"
"""Every alert's `for:` here (production: 5-15 min); the rules are evaluated every second."""
FOR_DOWN = "60s"
"""RoutectlDown's: a Python process needs a few seconds before its first answer, and Prometheus runs
from the moment routectl is started, so the whole run is watched."""
WINDOW_S = 20.0
"""How long a converged healthy run is watched on top of the run itself: twice FOR."""
FIRE_TIMEOUT_S = 75.0
CIDR = "10.244.0.0/16"
SERVICE = "routectl-metrics"


@pytest.fixture(scope="module")
def tools() -> PromTools:
    return require("e2e")


@pytest.fixture(scope="module")
def rules(tools: PromTools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's PrometheusRule for release routectl in kube-system, every `for:` shortened."""
    helm = Helm(locate())

    def render(sets: dict[str, object]) -> Manifest:
        objects = helm.template(
            [EXAMPLES["aws"]],
            sets=sets,
            api_versions=[MONITORING_API],
            show_only="templates/prometheusrule.yaml",
        )
        return one(objects, "PrometheusRule")

    (group,) = render({})["spec"]["groups"]
    durations = {
        rule["alert"]: FOR_DOWN if rule["alert"] == "RoutectlDown" else FOR for rule in group["rules"]
    }
    rendered = render({f"metrics.prometheusRule.for.{alert}": value for alert, value in durations.items()})
    assert {rule["alert"]: rule["for"] for rule in rendered["spec"]["groups"][0]["rules"]} == durations
    path = write_rules(rendered, tmp_path_factory.mktemp("rules") / "rules.yaml")
    checked = tools.run_promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return path


@pytest.fixture(scope="module")
def scraper_token(
    control_plane: ControlPlane, admin_api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A token of the ServiceAccount the AWS example lists in metrics.readers (bound to the chart's
    metrics-reader role by the chart's RBAC), in a file as Prometheus reads it."""
    (reader,) = chart_values("aws")["metrics"]["readers"]
    core = client.CoreV1Api(admin_api)
    for create in (
        lambda: core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=reader["namespace"]))
        ),
        lambda: core.create_namespaced_service_account(
            reader["namespace"], client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=reader["name"]))
        ),
    ):
        try:
            create()
        except ApiException as err:
            if err.status != 409:
                raise
    path = tmp_path_factory.mktemp("scraper") / "token"
    path.write_text(control_plane.service_account_token(reader["namespace"], reader["name"]))
    return path


@dataclass(frozen=True, slots=True)
class Scene:
    """One scenario: an empty cluster as the chart's identity, a fresh VPC, controllers to start, and
    Prometheus to scrape them."""

    kube: Kube
    cloud: Cloud
    runner: RoutectlRunner
    installed: Installed
    moto_endpoint: str
    tools: PromTools
    rules: Path
    scraper_token: Path
    workdir: Path

    def setup(self, endpoint: str = "") -> Setup:
        return setup_for(self.installed, self.cloud, endpoint or self.moto_endpoint, CIDR, 24)

    def start(self, setup: Setup) -> Routectl:
        """routectl with /metrics as the chart serves it: HTTPS, each scrape reviewed by the API server."""
        return self.runner.start("routectl", setup, metrics_secure=True)

    def prometheus(self, process: Routectl) -> PrometheusServer:
        """A Prometheus scraping `process` as the chart's ServiceMonitor would, with the labels it gives."""
        labels = {"job": SERVICE, "namespace": self.installed.namespace, "service": SERVICE}
        target = f"127.0.0.1:{process.metrics_port}"
        return PrometheusServer(self.tools, self.workdir, [target], labels, self.rules, self.scraper_token)


@pytest.fixture
def scene(
    admin_api: client.ApiClient,
    installed: Installed,
    moto_endpoint: str,
    tools: PromTools,
    rules: Path,
    scraper_token: Path,
    tmp_path: Path,
) -> Iterator[Scene]:
    with cleaned(Kube(admin_api, installed)) as kube, denials_checked(tmp_path) as runner:
        cloud = new_cloud(moto_endpoint)
        yield Scene(kube, cloud, runner, installed, moto_endpoint, tools, rules, scraper_token, tmp_path)


def scraping(prometheus: PrometheusServer) -> None:
    """Wait until Prometheus's scrape of routectl succeeds; fail with the scrape's error."""
    errors: list[str] = []

    def up() -> bool:
        errors[:] = prometheus.scrape_errors()
        return not errors and prometheus.query(f'up{{job="{SERVICE}"}} == 1') != []

    try:
        eventually(up, 60, "Prometheus scrapes routectl")
    except AssertionError as err:
        raise AssertionError(f"{err}: {errors}") from None


def scrape(process: Routectl, token: Path) -> str:
    """/metrics as the scraper gets it: HTTPS (self-signed, not verified) with its bearer token."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(f"https://127.0.0.1:{process.metrics_port}/metrics")
    request.add_header("Authorization", f"Bearer {token.read_text().strip()}")
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return str(response.read().decode())


def with_quota(setup: Setup, quota: int) -> Setup:
    cloud = tuple(
        f"--route-table-quota={quota}" if f.startswith("--route-table-quota=") else f for f in setup.cloud
    )
    return replace(setup, cloud=cloud)


def fired(prometheus: PrometheusServer, alert: str, count: int = 1) -> list[dict[str, Any]]:
    """The firing instances of `alert`, once there are `count` (bounded wait)."""
    found: list[dict[str, Any]] = []

    def firing() -> bool:
        found[:] = [a for a in prometheus.alerts() if a["labels"]["alertname"] == alert]
        return len(found) >= count

    eventually(firing, FIRE_TIMEOUT_S, f"{count} x {alert} firing on the real Prometheus", poll_s=1.0)
    return found


def test_a_healthy_run_fires_no_alert_and_every_rule_and_dashboard_query_evaluates(scene: Scene) -> None:
    """Watched from the process's start: leader election, allocation, routes in both tables, steady."""
    kube, cloud = scene.kube, scene.cloud
    process = scene.start(scene.setup())
    with scene.prometheus(process) as prometheus:
        started = time.monotonic()
        scraping(prometheus)
        names = ["node-a", "node-b", "node-c"]
        add_nodes(kube, cloud, *names)
        wait_routed(kube, cloud, names, CIDR)
        eventually(lambda: prometheus.query("routectl_converged == 1") != [], 30, "Prometheus sees converged")
        time.sleep(WINDOW_S)

        watched = f"{int(time.monotonic() - started) + 2}s"
        ever_fired = prometheus.query(f'count_over_time(ALERTS{{alertstate="firing"}}[{watched}])')
        assert ever_fired == [], f"alerts fired in a healthy run: {[a['metric'] for a in ever_fired]}"
        unhealthy = [r for r in prometheus.rules() if r["health"] != "ok"]
        assert unhealthy == [], unhealthy
        for _, expr in dashboard_queries(scene.installed.namespace):
            prometheus.query(expr)  # fails with Prometheus's error when a query does not evaluate
        for always in ("routectl_build_info", "process_resident_memory_bytes", "workqueue_depth"):
            assert prometheus.query(f'{always}{{job="{SERVICE}"}}') != [], always
        live = scrape(process, scene.scraper_token)

    linted = subprocess.run(
        [str(scene.tools.promtool), "check", "metrics"],
        input=live,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout.strip() == linted.stderr.strip() == ""
    assert denials(process.log()) == []


def test_the_cloud_refusing_writes_fires_cloud_permission_denied(scene: Scene) -> None:
    add_nodes(scene.kube, scene.cloud, "node-a", "node-b")
    deny = {"CreateRoute": (403, "UnauthorizedOperation")}
    with Ec2FaultProxy(scene.moto_endpoint, deny) as proxy:
        process = scene.start(scene.setup(proxy.url))
        with scene.prometheus(process) as prometheus:
            scraping(prometheus)
            alerts = fired(prometheus, "RoutectlCloudPermissionDenied")
            unrouted = fired(prometheus, "RoutectlNodesNetworkUnavailable")
            also = prometheus.firing()
    assert proxy.denied("CreateRoute") > 0
    assert {(a["labels"]["provider"], a["labels"]["api"], a["labels"]["code"]) for a in alerts} == {
        ("aws", "CreateRoute", "UnauthorizedOperation")
    }
    (alert,) = alerts
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("/docs/runbooks.md#routectlcloudpermissiondenied")
    assert unrouted
    assert also <= {
        "RoutectlCloudPermissionDenied",
        "RoutectlNodesNetworkUnavailable",
        "RoutectlNotConverged",
    }
    assert all(node.network is not None and node.network[0] == "True" for node in scene.kube.nodes().values())


def test_route_tables_at_their_quota_fire_table_capacity_low(scene: Scene) -> None:
    """Quota 3: the VPC's local IPv4 route counts, so two of the three nodes fit in each table."""
    names = ("node-a", "node-b", "node-c")
    add_nodes(scene.kube, scene.cloud, *names)
    tables = scene.cloud.tables
    process = scene.start(with_quota(scene.setup(), 3))
    with scene.prometheus(process) as prometheus:
        scraping(prometheus)
        alerts = fired(prometheus, "RoutectlRouteTableCapacityLow", count=len(tables))
        left = prometheus.query(f'routectl_route_table_capacity_remaining{{job="{SERVICE}"}}')
    assert {(a["labels"]["table"], a["labels"]["family"]) for a in alerts} == {(t, "ipv4") for t in tables}
    assert {a["annotations"]["summary"] for a in alerts} == {
        f"Route table {t} (ipv4) is 100% full." for t in tables
    }
    assert {(r["metric"]["table"], r["metric"]["family"], r["value"][1]) for r in left} == {
        (t, "ipv4", "0") for t in tables
    }
    for table in tables:
        assert len(scene.cloud.routes(table, CIDR)) == 2
    assert any("RouteQuotaExceeded" in scene.kube.reasons(name) for name in names)


def dashboard_queries(namespace: str) -> list[tuple[str, str]]:
    """The dashboard's queries as Grafana would send them for this release's job and namespace."""
    dashboard = json.loads((CHART / "dashboards" / "routectl.json").read_text())
    values = {v["name"]: v.get("query") for v in dashboard["templating"]["list"] if v["type"] == "constant"}
    values.update({"job": SERVICE, "namespace": namespace, "__rate_interval": "1m"})
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for name in sorted(values, key=len, reverse=True):
                expr = expr.replace(f"${name}", str(values[name]))
            queries.append((panel["title"], expr))
    assert queries
    return queries
