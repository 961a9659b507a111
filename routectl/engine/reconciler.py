"""The route reconciler: plans, applies and settles — one route per node podCIDR in every managed table.

Two paths share one planner and one executor: `sync_node` / `remove_node` reconcile one node against the
route view (built by the last full list, then updated by the outcomes of our own writes — no list per
event); `resync` lists every table once and applies the whole plan. What the view holds is
`routeview.py`'s job, what is said on the Node `nodestatus.py`'s.

Desired routes come from block ownership (`ownership.py`), computed over the current node set: a node
gets routes only for the blocks it owns; a podCIDR it claims but does not own gets no route and keeps
the node not routed, with a `CIDRNotAvailable` Event naming the rule and the other node.

Invariant: a node is settled as routed (`NetworkUnavailable=False`) only when nothing was blocked or
failed for it and each of its routes is *verified* in every managed table: in the view, owned, active,
pointing at the node's instance. Otherwise it is settled as not routed with the cause, and the Event the
cause deserves. In dry-run mode nothing is applied or settled: the plan is logged.

Every plan takes the operator's write rules (`--adopt-routes`, `--route-policy`) and the routes
`contest.py` holds back; every apply's replaces are counted there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import ipam
from providers import Outcome, ProviderError, Route, Target
from routectl.cluster import Node
from routectl.engine.contest import Contests
from routectl.engine.executor import Applied, Executor, Op
from routectl.engine.nodestatus import NodeStatus
from routectl.engine.ownership import Ownership, owners
from routectl.engine.planner import (
    Blocked,
    BlockReason,
    DesiredNode,
    Neighbours,
    Plan,
    TableSlice,
    WriteRules,
    plan,
    plan_node,
)
from routectl.engine.routeview import RouteView
from routectl.metrics import Metrics
from routectl.reasons import Reason

log = logging.getLogger("routectl.engine.reconciler")

_BLOCK_EVENTS = {
    BlockReason.QUOTA: Reason.ROUTE_QUOTA_EXCEEDED,
    BlockReason.CONFLICT: Reason.ROUTE_CONFLICT,
    BlockReason.CONTESTED: Reason.ROUTE_CONTESTED,
}


@dataclass(frozen=True, slots=True)
class _Owners:
    """One ownership computation and the neighbourhood every one-node plan takes from it."""

    ownership: Ownership
    neighbours: Neighbours


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How one node stands after a sync: converged, or the cause and the Event it deserves."""

    converged: bool
    cause: str = ""
    event: Reason | None = None


