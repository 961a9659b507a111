"""`routectl doctor`, the Kubernetes side: API reachable, RBAC allowed, nodes ready for routectl, no
second writer of podCIDRs or NetworkUnavailable, and flannel set up for the `alloc` backend.

Reads only (and SelfSubjectAccessReviews, which store nothing). Who else writes a field is read from
`metadata.managedFields`: the API server records each writer under its field manager, which is the
client's user agent unless it names another; routectl's own is `COMPONENT` ("routectl").

flannel sets `NetworkUnavailable=False` (reason `FlannelIsUp`) on its node at start unless flanneld runs
with `--set-node-network-unavailable=false` (flannel main.go; flanneld also reads every flag from
`FLANNELD_<FLAG>` when the flag is not given, here `FLANNELD_SET_NODE_NETWORK_UNAVAILABLE`); that would
mark a node ready before its route exists.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers import Check, Network
from providers.diagnosis import failed, passed, warned
from routectl.cluster import ClusterError, ForbiddenError, NotFoundError
from routectl.kube.client import COMPONENT, KubeCluster
from routectl.reasons import CONDITION_TYPE

KUBE = "kubernetes"
FLANNEL = "flannel"
FLANNEL_NAMESPACES = ("kube-flannel", "kube-system")
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
FLANNEL_DAEMONSET = "kube-flannel-ds"
FLANNEL_FLAG = "set-node-network-unavailable"
FLANNEL_ENV = "FLANNELD_SET_NODE_NETWORK_UNAVAILABLE"
SELF_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_CONFIGMAP = "/api/v1/namespaces/{namespace}/configmaps/{name}"
_DAEMONSET = "/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"
_SHOWN = 5
"""Nodes named in one line at most; the count says how many more."""
_GO_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})
_GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
Json = dict[str, Any]


@dataclass(frozen=True, slots=True, order=True)
class Access:
    """One request routectl makes, as the RBAC authorizer sees it."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = "/".join(p for p in (self.resource, self.subresource) if p)
        where = f" in {self.namespace}" if self.namespace else ""
        named = f" {self.name!r}" if self.name else ""
        group = f"{self.group}/" if self.group else ""
        return f"{self.verb} {group}{what}{named}{where}"


def required_access(
    *, leader_election: tuple[str, str] | None, secure_metrics: bool, event_namespace: str = "default"
) -> tuple[Access, ...]:
    """What `routectl run` needs with these settings (the chart's ClusterRole and Role grant exactly
    this; tests/chart/test_rbac.py holds both to it). `leader_election` is (namespace, lease name)."""
    needs = [
        *(Access(verb, "nodes") for verb in ("get", "list", "watch", "patch")),
        Access("patch", "nodes", subresource="status"),
        *(Access(verb, "events", namespace=event_namespace) for verb in ("create", "patch")),
    ]
    if leader_election is not None:
        namespace, name = leader_election
        lease = "coordination.k8s.io"
        needs.append(Access("create", "leases", lease, namespace=namespace))
        needs += [
            Access(v, "leases", lease, namespace=namespace, name=name) for v in ("get", "update", "watch")
        ]
    if secure_metrics:
        needs.append(Access("create", "tokenreviews", "authentication.k8s.io"))
        needs.append(Access("create", "subjectaccessreviews", "authorization.k8s.io"))
    return tuple(needs)


@dataclass(frozen=True, slots=True)
class Findings:
    """The Kubernetes and flannel checks, and each node's providerID for the cloud's checks."""

    checks: list[Check]
    provider_ids: dict[str, str] = field(default_factory=dict)
    """Node name → `spec.providerID` ("" when unset)."""


def diagnose(
    cluster: KubeCluster, needs: Sequence[Access], cluster_cidrs: Sequence[Network], timeout_s: float
) -> Findings:
    """Every Kubernetes and flannel check; stops after the first when the API server does not answer."""
    try:
        version = cluster.read("/version")
    except ClusterError as err:
        return Findings([failed(KUBE, "api-reachable", f"{err}", "check --kubeconfig / the pod's network")])
    found = f"API server {version.get('gitVersion', '?')}"
    checks = [passed(KUBE, "api-reachable", found)]
    checks += access_checks(cluster, needs, timeout_s)
    try:
        nodes = _all_nodes(cluster)
    except ClusterError as err:
        checks.append(
            failed(KUBE, "nodes", f"cannot list Nodes: {err}", "grant list on nodes (the chart does)")
        )
        nodes = []
    else:
        checks += node_checks(nodes)
    checks += flannel_checks(cluster, cluster_cidrs)
    ids = {_name(n): str((n.get("spec") or {}).get("providerID") or "") for n in nodes}
    return Findings(checks, ids)


def _all_nodes(cluster: KubeCluster) -> list[Json]:
    nodes: list[Json] = []
    token = ""
    while True:
        query = [("limit", "500"), *([("continue", token)] if token else [])]
        page = cluster.read("/api/v1/nodes", query=query)
        nodes += page.get("items") or []
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return nodes


