"""The chart's alerts, rendered by the pinned helm, checked and unit-tested by the real promtool.

Every alert has cases that make it fire and cases that keep it quiet (healthy input, a condition shorter
than its `for:`, another release's series), evaluated by `promtool test rules` on the rules exactly as
the chart renders them with its default values. Expected annotations are compared in full: the summary
as written here, the runbook URL as the chart's default base + the alert's section of docs/runbooks.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import EXAMPLES, MONITORING_API, NAMESPACE, REPO, Helm, Manifest, chart_values, one

from tests.monitoring.prom import PromTools, exported_series, metric_names, require, write_rules

RUNBOOKS = REPO / "docs" / "runbooks.md"
SERVICE = "routectl-metrics"
SCOPE = f'namespace="{NAMESPACE}",service="{SERVICE}",job="{SERVICE}"'
A = f'{SCOPE},instance="10.0.0.1:10290",pod="routectl-a"'
B = f'{SCOPE},instance="10.0.0.2:10290",pod="routectl-b"'
LEASE = 'name="routectl"'
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself; every other name an alert uses must be one routectl exports."""


@dataclass(frozen=True, slots=True)
class Case:
    """One promtool test group: input series, and at `at` the alerts expected to fire — each as
    (its labels besides severity, its summary); an empty `fires` means it must not fire."""

    alert: str
    name: str
    series: dict[str, str]
    at: str
    fires: list[tuple[dict[str, str], str]] = field(default_factory=list)


def quiet(alert: str, name: str, series: dict[str, str], at: str) -> Case:
    return Case(alert, name, series, at, [])


def calls(provider: str, api: str, code: str) -> str:
    """The cloud-call counter of replica A for one (provider, API, result code)."""
    return f'routectl_cloud_api_requests_total{{{A},provider="{provider}",api="{api}",code="{code}"}}'


