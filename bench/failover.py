"""Failover: two controllers share one MemoryCluster (and one cloud) with real timers and the default
lease timings; the leader goes away and the standby's first write is timed.

- Kill (SIGKILL stand-in): every call the leader makes — to the cluster and to the cloud — hangs from that
  moment, so it neither renews nor releases nor writes again, exactly as a vanished process. The standby
  watches the Lease, so it saw the last renewal as it happened, and takes over the moment that record
  has been unchanged for a whole lease duration on its own clock: expected gap = lease duration minus
  however long before the kill the last renew was, plus the new leader's start (goal ≤ lease + 0.5 s).
- Term (SIGTERM): the leader's stop event is set; it stops its workers and releases the lease (empty
  holder). The standby's watch shows the release and it takes over at once instead of at its next
  jittered retry: expected gap = the leader's drain + one read and one write of the Lease + the new
  leader's start (goal ≤ 0.5 s).

At the moment of the failure a node joins, so the standby has a write to make (its podCIDR); the gap runs
from the failure to the standby's first write to the cluster or the cloud.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from bench.world import add_nodes, all_converged, new_cluster, routectl_config, summary_stats, wait_until
from providers import RouteProvider, Transient
from providers.emulators.simcloud import WRITES as CLOUD_WRITES
from providers.emulators.simcloud import SimCloud
from providers.model import WriteGuard, no_guard
from routectl.cluster import Cluster, ClusterError
from routectl.config import Config
from routectl.controller import Controller
from routectl.demo.memcluster import MemoryCluster
from routectl.metrics import Metrics

WRITES = frozenset(
    {
        "set_pod_cidrs",
        "set_network_unavailable",
        "record_event",
        "create_routes",
        "replace_routes",
        "delete_routes",
        "adopt_routes",
    }
)
LOCAL = frozenset({"target_for", "observe", "guard_writes", "close"})
"""Provider methods that make no call to the cloud: a killed process would never get as far as these."""


class _Proxy:
    """Passes every method call to `target`, after `before(method name)` has run (it may block or raise);
    the methods in `own` are this process's instead of the target's."""

    def __init__(
        self, target: object, before: Callable[[str], None], own: dict[str, Callable[..., Any]] | None = None
    ) -> None:
        self._target = target
        self._before = before
        self._own = own or {}

    def __getattr__(self, name: str) -> Any:
        attr = self._own.get(name) or getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._before(name)
            return attr(*args, **kwargs)

        return call


class _Process:
    """One controller as if it were its own process: its own view of the shared cluster and cloud, and
    its own write guard (its fence, checked before each of its cloud writes; the shared sim keeps none,
    or the last controller built would guard every process's writes)."""

    def __init__(self, cluster: MemoryCluster, sim: SimCloud, cfg: Config) -> None:
        self.killed = threading.Event()
        self._reaped = threading.Event()
        self._guard: WriteGuard = no_guard
        self.first_write: float | None = None
        self.controller = Controller(
            cfg,
            cast(Cluster, _Proxy(cluster, self._gate(ClusterError))),
            cast(RouteProvider, _Proxy(sim, self._gate(Transient), {"guard_writes": self._guard_with})),
            Metrics(),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.controller.run, args=(self.stop,), name="controller")

    def _gate(self, error: type[Exception]) -> Callable[[str], None]:
        def before(method: str) -> None:
            if self.killed.is_set() and method not in LOCAL:
                self._reaped.wait()  # a killed process makes no further call; unblocked only at teardown
                raise error(f"{method}: process killed")
            if method in CLOUD_WRITES:
                self._guard()
            if method in WRITES and self.first_write is None:
                self.first_write = time.monotonic()

        return before

    def _guard_with(self, guard: WriteGuard) -> None:
        self._guard = guard

    def start(self) -> None:
        self.thread.start()

    def is_leader(self) -> bool:
        elector = self.controller.elector
        return elector is not None and elector.is_leader()

    def kill(self) -> None:
        self.killed.set()

    def reap(self) -> None:
        """Stop (or, if killed, unblock into errors) and join. A killed controller's dying errors are
        expected noise, so logging is muted while it unwinds."""
        self.stop.set()
        if not self.thread.is_alive():
            return
        if self.killed.is_set():
            logging.disable(logging.CRITICAL)
        try:
            self._reaped.set()
            self.thread.join(timeout=60)
        finally:
            logging.disable(logging.NOTSET)


def _trial(kill: bool, seed: int) -> dict[str, float]:
    sim, cluster = SimCloud("bench"), new_cluster()
    add_nodes(cluster, sim, range(20), with_cidrs=False)
    cfg = routectl_config()
    leader = _Process(cluster, sim, cfg)
    standby = _Process(cluster, sim, routectl_config())  # its own identity
    leader.start()
    try:
        if not wait_until(lambda: all_converged(cluster, cfg), 60):
            raise RuntimeError("the first controller did not converge")
        standby.start()
        # Let the standby observe the lease, then fail at a random phase of the renew cycle.
        time.sleep(4.0 + random.Random(seed).uniform(0, 2.0))
        failed_at = time.monotonic()
        if kill:
            leader.kill()
        else:
            # The node joins once the leader's fence is shut (its very first step on stop), so the
            # write is the standby's; the leader's exit (informer, thread joins) goes on meanwhile.
            leader.stop.set()
            if not wait_until(lambda: not leader.is_leader(), 10, poll_s=0.001):
                raise RuntimeError("the leader did not stop leading")
        add_nodes(cluster, sim, range(20, 21), with_cidrs=False)
        if not wait_until(lambda: standby.first_write is not None, 60, poll_s=0.01):
            raise RuntimeError("the standby never wrote")
        assert standby.first_write is not None
        return {"gap_s": standby.first_write - failed_at}
    finally:
        standby.reap()
        leader.reap()


RUNS = 5
"""Trials of each kind in a full run; the goals are judged on the max."""


def run(quick: bool) -> dict[str, Any]:
    kills, terms = (1, 1) if quick else (RUNS, RUNS)
    cfg = routectl_config()
    lease = cfg.leader_election
    kill_gaps = [_trial(kill=True, seed=i)["gap_s"] for i in range(kills)]
    term_gaps = [_trial(kill=False, seed=100 + i)["gap_s"] for i in range(terms)]
    return {
        "timings_s": {
            "lease_duration": lease.lease_duration_s,
            "renew_deadline": lease.renew_deadline_s,
            "retry_period": lease.retry_period_s,
        },
        "kill": summary_stats(kill_gaps),
        "term": summary_stats(term_gaps),
        "notes": [
            "Two Controller instances on one MemoryCluster with real timers and the default lease "
            f"timings ({lease.lease_duration_s:g} s / {lease.renew_deadline_s:g} s / "
            f"{lease.retry_period_s:g} s). Kill = every call of the leader hangs from that instant (no "
            "renew, no release, no write); term = stop → workers joined → lease released. Gap = failure "
            "→ the standby's first write (a joining node's podCIDR); mean and max of "
            f"{kills} kill and {terms} term runs, failing at a random phase of the renew cycle.",
            "The standby watches the Lease besides its retry timer: it takes a released lease the moment "
            "the watch shows the release (goal: term max ≤ 0.5 s), and an abandoned one the moment the "
            "last change it saw is a lease duration old on its own clock (goal: kill max ≤ lease "
            "duration + 0.5 s; the kill lands up to one renew period after the last renewal, so the "
            "gap is lease duration minus that plus the new leader's start).",
        ],
    }
