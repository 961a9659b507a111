"""The cloud rate limiter: every call the engine makes to a provider is paced and retried here.

Invariants: no call reaches the provider without a token from its bucket — reads from the read bucket,
writes (and a `prepare_target` that may write) from the write bucket, both `routectl.pacing.TokenBucket`
adapting to the cloud's throttling; a paced call is attempted at most `max_attempts` times, retrying only
Throttled and Transient, after jittered exponential backoff or the cloud's retry-after, whichever is
longer. Seeded with the cloud's real limits, the buckets never let the cloud's own bucket run dry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from providers import Limits, Throttled, Transient
from routectl.pacing import TokenBucket

_T = TypeVar("_T")


class Pacer:
    """The provider's read and write buckets and the retry policy the executor shares with the reads."""

    def __init__(
        self,
        limits: Limits,
        *,
        max_attempts: int = 4,
        base_delay_s: float = 0.5,
        max_delay_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        # One token of headroom below the cloud's burst: our call reaches the cloud a latency after we
        # debit it, so with equal rates the cloud's balance stays at least one above ours. Jittered
        # waits: controllers sharing an account's bucket must not pace in phase with its refill.
        rng = rng or random.Random()
        self.writes = TokenBucket(
            limits.write_rate, max(1, limits.write_burst - 1), jitter=1.0, rng=rng, clock=clock, sleep=sleep
        )
        self.reads = TokenBucket(
            limits.read_rate, max(1, limits.read_burst - 1), jitter=1.0, rng=rng, clock=clock, sleep=sleep
        )
        self.max_attempts = max_attempts
        self.clock = clock
        self.sleep = sleep
        self.backoff = wait_random_exponential(multiplier=base_delay_s, max=max_delay_s)
        """Jittered exponential backoff by attempt (a tenacity wait)."""

    def read(self, call: Callable[[], _T]) -> _T:
        """`call` paced by the read bucket, Throttled/Transient retried, then raised."""
        return self._paced(call, self.reads)

    def write(self, call: Callable[[], _T]) -> _T:
        """`call` paced by the write bucket, Throttled/Transient retried, then raised."""
        return self._paced(call, self.writes)

    def _paced(self, call: Callable[[], _T], bucket: TokenBucket) -> _T:
        def once() -> _T:
            bucket.acquire()
            issued = self.clock()
            try:
                return call()
            except Throttled:
                bucket.throttled(issued)
                raise

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._retry_wait,
            retry=retry_if_exception_type((Throttled, Transient)),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(once)

    def _retry_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = error.retry_after if isinstance(error, Throttled) and error.retry_after else 0.0
        return max(after, self.backoff(state))


__all__ = ["Pacer"]
