"""Independent adaptive buckets sharing one cloud bucket (one account, several clusters), on a fake clock.

Each client paces its calls with its own `TokenBucket`, seeded with the account's limits as if it were
alone, as the executor does: `workers` calls in flight, each taking a token (`reserve`, then waiting it
out, as `acquire` does), reaching the cloud, and after `latency_s` taking the next one; a refused call
tells the bucket (`throttled`) and is retried after a jittered backoff. The only signal a client gets is
the cloud's refusal. Event-driven: no threads, no real time.
"""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass

import pytest

from providers import Limits
from providers.emulators.throttling import Bucket, CloudBucket
from routectl.engine.ratelimit import Pacer
from routectl.pacing import TokenBucket
from tests.unit.builders import FakeClock

ACCOUNT = Bucket(burst=50, rate=5.0)
LIMITS = Limits(write_rate=ACCOUNT.rate, write_burst=ACCOUNT.burst, read_rate=20.0, read_burst=100)


@dataclass(frozen=True, slots=True)
class Shared:
    finish_s: tuple[float, ...]
    calls: int
    throttled: int


def share_one_account(
    clients: int, work: int, *, workers: int = 10, latency_s: float = 0.1, seed: int = 0
) -> Shared:
    """`clients` x `work` writes through one account; when each client finished, and the totals."""
    clock = FakeClock()
    start = clock()
    account = CloudBucket(ACCOUNT, start)
    rng = random.Random(seed)
    buckets: list[TokenBucket] = []
    for i in range(clients):
        pacer = Pacer(LIMITS, clock=clock, sleep=clock.sleep, rng=random.Random(seed * 100 + i))
        buckets.append(pacer.writes)
    left = [work] * clients
    finish = [0.0] * clients
    calls = throttled = 0
    # (when, client, -1): a worker ready to take a token; (when, client, cuts): its token is due, taken
    # when the client's bucket had made `cuts` cuts (`acquire`: a cut since voids it, take another).
    events: list[tuple[float, int, int]] = [(start, i, -1) for i in range(clients) for _ in range(workers)]
    heapq.heapify(events)
    sending = [0] * clients
    while events:
        when, i, kind = heapq.heappop(events)
        clock.now = max(clock.now, when)
        bucket = buckets[i]
        if kind == -1 and left[i] - sending[i] <= 0:
            continue
        if kind != bucket.cuts:
            sending[i] += kind == -1
            heapq.heappush(events, (when + bucket.reserve(), i, bucket.cuts))
            continue
        sending[i] -= 1
        calls += 1
        if account.take(when):
            left[i] -= 1
            finish[i] = when - start
            heapq.heappush(events, (when + latency_s, i, -1))
        else:
            throttled += 1
            bucket.throttled(when)
            heapq.heappush(events, (when + rng.uniform(0, 1.0), i, -1))
        assert when - start < 3_600, "the clients never finished"
    assert not any(left)
    return Shared(tuple(finish), calls, throttled)


SEEDS = range(8)


def test_four_clients_share_one_account_near_its_limit_with_few_refusals() -> None:
    runs = [share_one_account(4, 250, seed=seed) for seed in SEEDS]
    bound = (4 * 250 - ACCOUNT.burst) / ACCOUNT.rate
    for run in runs:
        assert max(run.finish_s) <= 1.15 * bound
        assert run.throttled <= 20  # ≤ 1 % of the calls of the bench (a read per write as well)
        assert max(run.finish_s) <= 1.6 * min(run.finish_s)
    # What the shared-account benchmark aims at (≤ 1.10 x bound, slowest ≤ 1.20 x fastest) is met on
    # average for the time, not for fairness: AIMD narrows the gaps at each refusal, and with refusals
    # kept this rare (about 18 a run) a handful of cuts per client leave a spread of about 1.35.
    assert statistics.fmean(max(r.finish_s) for r in runs) <= 1.09 * bound
    assert statistics.fmean(max(r.finish_s) / min(r.finish_s) for r in runs) <= 1.4


def test_two_clients_share_one_account_with_a_handful_of_refusals() -> None:
    runs = [share_one_account(2, 500, seed=seed) for seed in SEEDS]
    bound = (2 * 500 - ACCOUNT.burst) / ACCOUNT.rate
    assert all(r.throttled <= 8 and max(r.finish_s) <= 1.3 * bound for r in runs)
    assert statistics.fmean(max(r.finish_s) / min(r.finish_s) for r in runs) <= 1.2


def test_a_client_alone_at_the_accounts_limits_is_never_refused_and_meets_the_bound() -> None:
    alone = share_one_account(1, 1000)
    assert alone.throttled == 0
    assert alone.finish_s[0] == pytest.approx((1000 - ACCOUNT.burst) / ACCOUNT.rate, rel=0.01)
