"""Every validation rule of the ipam package, table-driven: the error type and that the message
names the offending value and the rule."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ipam import (
    CIDRPool,
    CIDRSet,
    InvalidCIDR,
    InvalidConfig,
    InvalidMask,
    IPAMError,
    OverlappingCIDRs,
    validate,
)

INVALID = [
    pytest.param(
        ["10.0.0.0/33"], {}, InvalidCIDR, ["10.0.0.0/33", "not a valid CIDR"], id="v4-prefix-too-long"
    ),
    pytest.param(
        ["fd00::/129"], {}, InvalidCIDR, ["fd00::/129", "not a valid CIDR"], id="v6-prefix-too-long"
    ),
    pytest.param(["ten.0.0.0/8"], {}, InvalidCIDR, ["ten.0.0.0/8", "not a valid CIDR"], id="unparsable"),
    pytest.param(
        ["10.0.0.1/16"], {}, InvalidCIDR, ["10.0.0.1/16", "host bits", "10.0.0.0/16"], id="host-bits"
    ),
    pytest.param(["fd00::1/48"], {}, InvalidCIDR, ["fd00::1/48", "host bits"], id="v6-host-bits"),
    pytest.param(
        ["10.0.0.0/16"],
        {"reserved": ["10.0.0.0/40"]},
        InvalidCIDR,
        ["reserved CIDR", "10.0.0.0/40"],
        id="bad-reserved",
    ),
    pytest.param(
        ["10.0.0.0/16"],
        {"node_mask_v4": 8},
        InvalidMask,
        ["/8", "10.0.0.0/16", "shorter"],
        id="v4-mask-shorter-than-cluster",
    ),
    pytest.param(
        ["fd00::/48"],
        {"node_mask_v6": 40},
        InvalidMask,
        ["/40", "fd00::/48", "shorter"],
        id="v6-mask-shorter-than-cluster",
    ),
    pytest.param(
        ["10.0.0.0/16"],
        {"node_mask_v4": 33},
        InvalidMask,
        ["/33", "IPv4", "between 0 and 32"],
        id="v4-mask-out-of-range",
    ),
    pytest.param(
        ["fd00::/48"],
        {"node_mask_v6": 129},
        InvalidMask,
        ["/129", "IPv6", "between 0 and 128"],
        id="v6-mask-out-of-range",
    ),
    pytest.param(
        ["10.0.0.0/16"], {"node_mask_v4": -1}, InvalidMask, ["/-1", "out of range"], id="negative-mask"
    ),
    pytest.param(
        ["10.0.0.0/16"],
        {"node_mask_v6": 64},
        InvalidMask,
        ["/64", "IPv6", "no IPv6 cluster CIDR"],
        id="v6-mask-without-v6-cidr",
    ),
    pytest.param(
        ["fd00::/48"],
        {"node_mask_v4": 24},
        InvalidMask,
        ["/24", "IPv4", "no IPv4 cluster CIDR"],
        id="v4-mask-without-v4-cidr",
    ),
    pytest.param(
        ["10.0.0.0/16", "10.0.128.0/17"],
        {},
        OverlappingCIDRs,
        ["10.0.0.0/16", "10.0.128.0/17", "overlap"],
        id="nested-cidrs",
    ),
    pytest.param(
        ["10.0.0.0/16", "10.0.0.0/16"], {}, OverlappingCIDRs, ["10.0.0.0/16", "overlap"], id="duplicate-cidrs"
    ),
    pytest.param(
        ["fd00::/48", "fd00:0:0:8000::/49"], {}, OverlappingCIDRs, ["fd00::/48", "overlap"], id="v6-overlap"
    ),
    pytest.param([], {}, InvalidConfig, ["no cluster CIDR"], id="no-cidr"),
]


@pytest.mark.parametrize(("cidrs", "options", "error", "words"), INVALID)
def test_invalid_definition_is_refused_naming_value_and_rule(
    cidrs: list[str], options: dict[str, Any], error: type[IPAMError], words: list[str]
) -> None:
    with pytest.raises(error) as raised:
        validate(cidrs, **options)
    assert all(word in str(raised.value) for word in words), str(raised.value)


@pytest.mark.parametrize(("cidrs", "options", "error", "words"), INVALID)
def test_pool_constructor_applies_the_same_rules(
    cidrs: list[str], options: dict[str, Any], error: type[IPAMError], words: list[str]
) -> None:
    with pytest.raises(error):
        CIDRPool(cidrs, **options)


def test_configuration_errors_are_value_errors_for_generic_callers() -> None:
    with pytest.raises(ValueError, match="host bits"):
        validate(["10.0.0.1/8"])


def test_unset_masks_take_the_kubernetes_defaults() -> None:
    config = validate(["10.0.0.0/16", "fd00::/48"])
    assert (config.node_mask_v4, config.node_mask_v6) == (24, 64)


def test_default_mask_still_must_fit_the_cluster_cidr() -> None:
    with pytest.raises(InvalidMask, match="/24"):
        validate(["10.0.0.0/25"])


def test_reserved_range_outside_every_cluster_cidr_is_a_warning_not_an_error() -> None:
    config = validate(["10.0.0.0/16"], reserved=["192.168.0.0/16", "fd00::/64", "10.0.1.0/24"])
    assert config.warnings == (
        "reserved CIDR 192.168.0.0/16 lies outside every cluster CIDR: it has no effect",
        "reserved CIDR fd00::/64 lies outside every cluster CIDR: it has no effect",
    )
    assert CIDRPool(["10.0.0.0/16"], reserved=["192.168.0.0/16"]).warnings == config.warnings[:1]


def test_validate_parses_strings_into_networks_in_order() -> None:
    config = validate(["fd00::/48", "10.0.0.0/16"], reserved=["10.0.255.0/24"])
    assert [str(c) for c in config.cidrs] == ["fd00::/48", "10.0.0.0/16"]
    assert [str(r) for r in config.reserved] == ["10.0.255.0/24"]


@pytest.mark.parametrize(
    ("cidr", "node_mask", "error"),
    [
        ("10.0.0.0/16", 15, InvalidMask),
        ("10.0.0.0/16", 33, InvalidMask),
        ("10.0.0.0/16", True, InvalidMask),
        ("10.0.0.1/16", 24, InvalidCIDR),
    ],
)
def test_cidrset_validates_its_own_arguments(cidr: str, node_mask: int, error: type[IPAMError]) -> None:
    with pytest.raises(error):
        CIDRSet(cidr, node_mask=node_mask)


def test_add_cidr_refuses_overlap_and_leaves_pool_unchanged() -> None:
    pool = CIDRPool(["10.0.0.0/16"])
    with pytest.raises(OverlappingCIDRs, match=re.escape("10.0.0.0/8")):
        pool.add_cidr("10.0.0.0/8")
    with pytest.raises(InvalidMask, match=re.escape("10.1.0.0/25")):
        pool.add_cidr("10.1.0.0/25")
    assert [str(c) for c in pool.cidrs] == ["10.0.0.0/16"]
