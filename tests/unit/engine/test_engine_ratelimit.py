"""The cloud rate limiter: buckets seeded from the provider's limits, paced calls retried with backoff."""

from __future__ import annotations

import pytest

from providers import Fatal, Limits, Throttled, Transient
from routectl.engine.ratelimit import Pacer
from tests.unit.builders import FakeClock

LIMITS = Limits(write_rate=5.0, write_burst=50, read_rate=20.0, read_burst=100)


def test_seeded_from_limits_with_one_token_of_headroom() -> None:
    pacer = Pacer(LIMITS)
    writes, reads = pacer.writes, pacer.reads
    assert (writes.configured_rate, writes.burst, reads.configured_rate, reads.burst) == (5.0, 49, 20.0, 99)


def test_a_throttled_call_is_retried_after_the_clouds_retry_after_and_cuts_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(LIMITS, clock=clock, sleep=clock.sleep, base_delay_s=0.01)
    answers: list[Exception | None] = [Throttled("slow down", retry_after=7.0), None]

    def call() -> str:
        error = answers.pop(0)
        if error is not None:
            raise error
        return "listed"

    start = clock()
    assert pacer.read(call) == "listed"
    assert clock() - start >= 7.0
    assert pacer.reads.throttle_count == 1
    assert pacer.writes.throttle_count == 0


def test_transient_errors_stop_at_the_attempt_cap_and_final_errors_are_not_retried() -> None:
    clock = FakeClock()
    pacer = Pacer(LIMITS, max_attempts=3, clock=clock, sleep=clock.sleep, base_delay_s=0.01)
    calls: list[str] = []

    def failing(error: Exception) -> None:
        calls.append(type(error).__name__)
        raise error

    with pytest.raises(Transient):
        pacer.write(lambda: failing(Transient("5xx")))
    with pytest.raises(Fatal):
        pacer.write(lambda: failing(Fatal("denied")))
    assert calls == ["Transient"] * 3 + ["Fatal"]
