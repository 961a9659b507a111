"""`AlibabaProvider.diagnose` against the VPC emulator through the real SDK: a healthy setup passes every
check; a write RAM denies, a vSwitch bound to another table, too small a quota and no table are each a
✗ line; diagnosing never changes a table. And the emulator behaviour doctor relies on: DryRun, RAM
denials, GetCallerIdentity, vSwitch-bound custom tables."""

from __future__ import annotations

import ipaddress

import pytest

from providers import Check, CheckStatus, DiagnosisScope, Target
from providers.alibaba import AlibabaProvider
from providers.emulators.alibaba import AlibabaVpcEmulator

from .conftest import REGION, VPC, Build

CIDRS = (ipaddress.ip_network("10.244.0.0/16"),)
NODES = ("i-000001", "i-000002")


def scope(*instances: str) -> DiagnosisScope:
    return DiagnosisScope(CIDRS, tuple(Target(i, REGION) for i in instances))


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def failures(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.status is CheckStatus.FAIL}


@pytest.fixture
def nodes(emulator: AlibabaVpcEmulator, table: str) -> tuple[str, ...]:
    emulator.add_instances(VPC, *NODES)
    return NODES


def test_a_healthy_setup_passes_every_check_and_changes_nothing(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str, nodes: tuple[str, ...]
) -> None:
    before = emulator.routes(table)
    checks = provider.diagnose(scope(*nodes))
    assert {c.status for c in checks} == {CheckStatus.PASS}, [
        c for c in checks if c.status is not CheckStatus.PASS
    ]
    named = by_name(checks)
    assert named["identity"].found == f"calling as {emulator.caller_arn}"
    assert {
        "dry-run CreateRouteEntries",
        "dry-run DeleteRouteEntries",
        "associations",
        f"quota {table}",
    } <= set(named)
    assert emulator.routes(table) == before


def test_a_write_ram_denies_fails_naming_the_action(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, nodes: tuple[str, ...]
) -> None:
    emulator.deny("DeleteRouteEntries")
    checks = provider.diagnose(scope(*nodes))
    assert set(failures(checks)) == {"dry-run DeleteRouteEntries"}
    denied = failures(checks)["dry-run DeleteRouteEntries"]
    assert "vpc:DeleteRouteEntries denied: Forbidden.RAM" in denied.found
    assert "allow vpc:DeleteRouteEntries" in denied.fix


def test_identity_refused_fails(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, nodes: tuple[str, ...]
) -> None:
    emulator.deny("GetCallerIdentity")
    assert "identity" in failures(provider.diagnose(scope(*nodes)))


def test_a_node_vswitch_bound_to_an_unmanaged_table_fails(
    emulator: AlibabaVpcEmulator, make_provider: Build, table: str
) -> None:
    emulator.add_instances(VPC, "i-000009", vswitch_id="vsw-elsewhere")
    custom = emulator.add_table(VPC, "vtb-custom", vswitch_ids=("vsw-elsewhere",))
    provider = make_provider(route_table_ids=(table,))
    association = failures(provider.diagnose(scope("i-000009")))["associations"]
    assert f"vSwitch vsw-elsewhere (node instance i-000009, {VPC}) uses {custom}" in association.found


def test_a_table_too_small_for_every_node_fails_its_quota(
    emulator: AlibabaVpcEmulator, make_provider: Build, table: str, nodes: tuple[str, ...]
) -> None:
    provider = make_provider(route_table_quota=1)
    quota = failures(provider.diagnose(scope(*nodes)))[f"quota {table}"]
    assert "0 route(s) now, 2 once every node is routed, quota 1" in quota.found


def test_no_table_fails_and_stops(emulator: AlibabaVpcEmulator, make_provider: Build) -> None:
    checks = make_provider().diagnose(scope())
    assert [c.name for c in checks] == ["identity", "route-tables"]
    assert checks[1].status is CheckStatus.FAIL


# ---- the emulator behaviour doctor reads -----------------------------------------------------------


def test_emulator_dry_run_validates_and_changes_nothing(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str, nodes: tuple[str, ...]
) -> None:
    checks = by_name(provider.diagnose(scope(*nodes)))
    assert checks["dry-run CreateRouteEntries"].found == "vpc:CreateRouteEntries allowed (DryRun)"
    assert emulator.calls["CreateRouteEntries"] == 1
    assert emulator.routes(table, type_="Custom") == []


def test_emulator_dry_run_still_refuses_a_table_that_does_not_exist(emulator: AlibabaVpcEmulator) -> None:
    with pytest.raises(Exception, match="vtb-none"):
        emulator.handle(
            "CreateRouteEntries",
            {
                "DryRun": "true",
                "RouteEntries.1.RouteTableId": "vtb-none",
                "RouteEntries.1.DstCidrBlock": "10.0.0.0/24",
            },
        )


def test_emulator_ram_denial_comes_before_dry_run(emulator: AlibabaVpcEmulator, table: str) -> None:
    emulator.deny("CreateRouteEntries")
    with pytest.raises(Exception, match="not authorized") as refused:
        emulator.handle("CreateRouteEntries", {"DryRun": "true", "RouteEntries.1.RouteTableId": table})
    assert getattr(refused.value, "code", "") == "Forbidden.RAM"


def test_emulator_answers_get_caller_identity_and_lists_vswitch_bindings(
    emulator: AlibabaVpcEmulator, table: str
) -> None:
    emulator.caller_arn = "acs:ram::42:user/ops"
    identity = emulator.handle("GetCallerIdentity", {})
    assert (identity["Arn"], identity["AccountId"], identity["IdentityType"]) == (
        "acs:ram::42:user/ops",
        "42",
        "RAMUser",
    )
    emulator.add_table(VPC, "vtb-c", vswitch_ids=("vsw-1",))
    listed = emulator.handle("DescribeRouteTableList", {"VpcId": VPC})["RouterTableList"][
        "RouterTableListType"
    ]
    assert [(t["RouteTableId"], t["RouteTableType"], t["VSwitchIds"]["VSwitchId"]) for t in listed] == [
        (table, "System", []),
        ("vtb-c", "Custom", ["vsw-1"]),
    ]
    emulator.add_instances(VPC, "i-7", vswitch_id="vsw-1")
    [found] = emulator.handle("DescribeInstances", {"InstanceIds": '["i-7"]'})["Instances"]["Instance"]
    assert found["VpcAttributes"] == {"VpcId": VPC, "VSwitchId": "vsw-1"}
