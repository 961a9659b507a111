"""The baseline: the Kubernetes route controller's policy, reproduced on the same RouteProvider port.

Rules, each from the reference (kubernetes/cloud-provider `controllers/route/route_controller.go`):

1. Every `period` (kube-controller-manager / cloud-controller-manager `--route-reconciliation-period`,
   default 10 s) run one pass, `wait.NonSlidingUntil`: the period counts from the start of a pass, and a
   pass that overruns it is followed at once by the next. No watch: a new node waits for the next pass.
2. A pass lists the cluster's routes once (`ListRoutes`); a failed list ends the pass (retried next
   period). Nodes come from the informer cache (`nodeLister`); nodes without a podCIDR are skipped.
   Every podCIDR of a node gets a route (dual-stack: one per family). The reference manages one table;
   given several, a pass lists each once and creates what each lacks, as one controller per table would.
3. Each podCIDR with no matching route gets `CreateRoute` in its own goroutine, at most
   `maxConcurrentRouteOperations = 200` in flight (a semaphore), with no client-side rate limiting. A
   failed create is not retried by the controller (`RetryOnConflict` retries only API-server conflicts);
   it waits for the next pass.
4. After every goroutine has returned, each node's `NetworkUnavailable` is set from what the pass
   achieved: False/RouteCreated if all its routes exist or were created, else True/NoRouteCreated.
5. Cloud calls carry the SDK's own retries, modelled on botocore's `standard` mode (the AWS SDKs'
   cross-SDK standard): 3 attempts; delay `rand(0,1) * min(base * 2**i, 20 s)` with base 1 s for
   throttling and 50 ms for other transient errors; a client-wide retry quota of 500 where a throttled
   retry costs 5, another retry 14, a success without retry refunds 1 and a success after retries
   refunds what its retry took (botocore/retries/standard.py, quota.py).
6. Like the cloud provider's `CreateRoute`, every create first prepares its instance (AWS: describe it
   and disable source/dest check; here `prepare_target`, the SimCloud's per-instance read), every time.

Left out, and why: route deletion (no benchmark deletes nodes); the legacy AWS provider's extra calls
per `CreateRoute` (`DescribeInstances`, `ModifyInstanceAttribute` — a *write* — and
`DescribeRouteTables`), which would cost the baseline roughly twice the write tokens on real EC2; and its
process-wide `CrossRequestRetryDelay`. Both omissions favour the baseline.
"""

from __future__ import annotations

import functools
import ipaddress
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from providers import Network, Outcome, ProviderError, Route, RouteProvider, RouteResult, Throttled, Transient
from routectl.cluster import Cluster, ClusterError, Condition, Node
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.nodestatus import ROUTE_CREATED
from routectl.reasons import ConditionReason

RESYNC_PERIOD_S = 10.0
MAX_CONCURRENT_ROUTE_OPERATIONS = 200
NO_ROUTE = Condition(
    "True", ConditionReason.NO_ROUTE_CREATED.value, "RouteController failed to create a route"
)

_T = TypeVar("_T")


class RetryQuota:
    """botocore's client-wide retry budget (`retries/quota.py`): retries stop when it runs dry."""

    CAPACITY = 500
    THROTTLING_RETRY_COST = 5
    RETRY_COST = 14
    NO_RETRY_INCREMENT = 1

    def __init__(self) -> None:
        self._level = self.CAPACITY
        self._lock = threading.Lock()

    def acquire(self, amount: int) -> bool:
        with self._lock:
            if amount > self._level:
                return False
            self._level -= amount
            return True

    def release(self, amount: int) -> None:
        with self._lock:
            self._level = min(self.CAPACITY, self._level + amount)


