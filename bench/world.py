"""The benchmarks' shared world: a SimCloud at AWS-like limits, a MemoryCluster of nodes on it, and the
real controller running against both in a thread.

Invariant: routectl and the baseline are always measured on identically built worlds (same cloud
limits, latency, node names, instances and podCIDR scheme), so their figures differ only by algorithm.
"""

from __future__ import annotations

import ipaddress
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from providers.emulators.simcloud import Bucket, CloudBucket, SimCloud
from routectl.config import Config
from routectl.controller import Controller
from routectl.demo.harness import converged_nodes, embedded_config, violations
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.nodestatus import ROUTE_CREATED
from routectl.metrics import Metrics

CLUSTER = "bench"
CLUSTER_CIDR = "10.0.0.0/8"
CLUSTER_CIDR_V6 = "fd00::/48"
TABLE = "rtb-main"

AWS_WRITES = Bucket(burst=50, rate=5.0)
"""EC2's mutating-action bucket (CreateRoute, ModifyInstanceAttribute …) per account and region."""
AWS_READS = Bucket(burst=100, rate=20.0)
"""EC2's non-mutating-action bucket (Describe*)."""
AWS_LATENCY_S = 0.05


def aws_like_cloud(
    tables: Sequence[str] = (TABLE,),
    *,
    cluster: str = CLUSTER,
    account: tuple[CloudBucket, CloudBucket] | None = None,
) -> SimCloud:
    """One cluster's view of an AWS-like account; `account` = (writes, reads) buckets shared with
    other clusters' views (`shared_account`), else the account is this cluster's alone."""
    write, read = account or (AWS_WRITES, AWS_READS)
    return SimCloud(cluster, tables=tables, write=write, read=read, latency_s=AWS_LATENCY_S)


def shared_account() -> tuple[CloudBucket, CloudBucket]:
    """The (writes, reads) buckets of one AWS-like account, to share between clusters."""
    now = time.monotonic()
    return CloudBucket(AWS_WRITES, now), CloudBucket(AWS_READS, now)


def node_name(index: int) -> str:
    return f"node-{index:05d}"


def pod_cidr(index: int) -> str:
    """The index-th /24 of the cluster CIDR: what a range allocator hands out on a fresh cluster."""
    return str(ipaddress.IPv4Network((0x0A000000 + (index << 8), 24)))


def pod_cidr_v6(index: int) -> str:
    """The index-th /64 of the cluster's IPv6 CIDR (fd00::/48)."""
    return str(ipaddress.IPv6Network(((0xFD00 << 112) + (index << 64), 64)))


def pod_cidrs(index: int, dual_stack: bool) -> list[str]:
    return [pod_cidr(index), pod_cidr_v6(index)] if dual_stack else [pod_cidr(index)]


def add_nodes(
    cluster: MemoryCluster,
    sim: SimCloud,
    indices: range,
    *,
    with_cidrs: bool,
    routed: bool = False,
    tables: Sequence[str] = (TABLE,),
    dual_stack: bool = False,
) -> None:
    """Nodes on fresh instances; `with_cidrs` pre-assigns podCIDRs (as kube-controller-manager's IPAM
    would; one per family when `dual_stack`), `routed` also puts their owned routes in every table and
    marks them RouteCreated."""
    for i in indices:
        name = node_name(i)
        instance = f"i-{i:08x}"
        provider_id = sim.add_instance(instance)
        cidrs = pod_cidrs(i, dual_stack) if with_cidrs else []
        cluster.add_node(name, provider_id=provider_id, pod_cidrs=cidrs)
        if routed:
            for table in tables:
                for cidr in cidrs:
                    sim.add_route(table, cidr, instance, owner=sim.cluster_name, node=name)
            cluster.set_network_unavailable(name, ROUTE_CREATED)


def new_cluster() -> MemoryCluster:
    # A long history keeps the informer's watch alive through thousands of node updates.
    return MemoryCluster(history_limit=200_000)


