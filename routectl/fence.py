"""The write guard every Node patch and every cloud write passes through.

Invariant: once `check()` has raised for a leader, no later write of that process happens — the
leader elector flips the fence at `last successful renew + renew deadline`, before any other candidate
may take the lease (lease duration > renew deadline), so two writers never overlap.
"""

from __future__ import annotations

from typing import Protocol


class LostLeadership(Exception):
    """This process may no longer write: its lease could not be renewed in time."""


class Fence(Protocol):
    def check(self) -> None:
        """Raise LostLeadership unless this process still holds a fresh lease."""
        ...


class Unfenced:
    """For `--leader-elect=false`: one replica by construction (the chart switches to Recreate)."""

    def check(self) -> None:
        return None
