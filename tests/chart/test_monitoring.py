"""Optional monitoring objects: the ServiceMonitor scrapes the metrics Service; all are off by default.
The alerts are tested in test_alerts.py, the dashboard in test_dashboard.py."""

from __future__ import annotations

from chartlib import EXAMPLES, Helm, Manifest, one


def _monitored(helm: Helm) -> list[Manifest]:
    return helm.template([EXAMPLES["aws"]])  # the AWS example turns every monitoring object on


def test_service_monitor_scrapes_the_metrics_port_of_the_metrics_service(helm: Helm) -> None:
    objects = _monitored(helm)
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service["spec"]["ports"][0]["name"]]


def test_alerts_are_scoped_to_the_service_monitors_series(helm: Helm) -> None:
    """The labels prometheus-operator gives a ServiceMonitor's series (namespace, service) are the ones
    every alert selects."""
    objects = _monitored(helm)
    service = one(objects, "Service")["metadata"]
    (group,) = one(objects, "PrometheusRule")["spec"]["groups"]
    scope = f'namespace="{service["namespace"]}",service="{service["name"]}"'
    assert all(scope in rule["expr"] for rule in group["rules"])


def test_monitoring_objects_are_off_by_default(helm: Helm) -> None:
    kinds = {o["kind"] for o in helm.template([EXAMPLES["gcp"]])}
    assert kinds.isdisjoint({"ServiceMonitor", "PrometheusRule", "ConfigMap"})