def routectl_config(period_s: float = 60.0, *, dual_stack: bool = False, cluster: str = CLUSTER) -> Config:
    """The controller's own config (leader election on), with a SimCloud standing in for the provider."""
    return embedded_config(
        "aws",
        [CLUSTER_CIDR, CLUSTER_CIDR_V6] if dual_stack else [CLUSTER_CIDR],
        cluster_name=cluster,
        extra=["--region=sim", f"--route-reconciliation-period={period_s}s"],
    )


@contextmanager
def running_controller(cluster: MemoryCluster, sim: SimCloud, cfg: Config) -> Iterator[Controller]:
    """The real Controller in a thread; on exit: SIGTERM semantics (stop, join, lease released)."""
    controller = Controller(cfg, cluster, sim, Metrics())
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), name="routectl")
    thread.start()
    try:
        yield controller
    finally:
        stop.set()
        thread.join(timeout=60)


def measure(
    sim: SimCloud,
    cluster: MemoryCluster,
    cfg: Config,
    run: Callable[[threading.Event], object],
    timeout_s: float,
    tables: Sequence[str] = (TABLE,),
) -> dict[str, Any]:
    """Run a controller (`run(stop)`, on a thread) from a fresh start until every node says
    RouteCreated: seconds, cloud calls by API and throttled responses up to that moment, the route
    curve, and whether the cloud's own listing agrees (`violations`)."""
    before = Counter(sim.calls)
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), name="under-test")
    with Curve(sim, tables) as curve:
        started = time.monotonic()
        thread.start()
        done = wait_until(lambda: all_converged(cluster, cfg), timeout_s, poll_s=0.1)
        elapsed = time.monotonic() - started
        calls, throttled = api_calls(sim, before), sum(sim.throttled.values())
        stop.set()
        thread.join(timeout=60)
    return {
        "converged": done and not violations(cluster, sim, cfg),
        "seconds": round(elapsed, 2),
        "api_calls": calls,
        "throttled": throttled,
        "curve": curve.points,
    }


def api_calls(sim: SimCloud, before: Counter[str]) -> dict[str, int]:
    """Cloud calls by API name since `before` (a copy of `sim.calls` taken when the measurement began).

    The sim counts `tables()` too, but no adapter pays for it per pass (AWS discovers the tables once and
    caches them), so it is left out."""
    calls = Counter(sim.calls) - before
    del calls["tables"]
    return dict(sorted(calls.items()))


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


def await_first_pass(sim: SimCloud, timeout_s: float = 120.0) -> None:
    """Return once the controller's first full pass has listed the cloud and had time to finish (on an
    already-converged world it writes nothing, so the list is the only sign of it)."""
    if not wait_until(lambda: sim.calls["list_routes"] > 0, timeout_s):
        raise RuntimeError(f"the controller made no full pass within {timeout_s:g} s")
    time.sleep(1.0)


def all_converged(cluster: MemoryCluster, cfg: Config) -> bool:
    done, total = converged_nodes(cluster, cfg.exclude_label)
    return total > 0 and done == total


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: an observed value, never interpolated (p99 of < 100 samples = the max)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def summary_stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_s": round(percentile(values, 50), 3),
        "p99_s": round(percentile(values, 99), 3),
        "mean_s": round(statistics.fmean(values), 3),
        "max_s": round(max(values), 3),
        "samples": len(values),
    }


class Curve:
    """Samples (seconds since start, owned routes in `tables`) on a thread of its own."""

    def __init__(self, sim: SimCloud, tables: Sequence[str] = (TABLE,), every_s: float = 0.5) -> None:
        self._sim = sim
        self._tables = tuple(tables)
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curve")
        self._started = 0.0
        self.points: list[tuple[float, int]] = []

    def _count(self) -> int:
        owner = self._sim.cluster_name
        return sum(1 for t in self._tables for r in self._sim.routes(t).values() if r.owner == owner)

    def _run(self) -> None:
        while True:
            self.points.append((round(time.monotonic() - self._started, 2), self._count()))
            if self._stop.wait(self._every_s):
                break

    def __enter__(self) -> Curve:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.points.append((round(time.monotonic() - self._started, 2), self._count()))
