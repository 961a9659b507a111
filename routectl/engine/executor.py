"""The executor: applies a Plan to the cloud, as fast as the cloud's limits allow and no faster.

Invariants: every write passes `fence.check()` immediately before it is sent (after any wait for a
token) — through the provider's write guard, which the wiring sets to the fence — so no write leaves a
process that has lost leadership: `LostLeadership` stops the whole apply; every call first takes a token
from the pacer's adaptive buckets (writes and reads apart); no more than `limits.writers_per_table`
writes are in flight per table; a route to an instance is sent only once that instance is prepared, and
an instance is prepared by one call however many routes to it are written at once; a route is attempted
at most `max_attempts` times per apply — what still answers RETRY is reported and left to the next sync,
never retried in a tight loop; `quota_exceeded`, `conflict` and `fatal` are never retried here.

Deletes run before replaces, adoptions and creates, so quota freed by a delete is there for a create.
An adoption is one provider call per route batch (`adopt_routes`): the adapter keeps the destination
routed throughout (GCP: owned route first, legacy one after; Alibaba: marks written in place).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_attempt

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
from routectl.engine.ratelimit import Pacer
from routectl.fence import Fence
from routectl.metrics import Metrics

log = logging.getLogger("routectl.engine.executor")
_T = TypeVar("_T")


class Op(enum.StrEnum):
    DELETE = "delete"
    REPLACE = "replace"
    ADOPT = "adopt"
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


@dataclass(slots=True)
class _Flight:
    """One `prepare_target` in progress; the callers that arrive meanwhile wait for its outcome."""

    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class _Targets:
    """Single flight per instance: with several tables and IP families, many routes to one instance are
    written at once, and each would otherwise prepare it (AWS: a ModifyInstanceAttribute per route)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: set[Target] = set()
        self._flights: dict[Target, _Flight] = {}

    def once(self, target: Target, prepare: Callable[[], None]) -> None:
        with self._lock:
            if target in self._ready:
                return
            flight = self._flights.get(target)
            leading = flight is None
            if flight is None:
                flight = self._flights[target] = _Flight()
        if not leading:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return
        try:
            prepare()
        except BaseException as err:
            flight.error = err
            raise
        else:
            with self._lock:
                self._ready.add(target)
        finally:
            with self._lock:
                del self._flights[target]
            flight.done.set()

    def forget(self) -> None:
        with self._lock:
            self._ready.clear()


class Executor:
    def __init__(
        self,
        provider: RouteProvider,
        fence: Fence,
        metrics: Metrics,
        pacer: Pacer,
        *,
        concurrency: int = 10,
    ) -> None:
        """`pacer` is shared with whoever reads the same provider (the route view); the provider's
        write guard is the caller's to set (`provider.guard_writes(fence.check)`), once."""
        self.provider = provider
        self.pacer = pacer
        self._fence = fence
        self._metrics = metrics
        limits = provider.limits
        self._max_batch = max(1, limits.max_batch)
        self._batch_api = limits.batch_api
        self._in_flight: set[tuple[str, Network]] = set()
        """(table, destination) of every change being written: a concurrent apply (a node's own sync
        racing the full resync) leaves those alone instead of writing the same route twice."""
        self._in_flight_lock = threading.Lock()
        self._writers = limits.writers_per_table
        self._table_slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._targets = _Targets()
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="route-write")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- targets ---------------------------------------------------------------------------------

    def prepare(self, target: Target) -> None:
        """`provider.prepare_target`, once per instance: concurrent callers share one call and its
        outcome; a success is remembered until `forget_prepared`, a failure is not (the next caller
        tries again). Raises ProviderError (or LostLeadership) when it fails."""
        self._targets.once(target, lambda: self._prepare_now(target))

    def forget_prepared(self) -> None:
        """Check every instance again on its next route write (an instance may have been changed)."""
        self._targets.forget()

    def _prepare_now(self, target: Target) -> None:
        """A read, or — when the provider says it may change the instance — a write, paced by the write
        bucket and fenced."""
        if self.provider.limits.prepare_writes:
            self.pacer.write(lambda: self._fenced(lambda: self.provider.prepare_target(target)))
        else:
            self.pacer.read(lambda: self.provider.prepare_target(target))

    def _fenced(self, call: Callable[[], _T]) -> _T:
        self._fence.check()
        return call()

    # --- writes ----------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> list[Applied]:
        """Apply deletes, then replaces, adoptions, creates; returns one Applied per change.

        Each create/replace is sent only once its target is prepared (`prepare`); when that raises
        ProviderError the change is not sent and the error is its outcome (Throttled/Transient →
        retry, anything else → fatal).
        """
        applied: list[Applied] = []
        phases = (
            (Op.DELETE, plan.delete),
            (Op.REPLACE, plan.replace),
            (Op.ADOPT, plan.adopt),
            (Op.CREATE, plan.create),
        )
        for op, changes in phases:
            if not changes:
                continue
            # Changes another apply is writing right now are left to it: they are not this apply's to
            # report, so a node's verdict comes from the view once that write lands.
            claimed = self._claim(changes)
            try:
                if claimed:
                    applied.extend(self._phase(op, claimed))
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

    def _phase(self, op: Op, changes: Sequence[Change]) -> list[Applied]:
        by_table: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_table[change.table].append(change)
        chunks = [
            (table, group[i : i + self._max_batch])
            for table, group in sorted(by_table.items())
            for i in range(0, len(group), self._max_batch)
        ]
        if len(chunks) == 1:
            return self._chunk(op, *chunks[0])
        futures = [self._pool.submit(self._chunk, op, table, chunk) for table, chunk in chunks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [error for error in (f.exception() for f in done) if error is not None]
        if errors:  # LostLeadership above all: stop what has not started, let the rest hit the fence
            for future in pending:
                future.cancel()
            wait(pending)
            raise errors[0]
        return [a for f in futures for a in f.result()]

    def _chunk(self, op: Op, table: str, chunk: Sequence[Change]) -> list[Applied]:
        applied: list[Applied] = []
        ready: list[Change] = []
        for change in chunk:
            try:
                if op is not Op.DELETE and change.route.target:
                    self.prepare(change.route.target)
            except ProviderError as err:
                applied.append(self._final(op, change, _as_result(change.route, err), 0))
            else:
                ready.append(change)
        if not ready:
            return applied
        pending = _Pending(ready)
        retrying = Retrying(
            stop=stop_after_attempt(self.pacer.max_attempts),
            wait=lambda state: max(pending.retry_after, self.pacer.backoff(state)),
            retry=retry_if_result(bool),
            sleep=self.pacer.sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else [],
        )
        retrying(self._attempt, op, table, pending, applied)
        if pending.changes and pending.retry_after:
            # Out of attempts, but the cloud named a time to come back: the next writes wait for it.
            self.pacer.writes.hold_off(pending.retry_after)
        for change in pending.changes:
            applied.append(self._final(op, change, pending.last[id(change)], pending.attempts))
        return applied

    def _attempt(self, op: Op, table: str, pending: _Pending, applied: list[Applied]) -> list[Change]:
        """One write call for what is still pending; settles every non-RETRY result."""
        pending.attempts += 1
        self.pacer.writes.acquire(1 if self._batch_api else len(pending.changes))
        issued = self.pacer.clock()
        routes = [c.route for c in pending.changes]
        with self._table_slot(table):
            results = self._send(op, table, routes)  # the adapter passes the fence per request
        if any(r.throttled for r in results):
            self.pacer.writes.throttled(issued)
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
            Op.ADOPT: self.provider.adopt_routes,
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
