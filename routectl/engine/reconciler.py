"""The route reconciler: keeps one route per node podCIDR in every managed table, and says so on the Node.

Two paths share one planner and one executor: `sync_node` / `remove_node` reconcile one node against a
per-table view of the routes (built by the last full list, then updated by the outcomes of our own
writes — no list per event); `resync` lists every table once and applies the whole plan.

Invariant: `NetworkUnavailable=False` is written for a node only when each of its routes is *verified*
in every managed table, where verified means: the route is in our view, owned, active, pointing at the
node's instance — and it got into the view either from a list or from a write the cloud answered with
success and an active route (AWS CreateRoute/ReplaceRoute are synchronous; an Alibaba entry still
`Creating`, reported as PENDING, stays unverified until a list shows it active). A condition is written
only when it changes; Events are recorded once per (node, reason, message) until the node converges.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

from providers import (
    InvalidProviderID,
    Network,
    Outcome,
    ProviderError,
    Route,
    RouteProvider,
    RouteState,
    Target,
)
from routectl.cluster import Cluster, ClusterError, Condition, Node
from routectl.engine.executor import Applied, Executor, Op
from routectl.engine.planner import Blocked, BlockReason, DesiredNode, Plan, inside, plan, plan_node
from routectl.fence import Fence
from routectl.metrics import Metrics
from routectl.reasons import ROUTE_CREATED_MESSAGE, ConditionReason, EventKind, Reason

log = logging.getLogger("routectl.engine.reconciler")

ROUTE_CREATED = Condition("False", ConditionReason.ROUTE_CREATED.value, ROUTE_CREATED_MESSAGE)
_BLOCK_EVENTS = {BlockReason.QUOTA: Reason.ROUTE_QUOTA_EXCEEDED, BlockReason.CONFLICT: Reason.ROUTE_CONFLICT}


class _QuotaRules(TypedDict):
    quotas: dict[str, int | None]
    quota_per_family: bool


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How one node stands after a sync: converged, or the cause and the Event it deserves."""

    converged: bool
    cause: str = ""
    event: Reason | None = None


