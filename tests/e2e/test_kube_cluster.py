"""KubeCluster against a real kube-apiserver: the Cluster port's promises hold on the real server.

Pagination, watch with bookmarks, 410 after compaction, podCIDR only from empty, the condition via
nodes/status, Event aggregation, Lease create/update/409, and the error mapping (403, timeouts).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from routectl.cluster import (
    AmbiguousError,
    ClusterError,
    Condition,
    ConflictError,
    EventType,
    ForbiddenError,
    GoneError,
    InvalidError,
    Lease,
    Node,
    NotFoundError,
)
from routectl.kube.client import KubeCluster
from routectl.kube.events import EventPolicy
from routectl.kube.informer import NodeChange, NodeInformer
from tests.support.apiserver import ControlPlane

REPORTER = "routectl-7d9f-x2x7k_0a1b2c3d"
"""The reporting instance of the `kube` fixture: a pod name and the election suffix, as in production."""


def a_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_kubeconfig(api: client.ApiClient, path: Path) -> Path:
    """A kubeconfig file for the admin client certificate, so tests go through `from_kubeconfig`."""
    conf = api.configuration
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": conf.host, "certificate-authority": conf.ssl_ca_cert}}
        ],
        "users": [
            {"name": "admin", "user": {"client-certificate": conf.cert_file, "client-key": conf.key_file}}
        ],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.fixture(scope="module")
def kube(admin_api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = KubeCluster.from_kubeconfig(
        str(admin_kubeconfig(admin_api, tmp_path_factory.mktemp("kube") / "kubeconfig")),
        reporting_instance=REPORTER,
    )
    yield cluster
    cluster.close()


@pytest.fixture
def core(admin_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(admin_api)


def create_node(core: client.CoreV1Api, name: str, labels: dict[str, str] | None = None) -> None:
    meta = client.V1ObjectMeta(name=name, labels=labels)
    core.create_node(client.V1Node(metadata=meta, spec=client.V1NodeSpec(provider_id=f"aws:///z/{name}")))


@pytest.fixture
def node(core: client.CoreV1Api, kube: KubeCluster) -> Iterator[Node]:
    """A fresh Node without a podCIDR; deleted afterwards."""
    name = a_name("node")
    create_node(core, name)
    yield kube.get_node(name)
    core.delete_node(name)


def test_list_nodes_pages_with_limit_and_continue(core: client.CoreV1Api, kube: KubeCluster) -> None:
    names = sorted(a_name("page") for _ in range(5))
    for name in names:
        create_node(core, name)

    pages = [kube.list_nodes(limit=2)]
    while pages[-1].continue_token:
        pages.append(kube.list_nodes(limit=2, continue_token=pages[-1].continue_token))

    listed = [node.name for page in pages for node in page.items]
    assert set(names) <= set(listed)
    assert len(listed) == len(set(listed))
    assert all(len(page.items) <= 2 for page in pages)
    assert len({page.resource_version for page in pages}) == 1
    for name in names:
        core.delete_node(name)


def test_nodes_convert_provider_id_labels_and_deletion(core: client.CoreV1Api, kube: KubeCluster) -> None:
    name = a_name("conv")
    create_node(core, name, labels={"routectl.io/exclude": "true"})

    node = kube.get_node(name)

    assert (node.provider_id, dict(node.labels), node.pod_cidrs) == (
        f"aws:///z/{name}",
        {"routectl.io/exclude": "true"},
        (),
    )
    assert node.uid
    assert not node.deleting
    core.delete_node(name)
    with pytest.raises(NotFoundError):
        kube.get_node(name)


def test_watch_streams_changes_in_order(core: client.CoreV1Api, kube: KubeCluster) -> None:
    """(The real server bookmarks an unfiltered node watch only once the nodes' resourceVersion moves
    past everything the watcher saw, which a short test cannot provoke; see the scripted test below.)"""
    start = kube.list_nodes(limit=1).resource_version
    name = a_name("watch")
    create_node(core, name)
    core.patch_node(name, {"metadata": {"labels": {"touched": "yes"}}})
    core.delete_node(name)

    events = list(kube.watch_nodes(start, timeout_s=2))

    ours = [e for e in events if e.node is not None and e.node.name == name]
    assert [e.type for e in ours] == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]
    versions = [int(e.resource_version) for e in ours]
    assert versions == sorted(versions)
    assert all(int(e.resource_version) > int(start) for e in events)


def test_watch_from_a_compacted_version_raises_gone(
    control_plane_without_watch_cache: ControlPlane, tmp_path: Path
) -> None:
    plane = control_plane_without_watch_cache
    with plane.admin_api_client() as api:
        kube = KubeCluster.from_kubeconfig(str(admin_kubeconfig(api, tmp_path / "kubeconfig")))
        core = client.CoreV1Api(api)
        old = kube.list_nodes(limit=1).resource_version
        names = [a_name("gone"), a_name("gone")]  # a watch from `old` needs old+1: compact past it
        for name in names:
            create_node(core, name)
        plane.compact_etcd()

        with pytest.raises(GoneError):
            list(kube.watch_nodes(old, timeout_s=5))
        for name in names:
            core.delete_node(name)
        kube.close()


def test_pod_cidrs_are_set_only_when_empty(kube: KubeCluster, node: Node) -> None:
    cidrs = ("10.244.9.0/24", "fd00:10:244:9::/64")

    updated = kube.set_pod_cidrs(node.name, cidrs)

    assert updated.pod_cidrs == cidrs
    with pytest.raises(ConflictError):
        kube.set_pod_cidrs(node.name, ["10.244.10.0/24"])
    with pytest.raises(ConflictError):
        kube.set_pod_cidrs(node.name, cidrs)
    assert kube.get_node(node.name).pod_cidrs == cidrs


def test_an_invalid_pod_cidr_is_invalid_not_a_conflict(kube: KubeCluster, node: Node) -> None:
    with pytest.raises(InvalidError):
        kube.set_pod_cidrs(node.name, ["not-a-cidr"])

    assert kube.get_node(node.name).pod_cidrs == ()


def test_pod_cidrs_of_a_missing_node_are_not_found(kube: KubeCluster) -> None:
    with pytest.raises(NotFoundError):
        kube.set_pod_cidrs(a_name("missing"), ["10.244.11.0/24"])


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def a_kube(api: client.ApiClient, tmp_path: Path, **options: Any) -> KubeCluster:
    return KubeCluster.from_kubeconfig(str(admin_kubeconfig(api, tmp_path / "kubeconfig")), **options)


def condition_of(core: client.CoreV1Api, name: str) -> dict[str, Any]:
    raw = core.api_client.sanitize_for_serialization(core.read_node_status(name))
    return next(c for c in raw["status"]["conditions"] if c["type"] == "NetworkUnavailable")


def test_network_unavailable_is_patched_through_status_and_keeps_its_transition_time(
    admin_api: client.ApiClient, core: client.CoreV1Api, node: Node, tmp_path: Path
) -> None:
    wall = FakeClock(1_700_000_000.0)
    kube = a_kube(admin_api, tmp_path, wall=wall)
    kube.set_network_unavailable(node.name, Condition("True", "NoRouteCreated", "waiting"))
    first = condition_of(core, node.name)

    wall.now += 10
    kube.set_network_unavailable(node.name, Condition("True", "NoRouteCreated", "still waiting"))
    same_status = condition_of(core, node.name)
    wall.now += 10
    kube.set_network_unavailable(node.name, Condition("False", "RouteCreated", "created"))
    flipped = condition_of(core, node.name)
    kube.close()

    assert (first["status"], first["reason"], first["message"]) == ("True", "NoRouteCreated", "waiting")
    assert first["lastTransitionTime"].startswith("2023-11-14T22:13:20")
    assert same_status["message"] == "still waiting"
    assert same_status["lastTransitionTime"] == first["lastTransitionTime"]
    assert same_status["lastHeartbeatTime"].startswith("2023-11-14T22:13:30")
    assert (flipped["status"], flipped["reason"]) == ("False", "RouteCreated")
    assert flipped["lastTransitionTime"].startswith("2023-11-14T22:13:40")
    assert kube.get_node(node.name).network_unavailable == Condition("False", "RouteCreated", "created")


def events_of(core: client.CoreV1Api, name: str) -> list[tuple[str, int]]:
    """(message, count) of the Events about Node `name`, sorted."""
    items = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    return sorted((event.message or "", event.count or 0) for event in items)


def test_repeated_events_aggregate_into_one_event_with_a_count(
    core: client.CoreV1Api, kube: KubeCluster, node: Node
) -> None:
    for _ in range(4):
        kube.record_event(node, "Warning", "FailedToCreateRoute", "quota exceeded")
    kube.record_event(node, "Warning", "FailedToCreateRoute", "throttled")

    items = core.list_namespaced_event("default", field_selector=f"involvedObject.uid={node.uid}").items
    raw = core.api_client.sanitize_for_serialization(items[0])

    assert events_of(core, node.name) == [("quota exceeded", 4), ("throttled", 1)]
    assert raw["involvedObject"]["kind"] == "Node"


def test_events_name_the_reporting_controller_and_instance(
    core: client.CoreV1Api, kube: KubeCluster, node: Node
) -> None:
    """As client-go's recorder: source.component / reportingComponent is the controller,
    source.host / reportingInstance the process (the identity it stands for election under); the
    server indexes reportingComponent, so `--field-selector reportingComponent=routectl` finds them."""
    kube.record_event(node, "Warning", "RouteConflict", "in the way")

    selector = f"reportingComponent=routectl,involvedObject.uid={node.uid}"
    (event,) = core.list_namespaced_event("default", field_selector=selector).items
    raw = core.api_client.sanitize_for_serialization(event)

    assert raw["source"] == {"component": "routectl", "host": REPORTER}
    assert (raw["reportingComponent"], raw["reportingInstance"]) == ("routectl", REPORTER)


def test_event_writes_per_node_are_capped_but_keep_counting(
    admin_api: client.ApiClient, core: client.CoreV1Api, node: Node, tmp_path: Path
) -> None:
    clock = FakeClock(0.0)
    kube = a_kube(admin_api, tmp_path, events=EventPolicy(burst=2, refill_s=100.0), clock=clock)
    for _ in range(4):  # create, patch, then over budget: counted, not written
        kube.record_event(node, "Warning", "RouteConflict", "conflict")
    kube.record_event(node, "Warning", "RouteConflict", "another")  # over budget: dropped
    assert events_of(core, node.name) == [("conflict", 2)]

    clock.now += 100.0  # one token back
    kube.record_event(node, "Warning", "RouteConflict", "conflict")
    kube.close()

    assert events_of(core, node.name) == [("conflict", 5)]


def test_lease_create_update_and_conflicts(kube: KubeCluster) -> None:
    name = a_name("lease")
    assert kube.get_lease("default", name, timeout_s=5) is None
    whole_second = float(int(time.time()))  # MicroTime must keep its ".000000"
    created = kube.create_lease(
        Lease(
            "default",
            name,
            holder="a",
            lease_duration_s=15,
            acquire_time=whole_second,
            renew_time=whole_second,
        ),
        timeout_s=5,
    )
    with pytest.raises(ConflictError):
        kube.create_lease(Lease("default", name, holder="b", lease_duration_s=15), timeout_s=5)

    renewed = kube.update_lease(
        Lease(
            "default",
            name,
            holder="a",
            lease_duration_s=15,
            acquire_time=whole_second,
            renew_time=whole_second + 2.123456,
            transitions=1,
            resource_version=created.resource_version,
        ),
        timeout_s=5,
    )
    with pytest.raises(ConflictError):
        kube.update_lease(
            Lease(
                "default", name, holder="c", lease_duration_s=15, resource_version=created.resource_version
            ),
            timeout_s=5,
        )

    read = kube.get_lease("default", name, timeout_s=5)
    assert created.acquire_time == whole_second
    assert read == renewed
    assert (read.holder, read.transitions) == ("a", 1)
    assert read.renew_time == pytest.approx(whole_second + 2.123456, abs=1e-6)


def test_a_lease_watch_streams_the_changes_of_that_lease_only(kube: KubeCluster) -> None:
    name, other = a_name("lease"), a_name("lease")
    created = kube.create_lease(Lease("default", name, holder="a", lease_duration_s=15), timeout_s=5)
    seen: list[Lease] = []

    def watch() -> None:
        seen.extend(kube.watch_lease("default", name, created.resource_version, timeout_s=2))

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.5)
    kube.create_lease(Lease("default", other, holder="x", lease_duration_s=15), timeout_s=5)
    released = kube.update_lease(
        Lease("default", name, holder="", lease_duration_s=1, resource_version=created.resource_version),
        timeout_s=5,
    )
    watcher.join(10)

    assert not watcher.is_alive()
    assert seen == [released]
    # From "": the current state first, then changes (none here).
    assert [x.holder for x in kube.watch_lease("default", name, "", timeout_s=1)] == [""]


def test_a_service_account_without_rbac_is_forbidden(
    control_plane: ControlPlane, core: client.CoreV1Api, tmp_path: Path
) -> None:
    name = a_name("nobody")
    core.create_namespaced_service_account(
        "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    token = control_plane.service_account_token("default", name)
    kube = KubeCluster.from_kubeconfig(str(control_plane.kubeconfig_for_token(token, tmp_path / "kc")))

    with pytest.raises(ForbiddenError):
        kube.list_nodes(limit=10)
    kube.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections and never answers: a hung API server."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_hung_server_times_out_writes_as_ambiguous_and_reads_as_errors(
    silent_server: str, tmp_path: Path
) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hung", "cluster": {"server": silent_server}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "hung", "context": {"cluster": "hung", "user": "u"}}],
        "current-context": "hung",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    kube = KubeCluster.from_kubeconfig(str(path), request_timeout_s=0.3, watch_read_margin_s=0.3)

    with pytest.raises(AmbiguousError):
        kube.update_lease(Lease("default", "l", holder="a", resource_version="1"), timeout_s=0.3)
    with pytest.raises(ClusterError) as read_error:
        kube.get_node("n1")
    with pytest.raises(ClusterError) as watch_error:
        list(kube.watch_nodes("1", timeout_s=0.1))  # server timeout 1 s + margin bounds the read

    assert not isinstance(read_error.value, AmbiguousError)
    assert not isinstance(watch_error.value, AmbiguousError)
    kube.close()


class ScriptedWatch(http.server.BaseHTTPRequestHandler):
    """Answers every request with the JSON lines in `server.lines`, chunked, as a watch does."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in self.server.lines:  # type: ignore[attr-defined]
            data = (json.dumps(line) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def scripted() -> Iterator[tuple[http.server.ThreadingHTTPServer, KubeCluster]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedWatch)
    server.lines = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
    kube = KubeCluster(api)
    yield server, kube
    kube.close()
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def node_json(name: str, rv: str) -> dict[str, object]:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": {"podCIDR": "10.244.1.0/24"},
    }


