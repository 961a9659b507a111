"""Values and the RouteProvider protocol shared by every cloud adapter.

The engine speaks only these types; an adapter translates them to and from its SDK at its own boundary,
so nothing above `providers/` ever sees a cloud-specific value or exception.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CallObserver = Callable[[str, str, float], None]
"""Told of every cloud API call: (API name as the cloud spells it, result code, seconds)."""

WriteGuard = Callable[[], None]
"""Raises when this process may no longer write (the controller's leader fence)."""


def no_guard() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a route sends traffic: one cloud instance (the node's VM)."""

    instance: str
    """The cloud's id for the instance: AWS `i-…`, GCP instance name, Alibaba `i-…`."""
    zone: str = ""
    project: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.project, self.zone, self.instance) if p)


class RouteState(enum.Enum):
    ACTIVE = "active"
    PENDING = "pending"
    """Accepted by the cloud but not yet in effect (Alibaba `Creating`, GCP operation running)."""
    DELETING = "deleting"
    BLACKHOLE = "blackhole"
    """The target is gone (terminated instance); the route drops traffic."""


@dataclass(frozen=True, slots=True)
class Route:
    """One route: as listed from the cloud, or as desired for a node.

    `owned` is the adapter's verdict on the cloud-side marks (name, description, target kind); the planner
    additionally requires the destination to lie inside a cluster CIDR before it touches a route.
    """

    destination: Network
    target: Target | None
    """None for a blackhole or a next hop that is not an instance (gateway, peering, NAT …)."""
    owned: bool = False
    state: RouteState = RouteState.ACTIVE
    node: str = ""
    """Node name: set on desired routes; on listed routes when the cloud-side marks name it."""
    node_uid: str = ""
    cloud_id: str = ""
    """The cloud's handle for the route (GCP route name, Alibaba RouteEntryId); empty when none."""
    next_hop: str = ""
    """Human-readable next hop as the cloud reports it (for conflicts and `plan` output)."""
    adoptable: bool = False
    """Not owned, but written for this cluster by another route controller the adapter recognises
    (GCP: a `k8s-node-route` under the cluster's name prefix; Alibaba: an unmarked entry to an
    instance). Only a hint: the planner adopts it only when its destination is a node's block and
    its target that node's instance (docs/architecture.md, "Ownership")."""


class Outcome(enum.Enum):
    OK = "ok"
    ALREADY_DONE = "already_done"
    RETRY = "retry"
    QUOTA_EXCEEDED = "quota_exceeded"
    CONFLICT = "conflict"
    FATAL = "fatal"

    @property
    def succeeded(self) -> bool:
        return self in (Outcome.OK, Outcome.ALREADY_DONE)


@dataclass(frozen=True, slots=True)
class RouteResult:
    route: Route
    outcome: Outcome
    message: str = ""
    retry_after: float | None = None
    """Seconds the cloud asked us to wait (AWS/GCP never say; Alibaba's x-acs-retry-after does)."""
    target_gone: bool = False
    """The route's target instance no longer exists: a node problem, not worth retrying."""
    throttled: bool = False
    """The cloud refused the call for its rate limit (AWS RequestLimitExceeded, GCP rateLimitExceeded,
    Alibaba Throttling*): the executor's adaptive limiter backs off on these, not on other retries."""


def nothing_adoptable(provider: str, routes: Sequence[Route]) -> list[RouteResult]:
    """`adopt_routes` of an adapter that recognises no other route controller's routes (AWS: routes
    carry no marks, so ownership is structural and there is nothing to adopt)."""
    message = f"provider {provider} adopts no routes"
    return [RouteResult(route, Outcome.FATAL, message) for route in routes]


