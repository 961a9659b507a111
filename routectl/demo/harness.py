"""Run the whole controller in-process against a MemoryCluster and any provider, and check the result.

Used by `routectl demo`, the adapters' full-controller tests and the benchmarks, so "converged" means one
thing everywhere: every node that wants a route has a podCIDR, the NetworkUnavailable condition says
RouteCreated, and listing every managed table shows exactly one owned route per node podCIDR, pointing at
the node's instance. The check reads the cloud itself rather than trusting the controller's own claim.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ipam import inside
from providers import RouteProvider
from providers.registry import Registry
from routectl import config as configuration
from routectl.cluster import Node
from routectl.controller import Controller
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.ownership import CIDRProblem, owners
from routectl.metrics import Metrics
from routectl.reasons import ConditionReason

Progress = Callable[[int, int], None]
"""Called with (nodes converged, nodes total) while waiting."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run of the whole controller ended (not a route's `providers.Outcome`)."""

    converged: bool
    elapsed_s: float
    violations: tuple[str, ...]
    exit_code: int


def embedded_config(
    provider: str,
    cluster_cidrs: Sequence[str],
    *,
    cluster_name: str = "demo",
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> configuration.Config:
    """A `run` config for an in-process controller: no HTTP endpoints, the lease in `routectl-demo`."""
    argv = [
        f"--cluster-name={cluster_name}",
        f"--cluster-cidr={','.join(cluster_cidrs)}",
        f"--provider={provider}",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
        "--leader-elect-resource-namespace=routectl-demo",
        *extra,
    ]
    return configuration.load(argv, env or {"POD_NAME": "routectl-embedded"}, "run", registry)


def converged_nodes(cluster: MemoryCluster, exclude_label: tuple[str, str]) -> tuple[int, int]:
    """(nodes whose condition says RouteCreated, nodes that want a route)."""
    wanted = [n for n in cluster.nodes().values() if not n.excluded_by(exclude_label) and not n.deleting]
    done = sum(
        1
        for n in wanted
        if n.network_unavailable is not None
        and n.network_unavailable.status == "False"
        and n.network_unavailable.reason == ConditionReason.ROUTE_CREATED
    )
    return done, len(wanted)


def violations(cluster: MemoryCluster, provider: RouteProvider, cfg: configuration.Config) -> tuple[str, ...]:
    """Every broken invariant, read from the cluster and from the cloud's own listing."""
    problems: list[str] = []
    nodes = {n.name: n for n in cluster.nodes().values() if not n.excluded_by(cfg.exclude_label)}
    ownership = owners(nodes.values(), cfg.pool_rules())
    for node in nodes.values():
        problems += _node_problems(node, ownership.rejected(node.name))
    wanted = {block: provider.target_for(nodes[name].provider_id) for block, name in ownership.owners.items()}
    for table in provider.tables():
        # Owned routes outside the cluster CIDRs are not routectl's to judge (nor ever touched by it).
        owned = [
            r for r in provider.list_routes(table) if r.owned and inside(r.destination, cfg.cluster_cidrs)
        ]
        by_dest: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, int] = {}
        for route in owned:
            by_dest[route.destination] = by_dest.get(route.destination, 0) + 1
            target = wanted.get(route.destination)
            if target is None:
                problems.append(f"table {table}: owned route {route.destination} belongs to no node")
            elif route.target is None or route.target.instance != target.instance:
                problems.append(f"table {table}: route {route.destination} points at {route.next_hop}")
        for destination in wanted:
            if by_dest.get(destination, 0) != 1:
                problems.append(
                    f"table {table}: {by_dest.get(destination, 0)} owned routes for {destination}"
                )
    return tuple(problems)


def _node_problems(node: Node, rejected: Sequence[CIDRProblem]) -> list[str]:
    problems: list[str] = []
    if not node.pod_cidrs:
        problems.append(f"node {node.name}: no podCIDR")
    problems += [f"node {node.name}: {problem.message}" for problem in rejected]
    condition = node.network_unavailable
    if condition is None or (condition.status, condition.reason) != ("False", ConditionReason.ROUTE_CREATED):
        problems.append(f"node {node.name}: NetworkUnavailable is {condition}")
    return problems


def run_until_converged(
    cluster: MemoryCluster,
    provider: RouteProvider,
    cfg: configuration.Config,
    *,
    timeout_s: float,
    metrics: Metrics | None = None,
    progress: Progress | None = None,
    poll_s: float = 0.1,
    stop_s: float = 60.0,
) -> RunResult:
    """Start the controller, wait until every node reports RouteCreated (or the timeout), stop it
    (SIGTERM semantics: workers joined, lease released — waited for `stop_s` at most), then verify
    against the cloud."""
    controller = Controller(cfg, cluster, provider, metrics or Metrics())
    stop = threading.Event()
    exit_code: list[int] = []
    thread = threading.Thread(target=lambda: exit_code.append(controller.run(stop)), name="controller")
    started = time.monotonic()
    thread.start()
    try:
        while time.monotonic() - started < timeout_s and thread.is_alive():
            done, total = converged_nodes(cluster, cfg.exclude_label)
            if progress is not None:
                progress(done, total)
            if total and done == total:
                break
            time.sleep(poll_s)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=stop_s)
    found = violations(cluster, provider, cfg)
    return RunResult(
        converged=not found, elapsed_s=elapsed, violations=found, exit_code=exit_code[0] if exit_code else -1
    )
