"""In-memory Cluster with the API server's concurrency rules, for unit tests, chaos tests and the demo.

Modelled exactly where routectl's correctness depends on it: one global resourceVersion; optimistic
concurrency on Leases (409); podCIDRs settable only from empty (a second writer gets ConflictError, as
the server's precondition would refuse it); watches that end with 410 Gone once their starting version
has been compacted away; list continue tokens that expire the same way. Faults are injected per call.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from routectl.cluster import (
    AmbiguousError,
    ClusterError,
    Condition,
    ConflictError,
    EventType,
    GoneError,
    Lease,
    Node,
    NodePage,
    NotFoundError,
    WatchEvent,
)


@dataclass(slots=True)
class RecordedEvent:
    node: str
    type: str
    reason: str
    message: str
    count: int = 1


class MemoryCluster:
    """Thread-safe; every mutation bumps the global resourceVersion and appends to the watch history."""

    def __init__(self, history_limit: int = 10_000, bookmark_interval_s: float = 1.0) -> None:
        self._lock = threading.Condition()
        self._rv = itertools.count(1)
        self._current_rv = 0
        self._created = 1_700_000_000.0
        """creationTimestamp of the last node added: each new one is a second later, as time moves on."""
        self._nodes: dict[str, Node] = {}
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history_limit
        self._compacted_rv = 0
        self._leases: dict[tuple[str, str], Lease] = {}
        self._snapshots: dict[str, tuple[Node, ...]] = {}
        self._bookmark_interval_s = bookmark_interval_s
        self._faults: dict[str, deque[Callable[[], None]]] = {}
        """Injected failures, consumed per call: op name → callables run before the op."""
        self.events: list[RecordedEvent] = []
        self.calls: dict[str, int] = {}

    # --- test controls -------------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        provider_id: str = "",
        pod_cidrs: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        created: float | None = None,
    ) -> Node:
        """A new Node; `created` (its creationTimestamp) defaults to one later than every earlier one."""
        with self._lock:
            if name in self._nodes:
                raise ConflictError(f"node {name}: already exists")
            self._created = max(self._created + 1.0, created or 0.0)
            node = Node(
                name=name,
                uid=str(uuid.uuid4()),
                resource_version="",
                provider_id=provider_id,
                pod_cidrs=tuple(pod_cidrs),
                labels=dict(labels or {}),
                created=self._created if created is None else created,
            )
            return self._store(EventType.ADDED, node)

    def delete_node(self, name: str) -> None:
        with self._lock:
            node = self._nodes.pop(name, None)
            if node is None:
                raise NotFoundError(f"node {name}: not found")
            self._publish(EventType.DELETED, node)

    def mark_deleting(self, name: str) -> Node:
        with self._lock:
            return self._store(EventType.MODIFIED, replace(self._get(name), deleting=True))

    def update_node(self, name: str, **changes: object) -> Node:
        """Change any Node field as another client would (labels, providerID …)."""
        with self._lock:
            return self._store(EventType.MODIFIED, replace(self._get(name), **changes))  # type: ignore[arg-type]

    def compact(self) -> None:
        """Drop the whole watch history, as etcd compaction does: older watches get 410."""
        with self._lock:
            self._history.clear()
            self._snapshots.clear()
            self._compacted_rv = self._current_rv
            self._lock.notify_all()

    def inject(self, op: str, fault: Callable[[], None]) -> None:
        """Run `fault` before the next call of `op` (it may raise, sleep, or mutate)."""
        with self._lock:
            self._faults.setdefault(op, deque()).append(fault)

    def nodes(self) -> dict[str, Node]:
        with self._lock:
            return dict(self._nodes)

    def lease(self, namespace: str, name: str) -> Lease | None:
        with self._lock:
            return self._leases.get((namespace, name))

    # --- Cluster port --------------------------------------------------------------------------

    def list_nodes(self, limit: int, continue_token: str = "") -> NodePage:
        self._enter("list_nodes")
        with self._lock:
            if continue_token:
                rv_text, _, offset = continue_token.partition("/")
                snapshot = self._snapshots.get(rv_text)
                if snapshot is None or int(rv_text) < self._compacted_rv:
                    raise GoneError("continue token expired: the list's resourceVersion was compacted")
                start = int(offset)
            else:
                # Every page of one list comes from the snapshot of its first page, as the API
                # server serves continued lists from etcd at the first page's revision.
                rv_text, start = str(self._current_rv), 0
                snapshot = tuple(self._nodes[n] for n in sorted(self._nodes))
            end = start + limit if limit > 0 else len(snapshot)
            token = ""
            if end < len(snapshot):
                self._snapshots[rv_text] = snapshot
                token = f"{rv_text}/{end}"
            else:
                self._snapshots.pop(rv_text, None)
            return NodePage(snapshot[start:end], rv_text, token)

    def watch_nodes(self, resource_version: str, timeout_s: float) -> Iterator[WatchEvent]:
        self._enter("watch_nodes")
        with self._lock:
            # An empty resourceVersion means "from now", as on the API server.
            since = int(resource_version) if resource_version else self._current_rv
        deadline = time.monotonic() + timeout_s
        next_bookmark = time.monotonic() + self._bookmark_interval_s
        while True:
            with self._lock:
                if since < self._compacted_rv:
                    raise GoneError(f"too old resource version: {since} ({self._compacted_rv})")
                pending = [e for e in self._history if int(e.resource_version) > since]
                now = time.monotonic()
                if not pending and now < min(deadline, next_bookmark):
                    self._lock.wait(min(deadline, next_bookmark) - now)
                    continue
                current = self._current_rv
            for event in pending:
                since = int(event.resource_version)
                yield event
            now = time.monotonic()
            if now >= deadline:
                return
            if now >= next_bookmark:
                next_bookmark = now + self._bookmark_interval_s
                since = max(since, current)
                yield WatchEvent(EventType.BOOKMARK, None, str(since))

    def get_node(self, name: str) -> Node:
        self._enter("get_node")
        with self._lock:
            return self._get(name)

    def set_pod_cidrs(self, name: str, cidrs: Sequence[str]) -> Node:
        self._enter("set_pod_cidrs")
        with self._lock:
            node = self._get(name)
            if node.pod_cidrs:
                raise ConflictError(
                    f"node {name}: podCIDRs already set to {','.join(node.pod_cidrs)} (immutable once set)"
                )
            return self._store(EventType.MODIFIED, replace(node, pod_cidrs=tuple(cidrs)))

    def set_network_unavailable(
        self, name: str, condition: Condition, before_write: Callable[[], None] = lambda: None
    ) -> None:
        self._enter("set_network_unavailable")
        with self._lock:
            node = self._get(name)
            if node.network_unavailable != condition:
                before_write()
                self._store(EventType.MODIFIED, replace(node, network_unavailable=condition))

    def record_event(self, node: Node, type_: str, reason: str, message: str) -> None:
        self._enter("record_event")
        with self._lock:
            for event in self.events:
                if (event.node, event.reason, event.message) == (node.name, reason, message):
                    event.count += 1
                    return
            self.events.append(RecordedEvent(node.name, type_, reason, message))

    def get_lease(self, namespace: str, name: str, timeout_s: float) -> Lease | None:
        self._enter("get_lease", timeout_s)
        with self._lock:
            return self._leases.get((namespace, name))

    def create_lease(self, lease: Lease, timeout_s: float) -> Lease:
        self._enter("create_lease", timeout_s)
        with self._lock:
            key = (lease.namespace, lease.name)
            if key in self._leases:
                raise ConflictError(f"lease {lease.namespace}/{lease.name}: already exists")
            return self._store_lease(lease)

    def update_lease(self, lease: Lease, timeout_s: float) -> Lease:
        self._enter("update_lease", timeout_s)
        with self._lock:
            key = (lease.namespace, lease.name)
            current = self._leases.get(key)
            if current is None:
                raise NotFoundError(f"lease {lease.namespace}/{lease.name}: not found")
            if current.resource_version != lease.resource_version:
                raise ConflictError(
                    f"lease {lease.namespace}/{lease.name}: resourceVersion {lease.resource_version} "
                    f"is stale (now {current.resource_version})"
                )
            return self._store_lease(lease)

    def watch_lease(
        self, namespace: str, name: str, resource_version: str, timeout_s: float
    ) -> Iterator[Lease]:
        """Level-triggered: yields the stored Lease whenever its resourceVersion moved past the last
        one yielded (a burst of updates may arrive as its latest state, which the port allows)."""
        self._enter("watch_lease")
        key = (namespace, name)
        deadline = time.monotonic() + timeout_s
        with self._lock:
            since = int(resource_version) if resource_version else 0
            if resource_version and since < self._compacted_rv:
                raise GoneError(f"too old resource version: {since} ({self._compacted_rv})")
        while True:
            with self._lock:
                current = self._leases.get(key)
                if current is None or int(current.resource_version) <= since:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._lock.wait(left)
                    continue
            since = int(current.resource_version)
            yield current

    # --- internals -----------------------------------------------------------------------------

    def _store_lease(self, lease: Lease) -> Lease:
        stored = replace(lease, resource_version=str(self._bump()))
        self._leases[(stored.namespace, stored.name)] = stored
        self._lock.notify_all()
        return stored

    def _enter(self, op: str, timeout_s: float | None = None) -> None:
        """Count the call and run its injected fault; a hang longer than the timeout is a timeout."""
        with self._lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            queue = self._faults.get(op)
            fault = queue.popleft() if queue else None
        if fault is None:
            return
        if timeout_s is None:
            fault()
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                fault()
            except BaseException as err:  # handed to the caller's thread below
                failure.append(err)
            done.set()

        threading.Thread(target=run, name=f"fault-{op}", daemon=True).start()
        if not done.wait(timeout_s):
            raise AmbiguousError(f"{op}: request timed out after {timeout_s:.1f}s")
        if failure:
            raise failure[0]

    def _get(self, name: str) -> Node:
        node = self._nodes.get(name)
        if node is None:
            raise NotFoundError(f"node {name}: not found")
        return node

    def _bump(self) -> int:
        self._current_rv = next(self._rv)
        return self._current_rv

    def _store(self, kind: EventType, node: Node) -> Node:
        stored = replace(node, resource_version=str(self._bump()))
        self._nodes[stored.name] = stored
        self._append(WatchEvent(kind, stored, stored.resource_version))
        return stored

    def _publish(self, kind: EventType, node: Node) -> None:
        rv = str(self._bump())
        self._append(WatchEvent(kind, replace(node, resource_version=rv), rv))

    def _append(self, event: WatchEvent) -> None:
        self._history.append(event)
        while len(self._history) > self._history_limit:
            dropped = self._history.popleft()
            self._compacted_rv = int(dropped.resource_version)
        self._lock.notify_all()


__all__ = ["ClusterError", "MemoryCluster", "RecordedEvent"]