class Reconciler:
    def __init__(
        self,
        cluster: Cluster,
        provider: RouteProvider,
        fence: Fence,
        metrics: Metrics,
        *,
        cluster_cidrs: Sequence[str | Network],
        nodes: Callable[[], list[Node]],
        exclude_label: tuple[str, str],
        concurrency: int,
        dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        base_delay_s: float = 0.5,
    ) -> None:
        self._cluster = cluster
        self._provider = provider
        self._fence = fence
        self._metrics = metrics
        self._cidrs = tuple(ipaddress.ip_network(c) if isinstance(c, str) else c for c in cluster_cidrs)
        self._nodes = nodes
        self._exclude = exclude_label
        self._dry_run = dry_run
        self._clock = clock
        self.executor = Executor(
            provider,
            fence,
            metrics,
            concurrency=concurrency,
            max_attempts=max_attempts,
            base_delay_s=base_delay_s,
            clock=clock,
            sleep=sleep,
        )
        self._lock = threading.Lock()
        self._view: dict[str, dict[Network, Route]] | None = None
        self._prepared: set[Target] = set()
        self._conditions: dict[str, tuple[str, Condition]] = {}
        """name → (uid, condition we last wrote): a re-created Node (new uid) starts from its own."""
        self._events: dict[str, tuple[str, str]] = {}
        self._first_seen: dict[str, float] = {}
        provider.observe(self._count_call)

    def close(self) -> None:
        self.executor.close()

    def _count_call(self, api: str, code: str, seconds: float) -> None:
        """Every real cloud call the adapter makes (an adapter without a batch API makes one per route)."""
        self._metrics.cloud_api_requests.labels(self._provider.name, api, code).inc()
        self._metrics.cloud_api_duration.labels(self._provider.name, api).observe(seconds)

    # --- entry points ----------------------------------------------------------------------------

    def sync_node(self, node: Node) -> bool:
        """Reconcile one node against the view; True when its routes are verified in every table."""
        with self._timed("node"):
            desired = self._desired(node)
            try:
                view = self._ensure_view()
            except ProviderError as err:
                self._metrics.reconcile_errors.labels("node").inc()
                self._settle(node, desired, _Verdict(False, f"cloud error: {err}"))
                return False
            node_plan = plan_node(desired, view, self._cidrs, **self._quota_rules(view))
            self._note_seen(desired)
            applied = self._apply(node_plan)
            if self._dry_run:
                return node_plan.converged
            return self._settle(node, desired, self._verdict(desired, node_plan, applied))

    def remove_node(self, node: Node) -> bool:
        """Delete a gone node's routes (its tombstone); True when none is left in any table."""
        with self._timed("remove"):
            desired = replace(self._desired(node), excluded=True, target=None)
            try:
                view = self._ensure_view()
            except ProviderError as err:
                self._metrics.reconcile_errors.labels("remove").inc()
                log.warning("cannot remove routes of %s: %s", node.name, err, extra={"node": node.name})
                return False
            node_plan = self._removal(desired, view)
            applied = self._apply(node_plan)
            if self._dry_run:
                return not node_plan.delete
            for item in applied:
                if not item.result.outcome.succeeded:
                    self._event(node, Reason.FAILED_TO_DELETE_ROUTE, _describe(item))
            try:
                # Judged from a fresh list, not the view: a write whose outcome was unknown (a timeout
                # after the cloud acted) may have left a route the view never learnt of.
                gone = not self._removal(desired, self._refresh()).delete
            except ProviderError as err:
                log.warning("cannot verify removal for %s: %s", node.name, err, extra={"node": node.name})
                return False
            if gone:
                with self._lock:
                    for per_node in (self._conditions, self._events, self._first_seen):
                        per_node.pop(node.name, None)
            return gone

    def _removal(self, tombstone: DesiredNode, view: dict[str, list[Route]]) -> Plan:
        """The deletes for a gone node: only routes on its own podCIDRs (a re-created Node of the same
        name is another node), and never a destination a live node holds now (a block already reused)."""
        held = {c for n in self._nodes() if n.uid != tombstone.uid for c in self._desired(n).pod_cidrs}
        removal = plan_node(tombstone, view, self._cidrs, by_name=False)
        return replace(removal, delete=tuple(c for c in removal.delete if c.destination not in held))

    def resync(self) -> bool:
        """List every table once, apply the whole plan; True when every node is converged."""
        with self._timed("resync"):
            with self._lock:
                self._prepared.clear()
            try:
                view = self._refresh()
            except ProviderError as err:
                log.warning("resync: listing routes failed: %s", err, extra={"error": str(err)})
                self._metrics.reconcile_errors.labels("resync").inc()
                return False
            nodes = self._nodes()
            desired = {n.name: self._desired(n) for n in nodes}
            full = plan(desired.values(), view, self._cidrs, **self._quota_rules(view))
            self._metrics.routes_desired.set(
                sum(len(d.pod_cidrs) for d in desired.values() if not d.excluded and d.target) * len(view)
            )
            for wanted in desired.values():
                self._note_seen(wanted)
            applied = self._apply(full)
            if self._dry_run:
                return full.converged
            blocked: dict[str, list[Blocked]] = defaultdict(list)
            for stuck in full.blocked:
                blocked[stuck.node].append(stuck)
            by_node: dict[str, list[Applied]] = defaultdict(list)
            for done in applied:
                by_node[done.change.node].append(done)
            converged = True
            now = {n.name: n.uid for n in self._nodes()}
            for node in nodes:
                if now.get(node.name) != node.uid:
                    continue  # deleted or re-created during the pass: this verdict is not the new node's
                mine = Plan(blocked=tuple(blocked[node.name]))
                verdict = self._verdict(desired[node.name], mine, by_node[node.name])
                converged = self._settle(node, desired[node.name], verdict) and converged
            for item in applied:
                if item.op is Op.DELETE and not item.result.outcome.succeeded:
                    log.warning("resync: %s", _describe(item), extra={"table": item.change.table})
                    converged = False
            return converged

    def plan(self) -> Plan:
        """The full plan against a fresh list of every table; changes nothing."""
        view = self._refresh()
        desired = [self._desired(n) for n in self._nodes()]
        return plan(desired, view, self._cidrs, **self._quota_rules(view))

    # --- view ------------------------------------------------------------------------------------

    def _refresh(self) -> dict[str, list[Route]]:
        tables = list(self._provider.tables())
        listed = {t: self.executor.list_routes(t) for t in tables}
        with self._lock:
            self._view = {t: {r.destination: r for r in routes} for t, routes in listed.items()}
        quota = self._provider.limits.routes_per_table
        for table, routes in listed.items():
            if quota is not None:
                self._metrics.route_table_quota.labels(table).set(quota)
            self._metrics.routes_programmed.labels(table).set(self._programmed(routes))
        return listed

    def _ensure_view(self) -> dict[str, list[Route]]:
        """The view as lists per table; the first call (no resync yet) lists every table once."""
        with self._lock:
            ready = self._view is not None
        return self._snapshot() if ready else self._refresh()

    def _snapshot(self) -> dict[str, list[Route]]:
        with self._lock:
            return {t: list(routes.values()) for t, routes in (self._view or {}).items()}

    def _record(self, applied: Sequence[Applied]) -> None:
        """Fold the outcomes of our own writes into the view (only what the cloud confirmed)."""
        touched: set[str] = set()
        with self._lock:
            view = self._view
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
            counts = {t: self._programmed(view[t].values()) for t in touched}
        for name, count in counts.items():
            self._metrics.routes_programmed.labels(name).set(count)

    def _programmed(self, routes: Iterable[Route]) -> int:
        return sum(
            1
            for r in routes
            if r.owned and r.state is RouteState.ACTIVE and r.target and inside(r.destination, self._cidrs)
        )

    def _quota_rules(self, view: dict[str, list[Route]]) -> _QuotaRules:
        limits = self._provider.limits
        return {
            "quotas": dict.fromkeys(view, limits.routes_per_table),
            "quota_per_family": limits.quota_per_family,
        }

    # --- apply -----------------------------------------------------------------------------------

    def _apply(self, the_plan: Plan) -> list[Applied]:
        if self._dry_run:
            _log_plan(the_plan)
            return []
        applied = self.executor.apply(the_plan, prepare=self._prepare)
        self._record(applied)
        return applied

    def _prepare(self, target: Target) -> None:
        """Prepare each instance once (re-checked after a resync clears the memory); raises on failure."""
        with self._lock:
            if target in self._prepared:
                return
        self.executor.prepare(target)
        with self._lock:
            self._prepared.add(target)

    # --- status ----------------------------------------------------------------------------------

    def _desired(self, node: Node) -> DesiredNode:
        key, value = self._exclude
        excluded = node.labels.get(key) == value
        cidrs: list[Network] = []
        reason = ""
        for text in node.pod_cidrs:
            try:
                cidrs.append(ipaddress.ip_network(text))
            except ValueError:
                reason = f"podCIDR {text!r} is not a CIDR"
        target: Target | None = None
        if not reason and not node.provider_id:
            reason = "node has no providerID"
        elif not reason:
            try:
                target = self._provider.target_for(node.provider_id)
            except InvalidProviderID as err:
                reason = str(err)
        return DesiredNode(node.name, node.uid, tuple(cidrs), target, reason, excluded)

    def _verdict(self, desired: DesiredNode, node_plan: Plan, applied: Sequence[Applied]) -> _Verdict:
        """Converged only if nothing blocked or failed for the node and each route is verified."""
        if desired.excluded:
            return _Verdict(True)
        for blocked in node_plan.blocked:
            if blocked.node == desired.name:
                event = _BLOCK_EVENTS.get(blocked.reason)
                return _Verdict(False, blocked.detail, event)
        for item in applied:
            if item.op is not Op.DELETE and not item.result.outcome.succeeded:
                return _Verdict(False, _describe(item), _event_for(item.result.outcome))
        missing = self._unverified(desired)
        if missing:
            return _Verdict(False, f"waiting for the cloud to confirm {missing}")
        return _Verdict(True)

    def _unverified(self, desired: DesiredNode) -> str:
        with self._lock:
            for table, routes in sorted((self._view or {}).items()):
                for dest in desired.pod_cidrs:
                    route = routes.get(dest)
                    ok = route is not None and route.owned and route.state is RouteState.ACTIVE
                    if not ok or route is None or route.target != desired.target:
                        return f"{dest} in {table}"
        return ""

    def _note_seen(self, desired: DesiredNode) -> None:
        """Start the node's route latency clock the first time it is seen wanting an unverified route."""
        if desired.excluded or not desired.pod_cidrs or self._unverified(desired) == "":
            return
        with self._lock:
            self._first_seen.setdefault(desired.name, self._clock())

    def _settle(self, node: Node, desired: DesiredNode, verdict: _Verdict) -> bool:
        if desired.excluded:
            return True
        if verdict.converged:
            self._set_condition(node, ROUTE_CREATED)
            with self._lock:
                self._events.pop(node.name, None)
                since = self._first_seen.pop(node.name, None)
            if since is not None:
                self._metrics.node_route_latency.observe(max(0.0, self._clock() - since))
            return True
        cause = verdict.cause
        self._set_condition(node, Condition("True", ConditionReason.NO_ROUTE_CREATED.value, cause))
        if verdict.event is not None:
            self._event(node, verdict.event, cause)
        return False

    def _set_condition(self, node: Node, condition: Condition) -> None:
        with self._lock:
            uid, written = self._conditions.get(node.name, (node.uid, node.network_unavailable))
            current = written if uid == node.uid else node.network_unavailable
        if current == condition:
            return
        self._fence.check()
        try:
            self._cluster.set_network_unavailable(node.name, condition, self._fence.check)
        except ClusterError as err:
            log.warning("condition of %s not written: %s", node.name, err, extra={"node": node.name})
            return
        log.info(
            "%s NetworkUnavailable=%s (%s)",
            node.name,
            condition.status,
            condition.message,
            extra={"node": node.name, "reason": condition.reason},
        )
        with self._lock:
            self._conditions[node.name] = (node.uid, condition)

    def _event(self, node: Node, reason: Reason, message: str) -> None:
        with self._lock:
            if self._events.get(node.name) == (reason.value, message):
                return
            self._events[node.name] = (reason.value, message)
        log.warning(
            "%s on %s: %s",
            reason.value,
            node.name,
            message,
            extra={"node": node.name, "reason": reason.value},
        )
        self._fence.check()
        try:
            self._cluster.record_event(node, EventKind.WARNING.value, reason.value, message)
        except ClusterError as err:
            log.warning("event on %s not recorded: %s", node.name, err, extra={"node": node.name})

    def _timed(self, kind: str) -> _Timer:
        return _Timer(self._metrics, kind, self._clock)


