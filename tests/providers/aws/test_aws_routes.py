"""Listing and writing routes in moto's EC2, with AWS behaviour moto lacks added by botocore hooks."""

from __future__ import annotations

from typing import Any

import pytest
from awsworld import OWNED_TAG, World, a_provider, a_route

from providers import Outcome, Route, RouteState, Target
from providers.aws import AwsProvider


@pytest.fixture
def table(world: World) -> str:
    return world.table(OWNED_TAG)


def listed(provider: AwsProvider, table: str) -> dict[str, Route]:
    return {str(r.destination): r for r in provider.list_routes(table)}


def report_blackholes(provider: AwsProvider, destinations: set[str]) -> None:
    """AWS marks a route blackhole once its target is gone; moto never does."""

    def handler(parsed: Any, **_: Any) -> None:
        for table in parsed.get("RouteTables", []):
            for route in table["Routes"]:
                if (
                    route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
                ) in destinations:
                    route["State"] = "blackhole"

    provider._ec2.meta.events.register("after-call.ec2.DescribeRouteTables", handler)


def test_every_managed_table_gets_the_route(world: World) -> None:
    tables = [world.table(OWNED_TAG), world.table(OWNED_TAG)]
    (instance,) = world.instances(1)
    provider = a_provider()

    for table in provider.tables():
        provider.create_routes(table, [a_route("10.244.7.0/24", instance)])

    assert sorted(provider.tables()) == sorted(tables)
    for table in tables:
        assert listed(provider, table)["10.244.7.0/24"].target == Target(instance)


def test_foreign_routes_are_reported_not_owned_and_survive_writes_around_them(
    world: World, table: str
) -> None:
    (instance,) = world.instances(1)
    igw = world.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    world.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=world.vpc_id)
    eip = world.ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = world.ec2.create_nat_gateway(SubnetId=world.subnet_id, AllocationId=eip)["NatGateway"]
    peer_vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    peering = world.ec2.create_vpc_peering_connection(VpcId=world.vpc_id, PeerVpcId=peer_vpc)
    world.add_route(table, "0.0.0.0/0", GatewayId=igw)
    world.add_route(table, "172.16.0.0/12", NatGatewayId=nat["NatGatewayId"])
    world.add_route(
        table,
        "10.244.9.0/24",
        VpcPeeringConnectionId=peering["VpcPeeringConnection"]["VpcPeeringConnectionId"],
    )
    before = world.raw_routes(table)
    provider = a_provider()

    routes = listed(provider, table)
    provider.create_routes(table, [a_route("10.244.8.0/24", instance)])
    provider.delete_routes(table, [a_route("10.244.8.0/24", instance)])

    foreign = {"0.0.0.0/0", "172.16.0.0/12", "10.244.9.0/24", "10.0.0.0/16", str(world.ipv6_block)}
    assert {d for d, r in routes.items() if not r.owned} == foreign
    assert all(routes[d].target is None for d in foreign)
    assert routes["10.0.0.0/16"].next_hop == "local"
    assert world.raw_routes(table) == before


def test_create_over_a_foreign_route_is_a_conflict_and_leaves_it(world: World, table: str) -> None:
    (instance,) = world.instances(1)
    peer_vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    peering = world.ec2.create_vpc_peering_connection(VpcId=world.vpc_id, PeerVpcId=peer_vpc)
    peering_id = peering["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    world.add_route(table, "10.244.10.0/24", VpcPeeringConnectionId=peering_id)
    provider = a_provider()

    (result,) = provider.create_routes(table, [a_route("10.244.10.0/24", instance)])

    assert result.outcome is Outcome.CONFLICT
    assert peering_id in result.message
    assert world.raw_routes(table)["10.244.10.0/24"]["VpcPeeringConnectionId"] == peering_id


def test_instance_route_outside_the_cluster_cidr_is_left_to_the_planners_cidr_rule(
    world: World, table: str
) -> None:
    """AWS routes carry no marks, so the adapter cannot tell who made an instance route; docs/architecture.md
    (Ownership) makes the cluster-CIDR rule the planner's, so the adapter reports it structurally owned."""
    (instance,) = world.instances(1)
    world.add_route(table, "192.168.50.0/24", InstanceId=instance)

    route = listed(a_provider(), table)["192.168.50.0/24"]

    assert (route.owned, route.target) == (True, Target(instance))


def test_route_to_a_terminated_instance_is_listed_as_an_owned_blackhole(world: World, table: str) -> None:
    """moto keeps such routes active; the adapter finds the dead instance itself."""
    gone, alive = world.instances(2)
    provider = a_provider()
    provider.create_routes(table, [a_route("10.244.11.0/24", gone), a_route("10.244.12.0/24", alive)])
    world.terminate(gone)

    routes = listed(provider, table)

    assert (routes["10.244.11.0/24"].state, routes["10.244.11.0/24"].target) == (RouteState.BLACKHOLE, None)
    assert routes["10.244.11.0/24"].owned
    assert routes["10.244.11.0/24"].next_hop == gone
    assert routes["10.244.12.0/24"].state is RouteState.ACTIVE


def test_route_aws_reports_blackhole_is_listed_blackhole_even_if_the_instance_lives(
    world: World, table: str
) -> None:
    (instance,) = world.instances(1)
    provider = a_provider()
    provider.create_routes(table, [a_route("10.244.13.0/24", instance)])
    report_blackholes(provider, {"10.244.13.0/24"})

    route = listed(provider, table)["10.244.13.0/24"]

    assert (route.state, route.target, route.owned) == (RouteState.BLACKHOLE, None, True)


def test_create_over_an_owned_blackhole_replaces_it(world: World, table: str) -> None:
    gone, new = world.instances(2)
    provider = a_provider()
    provider.create_routes(table, [a_route("10.244.16.0/24", gone)])
    world.terminate(gone)

    (result,) = provider.create_routes(table, [a_route("10.244.16.0/24", new)])

    assert result.outcome is Outcome.OK
    assert listed(provider, table)["10.244.16.0/24"].target == Target(new)


def test_listing_pages_through_instances_of_a_large_table(world: World, table: str) -> None:
    instances = world.instances(5)
    provider = a_provider()
    wanted = {f"10.244.{i}.0/24": instances[i % 5] for i in range(30)}
    provider.create_routes(table, [a_route(d, i) for d, i in wanted.items()])

    routes = listed(provider, table)

    assert {d: r.target for d, r in routes.items() if r.owned} == {d: Target(i) for d, i in wanted.items()}
