"""Who owns each node block: one answer, shared by IPAM (what is free) and routes (where a block goes).

A node's podCIDR is *owned* by it when it parses, lies inside a cluster CIDR of its family, is exactly
one node block (prefix length = that family's node mask), overlaps no reserved range, and no node that
comes earlier in (creationTimestamp, name) order claims the same block. Because every owned block has
the node mask of its family, two owned blocks overlap only when they are equal, so "earlier claimant
wins" is decided per block. Every other podCIDR is *rejected* with a `CIDRProblem` naming the rule and,
where there is one, the node that owns the block it collides with.

Invariants: the result depends only on the set of (name, uid, creationTimestamp, podCIDRs) given —
never on the order nodes were seen, on restarts or on which replica leads — so every reader agrees
(`owners` is the pure function, `Claims` its incremental form, proven equal by the tests); a node
created later can never take a block from one created earlier, so adding nodes never moves a route;
ownership of a block changes only when its owner goes (the next claimant takes it) or an older node
newly claims it.

Routes follow the same rule from the other side: `adoptable` says when a route another controller
made (kube-controller-manager's, a cloud-controller-manager's) may become routectl's.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import ipam
from ipam import Network, overlaps
from providers import Route, RouteState, Target
from routectl.cluster import Node


class Rule(enum.StrEnum):
    """Why a podCIDR is not its node's: the `rule` label of `routectl_node_cidr_conflicts`."""

    MALFORMED = "malformed"
    OUTSIDE = "outside"
    WRONG_SIZE = "wrong-size"
    RESERVED = "reserved"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class CIDRProblem:
    """One rejected podCIDR of one node."""

    node: str
    pod_cidr: str
    rule: Rule
    detail: str
    other: str = ""
    """The node owning a block this podCIDR collides with ("" when none does)."""

    @property
    def message(self) -> str:
        """The line said on the Node (condition message, Event) and in `plan`."""
        return f"podCIDR {self.pod_cidr} rejected ({self.rule.value}): {self.detail}"


@dataclass(frozen=True, slots=True)
class Ownership:
    """A snapshot: each node's owned blocks (in podCIDR order) and its rejected podCIDRs."""

    owned: Mapping[str, tuple[Network, ...]] = field(default_factory=dict)
    problems: Mapping[str, tuple[CIDRProblem, ...]] = field(default_factory=dict)
    owners: Mapping[Network, str] = field(default_factory=dict)
    """Block → the node that owns it."""

    def of(self, name: str) -> tuple[Network, ...]:
        return self.owned.get(name, ())

    def rejected(self, name: str) -> tuple[CIDRProblem, ...]:
        return self.problems.get(name, ())

    def counts(self) -> dict[Rule, int]:
        """Rejected podCIDRs by rule (every rule present, zero included: the metric's values)."""
        counts = dict.fromkeys(Rule, 0)
        for found in self.problems.values():
            for problem in found:
                counts[problem.rule] += 1
        return counts


@dataclass(frozen=True, slots=True)
class _Claim:
    """One node's podCIDRs, judged alone: conforming blocks, and the rejections that need no other node."""

    uid: str
    key: tuple[float, str]
    spec: tuple[str, ...]
    blocks: tuple[tuple[str, Network], ...]
    """(podCIDR text, block) of each podCIDR that passes the node-independent rules."""
    alone: tuple[CIDRProblem, ...]
    """Rejections by a node-independent rule; `other` filled in at snapshot time."""
    overlapping: tuple[tuple[str, Network], ...]
    """(text, network) of rejected podCIDRs that parse and may overlap another node's block."""


