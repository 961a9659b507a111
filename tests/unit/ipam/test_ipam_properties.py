"""Properties of random allocate/occupy/release sequences.

A CIDRSet must behave exactly like a one-owner-per-block brute-force model (the Kubernetes cidrset
bitmap, plus owner prefixes for release); a dual-stack CIDRPool must never hand out overlapping
blocks, blocks outside the cluster CIDRs or inside reserved ranges, and must keep
``used + free == capacity`` with ``PoolExhausted`` exactly when a family is full.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from ipam import CIDRConflict, CIDROutsidePool, CIDRPool, CIDRSet, IPAMError, Network, PoolExhausted

RESERVED = object()


@dataclass
class BitmapModel:
    """One owner per block, linear scans: obviously right, only usable on small sets."""

    blocks: list[IPv4Network]
    owners: list[object]
    cursor: int = 0

    @classmethod
    def of(cls, cidr: IPv4Network, node_mask: int, reserved: list[IPv4Network]) -> BitmapModel:
        blocks = list(cidr.subnets(new_prefix=node_mask))
        owners: list[object] = [RESERVED if any(b.overlaps(r) for r in reserved) else None for b in blocks]
        return cls(blocks, owners)

    def allocate(self) -> IPv4Network:
        n = len(self.blocks)
        for k in ((self.cursor + i) % n for i in range(n)):
            if self.owners[k] is None:
                self.owners[k] = self.blocks[k]
                self.cursor = (k + 1) % n
                return self.blocks[k]
        raise PoolExhausted

    def occupy(self, net: IPv4Network) -> None:
        touched = [k for k, b in enumerate(self.blocks) if b.overlaps(net)]
        if not touched:
            raise CIDROutsidePool(net, "")
        if any(self.owners[k] is not None for k in touched):
            raise CIDRConflict(net, net, reserved=False)
        for k in touched:
            self.owners[k] = net

    def release(self, net: IPv4Network) -> int:
        freed = 0
        for k, block in enumerate(self.blocks):
            owner = self.owners[k]
            if block.overlaps(net) and isinstance(owner, IPv4Network) and owner.subnet_of(net):
                self.owners[k] = None
                freed += 1
        return freed

    @property
    def used(self) -> int:
        return sum(isinstance(o, IPv4Network) for o in self.owners)


def v4_prefixes(within: str) -> st.SearchStrategy[IPv4Network]:
    outer = ip_network(within)
    return st.builds(
        lambda offset, plen: IPv4Network((int(outer.network_address) + offset, plen), strict=False),
        st.integers(0, outer.num_addresses - 1),
        st.integers(outer.prefixlen, 32),
    )


Op = tuple[str, Network | None]


def ops(prefixes: st.SearchStrategy[IPv4Network] | st.SearchStrategy[Network]) -> st.SearchStrategy[list[Op]]:
    return st.lists(
        st.one_of(
            st.just(("allocate", None)),
            st.tuples(st.sampled_from(["occupy", "release"]), prefixes),
        ),
        min_size=10,
        max_size=80,
    )


def outcome(target: object, name: str, net: Network | None) -> object:
    """What calling ``target.name(net)`` gave: its result, or the type of the IPAM error raised."""
    try:
        return getattr(target, name)(*(() if net is None else (net,)))
    except IPAMError as error:
        return type(error)


@settings(max_examples=300, deadline=None)
@given(
    node_mask=st.integers(26, 29),
    reserved=st.lists(v4_prefixes("10.0.0.0/24"), max_size=2),
    sequence=ops(v4_prefixes("10.0.0.0/23")),
)
def test_cidrset_matches_the_bitmap_model(
    node_mask: int, reserved: list[IPv4Network], sequence: list[Op]
) -> None:
    cidr = IPv4Network("10.0.0.0/24")
    real = CIDRSet(cidr, node_mask, reserved=reserved)
    model = BitmapModel.of(cidr, node_mask, reserved)
    for name, net in sequence:
        assert outcome(real, name, net) == outcome(model, name, net), (name, net)
        assert real.used == model.used
        assert real.used + real.free == real.capacity
        assert real.capacity == sum(o is not RESERVED for o in model.owners)


@dataclass
class Live:
    """Blocks the pool handed out and that no release has covered yet."""

    nets: set[Network] = field(default_factory=set)

    def release(self, net: Network) -> None:
        self.nets = {n for n in self.nets if not (n.version == net.version and n.subnet_of(net))}  # type: ignore[arg-type]


CLUSTER = ["10.0.0.0/25", "10.0.1.0/26", "fd00::/124"]
POOL_RESERVED = ["10.0.0.32/28", "fd00::8/126", "192.168.0.0/24"]
pool_prefixes = st.one_of(
    v4_prefixes("10.0.0.0/23"),
    st.builds(
        lambda offset, plen: IPv6Network((0xFD00 << 112 | offset, plen), strict=False),
        st.integers(0, 31),
        st.integers(122, 128),
    ),
)


@settings(max_examples=200, deadline=None)
@given(sequence=ops(pool_prefixes))
def test_pool_never_hands_out_overlapping_reserved_or_foreign_blocks(sequence: list[Op]) -> None:
    pool = CIDRPool(CLUSTER, node_mask_v4=28, node_mask_v6=126, reserved=POOL_RESERVED)
    clusters = [ip_network(c) for c in CLUSTER]
    reserved = [ip_network(r) for r in POOL_RESERVED]
    live = Live()
    for name, net in sequence:
        full = any(all(u.free == 0 for u in pool.usage() if u.cidr.version == v) for v in pool.families)
        if name == "allocate":
            try:
                got = pool.allocate()
            except PoolExhausted:
                assert full
            else:
                assert not full
                assert [n.version for n in got] == [4, 6]
                for n in got:
                    assert any(n.subnet_of(c) for c in clusters if c.version == n.version)  # type: ignore[arg-type]
                    assert not any(n.overlaps(r) for r in reserved if r.version == n.version)
                    assert n not in live.nets
                live.nets.update(got)
        elif name == "occupy":
            assert net is not None
            with contextlib.suppress(CIDRConflict, CIDROutsidePool):
                pool.occupy(net)
        else:
            assert net is not None
            pool.release(net)
            live.release(net)
        for u in pool.usage():
            assert u.used + u.free == u.capacity
        assert sum(u.used for u in pool.usage()) >= len(live.nets)
