"""One cluster CIDR cut into equal node blocks: round-robin allocation, occupy and release.

Blocks are numbered ``0 .. size-1`` from the cluster CIDR's network address. State is kept as ranges of
block numbers, never as one bit per block, so memory grows with what is allocated (and how scattered
it is), not with capacity: an IPv6 /32 cut into /64s (2^32 blocks) costs a few hundred bytes when empty.

Invariants:
- ``_taken`` covers exactly the reserved blocks plus the occupied ones; ``_reserved`` ⊆ ``_taken``.
- Every occupation has one owner prefix. Occupying a prefix that is exactly one block is recorded only
  in ``_taken``; any other prefix (smaller than a block, larger, or reaching past the cluster CIDR) is
  also kept in ``_claims`` so that releasing part of it cannot free it (see ``CIDRSet.release``).
- ``used + free == capacity``, where ``capacity`` excludes reserved blocks.

Not thread-safe: the controller calls it from its single allocation loop.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from ipam.cidr import CIDRLike, Network, family, parse_cidr
from ipam.errors import CIDRConflict, CIDROutsidePool, InvalidMask, PoolExhausted
from ipam.intervals import IntervalSet


def check_node_mask(cidr: Network, node_mask: int) -> None:
    """Raise ``InvalidMask`` unless ``node_mask`` can cut ``cidr`` into node blocks."""
    fam = family(cidr.version)
    if isinstance(node_mask, bool) or not isinstance(node_mask, int):
        raise InvalidMask(f"node mask {node_mask!r} for {fam} is not an integer prefix length")
    if not 0 <= node_mask <= cidr.max_prefixlen:
        raise InvalidMask(
            f"node mask /{node_mask} is out of range for {fam}: it must be between 0 and {cidr.max_prefixlen}"
        )
    if node_mask < cidr.prefixlen:
        raise InvalidMask(
            f"node mask /{node_mask} is shorter than the mask of {fam} cluster CIDR {cidr} "
            f"(/{cidr.prefixlen}): a node block must fit inside its cluster CIDR"
        )


class _Claims:
    """Occupations whose owner prefix is not exactly one block, by block range ``[lo, hi)``.

    Invariant: ranges are disjoint and sorted (occupations never overlap), so the claims overlapping
    a range are one contiguous slice found with bisect.
    """

    __slots__ = ("_his", "_los", "_nets")

    def __init__(self) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        self._nets: list[Network] = []

    def add(self, lo: int, hi: int, net: Network) -> None:
        i = bisect_left(self._los, lo)
        self._los.insert(i, lo)
        self._his.insert(i, hi)
        self._nets.insert(i, net)

    def _slice(self, lo: int, hi: int) -> range:
        return range(bisect_right(self._his, lo), bisect_left(self._los, hi))

    def first(self, lo: int, hi: int) -> Network | None:
        """The owner of the first claim overlapping ``[lo, hi)``."""
        found = self._slice(lo, hi)
        return self._nets[found.start] if found else None

    def split(self, lo: int, hi: int, net: Network) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Drop the claims in ``[lo, hi)`` whose owner lies inside ``net``.

        Returns the dropped block ranges and the block ranges of the overlapping claims that stay.
        """
        found = self._slice(lo, hi)
        dropped: list[tuple[int, int]] = []
        kept: list[tuple[int, int]] = []
        for k in reversed(found):
            if self._nets[k].subnet_of(net):  # type: ignore[arg-type]  # same family, checked
                dropped.append((self._los[k], self._his[k]))
                del self._los[k], self._his[k], self._nets[k]
            else:
                kept.append((self._los[k], self._his[k]))
        return dropped, kept


