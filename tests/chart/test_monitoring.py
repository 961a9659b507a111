"""Optional monitoring objects: the ServiceMonitor scrapes the metrics Service, the alerts and the
dashboard use the metric names routectl/metrics.py defines."""

from __future__ import annotations

import json

from chartlib import EXAMPLES, Helm, Manifest, one

ALERT_METRICS = {
    "RoutectlNoLeader": ["leader_election_master_status"],
    "RoutectlRouteTableQuotaNearlyFull": ["routectl_routes_programmed", "routectl_route_table_quota"],
    "RoutectlIPAMPoolNearlyExhausted": ["routectl_ipam_cidrs_used", "routectl_ipam_cidrs_capacity"],
    "RoutectlNodeNetworkUnavailable": ["kube_node_status_condition", "NetworkUnavailable"],
    "RoutectlReconcileErrors": ["routectl_reconcile_errors_total"],
}


def _monitored(helm: Helm) -> list[Manifest]:
    return helm.template([EXAMPLES["aws"]])  # the AWS example turns every monitoring object on


def test_service_monitor_scrapes_the_metrics_port_of_the_metrics_service(helm: Helm) -> None:
    objects = _monitored(helm)
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service["spec"]["ports"][0]["name"]]


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
    configmap = one(_monitored(helm), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["routectl.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert all(m in exprs for metrics in ALERT_METRICS.values() for m in metrics)


def test_monitoring_objects_are_off_by_default(helm: Helm) -> None:
    kinds = {o["kind"] for o in helm.template([EXAMPLES["gcp"]])}
    assert kinds.isdisjoint({"ServiceMonitor", "PrometheusRule", "ConfigMap"})
