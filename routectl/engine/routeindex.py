"""One route table indexed for a one-node plan: the routes that can concern a node in O(its routes ·
log(table)), and the table's running counts, instead of a scan of every route per node sync.

A route concerns a node (`planner._concerns`) only if it overlaps one of the node's blocks — a
supernet of the block (found by an exact lookup of each prefix length the table holds, up to the
block's) or a route inside it (a range of the table sorted by network address) — or it is owned and
names the node. `slice` returns exactly those candidates; the planner filters them by its own rule, so
its decisions stay the ones a scan gives. Not thread-safe: `RouteView` holds its lock around it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from providers import Network, Route
from routectl.engine.planner import TableSlice

_Key = tuple[int, int, int]
"""(IP version, network address, prefix length): the table's sort order."""


class RouteIndex:
    def __init__(self, routes: Iterable[Route] = (), counted: Callable[[Route], bool] = bool) -> None:
        """`counted` picks the routes `programmed` counts (the view's gauge; by default every one)."""
        self._counted = counted
        self._by_dest: dict[Network, Route] = {r.destination: r for r in routes}
        """The last route listed on a destination wins, as `put` would have it."""
        self._nets: list[Network] = sorted(self._by_dest, key=_key)  # one sort, not an insert per route
        self._keys: list[_Key] = [_key(d) for d in self._nets]
        """Every destination's key, sorted; `_nets` holds the destinations in the same order."""
        self._lengths: Counter[tuple[int, int]] = Counter()
        """(version, prefix length) → destinations of that length."""
        self._naming: dict[str, set[Network]] = {}
        """Node name → destinations of owned routes naming it."""
        self.per_version: Counter[int] = Counter()
        self.programmed = 0
        for route in self._by_dest.values():
            self._count(route, 1)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._by_dest.values())

    def get(self, destination: Network) -> Route | None:
        return self._by_dest.get(destination)

    def put(self, route: Route) -> None:
        """Add the route, or replace the one listed on its destination."""
        dest = route.destination
        if dest in self._by_dest:
            self.drop(dest)
        self._by_dest[dest] = route
        key = _key(dest)
        at = bisect.bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._nets.insert(at, dest)
        self._count(route, 1)

    def drop(self, destination: Network) -> None:
        route = self._by_dest.pop(destination, None)
        if route is None:
            return
        at = bisect.bisect_left(self._keys, _key(destination))
        del self._keys[at], self._nets[at]
        self._count(route, -1)

    def _count(self, route: Route, sign: int) -> None:
        """Add (`sign` 1) or remove (-1) the route in every index but the sorted one."""
        dest = route.destination
        self._lengths[(dest.version, dest.prefixlen)] += sign
        if route.owned and route.node:
            named = self._naming.setdefault(route.node, set())
            if sign > 0:
                named.add(dest)
            else:
                named.discard(dest)
                if not named:
                    del self._naming[route.node]
        self.per_version[dest.version] += sign
        self.programmed += sign * self._counted(route)

    def slice(self, blocks: Sequence[Network], node: str) -> TableSlice:
        """Every route overlapping one of `blocks` or owned and naming `node`, in destination order."""
        found = {d for block in blocks for d in (*self._supernets(block), *self._inside(block))}
        found |= self._naming.get(node, set())
        ordered = sorted(found, key=_key)
        return TableSlice(tuple(self._by_dest[d] for d in ordered), dict(self.per_version))

    def _supernets(self, block: Network) -> Iterator[Network]:
        for version, length in self._lengths:
            if version == block.version and length <= block.prefixlen and self._lengths[(version, length)]:
                wider = block.supernet(new_prefix=length)
                if wider in self._by_dest:
                    yield wider

    def _inside(self, block: Network) -> list[Network]:
        """Destinations whose network address lies in `block` (every one inside it, and the block's
        supernets sharing its first address)."""
        first, last = int(block.network_address), int(block.broadcast_address)
        lo = bisect.bisect_left(self._keys, (block.version, first, -1))
        hi = bisect.bisect_right(self._keys, (block.version, last, 129))
        return self._nets[lo:hi]


def _key(net: Network) -> _Key:
    return (net.version, int(net.network_address), net.prefixlen)


__all__ = ["RouteIndex"]
