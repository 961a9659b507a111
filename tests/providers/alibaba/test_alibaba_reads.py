"""Tables, listing, ownership marks, providerIDs and configuration of the Alibaba adapter."""

from __future__ import annotations

import ipaddress

import pytest

from providers.alibaba import AlibabaProvider, Marks
from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.errors import ConfigurationError, NotFound, OutsideNetwork, Throttled
from providers.model import RouteState, Target
from tests.providers.configured import configured

from .conftest import CLUSTER, REGION, VPC, Build, a_route, instances_for


def test_tables_are_discovered_for_the_vpc(emulator: AlibabaVpcEmulator, make_provider: Build) -> None:
    emulator.add_table(VPC, "vtb-b")
    emulator.add_table(VPC, "vtb-a")
    emulator.add_table("vpc-elsewhere", "vtb-other")

    assert make_provider().tables() == ["vtb-a", "vtb-b"]


def test_a_vpc_without_tables_is_a_configuration_error(make_provider: Build) -> None:
    with pytest.raises(ConfigurationError, match=VPC):
        make_provider().tables()


def test_an_explicit_table_that_does_not_exist_is_a_configuration_error(
    make_provider: Build, table: str
) -> None:
    with pytest.raises(ConfigurationError, match="vtb-missing"):
        make_provider(route_table_ids=(table, "vtb-missing")).tables()


def test_explicit_tables_are_used_as_given(emulator: AlibabaVpcEmulator, make_provider: Build) -> None:
    emulator.add_table(VPC, "vtb-a")
    emulator.add_table(VPC, "vtb-b")

    assert make_provider(route_table_ids=("vtb-b",)).tables() == ["vtb-b"]


def test_listing_pages_through_every_custom_route(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    for i in range(250):
        emulator.add_route(table, f"10.1.{i}.0/24", f"i-{i}")
    emulator.reset_calls()

    routes = provider.list_routes(table)

    assert len(routes) == 250
    assert emulator.calls["DescribeRouteEntryList"] == 3


def test_system_routes_are_not_listed_and_foreign_routes_are_not_owned(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.add_route(table, "10.7.0.0/24", "i-ccm")
    emulator.add_route(table, "10.8.0.0/24", "i-x", description="routectl cluster=other node=n1")
    emulator.add_route(table, "10.9.0.0/24", "i-y", description=Marks(CLUSTER).description("n2"))

    routes = {str(r.destination): r for r in provider.list_routes(table)}

    assert set(routes) == {"10.7.0.0/24", "10.8.0.0/24", "10.9.0.0/24"}
    assert [routes[d].owned for d in sorted(routes)] == [False, False, True]
    assert routes["10.9.0.0/24"].node == "n2"
    assert routes["10.9.0.0/24"].target == Target("i-y", zone=REGION)


def test_created_routes_carry_cluster_and_node_marks(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    route = a_route(3, node="worker-3")
    instances_for(emulator, [route])

    provider.create_routes(table, [route])

    [entry] = emulator.routes(table, type_="Custom")
    assert (entry.name, entry.description) == (
        f"routectl-{CLUSTER}-worker-3",
        f"routectl cluster={CLUSTER} node=worker-3",
    )


def test_marks_fit_the_api_limits_for_long_node_names() -> None:
    marks, node = Marks(CLUSTER), "n" * 253

    assert len(marks.name(node)) == 128
    assert len(marks.description(node)) == 256
    assert marks.owner(marks.description(node)) is not None


@pytest.mark.parametrize(
    ("status", "state"),
    [("Creating", RouteState.PENDING), ("Pending", RouteState.PENDING), ("Deleting", RouteState.DELETING)],
)
def test_entry_status_maps_to_route_state(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str, status: str, state: RouteState
) -> None:
    emulator.add_route(table, "10.3.0.0/24", "i-1", status=status)

    assert provider.list_routes(table)[0].state is state


def test_throttled_listing_raises_throttled_with_retry_after(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.throttle("DescribeRouteEntryList", retry_after_ms=2000)

    with pytest.raises(Throttled) as raised:
        provider.list_routes(table)

    assert raised.value.retry_after == 2.0


def test_limits_are_conservative_and_serialise_writers(make_provider: Build) -> None:
    limits = make_provider(route_table_quota=500).limits

    assert (limits.max_batch, limits.writers_per_table, limits.routes_per_table) == (50, 1, 500)
    assert (limits.write_rate, limits.write_burst, limits.read_rate, limits.read_burst) == (5.0, 10, 20.0, 40)


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"region": ""}, "region"),
        ({"vpc_id": ""}, "vpc"),
        ({"cluster_name": "has space"}, "cluster name"),
    ],
)
def test_unusable_configuration_is_rejected_at_build(settings: dict[str, str], names: str) -> None:
    base = {"region": REGION, "vpc_id": VPC, "endpoint": "127.0.0.1:1"}
    values = {**base, **settings}
    with pytest.raises(ConfigurationError, match=names):
        configured("alibaba", values.pop("cluster_name", CLUSTER), **values).build()


def test_destinations_are_compared_as_networks(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.add_route(table, "fd00:1::/64", "i-6", description=Marks(CLUSTER).description("v6"))

    [route] = provider.list_routes(table)

    assert route.destination == ipaddress.ip_network("fd00:1::/64")


def test_observers_see_every_call_with_its_code(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    seen: list[tuple[str, str]] = []
    provider.observe(lambda api, code, _seconds: seen.append((api, code)))
    emulator.throttle("DescribeRouteEntryList")

    with pytest.raises(Throttled):
        provider.list_routes(table)
    provider.list_routes(table)

    assert seen == [("DescribeRouteEntryList", "Throttling.User"), ("DescribeRouteEntryList", "200")]


def test_an_instance_in_another_vpc_is_refused_naming_both_vpcs(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider
) -> None:
    emulator.add_instances("vpc-elsewhere", "i-stray")
    emulator.add_instances(VPC, "i-home")

    provider.prepare_target(provider.target_for("i-home"))
    with pytest.raises(OutsideNetwork) as raised:
        provider.prepare_target(provider.target_for("i-stray"))

    assert (raised.value.network, raised.value.managed) == ("vpc-elsewhere", VPC)
    assert emulator.calls["DescribeInstances"] == 2
    assert "CreateRouteEntries" not in emulator.calls


def test_a_missing_instance_is_not_found(provider: AlibabaProvider) -> None:
    with pytest.raises(NotFound, match="i-nowhere"):
        provider.prepare_target(provider.target_for("i-nowhere"))
