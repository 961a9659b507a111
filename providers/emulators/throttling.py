"""The cloud's side of throttling, shared by the emulators: a token bucket that refuses a call it has no
token for. Unlike routectl's client-side bucket it never makes a caller wait — a cloud answers at once,
with a throttling error.

Invariant: over any interval of length T, at most `burst + rate·T` calls are admitted.
"""

from __future__ import annotations

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

    def take(self, now: float) -> bool:
        """Admit one call at `now` (the emulator's clock), or refuse it with nothing taken."""
        self._tokens = min(float(self.spec.burst), self._tokens + (now - self._stamp) * self.spec.rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


__all__ = ["Bucket", "CloudBucket"]
