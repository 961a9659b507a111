"""The Alibaba adapter passes the RouteProvider conformance kit through the real SDK against the VPC
emulator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from providers.alibaba import AlibabaProvider
from providers.conformance import CLUSTER_CIDRS, Probe, RouteProviderContract, Supports
from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.model import Network, Route, RouteProvider, Target

from .conftest import REGION, VPC

WRITES = ("CreateRouteEntries", "DeleteRouteEntries", "ModifyRouteEntry")
MISSING = Target("i-gone", zone=REGION)

SUPPORTS = Supports(
    node_uids=False,
    why_not={"node_uids": "the marks (RouteEntryName, Description) name the node, not its uid"},
)


@dataclass(slots=True)
class AlibabaWorld:
    emulator: AlibabaVpcEmulator
    provider: RouteProvider
    table: str
    cluster_cidrs: Sequence[Network] = CLUSTER_CIDRS
    invalid_provider_ids: Sequence[str] = (
        "aws:///us-east-1a/i-0abc",
        "cn-shanghai.i-bp1abc",
        "cn-hangzhou.",
        "gce://p/z/n",
    )
    missing_target: Target = MISSING
    supports: Supports = SUPPORTS

    @property
    def provider_ids(self) -> dict[str, Target]:
        return {
            f"{REGION}.i-000001": Target("i-000001", zone=REGION),
            f"alicloud://{REGION}.i-000001": Target("i-000001", zone=REGION),
            "i-000002": Target("i-000002", zone=REGION),
            "alicloud://i-000002": Target("i-000002", zone=REGION),
        }

    def add_foreign_route(self, destination: Network, *, blocking: Route | None = None) -> Probe:
        where = str(destination)
        self.emulator.add_route(
            self.table, where, "i-foreign", name="someone-else", description="routectl cluster=other node=x"
        )
        return lambda: next((e for e in self.emulator.routes(self.table) if e.destination == where), None)

    def add_adoptable_route(self, destination: Network, target: Target) -> Probe:
        """An entry as Alibaba's cloud-controller-manager leaves it: no routectl marks."""
        where = str(destination)
        self.emulator.add_route(self.table, where, target.instance, description="")
        return lambda: next((e for e in self.emulator.routes(self.table) if e.destination == where), None)

    def limit_routes(self, room: int) -> None:
        self.emulator.set_quota(self.table, len(self.emulator.routes(self.table, type_="Custom")) + room)

    def throttle_writes(self, count: int, retry_after: float) -> None:
        self.emulator.throttle(WRITES, times=count, retry_after_ms=round(retry_after * 1000))

    def terminate(self, target: Target) -> None:
        self.emulator.terminate_instance(target.instance)

    def mutating_requests(self) -> int:
        calls = self.emulator.calls
        return sum(calls.get(action, 0) for action in WRITES)


@pytest.fixture
def conformance_world(emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str) -> AlibabaWorld:
    world = AlibabaWorld(emulator, provider, table)
    emulator.add_instances(VPC, *{t.instance for t in world.provider_ids.values()})
    return world


class TestAlibabaConformance(RouteProviderContract):
    pass
