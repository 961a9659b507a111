"""Leader election on a `coordination.k8s.io/v1` Lease, with client-go semantics and a write fence.

Invariant: no write happens after `renew deadline` has passed since the last successful renew.
`check()` measures that on this process's monotonic clock from the moment *before* the renew that
succeeded was sent, so a slow response cannot stretch it. A candidate takes over only after it has seen
the same lease record unchanged for a full lease duration on its own monotonic clock (client-go's
`observedTime`; the other host's wall-clock timestamps are never compared), so with
lease duration > renew deadline the old leader's fence has closed before a new leader can exist.

A standby watches the Lease besides its jittered retry timer: every change it sees restarts its own
observation at once, a released lease (empty holder) is tried at once, and a held one the moment a full
lease duration has passed since the last change seen. The watch only moves the next attempt earlier;
every takeover is still decided by a fresh read and a write guarded by the read's resourceVersion.

An elector is single-use: once leadership is lost it never leads again; the process exits and a fresh
process (new identity) stands for election.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from routectl.cluster import Cluster, ClusterError, ConflictError, ForbiddenError, GoneError, Lease
from routectl.config import LeaderElection
from routectl.fence import LostLeadership
from routectl.metrics import Metrics

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""client-go's `JitterFactor`: acquire attempts wait retry period x (1 + rand x 1.2)."""

HEALTHZ_TOLERANCE_S = 20.0
"""client-go's `HealthzAdaptor` timeout: how long past the lease duration a leader may go unrenewed
before /healthz fails (the renew loop should have given up long before; this catches a wedged one)."""

RELEASED_LEASE_DURATION_S = 1
"""What client-go writes on release: with an empty holder, standbys take over at their next attempt."""

STOP_POLL_S = 0.1
"""How often a waiting standby looks at its stop event (the lease watch wakes it at once)."""