class CIDRSet:
    """The node blocks of one cluster CIDR, handed out round-robin like Kubernetes' cidrset.

    ``allocate`` returns the first free block at or after a cursor, then moves the cursor past it, so
    a released block is reused only after the cursor wraps. Finding that block is O(log n) in the
    number of occupied runs, never a scan over blocks.
    """

    __slots__ = (
        "_base",
        "_claims",
        "_cursor",
        "_reserved",
        "_reserved_nets",
        "_shift",
        "_size",
        "_taken",
        "cidr",
        "node_mask",
    )

    def __init__(self, cidr: CIDRLike, node_mask: int, *, reserved: Iterable[CIDRLike] = ()) -> None:
        """Cut ``cidr`` into ``/node_mask`` blocks.

        ``reserved`` blocks are never handed out and not counted in ``capacity``; a reserved prefix
        smaller than a block reserves its whole block, and reserved prefixes (or parts of them) outside
        ``cidr`` are ignored.
        """
        self.cidr: Network = parse_cidr(cidr, "cluster CIDR")
        check_node_mask(self.cidr, node_mask)
        self.node_mask = node_mask
        self._shift = self.cidr.max_prefixlen - node_mask
        self._base = int(self.cidr.network_address)
        self._size = 1 << (node_mask - self.cidr.prefixlen)
        self._taken = IntervalSet()
        self._reserved = IntervalSet()
        self._reserved_nets: list[Network] = []
        self._claims = _Claims()
        self._cursor = 0
        for value in reserved:
            net = parse_cidr(value, "reserved CIDR")
            span = self._span(net)
            if span is not None:
                self._reserved.add(*span)
                self._taken.add(*span)
                self._reserved_nets.append(net)

    @property
    def capacity(self) -> int:
        """Blocks that can ever be handed out: all blocks minus reserved ones."""
        return self._size - self._reserved.total

    @property
    def used(self) -> int:
        """Blocks allocated or occupied (reserved blocks are not counted)."""
        return self._taken.total - self._reserved.total

    @property
    def free(self) -> int:
        """Blocks ``allocate`` can still return: ``capacity - used``."""
        return self._size - self._taken.total

    @property
    def reserved(self) -> int:
        """Blocks kept out by reserved ranges."""
        return self._reserved.total

    def allocate(self) -> Network:
        """Take the first free block at or after the cursor (wrapping once); ``PoolExhausted`` if none."""
        if self.free == 0:
            raise PoolExhausted(
                f"{family(self.cidr.version)} cluster CIDR {self.cidr} has no free "
                f"/{self.node_mask} block left ({self.used} used, {self.reserved} reserved)"
            )
        block = self._taken.next_gap(self._cursor)
        if block == self._size:
            block = self._taken.next_gap(0)
        self._taken.add(block, block + 1)
        self._cursor = (block + 1) % self._size
        return self._block(block)

    def occupy(self, cidr: CIDRLike) -> None:
        """Mark ``cidr`` as in use, e.g. a podCIDR found on a node when rebuilding.

        A prefix smaller than a block occupies its whole block; a larger one occupies every block it
        covers inside this set. Raises ``CIDROutsidePool`` if ``cidr`` shares no address with the set,
        and ``CIDRConflict`` if any of its blocks is already reserved or in use — including by the same
        prefix, since two nodes cannot own one block. Does not move the cursor.
        """
        net = parse_cidr(cidr)
        span = self._span(net)
        if span is None:
            raise CIDROutsidePool(
                net, f"{net} lies outside {family(self.cidr.version)} cluster CIDR {self.cidr}"
            )
        lo, hi = span
        if self._taken.first_in(lo, hi) is not None:
            existing, is_reserved = self._owner(lo, hi)
            raise CIDRConflict(net, existing, is_reserved)
        self._taken.add(lo, hi)
        if net.prefixlen != self.node_mask:  # not exactly one block: remember the owner prefix
            self._claims.add(lo, hi, net)

    def free_runs(self, indices: Iterable[int]) -> list[tuple[int, int]] | None:
        """Block numbers (each inside the set) as sorted runs ``[lo, hi)`` when every one is free and
        none repeats; None otherwise. With ``take_runs``: ``occupy`` of many node blocks in one sort."""
        ordered = sorted(indices)
        if len(set(ordered)) != len(ordered):
            return None  # listed twice
        runs = [(index, index + 1) for index in ordered]
        return runs if self._taken.disjoint(runs) else None

    def take_runs(self, runs: Iterable[tuple[int, int]]) -> None:
        """Occupy the whole blocks ``free_runs`` returned (each exactly one block: no owner to keep)."""
        self._taken.add_disjoint(runs)

    def release(self, cidr: CIDRLike) -> int:
        """Free what was occupied or allocated by prefixes inside ``cidr``; return blocks freed.

        An occupation is freed only when its owner prefix lies inside ``cidr``: releasing one /24 of
        a /20 occupied as a whole frees nothing, releasing the /20 (or anything containing it) frees
        all 16 blocks. Reserved blocks are never freed. Releasing something not in use, or outside
        the set, is a no-op that returns 0.
        """
        net = parse_cidr(cidr)
        span = self._span(net)
        if span is None:
            return 0
        lo, hi = span
        dropped, kept = self._claims.split(lo, hi, net)
        if net.prefixlen > self.node_mask:
            return sum(self._taken.remove(a, b) for a, b in dropped)
        freed = self._taken.remove(lo, hi)
        # Put back what stays taken: reserved blocks, and claims not inside ``net`` (clipped).
        for a, b in [*self._reserved.within(lo, hi), *kept]:
            start, stop = max(a, lo), min(b, hi)
            self._taken.add(start, stop)
            freed -= stop - start
        return freed

    def _span(self, net: Network) -> tuple[int, int] | None:
        """Blocks ``[lo, hi)`` that ``net`` touches, clipped to this set; ``None`` if it misses.

        Integer arithmetic only: ``ipaddress``'s cached properties would grow the caller's objects.
        """
        if net.version != self.cidr.version:
            return None
        start = int(net.network_address) - self._base
        stop = start + (1 << (net.max_prefixlen - net.prefixlen))
        if stop <= 0 or start >= self._size << self._shift:
            return None
        return max(start, 0) >> self._shift, min((stop - 1) >> self._shift, self._size - 1) + 1

    def _block(self, index: int) -> Network:
        return type(self.cidr)((self._base + (index << self._shift), self.node_mask))

    def _owner(self, lo: int, hi: int) -> tuple[Network, bool]:
        """An owner of a taken block in ``[lo, hi)``, for the conflict message: (prefix, reserved?)."""
        if self._reserved.first_in(lo, hi) is not None:
            hit = next(r for r in self._reserved_nets if self._overlaps_span(r, lo, hi))
            return hit, True
        claim = self._claims.first(lo, hi)
        if claim is not None:
            return claim, False
        block = self._taken.first_in(lo, hi)
        assert block is not None  # the caller saw a taken block
        return self._block(block), False

    def _overlaps_span(self, net: Network, lo: int, hi: int) -> bool:
        span = self._span(net)
        return span is not None and span[0] < hi and lo < span[1]
