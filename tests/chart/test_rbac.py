"""The chart's RBAC grants exactly what routectl's code uses: every request it makes is allowed by a
rule, and every rule allows some request it makes — with HTTPS metrics and without.

The real `KubeCluster` talks to a small recording API server on 127.0.0.1, and every method of the
`Cluster` port is called (each path through it: a repeated Event is a patch, an absent Lease is read
before it is created); with `metrics.secure` the real metrics gate (`kube/authn.py`) also admits a
scrape, as `routectl run` wires it then (TokenReview, then SubjectAccessReview). So the requests recorded
are all the requests the code can make. Each is turned into what the RBAC authorizer sees — API group,
resource (with subresource), verb, object name — and compared with the rules the chart renders.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chartlib import EXAMPLES, NAMESPACE, Helm, chart_values
from kubernetes import client

from routectl.access import Verdict
from routectl.cluster import Cluster, Condition, Lease, Node
from routectl.kube import doctor as kube_doctor
from routectl.kube.authn import ACCESS_REVIEWS, TOKEN_REVIEWS, ApiServerGate
from routectl.kube.client import KubeCluster

LEASE = chart_values("aws")["leaderElection"]["leaseName"]
NODE = {"metadata": {"name": "n1", "uid": "u1", "resourceVersion": "5"}, "spec": {}, "status": {}}
LEASE_JSON = {
    "metadata": {"name": LEASE, "namespace": NAMESPACE, "resourceVersion": "7"},
    "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "leaseTransitions": 0},
}


@dataclass(frozen=True, slots=True, order=True)
class Access:
    """One request as the RBAC authorizer sees it."""

    group: str
    resource: str
    verb: str
    name: str = ""

    def allowed_by(self, grant: Access) -> bool:
        same = (self.group, self.resource, self.verb) == (grant.group, grant.resource, grant.verb)
        return same and grant.name in ("", self.name)


class _Recorder(BaseHTTPRequestHandler):
    server: _Server
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path.startswith(("/api/", "/apis/")):  # /version is public (system:public-info-viewer)
            self.server.seen.append(_access(self.command, url.path, parse_qs(url.query)))
        status, body = _response(self.command, url.path, parse_qs(url.query))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[Access]


def _access(method: str, path: str, query: dict[str, list[str]]) -> Access:
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), rest[2:]
    if not name and method == "GET":
        # As the authorizer reads a list or watch narrowed to one object: the selected name.
        selector = (query.get("fieldSelector") or [""])[0]
        name = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else ""
        if name:
            return Access(group, resource, "watch" if query.get("watch") == ["true"] else "list", name)
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") == ["true"] else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return Access(group, "/".join([resource, *sub]), verb, name)


def _response(method: str, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
    if path == "/version":
        return 200, json.dumps({"gitVersion": "v1.37.2"})
    if path == kube_doctor.SELF_REVIEWS:
        return 201, json.dumps({"status": {"allowed": True}})
    if "/configmaps/" in path:
        return 200, json.dumps(
            {"data": {"net-conf.json": '{"Network": "10.244.0.0/16", "Backend": {"Type": "alloc"}}'}}
        )
    if "/daemonsets/" in path:
        return 200, json.dumps({"spec": {"template": {"spec": {"containers": []}}}})
    if path == TOKEN_REVIEWS:
        return 201, json.dumps({"status": {"authenticated": True, "user": {"username": "prometheus"}}})
    if path == ACCESS_REVIEWS:
        return 201, json.dumps({"status": {"allowed": True}})
    if "/leases" in path:
        if query.get("watch") == ["true"]:
            return 200, json.dumps({"type": "MODIFIED", "object": LEASE_JSON}) + "\n"
        if method == "GET":
            return 404, json.dumps({"kind": "Status", "code": 404, "message": "not found"})
        return 200, json.dumps(LEASE_JSON)
    if "/events" in path:
        return 201, json.dumps({"kind": "Event"})
    if path == "/api/v1/nodes" and query.get("watch") == ["true"]:
        return 200, json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}) + "\n"
    if path == "/api/v1/nodes":
        return 200, json.dumps({"metadata": {"resourceVersion": "5"}, "items": [NODE]})
    return 200, json.dumps(NODE)


@pytest.fixture
def recorded() -> Iterator[tuple[KubeCluster, list[Access]]]:
    server = _Server(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, name="recording-apiserver")
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    configuration.retries = False
    cluster = KubeCluster(client.ApiClient(configuration), reporting_instance="pod-a_1234")
    try:
        yield cluster, server.seen
    finally:
        cluster.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _every_port_call(cluster: KubeCluster) -> dict[str, Callable[[], Any]]:
    """Each method of the Cluster port, called the ways the controller calls it."""
    node = Node(name="n1", uid="u1", resource_version="5")
    lease = Lease(namespace=NAMESPACE, name=LEASE, holder="me", lease_duration_s=15, resource_version="7")

    def twice_the_same_event() -> None:
        cluster.record_event(node, "Warning", "RouteConflict", "in the way")
        cluster.record_event(node, "Warning", "RouteConflict", "in the way")

    return {
        "list_nodes": lambda: cluster.list_nodes(limit=500),
        "watch_nodes": lambda: list(cluster.watch_nodes("5", timeout_s=1)),
        "get_node": lambda: cluster.get_node("n1"),
        "set_pod_cidrs": lambda: cluster.set_pod_cidrs("n1", ["10.244.1.0/24"]),
        "set_network_unavailable": lambda: cluster.set_network_unavailable(
            "n1", Condition("True", "NoRouteCreated", "waiting")
        ),
        "record_event": twice_the_same_event,
        "get_lease": lambda: cluster.get_lease(NAMESPACE, LEASE, timeout_s=5),
        "create_lease": lambda: cluster.create_lease(lease, timeout_s=5),
        "update_lease": lambda: cluster.update_lease(lease, timeout_s=5),
        "watch_lease": lambda: list(cluster.watch_lease(NAMESPACE, LEASE, "7", timeout_s=1)),
    }


def _port_methods() -> set[str]:
    return {name for name, value in vars(Cluster).items() if callable(value) and not name.startswith("_")}


def _granted(helm: Helm, secure: bool) -> set[Access]:
    """The controller's own rules (the scrapers' metrics-reader role is not routectl's)."""
    objects = helm.template(
        [EXAMPLES["aws"]], sets={"metrics.secure": secure}, show_only="templates/rbac.yaml"
    )
    return {
        Access(group, resource, verb, name)
        for o in objects
        if o["kind"] in ("ClusterRole", "Role") and not o["metadata"]["name"].endswith("-metrics-reader")
        for rule in o["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


@pytest.mark.parametrize("secure", [True, False], ids=["https-metrics", "loopback-metrics"])
def test_chart_rbac_grants_exactly_the_requests_routectl_makes(
    helm: Helm, recorded: tuple[KubeCluster, list[Access]], secure: bool
) -> None:
    cluster, seen = recorded
    calls = _every_port_call(cluster)
    assert set(calls) == _port_methods(), "a Cluster method is not exercised here"
    for call in calls.values():
        call()
    if secure:  # routectl run builds the gate only for HTTPS metrics (cli._metrics_endpoint)
        assert ApiServerGate(cluster).admit("a-token", "get", "/metrics") is Verdict.ALLOWED
    run_doctor(cluster, secure)
    used = set(seen)
    granted = _granted(helm, secure)
    assert used, "no request recorded"
    denied = sorted(u for u in used if not any(u.allowed_by(g) for g in granted))
    unused = sorted(g for g in granted if not any(u.allowed_by(g) for u in used))
    assert denied == [], f"routectl makes requests the chart does not grant: {denied}"
    assert unused == [], f"the chart grants what routectl never requests: {unused}"


def run_doctor(cluster: KubeCluster, secure: bool) -> None:
    """`routectl doctor` runs under the same ServiceAccount (kubectl exec): its reads need rules too."""
    needs = kube_doctor.required_access(leader_election=(NAMESPACE, LEASE), secure_metrics=secure)
    found = kube_doctor.diagnose(cluster, needs, [ipaddress.ip_network("10.244.0.0/16")], timeout_s=5)
    assert {c.name for c in found.checks} >= {"rbac", "network", "backend", "network-unavailable"}


def _as_rbac(need: kube_doctor.Access) -> Access:
    return Access(
        need.group, "/".join(p for p in (need.resource, need.subresource) if p), need.verb, need.name
    )


DOCTOR_OWN = {
    Access("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    Access("", "configmaps", "get", kube_doctor.FLANNEL_CONFIGMAP),
    Access("apps", "daemonsets", "get", kube_doctor.FLANNEL_DAEMONSET),
}
"""What only `routectl doctor` requests: it asks about everything else."""


@pytest.mark.parametrize("secure", [True, False], ids=["https-metrics", "loopback-metrics"])
def test_doctor_asks_about_exactly_what_the_chart_grants_routectl_run(helm: Helm, secure: bool) -> None:
    needs = kube_doctor.required_access(leader_election=(NAMESPACE, LEASE), secure_metrics=secure)
    assert {_as_rbac(n) for n in needs} == _granted(helm, secure) - DOCTOR_OWN
    assert _granted(helm, secure) >= DOCTOR_OWN


def test_the_event_and_lease_paths_were_all_taken(recorded: tuple[KubeCluster, list[Access]]) -> None:
    """The comparison above is only as good as the paths exercised: a repeated Event is patched, the
    Lease is read, created, updated and watched by name."""
    cluster, seen = recorded
    for call in _every_port_call(cluster).values():
        call()
    assert {a.verb for a in seen if a.resource == "events"} == {"create", "patch"}
    assert {a.verb for a in seen if a.resource == "leases"} == {"get", "create", "update", "watch"}
    assert Access("coordination.k8s.io", "leases", "watch", LEASE) in seen
    assert Access("", "nodes/status", "patch", "n1") in seen
