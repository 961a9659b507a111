"""Node join latency: nodes join one at a time into an N-node converged cluster; per node, the time from
its podCIDR being set to its route being verified (NetworkUnavailable=False/RouteCreated).

routectl reacts to the node's own events (it also assigns the podCIDR); the baseline sees a node only at
its next full pass, so its latency is up to one period. Both worlds run side by side on identical clouds;
timestamps come from a watch on each MemoryCluster, the same event stream the controllers see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench import report
from bench.baseline import RESYNC_PERIOD_S, BaselineRouteController
from bench.world import (
    TABLE,
    add_nodes,
    await_first_pass,
    aws_like_cloud,
    new_cluster,
    node_name,
    pod_cidr,
    routectl_config,
    running_controller,
    summary_stats,
    wait_until,
)
from providers.emulators.simcloud import SimCloud
from routectl.cluster import EventType
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.nodestatus import ROUTE_CREATED


class Stopwatch:
    """Watches a cluster: when each node first had a podCIDR, and when it first said RouteCreated."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self._cluster = cluster
        self.cidr_at: dict[str, float] = {}
        self.verified_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stopwatch")

    def _run(self) -> None:
        for event in self._cluster.watch_nodes("", timeout_s=3600):
            if self._stop.is_set():
                return
            node, now = event.node, time.monotonic()
            if event.type is not EventType.MODIFIED or node is None:
                continue
            if node.pod_cidrs:
                self.cidr_at.setdefault(node.name, now)
            if node.network_unavailable == ROUTE_CREATED:
                self.verified_at.setdefault(node.name, now)

    def latencies(self, names: list[str]) -> list[float]:
        return [self.verified_at[n] - self.cidr_at[n] for n in names if n in self.verified_at]

    def __enter__(self) -> Stopwatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


Join = Callable[[MemoryCluster, SimCloud, int], None]


def _join_fresh(cluster: MemoryCluster, sim: SimCloud, index: int) -> None:
    """A new node for routectl: it assigns the podCIDR itself."""
    add_nodes(cluster, sim, range(index, index + 1), with_cidrs=False)


def _join_with_cidr(cluster: MemoryCluster, sim: SimCloud, index: int) -> None:
    """A new node for the baseline: kube-controller-manager's IPAM sets the podCIDR at once."""
    add_nodes(cluster, sim, range(index, index + 1), with_cidrs=False)
    cluster.set_pod_cidrs(node_name(index), [pod_cidr(index)])


def _joins(
    cluster: MemoryCluster, sim: SimCloud, join: Join, base: int, count: int, every_s: float
) -> list[float]:
    names = [node_name(base + k) for k in range(count)]
    with Stopwatch(cluster) as watch:
        for k in range(count):
            join(cluster, sim, base + k)
            time.sleep(every_s)
        wait_until(lambda: all(n in watch.verified_at for n in names), RESYNC_PERIOD_S * 3)
    return watch.latencies(names)


@contextmanager
def _routectl(nodes: int) -> Iterator[tuple[MemoryCluster, SimCloud]]:
    sim, cluster = aws_like_cloud(), new_cluster()
    add_nodes(cluster, sim, range(nodes), with_cidrs=True, routed=True)
    with running_controller(cluster, sim, routectl_config()):
        await_first_pass(sim)
        yield cluster, sim


@contextmanager
def _baseline(nodes: int) -> Iterator[tuple[MemoryCluster, SimCloud]]:
    sim, cluster = aws_like_cloud(), new_cluster()
    add_nodes(cluster, sim, range(nodes), with_cidrs=True, routed=True)
    baseline = BaselineRouteController(cluster, sim, (TABLE,))
    stop = threading.Event()
    thread = threading.Thread(target=baseline.run, args=(stop,), name="baseline")
    thread.start()
    try:
        wait_until(lambda: baseline.passes > 0, 60)
        yield cluster, sim
    finally:
        stop.set()
        thread.join()


def run(quick: bool) -> dict[str, Any]:
    nodes, joins, every_s = (200, 10, 1.0) if quick else (1_000, 50, 1.0)

    def measure(world: Callable[[int], Any], join: Join) -> list[float]:
        with world(nodes) as (cluster, sim):
            return _joins(cluster, sim, join, nodes, joins, every_s)

    with ThreadPoolExecutor(2) as pool:
        ours = pool.submit(measure, _routectl, _join_fresh)
        theirs = pool.submit(measure, _baseline, _join_with_cidr)
        latencies = {"routectl": ours.result(), "baseline": theirs.result()}
    report.plot_latencies(
        "join_latency.png",
        f"{joins} joins into a {nodes}-node cluster: podCIDR set → route verified",
        {"routectl": latencies["routectl"], "baseline (k8s route controller)": latencies["baseline"]},
    )
    return {
        "nodes": nodes,
        "joins": joins,
        "interval_s": every_s,
        "routectl": {**summary_stats(latencies["routectl"]), "verified": len(latencies["routectl"])},
        "baseline": {**summary_stats(latencies["baseline"]), "verified": len(latencies["baseline"])},
        "notes": [
            f"{joins} nodes join one every {every_s:g} s into a converged {nodes}-node cluster (AWS-like "
            "cloud limits), both controllers at their default periods, run side by side. Latency = "
            "first watch event showing the node's podCIDR → first event showing RouteCreated. routectl "
            "assigns the podCIDR itself; for the baseline it is set at join time (kube-controller-manager's "
            f"IPAM). Expected for the baseline ≈ U(0, {RESYNC_PERIOD_S:g} s) + one create. Plot: "
            "`join_latency.png`.",
        ],
    }
