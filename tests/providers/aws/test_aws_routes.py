"""Listing and writing routes in moto's EC2, with AWS behaviour moto lacks added by botocore hooks."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from awsworld import OWNED_TAG, World, a_provider, a_route, refuse_duplicate_ipv6_creates

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


def test_created_ipv4_route_is_listed_active_owned_and_pointing_at_the_instance(
    world: World, table: str
) -> None:
    (instance,) = world.instances(1)
    provider = a_provider()
    target = provider.target_for(f"aws:///us-east-1a/{instance}")

    (result,) = provider.create_routes(table, [Route(ipaddress.ip_network("10.244.1.0/24"), target)])

    assert result.outcome is Outcome.OK
    route = listed(provider, table)["10.244.1.0/24"]
    assert (route.owned, route.state, route.target) == (True, RouteState.ACTIVE, target)
    assert world.raw_routes(table)["10.244.1.0/24"]["InstanceId"] == instance


def test_created_ipv6_route_is_listed_active_and_owned(world: World, table: str) -> None:
    (instance,) = world.instances(1)
    destination = world.pod_cidr_v6(0)
    provider = a_provider()

    (result,) = provider.create_routes(table, [a_route(destination, instance)])

    assert result.outcome is Outcome.OK
    route = listed(provider, table)[str(destination)]
    assert (route.owned, route.state, route.target) == (True, RouteState.ACTIVE, Target(instance))


@pytest.mark.parametrize("family", [4, 6])
def test_creating_the_same_route_twice_is_already_done_and_writes_nothing_new(
    world: World, table: str, family: int
) -> None:
    (instance,) = world.instances(1)
    provider = a_provider()
    refuse_duplicate_ipv6_creates(provider, world)
    destination = "10.244.2.0/24" if family == 4 else world.pod_cidr_v6(2)
    replaces: list[str] = []
    provider._ec2.meta.events.register("before-call.ec2.ReplaceRoute", lambda **_: replaces.append("x"))
    target = provider.target_for(f"aws:///us-east-1a/{instance}")
    route = Route(ipaddress.ip_network(destination), target, owned=True, node="node-1")

    first = provider.create_routes(table, [route])
    second = provider.create_routes(table, [route])

    assert [r.outcome for r in first + second] == [Outcome.OK, Outcome.ALREADY_DONE]
    assert replaces == []


def test_create_over_an_owned_route_with_another_target_replaces_it(world: World, table: str) -> None:
    old, new = world.instances(2)
    provider = a_provider()
    refuse_duplicate_ipv6_creates(provider, world)
    v6 = world.pod_cidr_v6(3)
    provider.create_routes(table, [a_route("10.244.3.0/24", old), a_route(v6, old)])

    results = provider.create_routes(table, [a_route("10.244.3.0/24", new), a_route(v6, new)])

    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    routes = listed(provider, table)
    assert routes["10.244.3.0/24"].target == routes[str(v6)].target == Target(new)


def test_replace_points_an_existing_route_at_the_new_instance(world: World, table: str) -> None:
    old, new = world.instances(2)
    provider = a_provider()
    provider.create_routes(table, [a_route("10.244.4.0/24", old)])

    (result,) = provider.replace_routes(table, [a_route("10.244.4.0/24", new)])

    assert result.outcome is Outcome.OK
    assert listed(provider, table)["10.244.4.0/24"].target == Target(new)


def test_replace_of_a_route_that_vanished_creates_it(world: World, table: str) -> None:
    (instance,) = world.instances(1)
    provider = a_provider()

    (result,) = provider.replace_routes(table, [a_route("10.244.5.0/24", instance)])

    assert result.outcome is Outcome.OK
    assert listed(provider, table)["10.244.5.0/24"].target == Target(instance)


@pytest.mark.parametrize("family", [4, 6])
def test_delete_removes_the_route_and_a_second_delete_is_already_done(
    world: World, table: str, family: int
) -> None:
    (instance,) = world.instances(1)
    provider = a_provider()
    route = a_route("10.244.6.0/24" if family == 4 else world.pod_cidr_v6(6), instance)
    provider.create_routes(table, [route])

    first = provider.delete_routes(table, [route])
    second = provider.delete_routes(table, [route])

    assert [r.outcome for r in first + second] == [Outcome.OK, Outcome.ALREADY_DONE]
    assert str(route.destination) not in listed(provider, table)


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
    """AWS routes carry no marks, so the adapter cannot tell who made an instance route; DESIGN §4.4
    makes the cluster-CIDR rule the planner's, so the adapter reports it structurally owned."""
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


def test_blackhole_routes_are_cleaned_by_replace_and_by_delete(world: World, table: str) -> None:
    gone, new = world.instances(2)
    provider = a_provider()
    provider.create_routes(table, [a_route("10.244.14.0/24", gone), a_route("10.244.15.0/24", gone)])
    world.terminate(gone)

    replaced = provider.replace_routes(table, [a_route("10.244.14.0/24", new)])
    deleted = provider.delete_routes(table, [listed(provider, table)["10.244.15.0/24"]])

    assert [r.outcome for r in replaced + deleted] == [Outcome.OK, Outcome.OK]
    routes = listed(provider, table)
    assert (routes["10.244.14.0/24"].state, routes["10.244.14.0/24"].target) == (
        RouteState.ACTIVE,
        Target(new),
    )
    assert "10.244.15.0/24" not in routes


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
