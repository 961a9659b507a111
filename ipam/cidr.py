"""Parsing at the edge — user values become ``ipaddress`` networks once, with messages that name them —
and the two questions every layer asks of such networks: do two overlap, does one lie inside a set.

Everything past this module works on ``IPv4Network``/``IPv6Network`` values and plain block indices.
Networks of different families never overlap and never contain each other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network
from typing import TypeAlias

from ipam.errors import InvalidCIDR

Network: TypeAlias = IPv4Network | IPv6Network
CIDRLike: TypeAlias = str | IPv4Network | IPv6Network


def family(version: int) -> str:
    """``IPv4`` or ``IPv6``, for messages."""
    return f"IPv{version}"


def parse_cidr(value: CIDRLike, role: str = "CIDR") -> Network:
    """Parse ``value`` as a network; ``role`` (e.g. "cluster CIDR") names it in the error message.

    Host bits are an error, not silently cleared: ``10.0.0.1/16`` usually means a typo.
    """
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    text = str(value).strip()
    try:
        return network(text)
    except ValueError as strict_error:
        try:
            lenient = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InvalidCIDR(
                f"{role} {value!r} is not a valid CIDR: {strict_error} "
                "(expected an address/prefix such as 10.0.0.0/16 or fd00::/48)"
            ) from None
        raise InvalidCIDR(
            f"{role} {value!r} has host bits set: a CIDR must be its network address "
            f"(did you mean {lenient}?)"
        ) from None


def network(text: str) -> Network:
    """``ipaddress.ip_network(text, strict=True)``, same result and errors, without first trying IPv4
    on IPv6 text (a rebuild parses thousands of podCIDRs; a failed IPv4 parse costs an exception)."""
    try:
        return IPv6Network(text) if ":" in text else IPv4Network(text)
    except ValueError:
        return ipaddress.ip_network(text, strict=True)  # raises ip_network's own message


def _span(net: Network) -> tuple[int, int]:
    """Addresses ``[first, last + 1)`` of ``net`` as integers: cheaper than ``ipaddress``'s
    comparisons, and it grows no cached properties on the caller's objects."""
    first = int(net.network_address)
    return first, first + (1 << (net.max_prefixlen - net.prefixlen))


def overlaps(a: Network, b: Network) -> bool:
    """``a`` and ``b`` share an address (same family)."""
    if a.version != b.version:
        return False
    a_first, a_end = _span(a)
    b_first, b_end = _span(b)
    return a_first < b_end and b_first < a_end


def inside(net: Network, cidrs: Iterable[Network]) -> bool:
    """``net`` lies within one of ``cidrs`` (same family)."""
    first, end = _span(net)
    for cidr in cidrs:
        if cidr.version == net.version:
            c_first, c_end = _span(cidr)
            if c_first <= first and end <= c_end:
                return True
    return False
