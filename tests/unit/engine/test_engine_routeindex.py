"""The route view's per-table index (`routeindex.RouteIndex`): a one-node plan from its slice is the plan
a scan of every route gives, and a per-node sync visits the node's routes, not the table's."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import Network, Route, RouteState, Target
from routectl.cluster import Node
from routectl.engine import planner
from routectl.engine.planner import DesiredNode, Neighbours, concerning, plan_node
from routectl.engine.routeindex import RouteIndex
from tests.unit.builders import TABLE, World

CLUSTER = (ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00:10::/48"))
V4_BLOCKS = [f"10.244.{i}.0/24" for i in range(4)]
V6_BLOCKS = [f"fd00:10:0:{i}::/64" for i in range(4)]
DESTINATIONS = [
    *V4_BLOCKS,
    *V6_BLOCKS,
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.244.0.0/16",
    "10.244.0.0/23",
    "10.244.1.0/25",
    "10.244.1.128/26",
    "10.244.2.7/32",
    "10.244.1.255/32",
    "10.244.3.0/32",
    "10.244.9.0/24",
    "172.31.0.0/24",
    "::/0",
    "fd00:10::/48",
    "fd00:10::/63",
    "fd00:10:0:1::/65",
    "fd00:10:0:2:8000::/66",
    "fd00:10:0:3:ffff:ffff:ffff:ffff/128",
    "fd00:10:0:9::/64",
]
NAMES = ("a", "b", "c")


def _net(text: str) -> Network:
    return ipaddress.ip_network(text)


routes = st.builds(
    lambda dest, owned, node, uid, target, state, adoptable: Route(
        _net(dest),
        Target(target) if target else None,
        owned=owned,
        state=state,
        node=node,
        node_uid=uid,
        next_hop=target or "igw",
        adoptable=adoptable,
    ),
    st.sampled_from(DESTINATIONS),
    st.booleans(),
    st.sampled_from(("", *NAMES)),
    st.sampled_from(("", "uid-a", "uid-a-old", "uid-b")),
    st.sampled_from(("", "i-a", "i-b", "i-c")),
    st.sampled_from(list(RouteState)),
    st.booleans(),
)
tables = st.lists(routes, max_size=14, unique_by=lambda r: r.destination)
nodes = st.builds(
    lambda v4, v6, target, excluded, uid: DesiredNode(
        "a",
        uid,
        tuple(_net(c) for c in (*v4, *v6)),
        Target(target) if target else None,
        excluded=excluded,
    ),
    st.lists(st.sampled_from(V4_BLOCKS), max_size=1),
    st.lists(st.sampled_from(V6_BLOCKS), max_size=1),
    st.sampled_from(("", "i-a", "i-b")),
    st.booleans(),
    st.sampled_from(("", "uid-a")),
)
neighbours = st.dictionaries(
    st.sampled_from([*V4_BLOCKS, *V6_BLOCKS]).map(_net), st.sampled_from(NAMES), max_size=4
)


@settings(max_examples=400, deadline=None)
@given(
    node=nodes,
    listed=st.dictionaries(st.sampled_from((TABLE, "rtb-b")), tables, min_size=1, max_size=2),
    dropped=st.lists(st.sampled_from(DESTINATIONS), max_size=4),
    owners=neighbours,
    by_name=st.booleans(),
    per_family=st.booleans(),
    quota=st.one_of(st.none(), st.integers(0, 16)),
)
def test_a_plan_from_the_index_equals_the_plan_from_every_route(
    node: DesiredNode,
    listed: dict[str, list[Route]],
    dropped: list[str],
    owners: dict[Network, str],
    by_name: bool,
    per_family: bool,
    quota: int | None,
) -> None:
    indexes = {}
    gone = {_net(d) for d in dropped}
    for table, listing in listed.items():
        index = RouteIndex(listing[::2])  # built in two steps, some routes dropped: maintenance counts
        for route in listing[1::2]:
            index.put(route)
        for dest in gone:
            index.drop(dest)
        listed[table] = [r for r in listing if r.destination not in gone]
        assert sorted(index, key=str) == sorted(listed[table], key=str)
        assert index.per_version == Counter(r.destination.version for r in listed[table])
        indexes[table] = index.slice(node.pod_cidrs, node.name)
        mine = concerning(node, indexes[table], by_name, owners)
        assert sorted(mine, key=str) == sorted(concerning(node, listed[table], by_name, owners), key=str)
    instances = {Target("i-b"): frozenset({"b"}), Target("i-a"): frozenset({"a"})}
    hood = Neighbours({d: n for d, n in owners.items() if d not in node.pod_cidrs}, instances)
    options = {"quotas": dict.fromkeys(listed, quota), "quota_per_family": per_family}
    from_index = plan_node(node, indexes, CLUSTER, by_name=by_name, neighbours=hood, **options)  # type: ignore[arg-type]
    from_scan = plan_node(node, listed, CLUSTER, by_name=by_name, neighbours=hood, **options)  # type: ignore[arg-type]
    assert from_index == from_scan


def _visits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the routes the planner tests for a node's slice (`planner._concerns`)."""
    seen: Counter[str] = Counter()
    real: Callable[..., bool] = planner._concerns

    def counting(node: DesiredNode, route: Route, *args: object) -> bool:
        seen[node.name] += 1
        return real(node, route, *args)

    monkeypatch.setattr(planner, "_concerns", counting)
    return seen


@pytest.mark.parametrize("extra", [10, 1000])
def test_a_node_sync_visits_its_own_routes_whatever_the_size_of_the_table(
    monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    """The same node's sync visits as many routes whether the table holds 13 or 1,003 others."""
    world = World()
    try:
        world.add_nodes(3)
        for i in range(extra):  # foreign routes outside the cluster, and beside the nodes inside it
            world.sim.add_route(TABLE, f"172.{16 + i // 250}.{i % 250}.0/24", "i-foreign")
        world.sim.add_route(TABLE, "10.244.200.0/28", "i-foreign")
        rec = world.reconciler()
        assert rec.resync() is True
        seen = _visits(monkeypatch)
        assert rec.sync_node(world.node("n001")) is True
        assert seen == Counter({"n001": 1})  # its one route, in the one table
    finally:
        world.close()


def test_ownership_is_reused_while_the_node_sets_generation_stands() -> None:
    world = World()
    try:
        world.add_nodes(3)
        world.add_node(3, pod_cidrs=[])
        reads: list[int] = []
        generation = [0]

        def nodes() -> list[Node]:
            reads.append(generation[0])
            return list(world.cluster.nodes().values())

        rec = world.reconciler(nodes=nodes, nodes_generation=lambda: generation[0])
        rec.resync()
        before = len(reads)
        assert all(rec.sync_node(world.node(n)) for n in ("n000", "n001", "n002"))
        assert len(reads) == before  # nothing changed: the node set is not read
        world.cluster.set_pod_cidrs("n003", ["10.244.1.0/24"])  # claims n001's block
        generation[0] += 1
        assert rec.sync_node(world.node("n000")) is True
        assert len(reads) == before + 1  # a new generation: read once, ownership recomputed
        assert rec.sync_node(world.node("n003")) is False  # it does not own the block it claims
        assert len(reads) == before + 1
        assert world.owned_routes() == {f"10.244.{i}.0/24": f"i-00{i}" for i in range(3)}
    finally:
        world.close()
