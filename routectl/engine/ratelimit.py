"""Client-side adaptive token bucket: pace cloud calls so the cloud's own bucket never runs dry.

Invariant: over any interval of length T, `acquire` grants at most `burst + rate·T` tokens, where `rate`
is the current (adapted) rate — so a client seeded with the cloud's real limits is never throttled.
On a throttling response the rate is halved (down to a floor) and the bucket is emptied — the cloud has
just told us its bucket is empty; refusals of calls issued before that cut do not cut again; the rate then
recovers additively, regaining the cut in `recovery_s` and climbing on at that pace up to the configured
rate, so a client seeded with wrong (too high) limits settles around the cloud's real rate with few
refusals (AIMD). The burst scales with the rate, so an
idle client whose rate was cut does not come back with a burst the cloud never had.

Waiting is by reservation: a caller takes its tokens at once (the balance may go negative) and sleeps
until the debt is repaid, so callers are served in arrival order and no lock is held while sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from providers import Limits


class AdaptiveTokenBucket:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        min_rate: float | None = None,
        decrease: float = 0.5,
        recovery_s: float = 25.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`recovery_s`: time to regain a cut (back to the rate the cloud refused) without throttling."""
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket: rate {rate} and burst {burst} must be positive")
        self.configured_rate = rate
        self.burst = burst
        self.min_rate = min_rate if min_rate is not None else max(rate / 20, 0.05)
        self._decrease = decrease
        self._recovery_s = recovery_s
        self._last_cut = float("-inf")
        self._increase_per_s = 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = rate
        self._tokens = float(burst)
        self._stamp = clock()
        self.throttle_count = 0

    @classmethod
    def seeded(
        cls,
        limits: Limits,
        *,
        writes: bool,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AdaptiveTokenBucket:
        """The write or read bucket for a provider, one token of headroom below the cloud's burst: our
        call reaches the cloud a latency after we debit it, so with equal rates the cloud's balance
        stays at least one above ours and never runs dry."""
        rate, burst = (
            (limits.write_rate, limits.write_burst) if writes else (limits.read_rate, limits.read_burst)
        )
        return cls(rate, max(1, burst - 1), clock=clock, sleep=sleep)

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while callers wait for their share)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    @property
    def rate(self) -> float:
        with self._lock:
            self._refill(self._clock())
            return self._rate

    def acquire(self, n: int = 1, timeout: float | None = None) -> bool:
        """Take `n` tokens, sleeping until they are ours; False (nothing taken) if that would exceed
        `timeout` seconds."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens -= n
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
            if timeout is not None and wait > timeout:
                self._tokens += n
                return False
        if wait > 0:
            self._sleep(wait)
        return True

    def throttled(self, issued_at: float | None = None) -> None:
        """The cloud refused a call for throttling: drain the bucket and back off multiplicatively —
        unless the call was issued (`issued_at`, this bucket's clock) before the last cut: calls already
        in flight when the cloud's bucket ran dry are one signal, not one per call."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens = min(self._tokens, 0.0)
            self.throttle_count += 1
            if issued_at is not None and issued_at < self._last_cut:
                return
            self._last_cut = now
            refused_at = self._rate
            self._rate = max(self.min_rate, refused_at * self._decrease)
            self._increase_per_s = refused_at * (1 - self._decrease) / self._recovery_s

    def hold_off(self, seconds: float) -> None:
        """The cloud said when to come back: no token is handed out for `seconds` from now."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, -seconds * self._rate)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        if elapsed == 0:
            return
        # Tokens accrue at the rate in force over the interval; then the rate recovers additively.
        cap = max(1.0, self.burst * self._rate / self.configured_rate)
        self._tokens = min(cap, self._tokens + elapsed * self._rate)
        self._rate = min(self.configured_rate, self._rate + elapsed * self._increase_per_s)


__all__ = ["AdaptiveTokenBucket"]