# --- RBAC ------------------------------------------------------------------------------------------


def access_checks(cluster: KubeCluster, needs: Sequence[Access], timeout_s: float) -> list[Check]:
    """One SelfSubjectAccessReview per request routectl makes; one line per denied one."""
    denied: list[tuple[Access, str]] = []
    for need in needs:
        try:
            status = cluster.create_review(SELF_REVIEWS, _self_review(need), timeout_s).get("status") or {}
        except ClusterError as err:
            fix = "grant create on authorization.k8s.io/selfsubjectaccessreviews (the chart does)"
            return [warned(KUBE, "rbac", f"cannot ask the API server what is allowed: {err}", fix)]
        if not status.get("allowed"):
            denied.append((need, str(status.get("reason") or "no rule allows it")))
    if not denied:
        return [passed(KUBE, "rbac", f"all {len(needs)} requests routectl makes are allowed")]
    fix = "install the chart's RBAC (rbac.create=true) or grant it to routectl's ServiceAccount"
    return [failed(KUBE, f"rbac {need}", f"denied: {reason}", fix) for need, reason in denied]


def _self_review(need: Access) -> Json:
    attributes = {
        "verb": need.verb,
        "group": need.group,
        "resource": need.resource,
        "subresource": need.subresource,
        "namespace": need.namespace,
        "name": need.name,
    }
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v}},
    }


# --- nodes -----------------------------------------------------------------------------------------


def node_checks(nodes: Sequence[Json]) -> list[Check]:
    """providerIDs set; podCIDRs and NetworkUnavailable written by routectl alone."""
    missing = [_name(n) for n in nodes if not (n.get("spec") or {}).get("providerID")]
    checks = [
        failed(
            KUBE,
            "provider-ids",
            f"{_some(missing)} without spec.providerID",
            "start the kubelet with --cloud-provider=external and run the cloud's CCM node controller, "
            "or set --provider-id; routectl cannot route to a node it cannot place",
        )
        if missing
        else passed(KUBE, "provider-ids", f"all {len(nodes)} node(s) have a providerID")
    ]
    checks.append(
        _writers(
            nodes,
            "pod-cidr-writers",
            _writes_pod_cidr,
            "podCIDRs",
            "another allocator is running: turn it off (kube-controller-manager --allocate-node-cidrs=false, "
            "the kubelet's --pod-cidr, a CCM's IPAM), or set allocate-node-cidrs=false for routectl",
        )
    )
    checks.append(
        _writers(
            nodes,
            "network-unavailable-writers",
            _writes_network_unavailable,
            CONDITION_TYPE,
            "another controller sets it (flannel, a CCM route controller): start flanneld with "
            f"--{FLANNEL_FLAG}=false, run the CCM with --configure-cloud-routes=false",
        )
    )
    return checks


def _writers(
    nodes: Sequence[Json], name: str, writes: Callable[[Mapping[str, Any]], bool], what: str, fix: str
) -> Check:
    """One check: which field managers other than routectl's wrote `what` (`writes` spots it in an
    entry's fieldsV1), on which nodes."""
    others: dict[str, list[str]] = {}
    for node in nodes:
        for entry in (node.get("metadata") or {}).get("managedFields") or ():
            manager = str(entry.get("manager") or "")
            if manager != COMPONENT and writes(entry.get("fieldsV1") or {}):
                others.setdefault(manager, []).append(_name(node))
    if not others:
        return passed(KUBE, name, f"{what} written by routectl only (or by nobody yet)")
    found = "; ".join(
        f"{manager!r} wrote {what} of {_some(names)}" for manager, names in sorted(others.items())
    )
    return failed(KUBE, name, found, fix)


def _writes_pod_cidr(fields: Mapping[str, Any]) -> bool:
    spec = fields.get("f:spec") or {}
    return "f:podCIDR" in spec or "f:podCIDRs" in spec


def _writes_network_unavailable(fields: Mapping[str, Any]) -> bool:
    conditions = (fields.get("f:status") or {}).get("f:conditions") or {}
    return f'k:{{"type":"{CONDITION_TYPE}"}}' in conditions


# --- flannel ---------------------------------------------------------------------------------------


def flannel_checks(cluster: KubeCluster, cluster_cidrs: Sequence[Network]) -> list[Check]:
    """flannel's net-conf.json (Network = the cluster CIDRs, Backend alloc) and its DaemonSet's flags."""
    for namespace in FLANNEL_NAMESPACES:
        try:
            configmap = cluster.read(_CONFIGMAP, path={"namespace": namespace, "name": FLANNEL_CONFIGMAP})
        except NotFoundError:
            continue
        except ClusterError as err:
            return [_unreadable("config", f"ConfigMap {namespace}/{FLANNEL_CONFIGMAP}", err)]
        checks = net_conf_checks(namespace, configmap, cluster_cidrs)
        return [*checks, _daemonset_check(cluster, namespace)]
    where = " or ".join(FLANNEL_NAMESPACES)
    return [
        warned(
            FLANNEL,
            "config",
            f"no ConfigMap {FLANNEL_CONFIGMAP} in {where}",
            "install flannel (kube-flannel.yml) with Backend alloc; if it is installed under other names, "
            "check its net-conf.json by hand",
        )
    ]


