"""An in-memory simulated cloud implementing RouteProvider, exact about what the route engine must survive.

It models one account with route tables holding owned and foreign routes, instances whose termination
turns their routes into blackholes, a route quota per table, token-bucket throttling of reads and writes
(a refused call is counted and answered like AWS `RequestLimitExceeded`), per-call latency (a real or
injected sleep), injected faults (5xx, timeouts before or after the cloud acted, a busy table), eventual
consistency (a created route is listed only after a delay), a concurrent-writer limit per table and an
optional batch API. Every call is counted by API name.

Invariants: a call refused for throttling, a 5xx, a timeout-before-acting or a busy table changes nothing;
a timeout-after-write changed the table exactly as a successful call would have. Route operations cost
O(1) (tables are dicts keyed by destination); only `list_routes` walks a table. Thread-safe.

Like a real cloud, the sim lets any caller change any route: it does not protect foreign routes, it
records every write that touched one (`foreign_writes`) so tests can prove the engine never does.

    sim = SimCloud("my-cluster", write=Bucket(50, 5.0), read=Bucket(100, 20.0), latency_s=0.05)
    provider_id = sim.add_instance("i-0001")                   # spec.providerID of a Node on it
    sim.add_route("rtb-main", "0.0.0.0/0", next_hop="igw-1")   # a foreign route
    sim.inject("create_routes", Fault.SERVER_ERROR)            # the next create call answers 5xx
    sim.inject(WRITES, Fault.THROTTLED)                        # the next write of any kind is throttled
    sim.chaos(0.05, seed=1)                                    # 5 % of calls fail, replayably
    sim.outage(120.0)                                          # every call fails for 2 minutes
    sim.calls, sim.throttled, sim.busy, sim.foreign_writes, sim.routes("rtb-main")
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace

from providers.emulators.throttling import Bucket, CloudBucket
from providers.errors import Fatal, InvalidProviderID, NotFound, OutsideNetwork, Throttled, Transient
from providers.model import (
    CallObserver,
    Limits,
    Network,
    Outcome,
    Route,
    RouteResult,
    RouteState,
    Target,
    WriteGuard,
    no_guard,
    nothing_adoptable,
)

MANAGED_NETWORK = "sim-net"
"""The network the sim's tables route in; an instance added with another `network` is outside it."""
PROVIDER_ID_PREFIX = "sim://"
"""providerIDs look like `sim://<zone>/<instance>`."""


class Fault(enum.Enum):
    SERVER_ERROR = "server_error"
    """A 5xx: nothing happened; writes answer RETRY, reads raise Transient."""
    TIMEOUT = "timeout"
    """The call timed out before the cloud acted."""
    TIMEOUT_AFTER_WRITE = "timeout_after_write"
    """The reply was lost after the cloud acted: the write happened, the caller sees RETRY."""
    BUSY = "busy"
    """The table is busy with another operation (Alibaba `OperationConflict`): RETRY."""
    THROTTLED = "throttled"
    """Refused for the rate limit, as by an empty bucket: nothing happened; writes answer a throttled
    RETRY, reads raise Throttled."""


CHAOS_FAULTS = (Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.TIMEOUT_AFTER_WRITE, Fault.BUSY)
"""What `chaos` draws from by default; throttling under load is the buckets' job."""
WRITES = ("create_routes", "replace_routes", "delete_routes")


@dataclass(slots=True)
class SimRoute:
    """A route as the sim stores it; `owner` is the cluster named by its ownership mark ("" = none)."""

    destination: Network
    instance: str
    """Next-hop instance; "" for a non-instance next hop (gateway, peering …)."""
    owner: str = ""
    node: str = ""
    cloud_id: str = ""
    visible_at: float = 0.0
    next_hop: str = ""


@dataclass(slots=True)
class _Instance:
    zone: str
    alive: bool = True
    network: str = ""
    """"" = the managed network."""


@dataclass(slots=True)
class _Chaos:
    rate: float
    faults: tuple[Fault, ...]
    rng: random.Random


