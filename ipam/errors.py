"""The IPAM error hierarchy: one base, one type per failure a caller handles differently.

``InvalidConfig`` and its subclasses are configuration mistakes (exit 2 at start-up, or a refused
``add_cidr``); ``PoolExhausted`` means "wait for a release"; ``CIDROutsidePool`` and ``CIDRConflict``
are facts about a node's existing podCIDR that the controller reports as an Event. Every message names
the offending value and the rule it breaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipam.cidr import Network


class IPAMError(Exception):
    """Base of every error raised by the ``ipam`` package."""


class InvalidConfig(IPAMError, ValueError):
    """Cluster CIDRs, node masks or reserved ranges that cannot form a pool."""


class InvalidCIDR(InvalidConfig):
    """A value that is not a CIDR of the expected kind: unparsable, or with host bits set."""


class InvalidMask(InvalidConfig):
    """A node mask out of its family's range, shorter than its cluster CIDR's, or without a family."""


class OverlappingCIDRs(InvalidConfig):
    """Two cluster CIDRs share addresses, so one block could be handed out twice."""


class PoolExhausted(IPAMError):
    """No free node block is left (in some family, for a pool); nothing was allocated."""


class CIDROutsidePool(IPAMError):
    """A CIDR to occupy shares no address with any cluster CIDR of its family."""

    def __init__(self, cidr: Network, message: str) -> None:
        super().__init__(message)
        self.cidr = cidr


class CIDRConflict(IPAMError):
    """A CIDR to occupy overlaps an allocated block, another occupation or a reserved range."""

    def __init__(self, cidr: Network, existing: Network, reserved: bool) -> None:
        what = "a reserved range" if reserved else "already in use"
        super().__init__(f"{cidr} overlaps {existing}, which is {what}: a block has one owner")
        self.cidr = cidr
        self.existing = existing
        self.reserved = reserved
