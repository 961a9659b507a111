"""The route planner: desired node routes vs the listed routes of every managed table → a `Plan`.

Pure: values in, a value out; no I/O, no clock; every tuple in the Plan is sorted, so the same inputs
always give the same Plan.

Ownership invariant (docs/architecture.md, "Ownership"): a route is in `replace` or `delete` only if
the adapter marked it owned **and** its destination lies inside a cluster CIDR; `create` only targets
destinations inside a cluster CIDR. A foreign route is never in any write list — when it collides with
a desired route it is a `conflict` — unless `ownership.adoptable` says another route controller made
it for exactly that node block and instance: then it is adopted (`WriteRules.adopt`) or listed as
`adoptable` with the node blocked. Creates that would exceed a table's remaining quota are `blocked`,
never attempted. Under `RoutePolicy.UPSERT_ONLY` nothing is ever in `delete`: what `sync` would
delete is `withheld`. A replace of a `contested` route is held back (`contested`), its node blocked.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ipam import inside, overlaps
from providers import InvalidProviderID, Network, Route, RouteState, Target
from routectl.cluster import Node
from routectl.engine.ownership import CIDRProblem, Ownership, adoptable


class BlockReason(enum.StrEnum):
    NO_POD_CIDR = "no podCIDR"
    NO_TARGET = "no target"
    CONFLICT = "conflict"
    QUOTA = "quota"
    ADOPTABLE = "adoptable"
    CONTESTED = "contested"


class RoutePolicy(enum.StrEnum):
    """`--route-policy`: `sync` creates, replaces and deletes; `upsert-only` never deletes."""

    SYNC = "sync"
    UPSERT_ONLY = "upsert-only"


ADOPT_FLAG = "--adopt-routes"


@dataclass(frozen=True, slots=True)
class WriteRules:
    """What the planner may write, beyond ownership: the operator's choices and the routes the engine
    holds back."""

    adopt: bool = False
    """Adopt adoptable routes (`--adopt-routes`); else list them and block their nodes."""
    policy: RoutePolicy = RoutePolicy.SYNC
    contested: frozenset[tuple[str, Network]] = frozenset()
    """(table, destination) of owned routes not to rewrite now (`engine/contest.py`)."""

    @classmethod
    def chosen(cls, adopt: bool, policy: str) -> WriteRules:
        """The rules of `--adopt-routes` and `--route-policy` (validated by the config)."""
        return cls(adopt=adopt, policy=RoutePolicy(policy))


@dataclass(frozen=True, slots=True)
class DesiredNode:
    """What one Node asks for, parsed at the edge (`of`)."""

    name: str
    uid: str = ""
    pod_cidrs: tuple[Network, ...] = ()
    """The blocks the node owns (`ownership.py`): only these are ever routed to it."""
    target: Target | None = None
    no_target_reason: str = ""
    """Why `target` is None: no providerID, an unparsable one, a target that could not be prepared."""
    excluded: bool = False
    """Excluded (label) or gone: it wants no route, so its owned routes are deleted."""
    rejected: tuple[CIDRProblem, ...] = ()
    """Its podCIDRs that it does not own: no route, and the node is not routed while there are any."""

    @classmethod
    def of(
        cls,
        node: Node,
        target_for: Callable[[str], Target],
        exclude_label: tuple[str, str],
        ownership: Ownership,
    ) -> DesiredNode:
        """Parse a Node once: the blocks it owns and the podCIDRs it claims but does not own (from
        `ownership`, computed over the current node set), its target (`target_for` is the provider's
        providerID parser) or why it has none, and whether the exclude label is on it."""
        reason = ""
        target: Target | None = None
        if not node.provider_id:
            reason = "node has no providerID"
        else:
            try:
                target = target_for(node.provider_id)
            except InvalidProviderID as err:
                reason = str(err)
        return cls(
            node.name,
            node.uid,
            ownership.of(node.name),
            target,
            reason,
            node.excluded_by(exclude_label),
            ownership.rejected(node.name),
        )

    @classmethod
    def gone(cls, node: Node) -> DesiredNode:
        """A deleted Node (its tombstone): every podCIDR it carried that parses, wanting no route."""
        cidrs: list[Network] = []
        for text in node.pod_cidrs:
            try:
                cidrs.append(ipaddress.ip_network(text))
            except ValueError:
                continue
        return cls(node.name, node.uid, tuple(cidrs), excluded=True)


@dataclass(frozen=True, slots=True)
class Neighbours:
    """The live node set as a one-node plan needs to know it (`plan` derives it from its node list)."""

    owners: Mapping[Network, str] = field(default_factory=dict)
    """Block → the live node owning it: a block another node owns is never in this node's slice."""
    instances: Mapping[Target, frozenset[str]] = field(default_factory=dict)
    """Target → the live nodes on it: a kept route of a node without a target must not point at
    another node's instance."""

    @classmethod
    def of(cls, nodes: Iterable[DesiredNode]) -> Neighbours:
        owners: dict[Network, str] = {}
        instances: dict[Target, set[str]] = {}
        for node in nodes:
            owners.update(dict.fromkeys(node.pod_cidrs, node.name))
            if node.target is not None:
                instances.setdefault(node.target, set()).add(node.name)
        return cls(owners, {t: frozenset(names) for t, names in instances.items()})