@dataclass(slots=True)
class _State:
    tables: dict[str, dict[Network, SimRoute]]
    instances: dict[str, _Instance] = field(default_factory=dict)
    injected: dict[frozenset[str], deque[Fault]] = field(default_factory=dict)
    """Queued faults, by the APIs that draw from the queue."""
    in_flight: Counter[str] = field(default_factory=Counter)


class SimCloud:
    """The simulated cloud. Construct it, add instances and foreign routes, hand it to the engine.

    `write` / `read` are the cloud's real buckets (None = unthrottled): a `Bucket` spec gives this sim
    buckets of its own, a `CloudBucket` is shared with every sim given it (one account, several
    clusters); `limits` is what the provider advertises to the engine and defaults to the real buckets,
    batch size, quota and writer limit — pass a different one to model a client that believes the wrong
    limits.
    """

    name = "sim"

    def __init__(
        self,
        cluster_name: str = "sim",
        *,
        tables: Sequence[str] = ("rtb-main",),
        write: Bucket | CloudBucket | None = None,
        read: Bucket | CloudBucket | None = None,
        latency_s: float = 0.0,
        quota: int | None = None,
        visibility_delay_s: float = 0.0,
        max_batch: int = 1,
        writers_per_table: int | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster_name = cluster_name
        self._table_names = tuple(tables)
        self._latency_s = latency_s
        self._quota = quota
        self._visibility_delay_s = visibility_delay_s
        self._max_batch = max(1, max_batch)
        self._writers_per_table = writers_per_table
        self._clock = clock
        self._sleep = sleep
        self._write_bucket = _account_bucket(write, clock())
        self._read_bucket = _account_bucket(read, clock())
        write = self._write_bucket.spec if self._write_bucket else None
        read = self._read_bucket.spec if self._read_bucket else None
        self._limits = limits or Limits(
            write_rate=write.rate if write else 1000.0,
            write_burst=write.burst if write else 1000,
            read_rate=read.rate if read else 1000.0,
            read_burst=read.burst if read else 1000,
            max_batch=self._max_batch,
            batch_api=self._max_batch > 1,
            routes_per_table=quota,
            writers_per_table=writers_per_table,
        )
        self._lock = threading.Lock()
        self._state = _State(tables={t: {} for t in self._table_names})
        self._ids = itertools.count(1)
        self._chaos: _Chaos | None = None
        self._outage: tuple[float, Iterator[Fault]] | None = None
        """(until, faults in turn): every call fails until the sim's clock reaches `until`."""
        self.calls: Counter[str] = Counter()
        """Every call by API name, throttled or not."""
        self.throttled: Counter[str] = Counter()
        """Calls refused for throttling, by API name."""
        self.busy: Counter[str] = Counter()
        """Writes refused because the table already had `writers_per_table` writers, by API name."""
        self.foreign_writes: list[tuple[str, str, Network]] = []
        """(api, table, destination) of every write that changed a route not owned by this cluster."""
        self.prepared: set[str] = set()
        self._observers: list[CallObserver] = []
        self._write_guard: WriteGuard = no_guard

    # --- test controls -------------------------------------------------------------------------

    def add_instance(self, instance: str, zone: str = "zone-a", *, network: str = "") -> str:
        """Register a running instance (in the managed network unless `network` names another one);
        returns the providerID a node on it would carry."""
        with self._lock:
            self._state.instances[instance] = _Instance(zone, network=network)
        return f"{PROVIDER_ID_PREFIX}{zone}/{instance}"

    def terminate(self, instance: str) -> None:
        """The instance is gone: every route to it is listed as BLACKHOLE from now on (O(1))."""
        with self._lock:
            self._state.instances[instance].alive = False

    def add_route(
        self,
        table: str,
        destination: str | Network,
        instance: str = "",
        *,
        owner: str = "",
        node: str = "",
        next_hop: str = "",
    ) -> None:
        """Put a route in a table directly (foreign routes, leftovers of an earlier run, other clusters)."""
        net = ipaddress.ip_network(destination) if isinstance(destination, str) else destination
        with self._lock:
            if instance and instance not in self._state.instances:
                self._state.instances[instance] = _Instance("zone-a")
            self._state.tables[table][net] = SimRoute(
                net, instance, owner, node, self._new_id(), next_hop=next_hop or instance
            )

    def routes(self, table: str) -> dict[Network, SimRoute]:
        """Everything in a table as stored, visible in lists or not (copies)."""
        with self._lock:
            return {d: replace(r) for d, r in self._state.tables[table].items()}

    def inject(self, api: str | Collection[str], *faults: Fault) -> None:
        """The next calls of `api` (`list_routes`, `create_routes`, …, or several sharing one queue,
        such as `WRITES`) fail with `faults`, in order."""
        apis = frozenset({api} if isinstance(api, str) else api)
        with self._lock:
            self._state.injected.setdefault(apis, deque()).extend(faults)

    def chaos(self, rate: float, faults: Sequence[Fault] = CHAOS_FAULTS, seed: int = 0) -> None:
        """Every call fails with probability `rate` with one of `faults` (seeded: replayable)."""
        with self._lock:
            self._chaos = _Chaos(rate, tuple(faults), random.Random(seed)) if rate > 0 else None

    def outage(self, seconds: float, faults: Sequence[Fault] = (Fault.SERVER_ERROR, Fault.TIMEOUT)) -> float:
        """From now, every call (reads, writes, instance checks) fails with `faults` in turn until
        `seconds` of the sim's clock have passed; returns that moment (the recovery)."""
        with self._lock:
            until = self._clock() + seconds
            self._outage = (until, itertools.cycle(faults))
            return until

    def set_quota(self, quota: int | None) -> None:
        """The route quota of every table from now on (the conformance kit fills a table with it);
        `limits` keeps advertising the quota the sim was built with."""
        with self._lock:
            self._quota = quota

    # --- RouteProvider ---------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self._limits

    def tables(self) -> Sequence[str]:
        """The configured tables (counted as a call, never throttled or faulted)."""
        with self._lock:
            self.calls["tables"] += 1
        return self._table_names

    def list_routes(self, table: str) -> list[Route]:
        fault = self._enter("list_routes", self._read_bucket)
        if fault is not None:
            raise Transient(f"list_routes {table}: {fault.value}")
        with self._lock:
            now = self._clock()
            return [self._listed(r) for r in self._state.tables[table].values() if r.visible_at <= now]

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return self._write("create_routes", table, routes, self._create)

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return self._write("replace_routes", table, routes, self._replace)

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return self._write("delete_routes", table, routes, self._delete)

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """The sim lists no other controller's routes as adoptable."""
        return nothing_adoptable(self.name, routes)

    def target_for(self, provider_id: str) -> Target:
        rest = provider_id.removeprefix(PROVIDER_ID_PREFIX)
        zone, _, instance = rest.partition("/")
        if rest == provider_id or not zone or not instance or "/" in instance:
            raise InvalidProviderID(f"providerID {provider_id!r}: want {PROVIDER_ID_PREFIX}<zone>/<instance>")
        return Target(instance=instance, zone=zone)

    def prepare_target(self, target: Target) -> None:
        """A read (like GCP's canIpForward check): the instance must exist, be running and be in the
        managed network (`OutsideNetwork` otherwise)."""
        fault = self._enter("prepare_target", self._read_bucket)
        if fault is not None:
            raise Transient(f"prepare_target {target}: {fault.value}")
        with self._lock:
            instance = self._state.instances.get(target.instance)
            if instance is None:
                raise NotFound(f"prepare_target {target}: no such instance")
            if not instance.alive:
                raise Fatal(f"prepare_target {target}: instance is terminated")
            if instance.network:
                raise OutsideNetwork(target.instance, instance.network, MANAGED_NETWORK)
            self.prepared.add(target.instance)

    def guard_writes(self, guard: WriteGuard) -> None:
        self._write_guard = guard

    def observe(self, observer: CallObserver) -> None:
        """Report every call as (API name, result code, seconds): "200", "RequestLimitExceeded", "500",
        "timeout", "OperationConflict"."""
        with self._lock:
            self._observers.append(observer)

    def close(self) -> None:
        return None

    # --- internals -------------------------------------------------------------------------------

    def _enter(self, api: str, bucket: CloudBucket | None) -> Fault | None:
        """Count, throttle (raise Throttled), pay the latency; return the fault to act out (or None)."""
        with self._lock:
            self.calls[api] += 1
            throttled = bucket is not None and not bucket.take(self._clock())
            fault = None if throttled else self._next_fault(api)
            if fault is Fault.THROTTLED:
                throttled, fault = True, None
            if throttled:
                self.throttled[api] += 1
        if throttled:
            self._report(api, "RequestLimitExceeded", 0.0)
            raise Throttled(f"{api}: RequestLimitExceeded")
        if self._latency_s:
            self._sleep(self._latency_s)
        self._report(api, _CODES[fault], self._latency_s)
        return fault

    def _report(self, api: str, code: str, seconds: float) -> None:
        for observer in self._observers:
            observer(api, code, seconds)

    def _write(
        self,
        api: str,
        table: str,
        routes: Sequence[Route],
        act: Callable[[str, Route, float], RouteResult],
    ) -> list[RouteResult]:
        """One API call per `max_batch` routes, as an adapter without a batch API loops per route."""
        results: list[RouteResult] = []
        for start in range(0, len(routes), self._max_batch):
            results.extend(self._write_call(api, table, routes[start : start + self._max_batch], act))
        return results

    def _write_call(
        self,
        api: str,
        table: str,
        chunk: Sequence[Route],
        act: Callable[[str, Route, float], RouteResult],
    ) -> list[RouteResult]:
        self._write_guard()
        try:
            self._claim_writer(api, table)
        except _Busy as err:
            self._report(api, "OperationConflict", 0.0)
            return [_retry(r, str(err)) for r in chunk]
        try:
            fault = self._enter(api, self._write_bucket)
            if fault in (Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.BUSY):
                return [_retry(r, f"{api}: {fault.value}") for r in chunk]
            with self._lock:
                now = self._clock()
                done = [act(table, r, now) for r in chunk]
            if fault is Fault.TIMEOUT_AFTER_WRITE:
                return [_retry(r, f"{api}: {fault.value}") for r in chunk]
            return done
        except Throttled as err:
            return [_retry(r, str(err), throttled=True) for r in chunk]
        finally:
            with self._lock:
                self._state.in_flight[table] -= 1

    def _claim_writer(self, api: str, table: str) -> None:
        """Hold a writer slot on `table` for the whole call; beyond the limit the table is busy."""
        with self._lock:
            limit = self._writers_per_table
            if limit is not None and self._state.in_flight[table] >= limit:
                self.calls[api] += 1
                self.busy[api] += 1
                raise _Busy(f"{table}: OperationConflict (another writer is active)")
            self._state.in_flight[table] += 1

    def _create(self, table: str, route: Route, now: float) -> RouteResult:
        entries = self._state.tables[table]
        existing = entries.get(route.destination)
        instance = route.target.instance if route.target else ""
        gone = self._gone(instance)
        if gone:
            return RouteResult(route, Outcome.FATAL, gone, target_gone=True)
        if existing is not None:
            if existing.instance == instance and existing.owner == self.cluster_name:
                return RouteResult(self._listed(existing, state=RouteState.ACTIVE), Outcome.ALREADY_DONE)
            return RouteResult(route, Outcome.CONFLICT, f"RouteAlreadyExists: {existing.next_hop}")
        if self._quota is not None and len(entries) >= self._quota:
            return RouteResult(route, Outcome.QUOTA_EXCEEDED, f"RouteLimitExceeded: {self._quota}")
        stored = SimRoute(
            route.destination,
            instance,
            self.cluster_name,
            route.node,
            self._new_id(),
            visible_at=now + self._visibility_delay_s,
            next_hop=instance,
        )
        entries[route.destination] = stored
        return RouteResult(self._listed(stored, state=RouteState.ACTIVE), Outcome.OK)

    def _replace(self, table: str, route: Route, now: float) -> RouteResult:
        existing = self._state.tables[table].get(route.destination)
        if existing is None:
            return RouteResult(route, Outcome.FATAL, "InvalidRoute.NotFound: nothing to replace")
        instance = route.target.instance if route.target else ""
        gone = self._gone(instance)
        if gone:
            return RouteResult(route, Outcome.FATAL, gone, target_gone=True)
        if existing.owner != self.cluster_name:
            self.foreign_writes.append(("replace_routes", table, route.destination))
        existing.instance = existing.next_hop = instance
        existing.owner, existing.node = self.cluster_name, route.node
        return RouteResult(self._listed(existing), Outcome.OK)

    def _delete(self, table: str, route: Route, now: float) -> RouteResult:
        existing = self._state.tables[table].pop(route.destination, None)
        if existing is None:
            return RouteResult(route, Outcome.ALREADY_DONE, "InvalidRoute.NotFound")
        if existing.owner != self.cluster_name:
            self.foreign_writes.append(("delete_routes", table, route.destination))
        return RouteResult(route, Outcome.OK)

    def _gone(self, instance: str) -> str:
        state = self._state.instances.get(instance)
        if state is None or not state.alive:
            return f"InvalidInstanceID.NotFound: {instance or '(none)'}"
        return ""

    def _listed(self, stored: SimRoute, state: RouteState | None = None) -> Route:
        instance = self._state.instances.get(stored.instance)
        target, next_hop, listed_state = None, stored.next_hop, RouteState.ACTIVE
        if instance is not None and instance.alive:
            target = Target(stored.instance, instance.zone)
        elif instance is not None:
            next_hop, listed_state = f"blackhole ({stored.instance})", RouteState.BLACKHOLE
        return Route(
            destination=stored.destination,
            target=target,
            owned=stored.owner == self.cluster_name,
            state=state or listed_state,
            node=stored.node,
            cloud_id=stored.cloud_id,
            next_hop=next_hop,
        )

    def _next_fault(self, api: str) -> Fault | None:
        if self._outage is not None:
            until, faults = self._outage
            if self._clock() < until:
                return next(faults)
            self._outage = None
        queue = next((q for apis, q in self._state.injected.items() if api in apis and q), None)
        if queue is not None:
            return queue.popleft()
        chaos = self._chaos
        if chaos is not None and chaos.rng.random() < chaos.rate:
            return chaos.rng.choice(chaos.faults)
        return None

    def _new_id(self) -> str:
        return f"r-{next(self._ids):08x}"


_CODES = {
    None: "200",
    Fault.SERVER_ERROR: "500",
    Fault.TIMEOUT: "timeout",
    Fault.TIMEOUT_AFTER_WRITE: "timeout",
    Fault.BUSY: "OperationConflict",
}


def _account_bucket(bucket: Bucket | CloudBucket | None, now: float) -> CloudBucket | None:
    """A shared bucket as given; a spec becomes a bucket of this sim's own."""
    return CloudBucket(bucket, now) if isinstance(bucket, Bucket) else bucket


class _Busy(Exception):
    pass


def _retry(route: Route, message: str, *, throttled: bool = False) -> RouteResult:
    return RouteResult(route, Outcome.RETRY, message, throttled=throttled)


__all__ = [
    "CHAOS_FAULTS",
    "PROVIDER_ID_PREFIX",
    "WRITES",
    "Bucket",
    "CloudBucket",
    "Fault",
    "SimCloud",
    "SimRoute",
]
