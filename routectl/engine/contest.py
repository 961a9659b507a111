"""Contested routes: an owned route whose target something else keeps changing back.

Two route controllers that both own a destination (a cloud-controller-manager still configuring cloud
routes beside routectl on AWS, where ownership is structural) would replace each other's route forever.
`Contests` counts routectl's successful replaces of owned routes that pointed at another instance; when
one (table, destination) needs `threshold` of them within `window` seconds, it is *held* for `backoff`
seconds: the planner (`WriteRules.contested`) does not rewrite it, its node is blocked with reason
`contested` (Event `RouteContested`, named in the node's condition), and
`routectl_routes_contested` counts it. When the backoff ends its history starts afresh.

Invariant: the decision depends only on the replaces recorded and the injected clock (no sleeps), so
tests step through a backoff by moving the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from providers import Network
from routectl.engine.executor import Applied, Op

Key = tuple[str, Network]
"""(table, destination)."""


@dataclass(frozen=True, slots=True)
class ContestRules:
    threshold: int = 3
    """Replaces of one route, each undoing someone else's target, that make it contested."""
    window_s: float = 600.0
    backoff_s: float = 600.0


class Contests:
    """Thread-safe: the node workers and the resync record and read it concurrently."""

    def __init__(self, rules: ContestRules = ContestRules(), clock: Callable[[], float] = time.monotonic):
        self._rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._replaced: dict[Key, list[float]] = {}
        self._held: dict[Key, float] = {}
        """Key → when its backoff ends."""

    def record(self, applied: Iterable[Applied]) -> set[Key]:
        """Count the succeeded replaces that undid another instance as target; returns the keys that
        became contested by them."""
        now = self._clock()
        started: set[Key] = set()
        with self._lock:
            for item in applied:
                current = item.change.current
                undone = current is not None and current.target is not None
                if item.op is not Op.REPLACE or not undone or not item.result.outcome.succeeded:
                    continue
                key = (item.change.table, item.change.destination)
                times = [t for t in self._replaced.get(key, []) if now - t < self._rules.window_s]
                times.append(now)
                if len(times) >= self._rules.threshold:
                    self._held[key] = now + self._rules.backoff_s
                    self._replaced.pop(key, None)
                    started.add(key)
                else:
                    self._replaced[key] = times
        return started

    def held(self) -> frozenset[Key]:
        """The keys in backoff now; expired backoffs are dropped."""
        now = self._clock()
        with self._lock:
            for key in [k for k, until in self._held.items() if until <= now]:
                del self._held[key]
            return frozenset(self._held)


__all__ = ["ContestRules", "Contests", "Key"]