@dataclass(frozen=True, slots=True)
class Limits:
    """What the cloud allows; the executor seeds its token buckets and batching from these."""

    write_rate: float
    write_burst: int
    read_rate: float
    read_burst: int
    max_batch: int = 1
    """Routes handed to one create/replace/delete call of the adapter."""
    batch_api: bool = False
    """True when such a call is one cloud API request whatever its size (Alibaba CreateRouteEntries);
    False when the adapter sends one request per route (GCP pipelines its inserts): the executor then
    spends one write token per route, not per call."""
    routes_per_table: int | None = None
    """Route quota per managed table, when known."""
    quota_per_family: bool = False
    """`routes_per_table` counts IPv4 and IPv6 routes apart (AWS)."""
    prepare_writes: bool = False
    """`prepare_target` may change the instance (AWS ModifyInstanceAttribute): the executor then paces it
    with the write bucket and passes it through the fence, like any other cloud write."""
    writers_per_table: int | None = None
    """Concurrent writers a table tolerates (Alibaba: 1 per VPC); None = no limit beyond the bucket."""


@runtime_checkable
class RouteProvider(Protocol):
    """The port every cloud adapter implements (docs/architecture.md, "The provider port")."""

    name: str

    @property
    def limits(self) -> Limits: ...

    def tables(self) -> Sequence[str]:
        """The managed route tables; raises ConfigurationError when there are none."""
        ...

    def list_routes(self, table: str) -> list[Route]: ...

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]: ...

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]: ...

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]: ...

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Make adoptable routes this cluster's without a moment where their destination has no route:
        each `route` is the desired owned route, its `cloud_id` the listed adoptable route's. GCP:
        insert the owned route, await it, then delete the legacy one; Alibaba: write the marks in
        place (ModifyRouteEntry). A listed route the adapter does not recognise as adoptable (or not
        at that destination and target) is CONFLICT, untouched. Adapters with nothing adoptable
        answer FATAL for each route."""
        ...

    def target_for(self, provider_id: str) -> Target:
        """Parse `node.spec.providerID`; raises InvalidProviderID naming the value."""
        ...

    def prepare_target(self, target: Target) -> None:
        """Per-instance check and setup before any route to it is written; raises ProviderError.

        Contract: first, with reads only, verify the instance lies inside the managed network (AWS and
        Alibaba: its VPC is the VPC of the managed route tables; GCP: it has a NIC in the managed
        network) and raise `OutsideNetwork` (naming both networks) when it does not — before any
        change to the instance (no source/destination check or canIpForward change). Only then set
        up what routing needs (AWS: source/destination check off). A missing instance is NotFound."""
        ...

    def observe(self, observer: CallObserver) -> None:
        """Report every API call to `observer` (metrics, the demo's call counts)."""
        ...

    def guard_writes(self, guard: WriteGuard) -> None:
        """Call `guard` immediately before every mutating request, including each step of a
        multi-step write (GCP replace: delete, await, insert); whatever it raises propagates."""
        ...

    def close(self) -> None: ...


class CheckStatus(enum.Enum):
    """A `routectl doctor` verdict: passed, failed (routectl cannot work so), or a warning (it may work,
    but something could not be proven or looks wrong)."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding of `routectl doctor`, cloud- and Kubernetes-neutral.

    It lives in the provider port because adapters produce it and `providers` imports nothing above it;
    the Kubernetes layer reports in the same type, and `routectl/ops/doctor.py` renders both."""

    area: str
    """What was checked: "kubernetes", "flannel", or the provider's name."""
    name: str
    """Short, stable name of the check ("api-reachable", "dry-run CreateRoute")."""
    status: CheckStatus
    found: str
    """What was found, in one line."""
    fix: str = ""
    """What to do about it (empty when it passed)."""


@dataclass(frozen=True, slots=True)
class DiagnosisScope:
    """What a provider's `diagnose` checks against: the cluster's CIDRs and the nodes' instances."""

    cluster_cidrs: tuple[Network, ...]
    targets: tuple[Target, ...]
    """One per node whose providerID parsed; the instances routes will point at."""


@runtime_checkable
class Diagnosable(Protocol):
    """An adapter that can check its own setup for `routectl doctor` (docs/providers.md).

    Optional: an adapter without `diagnose` is reported as one "!" line, never an error. Contract:
    reads only — write permission is proven with the cloud's dry-run where it has one, never by
    writing; every failure becomes a FAIL or WARN `Check`, no exception escapes for a cloud error."""

    def diagnose(self, scope: DiagnosisScope) -> list[Check]: ...
