"""The same-family network questions every layer asks through `ipam`: overlap and containment."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from ipam import inside, overlaps

CLUSTER = (ip_network("10.244.0.0/16"), ip_network("fd00::/48"))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("10.244.1.0/24", "10.244.1.0/24", True),
        ("10.244.1.0/24", "10.244.0.0/16", True),
        ("10.244.0.0/16", "10.244.1.128/25", True),
        ("10.244.1.0/24", "10.244.2.0/24", False),
        ("10.244.1.0/24", "fd00::/48", False),
        ("::/0", "10.0.0.0/8", False),
    ],
)
def test_overlaps_is_symmetric_and_false_across_families(a: str, b: str, expected: bool) -> None:
    assert overlaps(ip_network(a), ip_network(b)) is expected
    assert overlaps(ip_network(b), ip_network(a)) is expected


def test_inside_is_family_aware() -> None:
    assert inside(ip_network("fd00::/64"), CLUSTER)
    assert not inside(ip_network("fd00::/64"), CLUSTER[:1])
    assert inside(ip_network("10.244.7.0/24"), CLUSTER)


def test_a_network_larger_than_every_cidr_is_not_inside() -> None:
    assert not inside(ip_network("10.0.0.0/8"), CLUSTER)
    assert overlaps(ip_network("10.0.0.0/8"), CLUSTER[0])