class _Timer:
    """Reconcile duration, and an error count when the reconcile raised."""

    def __init__(self, metrics: Metrics, kind: str, clock: Callable[[], float]) -> None:
        self._metrics, self._kind, self._clock = metrics, kind, clock
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = self._clock()

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        self._metrics.reconcile_duration.labels(self._kind).observe(max(0.0, self._clock() - self._start))
        if error is not None:
            self._metrics.reconcile_errors.labels(self._kind).inc()


def _event_for(outcome: Outcome) -> Reason:
    return {
        Outcome.QUOTA_EXCEEDED: Reason.ROUTE_QUOTA_EXCEEDED,
        Outcome.CONFLICT: Reason.ROUTE_CONFLICT,
    }.get(outcome, Reason.FAILED_TO_CREATE_ROUTE)


def _describe(item: Applied) -> str:
    change, result = item.change, item.result
    return (
        f"{item.op.value} {change.destination} in {change.table}: {result.outcome.value} ({result.message})"
    )


def _log_plan(the_plan: Plan) -> None:
    for op, changes in (
        ("create", the_plan.create),
        ("replace", the_plan.replace),
        ("delete", the_plan.delete),
    ):
        for change in changes:
            log.info(
                "dry-run: would %s %s in %s",
                op,
                change.destination,
                change.table,
                extra={
                    "node": change.node,
                    "table": change.table,
                    "destination": str(change.destination),
                    "target": str(change.route.target or ""),
                    "op": op,
                    "outcome": "dry_run",
                },
            )
    for conflict in the_plan.conflicts:
        log.warning(
            "dry-run: conflict on %s in %s: %s",
            conflict.destination,
            conflict.table,
            conflict.existing.next_hop,
            extra={"node": conflict.node, "table": conflict.table, "destination": str(conflict.destination)},
        )


__all__ = ["ROUTE_CREATED", "Reconciler"]
