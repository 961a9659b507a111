"""CIDRSet behaviour: round-robin cursor, occupy/release semantics, exhaustion, large spaces."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from ipam import CIDRConflict, CIDROutsidePool, CIDRSet, PoolExhausted


def blocks(cidr_set: CIDRSet, count: int) -> list[str]:
    return [str(cidr_set.allocate()) for _ in range(count)]


def test_allocates_blocks_in_address_order_from_the_start() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    assert blocks(s, 3) == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    assert (s.capacity, s.used, s.free) == (256, 3, 253)


def test_returns_ipaddress_networks_for_string_input() -> None:
    assert isinstance(CIDRSet("10.0.0.0/16", 24).allocate(), IPv4Network)
    assert isinstance(CIDRSet("fd00::/48", 64).allocate(), IPv6Network)


def test_released_block_is_not_reused_until_the_cursor_wraps() -> None:
    s = CIDRSet("10.0.0.0/22", node_mask=24)
    first, _second = s.allocate(), s.allocate()
    s.release(first)
    assert blocks(s, 2) == ["10.0.2.0/24", "10.0.3.0/24"]
    assert s.allocate() == first


def test_cursor_skips_occupied_runs_after_wrapping() -> None:
    s = CIDRSet("10.0.0.0/20", node_mask=24)
    s.occupy("10.0.0.0/21")
    s.occupy("10.0.12.0/22")
    assert blocks(s, 4) == ["10.0.8.0/24", "10.0.9.0/24", "10.0.10.0/24", "10.0.11.0/24"]
    with pytest.raises(PoolExhausted, match=r"10\.0\.0\.0/20"):
        s.allocate()


def test_exhaustion_is_reported_exactly_when_every_block_is_used() -> None:
    s = CIDRSet("10.0.0.0/24", node_mask=26, reserved=["10.0.0.192/26"])
    assert s.capacity == 3
    blocks(s, 3)
    assert (s.used, s.free) == (3, 0)
    with pytest.raises(PoolExhausted):
        s.allocate()


def test_all_65536_slash24_of_10_slash8_are_handed_out_once() -> None:
    s = CIDRSet("10.0.0.0/8", node_mask=24)
    seen = {s.allocate() for _ in range(65_536)}
    assert len(seen) == 65_536
    assert all(net.subnet_of(IPv4Network("10.0.0.0/8")) for net in seen)  # type: ignore[arg-type]
    assert (s.used, s.free) == (65_536, 0)
    with pytest.raises(PoolExhausted):
        s.allocate()


def test_ipv6_slash32_in_slash64_blocks_has_2_pow_32_capacity_without_a_limit() -> None:
    s = CIDRSet("fd00:1234::/32", node_mask=64)
    assert s.capacity == 2**32
    assert blocks(s, 2) == ["fd00:1234::/64", "fd00:1234:0:1::/64"]
    s.occupy("fd00:1234:7fff:ffff::/64")
    s.occupy("fd00:1234:8000::/33")
    assert s.used == 2 + 1 + 2**31
    assert s.free == 2**32 - s.used


def test_ipv6_allocation_is_not_limited_to_16_bits_of_difference() -> None:
    s = CIDRSet("fd00::/8", node_mask=120)
    s.occupy("fd00::/9")
    assert s.allocate() == ip_network("fd80::/120")


def test_smaller_prefix_occupies_its_whole_block() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.0.64/26")
    assert s.used == 1
    assert s.allocate() == ip_network("10.0.1.0/24")


def test_larger_prefix_occupies_every_block_inside_it() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.16.0/20")
    assert s.used == 16


def test_prefix_larger_than_the_set_occupies_the_whole_set() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.0.0/8")
    assert s.free == 0
    assert s.release("10.0.0.0/16") == 0  # owned by the /8 as a whole
    assert s.release("10.0.0.0/8") == 256


def test_occupy_outside_the_set_is_reported() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    with pytest.raises(CIDROutsidePool) as raised:
        s.occupy("10.1.0.0/24")
    assert raised.value.cidr == ip_network("10.1.0.0/24")
    with pytest.raises(CIDROutsidePool):
        s.occupy("fd00::/64")


@pytest.mark.parametrize(
    ("first", "second", "existing"),
    [
        ("10.0.1.0/24", "10.0.1.0/24", "10.0.1.0/24"),
        ("10.0.1.0/24", "10.0.1.128/25", "10.0.1.0/24"),
        ("10.0.1.0/26", "10.0.1.128/26", "10.0.1.0/26"),
        ("10.0.16.0/20", "10.0.17.0/24", "10.0.16.0/20"),
        ("10.0.17.0/24", "10.0.16.0/20", "10.0.17.0/24"),
    ],
)
def test_occupying_something_already_in_use_is_a_conflict_naming_the_owner(
    first: str, second: str, existing: str
) -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy(first)
    with pytest.raises(CIDRConflict) as raised:
        s.occupy(second)
    assert raised.value.existing == ip_network(existing)
    assert not raised.value.reserved
    assert s.used == CIDRSet("10.0.0.0/16", 24, reserved=[first]).reserved


def test_occupying_a_reserved_range_is_a_conflict_marked_reserved() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24, reserved=["10.0.255.0/24"])
    with pytest.raises(CIDRConflict, match="reserved") as raised:
        s.occupy("10.0.254.0/23")
    assert raised.value.existing == ip_network("10.0.255.0/24")
    assert raised.value.reserved


def test_reserved_blocks_are_never_handed_out_nor_counted_in_capacity() -> None:
    s = CIDRSet("10.0.0.0/22", node_mask=24, reserved=["10.0.1.0/24", "10.0.2.7/32", "10.9.0.0/16"])
    assert (s.capacity, s.reserved, s.free) == (2, 2, 2)
    assert blocks(s, 2) == ["10.0.0.0/24", "10.0.3.0/24"]


def test_releasing_part_of_a_larger_occupation_frees_nothing() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.16.0/20")
    assert s.release("10.0.17.0/24") == 0
    assert s.used == 16
    assert s.release("10.0.16.0/20") == 16
    assert s.used == 0


def test_releasing_a_range_frees_everything_occupied_inside_it_except_reserved() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24, reserved=["10.0.3.0/24"])
    blocks(s, 3)
    s.occupy("10.0.4.0/22")
    s.occupy("10.0.9.0/26")
    assert s.release("10.0.0.0/20") == 3 + 4 + 1
    assert (s.used, s.reserved) == (0, 1)


def test_releasing_a_smaller_prefix_frees_only_an_occupation_inside_it() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.1.0/24")
    s.occupy("10.0.2.64/26")
    assert s.release("10.0.1.0/25") == 0
    assert s.release("10.0.2.0/25") == 1
    assert s.used == 1


def test_release_of_a_free_or_foreign_cidr_is_a_noop() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    assert s.release("10.0.5.0/24") == 0
    assert s.release("192.168.0.0/24") == 0
    assert s.release("fd00::/64") == 0
    assert s.used == 0


def test_occupy_does_not_move_the_cursor() -> None:
    s = CIDRSet("10.0.0.0/16", node_mask=24)
    s.occupy("10.0.5.0/24")
    assert blocks(s, 1) == ["10.0.0.0/24"]


def test_single_block_set_allocates_its_one_block() -> None:
    s = CIDRSet("10.0.0.0/24", node_mask=24)
    assert s.allocate() == ip_network("10.0.0.0/24")
    with pytest.raises(PoolExhausted):
        s.allocate()
