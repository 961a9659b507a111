"""The Grafana dashboard as the chart ships it: every query parsed by Prometheus's own PromQL parser,
scoped by the job and namespace variables, using only series routectl exports; the panels an on-call
engineer needs are there.

Before parsing, Grafana's own interval variable and the dashboard's hidden constants are substituted as
Grafana does (so the constants' regular expressions are compiled by the parser too); `$job` and
`$namespace` stay as written, inside the label matchers they must scope.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chartlib import CHART, EXAMPLES, Helm, chart_values, one

from tests.monitoring.prom import PromTools, exported_series, metric_names, require

SCOPE = ('job=~"$job"', 'namespace=~"$namespace"')
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "30s"}
PANELS = {
    "convergence": "Routes desired vs programmed",
    "pool usage": "Pool usage",
    "table capacity": "Route table capacity left",
    "API calls by code": "API calls by code",
    "throttling": "Throttled calls",
    "write latency": "Write latency p95",
    "node to route latency": "Node to route latency",
    "leader": "Leader",
    "stuck workers": "Work queue",
}


@pytest.fixture(scope="module")
def tools() -> PromTools:
    return require("chart")


def _dashboard(helm: Helm, sets: dict[str, object] | None = None) -> dict[str, Any]:
    configmap = one(
        helm.template([EXAMPLES["aws"]], sets=sets or {}, show_only="templates/dashboard-configmap.yaml"),
        "ConfigMap",
    )
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard: dict[str, Any] = json.loads(configmap["data"]["routectl.json"])
    return dashboard


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", ())]


def _as_grafana_sends(expr: str, dashboard: dict[str, Any]) -> str:
    constants = {f"${n}": v["query"] for n, v in _variables(dashboard).items() if v["type"] == "constant"}
    for name, value in sorted({**GRAFANA_INTERVALS, **constants}.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def test_every_query_parses_is_scoped_and_uses_only_exported_series(helm: Helm, tools: PromTools) -> None:
    dashboard = _dashboard(helm)
    targets = _targets(dashboard)
    assert len(targets) >= 20
    parsed = tools.parse([_as_grafana_sends(expr, dashboard) for _, expr in targets])
    exported = exported_series() | {"up"}
    for (title, expr), result in zip(targets, parsed, strict=True):
        assert "error" not in result, f"panel {title!r}: {result.get('error')}: {expr}"
        assert metric_names(result) <= exported, f"panel {title!r} uses {metric_names(result) - exported}"
        for selector in result["selectors"]:
            assert all(m in selector["matchers"] for m in SCOPE), f"panel {title!r}: {selector} is not scoped"


def test_job_and_namespace_variables_list_routectl_targets_only(helm: Helm) -> None:
    variables = _variables(_dashboard(helm))
    for name in ("namespace", "job"):
        query = variables[name]["query"]["query"]
        found = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", query)
        assert found is not None, query
        assert found.group(1) == "routectl_build_info"
        assert found.group(3) == name
    assert (
        variables["job"]["query"]["query"]
        == 'label_values(routectl_build_info{namespace=~"$namespace"}, job)'
    )
    assert "routectl_build_info" in exported_series()


def test_the_panels_on_call_needs_are_there(helm: Helm) -> None:
    titles = {p["title"] for p in _dashboard(helm)["panels"]}
    missing = {need: title for need, title in PANELS.items() if title not in titles}
    assert missing == {}


def test_throttled_calls_count_the_codes_the_alert_counts(helm: Helm) -> None:
    """The chart writes metrics.prometheusRule.throttleErrorCodes into the dashboard's constant; the
    file's own default (for an import by hand) is the chart's default."""
    default = "|".join(chart_values("aws")["metrics"]["prometheusRule"]["throttleErrorCodes"])
    shipped = json.loads((CHART / "dashboards" / "routectl.json").read_text())
    assert _variables(shipped)["throttle_codes"]["query"] == default
    assert _variables(_dashboard(helm))["throttle_codes"]["query"] == default
    custom = _dashboard(helm, {"metrics.prometheusRule.throttleErrorCodes": ["SlowDown", "Busy.*"]})
    assert _variables(custom)["throttle_codes"]["query"] == "SlowDown|Busy.*"
    throttled = [expr for title, expr in _targets(custom) if title == "Throttled calls"]
    assert throttled
    assert all('code=~"$throttle_codes"' in expr for expr in throttled)
