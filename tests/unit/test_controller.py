"""The controller's wiring on MemoryCluster + SimCloud with real threads and short lease timings."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from providers import Route, RouteResult
from providers.emulators.simcloud import Fault, SimCloud
from routectl.cluster import ClusterError, NodePage
from routectl.config import Config
from routectl.controller import Controller, NotStarted
from routectl.demo.harness import converged_nodes, embedded_config, violations
from routectl.demo.memcluster import MemoryCluster
from routectl.metrics import Metrics

FAST_LEASE = (
    "--leader-elect-lease-duration=1500ms",
    "--leader-elect-renew-deadline=1s",
    "--leader-elect-retry-period=200ms",
)
WAIT_S = 20.0


def a_config(*extra: str, cidr: str = "10.244.0.0/16") -> Config:
    return embedded_config("aws", [cidr], cluster_name="sim", extra=("--region=sim", *FAST_LEASE, *extra))


def a_node(cluster: MemoryCluster, sim: SimCloud, i: int, **labels: str) -> None:
    cluster.add_node(f"node-{i}", provider_id=sim.add_instance(f"i-{i}"), labels=labels)


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def running(controller: Controller) -> Iterator[tuple[threading.Event, list[int]]]:
    stop = threading.Event()
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(controller.run(stop)))
    thread.start()
    try:
        yield stop, code
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "controller did not stop"


def all_routed(cluster: MemoryCluster, cfg: Config) -> Callable[[], bool]:
    def check() -> bool:
        done, total = converged_nodes(cluster, cfg.exclude_label)
        return total > 0 and done == total

    return check


def test_nodes_get_cidrs_routes_and_the_condition_then_stop_releases_the_lease() -> None:
    cluster, sim, cfg = MemoryCluster(), SimCloud("sim"), a_config()
    for i in range(8):
        a_node(cluster, sim, i)
    a_node(cluster, sim, 99, **{"routectl.io/exclude": "true"})

    with running(Controller(cfg, cluster, sim, Metrics())) as (_, code):
        eventually(all_routed(cluster, cfg), "every node routed")
        assert violations(cluster, sim, cfg) == ()
        a_node(cluster, sim, 8)
        eventually(all_routed(cluster, cfg), "the new node routed")

    assert code == [0]
    assert cluster.get_node("node-99").pod_cidrs == ()
    lease = cluster.lease("routectl-demo", "routectl")
    assert lease is not None
    assert lease.holder == ""


def test_a_deleted_nodes_route_goes_before_its_block_is_reused() -> None:
    # 4 blocks: the fifth node can only get the block of the deleted one.
    cluster, sim, cfg = (
        MemoryCluster(),
        SimCloud("sim"),
        a_config("--node-cidr-mask-size-ipv4=28", cidr="10.244.0.0/26"),
    )
    cfg_blocks = [str(n) for n in ipaddress.ip_network("10.244.0.0/26").subnets(new_prefix=28)]
    for i in range(4):
        a_node(cluster, sim, i)
    with running(
        Controller(
            cfg,
            cluster,
            sim,
            Metrics(),
        )
    ) as _:
        eventually(all_routed(cluster, cfg), "four nodes routed")
        freed = cluster.get_node("node-1").pod_cidrs
        sim.inject("delete_routes", *[Fault.SERVER_ERROR] * 12)  # the old route outlives the Node a while
        cluster.delete_node("node-1")
        a_node(cluster, sim, 4)
        eventually(lambda: sim.calls["delete_routes"] >= 8, "the failing deletes")
        assert cluster.get_node("node-4").pod_cidrs == ()
        eventually(lambda: cluster.get_node("node-4").pod_cidrs == freed, "the freed block reused")
        eventually(all_routed(cluster, cfg), "the new node routed")
        routes = {str(d): r.instance for d, r in sim.routes("rtb-main").items()}

    assert sorted(c for n in cluster.nodes().values() for c in n.pod_cidrs) == sorted(cfg_blocks)
    assert routes[freed[0]] == "i-4"
    assert "i-1" not in routes.values()


def test_leadership_lost_to_a_hung_renew_stops_every_write_and_exits_1() -> None:
    cluster, sim, cfg = MemoryCluster(), SimCloud("sim"), a_config()
    a_node(cluster, sim, 0)
    controller = Controller(cfg, cluster, sim, Metrics())
    with running(controller) as (_, code):
        eventually(all_routed(cluster, cfg), "the node routed")
        for _ in range(10):  # every renew from now on hangs past the renew deadline
            cluster.inject("update_lease", lambda: time.sleep(2.0))
        eventually(lambda: bool(code), "the controller to give up")
        writes = sum(sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes"))
        a_node(cluster, sim, 1)
        time.sleep(0.5)

    assert code == [1]
    assert cluster.get_node("node-1").pod_cidrs == ()
    assert sum(sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes")) == writes


def test_run_once_is_true_only_when_everything_converged() -> None:
    cluster, sim = MemoryCluster(), SimCloud("sim", quota=2)
    for i in range(2):
        a_node(cluster, sim, i)
    assert Controller(a_config(), cluster, sim, Metrics()).run_once(threading.Event(), startup_s=30.0) is True

    a_node(cluster, sim, 2)  # the table holds 2 routes: this node is blocked by quota
    assert (
        Controller(a_config(), cluster, sim, Metrics()).run_once(threading.Event(), startup_s=30.0) is False
    )
    assert any(e.reason == "RouteQuotaExceeded" and e.node == "node-2" for e in cluster.events)


def test_the_verdict_of_each_full_pass_is_the_converged_gauge() -> None:
    cluster, sim = MemoryCluster(), SimCloud("sim", quota=1)
    a_node(cluster, sim, 0)
    a_node(cluster, sim, 1)  # blocked by the quota of 1
    metrics = Metrics()
    assert Controller(a_config(), cluster, sim, metrics).run_once(threading.Event(), startup_s=30.0) is False
    assert metrics.registry.get_sample_value("routectl_converged") == 0

    cluster.delete_node("node-1")
    metrics = Metrics()
    assert Controller(a_config(), cluster, sim, metrics).run_once(threading.Event(), startup_s=30.0) is True
    assert metrics.registry.get_sample_value("routectl_converged") == 1


def test_dry_run_changes_nothing_in_the_cluster_or_the_cloud() -> None:
    cluster, sim = MemoryCluster(), SimCloud("sim")
    a_node(cluster, sim, 0)
    cluster.add_node("node-1", provider_id=sim.add_instance("i-1"), pod_cidrs=["10.244.7.0/24"])

    converged = Controller(a_config("--dry-run"), cluster, sim, Metrics()).run_once(
        threading.Event(), startup_s=30.0
    )

    assert converged is False
    assert cluster.get_node("node-0").pod_cidrs == ()
    assert all(n.network_unavailable is None for n in cluster.nodes().values())
    assert sim.routes("rtb-main") == {}
    assert sum(sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes")) == 0
    assert cluster.events == []


class _Unreachable(MemoryCluster):
    """An API server that refuses every node list: the cache never syncs."""

    def list_nodes(self, limit: int, continue_token: str = "") -> NodePage:
        raise ClusterError("GET /api/v1/nodes: connection refused")


def test_run_once_ends_within_its_startup_bound_when_the_cache_never_syncs() -> None:
    cluster, sim = _Unreachable(), SimCloud("sim")
    began = time.monotonic()
    with pytest.raises(NotStarted, match=r"not leading with a synced node cache after 2s"):
        Controller(a_config(), cluster, sim, Metrics()).run_once(threading.Event(), startup_s=2.0)
    assert time.monotonic() - began < 2.0 + WAIT_S / 4
    assert sum(sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes")) == 0


class SlowReplies(SimCloud):
    """A cloud whose create calls land at once but answer only when `answer` is set: the shape of a
    write in flight when SIGTERM comes."""

    def __init__(self) -> None:
        super().__init__("sim")
        self.in_flight = threading.Event()
        self.answer = threading.Event()

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        results = super().create_routes(table, routes)
        self.in_flight.set()
        self.answer.wait(WAIT_S)
        return results


def test_shutdown_is_bounded_by_the_drain_window_and_releases_the_lease_while_a_write_hangs() -> None:
    cluster, sim, cfg = MemoryCluster(), SlowReplies(), a_config()
    a_node(cluster, sim, 0)
    controller = Controller(cfg, cluster, sim, Metrics())
    stop, code = threading.Event(), []
    runner = threading.Thread(target=lambda: code.append(controller.run(stop)))
    runner.start()
    try:
        eventually(sim.in_flight.is_set, "a create call in flight")
        writes = sim.calls["create_routes"]
        stopped = time.monotonic()
        stop.set()
        runner.join(timeout=WAIT_S)
        took_s = time.monotonic() - stopped

        assert not runner.is_alive()
        assert code == [0]
        assert took_s < WAIT_S / 2  # bounded by the drain window (0.5 s here), not by the hung reply
        assert controller.unfinished  # the thread waiting for the reply was left behind
        lease = cluster.lease("routectl-demo", "routectl")
        assert lease is not None
        assert lease.holder == ""
    finally:
        sim.answer.set()
    stragglers = [t for t in threading.enumerate() if t.name in controller.unfinished]
    for thread in stragglers:
        thread.join(timeout=WAIT_S)
    # Once answered, nothing more was written: no other create, and not the RouteCreated condition that
    # would follow the route's verification (a Node status patch, also behind the fence).
    assert sim.calls["create_routes"] == writes
    condition = cluster.get_node("node-0").network_unavailable
    assert condition is None or condition.status == "True"
