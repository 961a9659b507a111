"""The cloud's side of throttling, shared by the emulators: a token bucket that refuses a call it has no
token for. Unlike routectl's client-side bucket it never makes a caller wait — a cloud answers at once,
with a throttling error. One `CloudBucket` may be handed to several emulator instances: an account's
limit shared by every cluster (VPC) in it.

Invariant: over any interval of length T, at most `burst + rate·T` calls are admitted. Thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `burst` tokens at most, `rate` tokens added per second."""

    burst: int
    rate: float


class CloudBucket:
    def __init__(self, spec: Bucket, now: float) -> None:
        self.spec = spec
        self._tokens = float(spec.burst)
        self._stamp = now
        self._lock = threading.Lock()

    def take(self, now: float) -> bool:
        """Admit one call at `now` (the emulator's clock), or refuse it with nothing taken."""
        with self._lock:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(float(self.spec.burst), self._tokens + elapsed * self.spec.rate)
            self._stamp = max(self._stamp, now)
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


__all__ = ["Bucket", "CloudBucket"]
