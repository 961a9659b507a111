"""The Kubernetes side of `routectl doctor` over API objects as the server returns them: who wrote
podCIDRs and NetworkUnavailable (managedFields), flannel's net-conf.json and flanneld's flags."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from providers import CheckStatus
from routectl.kube import doctor

CIDRS = (ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00:10::/56"))
NU = '{"type":"NetworkUnavailable"}'


def a_node(
    name: str, provider_id: str = "aws:///z/i-1", *managed: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "managedFields": [{"manager": m, "fieldsV1": f} for m, f in managed]},
        "spec": {"providerID": provider_id} if provider_id else {},
    }


POD_CIDR = {"f:spec": {"f:podCIDR": {}, "f:podCIDRs": {".": {}}}}
CONDITION = {"f:status": {"f:conditions": {f"k:{NU}": {"f:status": {}}}}}
READY = {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {"f:status": {}}}}}


def by_name(checks: list[Any]) -> dict[str, Any]:
    return {c.name: c for c in checks}


def test_healthy_nodes_pass_every_node_check() -> None:
    nodes = [
        a_node("n1", "aws:///z/i-1", ("routectl", POD_CIDR), ("routectl", CONDITION), ("kubelet", READY))
    ]
    assert {c.status for c in doctor.node_checks(nodes)} == {CheckStatus.PASS}


def test_a_node_without_provider_id_fails_naming_it() -> None:
    checks = by_name(doctor.node_checks([a_node("n1"), a_node("n2", "")]))
    assert checks["provider-ids"].status is CheckStatus.FAIL
    assert "1 node(s) (n2)" in checks["provider-ids"].found


def test_pod_cidrs_written_by_another_manager_fail_naming_it() -> None:
    nodes = [a_node("n1", "aws:///z/i-1", ("kube-controller-manager", POD_CIDR)), a_node("n2")]
    check = by_name(doctor.node_checks(nodes))["pod-cidr-writers"]
    assert check.status is CheckStatus.FAIL
    assert "'kube-controller-manager' wrote podCIDRs of 1 node(s) (n1)" in check.found
    assert "--allocate-node-cidrs=false" in check.fix


def test_network_unavailable_written_by_flannel_fails() -> None:
    nodes = [a_node("n1", "aws:///z/i-1", ("flanneld", CONDITION), ("kubelet", READY))]
    check = by_name(doctor.node_checks(nodes))["network-unavailable-writers"]
    assert check.status is CheckStatus.FAIL
    assert "'flanneld' wrote NetworkUnavailable" in check.found


def test_many_nodes_are_counted_not_all_named() -> None:
    nodes = [a_node(f"n{i:02}", "") for i in range(12)]
    found = by_name(doctor.node_checks(nodes))["provider-ids"].found
    assert found.startswith("12 node(s) (n00, n01, n02, n03, n04 and 7 more)")


def a_configmap(**conf: Any) -> dict[str, Any]:
    return {"data": {"net-conf.json": json.dumps(conf)}}


ALLOC = {"Type": "alloc"}


def test_net_conf_equal_to_the_cluster_cidrs_with_alloc_passes() -> None:
    cm = a_configmap(Network="10.244.0.0/16", IPv6Network="fd00:10::/56", EnableIPv6=True, Backend=ALLOC)
    assert {c.status for c in doctor.net_conf_checks("kube-flannel", cm, CIDRS)} == {CheckStatus.PASS}


@pytest.mark.parametrize(
    ("conf", "failing"),
    [
        ({"Network": "10.245.0.0/16", "IPv6Network": "fd00:10::/56", "Backend": ALLOC}, "network"),
        ({"Network": "10.244.0.0/16", "Backend": ALLOC}, "network"),
        (
            {"Network": "10.244.0.0/16", "IPv6Network": "fd00:10::/56", "Backend": {"Type": "vxlan"}},
            "backend",
        ),
        ({"Network": "10.244.0.0/16", "IPv6Network": "fd00:10::/56"}, "backend"),
    ],
    ids=["other-network", "family-missing", "vxlan", "no-backend"],
)
def test_net_conf_mismatch_fails(conf: dict[str, Any], failing: str) -> None:
    checks = by_name(doctor.net_conf_checks("kube-flannel", a_configmap(**conf), CIDRS))
    assert [n for n, c in checks.items() if c.status is CheckStatus.FAIL] == [failing]


def test_net_conf_that_does_not_parse_fails() -> None:
    checks = doctor.net_conf_checks("kube-system", {"data": {"net-conf.json": "{"}}, CIDRS)
    assert [c.status for c in checks] == [CheckStatus.FAIL]


def a_daemonset(args: list[str], env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container = {"name": "kube-flannel", "command": ["/opt/bin/flanneld"], "args": args, "env": env or []}
    init = {"name": "install-cni", "command": ["cp"], "args": []}
    return {"spec": {"template": {"spec": {"containers": [container], "initContainers": [init]}}}}


KUBE_SUBNET = ["--ip-masq", "--kube-subnet-mgr"]


@pytest.mark.parametrize(
    ("args", "env", "status"),
    [
        (KUBE_SUBNET, [], CheckStatus.FAIL),
        ([*KUBE_SUBNET, "--set-node-network-unavailable=false"], [], CheckStatus.PASS),
        ([*KUBE_SUBNET, "-set-node-network-unavailable=0"], [], CheckStatus.PASS),
        ([*KUBE_SUBNET, "--set-node-network-unavailable"], [], CheckStatus.FAIL),
        ([*KUBE_SUBNET, "--set-node-network-unavailable=true"], [], CheckStatus.FAIL),
        (KUBE_SUBNET, [{"name": doctor.FLANNEL_ENV, "value": "false"}], CheckStatus.PASS),
        (
            [*KUBE_SUBNET, "--set-node-network-unavailable=true"],
            [{"name": doctor.FLANNEL_ENV, "value": "false"}],
            CheckStatus.FAIL,
        ),
        (KUBE_SUBNET, [{"name": doctor.FLANNEL_ENV, "valueFrom": {"configMapKeyRef": {}}}], CheckStatus.WARN),
    ],
    ids=["default", "flag-false", "flag-zero", "bare-flag", "flag-true", "env-false", "flag-wins", "env-ref"],
)
def test_flanneld_must_leave_network_unavailable_alone(
    args: list[str], env: list[dict[str, Any]], status: CheckStatus
) -> None:
    check = doctor.network_unavailable_check("DaemonSet kube-flannel/kube-flannel-ds", a_daemonset(args, env))
    assert check.status is status
    if status is CheckStatus.FAIL:
        assert "--set-node-network-unavailable=false" in check.fix


def test_required_access_follows_the_settings() -> None:
    bare = doctor.required_access(leader_election=None, secure_metrics=False)
    full = doctor.required_access(leader_election=("ops", "routectl"), secure_metrics=True)
    assert doctor.Access("patch", "nodes", subresource="status") in bare
    assert not any(a.resource in ("leases", "tokenreviews") for a in bare)
    assert doctor.Access("update", "leases", "coordination.k8s.io", namespace="ops", name="routectl") in full
    assert doctor.Access("create", "tokenreviews", "authentication.k8s.io") in full
    assert str(doctor.Access("get", "leases", "coordination.k8s.io", namespace="ops", name="l")) == (
        "get coordination.k8s.io/leases 'l' in ops"
    )
