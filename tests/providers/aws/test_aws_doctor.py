"""`AwsProvider.diagnose` against moto: a healthy setup passes every check; each broken one (a write the
IAM policy denies, a node subnet on another table, no managed table, a full table, an instance outside
the VPC) is its ✗ line; and diagnosing never changes a table."""

from __future__ import annotations

import ipaddress

import pytest
from awsworld import (
    CLUSTER_CIDR,
    OWNED_TAG,
    World,
    a_provider,
    enforce_iam,
    honour_dry_run,
    refuse_duplicate_ipv6_creates,
    world_on,
)

from providers import Check, CheckStatus, DiagnosisScope, Target
from providers.aws import ACTIONS

WRITES = ("CreateRoute", "ReplaceRoute", "DeleteRoute", "ModifyInstanceAttribute")


def a_healthy_world(world: World, nodes: int = 2) -> tuple[str, list[str]]:
    """A tagged table the nodes' subnet is associated with; instances with the check already off."""
    table = world.table(OWNED_TAG)
    world.ec2.associate_route_table(RouteTableId=table, SubnetId=world.subnet_id)
    instances = world.instances(nodes)
    for instance in instances:
        world.ec2.modify_instance_attribute(InstanceId=instance, SourceDestCheck={"Value": False})
    return table, instances


def scope(instances: list[str]) -> DiagnosisScope:
    return DiagnosisScope((CLUSTER_CIDR,), tuple(Target(i) for i in instances))


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def failures(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.status is CheckStatus.FAIL}


def test_a_healthy_setup_passes_every_check_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    honour_dry_run(monkeypatch)
    table, instances = a_healthy_world(world)
    before = world.raw_routes(table)
    checks = a_provider().diagnose(scope(instances))
    assert {c.status for c in checks} == {CheckStatus.PASS}, [
        c for c in checks if c.status is not CheckStatus.PASS
    ]
    named = by_name(checks)
    assert named["identity"].found.startswith("calling as arn:aws:")
    assert all(f"dry-run {api}" in named for api in WRITES)
    assert f"quota {table} IPv4" in named
    assert {f"source-dest-check {i}" for i in instances} <= set(named)
    assert world.raw_routes(table) == before


def test_a_write_the_iam_policy_denies_fails_naming_the_action(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto enforces the user's IAM policy; the policy is the documented one less ec2:ReplaceRoute."""
    honour_dry_run(monkeypatch)
    _, instances = a_healthy_world(world)
    allowed = [a for a in ACTIONS if a != "ec2:ReplaceRoute"]
    for name, value in enforce_iam(monkeypatch, allowed).items():
        monkeypatch.setenv(name, value)
    checks = a_provider().diagnose(scope(instances))
    assert set(failures(checks)) == {"dry-run ReplaceRoute"}
    denied = failures(checks)["dry-run ReplaceRoute"]
    assert "ec2:ReplaceRoute denied" in denied.found
    assert "allow ec2:ReplaceRoute" in denied.fix
    assert by_name(checks)["identity"].found.endswith("user/routectl")
    assert by_name(checks)["dry-run CreateRoute"].status is CheckStatus.PASS


def test_a_node_subnet_on_another_table_fails(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    honour_dry_run(monkeypatch)
    world.table(OWNED_TAG)  # managed, but the subnet keeps the VPC's main table
    instances = world.instances(1)
    checks = a_provider().diagnose(scope(instances))
    stray = failures(checks)["associations"]
    assert f"subnet {world.subnet_id} (node instance {instances[0]}) uses rtb-" in stray.found


def test_no_managed_table_fails_and_stops_the_table_checks(world: World) -> None:
    instances = world.instances(1)
    checks = a_provider().diagnose(scope(instances))
    assert [c.name for c in checks] == ["identity", "route-tables"]
    assert checks[1].status is CheckStatus.FAIL
    assert "tagged kubernetes.io/cluster/kube-a" in checks[1].found


def test_a_table_that_cannot_hold_a_route_per_node_fails_its_quota(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    honour_dry_run(monkeypatch)
    table, instances = a_healthy_world(world, nodes=3)
    checks = a_provider(route_table_quota=3).diagnose(scope(instances))
    assert set(failures(checks)) == {f"quota {table} IPv4"}
    assert (
        "1 route(s) now, 4 once every node is routed, quota 3"
        in failures(checks)[f"quota {table} IPv4"].found
    )


def test_source_dest_check_on_is_a_warning_and_another_vpc_a_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    honour_dry_run(monkeypatch)
    _, instances = a_healthy_world(world)
    on = world.instances(1)[0]
    elsewhere = world_on(world.ec2).instances(1)[0]
    checks = by_name(a_provider().diagnose(scope([*instances, on, elsewhere])))
    assert checks[f"source-dest-check {on}"].status is CheckStatus.WARN
    outside = checks[f"source-dest-check {elsewhere}"]
    assert outside.status is CheckStatus.FAIL
    assert f"outside {world.vpc_id}" in outside.found


def test_an_endpoint_that_ignores_dry_run_is_a_warning_and_still_changes_nothing(world: World) -> None:
    """Plain moto performs route writes despite DryRun: the requests doctor sends cannot change a table
    (CreateRoute names the local route's destination, which EC2 refuses to create again)."""
    table, instances = a_healthy_world(world)
    before = world.raw_routes(table)
    provider = a_provider()
    refuse_duplicate_ipv6_creates(provider, world, ipv4=True)
    checks = by_name(provider.diagnose(scope(instances)))
    assert checks["dry-run CreateRoute"].status is CheckStatus.WARN
    assert checks["dry-run ModifyInstanceAttribute"].status is CheckStatus.PASS
    assert world.raw_routes(table) == before
    assert ipaddress.ip_network("10.244.0.0/16") not in {ipaddress.ip_network(d) for d in before}