class Reconciler:
    def __init__(
        self,
        view: RouteView,
        status: NodeStatus,
        executor: Executor,
        metrics: Metrics,
        *,
        nodes: Callable[[], list[Node]],
        target_for: Callable[[str], Target],
        exclude_label: tuple[str, str],
        pool_rules: ipam.PoolConfig,
        on_owner_change: Callable[[str], None] = lambda name: None,
        dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
        write_rules: WriteRules | None = None,
        contests: Contests | None = None,
        nodes_generation: Callable[[], int] | None = None,
    ) -> None:
        """`nodes` lists the current Nodes (the informer's cache); `target_for` is the provider's
        providerID parser; `pool_rules` decide which podCIDRs a node owns; `on_owner_change` is told
        the name of every other node whose owned blocks or rejected podCIDRs changed (the controller
        queues it); `write_rules` are the operator's adoption and delete policy; `contests` (by default
        one on `clock`) decides which routes are held back. `nodes_generation` (the informer's) changes
        whenever `nodes` may have: while it does not, a node sync reuses the last ownership without
        reading the node set; without it every sync compares the whole node set."""
        self._view = view
        self._status = status
        self._executor = executor
        self._metrics = metrics
        self._nodes = nodes
        self._target_for = target_for
        self._exclude = exclude_label
        self._dry_run = dry_run
        self._clock = clock
        self._rules = pool_rules
        self._on_owner_change = on_owner_change
        self._write_rules = write_rules or WriteRules()
        self._contests = contests or Contests(clock=clock)
        self._owners_lock = threading.Lock()
        self._generation = nodes_generation
        self._owners_gen: int | None = None
        """`nodes_generation` when `_owners_key` was taken."""
        self._owners_key: dict[str, _Claim] | None = None
        """Each node's inputs of ownership, as the last computation saw them."""
        self._owners_lent = ""
        """The node the last computation took as synced rather than as cached, if they differed."""
        self._owners = _Owners(Ownership(), Neighbours())

    def close(self) -> None:
        self._executor.close()

    # --- entry points ----------------------------------------------------------------------------

    def sync_node(self, node: Node) -> bool:
        """Reconcile one node against the view; True when its routes are verified in every table."""
        with self._timed("node"):
            current = self._ownership(node)
            desired = self._desired(node, current.ownership)
            try:
                listed = self._view.slices(desired)
            except ProviderError as err:
                self._metrics.reconcile_errors.labels("node").inc()
                self._settle(node, desired, _Verdict(False, f"cloud error: {err}"))
                return False
            node_plan = plan_node(
                desired,
                listed,
                self._view.cidrs,
                neighbours=current.neighbours,
                rules=self._plan_rules(),
                **self._view.quota_rules(listed),
            )
            self._note_waiting(desired)
            applied = self._apply(node_plan)
            if self._dry_run:
                return node_plan.converged
            return self._settle(node, desired, self._verdict(desired, node_plan, applied))

    def remove_node(self, node: Node) -> bool:
        """Delete a gone node's routes (its tombstone); True when none is left in any table."""
        with self._timed("remove"):
            desired = DesiredNode.gone(node)
            try:
                listed = self._view.slices(desired)
            except ProviderError as err:
                self._metrics.reconcile_errors.labels("remove").inc()
                log.warning("cannot remove routes of %s: %s", node.name, err, extra={"node": node.name})
                return False
            node_plan = self._removal(desired, listed)
            applied = self._apply(node_plan)
            if self._dry_run:
                return not node_plan.delete
            for item in applied:
                if not item.result.outcome.succeeded:
                    self._status.event(node, Reason.FAILED_TO_DELETE_ROUTE, _describe(item))
            try:
                # Judged from a fresh list, not the view: a write whose outcome was unknown (a timeout
                # after the cloud acted) may have left a route the view never learnt of.
                gone = not self._removal(desired, self._view.refresh()).delete
            except ProviderError as err:
                log.warning("cannot verify removal for %s: %s", node.name, err, extra={"node": node.name})
                return False
            if gone:
                self._status.forget(node.name)
            return gone

    def _removal(self, tombstone: DesiredNode, listed: Mapping[str, Sequence[Route] | TableSlice]) -> Plan:
        """The deletes for a gone node: only routes on its own podCIDRs (a re-created Node of the same
        name is another node), and never a block a live node owns now (reused, or passed on to the
        node that claimed it too): its owner's plan replaces that route instead."""
        ownership = self._ownership().ownership
        alive = {n.name for n in self._nodes() if n.uid == tombstone.uid}  # not gone after all
        held = {block for block, owner in ownership.owners.items() if owner not in alive}
        removal = plan_node(tombstone, listed, self._view.cidrs, by_name=False, rules=self._plan_rules())
        return replace(removal, delete=tuple(c for c in removal.delete if c.destination not in held))

    def resync(self) -> bool:
        """List every table once, apply the whole plan; True when every node is converged."""
        with self._timed("resync"):
            self._executor.forget_prepared()
            try:
                listed = self._view.refresh()
            except ProviderError as err:
                log.warning("resync: listing routes failed: %s", err, extra={"error": str(err)})
                self._metrics.reconcile_errors.labels("resync").inc()
                return False
            nodes = self._nodes()
            ownership = self._ownership().ownership
            desired = {n.name: self._desired(n, ownership) for n in nodes}
            full = plan(
                desired.values(),
                listed,
                self._view.cidrs,
                rules=self._plan_rules(),
                **self._view.quota_rules(listed),
            )
            self._metrics.routes_desired.set(
                sum(len(d.pod_cidrs) for d in desired.values() if not d.excluded and d.target) * len(listed)
            )
            conflicts = Counter(c.table for c in full.conflicts)
            adoptable = Counter(c.table for c in (*full.adopt, *full.adoptable))
            for table in listed:
                self._metrics.route_conflicts.labels(table).set(conflicts[table])
                self._metrics.routes_adoptable.labels(table).set(adoptable[table])
            for wanted in desired.values():
                self._note_waiting(wanted)
            applied = self._apply(full)
            if self._dry_run:
                return full.converged
            return self._settle_all(nodes, desired, full, applied)

    # --- plan, apply, settle ---------------------------------------------------------------------

    def _plan_rules(self) -> WriteRules:
        """The operator's rules, with the routes held back right now."""
        held = self._contests.held()
        self._metrics.routes_contested.set(len(held))
        return replace(self._write_rules, contested=held)

    def _desired(self, node: Node, ownership: Ownership) -> DesiredNode:
        return DesiredNode.of(node, self._target_for, self._exclude, ownership)

    def _ownership(self, syncing: Node | None = None) -> _Owners:
        """Ownership over the current node set — with `syncing` as given, when the cache still holds
        an older copy of that object (its podCIDRs just written). Recomputed only when the inputs of
        ownership changed; then every other node whose share changed is handed to `on_owner_change`.
        While the node set's generation stands and `syncing` is as last seen, nothing is read: O(1)."""
        generation = self._generation() if self._generation is not None else None
        with self._owners_lock:
            if generation is not None and generation == self._owners_gen and self._unchanged(syncing):
                return self._owners
        nodes = {n.name: n for n in self._nodes()}
        cached = nodes.get(syncing.name) if syncing is not None else None
        lent = ""
        if syncing is not None and cached is not None and cached.uid == syncing.uid:
            nodes[syncing.name] = syncing
            lent = syncing.name if _claim(cached) != _claim(syncing) else ""
        key = {name: _claim(n) for name, n in nodes.items()}
        with self._owners_lock:
            self._owners_gen, self._owners_lent = generation, lent
            if key == self._owners_key:
                return self._owners
            first = self._owners_key is None
            before = self._owners.ownership
            ownership = owners(nodes.values(), self._rules)
            neighbours = Neighbours.of(self._desired(n, ownership) for n in nodes.values())
            self._owners_key, self._owners = key, _Owners(ownership, neighbours)
            current = self._owners
        for rule, count in ownership.counts().items():
            self._metrics.node_cidr_conflicts.labels(rule.value).set(count)
        for name in [] if first else nodes:
            if syncing is not None and name == syncing.name:
                continue
            if before.of(name) != ownership.of(name) or before.rejected(name) != ownership.rejected(name):
                self._on_owner_change(name)
        return current

    def _unchanged(self, syncing: Node | None) -> bool:
        """`syncing` (if any) is as the last ownership computation saw it, and that computation took
        no other node otherwise than the cache holds it."""
        if self._owners_key is None:
            return False
        if syncing is None:
            return not self._owners_lent
        if self._owners_lent not in ("", syncing.name):
            return False
        return self._owners_key.get(syncing.name) == _claim(syncing)

    def _apply(self, the_plan: Plan) -> list[Applied]:
        if self._dry_run:
            _log_plan(the_plan)
            return []
        applied = self._executor.apply(the_plan)
        self._view.record(applied)
        for table, destination in sorted(self._contests.record(applied), key=str):
            log.warning(
                "route %s in %s is contested: held back from rewriting",
                destination,
                table,
                extra={"table": table, "destination": str(destination)},
            )
        self._metrics.routes_contested.set(len(self._contests.held()))
        return applied

    def _note_waiting(self, desired: DesiredNode) -> None:
        """Start the node's route latency clock the first time it is seen wanting an unverified route."""
        if not desired.excluded and desired.pod_cidrs and self._view.unverified(desired):
            self._status.waiting(desired.name)

    def _settle_all(
        self, nodes: list[Node], desired: dict[str, DesiredNode], full: Plan, applied: list[Applied]
    ) -> bool:
        """Settle every node of a full pass; True when all converged and every delete succeeded."""
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

    def _verdict(self, desired: DesiredNode, node_plan: Plan, applied: Sequence[Applied]) -> _Verdict:
        """Converged only if nothing blocked or failed for the node and each route is verified."""
        if desired.excluded:
            return _Verdict(True)
        if desired.rejected:
            cause = "; ".join(problem.message for problem in desired.rejected)
            return _Verdict(False, cause, Reason.CIDR_NOT_AVAILABLE)
        for blocked in node_plan.blocked:
            if blocked.node == desired.name:
                event = _BLOCK_EVENTS.get(blocked.reason)
                return _Verdict(False, blocked.detail, event)
        for item in applied:
            if item.op is not Op.DELETE and not item.result.outcome.succeeded:
                return _Verdict(False, _describe(item), _event_for(item.result.outcome))
        missing = self._view.unverified(desired)
        if missing:
            return _Verdict(False, f"waiting for the cloud to confirm {missing}")
        return _Verdict(True)

    def _settle(self, node: Node, desired: DesiredNode, verdict: _Verdict) -> bool:
        if desired.excluded:
            return True
        if verdict.converged:
            self._status.routed(node)
            return True
        self._status.unrouted(node, verdict.cause, verdict.event)
        return False

    def _timed(self, kind: str) -> _Timer:
        return _Timer(self._metrics, kind, self._clock)


_Claim = tuple[str, float, tuple[str, ...], str]


def _claim(node: Node) -> _Claim:
    """A node's inputs of ownership besides its name: uid, creation time, podCIDRs, providerID."""
    return (node.uid, node.created, node.pod_cidrs, node.provider_id)


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
        ("adopt", the_plan.adopt),
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


__all__ = ["Reconciler"]
