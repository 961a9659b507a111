"""The cluster's podCIDR pool: every cluster CIDR of both families, allocated all-or-nothing.

Invariants: cluster CIDRs never overlap; each family's CIDRs are used in the order they were given
(the first with a free block wins); ``allocate`` changes nothing unless every family has a free
block, and ``occupy`` changes nothing unless every CIDR it is given can be occupied.

Not thread-safe: the controller calls it from its single allocation loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network

from ipam.cidr import CIDRLike, Network, _span, family, overlaps, parse_cidr
from ipam.cidrset import CIDRSet
from ipam.errors import CIDROutsidePool, IPAMError, PoolExhausted
from ipam.validation import PoolConfig, check_disjoint, validate


@dataclass(frozen=True, slots=True)
class CIDRUsage:
    """One cluster CIDR's figures (the source of the ``routectl_ipam_cidrs_*`` metrics)."""

    cidr: Network
    node_mask: int
    capacity: int
    used: int
    free: int
    reserved: int


class CIDRPool:
    """Node blocks from several cluster CIDRs, one block per family per node (IPv4 first)."""

    __slots__ = ("_bounds", "_config", "_sets")

    def __init__(
        self,
        cidrs: Iterable[CIDRLike],
        *,
        node_mask_v4: int | None = None,
        node_mask_v6: int | None = None,
        reserved: Iterable[CIDRLike] = (),
    ) -> None:
        """Validate (see ``ipam.validate``; it raises the same errors) and build the pool."""
        self._config = validate(
            cidrs, node_mask_v4=node_mask_v4, node_mask_v6=node_mask_v6, reserved=reserved
        )
        self._sets: list[CIDRSet] = []
        self._bounds: list[tuple[int, int, int, int]] = []
        """Per set: (version, first address, end address, node mask), for ``occupy_blocks``."""
        for cidr in self._config.cidrs:
            self._add_set(cidr)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Problems found at construction that did not stop the pool (for the caller to log)."""
        return self._config.warnings

    @property
    def rules(self) -> PoolConfig:
        """The pool's definition as it stands (cluster CIDRs added later included)."""
        return replace(self._config, cidrs=self.cidrs)

    @property
    def cidrs(self) -> tuple[Network, ...]:
        """Cluster CIDRs in the order given, including those added later."""
        return tuple(s.cidr for s in self._sets)

    @property
    def families(self) -> tuple[int, ...]:
        """IP versions with at least one cluster CIDR, IPv4 first: the shape of ``allocate``'s result."""
        return tuple(sorted({s.cidr.version for s in self._sets}))

    def allocate(self) -> tuple[Network, ...]:
        """One block per family, IPv4 first; ``PoolExhausted`` (and no change) if any family is full."""
        chosen: list[CIDRSet] = []
        for version in self.families:
            candidates = [s for s in self._sets if s.cidr.version == version]
            found = next((s for s in candidates if s.free), None)
            if found is None:
                names = ", ".join(str(s.cidr) for s in candidates)
                raise PoolExhausted(
                    f"no free {family(version)} node block left in cluster CIDRs {names}: "
                    "nothing was allocated in any family"
                )
            chosen.append(found)
        return tuple(s.allocate() for s in chosen)

    def occupy(self, cidrs: CIDRLike | Iterable[CIDRLike]) -> None:
        """Mark existing CIDRs (e.g. one node's podCIDRs) in use, all or none.

        A CIDR may be larger or smaller than a node block, and may span cluster CIDRs (each part is
        occupied). Raises ``CIDROutsidePool`` if one shares no address with any cluster CIDR of its
        family, ``CIDRConflict`` if one overlaps something in use or reserved; either way nothing
        was changed.
        """
        nets = _parse_all(cidrs)
        targets = [(net, self._sets_for(net)) for net in nets]
        for net, sets in targets:
            if not sets:
                raise CIDROutsidePool(net, f"{net} lies outside every {family(net.version)} cluster CIDR")
        done: list[tuple[CIDRSet, Network]] = []
        try:
            for net, sets in targets:
                for cidr_set in sets:
                    cidr_set.occupy(net)
                    done.append((cidr_set, net))
        except IPAMError:
            for cidr_set, net in reversed(done):
                cidr_set.release(net)
            raise

    def occupy_blocks(self, blocks: Iterable[Network]) -> None:
        """``occupy(blocks)`` with the same outcome and errors, fast when every one is a free node
        block (a new leader's thousands of podCIDRs): integer arithmetic and one sort per cluster
        CIDR instead of a search per block. Anything else takes ``occupy``'s general path."""
        nets = list(blocks)
        found: dict[int, list[int]] = {i: [] for i in range(len(self._sets))}
        for net in nets:
            address, version, bits = int(net.network_address), net.version, net.prefixlen
            for i, (cidr_version, first, end, mask) in enumerate(self._bounds):
                if cidr_version == version and first <= address < end:
                    if bits != mask:
                        return self.occupy(nets)  # not one node block
                    found[i].append((address - first) >> (net.max_prefixlen - mask))
                    break
            else:
                return self.occupy(nets)  # outside: let occupy word it
        runs = [(self._sets[i], self._sets[i].free_runs(indices)) for i, indices in found.items() if indices]
        if any(r is None for _, r in runs):
            return self.occupy(nets)  # a conflict: let occupy word it
        for cidr_set, set_runs in runs:
            cidr_set.take_runs(set_runs or ())
        return None

    def release(self, cidrs: CIDRLike | Iterable[CIDRLike]) -> int:
        """Release CIDRs (``CIDRSet.release`` semantics in every cluster CIDR); return blocks freed."""
        return sum(s.release(net) for net in _parse_all(cidrs) for s in self._sets_for(net))

    def add_cidr(self, cidr: CIDRLike) -> None:
        """Grow the running pool by one cluster CIDR, used after the others of its family.

        The node mask is the pool's for that family (its default if none was given); reserved ranges
        given at construction apply to it too. Raises ``InvalidCIDR``, ``InvalidMask`` or
        ``OverlappingCIDRs`` and leaves the pool unchanged.
        """
        net = parse_cidr(cidr, "cluster CIDR")
        check_disjoint([*self.cidrs, net])
        self._add_set(net)

    def usage(self) -> tuple[CIDRUsage, ...]:
        """Per-cluster-CIDR capacity, use and reservation, in the order of ``cidrs``."""
        return tuple(
            CIDRUsage(s.cidr, s.node_mask, s.capacity, s.used, s.free, s.reserved) for s in self._sets
        )

    def _add_set(self, cidr: Network) -> None:
        node_mask = self._config.node_mask(cidr.version)
        self._sets.append(CIDRSet(cidr, node_mask, reserved=self._config.reserved))
        self._bounds.append((cidr.version, *_span(cidr), node_mask))

    def _sets_for(self, net: Network) -> list[CIDRSet]:
        return [s for s in self._sets if overlaps(s.cidr, net)]


def _parse_all(cidrs: CIDRLike | Iterable[CIDRLike]) -> list[Network]:
    if isinstance(cidrs, str | IPv4Network | IPv6Network):
        return [parse_cidr(cidrs)]
    return [parse_cidr(c) for c in cidrs]