@dataclass(frozen=True, slots=True)
class Change:
    """One write: `route` is what is sent (desired for create/replace, listed for delete)."""

    table: str
    destination: Network
    node: str
    route: Route
    current: Route | None = None
    """The listed route being replaced (replace only)."""


@dataclass(frozen=True, slots=True)
class RouteConflict:
    """A foreign route on (or inside) a desired destination: reported, never touched."""

    table: str
    destination: Network
    node: str
    existing: Route


@dataclass(frozen=True, slots=True)
class Blocked:
    node: str
    reason: BlockReason
    detail: str
    table: str = ""
    destination: Network | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    create: tuple[Change, ...] = ()
    replace: tuple[Change, ...] = ()
    delete: tuple[Change, ...] = ()
    conflicts: tuple[RouteConflict, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    in_place: tuple[Change, ...] = ()
    """Desired routes already listed active with the right target: nothing to do."""
    rejected: tuple[CIDRProblem, ...] = ()
    """PodCIDRs of the planned nodes that they do not own (duplicate, overlapping, outside, wrong size,
    reserved): never routed to them."""
    adopt: tuple[Change, ...] = ()
    """Adoptions to write: `route` the desired owned route (its `cloud_id` the listed one's), `current`
    the route another controller made."""
    adoptable: tuple[Change, ...] = ()
    """The same, found without `--adopt-routes`: reported, never written (`adoptable_routes`)."""
    withheld: tuple[Change, ...] = ()
    """Deletes `sync` would make that `upsert-only` does not."""
    contested: tuple[Change, ...] = ()
    """Replaces held back while their route is contested."""

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.replace) + len(self.delete) + len(self.adopt)

    @property
    def converged(self) -> bool:
        """Nothing to write, nothing blocked, no podCIDR rejected (pending routes still count as
        converging)."""
        return self.writes == 0 and not self.blocked and not self.rejected


def adoptable_routes(the_plan: Plan) -> tuple[Change, ...]:
    """Routes another controller made that routectl would adopt with `--adopt-routes`: listed by
    `plan` and for checks such as `routectl doctor` (distinct from `conflicts`, which are foreign)."""
    return the_plan.adoptable or the_plan.adopt


def quota_scope(destination: Network, per_family: bool) -> int:
    """The quota a route counts against, as the cloud counts: its IP version where the cloud counts the
    families apart (AWS, `Limits.quota_per_family`), else 0 (one quota for the whole table). Every route
    in the table counts, owned or not."""
    return destination.version if per_family else 0


def plan(
    nodes: Iterable[DesiredNode],
    listed_tables: Mapping[str, Sequence[Route]],
    cluster_cidrs: Sequence[Network],
    *,
    quotas: Mapping[str, int | None] | None = None,
    quota_per_family: bool = False,
    rules: WriteRules = WriteRules(),
) -> Plan:
    """The whole plan for every node and every managed table (`listed_tables` keys are the tables).

    `quotas` is routes per table; with `quota_per_family` (AWS) IPv4 and IPv6 routes count apart."""
    ordered = sorted(nodes, key=lambda n: n.name)
    neighbours = Neighbours.of(ordered)
    planner = _Planner(
        tuple(cluster_cidrs), quotas or {}, quota_per_family, rules=rules, instances=neighbours.instances
    )
    return planner.run(ordered, listed_tables)


@dataclass(frozen=True, slots=True)
class TableSlice:
    """What a one-node plan needs of one table, from an index of it (`routeindex.RouteIndex`) instead
    of every route: a superset of the routes that concern the node, and how many routes the whole
    table holds per IP version (quota counts every route)."""

    candidates: tuple[Route, ...]
    """Every route overlapping one of the node's blocks or owned and naming the node (maybe more)."""
    per_version: Mapping[int, int]
    """IP version → routes of that version in the table."""


