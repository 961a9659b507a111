"""Optional monitoring objects: the ServiceMonitor scrapes the metrics Service over HTTPS with a token,
the alerts select the series that ServiceMonitor produces, and the prometheus-operator objects are
rendered only where the cluster serves their API. The alerts themselves are tested in test_alerts.py,
the dashboard in test_dashboard.py."""

from __future__ import annotations

from chartlib import EXAMPLES, MONITORING_API, Helm, Manifest, of_kind, one


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


def test_alerts_are_scoped_to_the_service_monitors_series(helm: Helm) -> None:
    """prometheus-operator labels a ServiceMonitor's series with the Service's namespace and name: those
    are the labels every alert selects."""
    objects = _monitored(helm)
    service = one(objects, "Service")["metadata"]
    (group,) = one(objects, "PrometheusRule")["spec"]["groups"]
    scope = f'namespace="{service["namespace"]}",service="{service["name"]}"'
    assert all(scope in rule["expr"] for rule in group["rules"])


def test_monitoring_objects_are_off_by_default(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["gcp"]], api_versions=[MONITORING_API])
    assert {o["kind"] for o in objects}.isdisjoint({"ServiceMonitor", "PrometheusRule"})
    assert [c["metadata"]["name"] for c in of_kind(objects, "ConfigMap")] == ["routectl"]  # no dashboard
