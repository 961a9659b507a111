"""`routectl plan`: the plan against the real cluster and cloud, printed as a table or JSON.

Read-only by construction: only the route view (one list of every table, through the read bucket) and
the pure planner are built — no executor, so no write path and no thread pool exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TextIO

from providers import Route, RouteProvider
from routectl.cluster import Cluster, list_all_nodes
from routectl.config import Config
from routectl.engine.ownership import owners
from routectl.engine.planner import ADOPT_FLAG, Change, DesiredNode, Plan, WriteRules, plan
from routectl.engine.ratelimit import Pacer
from routectl.engine.routeview import RouteView
from routectl.metrics import Metrics
from routectl.ops.columns import columns


def compute(cfg: Config, cluster: Cluster, provider: RouteProvider) -> Plan:
    """The full plan for every Node against a fresh list of every table; changes nothing."""
    nodes = list_all_nodes(cluster)
    ownership = owners(nodes, cfg.pool_rules())
    desired = [DesiredNode.of(n, provider.target_for, cfg.exclude_label, ownership) for n in nodes]
    view = RouteView(provider, Pacer(provider.limits), Metrics(), cfg.cluster_cidrs)
    listed = view.refresh()
    rules = WriteRules.chosen(cfg.adopt_routes, cfg.route_policy)
    return plan(desired, listed, view.cidrs, rules=rules, **view.quota_rules(listed))


def _hop(route: Route | None) -> str:
    if route is None:
        return ""
    return route.target.instance if route.target is not None else route.next_hop or "blackhole"


def as_json(the_plan: Plan) -> dict[str, object]:
    def change(c: Change) -> dict[str, str]:
        row = {"table": c.table, "destination": str(c.destination), "node": c.node, "target": _hop(c.route)}
        if c.current is not None:
            row["current"] = _hop(c.current)
        return row

    return {
        "converged": the_plan.converged,
        "create": [change(c) for c in the_plan.create],
        "replace": [change(c) for c in the_plan.replace],
        "delete": [change(c) for c in the_plan.delete],
        "adopt": [change(c) for c in the_plan.adopt],
        "adoptable": [change(c) for c in the_plan.adoptable],
        "withheld_deletes": [change(c) for c in the_plan.withheld],
        "contested": [change(c) for c in the_plan.contested],
        "conflicts": [
            {
                "table": c.table,
                "destination": str(c.destination),
                "node": c.node,
                "existing": str(c.existing.destination),
                "existing_next_hop": _hop(c.existing),
            }
            for c in the_plan.conflicts
        ],
        "blocked": [
            {
                "node": b.node,
                "reason": b.reason.value,
                "detail": b.detail,
                "table": b.table,
                "destination": "" if b.destination is None else str(b.destination),
            }
            for b in the_plan.blocked
        ],
        "in_place": len(the_plan.in_place),
        "rejected_pod_cidrs": [
            {
                "node": r.node,
                "pod_cidr": r.pod_cidr,
                "rule": r.rule.value,
                "other_node": r.other,
                "detail": r.detail,
            }
            for r in the_plan.rejected
        ],
    }


def _rows(the_plan: Plan) -> Iterator[tuple[str, str, str, str, str]]:
    for action, changes in (
        ("create", the_plan.create),
        ("replace", the_plan.replace),
        ("delete", the_plan.delete),
    ):
        for c in changes:
            via = _hop(c.route) if action != "replace" else f"{_hop(c.current)} -> {_hop(c.route)}"
            yield action, c.table, str(c.destination), c.node, via
    for c in the_plan.adopt:
        yield "adopt", c.table, str(c.destination), c.node, f"{_legacy(c)} becomes routectl's"
    for c in the_plan.adoptable:
        yield "ADOPTABLE", c.table, str(c.destination), c.node, f"{_legacy(c)}: {ADOPT_FLAG} adopts it"
    for c in the_plan.withheld:
        detail = f"via {_hop(c.route)}: sync would delete it; upsert-only keeps it"
        yield "WITHHELD", c.table, str(c.destination), c.node, detail
    for conflict in the_plan.conflicts:
        yield (
            "CONFLICT",
            conflict.table,
            str(conflict.destination),
            conflict.node,
            (f"foreign {conflict.existing.destination} via {_hop(conflict.existing)}: left untouched"),
        )
    for b in the_plan.blocked:
        where = str(b.destination) if b.destination is not None else ""
        yield "BLOCKED", b.table, where, b.node, f"{b.reason.value}: {b.detail}"


def _legacy(change: Change) -> str:
    """An adoptable route as `plan` names it: its cloud id and next hop."""
    current = change.current
    if current is None:
        return "?"
    return f"{current.cloud_id or current.destination} via {_hop(current)}"


def render_table(the_plan: Plan, out: TextIO) -> None:
    header = ("ACTION", "TABLE", "DESTINATION", "NODE", "DETAIL")
    rows = [header, *_rows(the_plan)]
    if len(rows) > 1:
        for line in columns(rows):
            print(line, file=out)
        print(file=out)
    if the_plan.rejected:
        print("PodCIDRs not owned by their node (never routed to it):", file=out)
        rejected = [(r.node, r.pod_cidr, r.rule.value, r.other or "-", r.detail) for r in the_plan.rejected]
        for line in columns([("NODE", "PODCIDR", "RULE", "OTHER NODE", "DETAIL"), *rejected]):
            print(line, file=out)
        print(file=out)
    print(
        f"Plan: {len(the_plan.create)} to create, {len(the_plan.replace)} to replace, "
        f"{len(the_plan.delete)} to delete, {len(the_plan.adopt)} to adopt; "
        f"{len(the_plan.adoptable)} adoptable, {len(the_plan.withheld)} deletes withheld, "
        f"{len(the_plan.contested)} contested, {len(the_plan.conflicts)} conflicts, "
        f"{len(the_plan.blocked)} blocked, {len(the_plan.rejected)} podCIDRs rejected; "
        f"{len(the_plan.in_place)} routes already in place.",
        file=out,
    )


def print_plan(cfg: Config, cluster: Cluster, provider: RouteProvider, out: TextIO) -> int:
    the_plan = compute(cfg, cluster, provider)
    if cfg.output == "json":
        json.dump(as_json(the_plan), out, indent=2)
        print(file=out)
    else:
        render_table(the_plan, out)
    return 0
