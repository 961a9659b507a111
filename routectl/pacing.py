"""The one token bucket of routectl: the work queue's overall retry rate, the cloud's read and write
budgets and the per-node Event budget are all this type, each taking tokens its own way.

Invariant: over any interval of length T, at most `burst + rate·T` tokens are handed out, where `rate`
is the rate in force — the configured one unless the cloud said otherwise.

Three ways to take tokens from one balance:
- `reserve(n)` takes them at once (the balance may go negative) and says how long until that debt is
  repaid: the caller decides how to wait (the work queue delays a key by it);
- `acquire(n)` reserves and sleeps out the debt, so callers are served in arrival order and no lock is
  held while sleeping;
- `try_take(n)` takes them only when they are there now, never going into debt (Events over budget are
  dropped, not delayed).

Adaptation, used by the cloud buckets only — several controllers sharing one account's bucket, each
seeded with the account's limits as if alone, must settle on shares of it with few refusals:
- `throttled` (the cloud refused a call: its bucket is empty) cuts the rate to `decrease` times itself
  (down to a floor) and empties this bucket; the reservations already queued at the old rate are void
  and taken again at the new one (`acquire`), so they do not all go out to be refused as well.
  Refusals of calls issued before that cut are one signal with it, not a cut each.
- Then the rate climbs back toward the configured one by the same amount every second whatever the
  rate (`configured / recovery_s` per second: from zero in `recovery_s`). Additive increase,
  multiplicative decrease: the same climb for all and cuts proportional to the rate are what move
  clients sharing one bucket toward equal shares (a cut narrows the gap, a climb keeps it), where a
  climb proportional to the shortfall would keep the never-refused client at the whole rate.
- Waits are jittered (`jitter`): a client paced exactly in phase with the cloud's refill would take
  every token as it appears and never be refused, while the others always would.
The burst scales with the rate, so an idle client whose rate was cut does not come back with a burst the
cloud never had. `hold_off` keeps every token back for as long as the cloud asked. A bucket nobody calls
`throttled` on is a plain token bucket, at its configured rate.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        min_rate: float | None = None,
        decrease: float = 0.3,
        recovery_s: float = 180.0,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`rate` tokens per second, at most `burst` banked; after a cut the rate climbs back by
        `rate / recovery_s` every second; `jitter`: every wait `reserve`/`acquire` hands out
        (none while tokens are banked) is lengthened by up to `jitter / rate` seconds, drawn from `rng`."""
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket: rate {rate} and burst {burst} must be positive")
        self.configured_rate = rate
        self.burst = burst
        self.min_rate = min_rate if min_rate is not None else max(rate / 20, 0.05)
        self._decrease = decrease
        self._recovery_s = recovery_s
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._last_cut = float("-inf")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = rate
        self._tokens = float(burst)
        self._stamp = clock()
        self.throttle_count = 0
        self.cuts = 0
        """Rate cuts so far: a reservation taken before the latest one is void (`acquire`)."""

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

    def reserve(self, n: int = 1) -> float:
        """Take `n` tokens now, into debt if need be; the seconds until the debt is repaid."""
        with self._lock:
            wait = self._take(n, None)
        assert wait is not None
        return wait

    def acquire(self, n: int = 1, timeout: float | None = None) -> bool:
        """Take `n` tokens, sleeping until they are ours; False (nothing taken) if that would exceed
        `timeout` seconds. A cut while sleeping voids the reservation: it is taken again, at the new
        rate, so calls queued behind the cloud's refusal do not all go out to be refused too."""
        while True:
            with self._lock:
                wait = self._take(n, timeout)
                cuts = self.cuts
            if wait is None:
                return False
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                if self.cuts == cuts:
                    return True
            if timeout is not None:
                timeout = max(0.0, timeout - wait)

    def try_take(self, n: int = 1) -> bool:
        """Take `n` tokens only if they are there now; False (nothing taken) otherwise."""
        with self._lock:
            return self._take(n, 0.0) is not None

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
            self._tokens = 0.0  # the reservations queued at the old rate are void: taken again
            self.cuts += 1
            self._last_cut = now
            self._rate = max(self.min_rate, self._rate * self._decrease)

    def hold_off(self, seconds: float) -> None:
        """The cloud said when to come back: no token is handed out for `seconds` from now."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, -seconds * self._rate)

    def _take(self, n: int, timeout: float | None) -> float | None:
        """Under the lock: debit `n` and return the wait until they are repaid, or take nothing and
        return None when that wait would exceed `timeout`."""
        self._refill(self._clock())
        self._tokens -= n
        wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if timeout is not None and wait > timeout:
            self._tokens += n
            return None
        if self._jitter and timeout is None and wait > 0:
            wait += self._rng.uniform(0.0, self._jitter / self._rate)
        return wait

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        if elapsed == 0:
            return
        # Tokens accrue at the rate in force over the interval; then the rate climbs back toward the
        # configured one by the same amount per second whatever the rate (additive increase).
        cap = max(1.0, self.burst * self._rate / self.configured_rate)
        self._tokens = min(cap, self._tokens + elapsed * self._rate)
        climb = elapsed * self.configured_rate / self._recovery_s
        self._rate = min(self.configured_rate, self._rate + climb)


__all__ = ["TokenBucket"]