class SdkRetries:
    """botocore `standard` retry mode for one client (rule 5)."""

    MAX_ATTEMPTS = 3
    MAX_BACKOFF_S = 20.0

    def __init__(self, rng: random.Random, sleep: Callable[[float], None] = time.sleep) -> None:
        self._rng = rng
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self.quota = RetryQuota()

    def call(self, request: Callable[[], _T]) -> _T:
        """Run `request`, retrying Throttled/Transient; raises the last error when out of attempts."""
        held = 0
        for attempt in range(1, self.MAX_ATTEMPTS + 1):
            try:
                result = request()
            except (Throttled, Transient) as err:
                throttled = isinstance(err, Throttled)
                cost = RetryQuota.THROTTLING_RETRY_COST if throttled else RetryQuota.RETRY_COST
                if attempt == self.MAX_ATTEMPTS or not self.quota.acquire(cost):
                    raise
                held = cost
                base = 1.0 if throttled else 0.05
                with self._rng_lock:
                    jitter = self._rng.random()
                self._sleep(jitter * min(base * 2 ** (attempt - 1), self.MAX_BACKOFF_S))
                continue
            self.quota.release(held or RetryQuota.NO_RETRY_INCREMENT)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")


def _raise_retryable(result: RouteResult) -> RouteResult:
    """A per-route RETRY is an error response to the SDK: throttling or a transient failure."""
    if result.outcome is Outcome.RETRY:
        raise (Throttled if result.throttled else Transient)(result.message)
    return result


class BaselineRouteController:
    """The cloud-provider Routes interface's route controller (rules 1-6) over `tables`."""

    def __init__(
        self,
        cluster: MemoryCluster,
        provider: RouteProvider,
        tables: Sequence[str],
        *,
        period_s: float = RESYNC_PERIOD_S,
        seed: int = 0,
    ) -> None:
        self._cluster: Cluster = cluster
        self._nodes = cluster.nodes
        self._provider = provider
        self._tables = tuple(tables)
        self._period_s = period_s
        self._sdk = SdkRetries(random.Random(seed))
        self.passes = 0

    def run(self, stop: threading.Event) -> None:
        """`wait.NonSlidingUntil(reconcileNodeRoutes, period, stop)`."""
        with ThreadPoolExecutor(MAX_CONCURRENT_ROUTE_OPERATIONS, thread_name_prefix="baseline") as pool:
            while not stop.is_set():
                started = time.monotonic()
                self.reconcile(pool)
                stop.wait(max(0.0, started + self._period_s - time.monotonic()))

    def reconcile(self, pool: ThreadPoolExecutor) -> None:
        self.passes += 1
        nodes = [n for n in self._nodes().values() if n.pod_cidrs]
        wanted = {n.name: [self._route(n, cidr) for cidr in n.pod_cidrs] for n in nodes}
        missing: list[tuple[str, Route]] = []
        for table in self._tables:
            try:
                listed = self._sdk.call(functools.partial(self._provider.list_routes, table))
            except ProviderError:
                return  # "Couldn't reconcile node routes": the next period tries again
            existing = {r.destination: r for r in listed if r.owned and r.target is not None}
            missing += [
                (table, route)
                for routes in wanted.values()
                for route in routes
                if (have := existing.get(route.destination)) is None or have.target != route.target
            ]
        created = {done for done in pool.map(self._create, missing) if done is not None}
        failed = {route.node for table, route in missing if (table, route.destination) not in created}
        for node in nodes:
            self._set_condition(node, NO_ROUTE if node.name in failed else ROUTE_CREATED)

    def _route(self, node: Node, cidr: str) -> Route:
        target = self._provider.target_for(node.provider_id)
        return Route(ipaddress.ip_network(cidr), target, owned=True, node=node.name)

    def _create(self, item: tuple[str, Route]) -> tuple[str, Network] | None:
        """One `CreateRoute` goroutine; returns (table, destination) when it succeeded, else None."""
        table, route = item
        target = route.target
        assert target is not None
        try:
            self._sdk.call(lambda: self._provider.prepare_target(target))
            result = self._sdk.call(lambda: _raise_retryable(self._provider.create_routes(table, [route])[0]))
        except ProviderError:
            return None
        return (table, route.destination) if result.outcome.succeeded else None

    def _set_condition(self, node: Node, condition: Condition) -> None:
        current = node.network_unavailable
        if current is not None and current.status == condition.status:
            return  # updateNetworkingCondition: "canceled because it is already set"
        try:
            self._cluster.set_network_unavailable(node.name, condition)
        except ClusterError:
            return
