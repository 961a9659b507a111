"""The Cluster port: everything routectl needs from the Kubernetes API, as plain values.

Kubernetes specifics (the official client, its models and exceptions) stay behind this port in
`routectl/kube/client.py`; the in-memory implementation in `routectl/demo/memcluster.py` models the API
server's concurrency rules (resourceVersion, 409 Conflict, 410 Gone, podCIDR immutability) so logic
tests are honest.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Condition:
    status: str
    """"True" / "False" / "Unknown", as the API carries it."""
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    uid: str
    resource_version: str
    provider_id: str = ""
    pod_cidrs: tuple[str, ...] = ()
    """`spec.podCIDRs` (falls back to `[spec.podCIDR]` for old objects); strings as the API holds them."""
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    deleting: bool = False
    """`metadata.deletionTimestamp` is set: the node still exists and keeps its CIDR until it is gone."""
    network_unavailable: Condition | None = None
    created: float = 0.0
    """`metadata.creationTimestamp` (epoch seconds): with the name, the order that decides which of two
    nodes claiming one block owns it (`routectl/engine/ownership.py`)."""

    def excluded_by(self, exclude_label: tuple[str, str]) -> bool:
        """The node carries the exclude label (`key`, `value`): routectl gives it no CIDR and no route."""
        key, value = exclude_label
        return self.labels.get(key) == value


@dataclass(frozen=True, slots=True)
class NodePage:
    items: tuple[Node, ...]
    resource_version: str
    continue_token: str = ""


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    node: Node | None
    """None only for BOOKMARK."""
    resource_version: str


@dataclass(frozen=True, slots=True)
class Lease:
    namespace: str
    name: str
    holder: str = ""
    lease_duration_s: int = 0
    acquire_time: float | None = None
    """Wall-clock seconds (epoch); the API stores MicroTime."""
    renew_time: float | None = None
    transitions: int = 0
    resource_version: str = ""


class ClusterError(Exception):
    """A Kubernetes API call failed; the message names the object and the cause."""


class ClusterConfigError(ClusterError):
    """The credentials or address of the API server cannot be loaded (a configuration problem)."""


class ConflictError(ClusterError):
    """409: the object changed since it was read (stale resourceVersion or failed precondition)."""


class GoneError(ClusterError):
    """410: the requested resourceVersion is too old; relist."""


class NotFoundError(ClusterError):
    pass


class InvalidError(ClusterError):
    """422: the server refused the change (e.g. podCIDR is immutable once set)."""


class ForbiddenError(ClusterError):
    """403: RBAC denied the call; the chart's role is missing a rule."""


class AmbiguousError(ClusterError):
    """The request timed out or the connection broke: the write may or may not have happened."""


def _nothing() -> None:
    return None


class Cluster(Protocol):
    def list_nodes(self, limit: int, continue_token: str = "") -> NodePage: ...

    def watch_nodes(self, resource_version: str, timeout_s: float) -> Iterator[WatchEvent]:
        """Stream changes after `resource_version` with bookmarks; raises GoneError when too old.

        The stream ends after `timeout_s` (server-side) or on a network/read timeout.
        """
        ...

    def get_node(self, name: str) -> Node:
        """Raises NotFoundError."""
        ...

    def set_pod_cidrs(self, name: str, cidrs: Sequence[str]) -> Node:
        """Set `spec.podCIDR`/`spec.podCIDRs`, only if they are still empty (precondition enforced by the
        server); ConflictError if they are set already, AmbiguousError on timeout."""
        ...

    def set_network_unavailable(
        self, name: str, condition: Condition, before_write: Callable[[], None] = _nothing
    ) -> None:
        """Patch the NetworkUnavailable condition through the status subresource.

        `before_write` runs immediately before the write request is sent (after any read the
        implementation needs first), so a fence check there is not outrun by a slow read."""
        ...

    def record_event(self, node: Node, type_: str, reason: str, message: str) -> None:
        """Record an Event on the Node; repeats of the same (node, reason, message) are aggregated."""
        ...

    def get_lease(self, namespace: str, name: str, timeout_s: float) -> Lease | None: ...

    def create_lease(self, lease: Lease, timeout_s: float) -> Lease:
        """ConflictError if it exists already."""
        ...

    def update_lease(self, lease: Lease, timeout_s: float) -> Lease:
        """Replace with optimistic concurrency on `lease.resource_version`; ConflictError when stale."""
        ...

    def watch_lease(
        self, namespace: str, name: str, resource_version: str, timeout_s: float
    ) -> Iterator[Lease]:
        """Stream the Lease's states as it is created or updated after `resource_version` ("" = its
        current state first, then changes); deletions are not reported. Intermediate states may be
        collapsed into the latest. Ends after `timeout_s` (server-side) or on a network/read timeout;
        GoneError when `resource_version` is too old."""
        ...


def list_all_nodes(cluster: Cluster, page_size: int = 500) -> list[Node]:
    """Every Node, page by page: a fresh read from the API server, not from any cache."""
    nodes: list[Node] = []
    token = ""
    while True:
        page = cluster.list_nodes(page_size, token)
        nodes.extend(page.items)
        token = page.continue_token
        if not token:
            return nodes
