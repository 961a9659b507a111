"""`CIDRPool.occupy_blocks` (the bulk path of a new leader's rebuild) is `occupy` with the same outcome.

Random lists of networks (node blocks of either family, duplicates, blocks already taken or reserved,
wider and narrower prefixes, outside ones) go to two identical pools, one by each method: both must raise
the same error (type and message) or none, and leave every block in the same state.
"""

from __future__ import annotations

import contextlib
from ipaddress import ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from ipam import CIDRPool, IPAMError, Network

CIDRS = ("10.0.0.0/27", "10.0.1.0/28", "fd00::/62")
RESERVED = ("10.0.0.24/29",)
BLOCKS = [
    *ip_network("10.0.0.0/27").subnets(new_prefix=29),
    *ip_network("10.0.1.0/28").subnets(new_prefix=29),
    *ip_network("fd00::/62").subnets(new_prefix=64),
]
NETS = st.sampled_from(
    [*BLOCKS, ip_network("10.0.0.0/28"), ip_network("10.0.0.8/30"), ip_network("10.9.0.0/29")]
)


def pool_with(taken: list[Network]) -> CIDRPool:
    pool = CIDRPool(CIDRS, node_mask_v4=29, node_mask_v6=64, reserved=RESERVED)
    for net in taken:
        with contextlib.suppress(IPAMError):
            pool.occupy(net)
    return pool


def state(pool: CIDRPool) -> list[object]:
    """Each block's answer to one more `occupy` (on a probe pool state): its error type or None."""
    probe: list[object] = []
    for block in BLOCKS:
        try:
            pool.occupy(block)
        except IPAMError as err:
            probe.append(type(err))
        else:
            probe.append(None)
            pool.release(block)
    return [*probe, pool.usage()]


@given(st.lists(st.sampled_from(BLOCKS), max_size=4), st.lists(NETS, max_size=10))
@settings(max_examples=300, deadline=None)
def test_occupy_blocks_equals_occupy(taken: list[Network], nets: list[Network]) -> None:
    bulk, one_by_one = pool_with(taken), pool_with(taken)
    errors: list[str | None] = []
    for method in (bulk.occupy_blocks, one_by_one.occupy):
        try:
            method(nets)
        except IPAMError as err:
            errors.append(f"{type(err).__name__}: {err}")
        else:
            errors.append(None)
    assert errors[0] == errors[1]
    assert state(bulk) == state(one_by_one)