CASES = [
    # --- RoutectlDown (for 5m) ---
    Case(
        "RoutectlDown",
        "every replica fails its scrape",
        {f"up{{{A}}}": "0x20", f"up{{{B}}}": "0x20"},
        "7m",
        [({}, "No routectl replica answers its metrics scrape.")],
    ),
    Case(
        "RoutectlDown",
        "no replica is scraped at all",
        {f'up{{namespace="other",service="{SERVICE}"}}': "1x20"},
        "7m",
        [({}, "No routectl replica answers its metrics scrape.")],
    ),
    quiet("RoutectlDown", "one of two replicas is up", {f"up{{{A}}}": "1x20", f"up{{{B}}}": "0x20"}, "7m"),
    quiet("RoutectlDown", "down for less than 5m", {f"up{{{A}}}": "0x20", f"up{{{B}}}": "0x20"}, "4m"),
    # --- RoutectlNoLeader (for 5m) ---
    Case(
        "RoutectlNoLeader",
        "both replicas standing by",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "0x20",
            f"leader_election_master_status{{{B},{LEASE}}}": "0x20",
        },
        "7m",
        [({}, "routectl replicas are running but none holds the leader lease.")],
    ),
    quiet(
        "RoutectlNoLeader",
        "one replica leads",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "1x20",
            f"leader_election_master_status{{{B},{LEASE}}}": "0x20",
        },
        "7m",
    ),
    quiet(
        "RoutectlNoLeader",
        "a handover shorter than 5m",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "1 1 0 0 0 0 0 0 0 0 0",
            f"leader_election_master_status{{{B},{LEASE}}}": "0 0 0 0 1 1 1 1 1 1 1",
        },
        "10m",
    ),
    quiet(
        "RoutectlNoLeader",
        "another lease's election (another controller in the namespace)",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "1x20",
            f'leader_election_master_status{{{B},name="other"}}': "0x20",
        },
        "7m",
    ),
    # --- RoutectlLeaderFlapping (more than 3 changes within an hour) ---
    Case(
        "RoutectlLeaderFlapping",
        "the lease changes hands every two minutes",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "1 1 0 0 1 1 0 0 1 1",
            f"leader_election_master_status{{{B},{LEASE}}}": "0 0 1 1 0 0 1 1 0 0",
        },
        "9m",
        [({}, "The routectl leader changed 8 times within an hour.")],
    ),
    quiet(
        "RoutectlLeaderFlapping",
        "one handover (a rolling update)",
        {
            f"leader_election_master_status{{{A},{LEASE}}}": "1 1 1 1 0 0 0 0 0 0",
            f"leader_election_master_status{{{B},{LEASE}}}": "0 0 0 0 1 1 1 1 1 1",
        },
        "9m",
    ),
    # --- RoutectlNotConverged (for 15m) ---
    Case(
        "RoutectlNotConverged",
        "the leader's passes do not converge",
        {
            f"routectl_converged{{{A}}}": "0x30",
            f"leader_election_master_status{{{A},{LEASE}}}": "1x30",
            f"routectl_converged{{{B}}}": "0x30",
            f"leader_election_master_status{{{B},{LEASE}}}": "0x30",
        },
        "17m",
        [({}, "routectl's full passes have not converged for 15m.")],
    ),
    Case(
        "RoutectlNotConverged",
        "not converged with leader election off",
        {f"routectl_converged{{{A}}}": "0x30"},
        "17m",
        [({}, "routectl's full passes have not converged for 15m.")],
    ),
    quiet(
        "RoutectlNotConverged",
        "the standby's 0 does not count",
        {
            f"routectl_converged{{{A}}}": "1x30",
            f"leader_election_master_status{{{A},{LEASE}}}": "1x30",
            f"routectl_converged{{{B}}}": "0x30",
            f"leader_election_master_status{{{B},{LEASE}}}": "0x30",
        },
        "17m",
    ),
    quiet(
        "RoutectlNotConverged",
        "unconverged for less than 15m",
        {f"routectl_converged{{{A}}}": "0x10 1x20"},
        "17m",
    ),
    # --- RoutectlNodesNetworkUnavailable (for 10m) ---
    Case(
        "RoutectlNodesNetworkUnavailable",
        "three nodes held unrouted",
        {
            f"routectl_nodes_network_unavailable{{{A}}}": "3x20",
            f"routectl_nodes_network_unavailable{{{B}}}": "0x20",
        },
        "12m",
        [({}, "routectl holds 3 node(s) at NetworkUnavailable=True.")],
    ),
    quiet(
        "RoutectlNodesNetworkUnavailable",
        "a node waits two minutes for its route",
        {f"routectl_nodes_network_unavailable{{{A}}}": "0 0 1 1 0x20"},
        "12m",
    ),
    quiet(
        "RoutectlNodesNetworkUnavailable",
        "another release's routectl",
        {f'routectl_nodes_network_unavailable{{namespace="other",service="{SERVICE}"}}': "5x20"},
        "12m",
    ),
    # --- RoutectlRouteTableCapacityLow (for 10m, above 0.8 of the quota) ---
    Case(
        "RoutectlRouteTableCapacityLow",
        "IPv4 routes fill 90% of the table's IPv4 quota; IPv6 has room",
        {
            f'routectl_route_table_quota{{{A},table="rtb-1"}}': "50x20",
            f'routectl_route_table_capacity_remaining{{{A},table="rtb-1",family="ipv4"}}': "5x20",
            f'routectl_route_table_capacity_remaining{{{A},table="rtb-1",family="ipv6"}}': "45x20",
        },
        "12m",
        [({"table": "rtb-1", "family": "ipv4"}, "Route table rtb-1 (ipv4) is 90% full.")],
    ),
    Case(
        "RoutectlRouteTableCapacityLow",
        "a table at its quota (one quota for both families)",
        {
            f'routectl_route_table_quota{{{A},table="vpc-net"}}': "200x20",
            f'routectl_route_table_capacity_remaining{{{A},table="vpc-net",family="all"}}': "0x20",
        },
        "12m",
        [({"table": "vpc-net", "family": "all"}, "Route table vpc-net (all) is 100% full.")],
    ),
    quiet(
        "RoutectlRouteTableCapacityLow",
        "60% full",
        {
            f'routectl_route_table_quota{{{A},table="rtb-1"}}': "50x20",
            f'routectl_route_table_capacity_remaining{{{A},table="rtb-1",family="ipv4"}}': "20x20",
        },
        "12m",
    ),
    # --- RoutectlIPAMPoolNearlyExhausted (for 10m, above 0.9) ---
    Case(
        "RoutectlIPAMPoolNearlyExhausted",
        "250 of 256 blocks used",
        {
            f'routectl_ipam_cidrs_used{{{A},cidr="10.244.0.0/16"}}': "250x20",
            f'routectl_ipam_cidrs_capacity{{{A},cidr="10.244.0.0/16"}}': "256x20",
        },
        "12m",
        [({"cidr": "10.244.0.0/16"}, "Cluster CIDR 10.244.0.0/16 has 97.66% of its node CIDRs in use.")],
    ),
    quiet(
        "RoutectlIPAMPoolNearlyExhausted",
        "200 of 256 blocks used",
        {
            f'routectl_ipam_cidrs_used{{{A},cidr="10.244.0.0/16"}}': "200x20",
            f'routectl_ipam_cidrs_capacity{{{A},cidr="10.244.0.0/16"}}': "256x20",
        },
        "12m",
    ),
    # --- RoutectlCloudPermissionDenied (for 5m) ---
    *(
        Case(
            "RoutectlCloudPermissionDenied",
            f"{provider} answers {code}",
            {
                calls(provider, api, code): "0+2x20",
                calls(provider, api, "200"): "0+5x20",
            },
            "7m",
            [
                (
                    {"provider": provider, "api": api, "code": code},
                    f"The cloud refuses routectl's {api} calls ({code}).",
                )
            ],
        )
        for provider, api, code in (
            ("aws", "CreateRoute", "UnauthorizedOperation"),
            ("gcp", "routes.insert", "forbidden"),
            ("alibaba", "CreateRouteEntries", "Forbidden.RAM"),
        )
    ),
    quiet(
        "RoutectlCloudPermissionDenied",
        "other errors are not permission errors",
        {
            calls("aws", "CreateRoute", "RouteAlreadyExists"): "0+2x20",
            calls("aws", "CreateRoute", "200"): "0+5x20",
        },
        "7m",
    ),
    quiet(
        "RoutectlCloudPermissionDenied",
        "no denial for the last 10 minutes (the permission was granted)",
        {
            calls("aws", "CreateRoute", "UnauthorizedOperation"): "0+1x5 5x30",
        },
        "25m",
    ),
    # --- RoutectlCloudThrottled (for 15m, more than 0.1 of the calls) ---
    Case(
        "RoutectlCloudThrottled",
        "a quarter of the AWS calls throttled",
        {
            calls("aws", "CreateRoute", "200"): "0+60x30",
            calls("aws", "CreateRoute", "RequestLimitExceeded"): "0+20x30",
        },
        "17m",
        [({"provider": "aws"}, "25% of routectl's aws API calls are throttled.")],
    ),
    Case(
        "RoutectlCloudThrottled",
        "Alibaba throttling codes",
        {
            calls("alibaba", "CreateRouteEntries", "200"): "0+10x30",
            calls("alibaba", "CreateRouteEntries", "Throttling.User"): "0+10x30",
        },
        "17m",
        [({"provider": "alibaba"}, "50% of routectl's alibaba API calls are throttled.")],
    ),
    quiet(
        "RoutectlCloudThrottled",
        "an occasional throttle",
        {
            calls("aws", "CreateRoute", "200"): "0+60x30",
            calls("aws", "CreateRoute", "RequestLimitExceeded"): "0+3x30",
        },
        "17m",
    ),
    # --- RoutectlRouteConflicts (for 10m) ---
    Case(
        "RoutectlRouteConflicts",
        "a foreign route on a node podCIDR",
        {
            f'routectl_route_conflicts{{{A},table="rtb-1"}}': "1x20",
            f'routectl_route_conflicts{{{A},table="rtb-2"}}': "0x20",
        },
        "12m",
        [({"table": "rtb-1"}, "In route table rtb-1 foreign routes block 1 node route(s).")],
    ),
    quiet(
        "RoutectlRouteConflicts",
        "no conflict",
        {f'routectl_route_conflicts{{{A},table="rtb-1"}}': "0x20"},
        "12m",
    ),
    # --- RoutectlRoutesContested (for 0m) ---
    Case(
        "RoutectlRoutesContested",
        "a cloud-controller-manager keeps repointing a route",
        {f"routectl_routes_contested{{{A}}}": "0 0 1x10"},
        "3m",
        [({}, "1 owned route(s) contested: something else keeps changing their target.")],
    ),
    quiet(
        "RoutectlRoutesContested",
        "no route contested",
        {f"routectl_routes_contested{{{A}}}": "0x10"},
        "5m",
    ),
    # --- RoutectlPodCIDRConflicts (for 5m) ---
    Case(
        "RoutectlPodCIDRConflicts",
        "a node carries another node's podCIDR",
        {f'routectl_node_cidr_conflicts{{{A},rule="duplicate"}}': "0 1x10"},
        "7m",
        [({"rule": "duplicate"}, "1 node podCIDR(s) rejected (duplicate): their nodes get no route.")],
    ),
    quiet(
        "RoutectlPodCIDRConflicts",
        "a rejected podCIDR fixed within 5 minutes",
        {f'routectl_node_cidr_conflicts{{{A},rule="duplicate"}}': "0 1 1 1 0x10"},
        "10m",
    ),
    # --- RoutectlReconcileErrors (for 15m) ---
    Case(
        "RoutectlReconcileErrors",
        "every resync fails",
        {f'routectl_reconcile_errors_total{{{A},kind="resync"}}': "0+1x30"},
        "17m",
        [({}, "routectl reconciles have been failing for 15m.")],
    ),
    quiet(
        "RoutectlReconcileErrors",
        "no errors",
        {f'routectl_reconcile_errors_total{{{A},kind="resync"}}': "0x30"},
        "17m",
    ),
]