def test_a_watch_parses_bookmarks_and_old_single_stack_pod_cidr(
    scripted: tuple[http.server.ThreadingHTTPServer, KubeCluster],
) -> None:
    server, kube = scripted
    server.lines = [  # type: ignore[attr-defined]
        {"type": "ADDED", "object": node_json("n1", "41")},
        {"type": "BOOKMARK", "object": {"kind": "Node", "metadata": {"resourceVersion": "57"}}},
    ]

    events = list(kube.watch_nodes("40", timeout_s=5))

    assert [(e.type, e.resource_version) for e in events] == [
        (EventType.ADDED, "41"),
        (EventType.BOOKMARK, "57"),
    ]
    assert events[0].node is not None
    assert events[0].node.pod_cidrs == ("10.244.1.0/24",)


def test_a_410_error_event_inside_the_stream_raises_gone(
    scripted: tuple[http.server.ThreadingHTTPServer, KubeCluster],
) -> None:
    server, kube = scripted
    expired = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "too old resource version: 1 (40)",
    }
    server.lines = [  # type: ignore[attr-defined]
        {"type": "ADDED", "object": node_json("n1", "41")},
        {"type": "ERROR", "object": expired},
    ]
    stream = kube.watch_nodes("1", timeout_s=5)

    first = next(stream)
    with pytest.raises(GoneError, match="too old resource version"):
        next(stream)

    assert first.resource_version == "41"


def test_the_informer_follows_real_nodes_through_kube_cluster(
    core: client.CoreV1Api, kube: KubeCluster
) -> None:
    changes: list[NodeChange] = []
    arrived = threading.Condition()

    def record(change: NodeChange) -> None:
        with arrived:
            changes.append(change)
            arrived.notify_all()

    def seen(kind: str, name: str) -> bool:
        return any(c.kind == kind and (c.new or c.old).name == name for c in changes)  # type: ignore[union-attr]

    informer = NodeInformer(kube, record, page_size=2, watch_timeout_s=(1.0, 1.0))
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,))
    thread.start()
    name = a_name("informed")
    try:
        assert informer.synced.wait(30)
        create_node(core, name)
        with arrived:
            assert arrived.wait_for(lambda: seen("added", name), 30)
        core.delete_node(name)
        with arrived:
            assert arrived.wait_for(lambda: seen("deleted", name), 30)
    finally:
        stop.set()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert informer.get(name) is None
