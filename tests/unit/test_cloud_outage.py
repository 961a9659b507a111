"""A cloud outage in the middle of convergence: the whole in-memory stack (Controller on MemoryCluster
and SimCloud, real threads) while every cloud call fails with 5xx and timeouts, then recovers.

What must hold: no route is deleted; no node whose routes were in place when the outage began is ever
turned NetworkUnavailable=True (a cloud that cannot answer says nothing about a route: unknown is not
missing); everything converges within one resync after the recovery — no second full pass starts
before it has. The time from recovery to convergence is reported in bench/results/outages.json, never
asserted.

Wall-clock time, scaled by 1/12: a 5 s resync period (default 60 s) and a 10 s outage (the issue's
2 minutes), so the test takes seconds. Request retries and backoffs are not scaled: they are seconds
already, and shorter than the scaled resync period, as they are than the real one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from providers.emulators.simcloud import SimCloud
from routectl.cluster import EventType
from routectl.controller import Controller
from routectl.demo.harness import converged_nodes, violations
from routectl.demo.memcluster import MemoryCluster
from routectl.metrics import Metrics
from tests.support.figures import record
from tests.unit.test_controller import a_config, a_node, all_routed, eventually, running

TABLES = ("rtb-a", "rtb-b")
RESYNC_S, OUTAGE_S = 5.0, 10.0
FIRST, SECOND = 20, 20
"""Nodes routed before the outage, and nodes joining just before it (half of them routed when it hits)."""


class Outage:
    """Starts the sim's outage from its call observer once `after` creates of the second batch have
    succeeded, and snapshots what was in place at that instant."""

    def __init__(self, cluster: MemoryCluster, sim: SimCloud, after: int) -> None:
        self._cluster, self._sim, self._after = cluster, sim, after
        self._lock = threading.Lock()
        self._creates = 0
        self.armed = False
        self.recovery: float | None = None
        self.version = ""
        """The cluster's resourceVersion when the outage began: every Node change after it is replayed."""
        self.routed: set[str] = set()
        """Nodes with their route in every table when the outage began (the cloud's own state)."""

    def observe(self, api: str, code: str, seconds: float) -> None:
        with self._lock:
            if not self.armed or self.recovery is not None or api != "create_routes" or code != "200":
                return
            self._creates += 1
            if self._creates < self._after:
                return
            self.version = self._cluster.list_nodes(limit=0).resource_version
            self.routed = set.intersection(
                *({r.node for r in self._sim.routes(t).values() if r.owner == "sim"} for t in TABLES)
            )
            self.recovery = self._sim.outage(OUTAGE_S)


def resync_starts(controller: Controller) -> list[float]:
    """When each full pass the controller makes from now on started."""
    starts: list[float] = []
    original: Callable[[], bool] = controller.resync

    def recorded() -> bool:
        starts.append(time.monotonic())
        return original()

    controller.resync = recorded  # type: ignore[method-assign]
    return starts


def test_a_cloud_outage_mid_convergence_deletes_nothing_marks_no_routed_node_and_heals_in_one_resync() -> (
    None
):
    cluster, sim = MemoryCluster(), SimCloud("sim", tables=TABLES)
    cfg = a_config(f"--route-reconciliation-period={RESYNC_S:g}s")
    for i in range(FIRST):
        a_node(cluster, sim, i)
    outage = Outage(cluster, sim, after=SECOND)  # half of the second batch's 2 x 20 creates
    sim.observe(outage.observe)
    controller = Controller(cfg, cluster, sim, Metrics())
    starts = resync_starts(controller)

    with running(controller) as (_, code):
        eventually(all_routed(cluster, cfg), "the first nodes routed")
        before = {t: dict(sim.routes(t)) for t in TABLES}
        outage.armed = True
        for i in range(FIRST, FIRST + SECOND):
            a_node(cluster, sim, i)
        eventually(lambda: outage.recovery is not None, "the outage to begin mid-convergence")
        assert outage.recovery is not None
        assert 0 < converged_nodes(cluster, cfg.exclude_label)[0] < FIRST + SECOND
        time.sleep(max(0.0, outage.recovery - time.monotonic()))
        eventually(all_routed(cluster, cfg), "every node routed after the recovery")
        converged_at = time.monotonic()
        assert violations(cluster, sim, cfg) == ()

    assert code == [0]
    assert sim.calls["delete_routes"] == 0
    for table, routes in before.items():
        kept = sim.routes(table)
        assert {d: r.instance for d, r in routes.items()} == {d: kept[d].instance for d in routes}
    flipped = [
        event.node.name
        for event in cluster.watch_nodes(outage.version, timeout_s=0.01)
        if event.type is EventType.MODIFIED
        and event.node is not None
        and event.node.name in outage.routed
        and event.node.network_unavailable is not None
        and event.node.network_unavailable.status == "True"
    ]
    assert len(outage.routed) > FIRST  # the outage did hit mid-convergence
    assert flipped == []
    passes_until_converged = [t for t in starts if outage.recovery <= t <= converged_at]
    assert len(passes_until_converged) <= 1, "more than one full resync after the recovery"
    record(
        "outages",
        "cloud_api_outage",
        {
            "stack": "in-memory (MemoryCluster + SimCloud), wall clock",
            "outage_s": OUTAGE_S,
            "resync_period_s": RESYNC_S,
            "nodes": FIRST + SECOND,
            "tables": len(TABLES),
            "routed_when_it_began": len(outage.routed),
            "recovery_to_converged_s": round(converged_at - outage.recovery, 3),
        },
    )
