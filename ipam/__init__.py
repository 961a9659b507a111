"""CIDR allocation for node podCIDRs: one-CIDR sets, a multi-CIDR dual-stack pool, validation.

Public API (docs/architecture.md, "ipam")::

    s = CIDRSet("10.0.0.0/16", node_mask=24)
    net = s.allocate(); s.occupy(net); s.release(net); s.capacity, s.used, s.free
    pool = CIDRPool(["10.0.0.0/16", "fd00::/48"], node_mask_v4=24, node_mask_v6=64,
                    reserved=["10.0.255.0/24"])
    nets = pool.allocate(); pool.occupy(nets); pool.release(nets); pool.add_cidr("10.1.0.0/16")
    pool.occupy_blocks(blocks)  # ``occupy`` in one pass: a new leader's thousands of node blocks

Values in: ``str`` or ``ipaddress`` networks; values out: ``ipaddress`` networks.
``overlaps(a, b)`` and ``inside(net, cidrs)`` answer the same-family questions every layer asks;
``Spans(cidrs)`` answers them for many networks against the same fixed ones.

Semantics:
- ``allocate`` is round-robin like Kubernetes' cidrset: the first free block at or after a cursor,
  which then moves past it, so a released block is reused only once the cursor wraps. The search is
  O(log n) in occupied runs and memory grows with use, not capacity (an IPv6 /32 in /64s works).
- ``occupy`` takes any prefix overlapping the pool: a smaller one takes its whole block, a larger one
  every block inside it. ``release(x)`` frees what was occupied by prefixes inside ``x`` — never part
  of a larger occupation, never a reserved range — and returns the number of blocks freed.
- Reserved ranges are never handed out and are not part of ``capacity``; ``used + free == capacity``.
- ``CIDRPool.allocate`` returns one block per family (IPv4 first) or raises ``PoolExhausted`` having
  changed nothing; ``occupy`` likewise is all-or-nothing.
- Node masks: ``None`` means the default (/24, /64); a mask given for a family without a cluster CIDR
  is an error. ``validate`` checks a definition without building a pool (``CIDRPool`` calls it).
- Not thread-safe: one caller (the controller's allocation loop) at a time.

Errors (all ``IPAMError``):
- ``InvalidConfig`` (also a ``ValueError``) — configuration that cannot form a pool; subclasses
  ``InvalidCIDR`` (unparsable, host bits set), ``InvalidMask`` (out of the family's range, shorter than
  the cluster mask, given for a family with no cluster CIDR), ``OverlappingCIDRs``.
- ``PoolExhausted`` — no free block (in some family); nothing allocated.
- ``CIDROutsidePool`` — ``occupy`` of a CIDR sharing no address with any cluster CIDR (``.cidr``).
- ``CIDRConflict`` — ``occupy`` of a CIDR overlapping a block in use or reserved (``.cidr``,
  ``.existing``, ``.reserved``): the controller reports it as an Event.
"""

from ipam.cidr import CIDRLike, Network, Spans, inside, network, overlaps, parse_cidr
from ipam.cidrset import CIDRSet
from ipam.errors import (
    CIDRConflict,
    CIDROutsidePool,
    InvalidCIDR,
    InvalidConfig,
    InvalidMask,
    IPAMError,
    OverlappingCIDRs,
    PoolExhausted,
)
from ipam.pool import CIDRPool, CIDRUsage
from ipam.validation import DEFAULT_NODE_MASK_V4, DEFAULT_NODE_MASK_V6, PoolConfig, validate

__all__ = [
    "DEFAULT_NODE_MASK_V4",
    "DEFAULT_NODE_MASK_V6",
    "CIDRConflict",
    "CIDRLike",
    "CIDROutsidePool",
    "CIDRPool",
    "CIDRSet",
    "CIDRUsage",
    "IPAMError",
    "InvalidCIDR",
    "InvalidConfig",
    "InvalidMask",
    "Network",
    "OverlappingCIDRs",
    "PoolConfig",
    "PoolExhausted",
    "Spans",
    "inside",
    "network",
    "overlaps",
    "parse_cidr",
    "validate",
]