class Claims:
    """The incremental form of `owners`: put and remove nodes, read the same answer. Thread-safe."""

    def __init__(self, rules: ipam.PoolConfig) -> None:
        self._rules = rules
        self._cidrs = ipam.Spans(rules.cidrs)
        self._reserved = ipam.Spans(rules.reserved)
        """The rules' networks as integer spans: judged against once per podCIDR."""
        self._lock = threading.Lock()
        self._claims: dict[str, _Claim] = {}
        self._claimants: dict[Network, list[tuple[tuple[float, str], str]]] = {}
        """Block → (order key, name) of every node claiming it, sorted: the first one owns it."""

    def put(self, node: Node) -> set[str]:
        """Add or update `node` (by name); returns the names whose owned blocks changed."""
        claim = self._judge(node)
        with self._lock:
            changed = self._drop_locked(node.name)
            self._claims[node.name] = claim
            for _, block in claim.blocks:
                claimants = self._claimants.setdefault(block, [])
                before = claimants[0][1] if claimants else None
                claimants.append((claim.key, node.name))
                claimants.sort()
                if claimants[0][1] != before:
                    changed.add(node.name)
                    if before is not None:
                        changed.add(before)
            return changed

    def remove(self, name: str) -> set[str]:
        """Forget node `name`; returns the names whose owned blocks changed (it, and any successor)."""
        with self._lock:
            return self._drop_locked(name)

    def uid(self, name: str) -> str | None:
        """The uid of the object of that name this index holds, if any."""
        with self._lock:
            claim = self._claims.get(name)
            return None if claim is None else claim.uid

    def spec(self, name: str) -> tuple[str, ...] | None:
        with self._lock:
            claim = self._claims.get(name)
            return None if claim is None else claim.spec

    def owned_blocks(self) -> set[Network]:
        """Every block some node owns."""
        with self._lock:
            return set(self._claimants)

    def owned(self, name: str) -> tuple[Network, ...]:
        with self._lock:
            return self._owned_locked(name)

    def problems(self, name: str) -> tuple[CIDRProblem, ...]:
        with self._lock:
            return self._problems_locked(name)

    def snapshot(self) -> Ownership:
        with self._lock:
            owned = {name: self._owned_locked(name) for name in self._claims}
            problems = {name: self._problems_locked(name) for name in self._claims}
            return Ownership(
                owned={n: b for n, b in owned.items() if b},
                problems={n: p for n, p in problems.items() if p},
                owners={block: claimants[0][1] for block, claimants in self._claimants.items()},
            )

    # --- internals -------------------------------------------------------------------------------

    def _drop_locked(self, name: str) -> set[str]:
        claim = self._claims.pop(name, None)
        changed: set[str] = set()
        if claim is None:
            return changed
        for _, block in claim.blocks:
            claimants = self._claimants[block]
            if claimants[0][1] == name:
                changed.add(name)
                if len(claimants) > 1:
                    changed.add(claimants[1][1])
            claimants.remove((claim.key, name))
            if not claimants:
                del self._claimants[block]
        return changed

    def _owned_locked(self, name: str) -> tuple[Network, ...]:
        claim = self._claims.get(name)
        if claim is None:
            return ()
        return tuple(b for _, b in claim.blocks if self._claimants[b][0][1] == name)

    def _problems_locked(self, name: str) -> tuple[CIDRProblem, ...]:
        claim = self._claims.get(name)
        if claim is None:
            return ()
        found: list[CIDRProblem] = []
        overlapping = dict(claim.overlapping) if claim.alone else {}  # most nodes have no problem
        for problem in claim.alone:
            net = overlapping.get(problem.pod_cidr)
            other = self._first_overlap_locked(net, name) if net is not None else ""
            if other:
                detail = f"{problem.detail}; it overlaps a block of node {other}"
                found.append(CIDRProblem(name, problem.pod_cidr, problem.rule, detail, other))
            else:
                found.append(problem)
        for text, block in claim.blocks:
            (created, _), owner = self._claimants[block][0]
            if owner != name:
                when = "before this one" if created < claim.key[0] else "at the same time, first by name"
                detail = f"the block belongs to node {owner}, created {when}"
                found.append(CIDRProblem(name, text, Rule.DUPLICATE, detail, owner))
        return tuple(found)

    def _first_overlap_locked(self, net: Network, name: str) -> str:
        """The owner of the first owned block `net` overlaps (by block order), other than `name`."""
        hits = sorted(
            (b for b in self._claimants if overlaps(b, net)),
            key=lambda b: (b.version, int(b.network_address)),
        )
        return next((self._claimants[b][0][1] for b in hits if self._claimants[b][0][1] != name), "")

    def _judge(self, node: Node) -> _Claim:
        rules = self._rules
        blocks: list[tuple[str, Network]] = []
        alone: list[CIDRProblem] = []
        overlapping: list[tuple[str, Network]] = []
        for text in node.pod_cidrs:
            try:
                net = ipam.network(text)
            except ValueError as err:
                alone.append(CIDRProblem(node.name, text, Rule.MALFORMED, f"not a CIDR ({err})"))
                continue
            mask = rules.node_mask(net.version)
            if self._cidrs.containing(net) is None:
                names = ", ".join(str(c) for c in rules.cidrs)
                detail = f"not inside the cluster CIDRs ({names})"
                alone.append(CIDRProblem(node.name, text, Rule.OUTSIDE, detail))
            elif net.prefixlen != mask:
                detail = f"a /{net.prefixlen}, but the IPv{net.version} node mask is /{mask}"
                alone.append(CIDRProblem(node.name, text, Rule.WRONG_SIZE, detail))
            else:
                reserved = self._reserved.overlapping(net)
                if reserved is None and all(b != net for _, b in blocks):
                    blocks.append((text, net))
                    continue
                if reserved is None:
                    detail = "listed twice in the node's podCIDRs"
                    alone.append(CIDRProblem(node.name, text, Rule.DUPLICATE, detail))
                    continue
                detail = f"overlaps the reserved range {reserved}"
                alone.append(CIDRProblem(node.name, text, Rule.RESERVED, detail))
            overlapping.append((text, net))
        return _Claim(
            node.uid,
            (node.created, node.name),
            node.pod_cidrs,
            tuple(blocks),
            tuple(alone),
            tuple(overlapping),
        )


def adoptable(route: Route, block: Network, target: Target | None, cidrs: Iterable[Network]) -> bool:
    """Whether a listed route another controller made may become routectl's route for `block` (the
    block of the node on `target`): the adapter recognised it (`Route.adoptable`), it is not owned,
    active, exactly that block, inside a cluster CIDR, and points at that node's instance. Anything
    else on the block — another node's instance, a wider or narrower prefix — stays a foreign
    conflict, never touched."""
    return (
        route.adoptable
        and not route.owned
        and route.state is RouteState.ACTIVE
        and route.destination == block
        and target is not None
        and route.target == target
        and ipam.inside(block, tuple(cidrs))
    )


def owners(nodes: Iterable[Node], rules: ipam.PoolConfig) -> Ownership:
    """Ownership of every block among `nodes` (names unique: the current node set)."""
    claims = Claims(rules)
    for node in nodes:
        claims.put(node)
    return claims.snapshot()


__all__ = ["CIDRProblem", "Claims", "Ownership", "Rule", "adoptable", "owners"]
