"""The podCIDR allocation loop's core: give each Node one block per family, and never one block to two.

Invariant: a block is free in the pool only if no Node this allocator knows of has it, and no write of
it to a Node may still land. Hence: existing podCIDRs are occupied before anything is handed out
(`rebuild`); a block is released only when the patch certainly failed or the Node object is gone
(`release`, never on deletionTimestamp); after an ambiguous patch (timeout) the block stays reserved for
that Node and is retried for it, never given to another, until a read shows the Node's podCIDRs.

Ambiguous outcomes are reconciled like this: right after the timeout the Node is re-read. If it carries
our blocks they are its own (`CIDRAssigned`); if it carries others (another writer) ours are released
and theirs occupied; if it carries none, or the read fails, the blocks stay reserved and `sync` raises
`AllocationFailed` so the controller retries the node. Every later `sync` of that node either sees
podCIDRs (handled as above) or re-sends the *same* blocks, so a delayed first write and the retry agree;
the reservation ends when the Node shows podCIDRs or when the Node is gone (`release`).

Thread-safety: `sync` may be called from several worker threads. Pool and bookkeeping changes happen
under one lock; API calls happen outside it, and calls for the same node name are serialised by an
in-flight set, so two workers can never allocate for one node.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import ipam
from ipam import Network
from routectl.cluster import (
    AmbiguousError,
    Cluster,
    ClusterError,
    ConflictError,
    Node,
    NotFoundError,
)
from routectl.fence import Fence, LostLeadership
from routectl.metrics import Metrics
from routectl.reasons import EventKind, Reason

log = logging.getLogger(__name__)


class AllocationFailed(Exception):
    """The node still has no podCIDR (exhausted pool, failed or ambiguous patch); retry it later.

    Its Event has been recorded; the controller re-queues the node with backoff.
    """


class _State(enum.Enum):
    RESERVED = "reserved"
    """Allocated for a patch about to be sent; given back if it certainly fails."""
    IN_DOUBT = "in doubt"
    """A patch timed out and may still land: kept, and re-sent for this node only."""
    ASSIGNED = "assigned"
    """Seen on the Node (or occupied from it)."""


@dataclass(frozen=True, slots=True)
class _Holding:
    """What the pool holds for one Node object."""

    uid: str
    blocks: tuple[Network, ...]
    """Occupied in the pool on this node's behalf."""
    state: _State
    spec: tuple[str, ...] = ()
    """The node's podCIDRs this holding accounts for (empty until ASSIGNED)."""
    unclaimed: tuple[Network, ...] = ()
    """The node's podCIDRs that overlapped another holder (reported); retried after every release."""
    since: float = 0.0
    """Monotonic time of the allocation, to log how long a patch stayed in doubt."""


