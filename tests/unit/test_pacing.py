"""The one token bucket (reserve, acquire, try_take; AIMD adaptation), on a fake clock."""

from __future__ import annotations

import itertools
import random
import threading

import pytest

from routectl.pacing import TokenBucket
from tests.unit.builders import FakeClock


def a_bucket(rate: float = 5.0, burst: int = 10, **kwargs: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep, **kwargs), clock


def test_burst_is_granted_at_once_then_calls_are_paced_at_the_rate() -> None:
    bucket, clock = a_bucket(rate=5.0, burst=10)
    start = clock()
    for _ in range(10):
        bucket.acquire()
    assert clock() == start
    for _ in range(5):
        bucket.acquire()
    assert clock() - start == pytest.approx(1.0)


def test_acquire_gives_up_without_taking_when_the_wait_exceeds_the_timeout() -> None:
    bucket, clock = a_bucket(rate=1.0, burst=1)
    bucket.acquire()
    assert bucket.acquire(timeout=0.5) is False
    assert clock() == 1000.0
    assert bucket.acquire(timeout=1.0) is True


def test_grants_never_exceed_burst_plus_rate_times_elapsed() -> None:
    bucket, clock = a_bucket(rate=5.0, burst=10)
    start = clock()
    grants = 0
    while clock() - start < 20:
        bucket.acquire()
        grants += 1
    assert grants <= 10 + 5 * (clock() - start) + 1e-9


def test_throttling_cuts_the_rate_and_drains_the_bucket() -> None:
    bucket, clock = a_bucket(rate=8.0, burst=10, decrease=0.5)
    bucket.throttled()
    assert bucket.rate == pytest.approx(4.0)
    start = clock()
    bucket.acquire()
    assert clock() - start == pytest.approx(0.25, rel=0.05)


def test_rate_never_falls_below_the_floor() -> None:
    bucket, _ = a_bucket(rate=8.0, burst=10, min_rate=1.0)
    for _ in range(10):
        bucket.throttled()
    assert bucket.rate == pytest.approx(1.0)


def test_rate_climbs_back_by_the_same_amount_per_second_whatever_the_rate() -> None:
    bucket, clock = a_bucket(rate=10.0, burst=10, decrease=0.5, recovery_s=10.0)  # climbs 1/s
    bucket.throttled()
    clock.sleep(2.0)
    assert bucket.rate == pytest.approx(7.0)
    low, low_clock = a_bucket(rate=10.0, burst=10, decrease=0.1, recovery_s=10.0)
    low.throttled()
    low_clock.sleep(2.0)
    assert low.rate == pytest.approx(3.0)  # cut deeper, the same climb: relatively faster
    clock.sleep(600.0)
    assert bucket.rate == pytest.approx(10.0)


def test_cuts_narrow_the_gap_between_two_clients_and_climbs_keep_it() -> None:
    """AIMD's fairness: a cut shrinks a client's rate by a factor, a climb adds the same to every
    client, so each common cut shrinks the gap between two clients and nothing widens it."""
    high, high_clock = a_bucket(rate=10.0, burst=10, decrease=0.5, recovery_s=100.0)
    low, low_clock = a_bucket(rate=10.0, burst=10, decrease=0.5, recovery_s=100.0)
    for _ in range(3):
        low.throttled()
    gaps = []
    for _ in range(3):
        for clock in (high_clock, low_clock):
            clock.sleep(20.0)
        gaps.append(high.rate - low.rate)
        high.throttled()
        low.throttled()
        gaps.append(high.rate - low.rate)
    assert gaps[0] == pytest.approx(10.0 - 1.25 - 2.0)  # the high one is capped at the configured rate
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(gaps))
    assert gaps[-1] == pytest.approx(gaps[-2] / 2)
    assert gaps[-1] < gaps[0] / 4


