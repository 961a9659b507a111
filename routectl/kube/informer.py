"""Node watch + cache: a list-then-watch loop that keeps an up-to-date copy of every Node.

Invariant: every change the API server makes to a Node reaches `on_change` at least once and in
order per node, and the cache always equals the API's state as of the last resourceVersion processed.
A 410 Gone (the watch's starting version was compacted away) is answered by a fresh paginated list
whose diff against the cache emits exactly the changes the broken watch missed — added, updated
(different resourceVersion) and deleted (the cached Node as tombstone) — and nothing already seen.
Other errors are retried with capped exponential backoff and jitter, resuming from the last version.

Handlers run on the informer's thread and must be cheap (the controller's only enqueues the name).
The watch ends at least every `watch_timeout_s` (server side) and the Cluster adapter bounds each read,
so `run` notices `stop` within one bookmark interval or watch timeout.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from tenacity import RetryCallState, Retrying, retry_if_not_exception_type, wait_exponential_jitter

from routectl.cluster import Cluster, EventType, GoneError, Node, WatchEvent

log = logging.getLogger(__name__)

ChangeKind = Literal["added", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class NodeChange:
    kind: ChangeKind
    old: Node | None
    """The cached Node before the change; for "deleted" it is the tombstone (last known state)."""
    new: Node | None


class NodeInformer:
    def __init__(
        self,
        cluster: Cluster,
        on_change: Callable[[NodeChange], None],
        *,
        page_size: int = 500,
        watch_timeout_s: tuple[float, float] = (300.0, 600.0),
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        """`watch_timeout_s` is the range each watch's server-side timeout is drawn from (spreading
        reconnects of many replicas); `backoff_s` is (first retry delay, cap) after a failed call."""
        self._cluster = cluster
        self._on_change = on_change
        self._page_size = page_size
        self._watch_timeout_s = watch_timeout_s
        self._backoff_s = backoff_s
        self._lock = threading.Lock()
        self._cache: dict[str, Node] = {}
        self._resource_version = ""
        self._generation = 0
        """Bumped by every change of the cache (`generation`)."""
        self._random = random.Random()
        self.synced = threading.Event()
        """Set once the first full list is in the cache (readiness; the allocator waits for it)."""

    def get(self, name: str) -> Node | None:
        with self._lock:
            return self._cache.get(name)

    def nodes(self) -> list[Node]:
        with self._lock:
            return sorted(self._cache.values(), key=lambda node: node.name)

    def generation(self) -> int:
        """A counter that changes whenever the cache does: while it stands, `nodes` is unchanged."""
        with self._lock:
            return self._generation

    @property
    def resource_version(self) -> str:
        """The last resourceVersion processed (from an event, a bookmark or a list)."""
        with self._lock:
            return self._resource_version

    def run(self, stop: threading.Event) -> None:
        """List, then watch until `stop`; relist on 410, back off and resume on any other error."""
        self._retrying(stop, self._relist)
        while not stop.is_set():
            try:
                self._retrying(stop, self._watch_once, give_up_on=(GoneError,))
            except GoneError as err:
                log.info("node watch expired, relisting", extra={"error": str(err)})
                self._retrying(stop, self._relist)

    def _retrying(
        self,
        stop: threading.Event,
        call: Callable[[threading.Event], None],
        give_up_on: tuple[type[Exception], ...] = (),
    ) -> None:
        """Run `call` until it returns or `stop` is set, backing off between failures; exceptions in
        `give_up_on` propagate at once."""

        def sleep(seconds: float) -> None:
            stop.wait(seconds)

        retry = Retrying(
            retry=retry_if_not_exception_type(give_up_on),
            wait=wait_exponential_jitter(
                initial=self._backoff_s[0], max=self._backoff_s[1], jitter=self._backoff_s[0]
            ),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        retry(lambda: None if stop.is_set() else call(stop))

    def _relist(self, stop: threading.Event) -> None:
        items: list[Node] = []
        token = ""
        list_rv = ""
        while not stop.is_set():
            page = self._cluster.list_nodes(self._page_size, token)
            items.extend(page.items)
            list_rv = list_rv or page.resource_version
            token = page.continue_token
            if not token:
                break
        else:
            return
        changes = self._replace(items, list_rv)
        self.synced.set()
        log.info("listed nodes", extra={"nodes": len(items), "changes": len(changes)})
        self._emit(changes)

    def _watch_once(self, stop: threading.Event) -> None:
        low, high = self._watch_timeout_s
        timeout_s = self._random.uniform(low, high)
        for event in self._cluster.watch_nodes(self.resource_version, timeout_s):
            change = self._apply(event)
            if change is not None:
                self._notify(change)
            if stop.is_set():
                return

    def _replace(self, items: Iterable[Node], resource_version: str) -> list[NodeChange]:
        """Swap the cache for a fresh list; return what changed, sorted by node name."""
        fresh = {node.name: node for node in items}
        with self._lock:
            old = self._cache
            self._cache = fresh
            self._resource_version = resource_version
            self._generation += 1
        changes: list[NodeChange] = []
        for name in sorted(old.keys() | fresh.keys()):
            before, after = old.get(name), fresh.get(name)
            if before is None:
                changes.append(NodeChange("added", None, after))
            elif after is None:
                changes.append(NodeChange("deleted", before, None))
            elif before.uid != after.uid:
                # Deleted and re-created under the same name while the watch was broken: two objects,
                # and the first one's tombstone matters (its routes and CIDR are released after it).
                changes.append(NodeChange("deleted", before, None))
                changes.append(NodeChange("added", None, after))
            elif before.resource_version != after.resource_version:
                changes.append(NodeChange("updated", before, after))
        return changes

    def _apply(self, event: WatchEvent) -> NodeChange | None:
        """Fold one watch event into the cache. A list served across pages can already hold what the
        watch then repeats, so an ADDED for a cached node is an update and a DELETED for an unknown
        node, or an event the cache has already seen, is dropped."""
        with self._lock:
            self._resource_version = event.resource_version
            node = event.node
            if event.type is EventType.BOOKMARK or node is None:
                return None
            before = self._cache.get(node.name)
            if event.type is EventType.DELETED:
                if before is None:
                    return None
                del self._cache[node.name]
                self._generation += 1
                return NodeChange("deleted", before, None)
            if before is not None and before.resource_version == node.resource_version:
                return None
            self._cache[node.name] = node
            self._generation += 1
            return NodeChange("added" if before is None else "updated", before, node)

    def _emit(self, changes: Iterable[NodeChange]) -> None:
        for change in changes:
            self._notify(change)

    def _notify(self, change: NodeChange) -> None:
        """A failing handler must not make the loop retry: the cache already holds the change, so a
        retry would never deliver it again. Log it and go on."""
        try:
            self._on_change(change)
        except Exception:
            log.exception("node change handler failed", extra={"node": _name(change)})


def _name(change: NodeChange) -> str:
    node = change.new or change.old
    return node.name if node is not None else ""


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "node list/watch failed, retrying",
        extra={"attempt": state.attempt_number, "error": repr(error)},
    )
