"""The simulated cloud passes the RouteProvider conformance kit, one call per route and batched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from providers import Network, Route, RouteProvider, Target
from providers.conformance import CLUSTER_CIDRS, Probe, RouteProviderContract, Supports
from providers.emulators.simcloud import WRITES, Fault, SimCloud

TABLE = "rtb-main"
MISSING = Target("i-gone", "zone-a")

SUPPORTS = Supports(
    node_uids=False,
    retry_after=False,
    refuses_foreign_deletes=False,
    settles_stale_writes=False,
    adoption=False,
    why_not={
        "adoption": "the sim models one route controller only: nothing is adoptable",
        "node_uids": "the sim stores a route's node name, not its uid",
        "retry_after": "the sim throttles like EC2, which never sends a retry-after",
        "refuses_foreign_deletes": "the sim lets any caller change any route and records it in "
        "foreign_writes, so engine tests can prove the engine never does",
        "settles_stale_writes": "the sim answers as a bare cloud API (a taken destination is a "
        "CONFLICT, a replace of a missing route FATAL), so engine tests see what a stale plan costs",
    },
)


@dataclass(slots=True)
class SimWorld:
    sim: SimCloud
    table: str = TABLE
    cluster_cidrs: Sequence[Network] = CLUSTER_CIDRS
    provider_ids: dict[str, Target] = field(default_factory=dict)
    invalid_provider_ids: Sequence[str] = (
        "i-1",
        "aws:///zone-a/i-1",
        "sim://zone-a",
        "sim:///i-1",
        "sim://zone-a/i-1/x",
    )
    missing_target: Target = MISSING
    supports: Supports = SUPPORTS

    @property
    def provider(self) -> RouteProvider:
        return self.sim

    def add_foreign_route(self, destination: Network, *, blocking: Route | None = None) -> Probe:
        self.sim.add_route(self.table, destination, "i-other", owner="other-cluster", node="theirs")
        return lambda: self.sim.routes(self.table).get(destination)

    def add_adoptable_route(self, destination: Network, target: Target) -> Probe:
        raise NotImplementedError("the sim has no adoptable routes")

    def limit_routes(self, room: int) -> None:
        self.sim.set_quota(len(self.sim.routes(self.table)) + room)

    def throttle_writes(self, count: int, retry_after: float) -> None:
        self.sim.inject(WRITES, *[Fault.THROTTLED] * count)

    def terminate(self, target: Target) -> None:
        self.sim.terminate(target.instance)

    def mutating_requests(self) -> int:
        return sum(self.sim.calls[api] for api in WRITES)


@pytest.fixture(params=[1, 50], ids=["per-route", "batched"])
def conformance_world(request: pytest.FixtureRequest) -> SimWorld:
    sim = SimCloud("c1", tables=(TABLE,), max_batch=request.param)
    world = SimWorld(sim)
    for instance, zone in (("i-1", "zone-a"), ("i-2", "zone-b")):
        world.provider_ids[sim.add_instance(instance, zone)] = Target(instance, zone)
    return world


class TestSimCloudConformance(RouteProviderContract):
    pass
