"""Scale: N nodes on a SimCloud with several route tables and limits high enough not to be rate-bound.

Peak RSS comes from a child process (`python -m bench.scale N TABLES`) that builds the world, runs the
real controller to convergence and reports its high-water RSS (VmHWM); the world alone (cluster, cloud
and N nodes) is reported too, read from /proc before the controller starts, since both live in that one
process. The
full plan (`planner.plan`, pure) and the IPAM rebuild (`Allocator.rebuild`) are timed in this process.
"""

from __future__ import annotations

import ipaddress
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.world import (
    CLUSTER,
    add_nodes,
    all_converged,
    new_cluster,
    node_name,
    pod_cidr,
    pod_cidrs,
    routectl_config,
    running_controller,
    wait_until,
)
from providers import Limits, Route, Target
from providers.emulators.simcloud import SimCloud
from routectl.cluster import Node
from routectl.demo.harness import violations
from routectl.engine.allocator import Allocator
from routectl.engine.planner import DesiredNode, plan
from routectl.fence import Unfenced
from routectl.metrics import Metrics

UNBOUND = Limits(write_rate=1e6, write_burst=1_000_000, read_rate=1e6, read_burst=1_000_000)


def tables(count: int) -> tuple[str, ...]:
    return tuple(f"rtb-{i}" for i in range(count))


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS now, VmHWM peak). Not `ru_maxrss`: Linux carries
    that across exec, so a child forked from a big parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(nodes: int, table_count: int) -> dict[str, Any]:
    """In the child process: the world, then the controller until every node is verified."""
    sim = SimCloud(CLUSTER, tables=tables(table_count), limits=UNBOUND)
    cluster = new_cluster()
    add_nodes(cluster, sim, range(nodes), with_cidrs=False)
    cfg = routectl_config()
    world = _status_mib("VmRSS")
    started = time.monotonic()
    with running_controller(cluster, sim, cfg):
        converged = wait_until(lambda: all_converged(cluster, cfg), 600, poll_s=0.5)
        elapsed = time.monotonic() - started
    return {
        "converged": converged and not violations(cluster, sim, cfg),
        "converge_s": round(elapsed, 2),
        "world_rss_mib": round(world, 1),
        "peak_rss_mib": round(_status_mib("VmHWM"), 1),
    }


def _median_of(times: int, work: Callable[[], object]) -> float:
    runs = []
    for _ in range(times):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return round(statistics.median(runs), 4)


def _plan_times(nodes: int, table_count: int) -> tuple[float, float]:
    """(converged tables, empty tables): seconds for one `planner.plan` over every node and table."""
    cidrs = [ipaddress.ip_network("10.0.0.0/8")]
    desired = [
        DesiredNode(node_name(i), f"uid-{i}", (ipaddress.ip_network(pod_cidr(i)),), Target(f"i-{i:08x}"))
        for i in range(nodes)
    ]
    listed = [Route(d.pod_cidrs[0], d.target, owned=True, node=d.name, node_uid=d.uid) for d in desired]
    full = dict.fromkeys(tables(table_count), listed)
    empty: dict[str, list[Route]] = {t: [] for t in tables(table_count)}
    converged = _median_of(3, lambda: plan(desired, full, cidrs))
    fresh = _median_of(3, lambda: plan(desired, empty, cidrs))
    return converged, fresh


def ipam_rebuild_s(nodes: int, *, dual_stack: bool = False, repeat: int = 3) -> float:
    """Median seconds of `Allocator.rebuild` over `nodes` nodes with podCIDRs (a fresh allocator each
    time, as a new leader has)."""
    cfg = routectl_config(dual_stack=dual_stack)
    existing = [
        Node(node_name(i), f"uid-{i}", "1", provider_id="", pod_cidrs=tuple(pod_cidrs(i, dual_stack)))
        for i in range(nodes)
    ]

    def rebuild() -> None:
        allocator = Allocator(
            new_cluster(), cfg.pool(), Unfenced(), Metrics(), exclude_label=cfg.exclude_label
        )
        allocator.rebuild(existing)

    return _median_of(repeat, rebuild)


def run(quick: bool) -> dict[str, Any]:
    nodes, table_count = (500, 3) if quick else (5_000, 3)
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", str(nodes), str(table_count)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    plan_converged, plan_fresh = _plan_times(nodes, table_count)
    return {
        "nodes": nodes,
        "tables": table_count,
        **measured,
        "plan_converged_s": plan_converged,
        "plan_fresh_s": plan_fresh,
        "ipam_rebuild_s": ipam_rebuild_s(nodes),
        "notes": [
            f"{nodes} fresh nodes x {table_count} tables on a SimCloud with no rate limit and no latency: "
            "the whole controller (IPAM, leader election, routes, conditions) in a child process; peak "
            "RSS is that process's VmHWM and includes the in-memory cluster and cloud "
            "(`world_rss_mib`, measured before the controller started). Plan = one `planner.plan` over "
            "every node and table, median of 3, against converged tables and against empty ones. IPAM "
            f"rebuild = `Allocator.rebuild` of {nodes} nodes with podCIDRs, median of 3.",
        ],
    }


def main() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(child(int(sys.argv[1]), int(sys.argv[2]))))


if __name__ == "__main__":
    main()
