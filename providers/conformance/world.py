"""What an adapter's author hands the conformance kit: a small world around one provider.

The kit drives the provider only through `RouteProvider`; everything it cannot do through that port —
put a foreign route in the table, fill the route quota, make the cloud throttle, terminate an instance,
count the mutating requests the cloud received — it asks of the world. A world is built fresh for every
test (a function-scoped fixture) and owns its cloud: the kit changes it freely.

Nothing here imports pytest, so a world can be type-checked and built outside a test run.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from providers.model import Network, Route, RouteProvider, Target

CLUSTER_CIDRS: tuple[Network, ...] = (
    ipaddress.ip_network("10.64.0.0/16"),
    ipaddress.ip_network("fd00:64::/56"),
)
"""Cluster CIDRs a world may offer when its cloud takes any (AWS wants IPv6 from the VPC's block)."""

Probe = Callable[[], object]
"""Reads one route as the cloud stores it now (any value that compares equal while nothing changed;
None once the route is gone)."""


@dataclass(frozen=True, slots=True)
class Supports:
    """Contract items the cloud can model; each one defaults to True.

    Set an item False only where the cloud (or its emulator) really lacks it, and say why in `why_not`:
    the kit turns it into a skip that prints the reason. A False item without a reason, or a reason for
    an item left True, is refused when the world is built.
    """

    ipv6: bool = True
    """IPv6 routes: the world's `cluster_cidrs` hold an IPv6 network."""
    node_names: bool = True
    """Listed routes this cluster made name their node (`Route.node`) from the cloud-side marks."""
    node_uids: bool = True
    """Listed routes this cluster made carry their node's uid (`Route.node_uid`)."""
    retry_after: bool = True
    """A throttled write carries the cloud's retry-after (`RouteResult.retry_after`); where the cloud
    never sends one the kit checks the adapter invents none."""
    route_quota: bool = True
    """The cloud refuses routes beyond a quota (`limit_routes`; a world without one may raise
    NotImplementedError there)."""
    throttling: bool = True
    """The cloud refuses writes for its rate limit (`throttle_writes`, likewise)."""
    blackholes: bool = True
    """A route whose instance is gone is listed as a blackhole (`terminate`, likewise)."""
    verifies_targets: bool = True
    """`prepare_target` of an instance that does not exist raises a ProviderError naming it."""
    refuses_foreign_deletes: bool = True
    """`delete_routes` refuses a route the adapter itself listed as not owned, without a request."""
    settles_stale_writes: bool = True
    """A create over this cluster's route with another target repoints it, and a replace of a route
    that vanished creates it: the adapter settles a listing that went stale between plan and write."""
    adoption: bool = True
    """The cloud holds routes another route controller makes for a cluster's nodes, and the adapter
    lists them `adoptable` and adopts them (`add_adoptable_route`); where it does not, the kit checks
    that `adopt_routes` answers FATAL for each route and sends nothing."""
    why_not: Mapping[str, str] = field(default_factory=dict)
    """Item name → why the cloud cannot model it (shown as the skip reason)."""

    def __post_init__(self) -> None:
        items = {f.name for f in dataclasses.fields(self) if f.name != "why_not"}
        unknown = sorted(set(self.why_not) - items)
        if unknown:
            raise ValueError(f"Supports.why_not names unknown items: {', '.join(unknown)}")
        unexplained = sorted(i for i in items if not getattr(self, i) and not self.why_not.get(i))
        if unexplained:
            raise ValueError(f"Supports: say in why_not why the cloud lacks {', '.join(unexplained)}")
        stray = sorted(i for i in self.why_not if getattr(self, i))
        if stray:
            raise ValueError(f"Supports.why_not explains items left True: {', '.join(stray)}")


class ConformanceWorld(Protocol):
    """One provider bound to a cloud (real SDK against an emulator, or an in-memory cloud) the kit may
    change at will. Hand one to the kit through a fixture named `conformance_world`."""

    @property
    def provider(self) -> RouteProvider:
        """The adapter under test, built as the controller builds it."""
        ...

    @property
    def table(self) -> str:
        """One of `provider.tables()`, holding no route of this cluster yet."""
        ...

    @property
    def cluster_cidrs(self) -> Sequence[Network]:
        """One cluster CIDR per IP family the kit may route (IPv4; IPv6 when `supports.ipv6`). The kit
        carves node routes from them, /24s from IPv4 and /64s from IPv6, up to `max_batch` + 16 of
        them: an IPv4 /16 and an IPv6 /56 are always enough."""
        ...

    @property
    def provider_ids(self) -> Mapping[str, Target]:
        """Valid `spec.providerID`s → the Target each parses to, naming at least two live instances;
        list several spellings of one instance where the cloud accepts them."""
        ...

    @property
    def invalid_provider_ids(self) -> Sequence[str]:
        """providerIDs this cloud must refuse (the kit adds a few any cloud refuses)."""
        ...

    @property
    def missing_target(self) -> Target:
        """An instance that does not exist in the cloud."""
        ...

    @property
    def supports(self) -> Supports: ...

    def add_foreign_route(self, destination: Network, *, blocking: Route | None = None) -> Probe:
        """Put an IPv4 route this cluster does not own at `destination`, the way another owner would
        (another cluster, a peering, a hand-made route); with `blocking`, place it where creating that
        desired route collides with it (same destination, or on GCP the name the route would take).
        Returns a probe of the foreign route as the cloud stores it."""
        ...

    def add_adoptable_route(self, destination: Network, target: Target) -> Probe:
        """Put a route at `destination` to `target` the way the cloud's earlier route controller does
        for this cluster's nodes (GCP: a `k8s-node-route` named for the cluster; Alibaba: an entry to
        the instance without routectl's marks). Returns a probe of it. A world without `adoption` may
        raise NotImplementedError."""
        ...

    def limit_routes(self, room: int) -> None:
        """From now on `table` accepts exactly `room` more IPv4 routes (the kit then creates IPv4
        routes only; a cloud that counts every route together simply takes `room` more routes)."""
        ...

    def throttle_writes(self, count: int, retry_after: float) -> None:
        """Refuse the next `count` mutating requests (any kind) for the cloud's rate limit, with a
        retry-after of `retry_after` seconds where the cloud sends one."""
        ...

    def terminate(self, target: Target) -> None:
        """The instance is gone (terminated, deleted, released); routes to it stay in the table."""
        ...

    def mutating_requests(self) -> int:
        """Mutating requests the cloud has received so far (route writes, instance changes), counted
        by the cloud side — whatever their answer."""
        ...


__all__ = ["CLUSTER_CIDRS", "ConformanceWorld", "Probe", "Supports"]
