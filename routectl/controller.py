"""Wires the node cache, work queue, leader election, allocator and route reconciler into one controller.

Invariants kept here: the shared provider's call observer and write guard are set once, by
`route_reconciler`; nothing is allocated or written before this process leads and its node cache has
synced and the allocator has been rebuilt from it; a deleted node's routes are removed from every table
before its CIDR is released. Shutdown is bounded: on stop the fence closes at once (no write starts
after it), the workers get the drain window (renew deadline / 2, the Kubernetes request timeout) to
finish the item in hand, then the lease is released; threads still inside a slow cloud call after that
are reported in `unfinished` and left behind, fenced off, for the process to exit without them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

import ipam
from providers import RouteProvider
from routectl.cluster import Cluster, ClusterError, Node, list_all_nodes
from routectl.config import Config
from routectl.engine.allocator import AllocationFailed, Allocator
from routectl.engine.contest import Contests
from routectl.engine.executor import Executor
from routectl.engine.nodestatus import NodeStatus
from routectl.engine.planner import WriteRules
from routectl.engine.ratelimit import Pacer
from routectl.engine.reconciler import Reconciler
from routectl.engine.routeview import RouteView
from routectl.fence import Fence, LostLeadership, Unfenced
from routectl.kube.informer import NodeChange, NodeInformer
from routectl.kube.leader import LeaderElector
from routectl.kube.workqueue import WorkQueue
from routectl.metrics import Metrics

log = logging.getLogger(__name__)

_QUEUE = "nodes"
_CACHE_CATCH_UP_S = 5.0


class NotStarted(ClusterError):
    """`run --once` could not start its pass within its bound; the message says what was missing."""


class _Workers:
    """The leader's threads; `halt` ends them between items (never inside a write) and joins them,
    including threads started by other worker threads while halting, until the drain deadline set by
    the first `halt`; it returns the names of those still running then."""

    def __init__(self, drain_s: float) -> None:
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._drain_s = drain_s
        self._deadline: float | None = None

    def start(self, count: int, target: Callable[[threading.Event], None], name: str) -> None:
        with self._lock:
            if self.stop.is_set():
                return
            for i in range(count):
                thread = threading.Thread(target=target, args=(self.stop,), name=f"{name}-{i}")
                thread.start()
                self._threads.append(thread)

    def halt(self) -> tuple[str, ...]:
        self.stop.set()
        current = threading.current_thread()
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self._drain_s
            deadline = self._deadline
        while True:
            with self._lock:
                pending = [t for t in self._threads if t is not current and t.is_alive()]
            left_s = deadline - time.monotonic()
            if not pending or left_s <= 0:
                return tuple(t.name for t in pending)
            pending[0].join(timeout=left_s)


def route_reconciler(
    cluster: Cluster,
    provider: RouteProvider,
    fence: Fence,
    metrics: Metrics,
    *,
    cluster_cidrs: Sequence[ipam.CIDRLike],
    nodes: Callable[[], list[Node]],
    exclude_label: tuple[str, str],
    concurrency: int,
    nodes_generation: Callable[[], int] | None = None,
    pool_rules: ipam.PoolConfig | None = None,
    on_owner_change: Callable[[str], None] = lambda name: None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 4,
    base_delay_s: float = 0.5,
    write_rules: WriteRules | None = None,
    contests: Contests | None = None,
) -> Reconciler:
    """The route side, wired: the one place the shared provider is told where its calls are counted
    (the cloud-API metrics) and what guards its writes (the fence); no constructor rewires it.
    `pool_rules` (node masks, reserved ranges; default: the cluster CIDRs with default masks) decide
    which podCIDRs a node owns; `write_rules` are `--adopt-routes` and `--route-policy`;
    `nodes_generation` (the informer's) lets a node sync reuse ownership while `nodes` is unchanged."""
    provider.observe(metrics.cloud_calls(provider.name))
    provider.guard_writes(fence.check)
    pacer = Pacer(
        provider.limits, max_attempts=max_attempts, base_delay_s=base_delay_s, clock=clock, sleep=sleep
    )
    return Reconciler(
        RouteView(provider, pacer, metrics, [ipam.parse_cidr(c) for c in cluster_cidrs]),
        NodeStatus(cluster, fence, metrics, clock=clock),
        Executor(provider, fence, metrics, pacer, concurrency=concurrency),
        metrics,
        nodes=nodes,
        nodes_generation=nodes_generation,
        target_for=provider.target_for,
        exclude_label=exclude_label,
        pool_rules=pool_rules or ipam.validate(cluster_cidrs),
        on_owner_change=on_owner_change,
        dry_run=dry_run,
        clock=clock,
        write_rules=write_rules,
        contests=contests,
    )


class Controller:
    def __init__(
        self,
        config: Config,
        cluster: Cluster,
        provider: RouteProvider | None,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self._metrics = metrics
        self.queue = WorkQueue(_QUEUE, metrics)
        self.informer = NodeInformer(cluster, self._on_change)
        self.elector = (
            LeaderElector(cluster, config.leader_election, metrics)
            if config.leader_election.enabled
            else None
        )
        fence: Fence = self.elector if self.elector is not None else Unfenced()
        self.allocator = (
            Allocator(cluster, config.pool(), fence, metrics, exclude_label=config.exclude_label, clock=clock)
            if config.allocate_node_cidrs and not config.dry_run
            else None
        )
        self.reconciler = (
            route_reconciler(
                cluster,
                provider,
                fence,
                metrics,
                cluster_cidrs=config.cluster_cidrs,
                nodes=self.informer.nodes,
                nodes_generation=self.informer.generation,
                exclude_label=config.exclude_label,
                concurrency=config.concurrent_node_syncs,
                pool_rules=config.pool_rules(),
                on_owner_change=self.queue.add,
                dry_run=config.dry_run,
                clock=clock,
                write_rules=WriteRules.chosen(config.adopt_routes, config.route_policy),
            )
            if provider is not None and config.configure_cloud_routes
            else None
        )
        self._tombstones: dict[str, list[Node]] = {}
        """name → the deleted objects of that name, oldest first, until their removal is done."""
        self._tomb_lock = threading.Lock()
        # The Kubernetes request timeout (cli): a Node patch in flight is answered or has failed by then.
        self._workers = _Workers(drain_s=config.leader_election.renew_deadline_s / 2)
        self._failed = threading.Event()
        self._drained = threading.Event()
        self.unfinished: tuple[str, ...] = ()
        """Threads still inside a request when shutdown ended; the closed fence keeps them from writing."""

    # --- probes --------------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self.elector.healthy() if self.elector is not None else True

    def ready(self) -> bool:
        return self.informer.synced.is_set()

    # --- main loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Run until `stop` (exit 0) or until leadership is lost (exit 1)."""
        return self._serve(stop, self._start_workers)

    def run_once(self, stop: threading.Event, startup_s: float) -> bool:
        """`run --once`: lead, do one full pass, hand the lease back; True when converged.

        Bounded: when this process does not lead with a synced node cache within `startup_s` (API
        server unreachable, or another replica holds the lease), it stops, raising `NotStarted`."""
        result: list[bool] = []
        began = threading.Event()

        def one_pass(workers_stop: threading.Event) -> None:
            began.set()
            try:
                result.append(self._resync_guarded(workers_stop))
            finally:
                stop.set()

        def give_up() -> None:
            if not began.is_set():
                stop.set()

        watchdog = threading.Timer(startup_s, give_up)
        watchdog.start()
        try:
            code = self._serve(stop, one_pass)
        finally:
            watchdog.cancel()
        if not began.is_set():
            lease = self.config.leader_election
            holder = (
                f", or another replica holds lease {lease.namespace}/{lease.name}" if lease.enabled else ""
            )
            why = f"API server unreachable{holder}"
            raise NotStarted(f"not leading with a synced node cache after {startup_s:.0f}s ({why})")
        return code == 0 and result == [True]

    def _serve(self, stop: threading.Event, work: Callable[[threading.Event], None]) -> int:
        # A daemon because a watch only notices `stop` at its next event; it never writes.
        informer = threading.Thread(target=self.informer.run, args=(stop,), name="informer", daemon=True)
        informer.start()

        def started() -> None:
            # The elector waits for this callback, so the slow part (cache sync, IPAM rebuild) runs
            # on a thread of its own while renewals continue.
            self._workers.start(1, lambda s: self._prepare_then(s, work, stop), "leading")

        try:
            if self.elector is None:
                started()
                stop.wait()
            else:
                self.elector.run(stop, started, self._drain)
            return 1 if self._failed.is_set() else 0
        except LostLeadership:
            log.error("leadership lost: all work stopped", extra={"op": "leader", "outcome": "lost"})
            return 1
        finally:
            self.unfinished = self._drain()
            self.queue.shut_down()
            if self.reconciler is not None and not self.unfinished:
                self.reconciler.close()  # waits for its write pool, idle once every worker has ended
            stop.set()
            informer.join(timeout=1.0)

    def _drain(self) -> tuple[str, ...]:
        """Stop the workers within the drain window (the elector's stop callback, then shutdown)."""
        already = self._drained.is_set()
        self._drained.set()
        self._workers.stop.set()
        self.queue.shut_down()  # idle workers wait on the queue: wake them now, not at their poll
        unfinished = self._workers.halt()
        if unfinished and not already:
            log.warning(
                "drain window over with work in flight; its writes are fenced off",
                extra={"op": "shutdown", "outcome": ",".join(unfinished), "count": len(unfinished)},
            )
        return unfinished

    def _prepare_then(
        self, stop: threading.Event, work: Callable[[threading.Event], None], main_stop: threading.Event
    ) -> None:
        """Nothing is allocated before the cache is synced and IPAM is rebuilt — from a fresh list, not
        the cache: a standby's watch may lag behind the blocks the previous leader handed out."""
        try:
            while not self.informer.synced.wait(0.1):
                if stop.is_set():
                    return
            if self.allocator is not None:
                self.allocator.rebuild(list_all_nodes(self.cluster))
            work(stop)
        except Exception:
            # A leader that cannot start its work must not sit on the lease doing nothing.
            log.exception("leading failed to start", extra={"op": "leader", "outcome": "error"})
            self._failed.set()
            main_stop.set()

    def _start_workers(self, stop: threading.Event) -> None:
        # One full pass first: it lists each table once and applies the whole plan in batches, far
        # cheaper than every node's own sync racing on an empty view of the tables.
        converged = self._resync_guarded(stop)
        self._workers.start(self.config.concurrent_node_syncs, self._work, "worker")
        self._workers.start(1, lambda s: self._resync_loop(s, converged), "resync")
        for node in self.informer.nodes():
            self.queue.add(node.name)

    def _on_change(self, change: NodeChange) -> None:
        """Informer handler: only records tombstones and enqueues the key, never does work."""
        if change.kind == "deleted" and change.old is not None:
            with self._tomb_lock:
                self._tombstones.setdefault(change.old.name, []).append(change.old)
            self.queue.add(change.old.name)
        elif change.new is not None:
            self.queue.add(change.new.name)

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout_s=0.5)
            if key is None:
                continue
            try:
                self.process(key)
            except LostLeadership:
                stop.set()
                return

    def process(self, key: str) -> None:
        """One item taken from the queue: sync it, then forget it (done) or re-queue it with backoff;
        the item is marked done either way. LostLeadership propagates: the caller stops."""
        try:
            try:
                done = self.sync(key)
            except AllocationFailed:
                done = False  # its Event is recorded; retry with backoff
            except LostLeadership:
                raise
            except Exception:
                log.exception("node sync failed", extra={"node": key, "op": "sync", "outcome": "error"})
                done = False
            if done:
                self.queue.forget(key)
            else:
                self.queue.add_rate_limited(key)
        finally:
            self.queue.done(key)

    def sync(self, name: str) -> bool:
        """Reconcile one node by name; True when nothing is left to do for it."""
        while True:
            with self._tomb_lock:
                pending = self._tombstones.get(name)
                tombstone = pending[0] if pending else None
            if tombstone is None:
                break
            if not self._remove(tombstone):
                return False
            with self._tomb_lock:
                pending = self._tombstones[name]
                pending.remove(tombstone)
                if not pending:
                    del self._tombstones[name]
        node = self.informer.get(name)
        if node is None:
            return True
        if self.allocator is not None:
            node = self.allocator.sync(node)
        return self.reconciler.sync_node(node) if self.reconciler is not None else True

    def _remove(self, node: Node) -> bool:
        """A deleted node: its routes go first, then its CIDR, so a reused block never has a stale route."""
        if self.reconciler is not None and not self.reconciler.remove_node(node):
            return False
        if self.allocator is not None:
            self.allocator.release(node)
        return True

    def _resync_loop(self, stop: threading.Event, converged: bool) -> None:
        while not stop.wait(self._next_resync_s(converged)):
            converged = self._resync_guarded(stop)

    def _next_resync_s(self, converged: bool) -> float:
        # Jitter keeps the replicas of many clusters sharing one account from resyncing in lockstep;
        # an unconverged pass comes back sooner so quota or throttling waits are not a full period.
        period = self.config.resync_period_s
        return (period if converged else min(period, 10.0)) * random.uniform(0.9, 1.1)

    def _resync_guarded(self, stop: threading.Event) -> bool:
        """A full pass whose failure is logged, never fatal; only fencing stops work. Its verdict is
        `routectl_converged` (the reconciler records the pass's duration and error count itself)."""
        converged = False
        try:
            converged = self.resync()
        except LostLeadership:
            stop.set()
        except Exception:
            log.exception("full resync failed", extra={"op": "resync", "outcome": "error"})
        self._metrics.converged.set(1 if converged else 0)
        return converged

    def _allocate(self, node: Node) -> Node | None:
        assert self.allocator is not None
        current = self.informer.get(node.name)
        if current is None or current.uid != node.uid:
            return None  # gone (or re-created) since the pass began: never occupy a block for it
        try:
            return self.allocator.sync(current)
        except AllocationFailed:
            return None  # its Event is recorded; the node's own queue entry retries with backoff

    def _await_cache(self, nodes: list[Node]) -> None:
        """Let the cache catch up with the podCIDRs just written, so the route pass that follows sees
        them instead of reporting those nodes as having none. Bounded: a slow watch only delays."""
        deadline = time.monotonic() + _CACHE_CATCH_UP_S
        for node in nodes:
            while time.monotonic() < deadline and not self._workers.stop.is_set():
                cached = self.informer.get(node.name)
                if cached is None or cached.pod_cidrs == node.pod_cidrs:
                    break
                time.sleep(0.01)

    def resync(self) -> bool:
        """One full pass: every node's CIDR, then every table listed once and the whole plan applied."""
        if self.allocator is not None:
            allocated: list[Node] = []
            for node in self.informer.nodes():
                if self._workers.stop.is_set():
                    return False  # stopping: the pass ends between two nodes, never inside a write
                done = self._allocate(node)
                if done is not None:
                    allocated.append(done)
            self._await_cache(allocated)
        return self.reconciler.resync() if self.reconciler is not None else True
