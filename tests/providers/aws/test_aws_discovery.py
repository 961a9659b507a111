"""Which route tables the AWS adapter manages: discovered by the cluster tag, or named explicitly."""

from __future__ import annotations

import pytest
from awsworld import CLUSTER, OWNED_TAG, World, a_provider

from providers import ConfigurationError, RouteProvider


def test_adapter_is_built_through_the_registry_and_speaks_the_protocol(world: World) -> None:
    assert isinstance(a_provider(), RouteProvider)


def test_a_region_is_required() -> None:
    with pytest.raises(ConfigurationError, match="region"):
        a_provider(region="")


@pytest.mark.parametrize("value", ["owned", "shared"])
def test_tables_tagged_for_the_cluster_are_discovered(world: World, value: str) -> None:
    tagged = world.table({f"kubernetes.io/cluster/{CLUSTER}": value})
    world.table({"kubernetes.io/cluster/other-cluster": "owned"})
    world.table()

    assert a_provider().tables() == (tagged,)


def test_a_cluster_tag_with_another_value_is_ignored(world: World) -> None:
    world.table({f"kubernetes.io/cluster/{CLUSTER}": "unmanaged"})

    with pytest.raises(ConfigurationError):
        a_provider().tables()


def test_legacy_kubernetes_cluster_tag_is_discovered(world: World) -> None:
    legacy = world.table({"KubernetesCluster": CLUSTER})
    world.table({"KubernetesCluster": "other-cluster"})

    assert a_provider().tables() == (legacy,)


def test_every_tagged_table_is_managed_in_a_stable_order(world: World) -> None:
    tables = {world.table(OWNED_TAG), world.table(OWNED_TAG), world.table({"KubernetesCluster": CLUSTER})}

    assert a_provider().tables() == tuple(sorted(tables))


def test_discovery_can_be_limited_to_one_vpc(world: World) -> None:
    other_vpc = world.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ours = world.table(OWNED_TAG)
    world.table(OWNED_TAG, vpc_id=other_vpc)

    assert a_provider(vpc_id=world.vpc_id).tables() == (ours,)
    assert len(a_provider().tables()) == 2


def test_no_tagged_table_is_a_configuration_error_that_says_what_to_do(world: World) -> None:
    world.table()

    with pytest.raises(ConfigurationError) as raised:
        a_provider(vpc_id=world.vpc_id).tables()

    message = str(raised.value)
    assert f"kubernetes.io/cluster/{CLUSTER}=owned|shared" in message
    assert world.vpc_id in message
    assert "--route-table-id" in message


def test_explicit_table_ids_win_over_tags(world: World) -> None:
    world.table(OWNED_TAG)
    untagged = world.table()

    assert a_provider(route_table_ids=(untagged,)).tables() == (untagged,)


def test_a_missing_explicit_table_is_a_configuration_error_naming_it(world: World) -> None:
    present = world.table()
    missing = "rtb-0123456789abcdef0"

    with pytest.raises(ConfigurationError, match=missing):
        a_provider(route_table_ids=(present, missing)).tables()
