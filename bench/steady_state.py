"""Steady state at N converged nodes: cloud API calls per hour, and the time to detect and repair a route
deleted out of band, routectl vs the baseline.

Calls per hour: with nothing changing, every cloud call either controller makes belongs to a periodic full
pass (routectl: a list per table at each resync; the baseline: its ListRoutes every period), so calls per
hour = calls per pass x passes per hour. Passes are run at a short period to count calls per pass over many
passes, then scaled to each controller's default period (routectl 60 s, the baseline 10 s).

Repair: routes are deleted straight through the cloud API (another actor) at uniformly random moments,
with both controllers at their *default* periods, and timed until the route is listed again. Neither
controller watches the cloud, so the expected time is about half a period plus one create.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bench.baseline import RESYNC_PERIOD_S, BaselineRouteController
from bench.world import (
    CLUSTER,
    TABLE,
    add_nodes,
    api_calls,
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
from providers import Route, Target
from providers.emulators.simcloud import SimCloud
from routectl.demo.memcluster import MemoryCluster

ROUTECTL_PERIOD_S = 60.0

_R = TypeVar("_R")


def _converged_world(nodes: int) -> tuple[SimCloud, MemoryCluster]:
    sim, cluster = aws_like_cloud(), new_cluster()
    add_nodes(cluster, sim, range(nodes), with_cidrs=True, routed=True)
    return sim, cluster


def _calls_per_pass(sim: SimCloud, passes: Callable[[], int], window_s: float) -> dict[str, Any]:
    start_calls, start_passes = Counter(sim.calls), passes()
    time.sleep(window_s)
    calls, counted = api_calls(sim, start_calls), passes() - start_passes
    return {
        "passes": counted,
        "calls": calls,
        "calls_per_pass": round(sum(calls.values()) / max(1, counted), 3),
    }


def _repairs(sim: SimCloud, victims: list[int], window_s: float, tail_s: float, seed: int) -> list[float]:
    """Delete each victim's route at a uniformly random moment in `window_s`; seconds until it is back."""
    rng = random.Random(seed)
    schedule = sorted(zip((rng.uniform(0, window_s) for _ in victims), victims, strict=True))
    started = time.monotonic()
    deadline = started + window_s + tail_s
    pending: dict[str, float] = {}
    repaired: list[float] = []
    while (schedule or pending) and time.monotonic() < deadline:
        while schedule and schedule[0][0] <= time.monotonic() - started:
            _, index = schedule.pop(0)
            route = Route(
                ipaddress.ip_network(pod_cidr(index)),
                Target(f"i-{index:08x}"),
                owned=True,
                node=node_name(index),
            )
            sim.delete_routes(TABLE, [route])
            pending[pod_cidr(index)] = time.monotonic()
        if pending:
            present = {str(d) for d, r in sim.routes(TABLE).items() if r.owner == CLUSTER}
            for cidr in [c for c in pending if c in present]:
                repaired.append(time.monotonic() - pending.pop(cidr))
        time.sleep(0.05)
    return repaired


Measure = Callable[[SimCloud, Callable[[], int]], _R]
"""Runs against a converged world under one controller: (its cloud, how many full passes it has made)."""


def _with_routectl(nodes: int, period_s: float, measure: Measure[_R]) -> _R:
    sim, cluster = _converged_world(nodes)
    with running_controller(cluster, sim, routectl_config(period_s)):
        await_first_pass(sim)
        # Each routectl resync lists each managed table exactly once (one table here).
        return measure(sim, lambda: sim.calls["list_routes"])


def _with_baseline(nodes: int, period_s: float, measure: Measure[_R]) -> _R:
    sim, cluster = _converged_world(nodes)
    baseline = BaselineRouteController(cluster, sim, (TABLE,), period_s=period_s)
    stop = threading.Event()
    thread = threading.Thread(target=baseline.run, args=(stop,), name="baseline")
    thread.start()
    try:
        wait_until(lambda: baseline.passes > 0, 60)
        return measure(sim, lambda: baseline.passes)
    finally:
        stop.set()
        thread.join()


def _side(
    counted: dict[str, Any], short_s: float, default_s: float, repairs: list[float], repair_period_s: float
) -> dict[str, Any]:
    return {
        **counted,
        "measured_period_s": short_s,
        "default_period_s": default_s,
        "calls_per_hour": round(counted["calls_per_pass"] * 3600 / default_s, 1),
        "repair_period_s": repair_period_s,
        "repair": summary_stats(repairs) if repairs else {"mean_s": None, "max_s": None, "samples": 0},
    }


def run(quick: bool) -> dict[str, Any]:
    nodes = 200 if quick else 1_000
    window_s = 6.0 if quick else 20.0
    short = {"routectl": 2.0, "baseline": 1.0}
    default = {"routectl": ROUTECTL_PERIOD_S, "baseline": RESYNC_PERIOD_S}
    # Repairs run at the default periods; a quick run scales them down tenfold.
    period = {k: v / 10 for k, v in default.items()} if quick else default
    window = 12.0 if quick else 90.0
    with ThreadPoolExecutor(2) as pool:
        ours_calls = pool.submit(_with_routectl, nodes, short["routectl"], _counter(window_s))
        theirs_calls = pool.submit(_with_baseline, nodes, short["baseline"], _counter(window_s))
        counted = {"routectl": ours_calls.result(), "baseline": theirs_calls.result()}
        ours_repairs = pool.submit(
            _with_routectl, nodes, period["routectl"], _repairer(range(0, 6), window, period["routectl"])
        )
        theirs_repairs = pool.submit(
            _with_baseline, nodes, period["baseline"], _repairer(range(10, 20), window, period["baseline"])
        )
        repairs = {"routectl": ours_repairs.result(), "baseline": theirs_repairs.result()}
    sides = {
        name: _side(counted[name], short[name], default[name], repairs[name], period[name])
        for name in ("routectl", "baseline")
    }
    ours, theirs = sides["routectl"], sides["baseline"]
    return {
        "nodes": nodes,
        **sides,
        "notes": [
            f"calls/hour = calls per full pass x 3600 / default period. Measured over {window_s:g} s at "
            f"short periods: routectl {ours['calls_per_pass']} calls/pass ({ours['passes']} passes, "
            f"{ours['calls']}) x 3600/{ours['default_period_s']:g} = {ours['calls_per_hour']}/h; baseline "
            f"{theirs['calls_per_pass']} calls/pass ({theirs['passes']} passes, {theirs['calls']}) x "
            f"3600/{theirs['default_period_s']:g} = {theirs['calls_per_hour']}/h. No per-node calls "
            "happen in steady state. "
            "On real EC2 the baseline's ListRoutes is two reads (DescribeRouteTables + "
            "DescribeInstances), which would double its figure.",
            f"Repair: routes deleted through the cloud API at uniformly random moments over {window:g} s, "
            f"with routectl at a {period['routectl']:g} s resync and the baseline at a "
            f"{period['baseline']:g} s period; timed until the route is listed again. Expected ≈ "
            "period / 2 + one create (neither controller watches the cloud).",
        ],
    }


def _counter(window_s: float) -> Measure[dict[str, Any]]:
    return lambda sim, passes: _calls_per_pass(sim, passes, window_s)


def _repairer(victims: range, window_s: float, period_s: float) -> Measure[list[float]]:
    return lambda sim, _passes: _repairs(sim, list(victims), window_s, period_s * 1.1 + 5, seed=victims[0])