class Allocator:
    """Assigns podCIDRs from `pool` to Nodes through `cluster`; every patch passes `fence` first."""

    def __init__(
        self,
        cluster: Cluster,
        pool: ipam.CIDRPool,
        fence: Fence,
        metrics: Metrics,
        *,
        exclude_label: tuple[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cluster = cluster
        self._pool = pool
        self._fence = fence
        self._metrics = metrics
        self._exclude_label = exclude_label
        self._clock = clock
        self._lock = threading.Condition()
        self._holdings: dict[str, _Holding] = {}
        self._retired: dict[tuple[str, str], _Holding] = {}
        """(name, uid) → blocks of an earlier Node of a re-used name: held until `release` of that
        object, because its routes may still exist until the controller has removed them."""
        self._in_flight: set[str] = set()
        self._publish_usage()

    # --- entry points --------------------------------------------------------------------------

    def rebuild(self, nodes: Iterable[Node]) -> None:
        """Occupy every existing podCIDR (call once, on a fresh pool, before any `sync`).

        A podCIDR outside the cluster CIDRs, or overlapping one occupied earlier in `nodes` order, is
        reported (Event `CIDRNotAvailable`, `routectl_ipam_cidr_conflicts_total`) and left alone.
        """
        for node in nodes:
            if node.pod_cidrs:
                with self._serialised(node.name):
                    self._account(node)

    def sync(self, node: Node) -> Node:
        """Make sure `node` has podCIDRs (unless excluded or being deleted); return it as it now is.

        Raises AllocationFailed (retry later) or LostLeadership (stop: this process may not write).
        """
        with self._serialised(node.name):
            if node.pod_cidrs:
                self._account(node)
                return node
            if node.deleting or node.excluded_by(self._exclude_label):
                return node
            return self._assign(node)

    def release(self, node: Node) -> None:
        """Free what the pool holds for `node`: call only once the Node object is gone for good."""
        with self._serialised(node.name), self._lock:
            holding = self._retired.pop((node.name, node.uid), None)
            if holding is None:
                holding = self._holdings.get(node.name)
                if holding is None or holding.uid != node.uid:
                    return
                del self._holdings[node.name]
            self._pool.release(holding.blocks)
            self._reclaim_locked()
            self._publish_usage()
        log.info(
            "released podCIDRs",
            extra={"node": node.name, "cidrs": _text(holding.blocks), "outcome": "released"},
        )

    # --- assignment ----------------------------------------------------------------------------

    def _assign(self, node: Node) -> Node:
        with self._lock:
            holding = self._holdings.get(node.name)
        if holding is not None and holding.uid == node.uid and holding.state is _State.ASSIGNED:
            return self._reread(node)  # the caller's copy predates our own patch
        blocks = self._reserve(node)
        try:
            self._fence.check()
            updated = self._cluster.set_pod_cidrs(node.name, _text(blocks))
        except LostLeadership:
            self._drop(node.name)
            raise
        except AmbiguousError as err:
            return self._after_ambiguous(node, blocks, err)
        except ConflictError:
            current = self._reread(node)  # settles our reservation against what the node carries
            self._drop(node.name)
            return current
        except NotFoundError:
            self._drop(node.name)
            return node
        except ClusterError as err:
            self._drop(node.name)
            message = f"failed to set podCIDRs {','.join(_text(blocks))}: {err}"
            self._event(node, EventKind.WARNING, Reason.CIDR_ASSIGNMENT_FAILED, message)
            raise AllocationFailed(f"node {node.name}: {message}") from err
        with self._lock:
            self._holdings[node.name] = _Holding(node.uid, blocks, _State.ASSIGNED, spec=updated.pod_cidrs)
        self._assigned(updated)
        return updated

    def _reserve(self, node: Node) -> tuple[Network, ...]:
        """The blocks to write: those of a patch in doubt for this name, else newly allocated ones.

        A patch in doubt is re-sent even for a new object of the same name: should the first one land
        late, on whichever object, both carry the same blocks.
        """
        with self._lock:
            holding = self._holdings.get(node.name)
            if holding is not None and holding.state is not _State.ASSIGNED:
                self._holdings[node.name] = replace(holding, uid=node.uid)
                return holding.blocks
            if holding is not None:
                self._retire_locked(node.name)  # held for an older object of this name
            try:
                blocks = self._pool.allocate()
            except ipam.PoolExhausted as err:
                exhausted = err
            else:
                self._holdings[node.name] = _Holding(node.uid, blocks, _State.RESERVED, since=self._clock())
                self._publish_usage()
                return blocks
        message = f"no podCIDR available: {exhausted}"
        self._event(node, EventKind.WARNING, Reason.CIDR_NOT_AVAILABLE, message)
        raise AllocationFailed(f"node {node.name}: {message}") from exhausted

    def _after_ambiguous(self, node: Node, blocks: tuple[Network, ...], err: AmbiguousError) -> Node:
        with self._lock:
            holding = self._holdings[node.name]
            self._holdings[node.name] = replace(holding, state=_State.IN_DOUBT)
        log.warning(
            "podCIDR patch outcome unknown; blocks stay reserved for this node",
            extra={"node": node.name, "cidrs": _text(blocks), "outcome": "ambiguous", "error": str(err)},
        )
        current = self._reread(node)
        if not current.pod_cidrs:
            raise AllocationFailed(
                f"node {node.name}: podCIDR patch timed out and the node shows none yet; "
                f"{','.join(_text(blocks))} stay reserved for it"
            ) from err
        return current

    def _reread(self, node: Node) -> Node:
        """Fetch the node and account for what it carries; the node as passed if it is gone."""
        try:
            current = self._cluster.get_node(node.name)
        except NotFoundError:
            return node
        except ClusterError as err:
            raise AllocationFailed(f"node {node.name}: cannot re-read it: {err}") from err
        if current.pod_cidrs:
            self._account(current)
        return current

    def _assigned(self, node: Node, in_doubt_s: float | None = None) -> None:
        cidrs = ",".join(node.pod_cidrs)
        self._event(node, EventKind.NORMAL, Reason.CIDR_ASSIGNED, f"assigned podCIDRs {cidrs}")
        extra: dict[str, object] = {"node": node.name, "cidrs": cidrs, "outcome": "assigned"}
        if in_doubt_s is not None:
            extra["in_doubt_s"] = round(in_doubt_s, 3)  # how long an ambiguous patch stayed unknown
        log.info("assigned podCIDRs", extra=extra)

    # --- existing podCIDRs ---------------------------------------------------------------------

    def _account(self, node: Node) -> None:
        """Make the pool hold `node`'s podCIDRs for it; report those it cannot hold."""
        in_doubt_s: float | None = None
        failures: list[tuple[str, str]] = []
        with self._lock:
            holding = self._holdings.get(node.name)
            if holding is not None and holding.uid == node.uid and holding.spec == node.pod_cidrs:
                return
            ours = (
                holding is not None
                and holding.state is not _State.ASSIGNED
                and _text(holding.blocks) == node.pod_cidrs
            )
            if holding is not None and ours:
                in_doubt_s = self._clock() - holding.since
                self._holdings[node.name] = replace(
                    holding, uid=node.uid, state=_State.ASSIGNED, spec=node.pod_cidrs
                )
            else:
                if holding is not None and holding.uid != node.uid and holding.state is _State.ASSIGNED:
                    self._retire_locked(node.name)
                elif holding is not None:
                    self._forget_locked(node.name)
                failures = self._occupy_locked(node)
            self._publish_usage()
        if in_doubt_s is not None:
            self._assigned(node, in_doubt_s)
        for cidr, reason in failures:
            self._metrics.cidr_conflicts.inc()
            message = f"podCIDR {cidr} is not available to this node: {reason}; left as is"
            self._event(node, EventKind.WARNING, Reason.CIDR_NOT_AVAILABLE, message)
            log.warning(
                "existing podCIDR not occupied",
                extra={"node": node.name, "cidrs": cidr, "outcome": "conflict", "error": reason},
            )

    def _occupy_locked(self, node: Node) -> list[tuple[str, str]]:
        """Occupy each podCIDR on its own (one bad family must not free the other); return failures."""
        held: list[Network] = []
        unclaimed: list[Network] = []
        failures: list[tuple[str, str]] = []
        for text in node.pod_cidrs:
            try:
                net = ipam.parse_cidr(text, "podCIDR")
                self._pool.occupy(net)
            except ipam.CIDRConflict as err:
                unclaimed.append(err.cidr)
                failures.append((text, f"overlaps {err.existing}, {self._owner_locked(err)}"))
            except ipam.IPAMError as err:
                failures.append((text, str(err)))
            else:
                held.append(net)
        self._holdings[node.name] = _Holding(
            node.uid, tuple(held), _State.ASSIGNED, spec=node.pod_cidrs, unclaimed=tuple(unclaimed)
        )
        return failures

    def _owner_locked(self, err: ipam.CIDRConflict) -> str:
        if err.reserved:
            return "a reserved range"
        for name, holding in self._holdings.items():
            if any(block.overlaps(err.existing) for block in holding.blocks):
                return f"held by node {name}"
        return "already in use"

    def _reclaim_locked(self) -> None:
        """After a release, let nodes whose podCIDRs were taken by the released node claim them."""
        for name, holding in list(self._holdings.items()):
            still: list[Network] = []
            gained: list[Network] = []
            for net in holding.unclaimed:
                try:
                    self._pool.occupy(net)
                except ipam.IPAMError:
                    still.append(net)
                else:
                    gained.append(net)
            if gained:
                self._holdings[name] = replace(
                    holding, blocks=holding.blocks + tuple(gained), unclaimed=tuple(still)
                )
                log.info(
                    "claimed podCIDR freed by a deleted node",
                    extra={"node": name, "cidrs": _text(gained), "outcome": "occupied"},
                )

    # --- small helpers -------------------------------------------------------------------------

    def _drop(self, name: str) -> None:
        """Give back a reservation whose patch certainly did not happen (never one in doubt)."""
        with self._lock:
            holding = self._holdings.get(name)
            if holding is not None and holding.state is _State.RESERVED:
                self._forget_locked(name)
                self._publish_usage()

    def _retire_locked(self, name: str) -> None:
        """An earlier object of this name: its blocks stay taken until `release(tombstone)`."""
        holding = self._holdings.pop(name)
        self._retired[name, holding.uid] = holding

    def _forget_locked(self, name: str) -> None:
        holding = self._holdings.pop(name)
        self._pool.release(holding.blocks)
        self._reclaim_locked()

    def _publish_usage(self) -> None:
        for usage in self._pool.usage():
            cidr = str(usage.cidr)
            self._metrics.ipam_capacity.labels(cidr=cidr).set(usage.capacity)
            self._metrics.ipam_used.labels(cidr=cidr).set(usage.used)

    def _event(self, node: Node, kind: EventKind, reason: Reason, message: str) -> None:
        """Events are best effort: a failure to record one must not fail the allocation."""
        try:
            self._cluster.record_event(node, kind.value, reason.value, message)
        except ClusterError as err:
            log.warning(
                "could not record event",
                extra={"node": node.name, "reason": reason.value, "error": str(err)},
            )

    @contextmanager
    def _serialised(self, name: str) -> Iterator[None]:
        """One call per node name at a time (the work queue promises it; this enforces it)."""
        with self._lock:
            while name in self._in_flight:
                self._lock.wait()
            self._in_flight.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.discard(name)
                self._lock.notify_all()


def _text(blocks: Iterable[Network]) -> tuple[str, ...]:
    return tuple(str(block) for block in blocks)
