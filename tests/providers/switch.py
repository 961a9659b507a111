"""The adoption switch as an operator runs it: the route reconciler over a MemoryCluster and a real
adapter (real SDK client, project emulator), with every node's block checked after each cloud call."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from providers.model import RouteProvider
from routectl.controller import route_reconciler
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.planner import WriteRules
from routectl.engine.reconciler import Reconciler
from routectl.fence import Unfenced
from routectl.metrics import Metrics

Routed = Callable[[str, str], bool]
"""(block, instance) → the cloud, as stored right now, routes the block to the instance."""


class SwitchWatch:
    """After every cloud call the adapter makes, asks the cloud (not the adapter) whether each watched
    block is routed to its node's instance; `gaps` names every call after which one was not."""

    def __init__(self, provider: RouteProvider, routed: Routed, watched: Mapping[str, str]) -> None:
        self.calls: list[str] = []
        self.gaps: list[str] = []
        self._routed = routed
        self._watched = dict(watched)
        provider.observe(self._after)

    def _after(self, api: str, code: str, seconds: float) -> None:
        self.calls.append(api)
        for block, instance in self._watched.items():
            if not self._routed(block, instance):
                self.gaps.append(f"{block} unrouted after call {len(self.calls)} ({api} {code})")


def reconciler(cluster: MemoryCluster, provider: RouteProvider, cidr: str, *, adopt: bool) -> Reconciler:
    return route_reconciler(
        cluster,
        provider,
        Unfenced(),
        Metrics(),
        cluster_cidrs=[cidr],
        nodes=lambda: list(cluster.nodes().values()),
        exclude_label=("routectl.io/exclude", "true"),
        concurrency=2,
        write_rules=WriteRules(adopt=adopt),
    )
