"""CIDRPool behaviour: dual-stack all-or-nothing, CIDRs used in order, reserved ranges, add_cidr,
rebuild by occupy, and the usage summary."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from ipam import CIDRConflict, CIDROutsidePool, CIDRPool, CIDRUsage, PoolExhausted


def test_dual_stack_allocation_returns_one_block_per_family_ipv4_first() -> None:
    pool = CIDRPool(["fd00::/48", "10.0.0.0/16"], node_mask_v4=24, node_mask_v6=64)
    assert pool.allocate() == (ip_network("10.0.0.0/24"), ip_network("fd00::/64"))
    assert pool.families == (4, 6)


def test_single_stack_pool_returns_a_one_tuple() -> None:
    assert CIDRPool(["fd00::/48"]).allocate() == (ip_network("fd00::/64"),)


def test_exhausted_family_rolls_back_the_other_family() -> None:
    pool = CIDRPool(["10.0.0.0/16", "fd00::/63"], node_mask_v6=64)
    pool.allocate()
    pool.allocate()
    before = pool.usage()
    with pytest.raises(PoolExhausted, match="IPv6"):
        pool.allocate()
    assert pool.usage() == before
    pool.release("fd00::/64")
    assert pool.allocate() == (ip_network("10.0.2.0/24"), ip_network("fd00::/64"))


def test_cluster_cidrs_of_a_family_are_used_in_the_order_given() -> None:
    pool = CIDRPool(["10.1.0.0/24", "10.0.0.0/24"], node_mask_v4=25)
    assert [pool.allocate()[0] for _ in range(4)] == [
        ip_network(c) for c in ("10.1.0.0/25", "10.1.0.128/25", "10.0.0.0/25", "10.0.0.128/25")
    ]
    pool.release("10.1.0.0/25")
    assert pool.allocate() == (ip_network("10.1.0.0/25"),)


def test_reserved_ranges_are_never_allocated() -> None:
    pool = CIDRPool(["10.0.0.0/22"], reserved=["10.0.0.0/23", "10.0.3.0/24"])
    assert pool.allocate() == (ip_network("10.0.2.0/24"),)
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_add_cidr_grows_a_full_pool_and_takes_reserved_ranges_into_account() -> None:
    pool = CIDRPool(["10.0.0.0/24"], reserved=["10.1.0.0/24"])
    pool.allocate()
    with pytest.raises(PoolExhausted):
        pool.allocate()
    pool.add_cidr("10.1.0.0/23")
    assert pool.allocate() == (ip_network("10.1.1.0/24"),)
    assert pool.cidrs == (ip_network("10.0.0.0/24"), ip_network("10.1.0.0/23"))


def test_add_cidr_of_a_new_family_makes_allocation_dual_stack_with_default_mask() -> None:
    pool = CIDRPool(["10.0.0.0/16"])
    pool.add_cidr(ip_network("fd00::/48"))
    assert pool.allocate() == (ip_network("10.0.0.0/24"), ip_network("fd00::/64"))


def test_rebuild_by_occupying_node_cidrs_continues_without_duplicates() -> None:
    pool = CIDRPool(["10.0.0.0/16", "fd00::/48"])
    pool.occupy(["10.0.0.0/24", "fd00::/64"])
    pool.occupy(("10.0.1.0/24", "fd00:0:0:1::/64"))
    assert pool.allocate() == (ip_network("10.0.2.0/24"), ip_network("fd00:0:0:2::/64"))


def test_occupy_of_a_duplicate_pod_cidr_is_a_conflict_and_changes_nothing() -> None:
    pool = CIDRPool(["10.0.0.0/16", "fd00::/48"])
    pool.occupy(["10.0.0.0/24", "fd00::/64"])
    before = pool.usage()
    with pytest.raises(CIDRConflict) as raised:
        pool.occupy(["10.0.5.0/24", "fd00::/64"])
    assert raised.value.existing == ip_network("fd00::/64")
    assert pool.usage() == before


def test_occupy_of_the_same_cidr_twice_in_one_call_is_a_conflict_and_changes_nothing() -> None:
    pool = CIDRPool(["10.0.0.0/16"])
    with pytest.raises(CIDRConflict):
        pool.occupy(["10.0.7.0/24", "10.0.7.0/24"])
    assert pool.usage()[0].used == 0


def test_occupy_outside_every_cluster_cidr_is_reported_and_changes_nothing() -> None:
    pool = CIDRPool(["10.0.0.0/16"])
    with pytest.raises(CIDROutsidePool, match="outside every IPv4 cluster CIDR") as raised:
        pool.occupy(["10.0.1.0/24", "192.168.0.0/24"])
    assert raised.value.cidr == ip_network("192.168.0.0/24")
    assert pool.usage()[0].used == 0


def test_occupy_spanning_two_cluster_cidrs_occupies_both_parts() -> None:
    pool = CIDRPool(["10.0.0.0/24", "10.0.1.0/24"], node_mask_v4=25)
    pool.occupy("10.0.0.0/23")
    assert [u.used for u in pool.usage()] == [2, 2]
    assert pool.release("10.0.0.0/23") == 4


def test_usage_reports_capacity_use_and_reservation_per_cluster_cidr() -> None:
    pool = CIDRPool(["10.0.0.0/16", "fd00::/48"], reserved=["10.0.255.0/24"])
    pool.allocate()
    assert pool.usage() == (
        CIDRUsage(ip_network("10.0.0.0/16"), 24, capacity=255, used=1, free=254, reserved=1),
        CIDRUsage(ip_network("fd00::/48"), 64, capacity=65_536, used=1, free=65_535, reserved=0),
    )


def test_release_returns_the_blocks_freed_across_families() -> None:
    pool = CIDRPool(["10.0.0.0/16", "fd00::/48"])
    nets = pool.allocate()
    assert pool.release(nets) == 2
    assert pool.release(nets) == 0
