"""The AWS adapter passes the RouteProvider conformance kit against moto's EC2, with the EC2 behaviour
moto lacks (RouteAlreadyExists for IPv6, the route limit, unknown instances, throttling) answered by
botocore `before-call` handlers as EC2 would answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from awsworld import (
    CLUSTER_CIDR,
    OWNED_TAG,
    World,
    a_provider,
    fail,
    honour_dry_run,
    refuse_duplicate_ipv6_creates,
)

from providers import Network, Route, RouteProvider, Target
from providers.aws import AwsProvider
from providers.conformance import Probe, RouteProviderContract, Supports

MUTATING = ("CreateRoute", "ReplaceRoute", "DeleteRoute", "ModifyInstanceAttribute")
MISSING = "i-0123456789abcdef0"
MISSING_TARGET = Target(MISSING)
FAMILY_KEYS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock")

SUPPORTS = Supports(
    node_names=False,
    node_uids=False,
    retry_after=False,
    adoption=False,
    why_not={
        "adoption": "EC2 routes carry no marks: every instance route of the cluster is owned already",
        "node_names": "EC2 routes carry no name, tag or description: ownership is structural",
        "node_uids": "EC2 routes carry no name, tag or description: ownership is structural",
        "retry_after": "EC2 answers RequestLimitExceeded without a retry-after",
    },
)


@dataclass(slots=True)
class AwsWorld:
    world: World
    adapter: AwsProvider
    table: str
    peering: str
    provider_ids: dict[str, Target]
    cluster_cidrs: Sequence[Network]
    invalid_provider_ids: Sequence[str] = (
        MISSING,
        f"aws://{MISSING}",
        f"gce://project/us-east-1a/{MISSING}",
        "aws:///us-east-1a/",
        "aws:///us-east-1a/vol-0123456789abcdef0",
        f"aws:///us-east-1a/{MISSING}/extra",
        f"aws:///US_EAST/{MISSING}",
    )
    missing_target: Target = MISSING_TARGET
    supports: Supports = SUPPORTS
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def provider(self) -> RouteProvider:
        return self.adapter

    def add_foreign_route(self, destination: Network, *, blocking: Route | None = None) -> Probe:
        self.world.add_route(self.table, str(destination), VpcPeeringConnectionId=self.peering)
        return lambda: self.world.raw_routes(self.table).get(str(destination))

    def add_adoptable_route(self, destination: Network, target: Target) -> Probe:
        raise NotImplementedError("EC2 has no adoptable routes")

    def limit_routes(self, room: int) -> None:
        """EC2 counts each family apart; moto has no limit, so count the table as EC2 would."""
        routes = self.world.raw_routes(self.table).values()
        limit = {key: sum(1 for r in routes if key in r) + room for key in FAMILY_KEYS}

        def full(body: Any) -> bool:
            key = next(k for k in FAMILY_KEYS if k in body)
            return (
                sum(1 for r in self.world.raw_routes(body["RouteTableId"]).values() if key in r) >= limit[key]
            )

        fail(self.adapter._ec2, "CreateRoute", "RouteLimitExceeded", when=full)

    def throttle_writes(self, count: int, retry_after: float) -> None:
        left = [count]

        def take(_: Any) -> bool:
            left[0] -= 1
            return left[0] >= 0

        for operation in MUTATING:
            fail(self.adapter._ec2, operation, "RequestLimitExceeded", 503, when=take)

    def terminate(self, target: Target) -> None:
        self.world.terminate(target.instance)

    def mutating_requests(self) -> int:
        return sum(self.requests.values())


@pytest.fixture
def conformance_world(world: World, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    honour_dry_run(monkeypatch)  # EC2 answers DryRun on route writes; moto performs them
    first, second = world.instances(2)
    peer_vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    peering = world.ec2.create_vpc_peering_connection(VpcId=world.vpc_id, PeerVpcId=peer_vpc)
    adapter = a_provider()
    aws = AwsWorld(
        world=world,
        adapter=adapter,
        table=world.table(OWNED_TAG),
        peering=peering["VpcPeeringConnection"]["VpcPeeringConnectionId"],
        provider_ids={
            f"aws:///us-east-1a/{first}": Target(first),
            f"aws:///{first}": Target(first),
            f"aws:///us-east-1b/{second}": Target(second),
        },
        cluster_cidrs=(CLUSTER_CIDR, world.pod_range_v6),
    )

    def count(event_name: str, **_: Any) -> None:
        aws.requests[event_name.rsplit(".", 1)[-1]] += 1

    # First in line, so requests answered by the handlers below are counted too.
    for operation in MUTATING:
        adapter._ec2.meta.events.register_first(f"before-call.ec2.{operation}", count)
    refuse_duplicate_ipv6_creates(adapter, world)
    for operation in ("CreateRoute", "ReplaceRoute"):  # moto accepts any instance id; EC2 does not
        fail(
            adapter._ec2,
            operation,
            "InvalidInstanceID.NotFound",
            when=lambda b: b.get("InstanceId") == MISSING,
        )
    return aws


class TestAwsConformance(RouteProviderContract):
    pass