class LeaderElector:
    """Acquire, renew and release one Lease; the Fence every Node patch and cloud write passes.

    Thread-safe: `run` drives elections on its thread; `check`, `is_leader` and `healthy` may be called
    from any thread at any time. Lease requests are serialised, each bounded by renew deadline / 2.
    """

    def __init__(
        self,
        cluster: Cluster,
        settings: LeaderElection,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        healthz_tolerance_s: float = HEALTHZ_TOLERANCE_S,
    ) -> None:
        self._cluster = cluster
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._healthz_tolerance_s = healthz_tolerance_s
        self._gauge = metrics.leader.labels(name=settings.name)
        self._gauge.set(0)
        self._timeout_s = settings.renew_deadline_s / 2
        self._lease_s = settings.lease_duration_s
        self._describe = f"{settings.namespace}/{settings.name}"
        self._state = threading.Lock()
        self._requests = threading.Lock()
        self._observed: Lease | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._leading = False
        """Acquired and not yet given up (released or `run` ended); /healthz watches this."""
        self._lost = False
        """Latched: the fence closed (or the lease was taken) while leading."""
        self._resigned = False
        """Latched: stopping; the fence is closed on purpose, so a refused write is not a loss."""
        self._changed = threading.Event()
        """Set by the lease watch when it saw a change: the waiting standby recomputes its next attempt."""

    @property
    def identity(self) -> str:
        return self._settings.identity

    # --- the fence and probes ----------------------------------------------------------------

    def check(self) -> None:
        """Raise LostLeadership unless a renew succeeded less than renew deadline ago; latches."""
        with self._state:
            if self._fence_open_locked():
                return
            if self._leading and not self._resigned:
                self._lose_locked("renew deadline passed since the last successful renew")
        raise LostLeadership(f"{self.identity} does not hold lease {self._describe}")

    def is_leader(self) -> bool:
        """True while writes are allowed (no side effects, unlike `check`)."""
        with self._state:
            return self._fence_open_locked()

    def healthy(self) -> bool:
        """Liveness: false when leading but unrenewed for lease duration + tolerance (a wedged loop)."""
        with self._state:
            if not self._leading:
                return True
            stale_s = self._clock() - self._renewed_at
            return stale_s <= self._lease_s + self._healthz_tolerance_s

    # --- one election step -------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One client-go `tryAcquireOrRenew`: create, take over an expired lease, or renew ours.

        Returns True when this process holds the lease afterwards. Never raises for API errors: they
        count as a failed attempt (the caller's loop retries and the fence decides when it is too late).
        """
        with self._requests:
            with self._state:
                if self._lost:
                    return False
                if self._leading and not self._fence_open_locked():
                    self._lose_locked("renew deadline passed before the next renew")
                    return False
            started = self._clock()
            try:
                written = self._attempt()
            except ClusterError as err:
                self._log_failed_attempt(err)
                return False
            if written is None:
                return False
            return self._won(written, started)

    def _attempt(self) -> Lease | None:
        """Read the lease and write it if we may; None when another holder's lease is still live."""
        timeout = self._timeout_s
        current = self._cluster.get_lease(self._settings.namespace, self._settings.name, timeout)
        now_wall = self._wall()
        duration = math.ceil(self._lease_s)
        if current is None:
            fresh = Lease(
                namespace=self._settings.namespace,
                name=self._settings.name,
                holder=self.identity,
                lease_duration_s=duration,
                acquire_time=now_wall,
                renew_time=now_wall,
            )
            return self._cluster.create_lease(fresh, timeout)
        with self._state:
            self._observe_locked(current)
            if self._leading and current.holder != self.identity:
                self._lose_locked(f"lease taken by {current.holder or 'nobody (released)'}")
                return None
            ours = current.holder == self.identity
            if self._clock() < self._free_at_locked():
                return None
        if ours:
            renewed = replace(current, lease_duration_s=duration, renew_time=now_wall)
            return self._cluster.update_lease(renewed, timeout)
        taken = replace(
            current,
            holder=self.identity,
            lease_duration_s=duration,
            acquire_time=now_wall,
            renew_time=now_wall,
            transitions=current.transitions + 1,
        )
        return self._cluster.update_lease(taken, timeout)

    def _won(self, written: Lease, started: float) -> bool:
        with self._state:
            self._observed, self._observed_at = written, self._clock()
            if self._lost:
                return False
            self._renewed_at = started
            if not self._leading:
                self._leading = True
                self._gauge.set(1)
                log.info(
                    "acquired lease",
                    extra={
                        "lease": self._describe,
                        "identity": self.identity,
                        "transitions": written.transitions,
                        "outcome": "leading",
                    },
                )
            return True

    # --- the loop ------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], object],
    ) -> None:
        """Block: acquire (jittered retries), call `on_started_leading`, renew until stop or loss.

        `on_started_leading` runs on this thread and must return promptly (start workers, return);
        renewals wait for it. On stop or loss the fence closes first, so no write starts any more; then
        `on_stopped_leading` runs (it must stop the workers, bounded: the lease waits for it), then the
        lease is released if it is still ours. Returns after a stop; raises LostLeadership after a loss
        so the process exits non-zero.
        """
        if not self._acquire(stop):
            return
        stopped = False
        try:
            on_started_leading()
            stopped = self._hold(stop)
        finally:
            self.resign()
            on_stopped_leading()
            self.release()
        if not stopped:
            raise LostLeadership(f"{self.identity} lost lease {self._describe}")

    def _acquire(self, stop: threading.Event) -> bool:
        log.info("attempting to acquire lease", extra={"lease": self._describe, "identity": self.identity})
        watching: threading.Event | None = None
        try:
            while not stop.is_set():
                if self.try_acquire_or_renew():
                    return True
                if self._lost:
                    return False
                if watching is None:
                    watching = threading.Event()
                    threading.Thread(
                        target=self._watch, args=(watching,), name="lease-watch", daemon=True
                    ).start()
                self._pause(stop)
            return False
        finally:
            if watching is not None:
                watching.set()

    def _pause(self, stop: threading.Event) -> None:
        """Wait until the next attempt is due: a jittered retry period (client-go's timer), or sooner
        when the lease is free by what the watch has shown (released, or expired by our own clock).
        A record the failed attempt already found free does not count again (a lost race, an API
        error): only a new change, its expiry still ahead, or the timer end the wait."""
        started = self._clock()
        retry_at = started + self._settings.retry_period_s * (1 + self._rng.random() * JITTER_FACTOR)
        with self._state:
            judged = self._observed
        while not stop.is_set():
            with self._state:
                free_at = self._free_at_locked()
                if self._observed is judged and free_at <= started:
                    free_at = math.inf
                left = min(retry_at, free_at) - self._clock()
            if left <= 0:
                return
            self._changed.wait(min(left, STOP_POLL_S))
            self._changed.clear()

    def _watch(self, watching: threading.Event) -> None:
        """Standby only, until `watching` is set (won or stopped): note each change of the
        lease the moment it is seen. Failures fall back to the retry timer until the watch is back."""
        with self._state:
            since = self._observed.resource_version if self._observed is not None else ""
        warned = False
        while not watching.is_set():
            try:
                for current in self._cluster.watch_lease(
                    self._settings.namespace, self._settings.name, since, self._lease_s
                ):
                    since = current.resource_version
                    with self._state:
                        if watching.is_set() or self._leading:
                            return
                        self._observe_locked(current)
                    self._changed.set()
            except GoneError:
                since = ""  # start from the current state
            except ClusterError as err:
                # Refused is the operator's to fix (a Role without `watch` on the lease): say so once;
                # a dropped connection is routine.
                denied = isinstance(err, ForbiddenError)
                log.log(
                    logging.WARNING if denied and not warned else logging.DEBUG,
                    "lease watch failed%s",
                    ": takeover waits for the retry timer (grant watch on the lease)" if denied else "",
                    extra={"lease": self._describe, "identity": self.identity, "error": str(err)},
                )
                warned = warned or denied
                watching.wait(self._settings.retry_period_s)

    def _hold(self, stop: threading.Event) -> bool:
        """Renew every retry period; True when stopped, False once leadership is lost."""
        while not stop.wait(self._settings.retry_period_s):
            self.try_acquire_or_renew()
            if not self.is_leader():
                with self._state:
                    self._lose_locked("could not renew within the renew deadline")
                return False
        return True

    def resign(self) -> None:
        """Close the fence for good without calling it a loss: the first step of a shutdown."""
        with self._state:
            was_leading, self._resigned = self._leading and not self._lost, True
        if was_leading:
            log.info(
                "stopping: no write starts from now on",
                extra={"lease": self._describe, "identity": self.identity, "op": "shutdown"},
            )

    def release(self) -> None:
        """Close the fence, then hand the lease back (empty holder) if the last record seen is ours.

        Uses that record's resourceVersion, so a lease someone else has taken meanwhile is left
        alone (409). Idempotent; a failure is logged, the lease then simply expires.
        """
        with self._requests:
            with self._state:
                was_leading = self._leading
                self._leading = False
                self._lost = True
                self._gauge.set(0)
                observed = self._observed
            if observed is None or observed.holder != self.identity:
                return
            now_wall = self._wall()
            empty = replace(
                observed,
                holder="",
                lease_duration_s=RELEASED_LEASE_DURATION_S,
                acquire_time=now_wall,
                renew_time=now_wall,
            )
            try:
                written = self._cluster.update_lease(empty, self._timeout_s)
            except ClusterError as err:
                log.warning(
                    "could not release lease; it will expire",
                    extra={"lease": self._describe, "identity": self.identity, "error": str(err)},
                )
                return
            with self._state:
                self._observed, self._observed_at = written, self._clock()
            log.info(
                "released lease",
                extra={"lease": self._describe, "identity": self.identity, "was_leading": was_leading},
            )

    # --- internals (callers hold self._state) --------------------------------------------------

    def _observe_locked(self, current: Lease) -> None:
        """client-go's observedTime: our clock's reading when we first saw this record."""
        if current != self._observed:
            self._observed, self._observed_at = current, self._clock()

    def _free_at_locked(self) -> float:
        """When the last record seen may be taken over, on our clock: at once if it is released or
        ours; else a full lease duration after we saw it change — the longer of our lease and the
        holder's, since during a rolling change of the lease flags the holder's fence follows its own."""
        observed = self._observed
        if observed is None:
            return math.inf
        if not observed.holder or observed.holder == self.identity:
            return -math.inf
        return self._observed_at + max(self._lease_s, observed.lease_duration_s)

    def _fence_open_locked(self) -> bool:
        return (
            self._leading
            and not self._lost
            and not self._resigned
            and self._clock() < self._renewed_at + self._settings.renew_deadline_s
        )

    def _lose_locked(self, why: str) -> None:
        if self._lost:
            return
        self._lost = True
        self._gauge.set(0)
        log.error(
            "lost leadership",
            extra={"lease": self._describe, "identity": self.identity, "error": why},
        )

    def _log_failed_attempt(self, err: ClusterError) -> None:
        # A 409 is a lost race with another candidate, routine; anything else deserves attention.
        level = logging.DEBUG if isinstance(err, ConflictError) else logging.WARNING
        log.log(
            level,
            "lease request failed",
            extra={"lease": self._describe, "identity": self.identity, "error": str(err)},
        )
