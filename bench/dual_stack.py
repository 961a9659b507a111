"""Dual-stack, two tables: N fresh nodes, each with an IPv4 and an IPv6 podCIDR, routed in two route
tables (4·N routes) at AWS-like limits; routectl and the baseline side by side in one run.

The two run at the same time, each on a SimCloud of its own (own account buckets, own cluster): they
share no cloud limit, only this process's CPU, and both spend nearly all their time waiting for the
cloud's bucket to refill, so running them together halves the wall time without moving either figure
(the convergence benchmark, run one after the other, is the check on that). The lower bound is the
cloud's: `(writes - burst) / refill` for the 4·N creates. The source/destination check (`prepare_target`,
AWS: ModifyInstanceAttribute) is owed once per instance, however many routes point at it.
"""

from __future__ import annotations

import threading
from typing import Any

from bench import report
from bench.baseline import BaselineRouteController
from bench.world import (
    AWS_LATENCY_S,
    AWS_READS,
    AWS_WRITES,
    add_nodes,
    aws_like_cloud,
    measure,
    new_cluster,
    routectl_config,
)
from routectl.controller import Controller
from routectl.metrics import Metrics

TABLES = ("rtb-a", "rtb-b")


def both(nodes: int, timeout_s: float) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(routectl's figures, the baseline's, the baseline's passes), measured concurrently."""
    cfg = routectl_config(dual_stack=True)
    ours_sim, ours_cluster = aws_like_cloud(TABLES), new_cluster()
    add_nodes(ours_cluster, ours_sim, range(nodes), with_cidrs=False)
    theirs_sim, theirs_cluster = aws_like_cloud(TABLES), new_cluster()
    add_nodes(theirs_cluster, theirs_sim, range(nodes), with_cidrs=True, dual_stack=True)
    baseline = BaselineRouteController(theirs_cluster, theirs_sim, TABLES)
    controller = Controller(cfg, ours_cluster, ours_sim, Metrics())
    results: dict[str, dict[str, Any]] = {}

    def ours() -> None:
        results["routectl"] = measure(ours_sim, ours_cluster, cfg, controller.run, timeout_s, TABLES)

    def theirs() -> None:
        results["baseline"] = measure(theirs_sim, theirs_cluster, cfg, baseline.run, timeout_s, TABLES)

    threads = [threading.Thread(target=ours, name="ours"), threading.Thread(target=theirs, name="theirs")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results["routectl"], results["baseline"], baseline.passes


def run(quick: bool) -> dict[str, Any]:
    nodes = 40 if quick else 1_000
    timeout_s = 240.0 if quick else 2_400.0
    ours, theirs, passes = both(nodes, timeout_s)
    routes = nodes * 2 * len(TABLES)
    lower_bound = (routes - AWS_WRITES.burst) / AWS_WRITES.rate
    report.plot_curves(
        "dual_stack.png",
        f"{nodes} dual-stack nodes x {len(TABLES)} tables = {routes} routes; "
        f"writes: bucket {AWS_WRITES.burst}, refill {AWS_WRITES.rate:g}/s",
        {"routectl": ours["curve"], "baseline (k8s route controller)": theirs["curve"]},
        lower_bound=(AWS_WRITES.burst, AWS_WRITES.rate, routes),
    )
    return {
        "nodes": nodes,
        "tables": len(TABLES),
        "routes": routes,
        "lower_bound_s": round(lower_bound, 1),
        "routectl_s": ours["seconds"],
        "baseline_s": theirs["seconds"],
        "routectl_vs_lower_bound": round(ours["seconds"] / lower_bound, 3),
        "baseline_vs_lower_bound": round(theirs["seconds"] / lower_bound, 3),
        "routectl_api_calls": ours["api_calls"],
        "baseline_api_calls": theirs["api_calls"],
        "routectl_prepare_per_instance": round(ours["api_calls"].get("prepare_target", 0) / nodes, 3),
        "baseline_prepare_per_instance": round(theirs["api_calls"].get("prepare_target", 0) / nodes, 3),
        "routectl_throttled": ours["throttled"],
        "baseline_throttled": theirs["throttled"],
        "routectl_converged": ours["converged"],
        "baseline_converged": theirs["converged"],
        "baseline_passes": passes,
        "curves": {"routectl": ours["curve"], "baseline": theirs["curve"]},
        "notes": [
            f"{nodes} fresh nodes, each with an IPv4 /24 and an IPv6 /64 podCIDR, routed in "
            f"{len(TABLES)} tables: {routes} routes, on SimClouds with EC2-like buckets (writes "
            f"{AWS_WRITES.burst} burst, {AWS_WRITES.rate:g}/s; reads {AWS_READS.burst} burst, "
            f"{AWS_READS.rate:g}/s) and {AWS_LATENCY_S * 1000:g} ms per call. Lower bound = (writes - "
            f"burst) / refill = ({routes} - {AWS_WRITES.burst}) / {AWS_WRITES.rate:g} = {lower_bound:g} s. "
            "routectl and the baseline run at the same time, each on a cloud (account) of its own: "
            "they share no limit, only the CPU, and both are bound by their bucket's refill, not by "
            "CPU. `prepare_target` is the source/destination check (AWS ModifyInstanceAttribute); the "
            "sim charges it to the read bucket, so the write bound counts the route creates only — "
            "on EC2, where it is a write, routectl's once per instance would add N / refill to the "
            "bound and the baseline's once per create 4·N / refill. The baseline (one route controller "
            "per table, as the reference manages one table) starts with podCIDRs already assigned.",
        ],
    }
