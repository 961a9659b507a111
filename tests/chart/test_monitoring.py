"""Optional monitoring objects: the ServiceMonitor scrapes the metrics Service over HTTPS with a token,
the alerts and the dashboard use the metric names routectl/metrics.py defines, and the prometheus-operator
objects are rendered only where the cluster serves their API."""

from __future__ import annotations

import json

from chartlib import EXAMPLES, MONITORING_API, Helm, Manifest, of_kind, one

ALERT_METRICS = {
    "RoutectlNoLeader": ["leader_election_master_status"],
    "RoutectlRouteTableQuotaNearlyFull": ["routectl_routes_programmed", "routectl_route_table_quota"],
    "RoutectlIPAMPoolNearlyExhausted": ["routectl_ipam_cidrs_used", "routectl_ipam_cidrs_capacity"],
    "RoutectlNodeNetworkUnavailable": ["kube_node_status_condition", "NetworkUnavailable"],
    "RoutectlReconcileErrors": ["routectl_reconcile_errors_total"],
}


def _monitored(helm: Helm) -> list[Manifest]:
    # The AWS example turns every monitoring object on; the cluster serves the operator's API.
    return helm.template([EXAMPLES["aws"]], api_versions=[MONITORING_API])


def test_service_monitor_scrapes_the_metrics_port_of_the_metrics_service(helm: Helm) -> None:
    objects = _monitored(helm)
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service["spec"]["ports"][0]["name"]]


def test_service_monitor_scrapes_https_with_the_prometheus_token(helm: Helm) -> None:
    (endpoint,) = one(_monitored(helm), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}  # self-signed: encrypted, not verified


def test_operator_objects_need_their_api(helm: Helm) -> None:
    """Without monitoring.coreos.com/v1 (helm's default capabilities) an install must not fail on
    unknown kinds; the e2e tier installs with and without the CRDs for real, NOTES included."""
    objects = helm.template([EXAMPLES["aws"]])
    assert of_kind(objects, "ServiceMonitor") == of_kind(objects, "PrometheusRule") == []
    assert of_kind(_monitored(helm), "ServiceMonitor") != []


def test_alerts_watch_the_documented_metrics_for_their_durations(helm: Helm) -> None:
    (group,) = one(_monitored(helm), "PrometheusRule")["spec"]["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == set(ALERT_METRICS)
    for alert, metrics in ALERT_METRICS.items():
        assert all(m in rules[alert]["expr"] for m in metrics), alert
    assert rules["RoutectlNoLeader"]["for"] == "5m"
    assert rules["RoutectlNodeNetworkUnavailable"]["for"] == "10m"
    assert "> 0.8" in rules["RoutectlRouteTableQuotaNearlyFull"]["expr"]
    assert "> 0.9" in rules["RoutectlIPAMPoolNearlyExhausted"]["expr"]


def test_dashboard_configmap_holds_a_grafana_dashboard_of_the_alerted_metrics(helm: Helm) -> None:
    (configmap,) = [
        c for c in of_kind(_monitored(helm), "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["routectl.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert all(m in exprs for metrics in ALERT_METRICS.values() for m in metrics)


def test_monitoring_objects_are_off_by_default(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["gcp"]], api_versions=[MONITORING_API])
    assert {o["kind"] for o in objects}.isdisjoint({"ServiceMonitor", "PrometheusRule"})
    assert [c["metadata"]["name"] for c in of_kind(objects, "ConfigMap")] == ["routectl"]  # no dashboard
