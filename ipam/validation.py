"""Validate cluster CIDRs, node masks and reserved ranges once, without building a pool.

``validate`` is what the config layer calls (and what ``CIDRPool`` calls first): it returns a
``PoolConfig`` of parsed networks or raises an ``InvalidConfig`` subclass whose message names the value
and the rule. Problems that do not stop a pool from working — a reserved range outside every cluster
CIDR — come back as ``PoolConfig.warnings`` for the caller to log; nothing is printed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from ipam.cidr import CIDRLike, Network, family, overlaps, parse_cidr
from ipam.cidrset import check_node_mask
from ipam.errors import InvalidConfig, InvalidMask, OverlappingCIDRs

DEFAULT_NODE_MASK_V4 = 24
DEFAULT_NODE_MASK_V6 = 64


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """A validated pool definition: cluster CIDRs in the order given, masks, reserved ranges."""

    cidrs: tuple[Network, ...]
    node_mask_v4: int
    node_mask_v6: int
    reserved: tuple[Network, ...]
    warnings: tuple[str, ...]

    def node_mask(self, version: int) -> int:
        return self.node_mask_v4 if version == 4 else self.node_mask_v6


def check_disjoint(cidrs: Iterable[Network]) -> None:
    """Raise ``OverlappingCIDRs`` if two cluster CIDRs share an address."""
    for a, b in combinations(cidrs, 2):
        if overlaps(a, b):
            raise OverlappingCIDRs(
                f"cluster CIDRs {a} and {b} overlap: every address belongs to one cluster CIDR"
            )


def validate(
    cluster_cidrs: Iterable[CIDRLike],
    *,
    node_mask_v4: int | None = None,
    node_mask_v6: int | None = None,
    reserved: Iterable[CIDRLike] = (),
) -> PoolConfig:
    """Check a pool definition and parse it.

    A node mask left as ``None`` takes its default (/24 for IPv4, /64 for IPv6); a mask given
    explicitly for a family that has no cluster CIDR is an error, since it is surely a mistake.
    """
    cidrs = tuple(parse_cidr(c, "cluster CIDR") for c in cluster_cidrs)
    if not cidrs:
        raise InvalidConfig("no cluster CIDR given: at least one IPv4 or IPv6 CIDR is required")
    masks = {
        4: (node_mask_v4, DEFAULT_NODE_MASK_V4),
        6: (node_mask_v6, DEFAULT_NODE_MASK_V6),
    }
    for version, (given, default) in masks.items():
        own = [c for c in cidrs if c.version == version]
        if given is not None and not own:
            raise InvalidMask(
                f"node mask /{given} is given for {family(version)} but no {family(version)} "
                "cluster CIDR is configured: set a cluster CIDR of that family or drop the mask"
            )
        for cidr in own:
            check_node_mask(cidr, default if given is None else given)
    check_disjoint(cidrs)
    parsed_reserved = tuple(parse_cidr(r, "reserved CIDR") for r in reserved)
    warnings = tuple(
        f"reserved CIDR {r} lies outside every cluster CIDR: it has no effect"
        for r in parsed_reserved
        if not any(overlaps(r, c) for c in cidrs)
    )
    return PoolConfig(
        cidrs=cidrs,
        node_mask_v4=DEFAULT_NODE_MASK_V4 if node_mask_v4 is None else node_mask_v4,
        node_mask_v6=DEFAULT_NODE_MASK_V6 if node_mask_v6 is None else node_mask_v6,
        reserved=parsed_reserved,
        warnings=warnings,
    )