def test_burst_shrinks_with_the_rate_after_throttling() -> None:
    bucket, clock = a_bucket(rate=10.0, burst=10, min_rate=5.0, recovery_s=1e9, decrease=0.5)
    bucket.throttled()
    clock.sleep(100.0)
    start = clock()
    for _ in range(6):
        bucket.acquire()
    assert clock() - start == pytest.approx(0.2, rel=0.05)


def test_invalid_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0.0, 1)


def test_concurrent_acquirers_share_the_budget() -> None:
    bucket, clock = a_bucket(rate=10.0, burst=5)
    lock = threading.Lock()
    taken: list[int] = []

    def take() -> None:
        for _ in range(5):
            bucket.acquire()
            with lock:
                taken.append(1)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(taken) == 20
    # 20 tokens from a bucket of 5 refilled at 10/s: 15 of them cost at least 1.5 s of (fake) waiting.
    assert clock() - 1000.0 >= 1.5 - 1e-9


def test_refusals_of_calls_issued_before_a_cut_do_not_cut_again() -> None:
    bucket, clock = a_bucket(rate=8.0, burst=10, decrease=0.5)
    issued = clock()
    clock.sleep(0.1)
    bucket.throttled(issued)
    bucket.throttled(issued)
    assert bucket.rate == pytest.approx(4.0)
    bucket.throttled(clock())
    assert bucket.rate == pytest.approx(2.0)
    assert bucket.throttle_count == 3


# --- reserve: the work queue's overall rate cap ---------------------------------------------------


def test_reserve_takes_at_once_and_answers_with_the_wait_for_the_debt() -> None:
    bucket, clock = a_bucket(rate=2.0, burst=3)
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, pytest.approx(0.5), pytest.approx(1.0)]
    assert clock() == 1000.0  # reserving never sleeps
    clock.sleep(1.0)
    assert bucket.reserve() == pytest.approx(0.5)


# --- try_take: the per-node Event budget ----------------------------------------------------------


def test_try_take_never_goes_into_debt_and_refills_at_the_rate() -> None:
    bucket, clock = a_bucket(rate=0.01, burst=2)
    assert [bucket.try_take(), bucket.try_take(), bucket.try_take()] == [True, True, False]
    assert bucket.tokens == pytest.approx(0.0)
    clock.sleep(99.0)
    assert bucket.try_take() is False
    clock.sleep(1.0)
    assert bucket.try_take() is True


def test_a_cut_voids_the_reservations_queued_at_the_old_rate() -> None:
    clock = FakeClock()
    refused: list[TokenBucket] = []

    def sleep_through_a_refusal(seconds: float) -> None:
        while refused:  # someone's call is refused just as this caller starts waiting
            refused.pop().throttled()
        clock.sleep(seconds)

    bucket = TokenBucket(10.0, 1, decrease=0.5, clock=clock, sleep=sleep_through_a_refusal)
    bucket.acquire()
    refused.append(bucket)
    start = clock()
    bucket.acquire()
    # Reserved at 10/s (due in 0.1 s), voided by the cut: taken again at 5/s (climbing back slowly),
    # due about 0.2 s after it.
    assert clock() - start == pytest.approx(0.2, rel=1e-3)
    assert bucket.cuts == 1
    assert bucket.tokens == pytest.approx(0.0, abs=1e-3)


def test_jitter_lengthens_waits_by_at_most_jitter_over_rate_without_changing_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, 1, jitter=1.0, rng=random.Random(3), clock=clock, sleep=clock.sleep)
    assert bucket.reserve() == 0.0  # a banked token: nothing to wait for, nothing added
    waits = [bucket.reserve() for _ in range(200)]
    extra = [w - (i + 1) / 5.0 for i, w in enumerate(waits)]
    assert all(0.0 <= e <= 0.2 for e in extra)
    assert len({round(e, 6) for e in extra}) > 100  # drawn, not fixed
    assert bucket.tokens == pytest.approx(-200.0)  # the debt is the tokens taken, jitter aside