@pytest.fixture(scope="module")
def tools() -> PromTools:
    return require("chart")


@pytest.fixture(scope="module")
def prometheus_rule(helm: Helm) -> Manifest:
    """The AWS example turns the PrometheusRule on; everything else about it is the chart's default."""
    rendered = helm.template(
        [EXAMPLES["aws"]], api_versions=[MONITORING_API], show_only="templates/prometheusrule.yaml"
    )
    return one(rendered, "PrometheusRule")


def _rules(prometheus_rule: Manifest) -> dict[str, dict[str, Any]]:
    (group,) = prometheus_rule["spec"]["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def _check(tools: PromTools, rules_file: Path) -> None:
    checked = tools.run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_checks_the_rendered_rules(
    tools: PromTools, prometheus_rule: Manifest, tmp_path: Path
) -> None:
    _check(tools, write_rules(prometheus_rule, tmp_path / "rules.yaml"))


@pytest.mark.parametrize(
    "sets",
    [
        {"leaderElection": {"enabled": False}, "replicaCount": 1},
        {
            "metrics": {
                "prometheusRule": {"selector": 'job="routectl"', "runbookBaseURL": "https://wiki.example/rb"}
            }
        },
    ],
    ids=["no-leader-election", "own-selector-and-runbooks"],
)
def test_promtool_checks_the_rules_rendered_with_other_values(
    tools: PromTools, helm: Helm, sets: dict[str, object], tmp_path: Path
) -> None:
    rendered = helm.template(
        [EXAMPLES["aws"]],
        sets=_flatten(sets),
        api_versions=[MONITORING_API],
        show_only="templates/prometheusrule.yaml",
    )
    rule = one(rendered, "PrometheusRule")
    _check(tools, write_rules(rule, tmp_path / "rules.yaml"))
    alerts = _rules(rule)
    if "leaderElection.enabled" in _flatten(sets):
        assert {"RoutectlNoLeader", "RoutectlLeaderFlapping"}.isdisjoint(alerts)
        assert "leader_election_master_status" in alerts["RoutectlNotConverged"]["expr"]
    else:
        assert all('{job="routectl"' in rule["expr"] for rule in alerts.values())
        assert all(
            r["annotations"]["runbook_url"].startswith("https://wiki.example/rb#") for r in alerts.values()
        )


def test_every_alert_fires_and_stays_quiet_as_promtool_evaluates_it(
    tools: PromTools, prometheus_rule: Manifest, tmp_path: Path
) -> None:
    rules = _rules(prometheus_rule)
    firing = {c.alert for c in CASES if c.fires}
    quiet_ = {c.alert for c in CASES if not c.fires}
    assert firing == quiet_ == set(rules), "every alert needs a firing and a quiet case"
    write_rules(prometheus_rule, tmp_path / "rules.yaml")
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [_promtool_test(case, rules[case.alert]) for case in CASES],
    }
    (tmp_path / "alerts.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = tools.run_promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def _promtool_test(case: Case, rule: dict[str, Any]) -> dict[str, Any]:
    static = {k: v for k, v in rule["annotations"].items() if k != "summary"}
    expected = [
        {
            "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
            "exp_annotations": {"summary": summary, **static},
        }
        for labels, summary in case.fires
    ]
    return {
        "name": f"{case.alert}: {case.name}",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
        "alert_rule_test": [{"eval_time": case.at, "alertname": case.alert, "exp_alerts": expected}],
    }


def test_every_alert_links_its_own_runbook_section(prometheus_rule: Manifest) -> None:
    base = chart_values("aws")["metrics"]["prometheusRule"]["runbookBaseURL"]
    assert base == "https://github.com/routectl/routectl/blob/main/docs/runbooks.md"
    headings = _runbook_sections()
    for alert, rule in _rules(prometheus_rule).items():
        assert rule["annotations"]["runbook_url"] == f"{base}#{alert.lower()}"
        assert alert in headings, f"docs/runbooks.md has no section `## {alert}`"
        body = headings[alert]
        assert "routectl plan" in body, f"{alert}: the runbook does not say how to confirm with routectl plan"
        for part in ("Meaning", "Confirm", "Fix"):
            assert f"**{part}" in body, f"{alert}: the runbook section has no **{part}** part"
    assert set(headings) == set(_rules(prometheus_rule)), "a runbook section without an alert"


def _runbook_sections() -> dict[str, str]:
    """`## Name` section of docs/runbooks.md → its text (GitHub anchors: the name in lower case)."""
    parts = re.split(r"^## (\S+)\s*$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_alerts_use_only_series_routectl_exports(tools: PromTools, prometheus_rule: Manifest) -> None:
    exprs = {alert: rule["expr"] for alert, rule in _rules(prometheus_rule).items()}
    parsed = tools.parse(list(exprs.values()))
    exported = exported_series() | PROMETHEUS_OWN
    for (alert, expr), result in zip(exprs.items(), parsed, strict=True):
        assert "error" not in result, f"{alert}: {result.get('error')}: {expr}"
        assert metric_names(result) <= exported, f"{alert} uses {metric_names(result) - exported}"
        for selector in result["selectors"]:
            assert 'namespace="kube-system"' in selector["matchers"], f"{alert}: {selector} is not scoped"
            assert 'service="routectl-metrics"' in selector["matchers"], f"{alert}: {selector} is not scoped"


def _flatten(tree: dict[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
