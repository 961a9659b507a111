"""Node status: what routectl says on a Node about its routes — the NetworkUnavailable condition, Warning
Events, and the node→route latency metric.

Invariants: a condition is written only when it differs from the one last written for that Node object
(or, before any write, from the one the Node carried) — a re-created Node (new uid) starts from its own;
an Event is not repeated while the node's (reason, message) stays the same, and the memory of it ends
when the node converges; `routectl_node_route_latency_seconds` is observed once per wait, from the first
time the node was seen wanting an unverified route to the moment all of them are verified;
`routectl_nodes_network_unavailable` counts the nodes whose last verdict was "not routed". Every write
passes the fence first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from routectl.cluster import Cluster, ClusterError, Condition, Node
from routectl.fence import Fence
from routectl.metrics import Metrics
from routectl.reasons import ROUTE_CREATED_MESSAGE, ConditionReason, EventKind, Reason

log = logging.getLogger("routectl.engine.nodestatus")

ROUTE_CREATED = Condition("False", ConditionReason.ROUTE_CREATED.value, ROUTE_CREATED_MESSAGE)


class NodeStatus:
    def __init__(
        self,
        cluster: Cluster,
        fence: Fence,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cluster = cluster
        self._fence = fence
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._conditions: dict[str, tuple[str, Condition]] = {}
        """name → (uid, condition we last wrote): a re-created Node (new uid) starts from its own."""
        self._events: dict[str, tuple[str, str]] = {}
        """name → (reason, message) of the last Event recorded for it."""
        self._waiting_since: dict[str, float] = {}
        self._unrouted: set[str] = set()
        """Nodes whose last verdict was "not routed" (NetworkUnavailable=True)."""

    def waiting(self, name: str) -> None:
        """The node wants a route not yet verified: start its latency clock (unless running)."""
        with self._lock:
            self._waiting_since.setdefault(name, self._clock())

    def routed(self, node: Node) -> None:
        """Every route of the node is verified: RouteCreated, and the end of its wait."""
        self._set_condition(node, ROUTE_CREATED)
        with self._lock:
            self._events.pop(node.name, None)
            since = self._waiting_since.pop(node.name, None)
            self._count_unrouted(node.name, False)
        if since is not None:
            self._metrics.node_route_latency.observe(max(0.0, self._clock() - since))

    def unrouted(self, node: Node, cause: str, event: Reason | None) -> None:
        """The node is not routed because of `cause`; `event`, if any, is recorded with it."""
        self._set_condition(node, Condition("True", ConditionReason.NO_ROUTE_CREATED.value, cause))
        with self._lock:
            self._count_unrouted(node.name, True)
        if event is not None:
            self.event(node, event, cause)

    def event(self, node: Node, reason: Reason, message: str) -> None:
        """A Warning Event on the node, unless it is the one last recorded for it."""
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

    def forget(self, name: str) -> None:
        """The node is gone for good: drop what was remembered of it."""
        with self._lock:
            for per_node in (self._conditions, self._events, self._waiting_since):
                per_node.pop(name, None)
            self._count_unrouted(name, False)

    def _count_unrouted(self, name: str, unrouted: bool) -> None:
        """Called with the lock held."""
        if unrouted:
            self._unrouted.add(name)
        else:
            self._unrouted.discard(name)
        self._metrics.nodes_network_unavailable.set(len(self._unrouted))

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


__all__ = ["ROUTE_CREATED", "NodeStatus"]