def plan_node(
    node: DesiredNode,
    listed_tables: Mapping[str, Sequence[Route] | TableSlice],
    cluster_cidrs: Sequence[Network],
    *,
    quotas: Mapping[str, int | None] | None = None,
    quota_per_family: bool = False,
    by_name: bool = True,
    neighbours: Neighbours = Neighbours(),
    rules: WriteRules = WriteRules(),
) -> Plan:
    """One node's slice of `plan`: same rules, restricted to the routes that concern this node.

    A route concerns the node if it overlaps one of its podCIDRs, or (with `by_name`) it is owned and
    names the node — with the same uid, where the route records one — and its destination is no block
    a neighbour owns. Quota is what the whole of each table leaves. Owned routes of other nodes are
    outside the slice, so they are never deleted by a per-node sync. A table given as a `TableSlice`
    is sliced from its candidates (the cost of the node's routes); given as routes, by a scan of all.
    """
    sliced: dict[str, list[Route]] = {}
    used: dict[str, Counter[int]] = {}
    for table, routes in listed_tables.items():
        sliced[table] = concerning(node, routes, by_name, neighbours.owners)
        used[table] = _used(routes, quota_per_family)
    planner = _Planner(
        tuple(cluster_cidrs), quotas or {}, quota_per_family, rules, used, neighbours.instances
    )
    return planner.run([node], sliced)


def concerning(
    node: DesiredNode, routes: Sequence[Route] | TableSlice, by_name: bool, owners: Mapping[Network, str]
) -> list[Route]:
    """The routes of one table that concern `node` (`_concerns`), in their order."""
    pool = routes.candidates if isinstance(routes, TableSlice) else routes
    return [route for route in pool if _concerns(node, route, by_name, owners)]


def _used(routes: Sequence[Route] | TableSlice, per_family: bool) -> Counter[int]:
    """Every route of the table counted per quota scope (`quota_scope`)."""
    if not isinstance(routes, TableSlice):
        return Counter(quota_scope(r.destination, per_family) for r in routes)
    return scope_counts(routes.per_version, per_family)


def scope_counts(per_version: Mapping[int, int], per_family: bool) -> Counter[int]:
    """Routes per IP version → routes per quota scope (`quota_scope`)."""
    if per_family:
        return Counter(per_version)
    return Counter({0: sum(per_version.values())})


def _concerns(node: DesiredNode, route: Route, by_name: bool, owners: Mapping[Network, str]) -> bool:
    """Overlaps one of its podCIDRs, or is owned and names it (GCP/Alibaba marks carry the node).

    Routes that merely point at the node's instance are left to the full resync: matching on the
    instance could take another node's route when an instance re-registers under a new name; a
    route naming an earlier Node of the same name (another uid) is likewise not this node's, nor is a
    route on a block another node owns now (its owner's plan replaces it)."""
    if any(overlaps(route.destination, cidr) for cidr in node.pod_cidrs):
        return True
    if owners.get(route.destination, node.name) != node.name:
        return False
    same_uid = not route.node_uid or not node.uid or route.node_uid == node.uid
    return by_name and route.owned and bool(route.node) and route.node == node.name and same_uid


@dataclass(slots=True)
class _Acc:
    create: list[Change] = field(default_factory=list)
    replace: list[Change] = field(default_factory=list)
    delete: list[Change] = field(default_factory=list)
    conflicts: list[RouteConflict] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    in_place: list[Change] = field(default_factory=list)
    rejected: list[CIDRProblem] = field(default_factory=list)
    adopt: list[Change] = field(default_factory=list)
    adoptable: list[Change] = field(default_factory=list)
    withheld: list[Change] = field(default_factory=list)
    contested: list[Change] = field(default_factory=list)

    def freeze(self) -> Plan:
        return Plan(
            create=tuple(sorted(self.create, key=_key)),
            replace=tuple(sorted(self.replace, key=_key)),
            delete=tuple(sorted(self.delete, key=_key)),
            conflicts=tuple(
                sorted(self.conflicts, key=lambda c: (*_key(c), _net_key(c.existing.destination)))
            ),
            blocked=tuple(sorted(set(self.blocked), key=_blocked_key)),
            in_place=tuple(sorted(self.in_place, key=_key)),
            rejected=tuple(sorted(set(self.rejected), key=lambda p: (p.node, p.pod_cidr, p.rule.value))),
            adopt=tuple(sorted(self.adopt, key=_key)),
            adoptable=tuple(sorted(self.adoptable, key=_key)),
            withheld=tuple(sorted(self.withheld, key=_key)),
            contested=tuple(sorted(self.contested, key=_key)),
        )


