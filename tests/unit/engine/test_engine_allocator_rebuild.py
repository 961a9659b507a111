"""`Allocator.rebuild` (bulk occupancy, precomputed spans) against a straightforward reference.

The reference judges every podCIDR with `ipaddress` alone, nodes in (creationTimestamp, name) order,
one rule after the other; the rebuilt pool must hold exactly the blocks it says are owned (plus the
reserved ones) and the Events must reject exactly the podCIDRs it rejects, for the same rules.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from ipaddress import ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from ipam import CIDRConflict, CIDRPool, Network
from routectl.cluster import Node
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.allocator import Allocator
from routectl.metrics import Metrics
from routectl.reasons import Reason

CIDRS = ("10.0.0.0/26", "fd00::/61")
MASKS = {4: 29, 6: 64}
RESERVED = ("10.0.0.56/30", "fd00:0:0:6::/64")
BLOCKS = [b for c in CIDRS for b in ip_network(c).subnets(new_prefix=MASKS[ip_network(c).version])]
PODCIDRS = st.sampled_from(
    [
        *(str(b) for b in BLOCKS),
        "fd00:0:0:1:0::/64",  # another spelling of fd00:0:0:1::/64
        "10.0.1.0/29",  # outside
        "fd01::/64",
        "10.0.0.0/28",  # wrong size
        "10.0.0.8/30",
        "fd00::/63",
        "10.0.0.1/29",  # host bits: malformed
        "x",
    ]
)
NODES = st.lists(
    st.tuples(st.lists(PODCIDRS, max_size=3), st.integers(0, 3)),
    max_size=12,
)


class Fence:
    def check(self) -> None:
        """Never closed: rebuild writes nothing."""


def reference(nodes: list[Node]) -> tuple[dict[Network, str], Counter[tuple[str, str, str]]]:
    """(block → owner, rejected (node, podCIDR, rule)) by the rules of `routectl/engine/ownership.py`."""
    cidrs = [ip_network(c) for c in CIDRS]
    reserved = [ip_network(r) for r in RESERVED]
    owners: dict[Network, str] = {}
    rejected: Counter[tuple[str, str, str]] = Counter()
    for node in sorted(nodes, key=lambda n: (n.created, n.name)):
        seen: list[Network] = []
        for text in node.pod_cidrs:
            try:
                net = ip_network(text)
            except ValueError:
                rejected[node.name, text, "malformed"] += 1
                continue
            if not any(c.version == net.version and net.subnet_of(c) for c in cidrs):  # type: ignore[arg-type]
                rejected[node.name, text, "outside"] += 1
            elif net.prefixlen != MASKS[net.version]:
                rejected[node.name, text, "wrong-size"] += 1
            elif any(r.version == net.version and r.overlaps(net) for r in reserved):  # type: ignore[arg-type]
                rejected[node.name, text, "reserved"] += 1
            elif net in seen or net in owners:
                rejected[node.name, text, "duplicate"] += 1
                if net not in seen:
                    seen.append(net)
            else:
                owners[net] = node.name
                seen.append(net)
    return owners, rejected


@given(NODES, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_rebuild_occupies_and_rejects_exactly_what_the_reference_does(
    specs: list[tuple[list[str], int]], rng: object
) -> None:
    cluster = MemoryCluster()
    nodes = [
        cluster.add_node(f"n{i}", pod_cidrs=cidrs, created=float(created))
        for i, (cidrs, created) in enumerate(specs)
    ]
    pool = CIDRPool(CIDRS, node_mask_v4=MASKS[4], node_mask_v6=MASKS[6], reserved=RESERVED)
    allocator = Allocator(cluster, pool, Fence(), Metrics(), exclude_label=("x", "y"))
    shuffled = list(nodes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    allocator.rebuild(shuffled)

    owners, rejected = reference(nodes)
    pattern = re.compile(r"podCIDR (\S+) rejected \(([\w-]+)\)")
    said: Counter[tuple[str, str, str]] = Counter()
    for e in cluster.events:  # identical Events are counted on one (as the API server does)
        if e.reason == Reason.CIDR_NOT_AVAILABLE.value:
            said[(e.node, *pattern.match(e.message).groups())] += e.count  # type: ignore[union-attr]
    assert said == rejected
    reserved = [ip_network(r) for r in RESERVED]
    for block in BLOCKS:  # taken exactly when owned or reserved: occupying it again conflicts
        taken = block in owners or any(block.overlaps(r) for r in reserved if r.version == block.version)  # type: ignore[arg-type]
        try:
            pool.occupy(block)
        except CIDRConflict:
            assert taken, f"{block} is held but nobody owns it"
        else:
            assert not taken, f"{block} is owned or reserved but was free"


def test_rebuild_leaves_the_garbage_collector_as_it_found_it() -> None:
    cluster = MemoryCluster()
    cluster.add_node("a", pod_cidrs=("10.0.0.0/29",))
    pool = CIDRPool(CIDRS, node_mask_v4=MASKS[4], node_mask_v6=MASKS[6], reserved=RESERVED)
    allocator = Allocator(cluster, pool, Fence(), Metrics(), exclude_label=("x", "y"))
    assert gc.isenabled()
    allocator.rebuild(cluster.nodes().values())
    assert gc.isenabled()
    gc.disable()
    try:
        allocator.rebuild(cluster.nodes().values())
        assert not gc.isenabled()
    finally:
        gc.enable()