def net_conf_checks(namespace: str, configmap: Json, cluster_cidrs: Sequence[Network]) -> list[Check]:
    where = f"{namespace}/{FLANNEL_CONFIGMAP}"
    try:
        conf = json.loads(((configmap.get("data") or {}).get("net-conf.json")) or "")
        networks = {_network(conf[k]) for k in ("Network", "IPv6Network") if conf.get(k)}
    except (ValueError, TypeError, AttributeError) as err:
        return [failed(FLANNEL, "network", f"{where}: net-conf.json does not parse: {err}", "fix its JSON")]
    wanted = set(cluster_cidrs)
    network = (
        passed(FLANNEL, "network", f"{where} Network {_cidrs(networks)} = the cluster CIDRs")
        if networks == wanted
        else failed(
            FLANNEL,
            "network",
            f"{where} Network/IPv6Network {_cidrs(networks) or 'unset'} ≠ cluster CIDRs {_cidrs(wanted)}",
            "make net-conf.json's Network (and IPv6Network) equal routectl's cluster-cidr; restart flannel",
        )
    )
    backend = str((conf.get("Backend") or {}).get("Type") or "") if isinstance(conf, dict) else ""
    kind = (
        passed(FLANNEL, "backend", f"{where} Backend alloc")
        if backend == "alloc"
        else failed(
            FLANNEL,
            "backend",
            f"{where} Backend {backend or 'unset'!s} (routectl needs alloc)",
            'set "Backend": {"Type": "alloc"} in net-conf.json, then restart flannel',
        )
    )
    return [network, kind]


def _daemonset_check(cluster: KubeCluster, namespace: str) -> Check:
    where = f"DaemonSet {namespace}/{FLANNEL_DAEMONSET}"
    try:
        daemonset = cluster.read(_DAEMONSET, path={"namespace": namespace, "name": FLANNEL_DAEMONSET})
    except NotFoundError:
        return warned(
            FLANNEL, "network-unavailable", f"no {where}", f"check flanneld's --{FLANNEL_FLAG} by hand"
        )
    except ClusterError as err:
        return _unreadable("network-unavailable", where, err)
    return network_unavailable_check(where, daemonset)


def network_unavailable_check(where: str, daemonset: Json) -> Check:
    """flanneld must run with `--set-node-network-unavailable=false` (or the env var set so, and no
    flag saying otherwise): else it marks its node ready before routectl has routed it."""
    containers = ((daemonset.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    flanneld = [
        c
        for c in containers
        if "flanneld" in " ".join(c.get("command") or []) + " ".join(c.get("args") or [])
    ]
    if not flanneld:
        return warned(FLANNEL, "network-unavailable", f"{where}: no container runs flanneld", "check by hand")
    value = _setting(flanneld[0])
    fix = f"add --{FLANNEL_FLAG}=false to flanneld's args (else flannel sets NetworkUnavailable=False)"
    if value is None:
        return warned(FLANNEL, "network-unavailable", f"{where}: {FLANNEL_ENV} comes from a reference", fix)
    if value in _GO_FALSE:
        found = f"{where}: flanneld leaves NetworkUnavailable to routectl ({FLANNEL_FLAG}=false)"
        return passed(FLANNEL, "network-unavailable", found)
    return failed(
        FLANNEL,
        "network-unavailable",
        f"{where}: flanneld sets NetworkUnavailable ({FLANNEL_FLAG}={value})",
        fix,
    )


def _setting(container: Json) -> str | None:
    """The effective --set-node-network-unavailable: the flag wins over the env var (flannel reads env
    only for flags not given); Go's bool flags take no separate value. None: an env valueFrom."""
    for arg in reversed([*(container.get("command") or []), *(container.get("args") or [])]):
        name, eq, value = str(arg).lstrip("-").partition("=")
        if str(arg).startswith("-") and name == FLANNEL_FLAG:
            return value if eq else "true"
    for env in container.get("env") or ():
        if env.get("name") == FLANNEL_ENV:
            return str(env["value"]) if "value" in env else None
    return "true"


# --- helpers ---------------------------------------------------------------------------------------


def _unreadable(name: str, what: str, err: ClusterError) -> Check:
    fix = (
        f"grant get on {what} to routectl (the chart's RBAC does)"
        if isinstance(err, ForbiddenError)
        else "retry; check the API server"
    )
    return warned(FLANNEL, name, f"cannot read {what}: {err}", fix)


def _network(text: object) -> Network:
    return ipaddress.ip_network(str(text), strict=True)


def _cidrs(networks: Iterable[Network]) -> str:
    return ",".join(sorted(str(n) for n in networks))


def _name(node: Json) -> str:
    return str((node.get("metadata") or {}).get("name") or "?")


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:_SHOWN])
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{len(names)} node(s) ({shown}{more})"