def _net_key(net: Network | None) -> tuple[int, int, int]:
    if net is None:
        return (0, 0, 0)
    return (net.version, int(net.network_address), net.prefixlen)


def _key(item: Change | RouteConflict) -> tuple[str, tuple[int, int, int], str]:
    return (item.table, _net_key(item.destination), item.node)


def _blocked_key(item: Blocked) -> tuple[str, str, str, tuple[int, int, int], str]:
    return (item.node, item.reason.value, item.table, _net_key(item.destination), item.detail)


class _Planner:
    def __init__(
        self,
        cluster_cidrs: tuple[Network, ...],
        quotas: Mapping[str, int | None],
        per_family: bool,
        rules: WriteRules,
        used: Mapping[str, Counter[int]] | None = None,
        instances: Mapping[Target, frozenset[str]] | None = None,
    ) -> None:
        self.cidrs = cluster_cidrs
        self.rules = rules
        self.quotas = quotas
        self.per_family = per_family
        self.used = used or {}
        """Routes per quota scope of each whole table, when the routes planned are a slice of it:
        the routes outside the slice use quota all the same."""
        self.instances = instances or {}
        """Target → the live nodes on it: a kept route of a node without a target must not point at
        another node's instance."""

    def _scope(self, destination: Network) -> int:
        return quota_scope(destination, self.per_family)

    def run(self, nodes: list[DesiredNode], listed: Mapping[str, Sequence[Route]]) -> Plan:
        acc = _Acc()
        wanted = self._wanted(nodes, acc)
        protected = {c: n.name for n in nodes if not n.excluded and n.target is None for c in n.pod_cidrs}
        for table in sorted(listed):
            self._table(table, listed[table], wanted, protected, acc)
        return acc.freeze()

    def _wanted(self, nodes: list[DesiredNode], acc: _Acc) -> dict[Network, DesiredNode]:
        """Destination → node for every route that should exist; block nodes that cannot have one."""
        wanted: dict[Network, DesiredNode] = {}
        for node in nodes:
            if node.excluded:
                continue
            acc.rejected.extend(node.rejected)
            if not node.pod_cidrs:
                if not node.rejected:
                    acc.blocked.append(Blocked(node.name, BlockReason.NO_POD_CIDR, "node has no podCIDR"))
                continue
            if node.target is None:
                detail = node.no_target_reason or "no target instance"
                acc.blocked.append(Blocked(node.name, BlockReason.NO_TARGET, detail))
                continue
            for cidr in node.pod_cidrs:
                if inside(cidr, self.cidrs):  # owned blocks always are; this guards hand-built input
                    wanted[cidr] = node
        return wanted

    def _table(
        self,
        table: str,
        routes: Sequence[Route],
        wanted: Mapping[Network, DesiredNode],
        protected: Mapping[Network, str],
        acc: _Acc,
    ) -> None:
        by_dest = {r.destination: r for r in routes}
        settled = self._foreign(table, routes, wanted, acc)
        kept = (
            Counter(self.used[table])
            if table in self.used
            else Counter(self._scope(r.destination) for r in routes)
        )
        creates: list[Change] = []
        for route in routes:
            if not (route.owned and inside(route.destination, self.cidrs)):
                continue
            if route.destination in wanted:
                continue
            if route.destination in protected and not self._elsewhere(route, protected[route.destination]):
                continue  # kept for its owner while it has no target, unless it routes to another node
            doomed = Change(table, route.destination, route.node, route)
            if self.rules.policy is RoutePolicy.UPSERT_ONLY:
                acc.withheld.append(doomed)
                continue
            acc.delete.append(doomed)
            kept[self._scope(route.destination)] -= 1
        for dest, node in sorted(wanted.items(), key=lambda item: (item[1].name, str(item[0]))):
            if dest in settled:
                continue
            desired = Route(dest, node.target, owned=True, node=node.name, node_uid=node.uid)
            current = by_dest.get(dest)
            if current is None or current.state is RouteState.DELETING:
                creates.append(Change(table, dest, node.name, desired))
            elif current.target != node.target or current.state is RouteState.BLACKHOLE:
                # The cloud's handle of the route being replaced: GCP names routes by node uid, so the
                # old route of a reused CIDR has another name than the desired one.
                replacing = Change(
                    table, dest, node.name, replace(desired, cloud_id=current.cloud_id), current
                )
                if (table, dest) in self.rules.contested:
                    self._hold(replacing, acc)
                else:
                    acc.replace.append(replacing)
            elif current.state is RouteState.ACTIVE:
                acc.in_place.append(Change(table, dest, node.name, desired, current))
        self._within_quota(table, kept, creates, acc)

    def _elsewhere(self, route: Route, owner: str) -> bool:
        """The route points at the instance of a live node other than `owner`."""
        if route.target is None:
            return False
        return bool(self.instances.get(route.target, frozenset()) - {owner})

    def _foreign(
        self,
        table: str,
        routes: Sequence[Route],
        wanted: Mapping[Network, DesiredNode],
        acc: _Acc,
    ) -> set[Network]:
        """Foreign routes equal to or inside a desired destination, or overlapping it within the cluster
        CIDRs: adoptable ones (`ownership.adoptable`) are adopted, or listed with their node blocked;
        the rest are conflicts. A broader foreign route that contains the cluster CIDR (default route,
        VPC-local route) is not a conflict: the node's more specific route wins by longest-prefix
        match. Returns the destinations settled here (conflicted or adopted), which get no other write."""
        conflicted: set[Network] = set()
        adoptions: dict[Network, Change] = {}
        if not wanted:
            return conflicted
        for route in routes:
            if route.owned and inside(route.destination, self.cidrs):
                continue
            for dest, node in self._overlapping(route.destination, wanted):
                if adoptable(route, dest, node.target, self.cidrs):
                    desired = Route(dest, node.target, owned=True, node=node.name, node_uid=node.uid)
                    adopted = Change(table, dest, node.name, replace(desired, cloud_id=route.cloud_id), route)
                    adoptions.setdefault(dest, adopted)
                    continue
                inside_dest = route.destination.subnet_of(dest)  # type: ignore[arg-type]
                if inside_dest or inside(route.destination, self.cidrs):
                    acc.conflicts.append(RouteConflict(table, dest, node.name, route))
                    via = route.next_hop or "?"
                    detail = f"route conflict in {table}: {route.destination} via {via} is not ours"
                    acc.blocked.append(Blocked(node.name, BlockReason.CONFLICT, detail, table, dest))
                    conflicted.add(dest)
        for change in adoptions.values():
            if change.destination not in conflicted:  # a foreign route beside it: not ours to settle
                self._adopt(change, acc)
        return conflicted | set(adoptions)

    def _adopt(self, change: Change, acc: _Acc) -> None:
        """Adopt the route, or without `--adopt-routes` list it and block its node naming the flag."""
        if self.rules.adopt:
            acc.adopt.append(change)
            return
        acc.adoptable.append(change)
        via = change.current.next_hop if change.current else "?"
        where = f"{change.destination} in {change.table}"
        detail = f"{where} is routed by another route controller ({via}); {ADOPT_FLAG} adopts it"
        blocked = Blocked(change.node, BlockReason.ADOPTABLE, detail, change.table, change.destination)
        acc.blocked.append(blocked)

    @staticmethod
    def _hold(change: Change, acc: _Acc) -> None:
        """A contested route: not rewritten during its backoff; its node is blocked naming it."""
        via = change.current.next_hop if change.current else "?"
        detail = (
            f"route {change.destination} in {change.table} is contested: its target keeps being changed "
            f"by something else (now {via}); not rewritten until the backoff ends"
        )
        acc.contested.append(change)
        acc.blocked.append(
            Blocked(change.node, BlockReason.CONTESTED, detail, change.table, change.destination)
        )

    @staticmethod
    def _overlapping(
        net: Network, wanted: Mapping[Network, DesiredNode]
    ) -> list[tuple[Network, DesiredNode]]:
        if net in wanted:
            return [(net, wanted[net])]
        return [(d, n) for d, n in wanted.items() if overlaps(net, d)]

    def _within_quota(self, table: str, kept: Counter[int], creates: list[Change], acc: _Acc) -> None:
        """Creates in node-name order until the table's quota (per family, where the cloud counts
        so) is used up; the rest are blocked."""
        quota = self.quotas.get(table)
        for change in creates:
            scope = self._scope(change.destination)
            if quota is None or kept[scope] < quota:
                kept[scope] += 1
                acc.create.append(change)
                continue
            family = f" for IPv{scope}" if scope else ""
            detail = f"route quota of {table} ({quota}{family}) reached"
            acc.blocked.append(Blocked(change.node, BlockReason.QUOTA, detail, table, change.destination))


__all__ = [
    "ADOPT_FLAG",
    "BlockReason",
    "Blocked",
    "Change",
    "DesiredNode",
    "Neighbours",
    "Plan",
    "RouteConflict",
    "RoutePolicy",
    "TableSlice",
    "WriteRules",
    "adoptable_routes",
    "concerning",
    "plan",
    "plan_node",
    "quota_scope",
    "scope_counts",
]
