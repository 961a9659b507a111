"""The podCIDR allocation loop's core: give each Node one block per family, and never one block to two.

Invariant: a block is free in the pool only if no Node this allocator knows of owns it, no earlier
object of a re-used name may still have routes to it, and no write of it to a Node may still land.
Which node owns a block is `ownership.py`'s answer (the allocator keeps its incremental form, `Claims`,
so IPAM and routes never disagree): a podCIDR that is not its node's (duplicate, outside, wrong size,
reserved) holds nothing and is reported. Hence: existing podCIDRs are accounted before anything is
handed out (`rebuild`); a block is released only when the patch certainly failed or no Node object
holds it any more (`release`, never on deletionTimestamp; when the owner goes, the next claimant owns
it and it stays taken); after an ambiguous patch (timeout) the block stays reserved for that Node and
is retried for it, never given to another, until a read shows the Node's podCIDRs.

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
import gc
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
from routectl.engine.ownership import Claims
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


@dataclass(frozen=True, slots=True)
class _Pending:
    """Blocks allocated for one Node name that the Node does not show yet."""

    uid: str
    blocks: tuple[Network, ...]
    state: _State
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
        self._claims = Claims(pool.rules)
        """The podCIDRs every Node object shows (by name): who owns what."""
        self._pending: dict[str, _Pending] = {}
        self._retired: dict[tuple[str, str], tuple[Network, ...]] = {}
        """(name, uid) → blocks owned by an earlier Node of a re-used name: held until `release` of that
        object, because its routes may still exist until the controller has removed them."""
        self._taken: set[Network] = set()
        """Blocks this allocator holds in the pool: owned, pending or retired ones, and only those."""
        self._in_flight: set[str] = set()
        self._publish_usage()

    # --- entry points --------------------------------------------------------------------------

    def rebuild(self, nodes: Iterable[Node]) -> None:
        """Account every existing podCIDR before any `sync` (on a fresh pool, or again after a
        leadership change). A podCIDR its node does not own is reported (Event `CIDRNotAvailable`,
        `routectl_ipam_cidr_conflicts_total`) and holds nothing."""
        changed: list[Node] = []
        with self._lock, _collector_paused():
            for node in nodes:
                if node.pod_cidrs and self._put_locked(node):
                    changed.append(node)
            self._sync_pool_locked()
        for node in changed:
            self._report(node)

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
        """Free what is held for `node`: call only once the Node object is gone for good."""
        with self._serialised(node.name), self._lock:
            blocks = self._retired.pop((node.name, node.uid), None)
            if blocks is None:
                pending = self._pending.get(node.name)
                if self._claims.uid(node.name) == node.uid:
                    blocks = self._claims.owned(node.name)
                    self._claims.remove(node.name)
                elif pending is not None and pending.uid == node.uid:
                    blocks = self._pending.pop(node.name).blocks
                else:
                    return
            self._sync_pool_locked()
        log.info(
            "released podCIDRs", extra={"node": node.name, "cidrs": _text(blocks), "outcome": "released"}
        )

    # --- assignment ----------------------------------------------------------------------------

    def _assign(self, node: Node) -> Node:
        if self._claims.uid(node.name) == node.uid:
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
        self._account(updated)
        return updated

    def _reserve(self, node: Node) -> tuple[Network, ...]:
        """The blocks to write: those of a patch in doubt for this name, else newly allocated ones.

        A patch in doubt is re-sent even for a new object of the same name: should the first one land
        late, on whichever object, both carry the same blocks.
        """
        with self._lock:
            pending = self._pending.get(node.name)
            if pending is not None:
                self._pending[node.name] = replace(pending, uid=node.uid)
                return pending.blocks
            if self._claims.uid(node.name) is not None:
                self._retire_locked(node.name)  # held for an older object of this name
            try:
                blocks = self._pool.allocate()
            except ipam.PoolExhausted as err:
                exhausted = err
            else:
                self._taken.update(blocks)
                self._pending[node.name] = _Pending(node.uid, blocks, _State.RESERVED, self._clock())
                self._publish_usage()
                return blocks
        message = f"no podCIDR available: {exhausted}"
        self._event(node, EventKind.WARNING, Reason.CIDR_NOT_AVAILABLE, message)
        raise AllocationFailed(f"node {node.name}: {message}") from exhausted

    def _after_ambiguous(self, node: Node, blocks: tuple[Network, ...], err: AmbiguousError) -> Node:
        with self._lock:
            self._pending[node.name] = replace(self._pending[node.name], state=_State.IN_DOUBT)
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
        """Record what `node` shows (its claims); settle a reservation of ours against it; report the
        podCIDRs it does not own."""
        with self._lock:
            pending = self._pending.get(node.name)
            if not self._put_locked(node):
                return
            ours = pending is not None and _text(pending.blocks) == node.pod_cidrs
            self._sync_pool_locked()
        if ours and pending is not None:
            in_doubt = pending.state is _State.IN_DOUBT
            self._assigned(node, self._clock() - pending.since if in_doubt else None)
        self._report(node)

    def _put_locked(self, node: Node) -> bool:
        """Take `node`'s podCIDRs as its claims (a reservation for it ends: the node shows its own);
        False when they are recorded already."""
        known = self._claims.uid(node.name)
        if known == node.uid and self._claims.spec(node.name) == node.pod_cidrs:
            return False
        self._pending.pop(node.name, None)
        if known is not None and known != node.uid:
            self._retire_locked(node.name)
        self._claims.put(node)
        return True

    def _report(self, node: Node) -> None:
        for problem in self._claims.problems(node.name):
            self._metrics.cidr_conflicts.inc()
            self._event(node, EventKind.WARNING, Reason.CIDR_NOT_AVAILABLE, problem.message)
            log.warning(
                "existing podCIDR not owned by its node",
                extra={
                    "node": node.name,
                    "cidrs": problem.pod_cidr,
                    "outcome": "conflict",
                    "error": problem.detail,
                },
            )

    # --- small helpers -------------------------------------------------------------------------

    def _sync_pool_locked(self) -> None:
        """Make the pool hold exactly the blocks owned, pending or retired."""
        held = self._claims.owned_blocks()
        held.update(b for pending in self._pending.values() for b in pending.blocks)
        held.update(b for blocks in self._retired.values() for b in blocks)
        self._pool.occupy_blocks(held - self._taken)  # each held block is one free node block
        freed = self._taken - held
        if freed:
            self._pool.release(freed)
        self._taken = held
        self._publish_usage()

    def _drop(self, name: str) -> None:
        """Give back a reservation whose patch certainly did not happen (never one in doubt)."""
        with self._lock:
            pending = self._pending.get(name)
            if pending is not None and pending.state is _State.RESERVED:
                del self._pending[name]
                self._sync_pool_locked()

    def _retire_locked(self, name: str) -> None:
        """An earlier object of this name: the blocks it owned stay taken until `release(tombstone)`."""
        uid = self._claims.uid(name)
        owned = self._claims.owned(name)
        self._claims.remove(name)
        if uid is not None and owned:
            self._retired[name, uid] = owned

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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of one allocation-heavy pass, then restore it.

    A rebuild makes several objects per podCIDR (networks, claims) and no cycles, so the collections
    it triggers find nothing; with 5,000 dual-stack nodes they cost about 10 % of its time (measured).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _text(blocks: Iterable[Network]) -> tuple[str, ...]:
    return tuple(str(block) for block in blocks)
