"""The executor: applies a Plan to the cloud, as fast as the cloud's limits allow and no faster.

Invariants: every write passes `fence.check()` immediately before it is sent (after any wait for a
token), so no write leaves a process that has lost leadership — `LostLeadership` stops the whole apply;
every call first takes a token from the provider's adaptive bucket (writes and reads apart); no more
than `limits.writers_per_table` writes are in flight per table; a route is attempted at most
`max_attempts` times per apply — what still answers RETRY is reported and left to the next sync, never
retried in a tight loop; `quota_exceeded`, `conflict` and `fatal` are never retried here.

Deletes run before replaces and creates, so quota freed by a delete is there for a create.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from providers import (
    Network,
    NotFound,
    Outcome,
    ProviderError,
    Route,
    RouteProvider,
    RouteResult,
    Target,
    Throttled,
    Transient,
)
from routectl.engine.planner import Change, Plan
from routectl.engine.ratelimit import AdaptiveTokenBucket
from routectl.fence import Fence
from routectl.metrics import Metrics

log = logging.getLogger("routectl.engine.executor")
_T = TypeVar("_T")


class Op(enum.StrEnum):
    DELETE = "delete"
    REPLACE = "replace"
    CREATE = "create"


@dataclass(frozen=True, slots=True)
class Applied:
    """The final word on one change in this apply."""

    op: Op
    change: Change
    result: RouteResult
    attempts: int


@dataclass(slots=True)
class _Pending:
    """The routes of one chunk still answering RETRY, and what they said last."""

    changes: list[Change]
    last: dict[int, RouteResult] = field(default_factory=dict)
    retry_after: float = 0.0
    attempts: int = 0


class Executor:
    def __init__(
        self,
        provider: RouteProvider,
        fence: Fence,
        metrics: Metrics,
        *,
        concurrency: int = 10,
        max_attempts: int = 4,
        base_delay_s: float = 0.5,
        max_delay_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self._fence = fence
        # Every mutating request of the adapter, each step of a multi-step write included, passes the
        # fence — not only the start of the call that contains it.
        provider.guard_writes(fence.check)
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        limits = provider.limits
        self.writes = AdaptiveTokenBucket.seeded(limits, writes=True, clock=clock, sleep=sleep)
        self.reads = AdaptiveTokenBucket.seeded(limits, writes=False, clock=clock, sleep=sleep)
        self._max_batch = max(1, limits.max_batch)
        self._batch_api = limits.batch_api
        self._in_flight: set[tuple[str, Network]] = set()
        """(table, destination) of every change being written: a concurrent apply (a node's own sync
        racing the full resync) leaves those alone instead of writing the same route twice."""
        self._in_flight_lock = threading.Lock()
        self._writers = limits.writers_per_table
        self._table_slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._max_attempts = max_attempts
        self._backoff = wait_random_exponential(multiplier=base_delay_s, max=max_delay_s)
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="route-write")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- reads -----------------------------------------------------------------------------------

    def list_routes(self, table: str) -> list[Route]:
        """List one table through the read bucket; Throttled/Transient retried with backoff, then raised."""
        return self._paced(lambda: self.provider.list_routes(table))

    def prepare(self, target: Target) -> None:
        """`provider.prepare_target`: a read, or — when the provider says it may change the instance —
        a write, paced by the write bucket and fenced."""
        if self.provider.limits.prepare_writes:
            self._paced(lambda: self._fenced(lambda: self.provider.prepare_target(target)), self.writes)
        else:
            self._paced(lambda: self.provider.prepare_target(target))

    def _fenced(self, call: Callable[[], _T]) -> _T:
        self._fence.check()
        return call()

    def _paced(self, call: Callable[[], _T], bucket: AdaptiveTokenBucket | None = None) -> _T:
        """One call with retries of Throttled/Transient; paced by the read bucket unless told otherwise."""
        bucket = bucket or self.reads

        def once() -> _T:
            bucket.acquire()
            issued = self._clock()
            try:
                return call()
            except Throttled:
                bucket.throttled(issued)
                raise

        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._retry_wait,
            retry=retry_if_exception_type((Throttled, Transient)),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(once)

    def _retry_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = error.retry_after if isinstance(error, Throttled) and error.retry_after else 0.0
        return max(after, self._backoff(state))

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, plan: Plan, prepare: Callable[[Target], None] | None = None) -> list[Applied]:
        """Apply deletes, then replaces, then creates; returns one Applied per change.

        `prepare(target)` runs before each create/replace to that target (the caller remembers which
        targets are ready); when it raises ProviderError the change is not sent and the error is its
        outcome (Throttled/Transient → retry, anything else → fatal).
        """
        applied: list[Applied] = []
        for op, changes in ((Op.DELETE, plan.delete), (Op.REPLACE, plan.replace), (Op.CREATE, plan.create)):
            if not changes:
                continue
            # Changes another apply is writing right now are left to it: they are not this apply's to
            # report, so a node's verdict comes from the view once that write lands.
            claimed = self._claim(changes)
            try:
                if claimed:
                    applied.extend(self._phase(op, claimed, None if op is Op.DELETE else prepare))
            finally:
                with self._in_flight_lock:
                    self._in_flight.difference_update((c.table, c.destination) for c in claimed)
        return applied

    def _claim(self, changes: Sequence[Change]) -> list[Change]:
        claimed: list[Change] = []
        with self._in_flight_lock:
            for change in changes:
                key = (change.table, change.destination)
                if key not in self._in_flight:
                    self._in_flight.add(key)
                    claimed.append(change)
        return claimed

    def _phase(
        self,
        op: Op,
        changes: Sequence[Change],
        prepare: Callable[[Target], None] | None,
    ) -> list[Applied]:
        by_table: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_table[change.table].append(change)
        chunks = [
            (table, group[i : i + self._max_batch])
            for table, group in sorted(by_table.items())
            for i in range(0, len(group), self._max_batch)
        ]
        if len(chunks) == 1:
            return self._chunk(op, *chunks[0], prepare)
        futures = [self._pool.submit(self._chunk, op, table, chunk, prepare) for table, chunk in chunks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [error for error in (f.exception() for f in done) if error is not None]
        if errors:  # LostLeadership above all: stop what has not started, let the rest hit the fence
            for future in pending:
                future.cancel()
            wait(pending)
            raise errors[0]
        return [a for f in futures for a in f.result()]

    def _chunk(
        self,
        op: Op,
        table: str,
        chunk: Sequence[Change],
        prepare: Callable[[Target], None] | None,
    ) -> list[Applied]:
        applied: list[Applied] = []
        ready: list[Change] = []
        for change in chunk:
            try:
                if prepare and change.route.target:
                    prepare(change.route.target)
            except ProviderError as err:
                applied.append(self._final(op, change, _as_result(change.route, err), 0))
            else:
                ready.append(change)
        if not ready:
            return applied
        pending = _Pending(ready)
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=lambda state: max(pending.retry_after, self._backoff(state)),
            retry=retry_if_result(bool),
            sleep=self._sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else [],
        )
        retrying(self._attempt, op, table, pending, applied)
        if pending.changes and pending.retry_after:
            # Out of attempts, but the cloud named a time to come back: the next writes wait for it.
            self.writes.hold_off(pending.retry_after)
        for change in pending.changes:
            applied.append(self._final(op, change, pending.last[id(change)], pending.attempts))
        return applied

    def _attempt(self, op: Op, table: str, pending: _Pending, applied: list[Applied]) -> list[Change]:
        """One write call for what is still pending; settles every non-RETRY result."""
        pending.attempts += 1
        self.writes.acquire(1 if self._batch_api else len(pending.changes))
        issued = self._clock()
        routes = [c.route for c in pending.changes]
        with self._table_slot(table):
            results = self._send(op, table, routes)  # the adapter passes the fence per request
        if any(r.throttled for r in results):
            self.writes.throttled(issued)
        still: list[Change] = []
        pending.retry_after = 0.0
        for change, result in zip(pending.changes, results, strict=True):
            self._metrics.route_operations.labels(self.provider.name, op.value, result.outcome.value).inc()
            if result.outcome is Outcome.RETRY:
                still.append(change)
                pending.last[id(change)] = result
                pending.retry_after = max(pending.retry_after, result.retry_after or 0.0)
                _log(logging.DEBUG, op, change, result, pending.attempts)
            else:
                applied.append(self._final(op, change, result, pending.attempts))
        pending.changes = still
        return still

    def _send(self, op: Op, table: str, routes: list[Route]) -> list[RouteResult]:
        """One provider call; a whole-call ProviderError becomes the outcome of every route in it."""
        send = {
            Op.CREATE: self.provider.create_routes,
            Op.REPLACE: self.provider.replace_routes,
            Op.DELETE: self.provider.delete_routes,
        }[op]
        try:
            return send(table, routes)
        except ProviderError as err:
            return [_as_result(route, err) for route in routes]

    def _final(self, op: Op, change: Change, result: RouteResult, attempts: int) -> Applied:
        level = logging.INFO if result.outcome.succeeded else logging.WARNING
        _log(level, op, change, result, attempts)
        return Applied(op, change, result, attempts)

    @contextmanager
    def _table_slot(self, table: str) -> Iterator[None]:
        if self._writers is None:
            yield
            return
        with self._slots_lock:
            slot = self._table_slots.setdefault(table, threading.BoundedSemaphore(self._writers))
        with slot:
            yield


def _as_result(route: Route, err: ProviderError) -> RouteResult:
    if isinstance(err, Throttled):
        return RouteResult(
            route, Outcome.RETRY, f"Throttled: {err}", retry_after=err.retry_after, throttled=True
        )
    outcome = Outcome.RETRY if isinstance(err, Transient) else Outcome.FATAL
    return RouteResult(route, outcome, str(err), target_gone=isinstance(err, NotFound))


def _log(level: int, op: Op, change: Change, result: RouteResult, attempt: int) -> None:
    route = change.route
    log.log(
        level,
        "%s %s in %s: %s%s",
        op.value,
        change.destination,
        change.table,
        result.outcome.value,
        f" ({result.message})" if result.message else "",
        extra={
            "node": change.node,
            "table": change.table,
            "destination": str(change.destination),
            "target": str(route.target) if route.target else "",
            "op": op.value,
            "outcome": result.outcome.value,
            "attempt": attempt,
            "error": "" if result.outcome.succeeded else result.message,
        },
    )


__all__ = ["Applied", "Executor", "Op"]
