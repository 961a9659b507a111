"""LeaderElector: client-go election semantics on MemoryCluster, and the write fence.

Most tests drive `try_acquire_or_renew` step by step on a fake monotonic clock; a few run the real
`run` loop with scaled-down durations to prove the wiring (threads, callbacks, release, loss).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from routectl.cluster import AmbiguousError, ForbiddenError, Lease
from routectl.config import LeaderElection
from routectl.demo.memcluster import MemoryCluster
from routectl.fence import LostLeadership
from routectl.kube.leader import LeaderElector
from routectl.metrics import Metrics

NS, NAME = "kube-system", "routectl"
LEASE_S, RENEW_S, RETRY_S = 15.0, 10.0, 2.0


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settings(
    identity: str, lease: float = LEASE_S, renew: float = RENEW_S, retry: float = RETRY_S
) -> LeaderElection:
    return LeaderElection(
        enabled=True,
        lease_duration_s=lease,
        renew_deadline_s=renew,
        retry_period_s=retry,
        namespace=NS,
        name=NAME,
        identity=identity,
    )


def a_candidate(
    cluster: MemoryCluster,
    identity: str,
    clock: Callable[[], float],
    *,
    wall: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    config: LeaderElection | None = None,
) -> LeaderElector:
    return LeaderElector(cluster, config or settings(identity), metrics or Metrics(), clock=clock, wall=wall)


def lease(cluster: MemoryCluster) -> Lease:
    current = cluster.lease(NS, NAME)
    assert current is not None
    return current


def leaders(*candidates: LeaderElector) -> list[str]:
    return [c.identity for c in candidates if c.is_leader()]


def hangs_then_times_out(clock: FakeClock, seconds: float) -> Callable[[], None]:
    """A lease request that hangs for `seconds` of fake time, then fails as a client timeout."""

    def fault() -> None:
        clock.advance(seconds)
        raise AmbiguousError("update_lease: request timed out")

    return fault


# --- acquiring and holding ---------------------------------------------------------------------


def test_first_candidate_creates_the_lease_and_leads() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a = a_candidate(cluster, "a", clock)

    assert a.try_acquire_or_renew()

    assert lease(cluster).holder == "a"
    assert lease(cluster).transitions == 0
    assert lease(cluster).lease_duration_s == 15
    a.check()


def test_check_refuses_a_candidate_that_never_led() -> None:
    a = a_candidate(MemoryCluster(), "a", FakeClock())
    with pytest.raises(LostLeadership):
        a.check()


def test_standbys_never_take_over_while_the_leader_keeps_renewing() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b, c = (a_candidate(cluster, name, clock) for name in "abc")
    for _ in range(60):
        for candidate in (a, b, c):
            candidate.try_acquire_or_renew()
        assert leaders(a, b, c) == ["a"]
        clock.advance(RETRY_S)
    assert lease(cluster).transitions == 0


def test_takeover_waits_a_full_lease_duration_from_the_standbys_own_observation() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    # The holder's wall clock is decades behind: its renewTime looks long expired to anyone who
    # trusted it. The standby must not.
    a = a_candidate(cluster, "a", clock, wall=lambda: 0.0)
    b = a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    clock.advance(5.0)
    assert not b.try_acquire_or_renew()  # first observation of a's record: t = 5

    clock.advance(LEASE_S - 0.01)
    assert not b.try_acquire_or_renew()
    clock.advance(0.01)
    assert b.try_acquire_or_renew()

    assert lease(cluster).holder == "b"
    assert lease(cluster).transitions == 1
    assert leaders(a, b) == ["b"]


def test_a_renewal_restarts_the_standbys_wait() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b = a_candidate(cluster, "a", clock), a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.advance(RENEW_S - 1)
    assert a.try_acquire_or_renew()  # last renew at t = 9
    clock.advance(LEASE_S - (RENEW_S - 1))
    assert not b.try_acquire_or_renew()  # sees the renewed record at t = 15: waits until 30
    clock.advance(LEASE_S - 0.01)
    assert not b.try_acquire_or_renew()
    clock.advance(0.01)
    assert b.try_acquire_or_renew()


def test_three_candidates_hand_over_one_at_a_time_and_count_transitions() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    candidates = {name: a_candidate(cluster, name, clock) for name in "abc"}
    alive = dict(candidates)
    history: list[str] = []
    for _ in range(100):
        for candidate in alive.values():
            candidate.try_acquire_or_renew()
        current = leaders(*candidates.values())
        assert len(current) <= 1
        if current and (not history or history[-1] != current[0]):
            history.append(current[0])
        if len(history) == len(candidates):
            break
        if current:
            alive.pop(current[0], None)  # the leader dies without releasing; its fence stays open

        clock.advance(RETRY_S)
    assert sorted(history) == ["a", "b", "c"]
    assert lease(cluster).transitions == 2


def test_losing_the_race_for_a_free_lease_is_a_conflict_not_a_second_leader() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b, c = (a_candidate(cluster, name, clock) for name in "abc")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    won_first: list[bool] = []
    # c's whole attempt runs between b's read and b's write.
    cluster.inject("update_lease", lambda: won_first.append(c.try_acquire_or_renew()))

    assert not b.try_acquire_or_renew()

    assert won_first == [True]
    assert leaders(a, b, c) == ["c"]
    assert lease(cluster).transitions == 1


def test_a_lease_taken_by_someone_else_ends_leadership_at_the_next_renew() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a = a_candidate(cluster, "a", clock)
    assert a.try_acquire_or_renew()
    cluster.update_lease(replace(lease(cluster), holder="intruder"), timeout_s=1)

    assert not a.try_acquire_or_renew()

    assert not a.is_leader()
    with pytest.raises(LostLeadership):
        a.check()


def test_every_lease_request_is_bounded_by_half_the_renew_deadline() -> None:
    seen: list[float] = []

    class Recording(MemoryCluster):
        def get_lease(self, namespace: str, name: str, timeout_s: float) -> Lease | None:
            seen.append(timeout_s)
            return super().get_lease(namespace, name, timeout_s)

        def create_lease(self, lease: Lease, timeout_s: float) -> Lease:
            seen.append(timeout_s)
            return super().create_lease(lease, timeout_s)

        def update_lease(self, lease: Lease, timeout_s: float) -> Lease:
            seen.append(timeout_s)
            return super().update_lease(lease, timeout_s)

    a = a_candidate(Recording(), "a", FakeClock())
    a.try_acquire_or_renew()
    a.try_acquire_or_renew()
    a.release()
    assert len(seen) == 5
    assert set(seen) == {RENEW_S / 2}


# --- fencing -----------------------------------------------------------------------------------


def test_fence_closes_at_renew_deadline_after_the_last_successful_renew_and_stays_closed() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a = a_candidate(cluster, "a", clock)
    assert a.try_acquire_or_renew()
    clock.advance(RENEW_S - 0.01)
    a.check()
    clock.advance(0.01)
    with pytest.raises(LostLeadership):
        a.check()

    assert not a.try_acquire_or_renew()  # the lease is still ours on the server: no comeback
    assert not a.is_leader()


def test_fence_counts_from_before_the_request_so_a_slow_success_cannot_extend_it() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a = a_candidate(cluster, "a", clock)
    cluster.inject("create_lease", lambda: clock.advance(4.0))  # slow, but it succeeds
    started = clock.now

    assert a.try_acquire_or_renew()

    clock.now = started + RENEW_S
    with pytest.raises(LostLeadership):
        a.check()


def test_hung_renewals_close_the_fence_before_a_standby_may_take_over() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b = a_candidate(cluster, "a", clock), a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    start = clock.now
    assert not b.try_acquire_or_renew()
    fence_closed_at: float | None = None
    b_leads_at: float | None = None
    while b_leads_at is None:
        clock.advance(0.5)
        if a.is_leader():
            # Each renew hangs for the full request timeout, then fails as a timeout.
            cluster.inject("update_lease", hangs_then_times_out(clock, RENEW_S / 2))
            a.try_acquire_or_renew()
        if fence_closed_at is None:
            try:
                a.check()
            except LostLeadership:
                fence_closed_at = clock.now
        if b.try_acquire_or_renew():
            b_leads_at = clock.now
        assert len(leaders(a, b)) <= 1

    assert fence_closed_at is not None
    assert b_leads_at - start >= LEASE_S
    assert fence_closed_at < b_leads_at


def test_check_answers_while_a_renew_request_is_in_flight() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a = a_candidate(cluster, "a", clock)
    assert a.try_acquire_or_renew()
    in_flight, unblock = threading.Event(), threading.Event()

    def blocked() -> None:
        in_flight.set()
        unblock.wait(5)

    cluster.inject("update_lease", blocked)
    renew = threading.Thread(target=a.try_acquire_or_renew)
    renew.start()
    assert in_flight.wait(5)

    a.check()  # answers at once: checks never queue behind a lease request
    clock.advance(RENEW_S)
    with pytest.raises(LostLeadership):
        a.check()

    assert renew.is_alive()
    unblock.set()
    renew.join(5)


# --- release, health, metrics ------------------------------------------------------------------


def test_release_empties_the_holder_so_a_standby_takes_over_at_its_next_attempt() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b = a_candidate(cluster, "a", clock), a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.advance(1.0)

    a.release()

    released = lease(cluster)
    assert (released.holder, released.lease_duration_s) == ("", 1)
    with pytest.raises(LostLeadership):
        a.check()
    clock.advance(RETRY_S)  # one retry period, far less than the lease duration
    assert b.try_acquire_or_renew()
    assert lease(cluster).transitions == 1


def test_release_leaves_a_lease_someone_else_took_alone() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b = a_candidate(cluster, "a", clock), a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.advance(LEASE_S)
    assert b.try_acquire_or_renew()

    a.release()

    assert lease(cluster).holder == "b"


def test_healthz_fails_once_a_leader_goes_unrenewed_past_lease_duration_plus_tolerance() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    a, b = a_candidate(cluster, "a", clock), a_candidate(cluster, "b", clock)
    assert a.try_acquire_or_renew()
    clock.advance(LEASE_S + 20.0)
    assert a.healthy()
    assert b.healthy()  # a standby is always live
    clock.advance(0.01)
    assert not a.healthy()
    assert b.healthy()


def test_master_status_gauge_follows_leadership() -> None:
    cluster, clock, metrics = MemoryCluster(), FakeClock(), Metrics()
    a = a_candidate(cluster, "a", clock, metrics=metrics)

    def status() -> float | None:
        return metrics.registry.get_sample_value("leader_election_master_status", {"name": NAME})

    assert status() == 0
    a.try_acquire_or_renew()
    assert status() == 1
    clock.advance(RENEW_S)
    with pytest.raises(LostLeadership):
        a.check()
    assert status() == 0


# --- the run loop on real timers (scaled down) -------------------------------------------------

FAST = {"lease": 1.5, "renew": 1.0, "retry": 0.2}


def run_in_thread(
    elector: LeaderElector,
    stop: threading.Event,
    on_started: Callable[[], None],
    on_stopped: Callable[[], None],
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            elector.run(stop, on_started, on_stopped)
        except BaseException as err:  # handed to the test thread
            errors.append(err)

    thread = threading.Thread(target=body, name=f"elector-{elector.identity}")
    thread.start()
    return thread, errors


def test_run_stops_the_workers_before_releasing_the_lease_on_shutdown() -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    stop, started = threading.Event(), threading.Event()
    holder_while_stopping: list[str] = []
    thread, errors = run_in_thread(
        a, stop, started.set, lambda: holder_while_stopping.append(lease(cluster).holder)
    )
    assert started.wait(5)

    stop.set()
    thread.join(5)

    assert not thread.is_alive()
    assert errors == []
    assert holder_while_stopping == ["a"]
    assert lease(cluster).holder == ""


def test_shutdown_closes_the_fence_before_the_workers_drain_and_is_not_a_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    stop, started = threading.Event(), threading.Event()
    refused: list[bool] = []

    def draining() -> None:
        try:
            a.check()
        except LostLeadership:
            refused.append(True)

    thread, errors = run_in_thread(a, stop, started.set, draining)
    assert started.wait(5)
    a.check()  # leading: writes pass

    stop.set()
    thread.join(5)

    assert errors == []
    assert refused == [True]  # a worker's next write during the drain is refused
    assert lease(cluster).holder == ""
    assert not [r for r in caplog.records if r.getMessage() == "lost leadership"]


def test_run_returns_without_callbacks_when_stopped_before_winning() -> None:
    cluster, clock = MemoryCluster(), FakeClock()
    assert a_candidate(cluster, "a", clock).try_acquire_or_renew()
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    calls: list[str] = []
    stop = threading.Event()
    stop.set()

    b.run(stop, lambda: calls.append("started"), lambda: calls.append("stopped"))

    assert calls == []


def test_standby_takes_over_after_shutdown_release() -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    stop_a, stop_b = threading.Event(), threading.Event()
    a_started, b_started = threading.Event(), threading.Event()
    thread_a, errors_a = run_in_thread(a, stop_a, a_started.set, lambda: None)
    assert a_started.wait(5)
    thread_b, errors_b = run_in_thread(b, stop_b, b_started.set, lambda: None)

    stop_a.set()
    thread_a.join(5)
    assert b_started.wait(5)
    stop_b.set()
    thread_b.join(5)

    assert errors_a == errors_b == []
    assert lease(cluster).transitions == 1


def test_hung_renew_on_real_timers_fences_the_leader_before_the_standby_starts() -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    stop = threading.Event()
    a_started, b_started = threading.Event(), threading.Event()
    a_fenced_when_b_started: list[bool] = []
    calls_a: list[str] = []

    def b_starts() -> None:
        try:
            a.check()
            a_fenced_when_b_started.append(False)
        except LostLeadership:
            a_fenced_when_b_started.append(True)
        b_started.set()

    thread_a, errors_a = run_in_thread(a, stop, a_started.set, lambda: calls_a.append("stopped"))
    assert a_started.wait(5)
    thread_b, errors_b = run_in_thread(b, stop, b_starts, lambda: None)
    for _ in range(4):  # every renew from now on hangs past its 0.5 s timeout
        cluster.inject("update_lease", lambda: time.sleep(2.0))

    assert b_started.wait(10)
    thread_a.join(5)
    stop.set()
    thread_b.join(5)

    assert a_fenced_when_b_started == [True]
    assert calls_a == ["stopped"]
    assert [type(err) for err in errors_a] == [LostLeadership]
    assert errors_b == []


# --- the lease watch (real timers, a standby whose retry timer alone would take a minute) --------

SLOW_RETRY = {**FAST, "retry": 60.0}


def test_a_waiting_standby_takes_a_released_lease_at_once_not_at_its_next_retry() -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    b = LeaderElector(cluster, settings("b", **SLOW_RETRY), Metrics())
    stop_a, stop_b = threading.Event(), threading.Event()
    a_started, b_started = threading.Event(), threading.Event()
    thread_a, errors_a = run_in_thread(a, stop_a, a_started.set, lambda: None)
    assert a_started.wait(5)
    thread_b, errors_b = run_in_thread(b, stop_b, b_started.set, lambda: None)
    time.sleep(0.5)  # b has tried once and waits for its 60 s retry timer

    stop_a.set()
    thread_a.join(5)

    assert b_started.wait(10)
    stop_b.set()
    thread_b.join(5)
    assert errors_a == errors_b == []
    assert (lease(cluster).holder, lease(cluster).transitions) == ("", 1)


def test_a_waiting_standby_takes_an_abandoned_lease_a_lease_duration_after_its_last_change() -> None:
    cluster = MemoryCluster()
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    b_lease_s = 3.0  # room for the test thread's renewal below, even on a loaded machine
    b = LeaderElector(cluster, settings("b", lease=b_lease_s, renew=2.0, retry=60.0), Metrics())
    assert a.try_acquire_or_renew()  # then a vanishes without renewing or releasing
    stop, b_started = threading.Event(), threading.Event()
    taken_at: list[float] = []
    thread_b, errors_b = run_in_thread(
        b, stop, lambda: (taken_at.append(time.monotonic()), b_started.set()), lambda: None
    )
    time.sleep(0.6)
    renewed_at = time.monotonic()
    assert a.try_acquire_or_renew()  # a last sign of life: b's wait starts again from here

    assert b_started.wait(10)
    stop.set()
    thread_b.join(5)
    assert errors_b == []
    assert taken_at[0] >= renewed_at + b_lease_s
    with pytest.raises(LostLeadership):
        a.check()


def test_a_failing_lease_watch_falls_back_to_the_retry_timer() -> None:
    def refused() -> None:
        raise AmbiguousError("watch lease: connection refused")

    cluster = MemoryCluster()
    for _ in range(100):
        cluster.inject("watch_lease", refused)
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    stop_a, stop_b = threading.Event(), threading.Event()
    a_started, b_started = threading.Event(), threading.Event()
    thread_a, _ = run_in_thread(a, stop_a, a_started.set, lambda: None)
    assert a_started.wait(5)
    thread_b, errors_b = run_in_thread(b, stop_b, b_started.set, lambda: None)
    time.sleep(0.5)

    stop_a.set()
    thread_a.join(5)

    assert b_started.wait(10)
    stop_b.set()
    thread_b.join(5)
    assert errors_b == []
    assert cluster.calls["watch_lease"] >= 1


def test_a_waiting_standby_stops_when_told_not_at_its_next_retry() -> None:
    cluster = MemoryCluster()
    assert a_candidate(cluster, "a", FakeClock()).try_acquire_or_renew()
    b = LeaderElector(cluster, settings("b", lease=30.0, renew=20.0, retry=60.0), Metrics())
    stop = threading.Event()
    thread, errors = run_in_thread(b, stop, lambda: None, lambda: None)
    time.sleep(0.3)  # b has tried once; a's lease is live for 30 s and b's retry timer is at 60 s

    stop.set()
    thread.join(5)

    assert not thread.is_alive()
    assert errors == []
    assert lease(cluster).holder == "a"


def test_a_standby_whose_takeover_of_a_released_lease_fails_retries_on_its_timer_not_in_a_loop() -> None:
    def refused() -> None:
        raise AmbiguousError("update_lease: connection refused")

    cluster = MemoryCluster()
    a = a_candidate(cluster, "a", FakeClock())
    assert a.try_acquire_or_renew()
    a.release()
    for _ in range(1000):
        cluster.inject("update_lease", refused)
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    stop = threading.Event()
    thread, errors = run_in_thread(b, stop, lambda: None, lambda: None)

    time.sleep(1.0)  # five retry periods of 0.2 s, jittered: at most five attempts
    stop.set()
    thread.join(5)

    attempts = cluster.calls["update_lease"] - 1  # the first was a's release
    assert errors == []
    assert 1 <= attempts <= 6


def test_a_lease_watch_refused_by_rbac_is_one_warning_naming_the_grant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def forbidden() -> None:
        raise ForbiddenError("watch lease: forbidden")

    cluster = MemoryCluster()
    for _ in range(100):
        cluster.inject("watch_lease", forbidden)
    a = LeaderElector(cluster, settings("a", **FAST), Metrics())
    assert a.try_acquire_or_renew()
    b = LeaderElector(cluster, settings("b", **FAST), Metrics())
    stop_b = threading.Event()
    with caplog.at_level(logging.DEBUG, logger="routectl.kube.leader"):
        thread_b, errors_b = run_in_thread(b, stop_b, lambda: None, lambda: None)
        deadline = time.monotonic() + 10
        while cluster.calls.get("watch_lease", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_b.set()
        thread_b.join(5)
    assert errors_b == []
    assert cluster.calls["watch_lease"] >= 3  # refused again and again, warned once
    failed = [r for r in caplog.records if r.getMessage().startswith("lease watch failed")]
    warnings = [r for r in failed if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "grant watch on the lease" in warnings[0].getMessage()
