"""The route view: what routectl knows of every managed table between two full lists.

`refresh` lists every table once (through the pacer's read bucket) and replaces the view; between two
refreshes the view is kept current by `record`, which folds in the outcomes of our own writes, so a
node's sync needs no list of its own.

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
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TypedDict

from ipam import inside
from providers import Network, Route, RouteProvider, RouteState
from routectl.engine.executor import Applied, Op
from routectl.engine.planner import DesiredNode, quota_scope
from routectl.engine.ratelimit import Pacer
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
        self._tables: dict[str, dict[Network, Route]] | None = None
        """None until the first list."""

    def refresh(self) -> Listed:
        """List every table once and make that the view; raises ProviderError when a list fails."""
        listed = {
            t: self._pacer.read(partial(self._provider.list_routes, t)) for t in self._provider.tables()
        }
        with self._lock:
            self._tables = {t: {r.destination: r for r in routes} for t, routes in listed.items()}
        quota = self._provider.limits.routes_per_table
        for table, routes in listed.items():
            if quota is not None:
                self._metrics.route_table_quota.labels(table).set(quota)
            self._publish(table, routes)
        return listed

    def current(self) -> Listed:
        """The view as lists per table; the first call (nothing listed yet) lists every table once."""
        with self._lock:
            if self._tables is not None:
                return {t: list(routes.values()) for t, routes in self._tables.items()}
        return self.refresh()

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
                table, dest = view.setdefault(item.change.table, {}), item.change.destination
                touched.add(item.change.table)
                if item.op is Op.DELETE:
                    table.pop(dest, None)
                else:
                    confirmed = item.result.route
                    table[dest] = replace(
                        item.change.route,
                        state=confirmed.state,
                        cloud_id=confirmed.cloud_id,
                        next_hop=confirmed.next_hop,
                    )
            changed = {t: list(view[t].values()) for t in touched}
        for name, routes in changed.items():
            self._publish(name, routes)

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

    def _publish(self, table: str, routes: Sequence[Route]) -> None:
        """The table's gauges, from every route the view holds of it."""
        self._metrics.routes_programmed.labels(table).set(self._programmed(routes))
        limits = self._provider.limits
        if limits.routes_per_table is None:
            return
        per_family = limits.quota_per_family
        used = Counter(quota_scope(r.destination, per_family) for r in routes)
        scopes = sorted({quota_scope(c, per_family) for c in self.cidrs})
        for scope in scopes:
            family = f"ipv{scope}" if scope else FAMILY_ALL
            left = max(0, limits.routes_per_table - used[scope])
            self._metrics.route_table_capacity_remaining.labels(table, family).set(left)

    def _programmed(self, routes: Iterable[Route]) -> int:
        return sum(
            1
            for r in routes
            if r.owned and r.state is RouteState.ACTIVE and r.target and inside(r.destination, self.cidrs)
        )


__all__ = ["Listed", "QuotaRules", "RouteView"]
