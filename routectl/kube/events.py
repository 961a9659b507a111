"""Event aggregation, as client-go's EventCorrelator does it: which occurrence of an Event is written,
and whether as a new Event or as a count bumped on the existing one.

Invariants: a repeat of (node, uid, type, reason, message) within the window is one Event whose count
is the number of occurrences — also those suppressed by the budget: the next admitted write carries
the total; writes per node are capped by a token bucket (a burst, then one per refill interval); at most
`remembered` keys are kept, the least recently seen dropped first.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from routectl.pacing import TokenBucket

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventPolicy:
    """client-go's EventCorrelator defaults: aggregate within 10 min, per node a burst of 25 writes
    then one per 5 min; 4096 remembered (node, type, reason, message) keys."""

    window_s: float = 600.0
    burst: int = 25
    refill_s: float = 300.0
    remembered: int = 4096


@dataclass(frozen=True, slots=True)
class EventWrite:
    name: str
    """"" = create a new Event; else patch this one."""
    count: int


@dataclass(slots=True)
class _EventRecord:
    name: str
    count: int
    last_seen: float


class EventAggregator:
    """Decides, per occurrence, whether to create, patch or (over the node's budget) only count."""

    def __init__(self, policy: EventPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, ...], _EventRecord] = OrderedDict()
        self._budgets: dict[str, TokenBucket] = {}

    def admit(self, key: tuple[str, ...]) -> EventWrite | None:
        """`key` starts with the node name; None = do not write (over the node's budget)."""
        now = self._clock()
        with self._lock:
            record = self._records.get(key)
            if record is None or now - record.last_seen > self._policy.window_s:
                record = _EventRecord("", 0, now)
                self._records[key] = record
            self._records.move_to_end(key)
            while len(self._records) > self._policy.remembered:
                self._records.popitem(last=False)
            record.count += 1
            record.last_seen = now
            if not self._budget(key[0]).try_take():
                log.debug("event suppressed by the per-node budget", extra={"node": key[0]})
                return None
            return EventWrite(record.name, record.count)

    def created(self, key: tuple[str, ...], name: str) -> None:
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.name = name

    def _budget(self, node: str) -> TokenBucket:
        budget = self._budgets.get(node)
        if budget is None:
            rate = 1.0 / self._policy.refill_s
            budget = self._budgets[node] = TokenBucket(rate, self._policy.burst, clock=self._clock)
        return budget


__all__ = ["EventAggregator", "EventPolicy", "EventWrite"]
