"""Parsing at the edge — user values become ``ipaddress`` networks once, with messages that name them —
and the two questions every layer asks of such networks: do two overlap, does one lie inside a set.

Everything past this module works on ``IPv4Network``/``IPv6Network`` values and plain block indices.
Networks of different families never overlap and never contain each other.
"""

from __future__ import annotations

import ipaddress
import re
import socket
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
    """``ipaddress.ip_network(text, strict=True)``: the same result and the same errors, faster for
    the canonical IPv4 form every podCIDR has (a new leader parses thousands of them): anything else
    goes to ``ipaddress``, which also words every error."""
    fast = _canonical_v6(text) if ":" in text else _canonical_v4(text)
    if fast is not None:
        return fast
    try:
        return IPv6Network(text) if ":" in text else IPv4Network(text)
    except ValueError:
        return ipaddress.ip_network(text, strict=True)  # raises ip_network's own message


def _canonical_v4(text: str) -> IPv4Network | None:
    """``a.b.c.d/n`` in canonical form (decimal octets 0-255 without leading zeros, prefix 0-32 without
    leading zeros, no host bits) as a network; None for anything else, valid or not."""
    match = _CANONICAL_V4.fullmatch(text)
    if match is None:
        return None
    a, b, c, d, bits = map(int, match.groups())
    if a > 255 or b > 255 or c > 255 or d > 255 or bits > 32:
        return None
    value = a << 24 | b << 16 | c << 8 | d
    if value & ((1 << (32 - bits)) - 1):
        return None  # host bits set: ipaddress words the error
    return IPv4Network((value, bits))


def _canonical_v6(text: str) -> IPv6Network | None:
    """``hex:groups::/n`` (no embedded IPv4, no scope, prefix without leading zeros, no host bits) as
    a network, the address read by the C library; None for anything else, valid or not."""
    match = _PLAIN_V6.fullmatch(text)
    if match is None:
        return None
    address, bits = match.group(1), int(match.group(2))
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except OSError:
        return None
    if bits > 128 or value & ((1 << (128 - bits)) - 1):
        return None
    return IPv6Network((value, bits))


_OCTET = "(0|[1-9][0-9]{0,2})"
_CANONICAL_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/(0|[1-9][0-9]?)")
_PLAIN_V6 = re.compile(r"([0-9a-fA-F:]{2,39})/(0|[1-9][0-9]{0,2})")


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
    return Spans(cidrs).containing(net) is not None


class Spans:
    """Fixed networks kept as integer spans, for asking ``inside``/``overlaps`` of many networks
    against the same ones (a new leader judges thousands of podCIDRs against the pool's rules)."""

    __slots__ = ("_spans",)

    def __init__(self, nets: Iterable[Network]) -> None:
        self._spans = tuple((net.version, *_span(net), net) for net in nets)

    def containing(self, net: Network) -> Network | None:
        """The first network that contains ``net`` (same family), if any."""
        version = net.version
        first, end = _span(net)
        for v, c_first, c_end, cidr in self._spans:
            if v == version and c_first <= first and end <= c_end:
                return cidr
        return None

    def overlapping(self, net: Network) -> Network | None:
        """The first network that shares an address with ``net`` (same family), if any."""
        version = net.version
        first, end = _span(net)
        for v, c_first, c_end, cidr in self._spans:
            if v == version and first < c_end and c_first < end:
                return cidr
        return None
