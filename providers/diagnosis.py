"""What every adapter's `diagnose` shares: building `Check`s and judging a table's quota headroom.

Cloud-neutral: the adapters gather the facts (through their SDKs) and judge them here, so the three
clouds word and count alike (docs/operations.md#doctor).
"""

from __future__ import annotations

from collections.abc import Sequence

import ipam
from providers.model import Check, CheckStatus, Network, Route

HEADROOM_WARN = 0.8
"""A table whose routes, once every node has its own, would fill more than this share of the quota is a
warning: the next nodes may not fit."""


def passed(area: str, name: str, found: str) -> Check:
    return Check(area, name, CheckStatus.PASS, found)


def failed(area: str, name: str, found: str, fix: str) -> Check:
    return Check(area, name, CheckStatus.FAIL, found, fix)


def warned(area: str, name: str, found: str, fix: str) -> Check:
    return Check(area, name, CheckStatus.WARN, found, fix)


def quota_checks(
    area: str,
    table: str,
    listed: Sequence[Route],
    cluster_cidrs: Sequence[Network],
    nodes: int,
    quota: int | None,
    *,
    per_family: bool,
    elsewhere: int = 0,
) -> list[Check]:
    """Headroom in one table: every route in it counts (the cloud counts them all), the cluster's own
    are replaced by one per node and family. Per IP family where the cloud counts so (AWS);
    `elsewhere` counts routes outside the table that share its quota (GCP: the project's other
    networks)."""
    if quota is None:
        return [warned(area, f"quota {table}", "route quota unknown", "pass --route-table-quota")]
    families = sorted({c.version for c in cluster_cidrs}) if per_family else [0]
    return [
        _headroom(area, table, listed, cluster_cidrs, nodes, quota, family, elsewhere) for family in families
    ]


def _headroom(
    area: str,
    table: str,
    listed: Sequence[Route],
    cluster_cidrs: Sequence[Network],
    nodes: int,
    quota: int,
    family: int,
    elsewhere: int,
) -> Check:
    """One family's headroom (`family` 0: all families counted together)."""
    counted = [r for r in listed if family in (0, r.destination.version)]
    ours = sum(1 for r in counted if r.owned and ipam.inside(r.destination, cluster_cidrs))
    per_node = 1 if family else len({c.version for c in cluster_cidrs})
    present = len(counted) + elsewhere
    needed = present - ours + nodes * per_node
    label = f"{table} IPv{family}" if family else table
    found = f"{present} route(s) now, {needed} once every node is routed, quota {quota}"
    if needed > quota:
        fix = "raise the quota (AWS: up to 1,000 per table; others: ask the cloud) or remove unused routes"
        return failed(area, f"quota {label}", found, fix)
    if needed > HEADROOM_WARN * quota:
        return warned(area, f"quota {label}", found, "raise the quota before adding nodes")
    return passed(area, f"quota {label}", found)
