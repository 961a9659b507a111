"""Cold restart: a new controller over a converged cluster (N dual-stack nodes, routed in 3 tables).

What a restart (an upgrade, a rescheduled pod, a new leader) costs: time until the first full pass says
every node is converged, and every call spent until a while after that. A converged
restart owes one list per table and nothing else: no cloud write (no route, no `prepare_target` —
AWS's source/destination check is a ModifyInstanceAttribute), no podCIDR or condition patch, no Event.
Only the leader election's own Lease writes remain. The IPAM rebuild (`Allocator.rebuild` of every
node's podCIDRs, the one CPU-heavy step before the first pass) is timed on its own, median of 5. After
ready, every node's sync queued at start runs against the view: the time until that queue drains is
measured too.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench.scale import ipam_rebuild_s, tables
from bench.world import (
    AWS_READS,
    AWS_WRITES,
    add_nodes,
    aws_like_cloud,
    new_cluster,
    routectl_config,
    wait_until,
)
from providers.emulators.simcloud import WRITES
from routectl.controller import Controller
from routectl.metrics import Metrics

NODE_WRITES = ("set_pod_cidrs", "set_network_unavailable", "record_event")
"""The Kubernetes writes a controller makes about Nodes (the Lease writes are leader election's)."""
LEASE_WRITES = ("create_lease", "update_lease")
WINDOW_S = 10.0
"""How long calls are counted after ready."""
DRAIN_CAP_S = 300.0
"""How long the restart's node syncs may take to drain before the drain time is estimated instead."""


def restart(
    nodes: int,
    table_count: int,
    timeout_s: float,
    window_s: float = WINDOW_S,
    drain_cap_s: float = DRAIN_CAP_S,
) -> dict[str, Any]:
    """Build the converged world, start a controller over it, count what it does until ready +
    `window_s`, then time the drain of the node syncs queued at start (at most `drain_cap_s`)."""
    sim, cluster = aws_like_cloud(tables(table_count)), new_cluster()
    add_nodes(cluster, sim, range(nodes), with_cidrs=True, routed=True, tables=sim.tables(), dual_stack=True)
    cfg = routectl_config(dual_stack=True)
    metrics = Metrics()
    controller = Controller(cfg, cluster, sim, metrics)
    cloud_before, kube_before = Counter(sim.calls), Counter(cluster.calls)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), name="restarted")
    started = time.monotonic()
    thread.start()
    ready = wait_until(lambda: metrics.registry.get_sample_value("routectl_converged") == 1, timeout_s)
    ready_s = time.monotonic() - started
    synced = len(controller.queue)

    def idle() -> bool:
        """Every node synced once since start and nothing queued or running."""
        queued = len(controller.queue) + controller.queue.busy()
        return queued == 0 and _node_syncs(metrics)[0] >= nodes

    drained = wait_until(idle, window_s)  # the node syncs queued at start run; what they send is counted
    drain_s, (syncs, sync_s) = time.monotonic() - started, _node_syncs(metrics)
    time.sleep(max(0.0, started + ready_s + window_s - time.monotonic()))
    synced -= len(controller.queue) + controller.queue.busy()
    cloud = Counter(sim.calls) - cloud_before
    kube = Counter(cluster.calls) - kube_before
    if not drained:
        drained = wait_until(idle, drain_cap_s)
        drain_s, (syncs, sync_s) = time.monotonic() - started, _node_syncs(metrics)
    per_s = syncs / max(1e-9, drain_s - ready_s)  # node syncs done per second once ready
    stop.set()
    thread.join(timeout=60)
    del cloud["tables"]
    return {
        "ready": ready,
        "ready_s": round(ready_s, 3),
        "node_syncs_in_window": synced,
        "drained": drained,
        "drain_s": round(drain_s, 3) if drained else None,
        "node_syncs": syncs,
        "node_sync_mean_ms": round(1000 * sync_s / syncs, 3) if syncs else None,
        "node_syncs_per_s": round(per_s, 1),
        "drain_estimate_s": round(drain_s if drained else ready_s + nodes / per_s, 1) if syncs else None,
        "cloud_calls": dict(sorted(cloud.items())),
        "cloud_writes": sum(cloud[api] for api in (*WRITES, "prepare_target")),
        "lists_per_table": round(cloud["list_routes"] / table_count, 2),
        "kube_node_writes": sum(kube[op] for op in NODE_WRITES),
        "kube_lease_writes": sum(kube[op] for op in LEASE_WRITES),
        "kube_calls": dict(sorted(kube.items())),
        "throttled": sum(sim.throttled.values()),
    }


def _node_syncs(metrics: Metrics) -> tuple[int, float]:
    """How many per-node syncs ran and their total seconds (`routectl_reconcile_duration_seconds`)."""
    labels = {"kind": "node"}
    count = metrics.registry.get_sample_value("routectl_reconcile_duration_seconds_count", labels)
    total = metrics.registry.get_sample_value("routectl_reconcile_duration_seconds_sum", labels)
    return int(count or 0), float(total or 0.0)


def run(quick: bool) -> dict[str, Any]:
    nodes, table_count = (500, 3) if quick else (5_000, 3)
    figures = restart(nodes, table_count, timeout_s=120.0 if quick else 600.0)
    rebuild_s = ipam_rebuild_s(nodes, dual_stack=True, repeat=5)
    return {
        "nodes": nodes,
        "tables": table_count,
        "routes": nodes * 2 * table_count,
        **figures,
        "ipam_rebuild_s": rebuild_s,
        "goals": {"lists_per_table": 1, "cloud_writes": 0, "kube_node_writes": 0, "ipam_rebuild_s": 0.050},
        "notes": [
            f"{nodes} dual-stack nodes, converged: every podCIDR routed in each of {table_count} tables "
            f"({nodes * 2 * table_count} routes) and every node RouteCreated; then a new controller "
            f"starts on an AWS-like cloud (writes {AWS_WRITES.burst} / {AWS_WRITES.rate:g}/s, reads "
            f"{AWS_READS.burst} / {AWS_READS.rate:g}/s, 50 ms per call). Ready = start (leader election, "
            "cache sync, IPAM rebuild included) → the first full pass said converged "
            "(`routectl_converged` = 1). Calls are counted from start to ready + "
            f"{WINDOW_S:g} s, while the per-node syncs queued at start run (`node_syncs_in_window` of "
            "them; each plans its node against the view, no call). Cloud writes count creates, "
            "replaces, deletes and `prepare_target`; Kubernetes node writes count podCIDR patches, "
            "condition patches and Events; the Lease writes are leader election's own. IPAM rebuild "
            f"= `Allocator.rebuild` of {nodes} dual-stack nodes, median of 5, in this process.",
            "The node syncs queued at start (every node, by the informer's first list) cost no call; "
            "each plans its node against the view's index of every table (`engine/routeindex.py`: "
            "the node's routes and running quota counts, ownership reused while the node cache "
            "stands), so its cost does not grow with the tables. `drain_s` = start → every queued "
            "node sync done (`drained` false past "
            f"{DRAIN_CAP_S:g} s: then `drain_estimate_s` = ready + nodes / `node_syncs_per_s`); "
            "`node_sync_mean_ms` is the mean `routectl_reconcile_duration_seconds{kind=node}` (wall "
            "time per sync, the concurrent workers sharing the interpreter).",
        ],
    }
