"""The route view: what routectl knows of every managed table between two full lists.

`refresh` lists every table once (through the pacer's read bucket) and replaces the view; between two
refreshes the view is kept current by `record`, which folds in the outcomes of our own writes, so a
node's sync needs no list of its own. Each table is held as a `RouteIndex`, so a node's sync takes its
slice (`slices`) at the cost of its own routes.

Invariant: a route is in the view only as a list showed it or as the cloud confirmed our write of it
— the outcome succeeded, and the route is stored with the state, id and next hop the cloud answered
(an Alibaba entry still `Creating` is PENDING until a list shows it active); a failed write changes
nothing. Whenever a table's view changes, its gauges follow it:
`routectl_routes_programmed{table}` counts the owned, active, targeted routes inside the cluster CIDRs;
`routectl_route_table_capacity_remaining{table,family}` is the quota minus every route in the table,
owned or not, counted as the cloud counts them (`planner.quota_scope`, the planner's own rule): per IP
family of the cluster CIDRs where the quota is per family (AWS), else once for the table (`all`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TypedDict

from ipam import inside
from providers import Network, Route, RouteProvider, RouteState
from routectl.engine.executor import Applied, Op
from routectl.engine.planner import DesiredNode, TableSlice, quota_scope, scope_counts
from routectl.engine.ratelimit import Pacer
from routectl.engine.routeindex import RouteIndex
from routectl.metrics import FAMILY_ALL, Metrics

Listed = dict[str, list[Route]]
"""Every managed table → its routes, as the planner takes them."""


class QuotaRules(TypedDict):
    """The planner's quota arguments for the tables of a view."""

    quotas: dict[str, int | None]
    quota_per_family: bool


class RouteView:
    def __init__(
        self, provider: RouteProvider, pacer: Pacer, metrics: Metrics, cluster_cidrs: Sequence[Network]
    ) -> None:
        self._provider = provider
        self._pacer = pacer
        self._metrics = metrics
        self.cidrs = tuple(cluster_cidrs)
        self._lock = threading.Lock()
        self._tables: dict[str, RouteIndex] | None = None
        """None until the first list; each table indexed for one node's slice (`slices`)."""

    def refresh(self) -> Listed:
        """List every table once and make that the view; raises ProviderError when a list fails."""
        listed = {
            t: self._pacer.read(partial(self._provider.list_routes, t)) for t in self._provider.tables()
        }
        tables = {t: RouteIndex(routes, self._programmed) for t, routes in listed.items()}
        with self._lock:
            self._tables = tables
        quota = self._provider.limits.routes_per_table
        for table, index in tables.items():
            if quota is not None:
                self._metrics.route_table_quota.labels(table).set(quota)
            self._publish(table, index)
        return listed

    def slices(self, node: DesiredNode) -> dict[str, TableSlice]:
        """What a one-node plan needs of every table (`RouteIndex.slice`): the cost of the node's own
        routes, not of the tables. The first call (nothing listed yet) lists every table once."""
        if self._tables is None:
            self.refresh()
        with self._lock:
            return {t: index.slice(node.pod_cidrs, node.name) for t, index in (self._tables or {}).items()}

    def record(self, applied: Sequence[Applied]) -> None:
        """Fold the outcomes of our own writes into the view (only what the cloud confirmed)."""
        touched: set[str] = set()
        with self._lock:
            view = self._tables
            if view is None:
                return
            for item in applied:
                if not item.result.outcome.succeeded:
                    continue
                table = view.setdefault(item.change.table, RouteIndex(counted=self._programmed))
                touched.add(item.change.table)
                if item.op is Op.DELETE:
                    table.drop(item.change.destination)
                else:
                    confirmed = item.result.route
                    table.put(
                        replace(
                            item.change.route,
                            state=confirmed.state,
                            cloud_id=confirmed.cloud_id,
                            next_hop=confirmed.next_hop,
                        )
                    )
            changed = {t: view[t] for t in touched}
        for name, index in changed.items():
            self._publish(name, index)

    def unverified(self, desired: DesiredNode) -> str:
        """The first of the node's routes the view does not show owned, active and pointing at its
        target ("<destination> in <table>"); "" when every one is verified in every table."""
        with self._lock:
            for table, routes in sorted((self._tables or {}).items()):
                for dest in desired.pod_cidrs:
                    route = routes.get(dest)
                    ok = route is not None and route.owned and route.state is RouteState.ACTIVE
                    if not ok or route is None or route.target != desired.target:
                        return f"{dest} in {table}"
        return ""

    def quota_rules(self, listed: Mapping[str, object]) -> QuotaRules:
        limits = self._provider.limits
        return {
            "quotas": dict.fromkeys(listed, limits.routes_per_table),
            "quota_per_family": limits.quota_per_family,
        }

    def _publish(self, table: str, index: RouteIndex) -> None:
        """The table's gauges, from the running counts of every route the view holds of it."""
        self._metrics.routes_programmed.labels(table).set(index.programmed)
        limits = self._provider.limits
        if limits.routes_per_table is None:
            return
        per_family = limits.quota_per_family
        used = scope_counts(index.per_version, per_family)
        scopes = sorted({quota_scope(c, per_family) for c in self.cidrs})
        for scope in scopes:
            family = f"ipv{scope}" if scope else FAMILY_ALL
            left = max(0, limits.routes_per_table - used[scope])
            self._metrics.route_table_capacity_remaining.labels(table, family).set(left)

    def _programmed(self, r: Route) -> bool:
        """Counted by `routectl_routes_programmed`: owned, active, targeted, inside the cluster CIDRs."""
        return bool(
            r.owned and r.state is RouteState.ACTIVE and r.target and inside(r.destination, self.cidrs)
        )


__all__ = ["Listed", "QuotaRules", "RouteView"]
