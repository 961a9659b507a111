"""Node targets (providerID parsing, source/destination check) and the routes-per-table quota."""

from __future__ import annotations

from typing import Any

import pytest
from awsworld import (
    OWNED_TAG,
    World,
    a_provider,
    a_route,
    error_response,
    fail,
    hooking_new_clients,
    recording_clients,
)

from providers import Fatal, NotFound, Outcome, OutsideNetwork, Target, Throttled
from providers.aws import AwsProvider

INSTANCE = "i-0123456789abcdef0"


def managing(world: World) -> AwsProvider:
    """An adapter managing one route table of the world's VPC."""
    return a_provider(route_table_ids=(world.table(),))


def count_calls(provider: AwsProvider, operation: str) -> list[str]:
    calls: list[str] = []
    provider._ec2.meta.events.register(f"before-call.ec2.{operation}", lambda **_: calls.append(operation))
    return calls


@pytest.mark.parametrize(
    "provider_id", [f"aws:///us-east-1a/{INSTANCE}", f"aws:///{INSTANCE}", "aws:///i-0abc"]
)
def test_provider_ids_with_and_without_zone_name_the_instance(world: World, provider_id: str) -> None:
    target = a_provider().target_for(provider_id)

    assert target == Target(provider_id.rsplit("/", 1)[-1])


def test_prepare_target_disables_the_source_destination_check(world: World) -> None:
    (instance,) = world.instances(1)

    managing(world).prepare_target(Target(instance))

    attribute = world.ec2.describe_instance_attribute(InstanceId=instance, Attribute="sourceDestCheck")
    assert attribute["SourceDestCheck"]["Value"] is False


def test_prepare_target_on_a_prepared_instance_does_not_write(world: World) -> None:
    (instance,) = world.instances(1)
    provider = managing(world)
    writes = count_calls(provider, "ModifyInstanceAttribute")

    provider.prepare_target(Target(instance))
    provider.prepare_target(Target(instance))

    assert writes == ["ModifyInstanceAttribute"]


def test_prepare_target_disables_the_check_again_after_someone_turned_it_back_on(world: World) -> None:
    (instance,) = world.instances(1)
    provider = managing(world)
    provider.prepare_target(Target(instance))
    world.ec2.modify_instance_attribute(InstanceId=instance, SourceDestCheck={"Value": True})

    provider.prepare_target(Target(instance))

    attribute = world.ec2.describe_instance_attribute(InstanceId=instance, Attribute="sourceDestCheck")
    assert attribute["SourceDestCheck"]["Value"] is False


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("InvalidInstanceID.NotFound", 400, NotFound),
        ("UnauthorizedOperation", 403, Fatal),
        ("RequestLimitExceeded", 503, Throttled),
    ],
)
def test_prepare_target_failures_are_typed_and_name_the_instance(
    world: World, code: str, status: int, error: type[Exception]
) -> None:
    provider = managing(world)
    fail(provider._ec2, "DescribeInstances", code, status)

    with pytest.raises(error) as raised:
        provider.prepare_target(Target(INSTANCE))

    assert INSTANCE in str(raised.value)


def test_an_instance_in_another_vpc_is_refused_before_anything_is_changed(world: World) -> None:
    other_vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = world.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    started = world.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet)
    instance = started["Instances"][0]["InstanceId"]
    provider = managing(world)
    writes = count_calls(provider, "ModifyInstanceAttribute")

    with pytest.raises(OutsideNetwork) as raised:
        provider.prepare_target(Target(instance))

    assert (raised.value.network, raised.value.managed) == (other_vpc, world.vpc_id)
    assert instance in str(raised.value)
    assert writes == []
    attribute = world.ec2.describe_instance_attribute(InstanceId=instance, Attribute="sourceDestCheck")
    assert attribute["SourceDestCheck"]["Value"] is True


def test_quota_comes_from_service_quotas(world: World) -> None:
    """moto serves L-93826ACB (routes per route table) with AWS's default value, 50."""
    assert a_provider().limits.routes_per_table == 50


def test_quota_from_config_wins_and_service_quotas_is_not_asked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_clients(monkeypatch) as calls:
        provider = a_provider(route_table_quota=1000)

    assert provider.limits.routes_per_table == 1000
    assert calls.actions["servicequotas:GetServiceQuota"] == 0


def test_quota_falls_back_to_aws_default_when_service_quotas_is_denied(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(client: Any) -> None:
        client.meta.events.register(
            "before-call.service-quotas.GetServiceQuota",
            lambda **_: error_response("AccessDeniedException", 403),
        )

    with hooking_new_clients(monkeypatch, deny):
        provider = a_provider()

    assert provider.limits.routes_per_table == 50


def test_quota_is_read_from_service_quotas_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    table = world.table(OWNED_TAG)
    with recording_clients(monkeypatch) as calls:
        provider = a_provider()
        provider.list_routes(table)
        provider.tables()

    assert calls.actions["servicequotas:GetServiceQuota"] == 1


def test_write_and_read_limits_default_to_the_ec2_throttling_buckets_and_are_configurable(
    world: World,
) -> None:
    default = a_provider().limits
    tuned = a_provider(write_rate=2.0, write_burst=10, read_rate=8.0, read_burst=40).limits

    assert (default.write_rate, default.write_burst, default.read_rate, default.read_burst) == (
        5.0,
        50,
        20.0,
        100,
    )
    assert (tuned.write_rate, tuned.write_burst, tuned.read_rate, tuned.read_burst) == (2.0, 10, 8.0, 40)


def test_full_table_answers_quota_exceeded_per_family(world: World) -> None:
    """AWS refuses the 51st route of one family (IPv4 and IPv6 are counted apart); moto has no limit,
    so a before-call handler counts the table as EC2 would."""
    table = world.table(OWNED_TAG)
    (instance,) = world.instances(1)
    provider = a_provider()
    limit = provider.limits.routes_per_table or 0

    def route_limit(params: Any, **_: Any) -> Any:
        body = params["body"]
        key = "DestinationIpv6CidrBlock" if "DestinationIpv6CidrBlock" in body else "DestinationCidrBlock"
        same_family = [r for r in world.raw_routes(body["RouteTableId"]).values() if key in r]
        return error_response("RouteLimitExceeded") if len(same_family) >= limit else None

    provider._ec2.meta.events.register_first("before-call.ec2.CreateRoute", route_limit)
    # The local route counts too: 49 node routes fill the IPv4 half.
    ipv4 = [a_route(f"10.244.{i}.0/24", instance) for i in range(limit)]

    results = provider.create_routes(table, ipv4)
    (ipv6,) = provider.create_routes(table, [a_route(world.pod_cidr_v6(0), instance)])

    assert [r.outcome for r in results].count(Outcome.OK) == limit - 1
    assert results[-1].outcome is Outcome.QUOTA_EXCEEDED
    assert ipv6.outcome is Outcome.OK
