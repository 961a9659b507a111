"""A coalesced set of half-open integer ranges, searched with ``bisect``.

Invariant: ``_starts`` and ``_ends`` are strictly increasing, every stored range ``[s, e)`` is
non-empty, and stored ranges neither overlap nor touch (``_ends[i] < _starts[i + 1]``). So the range
covering a point, and the first point at or after it that no range covers, are found in O(log n), and
memory grows with the number of separate runs, not with the size of the space.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from heapq import merge


class IntervalSet:
    """Integers covered by a union of half-open ranges."""

    __slots__ = ("_ends", "_starts", "_total")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._total = 0

    @property
    def total(self) -> int:
        """How many integers the set covers."""
        return self._total

    def add(self, lo: int, hi: int) -> None:
        """Cover ``[lo, hi)``, merging with every range it overlaps or touches."""
        i = bisect_left(self._ends, lo)
        j = bisect_right(self._starts, hi)
        if i < j:
            self._total -= sum(self._ends[k] - self._starts[k] for k in range(i, j))
            lo = min(lo, self._starts[i])
            hi = max(hi, self._ends[j - 1])
        self._starts[i:j] = [lo]
        self._ends[i:j] = [hi]
        self._total += hi - lo

    def remove(self, lo: int, hi: int) -> int:
        """Uncover ``[lo, hi)``; return how many integers were covered there."""
        i = bisect_right(self._ends, lo)
        j = bisect_left(self._starts, hi)
        if i >= j:
            return 0
        removed = sum(min(self._ends[k], hi) - max(self._starts[k], lo) for k in range(i, j))
        starts: list[int] = []
        ends: list[int] = []
        if self._starts[i] < lo:
            starts.append(self._starts[i])
            ends.append(lo)
        if self._ends[j - 1] > hi:
            starts.append(hi)
            ends.append(self._ends[j - 1])
        self._starts[i:j] = starts
        self._ends[i:j] = ends
        self._total -= removed
        return removed

    def first_in(self, lo: int, hi: int) -> int | None:
        """The smallest covered integer in ``[lo, hi)``, or ``None`` when none is."""
        i = bisect_right(self._ends, lo)
        if i < len(self._starts) and self._starts[i] < hi:
            return max(self._starts[i], lo)
        return None

    def next_gap(self, point: int) -> int:
        """The smallest uncovered integer at or after ``point`` (O(log n): ranges never touch)."""
        i = bisect_right(self._starts, point) - 1
        if i >= 0 and self._ends[i] > point:
            return self._ends[i]
        return point

    def disjoint(self, runs: Iterable[tuple[int, int]]) -> bool:
        """No integer of the sorted, disjoint ``runs`` is covered (one merge pass, no search per run)."""
        starts, ends, k, n = self._starts, self._ends, 0, len(self._starts)
        for lo, hi in runs:
            while k < n and ends[k] <= lo:
                k += 1
            if k < n and starts[k] < hi:
                return False
        return True

    def add_disjoint(self, runs: Iterable[tuple[int, int]]) -> None:
        """Cover the sorted ``runs``, none covered yet (``disjoint``): one merge pass over the set."""
        starts: list[int] = []
        ends: list[int] = []
        added = 0
        for lo, hi in merge(zip(self._starts, self._ends, strict=True), runs):
            if ends and lo <= ends[-1]:  # touches the previous range
                ends[-1] = max(ends[-1], hi)
            else:
                starts.append(lo)
                ends.append(hi)
            added += hi - lo
        self._starts, self._ends, self._total = starts, ends, added

    def within(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The covered parts of ``[lo, hi)``, as sorted ranges."""
        i = bisect_right(self._ends, lo)
        j = bisect_left(self._starts, hi)
        return [(max(self._starts[k], lo), min(self._ends[k], hi)) for k in range(i, j)]
