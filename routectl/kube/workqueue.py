"""A rate-limited work queue of node keys with client-go `workqueue` semantics.

Invariants (as client-go's `Type` + `DelayingQueue` + `RateLimitingQueue`):
- a key queued several times before a worker takes it is handed out once (the dirty set);
- a key is never handed to two workers at once: re-added while processing, it is queued again only
  when `done()` is called for it (the processing set);
- `add_rate_limited` delays a key by max(per-key exponential backoff with jitter, overall token bucket),
  so a failing node backs off on its own and a storm of failures cannot exceed the overall rate;
- after `shut_down()` nothing is accepted and `get()` returns None at once, so workers stop promptly
  (a leader that lost its lease must not start another item).
Delayed keys live in a heap and are promoted by `get()` itself: no background thread.

Metrics: client-go's seven workqueue series, labelled by queue name. `unfinished_work_seconds` and
`longest_running_processor_seconds` are computed when scraped, from the items being processed at that
moment, so a worker stuck inside one item shows while it is stuck, not only once it finishes.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from routectl.metrics import Metrics
from routectl.pacing import TokenBucket

_JITTER = 0.1
"""Per-key backoff is drawn from [(1 - _JITTER) x d, d]: stays under the cap, spreads retries."""


@dataclass(slots=True)
class _Instruments:
    """The client-go workqueue metrics, bound to one queue name."""

    metrics: Metrics
    name: str

    def added(self) -> None:
        self.metrics.wq_adds.labels(self.name).inc()
        self.metrics.wq_depth.labels(self.name).inc()

    def taken(self, waited_s: float) -> None:
        self.metrics.wq_depth.labels(self.name).dec()
        self.metrics.wq_queue_duration.labels(self.name).observe(waited_s)

    def finished(self, worked_s: float) -> None:
        self.metrics.wq_work_duration.labels(self.name).observe(worked_s)

    def retried(self) -> None:
        self.metrics.wq_retries.labels(self.name).inc()

    def watch(self, running_s: Callable[[], list[float]]) -> None:
        """The two scrape-time gauges, from how long each item in process has been running."""
        self.metrics.wq_unfinished_work.labels(self.name).set_function(lambda: sum(running_s()))
        self.metrics.wq_longest_running.labels(self.name).set_function(lambda: max(running_s(), default=0.0))


class WorkQueue:
    def __init__(
        self,
        name: str,
        metrics: Metrics | None = None,
        *,
        base_delay_s: float = 0.005,
        max_delay_s: float = 300.0,
        rate_per_s: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._shutting_down = False
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._ready_at: dict[str, float] = {}
        self._seq = itertools.count()
        self._failures: dict[str, int] = {}
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._bucket = TokenBucket(rate_per_s, burst, clock=clock)
        self._random = random.Random()
        self._instruments = _Instruments(metrics, name) if metrics is not None else None
        if self._instruments is not None:
            self._instruments.watch(self._running_s)

    def add(self, key: str) -> None:
        with self._cond:
            self._add_locked(key)

    def add_after(self, key: str, delay_s: float) -> None:
        """Queue `key` once `delay_s` has passed; a key already waiting keeps the sooner time."""
        with self._cond:
            if self._shutting_down:
                return
            if delay_s <= 0:
                self._add_locked(key)
                return
            ready_at = self._clock() + delay_s
            if self._ready_at.get(key, float("inf")) <= ready_at:
                return
            self._ready_at[key] = ready_at
            heapq.heappush(self._delayed, (ready_at, next(self._seq), key))
            self._cond.notify_all()

    def add_rate_limited(self, key: str) -> None:
        """Re-queue a key whose processing failed, after its backoff (and the overall rate cap)."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            backoff = min(self._max_delay_s, self._base_delay_s * 2.0**failures)
            backoff *= self._random.uniform(1.0 - _JITTER, 1.0)
            delay = max(backoff, self._bucket.reserve())
            if self._instruments is not None:
                self._instruments.retried()
        self.add_after(key, delay)

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts the backoff from the base delay again."""
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout_s: float) -> str | None:
        """The next key to process (now owned by the caller until `done`); None on timeout or shutdown."""
        deadline = time.monotonic() + timeout_s  # real time: the caller blocks for real
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                now = self._clock()
                self._promote_ready(now)
                if self._queue:
                    return self._take(now)
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return None
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                self._cond.wait(max(wait, 0.0))

    def done(self, key: str) -> None:
        """The worker is finished with `key`; if it was re-added meanwhile, it is queued again now."""
        with self._cond:
            self._processing.discard(key)
            started = self._started_at.pop(key, None)
            if self._instruments is not None and started is not None:
                self._instruments.finished(self._clock() - started)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shut_down(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def busy(self) -> int:
        """Keys handed out by `get` and not yet `done`."""
        with self._cond:
            return len(self._processing)

    def _running_s(self) -> list[float]:
        """Seconds each item handed out and not yet `done` has been processed so far."""
        with self._cond:
            now = self._clock()
            return [now - started for started in self._started_at.values()]

    def _add_locked(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._added_at.setdefault(key, self._clock())
        if self._instruments is not None:
            self._instruments.added()
        if key in self._processing:
            return
        self._queue.append(key)
        self._cond.notify()

    def _promote_ready(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._delayed)
            if self._ready_at.get(key) == ready_at:
                del self._ready_at[key]
                self._add_locked(key)

    def _take(self, now: float) -> str:
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        self._started_at[key] = now
        added = self._added_at.pop(key, now)
        if self._instruments is not None:
            self._instruments.taken(now - added)
        return key
